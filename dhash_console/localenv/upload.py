"""Reading an uploaded image: a multipart form's `image` field, or the raw request body.

Sizes are bounded before anything else looks at the data. Multipart forms are parsed by
Starlette with python-multipart (streamed, with part and field limits), not by hand.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
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


async def _form_field(request: Request, limit: int, field: str = FIELD) -> Upload:
    """The named field of a multipart/form-data body; UploadError(400) when it is not there."""
    try:
        async with request.form(max_files=1, max_fields=16, max_part_size=limit) as form:
            item = form.get(field)
            if isinstance(item, UploadFile):
                data = await item.read(limit + 1)
                name = item.filename
            elif isinstance(item, str):
                data, name = item.encode("utf-8"), None
            else:
                raise UploadError(400, f"no {field!r} field in the form")
    except MultiPartException as exc:
        raise UploadError(400, f"malformed multipart body: {exc.message}") from None
    if len(data) > limit:
        raise UploadError(413, f"upload is more than {limit} bytes")
    return Upload(data, clean_filename(name))


async def read_upload(request: Request, limit: int = MAX_UPLOAD_BYTES) -> Upload:
    """The uploaded image's bytes (possibly not an image: decoding tells) and its file name."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"upload is {declared} bytes, more than {limit}")
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        upload = await _form_field(request, limit)
    else:
        body = await read_body(request, limit)
        upload = Upload(body, clean_filename(request.query_params.get("filename")))
    if not upload.data:
        raise UploadError(
            400, "empty upload: send the image as the form field 'image' or as the body"
        )
    return upload
