"""A notification channel that hangs never delays a rollback (issue: notifications)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dhash_console.config import NotificationsConfig
from dhash_console.engine.rollout import RolloutRequest
from dhash_console.engine.session import SessionOptions, run_rollout
from tests.integration.test_notify_receiver import HANG, Receiver, receiver  # noqa: F401
from tests.servers import ScriptedService, running
from tests.unit.test_engine import Recorder, make_env


@pytest.fixture
def service() -> Iterator[ScriptedService]:
    with running(ScriptedService()) as svc:
        yield svc


async def test_a_hung_channel_does_not_delay_the_rollback(
    tmp_path: Path,
    service: ScriptedService,
    receiver: Receiver,  # noqa: F811
) -> None:
    receiver.script("/slack", then=HANG)
    env = make_env(tmp_path, service, interval_seconds=0.2)
    service.error_ratio = 0.5
    notifications = NotificationsConfig.model_validate(
        {
            "console": False,
            "slack": {"webhook_url_env": "SLACK_WEBHOOK_URL", "timeout_seconds": 30, "retries": 0},
            "on": ["rollout_started", "gate_failed", "rollback_started", "rollback_finished"],
        }
    )
    recorder = Recorder()
    request = RolloutRequest(
        env=env, to_version=None, started_by="t", monitor_only=True, duration_minutes=1
    )
    options = SessionOptions(
        faces=[recorder],
        notifications=notifications,
        notify_drain_s=0.5,
        environ={"SLACK_WEBHOOK_URL": receiver.url("/slack")},
    )
    started = time.monotonic()
    result, _ = await run_rollout(request, options)
    elapsed = time.monotonic() - started
    assert result.outcome in ("rolled_back", "rollback_failed")
    by_type: dict[str, Any] = {e.type: e for e in recorder.events}
    last_sample = max(e.at for e in recorder.events if e.type == "gate_sample")
    # The rollback starts right after the deciding sample, while the channel hangs.
    assert by_type["rollback_started"].at - last_sample < 0.5
    assert receiver.at("/slack"), "the hung channel was tried"
    assert elapsed < 10  # three 0.2 s rounds, a short drain: nothing waited on the 30 s hang
