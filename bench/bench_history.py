"""How long `dhash-console history --limit 50` takes, as a whole process, on a big history.

TARGETS.md: with 100,000 rollouts and 5,000,000 events in the database, ≤ 300 ms for the
whole process. The database is built once with bulk inserts (the store's own schema, rows
shaped as the store writes them) and cached under /tmp; then the command runs 5 times (after
one warm-up) and the median is printed beside two references measured in the same run: a
bare interpreter, and `dhash-console --help`.

    python bench/bench_history.py [--rollouts N] [--events-per-rollout M] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from dhash_console.store.history import _prepare
from dhash_console.store.schema import LATEST

TARGET_MS = 300.0
ENVS = ("local", "staging", "canary", "production")
OUTCOMES = (
    "succeeded",
    "succeeded",
    "succeeded",
    "rolled_back",
    "aborted",
    "failed",
    "rollback_failed",
)
PHASES = ("prechecks", "backup", "migrate", "deploy", "smoke", "monitor")
GATES = ("health", "error_rate", "p95_latency_ms")


def cached_database(rollouts: int, per_rollout: int) -> Path:
    folder = Path(tempfile.gettempdir()) / f"dhash-bench-history-v{LATEST}-{rollouts}x{per_rollout}"
    db = folder / "history.sqlite3"
    done = folder / "complete"
    if done.exists():
        print(f"using cached {db} ({db.stat().st_size / 2**30:.2f} GiB)")
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("history.sqlite3*"):
        stale.unlink()
    started = time.monotonic()
    build(db, rollouts, per_rollout)
    done.touch()
    print(f"built {db} in {time.monotonic() - started:.0f} s ({db.stat().st_size / 2**30:.2f} GiB)")
    return folder


def build(db: Path, rollouts: int, per_rollout: int) -> None:
    _prepare(db)  # the store's schema and WAL mode, exactly as the store makes them
    conn = sqlite3.connect(db, isolation_level=None)
    # Bulk load: no durability needed while building a throwaway file.
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("PRAGMA cache_size = -500000")
    rng = random.Random(42)
    t0 = time.time() - rollouts * 600.0
    host = "bench-host"
    conn.execute("BEGIN")
    event_id = 0
    for n in range(rollouts):
        rid = time.strftime("r-%Y%m%d-%H%M%S-", time.gmtime(t0 + n * 600)) + f"{n % 65536:04x}"
        start = t0 + n * 600 + rng.random()
        env = ENVS[n % len(ENVS)]
        running = n >= rollouts - 3  # the newest few are still marked running (dead pids)
        outcome = "running" if running else rng.choice(OUTCOMES)
        events = list(story(rid, env, start, per_rollout, outcome, host, rng))
        conn.executemany(
            "INSERT INTO events (id, rollout_id, seq, type, at, json) VALUES (?, ?, ?, ?, ?, ?)",
            (
                (event_id + i, rid, e["seq"], e["type"], e["at"], json.dumps(e))
                for i, e in enumerate(events, start=1)
            ),
        )
        conn.executemany(
            "INSERT INTO gate_samples (event_id, rollout_id, gate, idx, result, value, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                (event_id + i, rid, e["gate"], e["index"], e["result"], e["value"], e["at"])
                for i, e in enumerate(events, start=1)
                if e["type"] == "gate_sample"
            ),
        )
        event_id += len(events)
        last = events[-1]
        phase = next(e["phase"] for e in reversed(events) if e["type"] == "phase_started")
        conn.execute(
            "INSERT INTO rollouts (id, env, from_version, to_version, started_by, via, host, pid,"
            " dry_run, started_at, finished_at, duration_s, interval_s, status, phase, exit_code,"
            " reason, rollback_plan, last_seq, last_event_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 3600, 30, ?, ?, ?, ?, ?, ?, ?)",
            (
                rid,
                env,
                f"1.{n // 1000}.{n % 1000}",
                f"1.{n // 1000}.{n % 1000 + 1}",
                "ci-bot",
                "ci",
                host,
                10_000 + n % 50_000,
                start,
                None if running else last["at"],
                outcome,
                phase,
                None if running else (0 if outcome == "succeeded" else 1),
                None if running else f"{outcome.replace('_', ' ')} after {len(events)} events",
                f"redeploy 1.{n // 1000}.{n % 1000} and restore its backup",
                last["seq"],
                last["at"],
            ),
        )
        if n % 5_000 == 4_999:
            conn.execute("COMMIT")
            conn.execute("BEGIN")
            print(f"  {n + 1:,} rollouts, {event_id:,} events", flush=True)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()


def story(
    rid: str, env: str, start: float, count: int, outcome: str, host: str, rng: random.Random
) -> Iterator[dict[str, object]]:
    """`count` events shaped as the engine journals them (valid for event_from_json)."""
    seq = 0
    at = start

    def event(kind: str, **fields: object) -> dict[str, object]:
        nonlocal seq, at
        seq += 1
        at += rng.random() * 5
        return {"rollout_id": rid, "at": at, "seq": seq, "type": kind, **fields}

    yield event(
        "rollout_started",
        env=env,
        from_version="1.0.0",
        to_version="1.0.1",
        dry_run=False,
        started_by="ci-bot",
        via="ci",
        host=host,
        pid=12345,
        duration_s=3600.0,
        interval_s=30.0,
        gates=list(GATES),
        rollback_plan="redeploy",
    )
    for phase in PHASES:
        yield event("phase_started", phase=phase, detail="")
        if phase != "monitor":
            yield event("phase_finished", phase=phase, status="ok", duration_s=1.0, detail="")
    body = count - seq - (1 if outcome != "running" else 0)
    for i in range(body):
        if i % 4 == 3:
            yield event(
                "log_line",
                level="info",
                source="service",
                message=f"GET /hash 200 in {rng.randint(5, 400)} ms",
            )
        else:
            gate = GATES[i % len(GATES)]
            yield event(
                "gate_sample",
                gate=gate,
                index=i // len(GATES),
                result="pass",
                value=round(rng.random(), 4),
                condition="≤ 0.5",
                error=None,
                detail="",
                consecutive_fails=0,
                consecutive_errors=0,
                failure_limit=3,
                consecutive_error_limit=3,
            )
    if outcome != "running":
        yield event(
            "rollout_finished",
            outcome=outcome,
            exit_code=0 if outcome == "succeeded" else 1,
            reason=outcome,
        )


def timed(argv: list[str], runs: int) -> list[float]:
    env = {**os.environ, "NO_COLOR": "1"}
    subprocess.run(argv, capture_output=True, env=env, check=True)  # warm-up: page cache
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, env=env, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rollouts", type=int, default=100_000)
    parser.add_argument("--events-per-rollout", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    state = cached_database(args.rollouts, args.events_per_rollout)
    with sqlite3.connect(state / "history.sqlite3") as conn:
        (rollouts,) = conn.execute("SELECT count(*) FROM rollouts").fetchone()
        (events,) = conn.execute("SELECT max(id) FROM events").fetchone()
    print(f"database: {rollouts:,} rollouts, {events:,} events")

    python = sys.executable  # the interpreter itself, not a shim that adds its own startup
    command = [python, "-m", "dhash_console", "history", "--limit", "50", "--state-dir", str(state)]
    history = timed(command, args.runs)
    bare = timed([python, "-c", "pass"], args.runs)
    help_ = timed([python, "-m", "dhash_console", "--help"], args.runs)
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    shown = sum(1 for line in output.splitlines() if line.startswith("r-"))

    median = statistics.median(history)
    print(
        f"history --limit 50 ({shown} rows): median {median:.0f} ms of {args.runs} "
        f"(runs: {', '.join(f'{t:.0f}' for t in history)})"
    )
    print(
        f"  reference, same run: bare interpreter {statistics.median(bare):.0f} ms, "
        f"dhash-console --help {statistics.median(help_):.0f} ms "
        f"(history = {median / statistics.median(help_):.2f} × --help)"
    )
    verdict = "within" if median <= TARGET_MS else "OVER"
    print(
        f"target ≤ {TARGET_MS:.0f} ms for the whole process: {verdict} "
        f"({median / TARGET_MS:.0%} of the budget)"
    )
    return 0 if median <= TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
