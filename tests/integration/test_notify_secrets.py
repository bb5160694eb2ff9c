"""Planted secrets (webhook URLs, their path tokens and query strings, an SMTP password)
never reach any output: history records, console lines, log records, results, exceptions."""

from __future__ import annotations

import logging
import socket

import pytest

from dhash_console.config.notifications import NotificationsConfig
from dhash_console.events import RolloutFinished
from dhash_console.ops.notify import Notifier, send_test
from tests.integration.test_notify_http import Reports, failed_rollout, stream
from tests.integration.test_notify_receiver import HANG, Receiver, Reply, receiver

__all__ = ["receiver"]

SLACK_TOKEN = "xoxSEKRETtoken0123456789"
QUERY_SIG = "sigSEKRET9876543210"
USER_PASSWORD = "pwSEKRETuserinfo42"
DISCORD_TOKEN = "discordSEKRETtoken_abcdef"
SMTP_PASSWORD = "smtpSEKRETpassword!7"
PLANTED = [SLACK_TOKEN, QUERY_SIG, USER_PASSWORD, DISCORD_TOKEN, SMTP_PASSWORD]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Echo(Reply):
    """Marker: answer 500 with the request target in the body, as careless servers do."""


def setup(receiver: Receiver) -> tuple[dict[str, object], dict[str, str]]:
    slack_path = f"/services/T012345678/B012345678/{SLACK_TOKEN}"
    receiver.script(slack_path, then=Reply(500, body=f"bad hook {slack_path}?sig={QUERY_SIG}"))
    receiver.script(f"/workflows/abc123def456/{QUERY_SIG}", then=HANG)
    environ = {
        "SLACK_WEBHOOK_URL": receiver.url(slack_path) + f"?sig={QUERY_SIG}&v=1",
        "TEAMS_WEBHOOK_URL": receiver.url(f"/workflows/abc123def456/{QUERY_SIG}"),
        "DISCORD_WEBHOOK_URL": f"http://hook:{USER_PASSWORD}@127.0.0.1:{closed_port()}"
        f"/api/v10/webhooks/1234567890/{DISCORD_TOKEN}",
        "SMTP_USER": "rollouts",
        "SMTP_PASSWORD": SMTP_PASSWORD,
    }
    fast = {"retries": 1, "backoff_seconds": 0.01, "timeout_seconds": 0.3}
    config = {
        "console": True,
        "slack": {"webhook_url_env": "SLACK_WEBHOOK_URL", "min_interval_seconds": 0, **fast},
        "discord": {"webhook_url_env": "DISCORD_WEBHOOK_URL", **fast},
        "teams": {"webhook_url_env": "TEAMS_WEBHOOK_URL", **fast},
        "email": {
            "host": "127.0.0.1",
            "port": closed_port(),
            "starttls": False,
            "username_env": "SMTP_USER",
            "password_env": "SMTP_PASSWORD",
            "from": "a@example.com",
            "to": ["b@example.com"],
            **fast,
        },
        "on": ["rollout_started", "rollout_failed"],
    }
    return config, environ


def assert_clean(texts: list[str]) -> None:
    for text in texts:
        for secret in PLANTED:
            assert secret not in text, f"secret leaked in: {text!r}"


async def test_no_secret_reaches_history_console_or_logs(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config, environ = setup(receiver)
    reports = Reports()
    lines: list[str] = []
    notifier = Notifier(
        NotificationsConfig.model_validate(config),
        env="production",
        environ=environ,
        report=reports,
        console=lines.append,
    )
    events = failed_rollout()
    # An engine reason that quotes a secret (it happens) is masked on the console too.
    leaky = RolloutFinished(
        rollout_id="r-1",
        outcome="failed",
        exit_code=1,
        reason=f"could not post to {environ['SLACK_WEBHOOK_URL']}",
    )
    await notifier.run(stream([events[0], leaky]))
    result = await notifier.drain(5.0)

    assert result.failed == 8  # four channels that cannot deliver, two messages each
    assert {e.channel for e in reports.events if not e.ok} == {"slack", "discord", "teams", "email"}
    assert len(lines) == 2 and "***" in lines[1]
    outputs = [e.model_dump_json() for e in reports.events] + lines
    outputs += [record.getMessage() for record in caplog.records]
    outputs += [str(record.args) for record in caplog.records]
    assert any("HTTP 500: bad hook" in e.detail for e in reports.of("slack"))
    assert any(r.name == "httpx" for r in caplog.records)  # httpx logged, redacted
    assert_clean(outputs)


async def test_no_secret_reaches_the_test_command_results(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config, environ = setup(receiver)
    results = await send_test(
        NotificationsConfig.model_validate(config),
        environ,
        "hello",
        None,
        console=lambda line: None,
    )
    assert {r.channel: r.status for r in results} == {
        "console": "sent",
        "slack": "failed",
        "discord": "failed",
        "teams": "failed",
        "email": "failed",
    }
    assert_clean([r.detail for r in results] + [r.getMessage() for r in caplog.records])
