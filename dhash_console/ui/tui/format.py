"""Small formatters shared by the screens: durations, times, values. Pure functions."""

from __future__ import annotations

import time


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, secs = divmod(round(seconds), 60)
        return f"{minutes}:{secs:02d}" if minutes else f"{secs}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def clock(epoch: float | None) -> str:
    """HH:MM:SS in UTC: the same on every operator's screen and in every snapshot."""
    if epoch is None:
        return "—"
    return time.strftime("%H:%M:%S", time.gmtime(epoch))


def stamp(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(epoch)) + "Z"


def value(number: float | None) -> str:
    return "—" if number is None else f"{number:.4g}"


SPARK_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int = 12) -> str:
    """Recent values as block characters, scaled between their own min and max."""
    points = values[-width:]
    if not points:
        return ""
    low, high = min(points), max(points)
    span = high - low
    if span <= 0:
        return SPARK_BARS[0] * len(points)
    top = len(SPARK_BARS) - 1
    return "".join(SPARK_BARS[round((v - low) / span * top)] for v in points)
