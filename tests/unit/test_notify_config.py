"""The notifications config: templates, routing names, channel settings; the shipped file."""

from __future__ import annotations

from typing import Any

import pytest

from dhash_console.config import parse_config
from dhash_console.config.notifications import NOTIFICATION_KINDS, NotificationsConfig
from dhash_console.errors import ConfigError
from dhash_console.events import (
    GateVerdict,
    RollbackFinished,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
)
from dhash_console.ops.notify.facts import RolloutFacts, build_notification
from dhash_console.ops.notify.templates import DEFAULT_TEXTS, DEFAULT_TITLES, Templates


def problems(shipped: dict[str, Any], notifications: dict[str, Any]) -> list[str]:
    shipped["notifications"] = notifications
    with pytest.raises(ConfigError) as caught:
        parse_config(shipped)
    return caught.value.problems


def test_the_shipped_notifications_config_is_valid(shipped_config_data: dict[str, Any]) -> None:
    config = parse_config(shipped_config_data)
    assert config.notifications.slack is not None
    assert config.notifications.slack.webhook_url_env == "SLACK_WEBHOOK_URL"


def test_every_kind_has_a_default_template_using_known_fields() -> None:
    for kind in NOTIFICATION_KINDS:
        NotificationsConfig(
            templates={kind: DEFAULT_TEXTS[kind], f"{kind}.title": DEFAULT_TITLES[kind]}
        )


def test_a_template_with_an_unknown_field_names_the_template(
    shipped_config_data: dict[str, Any],
) -> None:
    [problem] = problems(
        shipped_config_data, {"templates": {"gate_failed": "gate $gate hit $treshold"}}
    )
    assert problem.startswith("notifications: templates.gate_failed: unknown field(s) $treshold")


@pytest.mark.parametrize(
    ("notifications", "expected"),
    [
        ({"templates": {"gate_failed.subject": "x"}}, "templates.gate_failed.subject: unknown"),
        ({"templates": {"rollout_started": "costs $5"}}, "invalid placeholder"),
        ({"on": ["rollout_exploded"]}, "on: unknown event 'rollout_exploded'"),
        (
            {"slack": {"webhook_url_env": "S", "events": ["gate_sample"]}},
            "slack.events: unknown event 'gate_sample'",
        ),
        (
            {"webhook": {"webhook_url_env": "H", "events": ["nope"]}},
            "webhook.events: unknown event 'nope'",
        ),
        ({"email": {"host": "h", "from": "a@b", "to": ["c@d"], "tls": True}}, "exclude each other"),
        ({"slack": {"webhook_url_env": "S", "retries": 99}}, "slack.retries"),
    ],
)
def test_config_problems_name_their_field(
    shipped_config_data: dict[str, Any], notifications: dict[str, Any], expected: str
) -> None:
    found = problems(shipped_config_data, notifications)
    assert any(expected in p for p in found), found


def test_the_webhook_may_route_by_event_type(shipped_config_data: dict[str, Any]) -> None:
    shipped_config_data["notifications"] = {
        "webhook": {"webhook_url_env": "H", "events": ["gate_sample", "gate_failed", "*"]}
    }
    assert parse_config(shipped_config_data).notifications.webhook is not None


def test_an_override_template_renders_and_missing_values_say_so() -> None:
    templates = Templates(
        {
            "rollout_started": "by $started_by at $phase",
            "rollout_started.title": "[$env] $to_version",
        }
    )
    facts = RolloutFacts("staging")
    kind = facts.observe(
        RolloutStarted(
            rollout_id="r",
            env="staging",
            from_version=None,
            to_version="2.0",
            started_by="bob",
            via="tui",
            host="h",
            pid=1,
            duration_s=60,
            interval_s=5,
        )
    )
    assert kind == "rollout_started"
    note = build_notification("rollout_started", facts.values, templates)
    assert (note.title, note.text) == ("[staging] 2.0", "by bob at —")


def test_untrusted_text_is_cleaned_of_terminal_escapes() -> None:
    facts = RolloutFacts("prod")
    facts.observe(
        GateVerdict(
            rollout_id="r",
            gate="g",
            verdict="failed",
            reason="\x1b]0;pwned\x07bad\x1b[2J",
            value=1.0,
            condition="c",
            samples=1,
            fails=1,
            inconclusive=0,
        )
    )
    [values] = facts.take_pending_gates()
    note = build_notification("gate_failed", values, Templates())
    assert "\x1b" not in note.text and "bad" in note.text


def test_a_standalone_rollback_notifies_as_a_rollback_not_as_a_rollout() -> None:
    facts = RolloutFacts("prod")
    events = [
        RolloutStarted(
            rollout_id="r",
            env="prod",
            from_version="1.1.0",
            to_version="1.0.0",
            started_by="carol",
            via="cli",
            host="h",
            pid=1,
            duration_s=3600,
            interval_s=30,
            operation="rollback",
        ),
        RollbackStarted(
            rollout_id="r", from_version="1.1.0", to_version="1.0.0", reason="p95", backup=None
        ),
        RollbackFinished(rollout_id="r", ok=True, version="1.0.0", healthy=True, detail="ok"),
        RolloutFinished(rollout_id="r", outcome="rolled_back", exit_code=0, reason="p95"),
    ]
    kinds = [facts.observe(event) for event in events]
    # No "rollout 1.1.0 → 1.0.0 started, monitoring for 60 min", no "rollout of 1.0.0 failed".
    assert kinds == [None, "rollback_started", "rollback_finished", None]
    note = build_notification("rollback_finished", facts.values, Templates())
    assert "rollback done, healthy" in note.title
