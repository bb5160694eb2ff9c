"""Turn the notifications config and the environment's variables into live channels.

A channel whose secret variable is unset is "not configured" and says which variable;
the variable's value is never part of any message.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from dhash_console.config.notifications import (
    EmailChannel as EmailSettings,
)
from dhash_console.config.notifications import (
    NotificationsConfig,
)
from dhash_console.config.notifications import (
    WebhookChannel as WebhookSettings,
)
from dhash_console.ops.notify.channel import Channel
from dhash_console.ops.notify.console import ConsoleChannel
from dhash_console.ops.notify.delivery import RetryPolicy
from dhash_console.ops.notify.discord import DiscordChannel
from dhash_console.ops.notify.http import HttpChannel
from dhash_console.ops.notify.slack import SLACK_MIN_INTERVAL, SlackChannel
from dhash_console.ops.notify.smtp import EmailChannel
from dhash_console.ops.notify.teams import TeamsChannel
from dhash_console.ops.notify.webhook import WebhookChannel

HTTP_CHANNELS: dict[str, type[HttpChannel]] = {
    "slack": SlackChannel,
    "discord": DiscordChannel,
    "teams": TeamsChannel,
    "webhook": WebhookChannel,
}
DEFAULT_MIN_INTERVAL = {"slack": SLACK_MIN_INTERVAL}


@dataclass
class BuiltChannels:
    active: list[Channel] = field(default_factory=list)
    not_configured: dict[str, str] = field(default_factory=dict)  # name -> why

    @property
    def secrets(self) -> list[str]:
        return [secret for channel in self.active for secret in channel.secrets]


def configured_names(config: NotificationsConfig) -> list[str]:
    """Channels the config names, whether or not their variables are set."""
    names = ["console"] if config.console else []
    return names + [n for n in (*HTTP_CHANNELS, "email") if getattr(config, n) is not None]


def _policy(settings: WebhookSettings | EmailSettings) -> RetryPolicy:
    return RetryPolicy(
        retries=settings.retries,
        backoff_s=settings.backoff_seconds,
        max_wait_s=settings.max_wait_seconds,
    )


def build_channels(
    config: NotificationsConfig,
    environ: Mapping[str, str],
    *,
    console: Callable[[str], None] | None,
    clock: Callable[[], float],
) -> BuiltChannels:
    built = BuiltChannels()
    if config.console:
        if console is not None:
            built.active.append(ConsoleChannel(console, events=None, clock=clock))
        else:
            built.not_configured["console"] = "not configured: no console to show it on"
    for name, cls in HTTP_CHANNELS.items():
        settings: WebhookSettings | None = getattr(config, name)
        if settings is None:
            continue
        url = environ.get(settings.webhook_url_env, "").strip()
        if not url:
            built.not_configured[name] = f"not configured: {settings.webhook_url_env} is not set"
            continue
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            built.not_configured[name] = (
                f"not configured: {settings.webhook_url_env} is not an http(s) URL"
            )
            continue
        interval = settings.min_interval_seconds
        channel = cls(
            url,
            timeout=settings.timeout_seconds,
            policy=_policy(settings),
            min_interval=DEFAULT_MIN_INTERVAL.get(name, 0.0) if interval is None else interval,
            clock=clock,
            events=settings.events,
            environments=settings.environments,
        )
        channel.queue_size = settings.queue_size
        built.active.append(channel)
    if config.email is not None:
        email = _email(config.email, environ, clock)
        if isinstance(email, str):
            built.not_configured["email"] = email
        else:
            built.active.append(email)
    secrets = built.secrets
    for active in built.active:
        if isinstance(active, ConsoleChannel):
            active.secrets = secrets
    return built


def _email(
    settings: EmailSettings, environ: Mapping[str, str], clock: Callable[[], float]
) -> EmailChannel | str:
    credentials: dict[str, str | None] = {"username": None, "password": None}
    for key, var in (("username", settings.username_env), ("password", settings.password_env)):
        if var is None:
            continue
        value = environ.get(var, "")
        if not value:
            return f"not configured: {var} is not set"
        credentials[key] = value
    channel = EmailChannel(
        host=settings.host,
        port=settings.port,
        starttls=settings.starttls,
        tls=settings.tls,
        ca_file=settings.ca_file,
        username=credentials["username"],
        password=credentials["password"],
        sender=settings.sender,
        to=settings.to,
        subject_prefix=settings.subject_prefix,
        timeout=settings.timeout_seconds,
        policy=_policy(settings),
        clock=clock,
        events=settings.events,
        environments=settings.environments,
    )
    channel.queue_size = settings.queue_size
    return channel
