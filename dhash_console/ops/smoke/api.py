"""API group: health and version answer, a known image gets its known dHash, junk gets a 4xx."""

from __future__ import annotations

from dhash_console.ops.smoke.context import SmokeContext, SmokeFailure, Step, field_of, json_body
from dhash_console.ops.smoke.images import KNOWN_DHASH, KNOWN_PNG


async def health(ctx: SmokeContext) -> str:
    body = json_body(await ctx.request("GET", "/health"), expect=(200,))
    status = field_of(body, "status", str, "/health")
    if status != "ok":
        raise SmokeFailure(f"/health says status {status!r}, not 'ok'")
    db = body.get("db")
    if db is not None and db != "ok":
        raise SmokeFailure(f"/health says db {db!r}")
    return f"200, status ok, version {body.get('version', '?')}"


async def version(ctx: SmokeContext) -> str:
    body = json_body(await ctx.request("GET", "/version"), expect=(200,))
    value = field_of(body, "version", str, "/version")
    if not value.strip():
        raise SmokeFailure("/version answered an empty version")
    ctx.notes["version"] = value
    return f"version {value}"


async def hash_known_image(ctx: SmokeContext) -> str:
    files = {"image": ("smoke-known.png", KNOWN_PNG, "image/png")}
    body = json_body(await ctx.request("POST", "/hash", files=files), expect=(200, 201))
    if isinstance(body, dict) and isinstance(body.get("id"), str | int):
        ctx.created.append(str(body["id"]))
    got = field_of(body, "hash", str, "/hash")
    if got.lower() != KNOWN_DHASH:
        raise SmokeFailure(f"hash of the known 9×8 image is {got}, expected {KNOWN_DHASH}")
    size = (body.get("width"), body.get("height"))
    if size != (9, 8):
        raise SmokeFailure(f"known image reported as {size[0]}×{size[1]}, expected 9×8")
    return f"known image hashed to {KNOWN_DHASH}"


async def malformed_upload_rejected(ctx: SmokeContext) -> str:
    files = {"image": ("broken.png", b"this is not an image \x00\x01", "image/png")}
    response = await ctx.request("POST", "/hash", files=files)
    code = response.status_code
    if 400 <= code < 500:
        return f"answered {code}"
    if code < 300:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("id"), str | int):
            ctx.created.append(str(body["id"]))
    kind = "a server error" if code >= 500 else "not an error"
    raise SmokeFailure(f"a malformed upload answered {code} ({kind}), expected a 4xx")


STEPS = (
    Step("health", health),
    Step("version", version),
    Step("hash_known_image", hash_known_image),
    Step("malformed_upload_rejected", malformed_upload_rejected),
)
