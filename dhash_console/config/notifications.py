"""Notification channels and which events reach them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_EVENTS = [
    "rollout_started",
    "gate_failed",
    "rollback_started",
    "rollback_finished",
    "rollout_succeeded",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class WebhookChannel(_Strict):
    """A webhook whose URL (a secret) is read from an environment variable."""

    webhook_url_env: str = Field(min_length=1)
    events: list[str] | None = Field(None, description="events for this channel; default: `on`")
    environments: list[str] | None = Field(None, description="environments; default: all")


class EmailChannel(_Strict):
    host: str
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    tls: bool = False
    username_env: str | None = None
    password_env: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(10.0, gt=0)
    events: list[str] | None = None
    environments: list[str] | None = None


class NotificationsConfig(_Strict):
    console: bool = True
    slack: WebhookChannel | None = None
    discord: WebhookChannel | None = None
    teams: WebhookChannel | None = None
    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None
    on: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    templates: dict[str, str] = Field(default_factory=dict)
