"""SQLite URIs built safely: a path with `?`, `#` or `%` in it must not change the URI's meaning."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from urllib.parse import quote


def readonly_uri(path: Path) -> str:
    """`file:` URI opening `path` read-only; the path is percent-encoded, never pasted in."""
    return f"file:{quote(str(path.resolve()))}?mode=ro"


def connect_readonly(path: Path, timeout: float = 10.0) -> sqlite3.Connection:
    """A read-only connection; fails (rather than creating an empty file) when `path` is absent."""
    return sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout)
