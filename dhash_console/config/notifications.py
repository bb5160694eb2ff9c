"""Notification channels, which events reach them, and the templates of their messages."""

from __future__ import annotations

from string import Template

from pydantic import BaseModel, ConfigDict, Field, model_validator

# What a notification is about; the notifier maps rollout events to these.
NOTIFICATION_KINDS = (
    "rollout_started",
    "gate_failed",
    "rollback_started",
    "rollback_finished",
    "rollout_succeeded",
    "rollout_failed",
    "test",
)

DEFAULT_EVENTS = [
    "rollout_started",
    "gate_failed",
    "rollback_started",
    "rollback_finished",
    "rollout_succeeded",
]

# The `$field`s a template may use; each is filled from what the notifier knows (`—` if not).
TEMPLATE_FIELDS = frozenset(
    {
        "kind",
        "env",
        "rollout_id",
        "from_version",
        "to_version",
        "started_by",
        "via",
        "host",
        "phase",
        "gates",
        "duration",
        "gate",
        "value",
        "condition",
        "consecutive_fails",
        "failure_limit",
        "samples",
        "gate_reason",
        "action",
        "reason",
        "requested_by",
        "backup",
        "rollback_version",
        "healthy",
        "rollback_result",
        "outcome",
        "exit_code",
        "detail",
        "message",
    }
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Delivery(_Strict):
    """How hard a channel tries: bounded retries with exponential backoff, bounded waits."""

    timeout_seconds: float = Field(10.0, gt=0, le=300, description="per attempt")
    retries: int = Field(
        3, ge=0, le=10, description="attempts after the first, on 429, 5xx and timeouts"
    )
    backoff_seconds: float = Field(1.0, ge=0, le=60, description="first backoff; doubles")
    max_wait_seconds: float = Field(
        60.0, ge=0, description="longest rate-limit wait honoured; longer gives up"
    )
    queue_size: int = Field(500, ge=1, le=100_000, description="pending sends before dropping")
    events: list[str] | None = Field(None, description="events for this channel; default: `on`")
    environments: list[str] | None = Field(None, description="environments; default: all")


class WebhookChannel(_Delivery):
    """A webhook whose URL (a secret) is read from an environment variable."""

    webhook_url_env: str = Field(min_length=1)
    min_interval_seconds: float | None = Field(
        None, ge=0, description="least time between two sends; default 1 for Slack, else 0"
    )


class EmailChannel(_Delivery):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = Field(False, description="implicit TLS (port 465); excludes starttls")
    ca_file: str | None = Field(None, description="CA bundle for a private mail server")
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    subject_prefix: str = "[dhash] "


CHANNEL_NAMES = ("console", "slack", "discord", "teams", "webhook", "email")


def _event_types() -> set[str]:
    from typing import get_args

    from dhash_console.events import Event

    union = get_args(Event)[0]
    return {member.model_fields["type"].default for member in get_args(union)}


class NotificationsConfig(_Strict):
    console: bool = True
    slack: WebhookChannel | None = None
    discord: WebhookChannel | None = None
    teams: WebhookChannel | None = None
    webhook: WebhookChannel | None = Field(
        None, description="generic JSON webhook: every event as journaled, unless `events`"
    )
    email: EmailChannel | None = None
    on: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    templates: dict[str, str] = Field(
        default_factory=dict,
        description="`KIND` (message) or `KIND.title` -> string.Template text using $fields",
    )

    @model_validator(mode="after")
    def _consistent(self) -> NotificationsConfig:
        kinds = set(NOTIFICATION_KINDS)
        problems = [f"on: unknown event {name!r}" for name in self.on if name not in kinds]
        for name in ("slack", "discord", "teams", "email"):
            channel = getattr(self, name)
            for event in (channel.events or []) if channel else []:
                if event not in kinds and event != "*":
                    problems.append(f"{name}.events: unknown event {event!r}")
        if self.webhook is not None and self.webhook.events:
            known = kinds | _event_types() | {"*"}
            problems += [
                f"webhook.events: unknown event {event!r}"
                for event in self.webhook.events
                if event not in known
            ]
        if self.email is not None and self.email.tls and self.email.starttls:
            problems.append("email: `tls` (implicit TLS) and `starttls` exclude each other")
        for key, text in self.templates.items():
            problems += _template_problems(key, text)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _template_problems(key: str, text: str) -> list[str]:
    kind, _, part = key.partition(".")
    if kind not in NOTIFICATION_KINDS or part not in ("", "title"):
        return [
            f"templates.{key}: unknown template (use KIND or KIND.title, KIND one of "
            f"{', '.join(NOTIFICATION_KINDS)})"
        ]
    template = Template(text)
    if not template.is_valid():
        return [f"templates.{key}: invalid placeholder (write $field, ${{field}} or $$)"]
    unknown = sorted(set(template.get_identifiers()) - TEMPLATE_FIELDS)
    if unknown:
        return [
            f"templates.{key}: unknown field(s) {', '.join('$' + u for u in unknown)} "
            f"(known: {', '.join(sorted(TEMPLATE_FIELDS))})"
        ]
    return []
