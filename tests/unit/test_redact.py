"""Redaction: secrets, their encoded forms and the secret pieces of webhook URLs."""

from __future__ import annotations

import logging

import pytest

from dhash_console.redact import protect_logs, redact, redact_url, url_secrets

SLACK = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/abcdEFGHijklMNOPqrstUVWX"
DISCORD = "https://discord.com/api/v10/webhooks/123456789012345678/Tok-en_abc.DEF123"
TEAMS = (
    "https://prod-12.westus.logic.azure.com:443/workflows/0a1b2c3d4e5f/triggers/manual/paths/"
    "invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Zx9Yw8Vu7Ts6"
)


def test_redact_masks_every_occurrence_and_encoded_forms() -> None:
    secret = "p@ss word/1"
    text = f"a {secret} b p%40ss%20word%2F1 c {secret}"
    assert redact(text, [secret]) == "a *** b *** c ***"


def test_redact_masks_the_longest_secret_first() -> None:
    assert redact("token=abcdef-123456", ["abcdef", "abcdef-123456"]) == "token=***"


def test_redact_ignores_empty_secrets_and_text() -> None:
    assert redact("nothing to hide", ["", ""]) == "nothing to hide"
    assert redact("", ["x"]) == ""


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (SLACK, "https://hooks.slack.com/services/***"),
        (DISCORD, "https://discord.com/api/v10/webhooks/***"),
        (TEAMS, "https://prod-12.westus.logic.azure.com:443/workflows/***?***"),
        ("https://user:pw@example.com/hook?key=abc", "https://example.com/hook?***"),
        ("not a url", "***"),
    ],
)
def test_redact_url_hides_userinfo_query_and_path_tokens(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", [SLACK, DISCORD, TEAMS])
def test_pieces_of_a_webhook_url_are_masked_on_their_own(url: str) -> None:
    secrets = url_secrets(url)
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path_tail = parts.path.rsplit("/", 1)[-1]
    for quoted in (
        url,
        parts.path + ("?" + parts.query if parts.query else ""),
        path_tail,
        parts.query,
    ):
        if quoted and quoted not in ("invoke",):
            assert "***" in redact(f"error at {quoted}!", secrets), quoted
    assert "sig=Zx9Yw8Vu7Ts6" not in redact(f"..{TEAMS}..", url_secrets(TEAMS))
    assert redact("POST to the webhook failed", secrets) == "POST to the webhook failed"


def test_userinfo_password_is_a_secret() -> None:
    secrets = url_secrets("https://bot:hunter2-long@example.com/x")
    assert redact("auth hunter2-long failed", secrets) == "auth *** failed"


def test_protected_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    protect_logs([SLACK], loggers=["test.redact"])
    logging.getLogger("test.redact").info("HTTP Request: POST %s %r", SLACK, "200")
    [record] = caplog.records
    assert "abcdEFGHijkl" not in record.getMessage() and "***" in record.getMessage()
