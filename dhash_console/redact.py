"""Keep secrets (webhook URLs, passwords, tokens) out of anything a person or a file sees.

`redact(text, secrets)` replaces every secret, and the forms it takes once percent-encoded
or normalised by an HTTP client, with `***`. `url_secrets(url)` lists the pieces of a
webhook URL that are secret on their own (its path token, query string, password), so an
error text that quotes only part of the URL is caught too. `redact_url(url)` is the form
of a URL that may be shown: scheme, host and the leading words of its path.
`RedactingFilter` redacts log records of libraries that log URLs (httpx logs every request).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, unquote, urlsplit

MASK = "***"

# A path segment that is a short lower-case word (`services`, `api`, `webhooks`, `v10`) is
# not secret; anything else (ids, tokens, signatures, mixed case) is.
_WORD_SEGMENT = re.compile(r"^(?:[a-z][a-z_-]{0,15}|v\d{1,2})$")
_MIN_PIECE = 6  # shorter URL pieces (`443`, `1.0`) are not worth masking on their own


def _variants(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote(secret, safe="/:?&=@"), unquote(secret)}
    return {form for form in forms if form}


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (and its percent-encoded forms) replaced by `***`."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _variants(secret)
    if not forms or not text:
        return text
    # Longest first, so that a whole URL is masked before the token inside it.
    pattern = "|".join(re.escape(form) for form in sorted(forms, key=len, reverse=True))
    return re.sub(pattern, MASK, text)


def url_secrets(url: str) -> list[str]:
    """The URL and each piece of it that is a secret by itself."""
    pieces = [url, url.rstrip("/")]
    try:
        parts = urlsplit(url)
    except ValueError:
        return pieces
    if parts.password:
        pieces.append(parts.password)
    if parts.username and parts.password:
        pieces.append(f"{parts.username}:{parts.password}")
    if parts.query:
        pieces.append(parts.query)
        for pair in parts.query.split("&"):
            value = pair.partition("=")[2]
            if len(value) >= _MIN_PIECE:
                pieces.append(value)
    token_path = _token_path(parts.path)
    if token_path:
        pieces.append(token_path)
        for segment in token_path.strip("/").split("/"):
            if len(segment) >= _MIN_PIECE and not _WORD_SEGMENT.match(segment):
                pieces.append(segment)
    return [piece for piece in pieces if piece]


def _token_path(path: str) -> str:
    """The part of a path from its first non-word segment on (`/T0/B0/xyz` of Slack's)."""
    segments = path.split("/")
    for index, segment in enumerate(segments):
        if segment and not _WORD_SEGMENT.match(segment):
            return "/".join(segments[index:])
    return ""


def redact_url(url: str) -> str:
    """A URL safe to show: no userinfo, no query, no path token.

    `https://hooks.slack.com/services/T0/B0/xyz` -> `https://hooks.slack.com/services/***`
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    kept = []
    hidden = False
    for segment in parts.path.split("/"):
        if not segment:
            continue
        if _WORD_SEGMENT.match(segment):
            kept.append(segment)
        else:
            hidden = True
            break
    path = "/" + "/".join(kept) if kept else ""
    if hidden:
        path += "/" + MASK
    query = "?" + MASK if parts.query else ""
    return f"{parts.scheme}://{host}{port}{path}{query}"


class RedactingFilter(logging.Filter):
    """Masks known secrets in the records of a logger (attach it to `httpx`'s logger)."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secrets: Iterable[str]) -> None:
        self._secrets.update(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            cleaned = redact(message, self._secrets)
            if cleaned != message:
                record.msg = cleaned
                record.args = None
        return True


_FILTER = RedactingFilter()
# Libraries that put request URLs in their log records.
URL_LOGGERS = ("httpx",)


def protect_logs(secrets: Iterable[str], loggers: Iterable[str] = URL_LOGGERS) -> None:
    """Redact these secrets from the records of the libraries that log URLs, from now on."""
    _FILTER.add(secrets)
    for name in loggers:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
