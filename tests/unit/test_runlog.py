"""The run log: valid JSON lines with the promised fields, levels, rotation, redaction."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from dhash_console.events import (
    EventBus,
    GateSample,
    GateVerdict,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    RollbackStarted,
    RolloutFinished,
)
from dhash_console.runlog import PROMISED_FIELDS, Redactor, RunLog, log_path, secrets_from_environ

WEBHOOK = "https://hooks.slack.com/services/T0AAAA/B0BBBB/zzSecretWebhookToken"
DB_URL = "postgresql://dhash:hunter2-db-pw@db.example.com:5432/dhash"


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def run_through_bus(log: RunLog, events: list[Any]) -> None:
    bus = EventBus("r-1")
    subscription = bus.subscribe("runlog")
    task = asyncio.create_task(log.run(subscription))
    for event in events:
        await bus.publish(event)
    bus.close()
    await asyncio.wait_for(task, 5)
    log.close()


async def test_records_carry_the_promised_fields_and_follow_the_phase(tmp_path: Path) -> None:
    log = RunLog.open(tmp_path, "r-1", "local", secrets=[])
    await run_through_bus(
        log,
        [
            PhaseStarted(rollout_id="r-1", phase="deploy"),
            LogLine(rollout_id="r-1", level="info", message="deploying 1.1.0"),
            PhaseFinished(rollout_id="r-1", phase="deploy", status="ok", duration_s=0.5),
            LogLine(rollout_id="r-1", level="info", message="between phases"),
        ],
    )
    records = read_records(log_path(tmp_path, "r-1"))
    assert len(records) == 4
    for record in records:
        assert set(PROMISED_FIELDS) <= record.keys()
        assert record["rollout_id"] == "r-1" and record["env"] == "local"
        assert record["time"].endswith("Z")
        parsed = datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
        offset = parsed.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
    assert [r["phase"] for r in records] == ["deploy", "deploy", "deploy", None]
    assert [r["event"] for r in records] == [
        "phase_started",
        "log_line",
        "phase_finished",
        "log_line",
    ]
    assert records[1]["message"] == "deploying 1.1.0"
    assert records[2]["data"]["status"] == "ok"
    assert [r["data"]["seq"] for r in records] == [1, 2, 3, 4]


async def test_levels_follow_what_the_event_means(tmp_path: Path) -> None:
    log = RunLog.open(tmp_path, "r-1", "local", secrets=[])
    await run_through_bus(
        log,
        [
            LogLine(rollout_id="r-1", level="debug", message="d"),
            LogLine(rollout_id="r-1", level="error", message="e"),
            GateSample(
                rollout_id="r-1", gate="health", index=1, result="pass", value=1, condition="c"
            ),
            GateVerdict(
                rollout_id="r-1",
                gate="error_rate",
                verdict="failed",
                reason="0.5 > 0.01",
                value=0.5,
                condition="error ratio <= 0.01",
                samples=3,
                fails=3,
                inconclusive=0,
            ),
            RollbackStarted(rollout_id="r-1", from_version="2.0.0", to_version="1.0.0", reason="x"),
            RolloutFinished(rollout_id="r-1", outcome="rolled_back", exit_code=1, reason="x"),
            RolloutFinished(rollout_id="r-1", outcome="succeeded", exit_code=0, reason="ok"),
        ],
    )
    levels = [r["level"] for r in read_records(log.path)]
    assert levels == ["debug", "error", "debug", "warning", "warning", "error", "info"]


def test_file_rotates_by_size_and_every_file_holds_valid_json(tmp_path: Path) -> None:
    log = RunLog.open(tmp_path, "r-rot", "local", max_bytes=2_000, backups=2, secrets=[])
    for index in range(200):
        log.write("info", f"record {index} " + "x" * 40)
    log.close()
    files = sorted(log.path.parent.glob(log.path.name + "*"))
    assert [f.name for f in files] == [
        log.path.name,
        log.path.name + ".1",
        log.path.name + ".2",
    ]
    for path in files:
        assert path.stat().st_size <= 2_000
        for record in read_records(path):
            assert record["message"].startswith("record ")
    # The newest records are in the live file.
    assert read_records(log.path)[-1]["message"].startswith("record 199 ")


def test_secrets_are_redacted_from_messages_and_data(tmp_path: Path) -> None:
    told = "plain-told-secret-value"
    log = RunLog.open(tmp_path, "r-1", "local", secrets=[told])
    log.write(
        "error",
        f"posting to {WEBHOOK} failed; db {DB_URL}; token {told}",
        data={"nested": [{"url": WEBHOOK}], "db": DB_URL},
    )
    log.close()
    text = log.path.read_text(encoding="utf-8")
    for secret in ("zzSecretWebhookToken", "hunter2-db-pw", told, "T0AAAA"):
        assert secret not in text
    record = read_records(log.path)[0]
    assert "https://hooks.slack.com/***" in record["message"]
    assert "postgresql://dhash:***@db.example.com:5432/dhash" in record["message"]
    assert record["data"]["db"] == "postgresql://dhash:***@db.example.com:5432/dhash"


def test_secret_values_come_from_secret_named_variables() -> None:
    environ = {
        "SLACK_WEBHOOK_URL": "https://example.com/hook/abc",
        "SMTP_PASSWORD": "pw-1234",
        "HOME": "/root",
    }
    assert sorted(secrets_from_environ(environ)) == ["https://example.com/hook/abc", "pw-1234"]
    redactor = Redactor(secrets_from_environ(environ))
    assert redactor.text("sent to https://example.com/hook/abc as pw-1234") == "sent to *** as ***"
    assert redactor.text("https://api.example.com/q?token=abc123&x=1") == (
        "https://api.example.com/q?token=***&x=1"
    )


def test_console_gets_its_levels_only_and_clean_text(tmp_path: Path) -> None:
    console = io.StringIO()
    log = RunLog.open(tmp_path, "r-1", "local", secrets=[], console=console, console_level="info")
    log.write("debug", "quiet detail")
    log.write("warning", "loud \x1b[2Jwarning [bold]kept[/bold]")
    log.close()
    shown = console.getvalue()
    assert "quiet detail" not in shown
    assert "WARNING" in shown and "loud warning [bold]kept[/bold]" in shown
    assert "\x1b" not in shown
    # The file keeps every level.
    assert [r["level"] for r in read_records(log.path)] == ["debug", "warning"]


def test_a_told_webhook_is_masked_whole_in_pieces_and_percent_encoded() -> None:
    webhook = "https://chat.example.net/hooks/AbCdEf123456?sig=Zz9/Yy8+Xx7"
    redactor = Redactor([webhook])
    assert "AbCdEf123456" not in redactor.text(f"posting to {webhook} failed")
    assert redactor.text("retrying token AbCdEf123456") == "retrying token ***"
    assert "Zz9" not in redactor.text("sig=Zz9%2FYy8%2BXx7 refused")
