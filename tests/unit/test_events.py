"""The bus: journal first, one order for all, and a slow subscriber never blocks the engine."""

from __future__ import annotations

import asyncio

from dhash_console.events import Event, EventBus, LogLine, event_from_json


async def test_every_event_is_journaled_before_any_subscriber_sees_it() -> None:
    journaled: list[int] = []
    bus: EventBus

    async def journal(event: Event) -> None:
        # The subscriber's queue must not hold this event yet.
        assert all(e.seq != event.seq for e in list(sub.queue._queue) if e)  # type: ignore[attr-defined]
        journaled.append(event.seq)

    bus = EventBus("r", journal)
    sub = bus.subscribe("face")
    for i in range(5):
        await bus.publish(LogLine(rollout_id="r", message=str(i)))
    bus.close()
    seen = [e.seq async for e in sub]
    assert journaled == seen == [1, 2, 3, 4, 5]


async def test_a_slow_subscriber_drops_counts_and_says_so_without_blocking() -> None:
    journaled: list[Event] = []

    async def journal(event: Event) -> None:
        journaled.append(event)

    bus = EventBus("r", journal)
    slow = bus.subscribe("slow", maxsize=10)
    fast = bus.subscribe("fast", maxsize=10_000)
    started = asyncio.get_running_loop().time()
    for i in range(100):
        await bus.publish(LogLine(rollout_id="r", message=str(i)))
    assert asyncio.get_running_loop().time() - started < 1  # never waited on "slow"
    assert slow.dropped > 0
    # Once it catches up, the drop is reported to everyone and journaled.
    while not slow.queue.empty():
        slow.queue.get_nowait()
    await bus.publish(LogLine(rollout_id="r", message="after"))
    notes = [e for e in journaled if e.type == "subscriber_dropped"]
    assert notes and notes[0].subscriber == "slow"  # type: ignore[union-attr]
    assert sum(n.dropped for n in notes) == slow.dropped  # type: ignore[union-attr]
    bus.close()
    assert "subscriber_dropped" in [e.type async for e in fast]


def test_events_round_trip_through_json() -> None:
    event = LogLine(rollout_id="r", seq=3, level="warning", message="[bold]x[/] \x1b[2J")
    assert event_from_json(event.model_dump_json()) == event
