"""The dashboard attached to a rollout journaled into a real history database."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import DataTable, Log

from dhash_console.events import NotificationSent
from dhash_console.ui.tui.app import ConsoleApp
from dhash_console.ui.tui.screens.dashboard import DashboardScreen
from dhash_console.ui.tui.screens.gate_detail import GateDetailScreen
from dhash_console.ui.tui.widgets.log_pane import LogPane
from dhash_console.ui.tui.widgets.notices import NoticeList
from tests.tui.helpers import HOSTILE, T0, Journal, wait_for, wait_text


async def test_attaches_and_shows_phases_gates_and_logs(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    t = await journal.passing_rounds(t, 3)
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        board = app.dashboard
        await wait_for(
            pilot, lambda: board.state is not None and board.state.last_seq == journal.seq
        )
        table = app.query_one("#gate-table", DataTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="three gate rows")
        await wait_text(
            pilot,
            "local",
            "1.0.0 → 2.0.0-bad",
            "oncall@bastion via cli",
            "✔ pre-checks 0.4s",
            "● monitor",
            "✔ pass",
            "<= 0.01",
        )
        # Rows are updated in place: the same keyed rows after more samples.
        keys_before = list(table.rows)
        await journal.failing_rounds(t, 2, first_index=3)
        await wait_for(
            pilot, lambda: board.state is not None and board.state.last_seq == journal.seq
        )
        await wait_text(pilot, "✖ FAIL", "2/3")
        assert list(table.rows) == keys_before


async def test_untrusted_text_is_shown_literally(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    for text in HOSTILE:
        await journal.log(t, "error", text, source="service")
    await journal.sample(
        t + 2, "error_rate", 1, None, "inconclusive", error=HOSTILE[1] + HOSTILE[3]
    )
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one("#log", Log)
        await wait_for(pilot, lambda: log.line_count >= 4, what="hostile lines in the log")
        lines = "\n".join(log.lines)
        assert "[/foo]" in lines
        assert "[bold red]ROLLBACK COMPLETE[/]" in lines
        assert "owned title" in lines and "screen cleared?" in lines
        assert "\x1b" not in lines and "\x07" not in lines
        shown = await wait_text(pilot, "[bold red]ROLLBACK COMPLETE[/]", "[/foo]")
        assert "\x1b" not in shown
        await pilot.press("enter")  # the first gate row: open its detail
        await wait_for(pilot, lambda: isinstance(app.screen, GateDetailScreen))


async def test_gate_detail_says_why_it_rolled_back(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    t = await journal.passing_rounds(t, 2)
    t = await journal.failing_rounds(t, 3, first_index=2)
    reason = "3 consecutive samples above 0.01 (last 0.46)"
    await journal.verdict(t, "error_rate", "failed", reason, 0.46)
    await journal.rollback(t, f"gate error_rate failed: {reason}")
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        board = app.dashboard
        await wait_for(pilot, lambda: board.state is not None and board.state.finished is not None)
        table = app.query_one("#gate-table", DataTable)
        table.focus()
        table.move_cursor(row=table.get_row_index("error_rate"))
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, GateDetailScreen))
        detail = app.screen
        samples = detail.query_one("#gate-samples", DataTable)
        await wait_for(pilot, lambda: samples.row_count == 5, what="every sample of the gate")
        await wait_text(
            pilot, "Verdict: FAILED", "This gate ended the rollout (rolled_back)", "✖ FAIL"
        )
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_log_filter_and_follow(make_app: Callable[..., ConsoleApp], journal: Journal) -> None:
    await journal.start()
    await journal.log(T0, "info", "alpha one")
    await journal.log(T0, "warning", "beta two")
    await journal.log(T0, "info", "alpha three")
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one("#log", Log)
        await wait_for(pilot, lambda: log.line_count == 3)
        await pilot.press("slash")
        await pilot.press(*"alpha")
        await wait_for(pilot, lambda: log.line_count == 2, what="filtered to alpha")
        assert all("alpha" in line for line in log.lines)
        await pilot.press("escape")
        await wait_for(pilot, lambda: log.line_count == 3, what="filter cleared")
        pane = app.query_one(LogPane)
        assert pane.follow
        await pilot.press("f")
        assert not pane.follow
        await pilot.press("f")
        assert pane.follow


async def test_notifications_pane_says_each_once_and_failures_plainly(
    make_app: Callable[..., ConsoleApp], journal: Journal
) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    await journal.emit(
        NotificationSent(
            rollout_id=journal.rollout_id,
            at=t,
            channel="console",
            event_type="rollout_started",
            ok=True,
            detail="rollout_started: local: rollout 1.0.0 → 2.0.0-bad started",
        )
    )
    await journal.emit(
        NotificationSent(
            rollout_id=journal.rollout_id,
            at=t + 1,
            channel="slack",
            event_type="rollout_started",
            ok=False,
            detail="HTTP 500 [bold red]ROLLBACK COMPLETE[/]",
        )
    )
    app = make_app(attach=journal.rollout_id)
    async with app.run_test(size=(160, 40)) as pilot:
        notices = app.query_one(NoticeList)
        await wait_for(pilot, lambda: "slack" in str(notices.render()), what="both notices")
        text = str(notices.render())
        assert "✔ console sent: rollout_started (local: rollout 1.0.0 → 2.0.0-bad started)" in text
        assert text.count("rollout_started") == 2  # once per notice, not again in its detail
        assert "✖ slack FAILED: rollout_started (HTTP 500 [bold red]ROLLBACK COMPLETE[/])" in text
