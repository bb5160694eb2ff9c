"""validate-logging: prove, end to end, that a rollout's run log works on this machine.

The seed's `validate_logging.js`, rebuilt on the real run log (`dhash_console.runlog`):
events go through a real event bus into a real RunLog in the state directory's `logs/`,
and the checks read back what reached the file and the console. Each check says what it
saw; nothing is assumed from configuration alone.
"""

from __future__ import annotations

import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dhash_console.events import EventBus, Level, LogLine, PhaseStarted
from dhash_console.runlog import LEVELS, PROMISED_FIELDS, REDACTED, RunLog, iso_utc

DEFAULT_REPORT = "test_logging.log"
PLANTED_WEBHOOK = "https://hooks.slack.com/services/T00CHECK/B00CHECK/PlantedWebhookSecret"
PLANTED_DB_PASSWORD = "Planted-DB-Passw0rd"
PLANTED_DB_URL = f"postgresql://dhash:{PLANTED_DB_PASSWORD}@db.example.com:5432/dhash"
# What must never be found in the file or on the console.
PLANTED_SECRETS = ("PlantedWebhookSecret", "T00CHECK", PLANTED_DB_PASSWORD)
ROTATION_MAX_BYTES = 4096
ROTATION_BACKUPS = 2
TEST_LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class LogCheck:
    name: str
    ok: bool
    detail: str


@dataclass
class LogCheckReport:
    log_dir: Path
    console_level: str
    started_at: str = field(default_factory=lambda: iso_utc(datetime.now(UTC).timestamp()))
    checks: list[LogCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(LogCheck(name, ok, detail))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "log_dir": str(self.log_dir),
            "console_level": self.console_level,
            "started_at": self.started_at,
            "checks": [asdict(check) for check in self.checks],
        }

    def render(self) -> str:
        passed = sum(check.ok for check in self.checks)
        lines = [
            "dhash-console validate-logging",
            f"time: {self.started_at}",
            f"log directory: {self.log_dir}",
            f"console level: {self.console_level}",
            "",
        ]
        lines += [f"{'PASS' if c.ok else 'FAIL'} {c.name}: {c.detail}" for c in self.checks]
        verdict = "PASSED" if self.ok else "FAILED"
        lines += ["", f"result: {verdict} ({passed}/{len(self.checks)} checks passed)"]
        return "\n".join(lines) + "\n"


def write_report(report: LogCheckReport, path: Path) -> None:
    """The seed's `test_logging.log` (raises OSError when it cannot be written)."""
    path.write_text(report.render(), encoding="utf-8")


async def validate_logging(state_dir: Path, *, console_level: str = "info") -> LogCheckReport:
    """Run every check against `<state_dir>/logs`; the report says which failed and why."""
    log_dir = Path(state_dir) / "logs"
    report = LogCheckReport(log_dir=log_dir, console_level=console_level)
    later = (
        "levels_reach_file_and_console",
        "records_are_json_with_promised_fields",
        "rotation_by_size",
        "secrets_redacted",
    )
    writable, why = _check_writable(log_dir)
    report.add("log_directory_writable", writable, why)
    if not writable:
        for name in later:
            report.add(name, False, "not run: the log directory is not writable")
        return report

    run_id = f"validate-logging-{os.getpid()}-{secrets.token_hex(3)}"
    console = io.StringIO()
    try:
        log = RunLog.open(
            state_dir, run_id, "validate-logging", console=console, console_level=console_level
        )
    except OSError as exc:
        for name in later:
            report.add(name, False, f"cannot open the run log: {exc.strerror or exc}")
        return report
    await _publish_test_records(log, run_id)
    records, problems = _read_records(log.path)

    report.add(*_check_levels(records, console.getvalue(), run_id, console_level))
    report.add(*_check_fields(records, problems, run_id))
    report.add(*_check_rotation(state_dir, run_id + "-rotation"))
    report.add(*_check_redaction(log.path, console.getvalue()))
    if report.ok:  # keep the evidence only when something is wrong
        log.path.unlink(missing_ok=True)
    return report


def _check_writable(log_dir: Path) -> tuple[bool, str]:
    probe = log_dir / f".write-probe-{os.getpid()}-{secrets.token_hex(3)}"
    if log_dir.exists() and not log_dir.is_dir():
        return False, f"{log_dir}: exists but is not a directory"
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        probe.write_text("probe", encoding="utf-8")
        back = probe.read_text(encoding="utf-8")
        probe.unlink()
    except OSError as exc:
        return False, f"{log_dir}: {exc.strerror or exc}"
    if back != "probe":
        return False, f"{log_dir}: a file written there read back differently"
    return True, f"{log_dir}: created, written, read back and removed a file"


def _marker(run_id: str, level: str) -> str:
    return f"validate-logging {level} record {run_id}"


async def _publish_test_records(log: RunLog, run_id: str) -> None:
    """Through a real bus, as a rollout's events go: one record per level, one with secrets."""
    bus = EventBus(run_id)
    subscription = bus.subscribe("runlog")
    try:
        await bus.publish(PhaseStarted(rollout_id=run_id, phase="prechecks"))
        for level in TEST_LEVELS:
            await bus.publish(
                LogLine(rollout_id=run_id, level=level, message=_marker(run_id, level))
            )
        await bus.publish(
            LogLine(
                rollout_id=run_id,
                level="error",
                message=f"planted secrets: webhook {PLANTED_WEBHOOK} database {PLANTED_DB_URL}",
            )
        )
        bus.close()
        await log.run(subscription)
    finally:
        log.close()


def _read_records(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        return [], [f"cannot read {path}: {exc.strerror or exc}"]
    for number, line in enumerate(lines, 1):
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number} is not JSON ({exc.msg})")
            continue
        if not isinstance(value, dict):
            problems.append(f"line {number} is not a JSON object")
            continue
        records.append(value)
    return records, problems


def _check_levels(
    records: list[dict[str, Any]], console: str, run_id: str, console_level: str
) -> tuple[str, bool, str]:
    name = "levels_reach_file_and_console"
    in_file = {r.get("message"): r.get("level") for r in records}
    problems = []
    for level, number in LEVELS.items():
        marker = _marker(run_id, level)
        if in_file.get(marker) != level:
            problems.append(f"{level} record missing from the file (or at another level)")
        on_console = any(marker in line and level.upper() in line for line in console.splitlines())
        expected = number >= LEVELS[console_level]
        if on_console != expected:
            state = "missing from" if expected else "leaked to"
            problems.append(f"{level} record {state} the console (console level {console_level})")
    if problems:
        return name, False, "; ".join(problems)
    shown = [lvl for lvl, n in LEVELS.items() if n >= LEVELS[console_level]]
    return name, True, f"file: {', '.join(LEVELS)}; console: {', '.join(shown)}"


def _check_fields(
    records: list[dict[str, Any]], problems: list[str], run_id: str
) -> tuple[str, bool, str]:
    name = "records_are_json_with_promised_fields"
    found = list(problems)
    if not records and not found:
        found.append("the file holds no records")
    for index, record in enumerate(records, 1):
        missing = [key for key in PROMISED_FIELDS if key not in record]
        if missing:
            found.append(f"record {index} lacks {', '.join(missing)}")
            continue
        if not _is_iso_utc(record["time"]):
            found.append(f"record {index}: time {record['time']!r} is not ISO 8601 UTC")
        if record["level"] not in LEVELS:
            found.append(f"record {index}: unknown level {record['level']!r}")
        if record["rollout_id"] != run_id or record["env"] != "validate-logging":
            found.append(f"record {index}: wrong rollout_id or env")
        if record["phase"] != "prechecks":
            found.append(f"record {index}: phase {record['phase']!r}, expected 'prechecks'")
    if found:
        return name, False, "; ".join(found[:5])
    return name, True, f"{len(records)} records, each with {', '.join(PROMISED_FIELDS)}"


def _is_iso_utc(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    offset = moment.utcoffset()
    return offset is not None and offset.total_seconds() == 0


def _check_rotation(state_dir: Path, run_id: str) -> tuple[str, bool, str]:
    name = "rotation_by_size"
    try:
        log = RunLog.open(
            state_dir,
            run_id,
            "validate-logging",
            max_bytes=ROTATION_MAX_BYTES,
            backups=ROTATION_BACKUPS,
        )
    except OSError as exc:
        return name, False, f"cannot open a run log: {exc.strerror or exc}"
    count = 3 * ROTATION_MAX_BYTES // 100  # about three files' worth of records
    try:
        for index in range(count):
            log.write("info", f"rotation record {index:05d} " + "r" * 60)
    finally:
        log.close()
    files = [log.path] + [
        log.path.with_name(f"{log.path.name}.{n}") for n in range(1, ROTATION_BACKUPS + 2)
    ]
    present = [path for path in files if path.exists()]
    problems = []
    if len(present) != ROTATION_BACKUPS + 1:
        problems.append(
            f"expected the file and {ROTATION_BACKUPS} backups, found {len(present)} file(s)"
        )
    for path in present:
        size = path.stat().st_size
        if size > ROTATION_MAX_BYTES:
            problems.append(f"{path.name} is {size} bytes, over {ROTATION_MAX_BYTES}")
        _, bad = _read_records(path)
        problems += [f"{path.name}: {p}" for p in bad]
    newest, _ = _read_records(log.path)
    if not newest or not str(newest[-1].get("message", "")).startswith(
        f"rotation record {count - 1:05d}"
    ):
        problems.append("the newest record is not in the live file")
    if problems:
        return name, False, "; ".join(problems[:5])
    for path in present:
        path.unlink(missing_ok=True)
    return (
        name,
        True,
        (
            f"{count} records at max_bytes={ROTATION_MAX_BYTES}: rotated into "
            f"{len(present) - 1} backups, every file valid JSON and within the limit"
        ),
    )


def _check_redaction(path: Path, console: str) -> tuple[str, bool, str]:
    name = "secrets_redacted"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return name, False, f"cannot read {path}: {exc.strerror or exc}"
    leaks = [
        f"{secret!r} in the {where}"
        for secret in PLANTED_SECRETS
        for where, body in (("file", text), ("console", console))
        if secret in body
    ]
    if leaks:
        return name, False, "leaked: " + ", ".join(leaks)
    if "planted secrets" not in text or REDACTED not in text:
        return name, False, "the record with planted secrets did not reach the file"
    return name, True, "a webhook URL and a database password were written, both redacted"
