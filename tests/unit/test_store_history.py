"""The history store on real SQLite files: journal, read back, list, prefixes, control requests."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dhash_console.errors import UsageError
from dhash_console.events import (
    ControlAcknowledged,
    Event,
    GateSample,
    GateVerdict,
    LockAcquired,
    LockReleased,
    LogLine,
    MonitorPaused,
    MonitorResumed,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
    SubscriberDropped,
)
from dhash_console.store.history import AmbiguousRolloutId, HistoryStore
from dhash_console.store.process import this_host


def started(
    rollout_id: str,
    *,
    env: str = "staging",
    at: float = 1_000.0,
    pid: int | None = None,
    host: str | None = None,
) -> RolloutStarted:
    return RolloutStarted(
        rollout_id=rollout_id,
        seq=1,
        at=at,
        env=env,
        from_version="1.3.0",
        to_version="1.4.0",
        started_by="alice",
        via="cli",
        host=host or this_host(),
        pid=os.getpid() if pid is None else pid,
        duration_s=600.0,
        interval_s=10.0,
        gates=["error_rate"],
        rollback_plan="redeploy 1.3.0, restore backup b.zip",
    )


def every_event_type(rollout_id: str) -> list[Event]:
    """One event of each type, in a plausible order, with seq set as the bus would."""
    events: list[Event] = [
        started(rollout_id),
        LockAcquired(rollout_id=rollout_id, env="staging", holder="pid 1 on h"),
        PhaseStarted(rollout_id=rollout_id, phase="deploy", detail="to 1.4.0"),
        PhaseFinished(rollout_id=rollout_id, phase="deploy", status="ok", duration_s=2.5),
        PhaseStarted(rollout_id=rollout_id, phase="monitor"),
        GateSample(
            rollout_id=rollout_id,
            gate="error_rate",
            index=0,
            result="pass",
            value=0.01,
            condition="< 0.05",
        ),
        GateSample(
            rollout_id=rollout_id,
            gate="latency_p95",
            index=0,
            result="fail",
            value=900.0,
            condition="< 500",
            consecutive_fails=1,
        ),
        GateSample(
            rollout_id=rollout_id,
            gate="error_rate",
            index=1,
            result="inconclusive",
            value=None,
            condition="< 0.05",
            error="timeout",
        ),
        LogLine(
            rollout_id=rollout_id,
            level="warning",
            source="service",
            message="[bold red]x[/] \x1b[2J",
        ),
        MonitorPaused(rollout_id=rollout_id, reason="look closer"),
        MonitorResumed(rollout_id=rollout_id, by="bob"),
        ControlAcknowledged(
            rollout_id=rollout_id, request_id=1, action="pause", by="bob", result="paused"
        ),
        GateVerdict(
            rollout_id=rollout_id,
            gate="latency_p95",
            verdict="failed",
            reason="2 of 2 failed",
            value=900.0,
            condition="< 500",
            samples=2,
            fails=2,
            inconclusive=0,
        ),
        RollbackRequested(rollout_id=rollout_id, reason="latency", by="engine", automatic=True),
        PhaseStarted(rollout_id=rollout_id, phase="rollback"),
        RollbackStarted(
            rollout_id=rollout_id,
            from_version="1.4.0",
            to_version="1.3.0",
            reason="latency",
            backup="b.zip",
        ),
        RollbackFinished(rollout_id=rollout_id, ok=True, version="1.3.0", healthy=True),
        NotificationSent(
            rollout_id=rollout_id,
            channel="slack",
            event_type="rollback_started",
            ok=False,
            detail="429",
        ),
        SubscriberDropped(rollout_id=rollout_id, subscriber="tui", dropped=3),
        RolloutFinished(
            rollout_id=rollout_id,
            outcome="rolled_back",
            exit_code=1,
            reason="gate latency_p95 failed",
        ),
        LockReleased(rollout_id=rollout_id, env="staging"),
    ]
    return [event.model_copy(update={"seq": i}) for i, event in enumerate(events, start=1)]


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    opened = await HistoryStore.open(tmp_path / "state" / "history.sqlite3")
    yield opened
    await opened.close()


async def test_open_creates_parents_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "history.sqlite3"
    async with await HistoryStore.open(path) as store:
        assert store.path == path
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_every_event_type_reads_back_equal(store: HistoryStore) -> None:
    events = every_event_type("r-1")
    assert {event.type for event in events} == {
        cls.model_fields["type"].default
        for cls in (
            RolloutStarted,
            RolloutFinished,
            PhaseStarted,
            PhaseFinished,
            GateSample,
            GateVerdict,
            LogLine,
            MonitorPaused,
            MonitorResumed,
            RollbackRequested,
            RollbackStarted,
            RollbackFinished,
            LockAcquired,
            LockReleased,
            ControlAcknowledged,
            NotificationSent,
            SubscriberDropped,
        )
    }
    for event in events:
        await store.journal(event)

    assert await store.events("r-1") == events
    assert await store.events("r-1", after_seq=19) == events[19:]
    assert await store.events("r-1", limit=2) == events[:2]
    assert [e.type for e in await store.events("r-1", types=["phase_started"])] == [
        "phase_started"
    ] * 3
    assert await store.last_events("r-1", 1, types=["log_line"]) == [events[8]]

    samples = await store.gate_samples("r-1")
    assert [(s.gate, s.index, s.result) for s in samples] == [
        ("error_rate", 0, "pass"),
        ("latency_p95", 0, "fail"),
        ("error_rate", 1, "inconclusive"),
    ]
    assert [s.index for s in await store.gate_samples("r-1", gate="error_rate")] == [0, 1]
    verdicts = await store.gate_verdicts("r-1")
    assert len(verdicts) == 1 and verdicts[0] == events[12]


async def test_rollout_row_follows_the_events(store: HistoryStore) -> None:
    first, *rest = every_event_type("r-1")
    await store.journal(first)
    record = await store.get_rollout("r-1")
    assert record is not None
    assert (record.env, record.from_version, record.to_version) == ("staging", "1.3.0", "1.4.0")
    assert (record.started_by, record.via, record.pid, record.dry_run) == (
        "alice",
        "cli",
        os.getpid(),
        False,
    )
    assert (record.duration_s, record.interval_s, record.started_at) == (600.0, 10.0, 1_000.0)
    assert record.rollback_plan == "redeploy 1.3.0, restore backup b.zip"
    assert (record.status, record.phase, record.finished_at) == ("running", None, None)
    assert record.effective_status == "running"  # its process (this one) is alive

    for event in rest[:4]:
        await store.journal(event)
    record = await store.get_rollout("r-1")
    assert record is not None and record.phase == "monitor"

    for event in rest[4:]:
        await store.journal(event)
    record = await store.get_rollout("r-1")
    assert record is not None
    assert (record.status, record.exit_code, record.phase) == ("rolled_back", 1, "rollback")
    assert record.reason == "gate latency_p95 failed"
    assert record.finished_at == rest[-2].at
    assert record.effective_status == "rolled_back"
    assert record.last_seq == len(rest) + 1


async def test_events_of_a_rollout_without_a_row_are_still_kept(store: HistoryStore) -> None:
    await store.journal(LogLine(rollout_id="r-orphan", seq=1, message="before the start"))
    assert [e.type for e in await store.events("r-orphan")] == ["log_line"]
    assert await store.get_rollout("r-orphan") is None


async def test_list_is_newest_first_and_filters(store: HistoryStore) -> None:
    for i, env in enumerate(["staging", "production", "staging", "canary"]):
        await store.journal(started(f"r-{i}", env=env, at=1_000.0 + i))
    await store.journal(
        RolloutFinished(
            rollout_id="r-2", seq=2, outcome="succeeded", exit_code=0, reason="window passed"
        )
    )

    assert [r.id for r in await store.list_rollouts()] == ["r-3", "r-2", "r-1", "r-0"]
    assert [r.id for r in await store.list_rollouts(limit=2)] == ["r-3", "r-2"]
    assert [r.id for r in await store.list_rollouts(env="staging")] == ["r-2", "r-0"]
    assert [r.id for r in await store.list_rollouts(active_only=True)] == ["r-3", "r-1", "r-0"]
    assert [r.id for r in await store.list_rollouts(env="staging", active_only=True)] == ["r-0"]
    assert await store.list_rollouts(env="nowhere") == []


async def test_list_ties_on_start_time_keep_insertion_order(store: HistoryStore) -> None:
    for name in ["r-b", "r-a", "r-c"]:
        await store.journal(started(name, at=5.0))
    assert [r.id for r in await store.list_rollouts()] == ["r-c", "r-a", "r-b"]


async def test_get_by_unique_prefix(store: HistoryStore) -> None:
    for name in ["r-20260101-aaaa", "r-20260101-aabb", "r-20260202-cccc", "r-2"]:
        await store.journal(started(name))
    record = await store.get_rollout("r-20260202")
    assert record is not None and record.id == "r-20260202-cccc"
    exact = await store.get_rollout("r-2")  # an exact id wins over the ids it prefixes
    assert exact is not None and exact.id == "r-2"
    with pytest.raises(AmbiguousRolloutId, match="r-20260101-aaaa, r-20260101-aabb"):
        await store.get_rollout("r-20260101-aa")
    assert issubclass(AmbiguousRolloutId, UsageError)
    assert await store.get_rollout("r-3") is None
    assert await store.get_rollout("r-%") is None  # LIKE wildcards mean nothing here
    assert await store.get_rollout("") is None


async def test_a_dead_owner_reads_as_interrupted(store: HistoryStore) -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)  # reaped: that pid is gone
    await store.journal(started("r-dead", pid=dead_pid))
    await store.journal(started("r-elsewhere", pid=dead_pid, host="another-host.example"))
    dead = await store.get_rollout("r-dead")
    elsewhere = await store.get_rollout("r-elsewhere")
    assert dead is not None and dead.status == "running"
    assert dead.effective_status == "interrupted"
    assert dead.to_dict()["effective_status"] == "interrupted"
    # Another host's process could be alive: not ours to judge.
    assert elsewhere is not None and elsewhere.effective_status == "running"
    assert [r.id for r in await store.list_rollouts(active_only=True)] == ["r-elsewhere"]


async def test_a_resumed_rollout_runs_again(store: HistoryStore) -> None:
    await store.journal(started("r-1", pid=999_999_999))
    await store.journal(
        RolloutFinished(
            rollout_id="r-1", seq=2, outcome="interrupted", exit_code=130, reason="operator"
        )
    )
    await store.journal(started("r-1").model_copy(update={"seq": 3, "at": 2_000.0}))
    record = await store.get_rollout("r-1")
    assert record is not None
    assert (record.status, record.pid, record.exit_code, record.started_at) == (
        "running",
        os.getpid(),
        None,
        1_000.0,
    )


async def test_journal_commits_before_returning(store: HistoryStore) -> None:
    await store.journal(started("r-1"))
    # Another connection (as another process would) sees it at once.
    with sqlite3.connect(store.path) as other:
        assert other.execute("SELECT status FROM rollouts WHERE id = 'r-1'").fetchone() == (
            "running",
        )


async def test_a_cancelled_journal_call_still_lands_whole(store: HistoryStore) -> None:
    task = asyncio.create_task(store.journal(started("r-1")))
    await asyncio.sleep(0)  # let it start its transaction
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The store stays usable: the shielded write finished, no transaction was left open.
    await store.journal(PhaseStarted(rollout_id="r-1", seq=2, phase="backup"))
    record = await store.get_rollout("r-1")
    assert record is not None and record.phase == "backup"


async def test_concurrent_journal_calls_do_not_share_a_transaction(store: HistoryStore) -> None:
    await store.journal(started("r-1"))
    lines = [LogLine(rollout_id="r-1", seq=i, message=f"line {i}") for i in range(2, 52)]
    await asyncio.gather(
        *(store.journal(line) for line in lines),
        store.request_control("r-1", "pause", "why", "bob"),
    )
    assert len(await store.events("r-1")) == 51


async def test_control_requests_round_trip(store: HistoryStore) -> None:
    first = await store.request_control("r-1", "pause", "look closer", "bob")
    second = await store.request_control("r-1", "rollback", "latency [red]high[/]", "carol")
    other = await store.request_control("r-2", "abort", "", "dave")
    pending = await store.control_request(first)
    assert pending is not None and (pending.state, pending.taken_at) == ("pending", None)

    taken = await store.take_control_requests("r-1")
    assert [(r.id, r.action, r.reason, r.by, r.state) for r in taken] == [
        (first, "pause", "look closer", "bob", "taken"),
        (second, "rollback", "latency [red]high[/]", "carol", "taken"),
    ]
    assert all(r.taken_at is not None for r in taken)
    assert await store.take_control_requests("r-1") == []
    again = await store.control_request(first)
    assert again is not None and again.state == "taken"
    assert [r.id for r in await store.take_control_requests("r-2")] == [other]
    assert await store.control_request(12345) is None
    assert [r.id for r in await store.control_requests("r-1")] == [first, second]


async def test_an_unknown_control_action_is_refused(store: HistoryStore) -> None:
    with pytest.raises(UsageError, match="explode"):
        await store.request_control("r-1", "explode", "", "me")  # type: ignore[arg-type]


async def test_two_concurrent_takers_each_request_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    async with (
        await HistoryStore.open(path) as asker,
        await HistoryStore.open(path) as taker_a,
        await HistoryStore.open(path) as taker_b,
    ):
        taken: list[int] = []

        async def take(store: HistoryStore, until: int) -> None:
            while len(taken) < until:
                taken.extend(r.id for r in await store.take_control_requests("r-1"))
                await asyncio.sleep(0)

        ids = [await asker.request_control("r-1", "pause", f"n{i}", "bob") for i in range(40)]
        await asyncio.wait_for(
            asyncio.gather(take(taker_a, len(ids)), take(taker_b, len(ids))), timeout=10
        )
        assert sorted(taken) == ids  # every request once, none twice
