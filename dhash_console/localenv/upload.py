"""Reading an uploaded image: a multipart form's `image` field, or the raw request body.

The body is read with a hard size bound before anything else looks at it. Multipart bodies are
split on their boundary as RFC 7578 describes, and each part's headers are parsed by the
standard library's email parser; the whole body is in memory anyway (it is bounded), so a
streaming parser would buy nothing here.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from starlette.requests import Request

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
FIELD = "image"
MAX_FILENAME = 255


class UploadError(Exception):
    """An upload the service refuses: the HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str | None


async def read_body(request: Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The request body, or UploadError(413) as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"upload is {declared} bytes, more than {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(413, f"upload is more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def clean_filename(name: str | None) -> str | None:
    """A client's file name without control characters, bounded in length."""
    if not name:
        return None
    kept = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    return kept[:MAX_FILENAME] or None


def _content_type(value: str) -> Message:
    message = Message()
    message["content-type"] = value
    return message


def form_field(body: bytes, boundary: str, field: str = FIELD) -> Upload:
    """The named field of a multipart/form-data body; UploadError(400) when it is not there."""
    delimiter = b"\r\n--" + boundary.encode("latin-1")
    # The first delimiter may open the body without the CRLF that precedes the others.
    pieces = (b"\r\n" + body).split(delimiter)
    if len(pieces) < 3:  # preamble, at least one part, the closing "--"
        raise UploadError(400, "malformed multipart body")
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break  # the close delimiter: nothing after it counts
        _padding, _, part = piece.partition(b"\r\n")
        if part.startswith(b"\r\n"):
            raw_headers, content = b"", part[2:]
        else:
            raw_headers, sep, content = part.partition(b"\r\n\r\n")
            if not sep:
                raise UploadError(400, "malformed multipart part")
        headers = HeaderParser().parsestr(raw_headers.decode("utf-8", errors="replace"))
        if headers.get_param("name", header="content-disposition") == field:
            return Upload(content, clean_filename(headers.get_filename()))
    raise UploadError(400, f"no {field!r} field in the form")


async def read_upload(request: Request, limit: int = MAX_UPLOAD_BYTES) -> Upload:
    """The uploaded image's bytes (possibly not an image: decoding tells) and its file name."""
    body = await read_body(request, limit)
    content_type = request.headers.get("content-type", "")
    parsed = _content_type(content_type)
    if parsed.get_content_type() == "multipart/form-data":
        boundary = parsed.get_boundary()
        if not boundary:
            raise UploadError(400, "multipart/form-data without a boundary")
        upload = form_field(body, boundary)
    else:
        upload = Upload(body, clean_filename(request.query_params.get("filename")))
    if not upload.data:
        raise UploadError(
            400, "empty upload: send the image as the form field 'image' or as the body"
        )
    return upload
