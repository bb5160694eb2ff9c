"""The Launch form's dry-run box reads in words; a restore from Backups goes through the panel."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Checkbox, DataTable

from dhash_console.ops.backup import create_backup_sync
from dhash_console.store.history import RolloutRecord
from dhash_console.ui.tui.app import ConsoleApp
from dhash_console.ui.tui.backend import LaunchFailed
from dhash_console.ui.tui.engine_process import EngineProcess, restore_argv
from dhash_console.ui.tui.screens.backups import BackupsScreen
from dhash_console.ui.tui.screens.confirm_rollback import ConfirmRollbackScreen
from dhash_console.ui.tui.screens.launch import LaunchScreen
from tests.tui.helpers import wait_for, wait_text


async def test_dry_run_state_reads_in_words_and_space_or_enter_toggle_it(
    make_app: Callable[..., ConsoleApp],
) -> None:
    app = make_app(offer_attach=False)
    async with app.run_test(size=(120, 45)) as pilot:
        await wait_for(pilot, lambda: app.ready)
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, LaunchScreen))
        await wait_text(pilot, "dry run: OFF — this rollout changes local")
        box = app.screen.query_one("#dry-run", Checkbox)
        box.focus()
        await pilot.press("space")
        assert box.value
        text = await wait_text(pilot, "dry run: ON — nothing will change")
        assert "dry run: OFF" not in text
        await pilot.press("enter")
        assert not box.value
        await wait_text(pilot, "dry run: OFF — this rollout changes local")
        await pilot.press("space")
        app.screen.query_one("#version").focus()
        await pilot.press(*"1.1.0")
        request = app.screen._request()[1]  # what ctrl+s would start
        assert request is not None and request.dry_run and request.version == "1.1.0"


async def test_restore_from_a_backup_goes_through_the_confirm_panel(
    make_app: Callable[..., ConsoleApp], config_path: Path, state_dir: Path
) -> None:
    backups_dir = Path(json.loads(config_path.read_text())["backups"]["directory"])
    db = config_path.parent / "source.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE images (id INTEGER PRIMARY KEY, hash TEXT)")
        conn.execute("INSERT INTO images (hash) VALUES ('abc')")
    conn.close()
    backup = create_backup_sync(db, backups_dir, "local", service_version="1.0.0")

    app = make_app(offer_attach=False)
    asked: list[tuple[str, Path, str]] = []
    async with app.run_test(size=(120, 45)) as pilot:
        await wait_for(pilot, lambda: app.ready)

        async def restore(env: str, path: Path, reason: str) -> tuple[EngineProcess, RolloutRecord]:
            # Stands in for starting the engine: the argv is what would run.
            asked.append((env, path, reason))
            raise LaunchFailed("recorded by the test, no engine started")

        app.backend.restore = restore  # type: ignore[method-assign,assignment]
        await pilot.press("b")
        await wait_for(pilot, lambda: isinstance(app.screen, BackupsScreen))
        table = app.screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="the backup listed")
        await wait_text(pilot, backup.path.name[:20], "✔ verified")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmRollbackScreen))
        panel = app.screen
        text = await wait_text(
            pilot, "Restore from backup: local", "RESTORED from backup", backup.sha256[:16]
        )
        assert "✔ verified (the restore verifies it again" in text
        assert "return to:  1.0.0" in text
        assert app.focused is not None and app.focused.id == "cancel"
        # A restore always wants the environment's name typed, even where rollbacks do not.
        await wait_text(pilot, "Type the environment's name (local)")
        panel.query_one("#reason").focus()
        await pilot.press(*"bad data since noon", "tab")
        await pilot.press(*"loc")
        assert panel.query_one("#confirm").disabled
        await pilot.press(*"al")
        assert not panel.query_one("#confirm").disabled
        await pilot.click("#confirm")
        await wait_for(pilot, lambda: bool(asked), what="the restore requested")
    env, path, reason = asked[0]
    assert (env, path, reason) == ("local", backup.path, "bad data since noon")
    argv = restore_argv(config_path, state_dir, env, path, reason)
    assert argv[argv.index("rollback") :] == [
        "rollback",
        "--env",
        "local",
        "--reason",
        "bad data since noon",
        "--backup",
        str(backup.path),
        "--yes",
    ]
