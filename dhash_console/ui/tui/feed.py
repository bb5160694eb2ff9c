"""Where a dashboard's events come from: the live journal, or a replay of a past rollout.

Each feed is a coroutine run in a Textual worker. It never touches a widget: it hands each
batch to `deliver`, which posts a message to the screen (messages up, calls down).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from dhash_console.events import Event, RolloutFinished
from dhash_console.store.history import HistoryStore

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


async def follow(
    store: HistoryStore,
    rollout_id: str,
    deliver: Deliver,
    clock: Callable[[], float] = time.time,
    after_seq: int = 0,
) -> None:
    """Deliver the rollout's events as they are journaled, until cancelled."""
    last = after_seq
    finished = False
    next_gone_check = time.monotonic() + GONE_CHECK_S
    gone_said = False
    while True:
        events = await store.events(rollout_id, after_seq=last, limit=BATCH)
        gone = False
        if not finished and time.monotonic() >= next_gone_check:
            next_gone_check = time.monotonic() + GONE_CHECK_S
            record = await store.get_rollout(rollout_id)
            gone = record is not None and record.effective_status == "interrupted"
            gone = gone and not gone_said
            gone_said = gone_said or gone
        if events:
            last = events[-1].seq
            finished = finished or any(isinstance(e, RolloutFinished) for e in events)
        deliver(Batch(events, clock(), gone))
        if len(events) >= BATCH:
            continue  # catching up on a long journal: no pause between pages
        await asyncio.sleep(IDLE_POLL_S if finished else POLL_S)


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
