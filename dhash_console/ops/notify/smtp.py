"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, a plain-text body and HTML.

Credentials come from environment variables named in the config; the password is a
secret and is redacted from every error text.
"""

from __future__ import annotations

import html
import ssl
from collections.abc import Callable, Sequence
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from dhash_console.ops.notify.channel import Channel
from dhash_console.ops.notify.delivery import Attempt, RetryPolicy
from dhash_console.ops.notify.message import Item, Notification

COLOURS = {"info": "#3b82f6", "good": "#16a34a", "warning": "#d97706", "danger": "#dc2626"}


def email_message(
    note: Notification, *, sender: str, to: Sequence[str], subject_prefix: str
) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = (subject_prefix + note.title).replace("\n", " ")[:250]
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Message-ID"] = make_msgid(domain="dhash-console")
    message.set_content(note.plain() + "\n")
    rows = "".join(
        f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in note.facts
    )
    message.add_alternative(
        "<html><body>"
        f"<h2 style='color:{COLOURS[note.severity]}'>{html.escape(note.title)}</h2>"
        f"<p>{html.escape(note.text)}</p>"
        + (f"<table>{rows}</table>" if rows else "")
        + f"<p style='color:#666'>{html.escape(note.kind)} · rollout "
        f"{html.escape(note.rollout_id or '-')}</p></body></html>",
        subtype="html",
    )
    return message


class EmailChannel(Channel):
    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool,
        tls: bool,
        ca_file: str | None,
        username: str | None,
        password: str | None,
        sender: str,
        to: Sequence[str],
        subject_prefix: str,
        timeout: float,
        policy: RetryPolicy,
        clock: Callable[[], float],
        events: Sequence[str] | None,
        environments: Sequence[str] | None,
    ) -> None:
        super().__init__(
            events=events,
            environments=environments,
            policy=policy,
            min_interval=0.0,
            clock=clock,
            secrets=[password or ""],
        )
        self.host, self.port = host, port
        self.starttls, self.tls, self.ca_file = starttls, tls, ca_file
        self.username, self.password = username, password
        self.sender, self.to, self.subject_prefix = sender, list(to), subject_prefix
        self.timeout = timeout

    def message(self, note: Notification) -> EmailMessage:
        return email_message(
            note, sender=self.sender, to=self.to, subject_prefix=self.subject_prefix
        )

    async def attempt(self, item: Item) -> Attempt:
        assert item.notification is not None
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            await aiosmtplib.send(
                self.message(item.notification),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.tls,
                start_tls=self.starttls if not self.tls else False,
                tls_context=context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            # 4xx is "try again later"; 5xx will not get better by retrying.
            return Attempt(
                False, f"SMTP {exc.code}: {exc.message}", retryable=400 <= exc.code < 500
            )
        except (aiosmtplib.SMTPTimeoutError, TimeoutError):
            return Attempt(False, "SMTP timed out", retryable=True)
        except (aiosmtplib.SMTPException, OSError) as exc:
            return Attempt(False, f"{type(exc).__name__}: {exc}", retryable=True)
        return Attempt(True, "accepted")
