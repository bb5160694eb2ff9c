"""`dhash-console history` end to end: a real history database, the real CLI, its output."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dhash_console.cli import main
from dhash_console.events import (
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.store.history import HistoryStore
from dhash_console.store.process import this_host

T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC
EVIL_LOG = "db said: [bold red]x[/] \x1b[2J\x1b]0;pwned\x07done"


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def start(
    rollout_id: str, env: str, at: float, *, pid: int | None = None, to_version: str = "1.4.0"
) -> RolloutStarted:
    return RolloutStarted(
        rollout_id=rollout_id,
        at=at,
        env=env,
        from_version="1.3.0",
        to_version=to_version,
        started_by="alice",
        via="cli",
        host=this_host(),
        pid=os.getpid() if pid is None else pid,
        duration_s=600.0,
        interval_s=10.0,
        gates=["p95_latency_ms"],
        rollback_plan="redeploy 1.3.0 and restore backups/staging-0101.zip",
    )


def rolled_back(rid: str) -> list[Event]:
    return [
        start(rid, "staging", T0),
        PhaseStarted(rollout_id=rid, at=T0 + 1, phase="backup"),
        PhaseFinished(rollout_id=rid, at=T0 + 3, phase="backup", status="ok", duration_s=2.0),
        PhaseStarted(rollout_id=rid, at=T0 + 3, phase="deploy"),
        PhaseFinished(rollout_id=rid, at=T0 + 8, phase="deploy", status="ok", duration_s=5.0),
        PhaseStarted(rollout_id=rid, at=T0 + 8, phase="monitor"),
        GateSample(
            rollout_id=rid,
            at=T0 + 18,
            gate="p95_latency_ms",
            index=0,
            result="fail",
            value=912.0,
            condition="≤ 500",
            consecutive_fails=1,
            failure_limit=2,
        ),
        LogLine(rollout_id=rid, at=T0 + 19, level="error", source="service", message=EVIL_LOG),
        GateSample(
            rollout_id=rid,
            at=T0 + 28,
            gate="p95_latency_ms",
            index=1,
            result="fail",
            value=930.0,
            condition="≤ 500",
            consecutive_fails=2,
            failure_limit=2,
        ),
        GateSample(
            rollout_id=rid,
            at=T0 + 28,
            gate="error_rate",
            index=0,
            result="pass",
            value=0.001,
            condition="≤ 0.01",
        ),
        GateVerdict(
            rollout_id=rid,
            at=T0 + 28,
            gate="p95_latency_ms",
            verdict="failed",
            reason="2 consecutive failures (limit 2)",
            value=930.0,
            condition="≤ 500",
            samples=2,
            fails=2,
            inconclusive=0,
        ),
        PhaseFinished(
            rollout_id=rid, at=T0 + 28, phase="monitor", status="failed", duration_s=20.0
        ),
        RollbackRequested(
            rollout_id=rid,
            at=T0 + 28,
            reason="gate p95_latency_ms failed",
            by="engine",
            automatic=True,
        ),
        PhaseStarted(rollout_id=rid, at=T0 + 28, phase="rollback"),
        RollbackStarted(
            rollout_id=rid,
            at=T0 + 28,
            from_version="1.4.0",
            to_version="1.3.0",
            reason="gate p95_latency_ms failed",
            backup="backups/staging-0101.zip",
        ),
        NotificationSent(
            rollout_id=rid,
            at=T0 + 29,
            channel="slack",
            event_type="rollback_started",
            ok=False,
            detail="gave up after 3 tries: 500; message: rolling back 1.4.0 → 1.3.0",
        ),
        RollbackFinished(rollout_id=rid, at=T0 + 40, ok=True, version="1.3.0", healthy=True),
        PhaseFinished(rollout_id=rid, at=T0 + 40, phase="rollback", status="ok", duration_s=12.0),
        RolloutFinished(
            rollout_id=rid,
            at=T0 + 40,
            outcome="rolled_back",
            exit_code=1,
            reason="gate p95_latency_ms failed: p95 930 ms > 500",
        ),
    ]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """A history of four rollouts: rolled back, succeeded, killed mid-migrate, running."""
    state = tmp_path / "state"
    stories: list[list[Event]] = [
        rolled_back("r-20260101-120000-aaaa"),
        [
            start("r-20260101-130000-bbbb", "production", T0 + 3600, to_version="1.4.1"),
            RolloutFinished(
                rollout_id="r-20260101-130000-bbbb",
                at=T0 + 4200,
                outcome="succeeded",
                exit_code=0,
                reason="window passed",
            ),
        ],
        [
            start("r-20260101-140000-cccc", "staging", T0 + 7200, pid=dead_pid()),
            PhaseStarted(rollout_id="r-20260101-140000-cccc", at=T0 + 7201, phase="migrate"),
        ],
        [
            start("r-20260101-150000-dddd", "canary", T0 + 10800),
            PhaseStarted(rollout_id="r-20260101-150000-dddd", at=T0 + 10801, phase="monitor"),
        ],
    ]

    async def write() -> None:
        async with await HistoryStore.open(state / "history.sqlite3") as store:
            for story in stories:
                for seq, event in enumerate(story, start=1):
                    await store.journal(event.model_copy(update={"seq": seq}))

    asyncio.run(write())
    return state


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["history", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_each_rollout_and_how_it_ended(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "--state-dir", str(state_dir))
    assert code == 0
    lines = out.splitlines()
    rows = {line.split()[0]: line for line in lines if line.startswith("r-")}
    assert list(rows) == [  # newest first
        "r-20260101-150000-dddd",
        "r-20260101-140000-cccc",
        "r-20260101-130000-bbbb",
        "r-20260101-120000-aaaa",
    ]
    assert "canary" in rows["r-20260101-150000-dddd"]
    assert "▶ running" in rows["r-20260101-150000-dddd"]
    assert "in monitor" in rows["r-20260101-150000-dddd"]
    assert "⚠ interrupted" in rows["r-20260101-140000-cccc"]
    assert "gone during migrate" in rows["r-20260101-140000-cccc"]
    assert "✔ succeeded" in rows["r-20260101-130000-bbbb"]
    assert "1.3.0 → 1.4.1" in rows["r-20260101-130000-bbbb"]
    assert "10m00s" in rows["r-20260101-130000-bbbb"]  # how long it ran
    aaaa = rows["r-20260101-120000-aaaa"]
    assert "↩ rolled back" in aaaa and "2026-01-01 12:00" in aaaa and "alice (cli)" in aaaa
    assert "gate p95_latency_ms failed: p95 930 ms > 500" in aaaa  # whole: piped, not cut
    assert "WHY IT ENDED" in lines[0]


def test_list_filters_by_env_and_limits(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "--state-dir", str(state_dir), "--env", "staging")
    assert code == 0
    ids = [line.split()[0] for line in out.splitlines() if line.startswith("r-")]
    assert ids == ["r-20260101-140000-cccc", "r-20260101-120000-aaaa"]

    _, out, _ = run_cli(capsys, "--state-dir", str(state_dir), "--limit", "1")
    assert [line.split()[0] for line in out.splitlines() if line.startswith("r-")] == [
        "r-20260101-150000-dddd"
    ]

    code, out, _ = run_cli(capsys, "--state-dir", str(state_dir), "--env", "nowhere")
    assert code == 0 and "No rollouts for environment nowhere" in out


def test_list_as_json_lines(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--json", "--state-dir", str(state_dir), "--limit", "3")
    assert code == 0
    objects = [json.loads(line) for line in out.splitlines()]
    assert [o["type"] for o in objects] == ["rollout", "rollout", "rollout", "summary"]
    by_id = {o["id"]: o for o in objects[:3]}
    killed = by_id["r-20260101-140000-cccc"]
    assert (killed["status"], killed["effective_status"], killed["phase"]) == (
        "running",
        "interrupted",
        "migrate",
    )
    assert by_id["r-20260101-130000-bbbb"]["effective_status"] == "succeeded"
    assert by_id["r-20260101-130000-bbbb"]["elapsed_s"] == 600.0
    assert objects[-1] == {
        "type": "summary",
        "database": str(state_dir / "history.sqlite3"),
        "exists": True,
        "count": 3,
    }


def test_show_gives_the_timeline_with_untrusted_text_literal(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "--state-dir", str(state_dir), "--show", "r-20260101-12")
    assert code == 0
    assert "r-20260101-120000-aaaa" in out and "↩ rolled back (exit 1)" in out
    assert "why it ended: gate p95_latency_ms failed: p95 930 ms > 500" in out
    phases = [line.split()[:3] for line in out.split("phases\n")[1].split("\n\n")[0].splitlines()]
    assert phases == [
        ["backup", "ok", "2.0s"],
        ["deploy", "ok", "5.0s"],
        ["monitor", "failed", "20.0s"],
        ["rollback", "ok", "12.0s"],
    ]
    assert (
        "✖ FAILED p95_latency_ms: measured 930, condition ≤ 500; 2 samples, 2 failed, "
        "0 inconclusive — 2 consecutive failures (limit 2)"
    ) in out
    assert "error_rate: no verdict; 1 samples (1 pass)" in out
    assert "requested automatically by engine" in out
    assert "started 1.4.0 → 1.3.0, restoring backups/staging-0101.zip" in out
    assert "✔ done: version 1.3.0, healthy" in out
    assert "redeploy 1.3.0 and restore backups/staging-0101.zip" in out
    # The log line: markup shown as typed, escape sequences gone.
    assert "service: db said: [bold red]x[/] done" in out
    assert "\x1b" not in out and "pwned" not in out
    assert "rollback_started via slack: NOT SENT (dead letter) — gave up after 3 tries" in out


def test_show_an_interrupted_rollout(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "--state-dir", str(state_dir), "--show", "r-20260101-140000-cccc"
    )
    assert code == 0
    assert "⚠ interrupted" in out and "gone during migrate" in out
    assert "migrate    interrupted" in out


def test_show_as_one_json_object(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(
        capsys, "--state-dir", str(state_dir), "--json", "--show", "r-20260101-120000-aaaa"
    )
    assert code == 0
    (line,) = out.splitlines()
    timeline = json.loads(line)
    assert timeline["type"] == "rollout_timeline"
    assert timeline["rollout"]["effective_status"] == "rolled_back"
    assert timeline["rollout"]["rollback_plan"].startswith("redeploy 1.3.0")
    assert [(p["phase"], p["status"], p["duration_s"]) for p in timeline["phases"]] == [
        ("backup", "ok", 2.0),
        ("deploy", "ok", 5.0),
        ("monitor", "failed", 20.0),
        ("rollback", "ok", 12.0),
    ]
    (verdict,) = timeline["gates"]
    assert (
        verdict["gate"],
        verdict["verdict"],
        verdict["value"],
        verdict["condition"],
        verdict["samples"],
    ) == ("p95_latency_ms", "failed", 930.0, "≤ 500", 2)
    assert timeline["samples"] == {"error_rate": {"pass": 1}, "p95_latency_ms": {"fail": 2}}
    assert timeline["rollback"]["finished"]["healthy"] is True
    assert timeline["log_tail"][0]["message"] == EVIL_LOG  # JSON keeps it whole, escaped
    assert "\x1b" not in out  # ...as \u001b


def test_unknown_or_ambiguous_id_exits_2_naming_it(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(capsys, "--state-dir", str(state_dir), "--show", "r-nope")
    assert code == 2 and "'r-nope'" in err and out == ""
    code, _, err = run_cli(capsys, "--state-dir", str(state_dir), "--show", "r-20260101")
    assert code == 2 and "matches several" in err and "r-20260101-120000-aaaa" in err


def test_no_database_yet_is_an_empty_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "fresh"
    code, out, _ = run_cli(capsys, "--state-dir", str(state))
    assert code == 0 and "No history yet" in out and "does not exist" in out
    code, out, _ = run_cli(capsys, "--state-dir", str(state), "--json")
    assert code == 0
    assert json.loads(out) == {
        "type": "summary",
        "database": str(state / "history.sqlite3"),
        "exists": False,
        "count": 0,
    }
    code, _, err = run_cli(capsys, "--state-dir", str(state), "--show", "r-1")
    assert code == 2 and "'r-1'" in err
    assert not state.exists()  # reading history creates nothing


def test_bad_limit_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["history", "--limit", "0"])
    assert exit_.value.code == 2
    assert "--limit" in capsys.readouterr().err


def test_as_a_whole_process(state_dir: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dhash_console",
            "history",
            "--state-dir",
            str(state_dir),
            "--show",
            "r-20260101-120000-aaaa",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "[bold red]x[/] done" in result.stdout and "\x1b" not in result.stdout
