"""Email through a real SMTP server (aiosmtpd) on 127.0.0.1: plain, and STARTTLS with AUTH."""

from __future__ import annotations

import email
import email.policy
import logging
import ssl
import subprocess
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from dhash_console.config.notifications import NotificationsConfig
from dhash_console.ops.notify import Notifier, send_test
from tests.conftest import free_port
from tests.integration.test_notify_http import Reports, failed_rollout, stream

PASSWORD = "correct-horse-SEKRET"


class Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == PASSWORD.encode()
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp_starttls(tmp_path: Path) -> Iterator[tuple[Inbox, int, Path]]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_required=True,
    )
    controller.start()
    try:
        yield inbox, controller.port, cert
    finally:
        controller.stop()


def email_config(port: int, **extra: Any) -> dict[str, Any]:
    return {
        "console": False,
        "on": ["rollout_started", "gate_failed", "rollback_finished"],
        "email": {
            "host": "127.0.0.1",
            "port": port,
            "starttls": False,
            "from": "rollouts@example.com",
            "to": ["oncall@example.com", "sre@example.com"],
            "backoff_seconds": 0.01,
            "timeout_seconds": 5,
            **extra,
        },
    }


async def test_email_is_multipart_with_plain_and_html(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    reports = Reports()
    notifier = Notifier(
        NotificationsConfig.model_validate(email_config(port)),
        env="production",
        environ={},
        report=reports,
        decision_grace=0.2,
    )
    await notifier.run(stream(failed_rollout()))
    result = await notifier.drain(10.0)
    assert result.channels["email"].sent == 3 and all(e.ok for e in reports.events)

    subjects = [m["Subject"] for m in inbox.messages]
    assert subjects == [
        "[dhash] production: rollout 1.4.0 → 1.5.0 started",
        "[dhash] production: gate error_rate failed — rolling back (automatically)",
        "[dhash] production: rollback done, healthy",
    ]
    gate = inbox.messages[1]
    assert gate.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in gate.iter_parts()] == ["text/plain", "text/html"]
    plain = gate.get_body(("plain",))
    html = gate.get_body(("html",))
    assert plain is not None and html is not None
    assert "measured 0.12, condition error_rate <= 0.01" in plain.get_content()
    assert "Consecutive fails: 3 (limit 3)" in plain.get_content()
    assert "error_rate &lt;= 0.01" in html.get_content()  # escaped, not markup
    assert inbox.envelopes[0] == ("rollouts@example.com", ["oncall@example.com", "sre@example.com"])


async def test_email_over_starttls_with_credentials_from_the_environment(
    smtp_starttls: tuple[Inbox, int, Path],
) -> None:
    inbox, port, cert = smtp_starttls
    config = email_config(
        port,
        starttls=True,
        ca_file=str(cert),
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
    )
    environ = {"SMTP_USER": "rollouts", "SMTP_PASSWORD": PASSWORD}
    [result] = await send_test(
        NotificationsConfig.model_validate(config), environ, "smtp check", "email"
    )
    assert result.status == "sent", result.detail
    assert inbox.logins == ["rollouts"]
    assert "smtp check" in inbox.messages[0].get_body(("plain",)).get_content()  # type: ignore[union-attr]


async def test_a_wrong_password_fails_without_saying_it(
    smtp_starttls: tuple[Inbox, int, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    _inbox, port, cert = smtp_starttls
    config = email_config(
        port,
        starttls=True,
        ca_file=str(cert),
        username_env="SMTP_USER",
        password_env="SMTP_PASSWORD",
        retries=0,
    )
    wrong = "wrong-SEKRET-guess"
    [result] = await send_test(
        NotificationsConfig.model_validate(config),
        {"SMTP_USER": "rollouts", "SMTP_PASSWORD": wrong},
        "x",
        "email",
    )
    assert result.status == "failed" and result.counts_as_failure
    assert "SMTP 535" in result.detail and wrong not in result.detail
    assert not any(wrong in record.getMessage() for record in caplog.records)


async def test_missing_password_variable_means_not_configured(smtp: tuple[Inbox, int]) -> None:
    _inbox, port = smtp
    config = email_config(port, password_env="SMTP_PASSWORD", username_env="SMTP_USER")
    results = await send_test(
        NotificationsConfig.model_validate(config), {"SMTP_USER": "u"}, "x", None
    )
    assert [(r.channel, r.status, r.ok) for r in results] == [("email", "not_configured", True)]
    assert results[0].detail == "not configured: SMTP_PASSWORD is not set"
