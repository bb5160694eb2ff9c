"""The structured run log: one JSON object per line for every event of a rollout.

Each rollout writes `<state_dir>/logs/rollout-<rollout_id>.jsonl`, beside the history
database, rotated by size. Every record carries the fields we promise to whoever reads
these files (people, log shippers): `time` (ISO 8601, UTC), `level`, `rollout_id`, `env`,
`phase`, `message`, plus `event` (the event type) and `data` (the event's fields).

Secrets never reach the file: the values we are told about (through `redact`, with their
percent-encoded forms and a webhook URL's token on its own), and anything shaped like a
password in a URL or a webhook URL, are redacted from every string before it is written.
A console stream can be attached with its own threshold (validate-logging checks both).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import re
from collections.abc import AsyncIterable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from dhash_console.events import (
    Event,
    GateSample,
    GateVerdict,
    LogLine,
    MonitorPaused,
    NotificationSent,
    PhaseFinished,
    PhaseStarted,
    RollbackFinished,
    RollbackRequested,
    RollbackStarted,
    RolloutFinished,
    RolloutStarted,
    SubscriberDropped,
)
from dhash_console.redact import MASK, redact, url_secrets
from dhash_console.textsafe import clean

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
PROMISED_FIELDS = ("time", "level", "rollout_id", "env", "phase", "message")
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
DEFAULT_BACKUPS = 5
REDACTED = MASK

# Environment variables whose values are secrets wherever they show up.
_SECRET_ENV = re.compile(r"(WEBHOOK_URL|PASSWORD|PASSWD|TOKEN|SECRET|API_KEY)$", re.IGNORECASE)
# user:password@ in any URL (postgresql://u:pw@h/db, https://u:pw@host/).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(?=@)", re.I)
# Webhook URLs carry their credential in the path: keep the host, drop the rest.
_WEBHOOK = re.compile(
    r"(?P<head>https?://(?:[\w-]+\.)*(?:hooks\.slack\.com|discord(?:app)?\.com|"
    r"webhook\.office\.com|logic\.azure\.com))(?P<rest>[/?][^\s\"'<>]*)",
    re.I,
)
# Credentials passed as query parameters (?token=..., &sig=...).
_QUERY_SECRET = re.compile(
    r"(?P<head>[?&](?:token|access_token|api_key|apikey|key|sig|signature|password|secret)=)"
    r"[^&\s\"'<>#]+",
    re.I,
)


def secrets_from_environ(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of variables named like secrets (SLACK_WEBHOOK_URL, SMTP_PASSWORD, ...)."""
    source = os.environ if environ is None else environ
    return [value for name, value in source.items() if _SECRET_ENV.search(name) and value]


class Redactor:
    """Removes known secret values and secret-shaped substrings from text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # A webhook URL is also secret piece by piece (its token, its query): an error text
        # may quote only part of it. Shorter than 4 characters would mask half the log.
        pieces = {piece for secret in secrets if secret for piece in url_secrets(secret)}
        self._secrets = sorted(piece for piece in pieces if len(piece) >= 4)

    def text(self, text: str) -> str:
        text = redact(text, self._secrets)  # and their percent-encoded forms
        text = _WEBHOOK.sub(lambda m: m["head"] + "/" + REDACTED, text)
        text = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED, text)
        return _QUERY_SECRET.sub(lambda m: m["head"] + REDACTED, text)

    def value(self, value: Any) -> Any:
        """Redact every string inside a JSON-like value (keys stay as they are)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {key: self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(item) for item in value]
        return value


def iso_utc(epoch: float) -> str:
    """`2026-12-04T12:01:02.345Z`: ISO 8601, UTC, milliseconds."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def safe_file_part(text: str) -> str:
    """A rollout id as a file-name part on every OS."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)[:120] or "rollout"


def log_path(state_dir: Path, rollout_id: str) -> Path:
    return state_dir / "logs" / f"rollout-{safe_file_part(rollout_id)}.jsonl"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(record.__dict__["payload"], ensure_ascii=False, default=str)


class _ConsoleFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        p = record.__dict__["payload"]
        where = f"{p['env']}/{p['phase']}" if p["phase"] else p["env"]
        return f"{p['time']} {p['level'].upper():<7} [{where}] {clean(p['message'])}"


def event_level(event: Event) -> str:
    """How loud an event is in the log: trouble is a warning, a failed outcome an error."""
    if isinstance(event, LogLine):
        return event.level
    if isinstance(event, GateSample):
        return {"pass": "debug", "inconclusive": "info"}.get(event.result, "warning")
    if isinstance(event, GateVerdict):
        return "info" if event.verdict == "passed" else "warning"
    if isinstance(event, PhaseFinished):
        return {"failed": "error", "interrupted": "warning"}.get(event.status, "info")
    if isinstance(event, RolloutFinished):
        return "info" if event.outcome == "succeeded" else "error"
    if isinstance(event, RollbackFinished):
        return "warning" if event.ok and event.healthy else "error"
    if isinstance(event, NotificationSent):
        return "info" if event.ok else "warning"
    if isinstance(event, RollbackRequested | RollbackStarted | MonitorPaused | SubscriberDropped):
        return "warning"
    return "info"


def event_message(event: Event) -> str:
    """One readable line for an event (the full fields go in `data`)."""
    if isinstance(event, LogLine):
        return event.message if event.source == "engine" else f"{event.source}: {event.message}"
    if isinstance(event, RolloutStarted):
        return (
            f"rollout of {event.to_version} to {event.env} started by {event.started_by} "
            f"(from {event.from_version or 'nothing'}{', dry run' if event.dry_run else ''})"
        )
    if isinstance(event, RolloutFinished):
        return f"rollout finished: {event.outcome} (exit {event.exit_code}): {event.reason}"
    if isinstance(event, PhaseStarted):
        return f"phase {event.phase} started" + (f": {event.detail}" if event.detail else "")
    if isinstance(event, PhaseFinished):
        text = f"phase {event.phase} {event.status} in {event.duration_s:.2f}s"
        return text + (f": {event.detail}" if event.detail else "")
    if isinstance(event, GateSample):
        return f"gate {event.gate} sample {event.index}: {event.result} ({event.condition})"
    if isinstance(event, GateVerdict):
        return f"gate {event.gate} {event.verdict}: {event.reason}"
    if isinstance(event, RollbackStarted):
        return f"rollback to {event.to_version} started: {event.reason}"
    if isinstance(event, RollbackFinished):
        state = "ok" if event.ok else "FAILED"
        return f"rollback {state}, {event.version or 'no version'} healthy={event.healthy}"
    if isinstance(event, RollbackRequested):
        how = "automatic" if event.automatic else f"by {event.by}"
        return f"rollback requested ({how}): {event.reason}"
    if isinstance(event, NotificationSent):
        state = "sent" if event.ok else "FAILED"
        return f"notification {event.event_type} via {event.channel} {state}"
    if isinstance(event, SubscriberDropped):
        return f"{event.subscriber} fell behind and dropped {event.dropped} event(s)"
    return event.type.replace("_", " ")


class RunLog:
    """Writes one rollout's records to its rotating JSON-lines file (and a console, if given)."""

    def __init__(
        self,
        path: Path,
        rollout_id: str,
        env: str,
        handlers: list[logging.Handler],
        redactor: Redactor,
    ) -> None:
        self.path = path
        self.rollout_id = rollout_id
        self.env = env
        self.phase: str | None = None
        self._handlers = handlers
        self._redactor = redactor

    @classmethod
    def open(
        cls,
        state_dir: Path,
        rollout_id: str,
        env: str,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
        secrets: Iterable[str] | None = None,
        file_level: str = "debug",
        console: TextIO | None = None,
        console_level: str = "info",
    ) -> RunLog:
        """Create the log directory and open the file (raises OSError when it cannot).

        `secrets=None` means the values of the secret-named environment variables.
        """
        path = log_path(Path(state_dir), rollout_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8"
        )
        file_handler.setLevel(LEVELS[file_level])
        file_handler.setFormatter(_JsonFormatter())
        handlers: list[logging.Handler] = [file_handler]
        if console is not None:
            console_handler = logging.StreamHandler(console)
            console_handler.setLevel(LEVELS[console_level])
            console_handler.setFormatter(_ConsoleFormatter())
            handlers.append(console_handler)
        known = secrets_from_environ() if secrets is None else list(secrets)
        return cls(path, rollout_id, env, handlers, Redactor(known))

    def write(
        self,
        level: str,
        message: str,
        *,
        at: float | None = None,
        phase: str | None = None,
        event_type: str = "log_line",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        """Write one record, redacted, to every handler whose level lets it through."""
        created = datetime.now(UTC).timestamp() if at is None else at
        payload = {
            "time": iso_utc(created),
            "level": level,
            "rollout_id": self.rollout_id,
            "env": self.env,
            "phase": phase if phase is not None else self.phase,
            "message": message,
            "event": event_type,
            "data": dict(data or {}),
        }
        clean_payload = self._redactor.value(payload)
        record = logging.makeLogRecord(
            {
                "name": "dhash_console.runlog",
                "levelno": LEVELS[level],
                "levelname": level.upper(),
                "created": created,
                "msg": clean_payload["message"],
                "payload": clean_payload,
            }
        )
        for handler in self._handlers:
            if record.levelno >= handler.level:
                handler.handle(record)

    def record(self, event: Event) -> None:
        """Write one event, following the phase it belongs to."""
        if isinstance(event, PhaseStarted):
            self.phase = event.phase
        phase = getattr(event, "phase", None) or self.phase
        data = event.model_dump(mode="json", exclude={"rollout_id", "at", "type"})
        self.write(
            event_level(event),
            event_message(event),
            at=event.at,
            phase=phase,
            event_type=event.type,
            data=data,
        )
        if isinstance(event, PhaseFinished | RolloutFinished):
            self.phase = None

    async def run(self, events: AsyncIterable[Event]) -> None:
        """Consume a bus subscription until the bus closes."""
        async for event in events:
            self.record(event)

    def close(self) -> None:
        for handler in self._handlers:
            handler.flush()
            handler.close()
        self._handlers = []
