"""`dhash-console notify --test`: each channel's result, exit codes, --json, no secrets."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dhash_console.commands import notify
from dhash_console.commands.context import CommandContext
from dhash_console.errors import UsageError
from tests.integration.test_notify_receiver import Receiver, Reply

TOKEN = "tokSEKRET0123456789abc"


@pytest.fixture
def threaded_receiver() -> Iterator[Receiver]:
    """The receiver on its own loop in a thread: the command runs its own asyncio.run."""
    loop = asyncio.new_event_loop()
    server = Receiver()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def run_notify(
    tmp_path: Path,
    shipped: dict[str, Any],
    notifications: dict[str, Any],
    argv: list[str],
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    json_mode: bool = False,
) -> tuple[int, str]:
    for name in ("SLACK_WEBHOOK_URL", "DISCORD_WEBHOOK_URL", "TEAMS_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    shipped["notifications"] = notifications
    config = tmp_path / "quality-gates-config.json"
    config.write_text(json.dumps(shipped))
    parser = argparse.ArgumentParser()
    notify.register(parser.add_subparsers())
    args = parser.parse_args(["notify", *argv])
    out = io.StringIO()
    ctx = CommandContext(
        config_path=config, state_dir=tmp_path, json=json_mode, stdout=out, stderr=out
    )
    code = notify.run(args, ctx)
    return code, out.getvalue()


def shipped_channels(receiver: Receiver, **slack: Any) -> dict[str, Any]:
    return {
        "console": True,
        "slack": {
            "webhook_url_env": "SLACK_WEBHOOK_URL",
            "min_interval_seconds": 0,
            "backoff_seconds": 0.01,
            **slack,
        },
        "teams": {"webhook_url_env": "TEAMS_WEBHOOK_URL", "backoff_seconds": 0.01},
    }


def test_sends_through_every_configured_channel(
    threaded_receiver: Receiver,
    tmp_path: Path,
    shipped_config_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = threaded_receiver.url(f"/services/T1/B1/{TOKEN}")
    code, out = run_notify(
        tmp_path,
        shipped_config_data,
        shipped_channels(threaded_receiver),
        ["--test", "--message", "hello <b>ops</b>"],
        monkeypatch,
        {"SLACK_WEBHOOK_URL": url},
    )
    assert code == 0, out
    [sent] = threaded_receiver.at(f"/services/T1/B1/{TOKEN}")
    assert sent.json()["blocks"][1]["text"]["text"] == "hello <b>ops</b>"
    assert "console: dhash-console test notification — hello <b>ops</b>" in out
    assert "✔ sent      slack" in out
    assert "- skipped   teams    not configured: TEAMS_WEBHOOK_URL is not set" in out
    assert TOKEN not in out


def test_a_failed_channel_exits_1_and_json_reports_each(
    threaded_receiver: Receiver,
    tmp_path: Path,
    shipped_config_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = f"/services/T1/B1/{TOKEN}"
    threaded_receiver.script(path, then=Reply(500, body="down"))
    code, out = run_notify(
        tmp_path,
        shipped_config_data,
        shipped_channels(threaded_receiver, retries=1),
        ["--test", "--message", "x"],
        monkeypatch,
        {"SLACK_WEBHOOK_URL": threaded_receiver.url(path)},
        json_mode=True,
    )
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    by_channel = {line["channel"]: line for line in lines if line["type"] == "notify_result"}
    assert by_channel["slack"]["status"] == "failed" and by_channel["slack"]["attempts"] == 2
    assert "HTTP 500: down" in by_channel["slack"]["detail"]
    assert by_channel["teams"] == {
        "type": "notify_result",
        "channel": "teams",
        "status": "not_configured",
        "ok": True,
        "attempts": 0,
        "detail": "not configured: TEAMS_WEBHOOK_URL is not set",
    }
    assert lines[-1] == {"type": "summary", "ok": False, "sent": 1, "failed": 1, "exit_code": 1}
    assert TOKEN not in out


def test_a_named_channel_without_its_variable_fails(
    tmp_path: Path,
    shipped_config_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, out = run_notify(
        tmp_path,
        shipped_config_data,
        {"console": False, "teams": {"webhook_url_env": "TEAMS_WEBHOOK_URL"}},
        ["--test", "--message", "x", "--channel", "teams"],
        monkeypatch,
        {},
    )
    assert code == 1
    assert "- skipped   teams    not configured: TEAMS_WEBHOOK_URL is not set" in out


def test_naming_a_channel_the_config_lacks_is_a_usage_error(
    tmp_path: Path,
    shipped_config_data: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(UsageError, match="--channel: email is not configured"):
        run_notify(
            tmp_path,
            shipped_config_data,
            {"console": True},
            ["--test", "--message", "x", "--channel", "email"],
            monkeypatch,
            {},
        )
