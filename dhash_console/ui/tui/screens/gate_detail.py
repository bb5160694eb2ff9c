"""One gate of one rollout: its condition, every sample with value and verdict, and why.

"Why did it roll back?" is answered here, in words, without reading the logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Static

from dhash_console.events import GateSample, GateVerdict, RolloutFinished
from dhash_console.textsafe import clean
from dhash_console.ui.tui.format import clock, value
from dhash_console.ui.tui.palette import mark, status_style
from dhash_console.ui.tui.widgets.footer import ConsoleFooter

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp


def explain(
    gate: str,
    samples: list[GateSample],
    verdicts: list[GateVerdict],
    finished: RolloutFinished | None,
) -> list[str]:
    """The gate's story in sentences: its verdict, its streak, and its part in the ending."""
    lines: list[str] = []
    verdict = verdicts[-1] if verdicts else None
    if verdict is not None:
        word = {"passed": "PASSED", "failed": "FAILED", "inconclusive": "INCONCLUSIVE"}[
            verdict.verdict
        ]
        lines.append(f"Verdict: {word} — {clean(verdict.reason)}")
        lines.append(
            f"{verdict.samples} samples: {verdict.fails} failed, "
            f"{verdict.inconclusive} inconclusive"
            + (" · critical gate: one failure rolls back" if verdict.critical else "")
        )
    elif samples:
        last = samples[-1]
        lines.append(
            f"No verdict yet. Last sample #{last.index} {last.result}: "
            f"{clean(last.detail) or value(last.value)}"
        )
        lines.append(
            f"Consecutive fails {last.consecutive_fails} of {last.failure_limit} allowed before "
            f"it fails; consecutive errors {last.consecutive_errors} of "
            f"{last.consecutive_error_limit} before it is inconclusive."
        )
    else:
        lines.append("No sample yet: the monitoring window has not evaluated this gate.")
    if finished is not None:
        reason = clean(finished.reason)
        if f"gate {gate} " in reason or f"gate {gate}:" in reason:
            lines.append(f"This gate ended the rollout ({finished.outcome}): {reason}")
        else:
            lines.append(f"The rollout ended {finished.outcome}: {reason}")
    return lines


class GateDetailScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("r", "app.rollback", "Roll back"),
    ]

    def __init__(self, rollout_id: str, gate: str) -> None:
        super().__init__()
        self.rollout_id = rollout_id
        self.gate = gate

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("", id="gate-title", markup=False)
            yield Static("", id="gate-why", markup=False, classes="plan")
            yield DataTable(id="gate-samples", cursor_type="row")
        yield ConsoleFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("#", "time (UTC)", "result", "value", "fails/limit", "why"):
            table.add_column(label)
        self.load()

    @work(exclusive=True, exit_on_error=False)
    async def load(self) -> None:
        store = cast("ConsoleApp", self.app).backend.store
        samples = await store.gate_samples(self.rollout_id, self.gate)
        verdicts = [v for v in await store.gate_verdicts(self.rollout_id) if v.gate == self.gate]
        ends = await store.events(self.rollout_id, types=["rollout_finished"])
        finished = next((e for e in ends if isinstance(e, RolloutFinished)), None)
        self._show(samples, verdicts, finished)

    def _show(
        self,
        samples: list[GateSample],
        verdicts: list[GateVerdict],
        finished: RolloutFinished | None,
    ) -> None:
        condition = (
            samples[-1].condition if samples else (verdicts[-1].condition if verdicts else "")
        )
        title = Text(f"gate {clean(self.gate)}", style="bold")
        title.append(f"   condition: {clean(condition)}   rollout {self.rollout_id}")
        self.query_one("#gate-title", Static).update(title)
        why = explain(self.gate, samples, verdicts, finished)
        status = (
            verdicts[-1].verdict if verdicts else (samples[-1].result if samples else "pending")
        )
        self.query_one("#gate-why", Static).update(
            Text("\n".join(why), style=status_style(self.app, status))
        )
        table = self.query_one(DataTable)
        table.clear()
        for sample in samples:
            symbol, word, _ = mark(sample.result)
            reason = clean(sample.error or sample.detail or "")
            table.add_row(
                str(sample.index),
                clock(sample.at),
                Text(f"{symbol} {word}", style=status_style(self.app, sample.result)),
                value(sample.value),
                f"{sample.consecutive_fails}/{sample.failure_limit}",
                Text(reason),
            )
        if samples:
            table.move_cursor(row=len(samples) - 1)
