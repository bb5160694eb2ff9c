"""The dashboard at a fixed size, passing, failing and rolling back (pytest-textual-snapshot).

Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`
and look at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.app import ConsoleApp
from tests.tui.helpers import HOSTILE, T0, Journal, wait_for

SIZE = (120, 40)
ROLLOUT = "r-20260101-000000-snap"


def _journal(state_dir: Path, write: Callable[[Journal], Awaitable[None]]) -> None:
    async def main() -> None:
        store = await HistoryStore.open(state_dir / "history.sqlite3")
        try:
            await write(Journal(store, ROLLOUT))
        finally:
            await store.close()

    asyncio.run(main())


async def _settled(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, ConsoleApp)

    def caught_up() -> bool:
        state = app.dashboard.state
        return state is not None and state.last_seq > 0

    await wait_for(pilot, caught_up)
    await pilot.pause(0.3)  # one log flush and one tick
    await pilot.wait_for_scheduled_animations()


async def _passing(journal: Journal) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    await journal.passing_rounds(t, 8)


async def _failing(journal: Journal) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    t = await journal.passing_rounds(t, 4)
    await journal.log(t, "error", HOSTILE[1], source="service")
    await journal.log(t, "error", HOSTILE[2] + " " + HOSTILE[3], source="service")
    await journal.failing_rounds(t, 2, first_index=4)


async def _rolling_back(journal: Journal) -> None:
    await journal.start()
    t = await journal.phases_to_monitor()
    t = await journal.passing_rounds(t, 4)
    t = await journal.failing_rounds(t, 3, first_index=4)
    reason = "3 consecutive samples above 0.01 (last 0.46)"
    await journal.verdict(t, "error_rate", "failed", reason, 0.46)
    await journal.rollback(t, f"gate error_rate failed: {reason}", finish=False)


def _snap(
    snap_compare: Any,
    config_path: Path,
    state_dir: Path,
    write: Callable[[Journal], Awaitable[None]],
) -> bool:
    _journal(state_dir, write)
    app = ConsoleApp(
        config_path=config_path, state_dir=state_dir, clock=lambda: T0 + 30.0, attach=ROLLOUT
    )
    return bool(snap_compare(app, terminal_size=SIZE, run_before=_settled))


def test_dashboard_passing(snap_compare: Any, config_path: Path, state_dir: Path) -> None:
    assert _snap(snap_compare, config_path, state_dir, _passing)


def test_dashboard_failing(snap_compare: Any, config_path: Path, state_dir: Path) -> None:
    assert _snap(snap_compare, config_path, state_dir, _failing)


def test_dashboard_rolling_back(snap_compare: Any, config_path: Path, state_dir: Path) -> None:
    assert _snap(snap_compare, config_path, state_dir, _rolling_back)
