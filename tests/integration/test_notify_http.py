"""The notifier against a real HTTP receiver: payloads, routing, retries, rate limits, hangs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from dhash_console.config.notifications import NotificationsConfig
from dhash_console.events import (
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    NotificationSent,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.ops.notify import Notifier
from tests.integration.test_notify_receiver import HANG, Receiver, Reply, receiver

__all__ = ["receiver"]  # the fixture, imported for pytest

FAST = {"backoff_seconds": 0.01, "timeout_seconds": 2.0, "min_interval_seconds": 0}


def failed_rollout(rollout_id: str = "r-1", env: str = "production") -> list[Event]:
    """The events of a rollout whose error-rate gate failed and was rolled back."""
    return [
        RolloutStarted(
            rollout_id=rollout_id,
            env=env,
            from_version="1.4.0",
            to_version="1.5.0",
            started_by="alice",
            via="cli",
            host="ci-7",
            pid=42,
            duration_s=3600,
            interval_s=30,
            gates=["health", "error_rate"],
        ),
        PhaseStarted(rollout_id=rollout_id, phase="monitor"),
        GateSample(
            rollout_id=rollout_id,
            gate="error_rate",
            index=3,
            result="fail",
            value=0.12,
            condition="error_rate <= 0.01",
            consecutive_fails=3,
            failure_limit=3,
        ),
        GateVerdict(
            rollout_id=rollout_id,
            gate="error_rate",
            verdict="failed",
            reason="3 consecutive fails",
            value=0.12,
            condition="error_rate <= 0.01",
            samples=4,
            fails=3,
            inconclusive=0,
        ),
        RollbackRequested(
            rollout_id=rollout_id, reason="gate error_rate failed", by="console", automatic=True
        ),
        RollbackStarted(
            rollout_id=rollout_id,
            from_version="1.5.0",
            to_version="1.4.0",
            reason="gate error_rate failed",
            backup="backups/dhash-0042.zip",
        ),
        RollbackFinished(rollout_id=rollout_id, ok=True, version="1.4.0", healthy=True),
        RolloutFinished(
            rollout_id=rollout_id,
            outcome="rolled_back",
            exit_code=1,
            reason="gate error_rate failed",
        ),
    ]


async def stream(events: Iterable[Event]) -> AsyncIterator[Event]:
    for event in events:
        yield event


class Reports:
    def __init__(self) -> None:
        self.events: list[NotificationSent] = []

    async def __call__(self, event: NotificationSent) -> None:
        self.events.append(event)

    def of(self, channel: str) -> list[NotificationSent]:
        return [e for e in self.events if e.channel == channel]


def notifier(
    config: dict[str, Any],
    environ: dict[str, str],
    reports: Reports | None = None,
    env: str = "production",
    **kwargs: Any,
) -> Notifier:
    return Notifier(
        NotificationsConfig.model_validate(config),
        env=env,
        environ=environ,
        report=reports,
        decision_grace=0.5,
        **kwargs,
    )


async def test_each_channel_gets_its_payload_shape_and_says_why(receiver: Receiver) -> None:
    config = {
        "console": False,
        "slack": {"webhook_url_env": "SLACK", **FAST},
        "discord": {"webhook_url_env": "DISCORD", **FAST},
        "teams": {"webhook_url_env": "TEAMS", **FAST},
        "webhook": {"webhook_url_env": "HOOK", **FAST},
        "on": [
            "rollout_started",
            "gate_failed",
            "rollback_started",
            "rollback_finished",
            "rollout_failed",
        ],
    }
    environ = {
        "SLACK": receiver.url("/slack"),
        "DISCORD": receiver.url("/discord"),
        "TEAMS": receiver.url("/teams"),
        "HOOK": receiver.url("/hook"),
    }
    reports = Reports()
    n = notifier(config, environ, reports)
    assert sorted(n.channels()) == ["discord", "slack", "teams", "webhook"]
    events = failed_rollout()
    await n.run(stream(events))
    result = await n.drain(5.0)
    assert not result.timed_out and result.failed == 0

    slack = [r.json() for r in receiver.at("/slack")]
    assert len(slack) == 5  # started, gate_failed, rollback started/finished, rollout_failed
    gate = next(p for p in slack if "gate error_rate failed" in p["text"])
    assert [b["type"] for b in gate["blocks"]] == ["header", "section", "section", "context"]
    said = gate["blocks"][1]["text"]["text"]
    for why in (
        "0.12",
        "error_rate <= 0.01",
        "3 consecutive failure(s) (limit 3)",
        "rolling back (automatically)",
        "phase monitor",
    ):
        assert why in said
    fields = [f["text"] for f in gate["blocks"][2]["fields"]]
    assert "Version: 1.4.0 → 1.5.0" in fields and "Environment: production" in fields
    assert all(f["type"] == "plain_text" for f in gate["blocks"][2]["fields"])
    rollback_done = next(p for p in slack if "rollback done" in p["text"])
    assert "backups/dhash-0042.zip" in rollback_done["blocks"][1]["text"]["text"]
    assert "health came back: yes" in rollback_done["blocks"][1]["text"]["text"]

    discord = [r.json() for r in receiver.at("/discord")]
    embed = discord[1]["embeds"][0]
    assert embed["title"].startswith("production: gate error_rate failed")
    assert {"name": "Measured", "value": "0.12", "inline": True} in embed["fields"]
    assert discord[1]["allowed_mentions"] == {"parse": []}

    teams = receiver.at("/teams")[0].json()
    assert teams["type"] == "message"
    attachment = teams["attachments"][0]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    assert card["body"][0]["text"] == "production: rollout 1.4.0 → 1.5.0 started"
    assert {"title": "Started by", "value": "alice"} in card["body"][2]["facts"]

    hook = [r.json() for r in receiver.at("/hook")]
    assert hook == [e.model_dump(mode="json") for e in events]

    assert {e.channel for e in reports.events} == {"slack", "discord", "teams", "webhook"}
    assert all(e.ok for e in reports.events)
    assert len(reports.of("slack")) == 5
    assert any(
        "gate_failed: production: gate error_rate failed" in e.detail for e in reports.of("slack")
    )


async def test_routing_by_event_and_environment(receiver: Receiver) -> None:
    config = {
        "console": False,
        "slack": {"webhook_url_env": "SLACK", **FAST},
        "teams": {
            "webhook_url_env": "TEAMS",
            "environments": ["production"],
            "events": ["rollback_started"],
            **FAST,
        },
        "webhook": {"webhook_url_env": "HOOK", "events": ["gate_verdict"], **FAST},
    }
    environ = {
        "SLACK": receiver.url("/slack"),
        "TEAMS": receiver.url("/teams"),
        "HOOK": receiver.url("/hook"),
    }
    staging = notifier(config, environ, env="staging")
    await staging.run(stream(failed_rollout(env="staging")))
    await staging.drain(5.0)
    production = notifier(config, environ)
    await production.run(stream(failed_rollout()))
    await production.drain(5.0)

    assert len(receiver.at("/slack")) == 8  # `on` by default: 4 of each rollout
    teams = [
        r.json()["attachments"][0]["content"]["body"][0]["text"] for r in receiver.at("/teams")
    ]
    assert teams == ["production: rolling back 1.5.0 → 1.4.0"]
    assert [r.json()["type"] for r in receiver.at("/hook")] == ["gate_verdict"] * 2


async def test_retries_on_5xx_then_records_the_dead_letter(receiver: Receiver) -> None:
    receiver.script("/flaky", Reply(500, body="oops"))
    receiver.script("/down", then=Reply(503, body="maintenance"))
    config = {
        "console": False,
        "on": ["rollout_started"],
        "slack": {"webhook_url_env": "SLACK", "retries": 2, **FAST},
        "discord": {"webhook_url_env": "DISCORD", "retries": 2, **FAST},
    }
    environ = {"SLACK": receiver.url("/flaky"), "DISCORD": receiver.url("/down")}
    reports = Reports()
    n = notifier(config, environ, reports)
    await n.run(stream(failed_rollout()[:1]))
    result = await n.drain(5.0)

    assert len(receiver.at("/flaky")) == 2 and len(receiver.at("/down")) == 3
    [ok] = reports.of("slack")
    assert ok.ok and "after 2 attempts" in ok.detail
    [dead] = reports.of("discord")
    assert not dead.ok and dead.event_type == "rollout_started"
    assert "HTTP 503: maintenance (after 3 attempts)" in dead.detail
    assert "production: rollout 1.4.0 → 1.5.0 started" in dead.detail  # the payload summary
    assert result.channels["discord"].failed == 1 and result.channels["slack"].sent == 1


async def test_a_4xx_is_not_retried(receiver: Receiver) -> None:
    receiver.script("/gone", then=Reply(404, body="no such webhook"))
    reports = Reports()
    n = notifier(
        {"console": False, "on": ["rollout_started"], "teams": {"webhook_url_env": "T", **FAST}},
        {"T": receiver.url("/gone")},
        reports,
    )
    await n.run(stream(failed_rollout()[:1]))
    await n.drain(5.0)
    assert len(receiver.at("/gone")) == 1
    assert "HTTP 404: no such webhook (after 1 attempt)" in reports.events[0].detail


@pytest.mark.parametrize(
    ("path", "reply"),
    [
        ("/api/v10/webhooks/1/tok", Reply(429, body='{"retry_after": 0.4, "global": false}')),
        ("/api/webhooks/1/tok", Reply(429, body='{"retry_after": 400, "global": false}')),
        ("/api/v10/webhooks/1/tok", Reply(429, {"x-ratelimit-reset-after": "0.4"}, "")),
        ("/api/v10/webhooks/1/tok", Reply(429, {"retry-after": "1"}, "")),
    ],
    ids=[
        "body-seconds-v10",
        "body-milliseconds-unversioned",
        "reset-after-header",
        "retry-after-header",
    ],
)
async def test_discord_429_waits_as_long_as_asked(
    receiver: Receiver, path: str, reply: Reply
) -> None:
    receiver.script(path, reply)
    reports = Reports()
    n = notifier(
        {"console": False, "on": ["rollout_started"], "discord": {"webhook_url_env": "D", **FAST}},
        {"D": receiver.url(path)},
        reports,
    )
    await n.run(stream(failed_rollout()[:1]))
    await n.drain(5.0)
    first, second = receiver.at(path)
    asked = 1.0 if "retry-after" in reply.headers else 0.4
    assert asked - 0.05 <= second.at - first.at < asked + 0.5
    assert reports.events[0].ok


async def test_discord_empty_bucket_paces_the_next_send(receiver: Receiver) -> None:
    path = "/api/v10/webhooks/1/tok"
    receiver.script(
        path, Reply(204, {"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "0.5"}, "")
    )
    n = notifier(
        {
            "console": False,
            "on": ["rollout_started", "rollback_started"],
            "discord": {"webhook_url_env": "D", **FAST},
        },
        {"D": receiver.url(path)},
    )
    events = failed_rollout()
    await n.run(stream([events[0], events[5]]))
    await n.drain(5.0)
    first, second = receiver.at(path)
    assert second.at - first.at >= 0.45


async def test_a_rate_limit_wait_longer_than_allowed_gives_up_at_once(receiver: Receiver) -> None:
    receiver.script("/slack", then=Reply(429, {"retry-after": "3600"}, "rate limited"))
    reports = Reports()
    n = notifier(
        {
            "console": False,
            "on": ["rollout_started"],
            "slack": {"webhook_url_env": "S", "max_wait_seconds": 5, **FAST},
        },
        {"S": receiver.url("/slack")},
        reports,
    )
    started = time.monotonic()
    await n.run(stream(failed_rollout()[:1]))
    await n.drain(5.0)
    assert time.monotonic() - started < 2
    assert len(receiver.at("/slack")) == 1
    assert "asked to wait 3600 s, more than max_wait_seconds 5" in reports.events[0].detail


async def test_slack_sends_about_one_message_a_second(receiver: Receiver) -> None:
    n = notifier(
        {
            "console": False,
            "on": ["rollout_started", "rollback_started"],
            "slack": {"webhook_url_env": "S", "backoff_seconds": 0.01},
        },
        {"S": receiver.url("/slack")},
    )
    events = failed_rollout()
    await n.run(stream([events[0], events[5]]))
    await n.drain(5.0)
    first, second = receiver.at("/slack")
    # Sends start a second apart; arrivals can be closer by the first request's connection
    # set-up (tens of ms on a loaded machine), and with no pacing they would be ~0 s apart.
    assert 0.8 <= second.at - first.at < 1.5


async def test_a_hung_channel_never_delays_the_caller(receiver: Receiver) -> None:
    receiver.script("/hang", then=HANG)
    reports = Reports()
    config = {
        "console": False,
        "on": ["rollout_started"],
        "slack": {
            "webhook_url_env": "S",
            "timeout_seconds": 30,
            "retries": 0,
            "min_interval_seconds": 0,
        },
        "webhook": {"webhook_url_env": "H", **FAST},
    }
    n = notifier(config, {"S": receiver.url("/hang"), "H": receiver.url("/hook")}, reports)
    many = [
        RolloutStarted(
            rollout_id=f"r-{i}",
            env="production",
            from_version="1",
            to_version="2",
            started_by="ci",
            via="ci",
            host="h",
            pid=1,
            duration_s=60,
            interval_s=1,
        )
        for i in range(100)
    ]
    started = time.monotonic()
    await n.run(stream(many))
    assert time.monotonic() - started < 0.5  # the hang is 30 s; enqueueing is all run does
    await receiver.wait_for("/hook", 100)
    result = await n.drain(1.0)
    assert result.timed_out
    assert result.channels["webhook"].sent == 100
    slack = result.channels["slack"]
    assert slack.abandoned == 100 and slack.sent == 0
    dead = reports.of("slack")
    assert len(dead) == 100 and not any(e.ok for e in dead)
    assert "still queued when the notifier stopped" in dead[-1].detail


async def test_a_full_queue_drops_and_says_so(receiver: Receiver) -> None:
    receiver.script("/hang", then=HANG)
    reports = Reports()
    n = notifier(
        {
            "console": False,
            "on": ["rollout_started"],
            "teams": {"webhook_url_env": "T", "queue_size": 2, "timeout_seconds": 30},
        },
        {"T": receiver.url("/hang")},
        reports,
    )
    await n.run(stream(failed_rollout()[:1] * 5))
    result = await n.drain(0.3)
    stats = result.channels["teams"]
    # Two fit in the queue (one may be in flight by then); the rest were dropped at once.
    assert stats.dropped >= 2 and stats.dropped + stats.abandoned == 5
    assert sum("queue full" in e.detail for e in reports.events) == stats.dropped


async def test_a_failed_gate_says_when_the_console_waits_for_the_operator(
    receiver: Receiver,
) -> None:
    from dhash_console.events import MonitorPaused

    events = [
        *failed_rollout()[:4],
        MonitorPaused(rollout_id="r-1", reason="auto_rollback is off"),
        LogLine(rollout_id="r-1", message="waiting"),
    ]
    n = notifier(
        {"console": False, "slack": {"webhook_url_env": "S", **FAST}}, {"S": receiver.url("/slack")}
    )
    await n.run(stream(events))
    await n.drain(5.0)
    texts = [r.json()["text"] for r in receiver.at("/slack")]
    assert any("paused, waiting for the operator (auto_rollback is off)" in t for t in texts)


async def test_a_failed_gate_is_sent_after_the_grace_even_without_a_decision(
    receiver: Receiver,
) -> None:
    events = asyncio.Queue[Event | None]()

    async def live() -> AsyncIterator[Event]:
        while (event := await events.get()) is not None:
            yield event

    n = notifier(
        {"console": False, "slack": {"webhook_url_env": "S", **FAST}}, {"S": receiver.url("/slack")}
    )
    task = asyncio.create_task(n.run(live()))
    for event in failed_rollout()[:4]:
        events.put_nowait(event)
    [_, gate] = await receiver.wait_for("/slack", 2, timeout=3.0)
    assert "gate error_rate failed — none yet" in gate.json()["blocks"][0]["text"]["text"]
    events.put_nowait(None)
    await task
    await n.drain(2.0)
