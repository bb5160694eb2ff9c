"""The control-request doorbell: a ring wakes the engine's poller; no listener is harmless."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from dhash_console.engine.control import Control, poll_requests
from dhash_console.store import doorbell
from dhash_console.store.doorbell import Doorbell, ring
from dhash_console.store.history import HistoryStore

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the abstract namespace is Linux's"
)


async def test_a_ring_wakes_the_listener_and_no_other(tmp_path: Path) -> None:
    journal = tmp_path / "history.sqlite3"
    bell, other = Doorbell(journal, "r-1"), Doorbell(journal, "r-2")
    try:
        assert bell.listening and other.listening
        ring(journal, "r-1")
        assert await bell.wait(30)
        assert not await other.wait(0.05)
        assert not await bell.wait(0.05)  # one ring, one wake
    finally:
        bell.close()
        other.close()


async def test_ringing_with_nobody_listening_is_harmless(tmp_path: Path) -> None:
    ring(tmp_path / "history.sqlite3", "r-gone")


async def test_a_taken_bell_falls_back_to_polling(tmp_path: Path) -> None:
    journal = tmp_path / "history.sqlite3"
    first, second = Doorbell(journal, "r-1"), Doorbell(journal, "r-1")
    try:
        assert first.listening and not second.listening
    finally:
        first.close()
        second.close()
    assert Doorbell(journal, "r-1").listening  # closed bells are free again


async def test_a_written_request_is_taken_on_the_ring_not_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With polls an hour apart, only the ring can deliver the request."""
    monkeypatch.setattr("dhash_console.engine.control.BELL_POLL_INTERVAL_S", 3600.0)
    async with await HistoryStore.open(tmp_path / "history.sqlite3") as engine_store:
        control = Control()
        poller = asyncio.create_task(poll_requests(engine_store, "r-1", control))
        try:
            await asyncio.sleep(0.2)  # the first read is done; the poller sleeps on its bell
            async with await HistoryStore.open(tmp_path / "history.sqlite3") as face_store:
                request_id = await face_store.request_control("r-1", "pause", "look", "bob")
            command = await asyncio.wait_for(control.get(), 30)
            assert (command.action, command.by, command.request_id) == ("pause", "bob", request_id)
        finally:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)


def test_the_bell_is_named_after_the_journal_and_the_rollout(tmp_path: Path) -> None:
    here = doorbell.address(tmp_path / "a" / ".." / "history.sqlite3", "r-1")
    assert here == doorbell.address(tmp_path / "history.sqlite3", "r-1")
    assert here != doorbell.address(tmp_path / "history.sqlite3", "r-2")
    assert here != doorbell.address(tmp_path / "other.sqlite3", "r-1")
