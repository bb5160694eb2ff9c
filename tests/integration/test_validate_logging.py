"""`dhash-console validate-logging` as a real process: exit codes, report file, JSON."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dhash_console.cli import COMMAND_MODULES
from dhash_console.ops.logcheck import PLANTED_SECRETS, validate_logging, write_report

# The CLI imports every command module to build its parser; until all exist it cannot start.
MISSING_COMMANDS = [
    name
    for name in COMMAND_MODULES
    if importlib.util.find_spec(f"dhash_console.commands.{name}") is None
]
needs_cli = pytest.mark.skipif(
    bool(MISSING_COMMANDS), reason=f"command modules not there yet: {MISSING_COMMANDS}"
)


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DHASH_CONSOLE_")}
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "-m", "dhash_console", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_cli
def test_passes_in_a_fresh_directory_and_writes_the_report(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--state-dir", str(tmp_path / "state"), "validate-logging")
    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "test_logging.log").read_text(encoding="utf-8")
    for name in (
        "log_directory_writable",
        "levels_reach_file_and_console",
        "records_are_json_with_promised_fields",
        "rotation_by_size",
        "secrets_redacted",
    ):
        assert f"PASS {name}" in report
        assert name in result.stdout
    assert "result: PASSED (5/5 checks passed)" in report
    everything = report + result.stdout + result.stderr
    assert not any(secret in everything for secret in PLANTED_SECRETS)
    # Its test records are cleaned up; the logs directory stays for real rollouts.
    assert (tmp_path / "state" / "logs").is_dir()
    assert list((tmp_path / "state" / "logs").iterdir()) == []


@needs_cli
def test_fails_with_exit_1_when_the_log_directory_cannot_be_created(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "logs").write_text("a file where the log directory should be")  # fails as root too
    report = tmp_path / "reports" / "logging.txt"
    report.parent.mkdir()
    result = run_cli(
        tmp_path, "--state-dir", str(state), "validate-logging", "--report", str(report), "--json"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["type"] == "summary" and summary["ok"] is False
    checks = {check["name"]: check for check in summary["checks"]}
    assert checks["log_directory_writable"]["ok"] is False
    assert all(not check["ok"] for check in checks.values())
    assert summary["report"] == str(report)
    assert "FAIL log_directory_writable" in report.read_text(encoding="utf-8")
    assert "result: FAILED" in report.read_text(encoding="utf-8")


@needs_cli
@pytest.mark.parametrize("level", ["warning", "debug"])
def test_console_level_is_honoured(tmp_path: Path, level: str) -> None:
    result = run_cli(
        tmp_path, "--state-dir", str(tmp_path / "s"), "validate-logging", "--console-level", level
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = (tmp_path / "test_logging.log").read_text(encoding="utf-8")
    assert f"console level: {level}" in report
    shown = "warning, error" if level == "warning" else "debug, info, warning, error"
    assert f"console: {shown}" in report


@needs_cli
def test_unwritable_report_path_exits_1_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("not a directory")
    result = run_cli(
        tmp_path,
        "--state-dir",
        str(tmp_path / "s"),
        "validate-logging",
        "--report",
        str(tmp_path / "blocker" / "report.log"),
    )
    assert result.returncode == 1
    assert "--report" in result.stderr


async def test_the_checks_pass_and_fail_in_process(tmp_path: Path) -> None:
    """The same checks without the CLI around them: a good directory, then a blocked one."""
    good = await validate_logging(tmp_path / "good")
    assert good.ok, good.render()
    assert [c.name for c in good.checks] == [
        "log_directory_writable",
        "levels_reach_file_and_console",
        "records_are_json_with_promised_fields",
        "rotation_by_size",
        "secrets_redacted",
    ]
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "logs").write_text("a file, not a directory")
    blocked = await validate_logging(tmp_path / "blocked")
    assert not blocked.ok
    assert blocked.checks[0].detail.endswith("exists but is not a directory")
    report = tmp_path / "test_logging.log"
    write_report(blocked, report)
    assert "FAIL log_directory_writable" in report.read_text(encoding="utf-8")
