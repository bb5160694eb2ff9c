"""The rollout being watched: header, phases, window, gates, log and notifications.

A feed worker reads the journal and posts `EventsArrived`; this screen folds the events
into a RolloutState and calls down into the widgets, redrawing only what changed.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, ClassVar, cast

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker, get_current_worker

from dhash_console.store.history import ControlAction
from dhash_console.textsafe import clean
from dhash_console.ui.tui import feed
from dhash_console.ui.tui.format import duration
from dhash_console.ui.tui.journal_reader import JournalReader
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.state import Changes, RolloutState
from dhash_console.ui.tui.widgets.footer import ConsoleFooter
from dhash_console.ui.tui.widgets.gate_table import GateTable
from dhash_console.ui.tui.widgets.log_pane import LogPane
from dhash_console.ui.tui.widgets.notices import NoticeList
from dhash_console.ui.tui.widgets.phase_stepper import PhaseStepper
from dhash_console.ui.tui.widgets.rollout_header import RolloutHeader
from dhash_console.ui.tui.widgets.window_progress import WindowProgress

if TYPE_CHECKING:
    from dhash_console.ui.tui.app import ConsoleApp

TICK_S = 0.5  # the window's clock and the running phase's duration move on their own
# The clocks (window elapsed/ETA, the running phase's duration) show whole seconds. They are
# redrawn along with each batch of events when one arrives, and by the tick only when no
# batch drew them for CLOCK_S: with gates sampled every second that is one frame a second,
# not two.
CLOCK_S = 1.0
CLOCK_WITH_BATCH_S = 0.5


class DashboardScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "app.rollback", "Roll back"),
        Binding("p", "app.pause", "Pause/resume"),
        Binding("x", "app.abort", "Abort", show=False),
        Binding("slash", "filter_log", "Filter log"),
        Binding("f", "follow", "Follow"),
    ]

    class EventsArrived(Message):
        def __init__(self, batch: feed.Batch, generation: int) -> None:
            super().__init__()
            self.batch = batch
            self.generation = generation

    def __init__(self) -> None:
        super().__init__(id="dashboard")
        self.state: RolloutState | None = None
        self.replay_speed: float | None = None  # None: live
        self.now = 0.0
        self._generation = 0  # batches of an earlier feed are dropped on arrival
        self._feed: Worker[None] | None = None
        self._requests: dict[int, tuple[str, float]] = {}  # request id -> action, sent at
        self._clocks_drawn_at = 0.0  # monotonic
        self._progress: ConfirmRollbackScreen | None = None  # a confirmed rollback's panel
        self._note = ""

    @property
    def console_app(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    def compose(self) -> ComposeResult:
        yield RolloutHeader(id="rollout-header")
        yield PhaseStepper(id="phase-stepper")
        yield WindowProgress(id="window")
        yield GateTable(id="gate-table")
        with Horizontal(id="dashboard-lower"):
            yield LogPane(id="log-pane")
            yield NoticeList(id="notices")
        yield Static("", id="empty-state", markup=False)
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.now = self.console_app.clock()
        self.set_interval(TICK_S, self._tick)
        self._redraw_all()

    # -- what is watched --------------------------------------------------------------------------

    def watch_rollout(self, rollout_id: str, replay_speed: float | None = None) -> None:
        """Attach to a rollout (live), or replay a past one at `replay_speed`."""
        if self._feed is not None:
            self._feed.cancel()
        self._generation += 1
        self.state = RolloutState(rollout_id)
        self.replay_speed = replay_speed
        self._requests.clear()
        self._note = f"replay ×{replay_speed:g}" if replay_speed is not None else ""
        self.query_one(LogPane).clear()
        self.query_one(NoticeList).clear()
        self.query_one(GateTable).clear()
        self._redraw_all()
        self._feed = self._run_feed(rollout_id, replay_speed, self._generation)

    @property
    def rollout_id(self) -> str | None:
        return self.state.rollout_id if self.state is not None else None

    @property
    def is_live(self) -> bool:
        return self.state is not None and self.replay_speed is None

    def _run_feed(self, rollout_id: str, speed: float | None, generation: int) -> Worker[None]:
        if speed is None:
            return self._follow(rollout_id, generation)
        return self._replay(rollout_id, speed, generation)

    @work(exclusive=True, group="feed", exit_on_error=False, thread=True)
    def _follow(self, rollout_id: str, generation: int) -> None:
        # A thread: the sqlite read and the event parsing never block a key press.
        worker = get_current_worker()
        reader = JournalReader(self.console_app.backend.store.path)

        def deliver(batch: feed.Batch) -> None:
            self.post_message(self.EventsArrived(batch, generation))  # thread-safe

        try:
            feed.follow_in_thread(
                reader,
                rollout_id,
                deliver,
                lambda: worker.is_cancelled,
                clock=self.console_app.clock,
            )
        finally:
            reader.close()

    @work(exclusive=True, group="feed", exit_on_error=False)
    async def _replay(self, rollout_id: str, speed: float, generation: int) -> None:
        def deliver(batch: feed.Batch) -> None:
            self.post_message(self.EventsArrived(batch, generation))

        await feed.replay(self.console_app.backend.store, rollout_id, deliver, speed)

    def on_dashboard_screen_events_arrived(self, message: EventsArrived) -> None:
        if message.generation != self._generation or self.state is None:
            return
        batch = message.batch
        self.now = batch.now
        changes = self.state.apply_all(batch.events)
        if self.is_live and time.monotonic() - self._clocks_drawn_at >= CLOCK_WITH_BATCH_S:
            changes.window = changes.phases = True  # in the same frame as the batch
        if batch.gone:
            self._note = "the engine process is gone: interrupted (monitor --resume / rollback)"
            changes.header = True
        self._acknowledge(changes)
        self._redraw(changes)
        panel = self._progress_panel()
        if panel is not None and (changes.header or changes.phases):
            panel.show_state(self.state)

    def _progress_panel(self) -> ConfirmRollbackScreen | None:
        """The confirm panel showing a rollback's progress, while it is open."""
        panel = self._progress
        if panel is not None and panel not in self.app.screen_stack:
            self._progress = panel = None
        return panel

    def _acknowledge(self, changes: Changes) -> None:
        for ack in changes.acks:
            sent = self._requests.pop(ack.request_id, None)
            if sent is None:
                continue
            took = (time.monotonic() - sent[1]) * 1000
            panel = self._progress_panel()
            if panel is not None and sent[0] == "rollback":
                panel.acknowledged(ack, took)
            self.notify(
                f"engine took request #{ack.request_id} ({ack.action}): {ack.result} "
                f"· {took:.0f} ms",
                title="acknowledged",
            )
            self._note = ""
            changes.header = True

    # -- drawing (calls down) ------------------------------------------------------------------

    def _tick(self) -> None:
        if self.state is None or self.replay_speed is not None or not self.state.active:
            return
        if time.monotonic() - self._clocks_drawn_at >= CLOCK_S:
            self.now = self.console_app.clock()
            self._redraw(Changes(window=True, phases=True))

    def _redraw_all(self) -> None:
        changes = Changes(header=True, phases=True, window=True)
        if self.state is not None:
            changes.gates = set(self.state.gates)
        self._redraw(changes)

    def _redraw(self, changes: Changes) -> None:
        state = self.state
        empty = self.query_one("#empty-state", Static)
        if empty.display != (state is None):
            empty.display = state is None
        if state is None and changes.header:
            empty.update(
                "No rollout attached.\n\n"
                "  n  launch a rollout (its own engine process; the console only watches)\n"
                "  a  attach to a rollout in progress\n"
                "  h  history: past rollouts, their gates and logs, replay\n"
                "  b  backups   m  migrations   ?  help   ctrl+p  every action"
            )
        if changes.header:
            self.query_one(RolloutHeader).show_state(state, self._note)
        if changes.phases or changes.window:
            self._clocks_drawn_at = time.monotonic()
        if changes.phases:
            self.query_one(PhaseStepper).show_state(state, self.now)
        if changes.window:
            self.query_one(WindowProgress).show_state(state, self.now)
        if changes.gates and state is not None:
            self.query_one(GateTable).show_gates(
                row for name, row in state.gates.items() if name in changes.gates
            )
        if changes.logs:
            self.query_one(LogPane).add(changes.logs)
        if changes.notices:
            self.query_one(NoticeList).add(changes.notices)

    def restyle(self) -> None:
        """After a theme switch: colours are baked into the rows, so draw them again."""
        self._redraw_all()
        self.query_one(NoticeList).add([])

    # -- steering (the app's actions call these) -----------------------------------------------

    def send_control(
        self, action: ControlAction, reason: str, panel: ConfirmRollbackScreen | None = None
    ) -> None:
        """Write a control request; `panel`, if given, is told how it goes."""
        if self.state is None:
            return
        if panel is not None:
            self._progress = panel
        self._note = f"{action} requested, waiting for the engine…"
        self.query_one(RolloutHeader).show_state(self.state, self._note)
        self._send(self.state.rollout_id, action, reason, time.monotonic())

    @work(group="control", exit_on_error=False)
    async def _send(
        self, rollout_id: str, action: ControlAction, reason: str, asked: float
    ) -> None:
        sent = time.monotonic()
        try:
            request_id = await self.console_app.backend.request_control(rollout_id, action, reason)
        except Exception as exc:  # a locked or broken journal: say so where the operator looks
            panel = self._progress_panel()
            if panel is not None and action == "rollback":
                panel.request_failed(clean(str(exc))[:200])
            self.notify(f"{action} request failed: {clean(str(exc))[:200]}", severity="error")
            return
        self._requests[request_id] = (action, asked)
        took = duration(time.monotonic() - sent)
        panel = self._progress_panel()
        if panel is not None and action == "rollback":
            panel.request_sent(request_id, (time.monotonic() - asked) * 1000)
        self.notify(f"request #{request_id} ({action}) written to the journal in {took}")

    def action_filter_log(self) -> None:
        self.query_one(LogPane).open_filter()

    def action_follow(self) -> None:
        on = self.query_one(LogPane).toggle_follow()
        self.notify("log follows new lines" if on else "log follow off: it stays where you are")

    def on_log_pane_filter_closed(self) -> None:
        self.query_one(GateTable).focus()

    def on_gate_table_gate_chosen(self, message: GateTable.GateChosen) -> None:
        self.console_app.open_gate(message.gate)
