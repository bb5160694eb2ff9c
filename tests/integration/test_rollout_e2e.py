"""Guarded rollouts end to end: the real CLI, the real reference service, real processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name != "posix", reason="SIGKILL and SIGINT as POSIX has them"),
]

CLI = [sys.executable, "-m", "dhash_console"]


def cli(
    config: Path, state: Path, *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "--config", str(config), "--state-dir", str(state), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "CI": ""},
    )


def deploy_passing(config: Path, state: Path, *versions: str) -> None:
    """Deploy each version in turn with a short window; each must pass it."""
    for version in versions:
        deployed = cli(
            config, state, "--no-ui", "deploy", "--env", "local", "--version", version,
            "--duration-minutes", "0.05",
        )  # fmt: skip
        assert deployed.returncode == 0, deployed.stdout + deployed.stderr


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@pytest.fixture
def demo_config(local_config: Callable[..., Path]) -> Path:
    # A 1 s interval keeps each run short; the gates and faults are the shipped ones.
    return local_config(**{"environments.local.monitoring": {"interval_seconds": 1}})


@pytest.fixture
def stop_leftovers(tmp_path: Path) -> Iterator[None]:
    """Whatever a test leaves running (a killed console's service) is stopped at the end."""
    yield
    for state in tmp_path.glob("**/local/*/service.json"):
        record = json.loads(state.read_text())
        for pid in (record.get("traffic_pid"), record.get("pid")):  # and the traffic beside it
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(int(pid), signal.SIGKILL)


def test_bad_release_rolls_back_and_exits_1(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> None:
    state = tmp_path / "state"
    result = cli(
        demo_config,
        state,
        "--json",
        "demo",
        "--scenario",
        "bad-release",
        "--duration-minutes",
        "0.5",
    )
    assert result.returncode == 1, result.stderr
    events = json_lines(result.stdout)
    summary = events[-1]
    assert summary["type"] == "summary"
    assert summary["outcome"] == "rolled_back"
    assert summary["rollback_healthy"] is True
    failed = [g for g in summary["gates"] if g["verdict"] == "failed"]
    assert [g["gate"] for g in failed] == ["error_rate"]
    assert failed[0]["value"] > 0.01 and failed[0]["condition"] == "<= 0.01"
    assert failed[0]["samples"] >= 3
    types = [e["type"] for e in events]
    assert types.index("rollback_started") < types.index("rollback_finished")
    finished = next(e for e in events if e["type"] == "rollback_finished")
    assert finished["version"] == "1.0.0" and finished["healthy"] is True
    # The demo stopped what it started.
    assert not list(state.glob("local/*/service.json")) or "stopped" in result.stderr


def test_healthy_release_passes_its_window(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> None:
    result = cli(
        demo_config,
        tmp_path / "state",
        "--no-ui",
        "demo",
        "--scenario",
        "healthy",
        "--duration-minutes",
        "0.1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCEEDED" in result.stdout
    history = cli(demo_config, tmp_path / "state", "--json", "history")
    assert history.returncode == 0, history.stderr


def wait_for(predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def journal_has(state: Path, sql: str) -> bool:
    db = state / "history.sqlite3"
    if not db.exists():
        return False
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return conn.execute(sql).fetchone() is not None
    except sqlite3.Error:
        return False


@pytest.fixture
def running_rollout(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    state = tmp_path / "state"
    proc = subprocess.Popen(
        [
            *CLI,
            "--config",
            str(demo_config),
            "--state-dir",
            str(state),
            "--json",
            "demo",
            "--scenario",
            "healthy",
            "--duration-minutes",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: journal_has(
                state, "select 1 from events where type = 'phase_started' and json like '%monitor%'"
            ),
            what="the monitoring window",
        )
        yield proc, state
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def test_second_rollout_on_a_locked_environment_exits_4(
    running_rollout: tuple[subprocess.Popen[str], Path], demo_config: Path
) -> None:
    proc, state = running_rollout
    second = cli(demo_config, state, "--no-ui", "deploy", "--env", "local", "--version", "1.1.0")
    assert second.returncode == 4, second.stderr
    assert str(proc.pid) in second.stderr
    assert "demo" in second.stderr or "deploy" in second.stderr


def test_manual_rollback_from_another_terminal(
    running_rollout: tuple[subprocess.Popen[str], Path], demo_config: Path
) -> None:
    proc, state = running_rollout
    result = cli(
        demo_config,
        state,
        "--no-ui",
        "rollback",
        "--env",
        "local",
        "--reason",
        "hashes look wrong",
        "--yes",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out, _ = proc.communicate(timeout=60)
    events = json_lines(out)
    assert events[-1]["outcome"] == "rolled_back"
    requested = next(e for e in events if e["type"] == "rollback_requested")
    assert requested["reason"] == "hashes look wrong" and requested["automatic"] is False


def test_kill_9_leaves_an_intact_history_that_says_where_it_stopped(
    running_rollout: tuple[subprocess.Popen[str], Path], demo_config: Path
) -> None:
    proc, state = running_rollout
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    with sqlite3.connect(state / "history.sqlite3") as conn:
        assert conn.execute("pragma integrity_check").fetchone()[0] == "ok"
    shown = cli(demo_config, state, "--json", "history")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "interrupted" in text and "monitor" in text
    # The lock of the dead process does not hold the environment forever.
    again = cli(
        demo_config,
        state,
        "--no-ui",
        "monitor",
        "--env",
        "local",
        "--dry-run",
        "--duration-minutes",
        "0.02",
    )
    assert again.returncode != 4, again.stderr


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_is_journaled_and_the_demo_stops_what_it_started(
    running_rollout: tuple[subprocess.Popen[str], Path], demo_config: Path, sig: int
) -> None:
    proc, state = running_rollout
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    events = json_lines(out)
    finished = next(e for e in events if e["type"] == "rollout_finished")
    assert finished["outcome"] == "interrupted"
    assert "dhash service stopped" in err
    service = json.loads(next(state.glob("local/*/service.json")).read_text())
    assert service.get("pid") is None and service.get("traffic_pid") is None


def test_dry_run_runs_every_check_and_changes_nothing(demo_config: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = cli(
        demo_config,
        state,
        "--json",
        "deploy",
        "--env",
        "local",
        "--version",
        "1.1.0",
        "--dry-run",
        "--duration-minutes",
        "0.05",
    )
    # Nothing runs yet, so the gates cannot hold: the dry run says so (exit 1).
    assert result.returncode == 1, result.stderr
    events = json_lines(result.stdout)
    phases = [e["phase"] for e in events if e["type"] == "phase_finished"]
    assert phases == ["prechecks", "backup", "migrate", "deploy", "smoke", "monitor"]
    messages = " ".join(e.get("message", "") for e in events if e["type"] == "log_line")
    assert "would apply 20240315_001_initial_dhash_schema.sql" in messages
    assert "would deploy 1.1.0" in messages
    assert not (state / "local" / "dhash.sqlite3").exists()  # no database created
    assert not list((tmp_path / "backups").glob("*.zip"))  # no backup written
    assert not list(state.glob("local/*/service.json"))  # nothing started


def test_standalone_rollback_returns_to_the_earlier_version_and_backup(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> None:
    state = tmp_path / "state"
    deploy_passing(demo_config, state, "1.0.0", "1.1.0")  # first install, then the release to undo
    before = json.loads(next(state.glob("local/*/service.json")).read_text())
    assert before["version"] == "1.1.0" and process_alive(before["traffic_pid"])
    plan = cli(
        demo_config,
        state,
        "--no-ui",
        "rollback",
        "--env",
        "local",
        "--reason",
        "check",
        "--dry-run",
    )
    assert plan.returncode == 0, plan.stderr
    assert "return local to 1.0.0; restore the database from dhash_local_" in plan.stdout
    result = cli(
        demo_config,
        state,
        "--json",
        "rollback",
        "--env",
        "local",
        "--reason",
        "customer reports",
        "--yes",
    )
    assert result.returncode == 0, result.stderr
    events = json_lines(result.stdout)
    finished = next(e for e in events if e["type"] == "rollback_finished")
    assert finished["version"] == "1.0.0" and finished["healthy"] is True
    assert next(e for e in events if e["type"] == "rollback_started")["backup"]
    logs = [e["message"] for e in events if e["type"] == "log_line"]
    # The rollout's backup was staged when it was taken: chosen on its staged record, not
    # verified again, and the rollback renames its copy in.
    assert any(m.endswith(": verified when it was taken and staged" + STAGED_TAIL) for m in logs)
    assert any("restored from dhash_local_" in m and "from its staged copy" in m for m in logs)
    service = json.loads(next(state.glob("local/*/service.json")).read_text())
    assert service["version"] == "1.0.0"
    # The rollback, another process, replaced the traffic it found with the new version's.
    assert not process_alive(before["traffic_pid"])
    assert service["traffic_pid"] != before["traffic_pid"]
    assert process_alive(service["traffic_pid"])


def process_alive(pid: int) -> bool:
    """A live process, not a zombie (the console that started it has exited: it is reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_a_plain_deploy_of_a_bad_release_fails_its_error_rate_on_real_traffic(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> None:
    """No demo: the local deployer's own traffic is what the error-rate gate judges (the
    console's probes are left out), so 2.0.0-bad's failing requests fail it."""
    state = tmp_path / "state"
    deploy_passing(demo_config, state, "1.0.0")
    result = cli(
        demo_config,
        state,
        "--json",
        "deploy",
        "--env",
        "local",
        "--version",
        "2.0.0-bad",
        "--duration-minutes",
        "0.5",
    )
    assert result.returncode == 1, result.stderr
    summary = json_lines(result.stdout)[-1]
    assert summary["type"] == "summary" and summary["outcome"] == "rolled_back"
    failed = [g for g in summary["gates"] if g["verdict"] == "failed"]
    assert [g["gate"] for g in failed] == ["error_rate"]
    assert failed[0]["value"] > 0.1  # half the real requests fail; the probes do not dilute it
    service = json.loads(next(state.glob("local/*/service.json")).read_text())
    assert service["version"] == "1.0.0" and process_alive(service["traffic_pid"])


STAGED_TAIL = (
    " (its staged copy still matches its record; the restore checks the copy's sha256, else "
    "verifies the zip in full)"
)


def flip_keeping_stat(path: Path) -> None:
    """Change a byte, keeping the size and mtime: only a hash can tell."""
    before = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def add_marker(db: Path, name: str) -> None:
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute(
            "INSERT INTO hashes (hash, filename, width, height, created_at) VALUES (?,?,?,?,?)",
            (f"{len(name):016x}", name, 1, 1, "2026-12-04"),
        )


def markers(db: Path) -> set[str]:
    with sqlite3.connect(db, timeout=10) as conn:
        found = conn.execute("SELECT filename FROM hashes WHERE filename LIKE 'mark%'")
        return {row[0] for row in found}


def test_standalone_rollback_falls_back_from_a_tampered_staged_copy_zip_and_backup(
    demo_config: Path, tmp_path: Path, stop_leftovers: None
) -> None:
    """A tampered staged copy: the zip, verified in full. A tampered zip too: the next-newest
    backup that verifies. Nothing that verifies: refused, the database untouched (exit 3)."""
    state, backups = tmp_path / "state", tmp_path / "backups"
    db = state / "local" / "dhash.sqlite3"
    deploy_passing(demo_config, state, "1.0.0", "1.1.0")

    def rollback() -> tuple[int, list[str]]:
        result = cli(
            demo_config, state, "--json", "rollback", "--env", "local", "--reason", "drill",
            "--to-version", "1.0.0", "--yes",
        )  # fmt: skip
        events = json_lines(result.stdout)
        return result.returncode, [e["message"] for e in events if e["type"] == "log_line"]

    def back_up() -> Path:
        made = cli(demo_config, state, "--json", "backup", "--env", "local")
        assert made.returncode == 0, made.stderr
        path = Path(json.loads(made.stdout.splitlines()[-1])["path"])
        assert staged_of(path).exists()
        return path

    def staged_of(path: Path) -> Path:
        return path.with_name(path.name + ".staged.sqlite3")

    # 1. The staged copy changed (its record still matches, so it is chosen): the zip runs.
    newest = max(backups.glob("dhash_local_*.zip"))
    flip_keeping_stat(staged_of(newest))
    code, logs = rollback()
    assert code == 0, logs
    assert f"{newest.name}: verified when it was taken and staged" + STAGED_TAIL in logs
    assert any(
        m.startswith(f"database restored from {newest.name} verified and extracted from the zip")
        and "the staged copy's sha256 differs" in m
        for m in logs
    ), logs

    # 2. The staged copy and its zip changed: the next-newest backup that verifies is restored.
    add_marker(db, "mark-after-fallback-target")
    tampered = back_up()
    flip_keeping_stat(staged_of(tampered))
    flip_keeping_stat(tampered)
    code, logs = rollback()
    assert code == 0, logs
    assert any(
        m.startswith(f"database restored from {newest.name} verified and extracted from the zip")
        and f"backup {tampered.name} does not verify: sidecar" in m
        for m in logs
    ), logs
    assert markers(db) == set()  # the older backup's data, without what came after it

    # 3. Nothing verifies: refused before the database is touched, and it says so.
    last = back_up()
    flip_keeping_stat(staged_of(last))
    for path in set(backups.glob("dhash_local_*.zip")) - {tampered}:  # flipped twice is whole
        flip_keeping_stat(path)
    add_marker(db, "mark-kept")
    kept_before = sorted(db.parent.glob("dhash.sqlite3.replaced-*"))
    code, logs = rollback()
    assert code == 3, logs
    assert any("no older backup verifies either: the database is as it was" in m for m in logs)
    assert markers(db) == {"mark-kept"}
    assert sorted(db.parent.glob("dhash.sqlite3.replaced-*")) == kept_before
