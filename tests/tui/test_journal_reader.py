"""The live feed's reader: it reads the journal only when a commit may have landed."""

from __future__ import annotations

import subprocess
import sys

from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.journal_reader import JournalReader
from tests.tui.helpers import T0, Journal, history_path


async def test_reads_only_after_a_commit_and_sees_a_dead_owner(
    store: HistoryStore, journal: Journal, state_dir: object
) -> None:
    await journal.start()
    reader = JournalReader(history_path(store.path.parent))
    try:
        assert reader.changed()  # the first look always reads
        events = reader.events(journal.rollout_id, after_seq=0, limit=100)
        assert [e.seq for e in events] == [1]
        assert not reader.changed()  # nothing committed since: no query, no parsing
        await journal.log(T0 + 1, "info", "[bold red]ROLLBACK COMPLETE[/]")
        assert reader.changed()
        events = reader.events(journal.rollout_id, after_seq=1, limit=100)
        assert [getattr(e, "message", None) for e in events] == ["[bold red]ROLLBACK COMPLETE[/]"]
        assert not reader.owner_gone(journal.rollout_id)  # this test process owns it

        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"],
            capture_output=True,
            text=True,
            check=True,
        )
        other = Journal(store, "r-20260101-000200-dead")
        await other.start(pid=int(dead.stdout))
        assert reader.owner_gone(other.rollout_id)
    finally:
        reader.close()
