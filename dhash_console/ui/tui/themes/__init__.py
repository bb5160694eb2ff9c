"""The console's themes (Textual's Theme API) and its stylesheet, shipped with the package.

Three themes: dark, light and high-contrast. Status never rests on colour alone (every
state has a symbol and a word), and the colours are picked to stay apart for the common
colour-vision deficiencies: blue/orange rather than green/red where it matters most, and
pure black/white/yellow/cyan in high-contrast.
"""

from __future__ import annotations

from pathlib import Path

from textual.theme import Theme

STYLESHEET = Path(__file__).with_name("console.tcss")

DARK = Theme(
    name="dhash-dark",
    primary="#4f9fe6",
    secondary="#7aa2c8",
    accent="#f2a541",
    warning="#f2c14e",
    error="#ff6b5a",
    success="#5ccf8a",
    foreground="#e2e6ea",
    background="#14181d",
    surface="#1c2128",
    panel="#232a33",
    dark=True,
)

LIGHT = Theme(
    name="dhash-light",
    primary="#0b5cad",
    secondary="#3d6b99",
    accent="#b35900",
    warning="#8a5a00",
    error="#b3261e",
    success="#1b6e3a",
    foreground="#1b1f24",
    background="#f7f8fa",
    surface="#eceff3",
    panel="#dde3ea",
    dark=False,
)

HIGH_CONTRAST = Theme(
    name="dhash-high-contrast",
    primary="#00ffff",
    secondary="#ffffff",
    accent="#ffff00",
    warning="#ffff00",
    error="#ff5fff",
    success="#00ffff",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#1a1a1a",
    dark=True,
    luminosity_spread=0.05,
    text_alpha=1.0,
)

THEMES: dict[str, Theme] = {"dark": DARK, "light": LIGHT, "high-contrast": HIGH_CONTRAST}
ORDER = ("dark", "light", "high-contrast")


def theme_name(choice: str | None) -> str:
    """The registered Textual theme for a user's choice ('dark', 'light', 'high-contrast').

    Any other registered Textual theme name passes through; an unknown one falls back to dark.
    """
    if not choice:
        return DARK.name
    choice = choice.strip().lower()
    if choice in THEMES:
        return THEMES[choice].name
    for theme in THEMES.values():
        if theme.name == choice:
            return theme.name
    return choice


def next_theme(current: str) -> str:
    """The theme `t` switches to after `current`."""
    names = [THEMES[key].name for key in ORDER]
    if current not in names:
        return names[0]
    return names[(names.index(current) + 1) % len(names)]
