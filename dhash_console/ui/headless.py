"""The --no-ui face: readable lines, or one JSON object per event and a final summary.

Never imports Textual. Untrusted text (log lines, reasons, errors from services) is
cleaned of escape sequences and printed through Text objects, never as markup.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable
from typing import Any, TextIO

from rich.console import Console
from rich.text import Text

from dhash_console.events import (
    ControlAcknowledged,
    Event,
    GateSample,
    GateVerdict,
    LockAcquired,
    LogLine,
    MonitorPaused,
    MonitorResumed,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
    SubscriberDropped,
)
from dhash_console.textsafe import clean

# Status is said in words and symbols, never by colour alone.
RESULT_MARK = {
    "pass": ("✔ pass", "green"),
    "fail": ("✖ FAIL", "bold red"),
    "inconclusive": ("? inconclusive", "yellow"),
}
VERDICT_MARK = {
    "passed": ("✔ PASSED", "green"),
    "failed": ("✖ FAILED", "bold red"),
    "inconclusive": ("? INCONCLUSIVE", "yellow"),
}
LEVEL_STYLE = {"debug": "dim", "info": "", "warning": "yellow", "error": "red"}


def _value(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


class HeadlessRenderer:
    """Subscribes to the bus and prints each event as it comes."""

    name = "headless"

    def __init__(
        self,
        console: Console,
        *,
        json_lines: bool = False,
        stdout: TextIO | None = None,
        show_samples: bool = True,
    ) -> None:
        self.console = console
        self.json_lines = json_lines
        self.stdout = stdout
        self.show_samples = show_samples

    async def run(self, events: AsyncIterable[Event]) -> None:
        async for event in events:
            self.show(event)

    def show(self, event: Event) -> None:
        if self.json_lines:
            self._json(event.model_dump(mode="json"))
            return
        line = self.format(event)
        if line is not None:
            stamp = time.strftime("%H:%M:%S", time.localtime(event.at))
            self.console.print(Text.assemble((stamp, "dim"), "  ", line))

    def summary(self, summary: dict[str, Any]) -> None:
        if self.json_lines:
            self._json({"type": "summary", **summary})
            return
        self.console.print(format_summary(summary))

    def _json(self, obj: dict[str, Any]) -> None:
        assert self.stdout is not None
        self.stdout.write(json.dumps(obj, separators=(",", ":"), default=str) + "\n")
        self.stdout.flush()

    def format(self, event: Event) -> Text | None:
        if isinstance(event, RolloutStarted):
            kind = "dry run" if event.dry_run else "rollout"
            return Text.assemble(
                (f"{kind} {event.rollout_id}", "bold"),
                f"  {event.env}: {event.from_version or '(none)'} → {event.to_version}"
                f"  by {clean(event.started_by)} ({event.via})"
                f"  window {event.duration_s / 60:g} min every {event.interval_s:g} s"
                f"  gates: {', '.join(event.gates)}",
            )
        if isinstance(event, PhaseStarted):
            detail = f"  {clean(event.detail)}" if event.detail else ""
            return Text.assemble(("▶ ", "cyan"), (event.phase, "bold cyan"), detail)
        if isinstance(event, PhaseFinished):
            mark, style = {
                "ok": ("✔", "green"),
                "failed": ("✖", "bold red"),
                "skipped": ("–", "dim"),
                "interrupted": ("■", "yellow"),
                "stopped": ("■", "yellow"),
            }[event.status]
            detail = f"  {clean(event.detail)}" if event.detail else ""
            return Text.assemble(
                (f"{mark} {event.phase} {event.status}", style),
                f" ({event.duration_s:.1f} s)",
                detail,
            )
        if isinstance(event, GateSample):
            if not self.show_samples:
                return None
            mark, style = RESULT_MARK[event.result]
            limit = (
                f"fails {event.consecutive_fails}/{event.failure_limit}"
                if event.result != "inconclusive"
                else f"errors {event.consecutive_errors}/{event.consecutive_error_limit}"
            )
            return Text.assemble(
                f"  gate {event.gate:<16} ",
                (f"{mark:<15}", style),
                f" {_value(event.value):>9}  ({event.condition})  {limit}  ",
                (clean(event.detail), "dim"),
            )
        if isinstance(event, GateVerdict):
            mark, style = VERDICT_MARK[event.verdict]
            return Text.assemble(
                f"gate {event.gate} ",
                (mark, style),
                f"  value {_value(event.value)} ({event.condition}), {event.samples} samples, "
                f"{event.fails} fails, {event.inconclusive} inconclusive: {clean(event.reason)}",
            )
        if isinstance(event, LogLine):
            return Text.assemble(
                (f"  [{event.source}] ", "dim"), (clean(event.message), LEVEL_STYLE[event.level])
            )
        if isinstance(event, RollbackRequested):
            how = "automatic" if event.automatic else f"manual, by {clean(event.by)}"
            return Text.assemble(
                ("⟲ rollback requested", "bold yellow"), f" ({how}): {clean(event.reason)}"
            )
        if isinstance(event, RollbackStarted):
            backup = f", restoring {event.backup}" if event.backup else ""
            return Text.assemble(
                ("⟲ rollback started", "bold yellow"),
                f": {event.from_version} → {event.to_version}{backup}",
            )
        if isinstance(event, RollbackFinished):
            style = "green" if event.ok and event.healthy else "bold red"
            return Text.assemble((f"⟲ rollback finished: {clean(event.detail)}", style))
        if isinstance(event, MonitorPaused):
            return Text.assemble(("⏸ monitoring paused", "yellow"), f": {clean(event.reason)}")
        if isinstance(event, MonitorResumed):
            return Text(f"⏵ monitoring resumed by {clean(event.by)}", style="green")
        if isinstance(event, ControlAcknowledged):
            return Text(f"control: {event.action} from {clean(event.by)}: {event.result}")
        if isinstance(event, NotificationSent):
            if event.ok and event.channel == "console":
                return None  # the console channel printed the line itself
            state = "sent" if event.ok else "NOT sent"
            return Text(
                f"notification {event.event_type} via {event.channel} {state}"
                + (f": {clean(event.detail)}" if event.detail and not event.ok else ""),
                style="dim" if event.ok else "yellow",
            )
        if isinstance(event, SubscriberDropped):
            return Text(
                f"{event.subscriber} fell behind: {event.dropped} events not shown "
                "(all are journaled)",
                style="yellow",
            )
        if isinstance(event, LockAcquired):
            return Text(f"lock on {event.env} taken", style="dim")
        if isinstance(event, RolloutFinished):
            return None  # the summary says it
        return None


def format_summary(summary: dict[str, Any]) -> Text:
    outcome = str(summary.get("outcome", "?"))
    style = "bold green" if outcome == "succeeded" else "bold red"
    text = Text()
    text.append("\n── summary ──\n", style="bold")
    text.append(f"{outcome.upper().replace('_', ' ')}", style=style)
    text.append(f"  (exit {summary.get('exit_code')})  {clean(str(summary.get('reason', '')))}\n")
    text.append(
        f"rollout {summary.get('rollout_id')}  {summary.get('env')}: "
        f"{summary.get('from_version') or '(none)'} → {summary.get('to_version')}"
        f"  in {float(summary.get('duration_s') or 0):.1f} s\n"
    )
    for gate in summary.get("gates", []):
        mark, gate_style = VERDICT_MARK.get(gate["verdict"], ("?", ""))
        text.append(f"  {gate['gate']:<16} ")
        text.append(f"{mark:<15}", style=gate_style)
        text.append(
            f" last {_value(gate.get('value'))} ({gate['condition']}), "
            f"{gate['samples']} samples, {gate['fails']} fails, "
            f"{gate['inconclusive']} inconclusive"
        )
        if gate["verdict"] != "passed":
            text.append(f": {clean(str(gate.get('reason', '')))}")
        text.append("\n")
    plan = summary.get("rollback_plan")
    if plan:
        text.append(f"rollback plan: {clean(str(plan))}\n", style="dim")
    return text
