"""Make untrusted text safe to show on a terminal.

Log lines, HTTP bodies and error messages from services may carry terminal escape
sequences (clear screen, move the cursor, set the window title, OSC 8 links) or
control characters that rewrite what an operator sees. `clean` removes them and
keeps the text itself; printing the result through `rich.text.Text` (never as
markup) then shows it literally.
"""

from __future__ import annotations

import re

# ESC-introduced sequences (ECMA-48), and their 8-bit C1 twins:
#   CSI  ESC [ or 0x9B, parameters and intermediates, one final byte;
#   OSC, DCS, SOS, PM, APC  ESC ] P X ^ _ (or 0x9D 0x90 0x98 0x9E 0x9F), a body, then
#        BEL or ST (ESC \ or 0x9C); an unterminated one runs to the end of the text;
#   nF   ESC, intermediates (0x20-0x2F), one final byte (charset selection, ESC ( B);
#   Fp/Fe/Fs  ESC and one byte (ESC c resets the terminal).
_ESCAPES = re.compile(
    r"""
    (?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?
  | (?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f]).*?(?:\x07|\x1b\\|\x9c|\Z)
  | \x1b[\x20-\x2f]*[\x30-\x7e]?
    """,
    re.VERBOSE | re.DOTALL,
)

# What is left after the sequences are gone: C0 controls but tab and newline, DEL, C1
# controls, and the bidirectional overrides that reorder what is displayed.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab and newline stay).

    A carriage return that ends a line (CRLF) becomes a plain newline; any other is dropped,
    so that a line cannot overwrite itself on screen.
    """
    text = text.replace("\r\n", "\n")
    text = _ESCAPES.sub("", text)
    return _CONTROLS.sub("", text)
