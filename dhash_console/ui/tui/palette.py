"""Status marks (symbol + word, never colour alone) and their colours in the current theme."""

from __future__ import annotations

from rich.style import Style
from textual.app import App
from textual.color import Color, ColorParseError

# status -> (symbol, word, theme colour variable)
MARKS: dict[str, tuple[str, str, str]] = {
    "pass": ("✔", "pass", "success"),
    "passed": ("✔", "PASSED", "success"),
    "ok": ("✔", "ok", "success"),
    "succeeded": ("✔", "succeeded", "success"),
    "rolled_back": ("↶", "rolled back", "warning"),
    "fail": ("✖", "FAIL", "error"),
    "failed": ("✖", "FAILED", "error"),
    "rollback_failed": ("‼", "ROLLBACK FAILED", "error"),
    "inconclusive": ("?", "inconclusive", "warning"),
    "pending": ("·", "pending", "text-muted"),
    "waiting": ("·", "waiting", "text-muted"),
    "running": ("●", "running", "primary"),
    "paused": ("‖", "PAUSED", "warning"),
    "rolling_back": ("↶", "ROLLING BACK", "error"),
    "skipped": ("-", "skipped", "text-muted"),
    "interrupted": ("!", "interrupted", "warning"),
    "aborted": ("■", "aborted", "warning"),
    "stopped": ("■", "stopped", "warning"),
}


def mark(status: str) -> tuple[str, str, str]:
    return MARKS.get(status, ("·", status, "text-muted"))


_CACHE: dict[tuple[str, str], Style] = {}


def color(app: App[object], variable: str) -> Style:
    """A Rich style in the current theme's colour for `variable` (e.g. 'success').

    Cached per theme: the log's highlighter asks for every line it draws.
    """
    key = (app.theme, variable)
    cached = _CACHE.get(key)
    if cached is not None:
        return cached
    variables = app.get_css_variables()
    raw = variables.get("foreground-muted" if variable == "text-muted" else variable)
    try:
        parsed = Color.parse(raw or "")
        if parsed.a < 1:  # a translucent colour: mix it over the background, as CSS would
            background = Color.parse(variables.get("background", "#000000"))
            parsed = background.blend(parsed.with_alpha(1.0), parsed.a)
        style = Style(color=parsed.rich_color)
    except ColorParseError:
        style = Style()
    _CACHE[key] = style
    return style


def status_style(app: App[object], status: str, bold: bool = False) -> Style:
    return color(app, mark(status)[2]) + Style(bold=bold or None)
