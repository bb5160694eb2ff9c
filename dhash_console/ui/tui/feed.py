"""Where a dashboard's events come from: the live journal, or a replay of a past rollout.

Each feed runs in a Textual worker (the live one on a thread). It never touches a widget:
it hands each batch to `deliver`, which posts a message to the screen (messages up, calls
down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from dhash_console.events import Event, RolloutFinished
from dhash_console.store.history import HistoryStore
from dhash_console.ui.tui.journal_reader import JournalReader

POLL_S = 0.1  # the journal is read ten times a second while a rollout runs
IDLE_POLL_S = 1.0  # after it ended: notifications may still be journaled
BATCH = 5_000
GONE_CHECK_S = 2.0


@dataclass(frozen=True)
class Batch:
    events: list[Event]
    now: float  # the instant the dashboard should show (wall clock, or the replay's clock)
    gone: bool = False  # the owning process died without finishing the rollout


Deliver = Callable[[Batch], None]


def follow_in_thread(
    reader: JournalReader,
    rollout_id: str,
    deliver: Deliver,
    cancelled: Callable[[], bool],
    clock: Callable[[], float] = time.time,
    after_seq: int = 0,
) -> None:
    """Deliver the rollout's new events as they are journaled, until `cancelled()`.

    Runs on a thread (the dashboard's thread worker): the sqlite read and the parsing stay off
    the UI's event loop, and `deliver` is called only when there is something to show (one
    message per batch), never for an empty poll.
    """
    last = after_seq
    finished = False
    next_gone_check = time.monotonic() + GONE_CHECK_S
    gone_said = False
    while not cancelled():
        events: list[Event] = []
        if reader.changed():
            events = reader.events(rollout_id, after_seq=last, limit=BATCH)
        gone = False
        if not finished and not gone_said and time.monotonic() >= next_gone_check:
            next_gone_check = time.monotonic() + GONE_CHECK_S
            gone = gone_said = reader.owner_gone(rollout_id)
        if events:
            last = events[-1].seq
            finished = finished or any(isinstance(e, RolloutFinished) for e in events)
        if events or gone:
            deliver(Batch(events, clock(), gone))
        if len(events) >= BATCH:
            continue  # catching up on a long journal: no pause between pages
        time.sleep(IDLE_POLL_S if finished else POLL_S)


async def replay(store: HistoryStore, rollout_id: str, deliver: Deliver, speed: float) -> None:
    """Deliver a past rollout's events at `speed` times the pace they happened (0: at once)."""
    events = await store.events(rollout_id)
    if not events:
        return
    if speed <= 0:
        deliver(Batch(events, events[-1].at))
        return
    first = events[0].at
    started = time.monotonic()
    index = 0
    while index < len(events):
        virtual_now = first + (time.monotonic() - started) * speed
        end = index
        while end < len(events) and events[end].at <= virtual_now:
            end += 1
        deliver(Batch(events[index:end], virtual_now))
        index = end
        await asyncio.sleep(POLL_S)
