"""Text a probe produces: one clean line, no secrets; JSON field checks; no UI imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dhash_console.ops.probes import clean_text, safe_url
from dhash_console.ops.probes.http import json_mismatch, lookup, same_json_value


def test_clean_text_is_one_line_without_escapes_or_controls() -> None:
    text = "boom\x1b[31m red\x1b[0m\r\nnext\tline\x07\x00 \x1b]8;;http://x\x07link\x1b]8;;\x07"
    assert clean_text(text) == "boom red next line link"


def test_clean_text_keeps_markup_literal_and_truncates() -> None:
    assert clean_text("[bold]x[/bold]") == "[bold]x[/bold]"
    long = clean_text("a" * 500)
    assert len(long) == 200 and long.endswith("…")


@pytest.mark.parametrize(
    "text",
    [
        "failed GET https://user:pa55w0rd@prom.example.com/api/v1/query?query=up&token=t0k3n",
        "see http://:pa55w0rd@host/x#t0k3n for details",
    ],
)
def test_clean_text_strips_url_secrets(text: str) -> None:
    cleaned = clean_text(text)
    assert "pa55w0rd" not in cleaned and "t0k3n" not in cleaned
    assert "://" in cleaned


def test_safe_url_keeps_only_where() -> None:
    url = "https://alice:s3cret@prom.example.com:9443/prom/api/v1/query?query=up&token=abc#x"
    assert safe_url(url) == "https://prom.example.com:9443/prom/api/v1/query"
    assert safe_url("http://[::1]:8080/metrics?x=1") == "http://[::1]:8080/metrics"


def test_lookup_follows_objects_and_arrays() -> None:
    document = {"a": {"b": [{"c": 1}]}, "d.e": 2}
    assert lookup(document, "a.b.0.c") == 1
    assert lookup(document, "a.b") == [{"c": 1}]
    for missing in ("a.x", "a.b.1.c", "a.b.-1", "d.e", "a.b.0.c.d"):
        assert json_mismatch(document, {missing: 1}) == f"{missing} missing; expected 1"


@pytest.mark.parametrize(
    ("got", "want", "same"),
    [
        (True, True, True),
        (1, True, False),  # JSON 1 is not true
        (True, 1, False),
        (1, 1.0, True),
        ("1", 1, False),
        (1, "1", False),
        ("ok", "ok", True),
        (None, "ok", False),
    ],
)
def test_same_json_value(got: object, want: str | int | float | bool, same: bool) -> None:
    assert same_json_value(got, want) is same


def test_json_mismatch_names_the_first_wrong_field() -> None:
    document = {"status": "degraded", "db": {"ok": False}}
    assert json_mismatch(document, {"db.ok": False}) is None
    assert json_mismatch(document, {"db.ok": False, "status": "ok"}) == (
        "status is \"degraded\"; expected 'ok'"
    )


def test_probes_never_import_textual() -> None:
    code = (
        "import sys, dhash_console.ops.probes; "
        "sys.exit(1 if any(m.split('.')[0] == 'textual' for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
