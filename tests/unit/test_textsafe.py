"""Untrusted text loses its terminal escapes and control characters, and keeps its words."""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.text import Text

from dhash_console.textsafe import clean


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("clear\x1b[2Jscreen", "clearscreen"),
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("title\x1b]0;pwned\x07after", "titleafter"),
        ("\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("dcs\x1bPq#0;2;0;0;0\x1b\\done", "dcsdone"),
        ("reset\x1bc!", "reset!"),
        ("charset\x1b(Bok", "charsetok"),
        ("c1 csi\x9b31mx", "c1 csix"),
        ("unterminated\x1b]0;title", "unterminated"),
        ("trailing\x1b", "trailing"),
        ("bell\x07 bs\x08 nul\x00 del\x7f", "bell bs nul del"),
        ("over\rwrite", "overwrite"),
        ("crlf\r\nline\ttab", "crlf\nline\ttab"),
        ("bidi \u202eevil\u202c", "bidi evil"),
        ("[bold red]x[/] é 日本 🎉", "[bold red]x[/] é 日本 🎉"),
    ],
)
def test_clean(raw: str, shown: str) -> None:
    assert clean(raw) == shown


def test_cleaned_text_prints_literally() -> None:
    out = io.StringIO()
    console = Console(file=out, markup=False, highlight=False, color_system=None, width=80)
    console.print(Text(clean("[bold red]x[/] \x1b[2Jdone")))
    assert out.getvalue() == "[bold red]x[/] done\n"
