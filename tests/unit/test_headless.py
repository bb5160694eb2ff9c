"""The headless face prints untrusted text literally and JSON lines as promised."""

from __future__ import annotations

import io
import json

from rich.console import Console

from dhash_console.events import GateSample, LogLine, RolloutFinished
from dhash_console.ui.headless import HeadlessRenderer

HOSTILE = ["[/foo]", "[bold red]ROLLBACK COMPLETE[/]", "\x1b]0;title\x07", "\x1b[2J"]


def render(*events: object, json_lines: bool = False) -> str:
    out = io.StringIO()
    console = Console(file=out, markup=False, highlight=False, force_terminal=False, width=200)
    renderer = HeadlessRenderer(console, json_lines=json_lines, stdout=out)
    for event in events:
        renderer.show(event)  # type: ignore[arg-type]
    return out.getvalue()


def test_markup_in_log_lines_is_printed_literally() -> None:
    text = render(*(LogLine(rollout_id="r", message=m) for m in HOSTILE[:2]))
    assert "[/foo]" in text
    assert "[bold red]ROLLBACK COMPLETE[/]" in text


def test_escape_sequences_never_reach_the_terminal() -> None:
    text = render(*(LogLine(rollout_id="r", message=f"a{m}b") for m in HOSTILE[2:]))
    assert "\x1b" not in text and "\x07" not in text
    assert "ab" in text


def test_gate_errors_are_untrusted_too() -> None:
    sample = GateSample(
        rollout_id="r",
        gate="health",
        index=1,
        result="fail",
        value=None,
        condition="status in [200]",
        error="x",
        detail="[bold red]ROLLBACK COMPLETE[/] \x1b[2J",
    )
    text = render(sample)
    assert "[bold red]ROLLBACK COMPLETE[/]" in text and "\x1b" not in text


def test_json_lines_one_event_per_line_then_summary() -> None:
    out = io.StringIO()
    renderer = HeadlessRenderer(Console(file=io.StringIO()), json_lines=True, stdout=out)
    renderer.show(LogLine(rollout_id="r", message=HOSTILE[1]))
    renderer.show(RolloutFinished(rollout_id="r", outcome="succeeded", exit_code=0, reason="ok"))
    renderer.summary({"outcome": "succeeded", "exit_code": 0, "gates": []})
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["type"] for line in lines] == ["log_line", "rollout_finished", "summary"]
    assert lines[0]["message"] == HOSTILE[1]
