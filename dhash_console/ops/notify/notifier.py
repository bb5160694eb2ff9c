"""The notifier: reads the rollout's events, says why in each message, never holds anyone up.

`run` folds each event into what it knows and puts the resulting sends on one bounded
queue per channel; it never waits on a channel. A worker per channel delivers, paced
and retried, and every outcome becomes a `NotificationSent` handed to `report` (a failed
one is the dead-letter record in the history). `drain` waits, bounded, for what is
queued, then records whatever is still undelivered as not sent and stops the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from dhash_console.config.notifications import NotificationsConfig
from dhash_console.events import Event, NotificationSent
from dhash_console.ops.notify.build import build_channels
from dhash_console.ops.notify.channel import Channel
from dhash_console.ops.notify.facts import RolloutFacts, build_notification
from dhash_console.ops.notify.message import Item
from dhash_console.ops.notify.templates import Templates
from dhash_console.redact import redact

log = logging.getLogger("dhash_console.notify")

Report = Callable[[NotificationSent], Awaitable[None]]
DECISION_GRACE_S = 2.0  # how long a failed gate's message waits to say what was done


@dataclass
class ChannelStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    abandoned: int = 0


@dataclass
class DeliveryReport:
    """What `drain` found: per channel, and whether it had to give up waiting."""

    channels: dict[str, ChannelStats] = field(default_factory=dict)
    timed_out: bool = False

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.channels.values())

    @property
    def failed(self) -> int:
        return sum(s.failed + s.dropped + s.abandoned for s in self.channels.values())


class _Lane:
    """One channel's queue and worker."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.queue: asyncio.Queue[Item] = asyncio.Queue(channel.queue_size)
        self.stats = ChannelStats()
        self.current: Item | None = None
        self.task: asyncio.Task[None] | None = None


class Notifier:
    def __init__(
        self,
        config: NotificationsConfig,
        *,
        env: str,
        environ: Mapping[str, str],
        report: Report | None = None,
        clock: Callable[[], float] = time.monotonic,
        console: Callable[[str], None] | None = None,
        decision_grace: float = DECISION_GRACE_S,
    ) -> None:
        self.env = env
        self._on = list(config.on)
        self._templates = Templates(config.templates)
        self._facts = RolloutFacts(env)
        built = build_channels(config, environ, console=console, clock=clock)
        self.not_configured = built.not_configured
        self._secrets = built.secrets
        self._lanes = [_Lane(channel) for channel in built.active]
        self._report = report
        self._reports: asyncio.Queue[NotificationSent] = asyncio.Queue()
        self._reporter: asyncio.Task[None] | None = None
        self._grace = decision_grace
        self._grace_timer: asyncio.TimerHandle | None = None
        self._rollout_id = ""
        self._closed = False

    def channels(self) -> list[str]:
        """The channels that will be sent to (configured, with their secrets set)."""
        return [lane.channel.name for lane in self._lanes]

    async def run(self, events: AsyncIterable[Event]) -> None:
        """Consume the bus's events until it closes. Never raises, never waits on a channel."""
        try:
            async for event in events:
                self.handle(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "notifier stopped reading events: %s",
                redact(f"{type(exc).__name__}: {exc}", self._secrets),
            )
        finally:
            self._flush_gates()

    def handle(self, event: Event) -> None:
        """Fold one event in and queue what it calls for; returns at once."""
        if isinstance(event, NotificationSent) or self._closed:
            return
        self._rollout_id = event.rollout_id
        try:
            kind = self._facts.observe(event)
        except Exception as exc:  # a surprising event must not end the notifier
            log.warning("notifier could not read a %s event: %s", event.type, exc)
            kind = None
        note = None
        if kind is not None and kind != "gate_failed":
            note = build_notification(kind, self._facts.values, self._templates)
        # Held-back failed gates go out once the console has decided, before what follows.
        if self._facts.pending_gates and self._facts.decided():
            self._flush_gates()
        self._enqueue(Item(event, note))
        if kind == "gate_failed":
            self._arm_grace_timer()

    def _arm_grace_timer(self) -> None:
        if self._grace_timer is None:
            loop = asyncio.get_running_loop()
            self._grace_timer = loop.call_later(self._grace, self._flush_gates)

    def _flush_gates(self) -> None:
        if self._grace_timer is not None:
            self._grace_timer.cancel()
            self._grace_timer = None
        for values in self._facts.take_pending_gates():
            note = build_notification("gate_failed", values, self._templates)
            self._enqueue(Item(None, note))

    def _enqueue(self, item: Item) -> None:
        for lane in self._lanes:
            if not lane.channel.wants(item, self.env, self._on):
                continue
            self._start(lane)
            try:
                lane.queue.put_nowait(item)
            except asyncio.QueueFull:
                lane.stats.dropped += 1
                self._record(
                    lane,
                    item,
                    ok=False,
                    detail=f"dropped: {lane.channel.name} queue full "
                    f"({lane.queue.maxsize} waiting); message: {item.summary()}",
                )

    def _start(self, lane: _Lane) -> None:
        if lane.task is None:
            lane.task = asyncio.create_task(self._work(lane), name=f"notify-{lane.channel.name}")
        if self._reporter is None and self._report is not None:
            self._reporter = asyncio.create_task(self._send_reports(), name="notify-report")

    async def _work(self, lane: _Lane) -> None:
        while True:
            item = await lane.queue.get()
            lane.current = item
            try:
                outcome = await lane.channel.deliver(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # deliver never raises; this is a last guard
                outcome_ok, detail = False, f"{type(exc).__name__}: {exc}"
            else:
                outcome_ok, detail = outcome.ok, outcome.detail
            finally:
                lane.current = None
                lane.queue.task_done()
            if outcome_ok:
                lane.stats.sent += 1
                if lane.channel.reports_success and item.notification is not None:
                    self._record(lane, item, ok=True, detail=detail)
            else:
                lane.stats.failed += 1
                log.warning(
                    "notification via %s not sent: %s",
                    lane.channel.name,
                    redact(detail, self._secrets),
                )
                self._record(lane, item, ok=False, detail=detail)

    def _record(self, lane: _Lane, item: Item, *, ok: bool, detail: str) -> None:
        if self._report is None:
            return
        rollout_id = item.event.rollout_id if item.event else self._rollout_id
        self._reports.put_nowait(
            NotificationSent(
                rollout_id=rollout_id or self._rollout_id,
                channel=lane.channel.name,
                event_type=item.key,
                ok=ok,
                detail=redact(detail, self._secrets),
            )
        )

    async def _send_reports(self) -> None:
        assert self._report is not None
        while True:
            event = await self._reports.get()
            try:
                await self._report(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "could not record a notification outcome: %s", redact(str(exc), self._secrets)
                )
            finally:
                self._reports.task_done()

    async def drain(self, timeout: float) -> DeliveryReport:
        """Wait up to `timeout` for queued sends; record the rest as not sent; stop.

        Journaling the outcomes then gets between 1 and 2 seconds more.
        """
        self._flush_gates()
        deadline = asyncio.get_running_loop().time() + timeout
        report = DeliveryReport()
        pending = [lane.queue.join() for lane in self._lanes]
        try:
            await asyncio.wait_for(asyncio.gather(*pending), timeout)
        except TimeoutError:
            report.timed_out = True
        self._closed = True
        for lane in self._lanes:
            await self._stop(lane)
        # The outcomes must reach the history even when the sends ran out of time:
        # journaling them gets at least a second of its own.
        left = deadline - asyncio.get_running_loop().time()
        if self._reporter is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reports.join(), min(max(left, 1.0), 2.0))
            self._reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reporter
        for lane in self._lanes:
            report.channels[lane.channel.name] = lane.stats
            await lane.channel.aclose()
        return report

    async def _stop(self, lane: _Lane) -> None:
        unsent = [lane.current] if lane.current is not None else []
        while not lane.queue.empty():
            unsent.append(lane.queue.get_nowait())
            lane.queue.task_done()
        if lane.task is not None:
            lane.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lane.task
        for item in unsent:
            lane.stats.abandoned += 1
            self._record(
                lane,
                item,
                ok=False,
                detail=f"not sent: still queued when the notifier stopped; "
                f"message: {item.summary()}",
            )
