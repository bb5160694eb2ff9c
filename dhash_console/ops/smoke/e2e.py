"""End to end: two near duplicates and a different image in, search finds the right one.

The images are fresh for every run (a random seed), so a run never finds, or deletes,
what an earlier run or real traffic left behind.
"""

from __future__ import annotations

import secrets
from typing import Any

from dhash_console.ops.smoke.context import (
    NotApplicable,
    SmokeContext,
    SmokeFailure,
    Step,
    field_of,
    json_body,
    tidy,
)
from dhash_console.ops.smoke.images import hamming, near_duplicate_set

# The Hamming distance under which two dHashes count as near duplicates (of 64 bits).
NEAR_DUPLICATE_DISTANCE = 10
GONE_OR_NOT_ALLOWED = (404, 405, 501)


async def _upload(ctx: SmokeContext, label: str, data: bytes) -> tuple[str, str]:
    files = {"image": (f"smoke-{label}.png", data, "image/png")}
    body = json_body(await ctx.request("POST", "/hash", files=files), expect=(200, 201))
    raw_id = body.get("id") if isinstance(body, dict) else None
    if not isinstance(raw_id, str | int):
        raise SmokeFailure(f"uploading the {label} image: no id in {tidy(str(body))}")
    ctx.created.append(str(raw_id))
    digest = field_of(body, "hash", str, "/hash")
    return str(raw_id), digest.lower()


async def upload_images(ctx: SmokeContext) -> str:
    original, near, different = near_duplicate_set(secrets.randbits(32))
    uploaded = {}
    for label, data in (("original", original), ("near", near), ("different", different)):
        uploaded[label] = await _upload(ctx, label, data)
    ctx.notes["uploaded"] = uploaded
    near_distance = hamming(uploaded["original"][1], uploaded["near"][1])
    far_distance = hamming(uploaded["original"][1], uploaded["different"][1])
    if near_distance > NEAR_DUPLICATE_DISTANCE:
        raise SmokeFailure(
            f"a slightly brighter copy hashed {near_distance} bits away "
            f"(more than {NEAR_DUPLICATE_DISTANCE})"
        )
    if far_distance <= NEAR_DUPLICATE_DISTANCE:
        raise SmokeFailure(f"the negative image hashed only {far_distance} bits away")
    return f"3 images uploaded; distances {near_distance} (near) and {far_distance} (different)"


def _matches(body: Any) -> list[dict[str, Any]]:
    items = body
    if isinstance(body, dict):
        items = next((body[key] for key in ("matches", "results", "items") if key in body), None)
    if not isinstance(items, list):
        raise SmokeFailure(f"/search: no list of matches in {tidy(str(body))}")
    return [item for item in items if isinstance(item, dict)]


async def search_finds_near_duplicate(ctx: SmokeContext) -> str:
    uploaded: dict[str, tuple[str, str]] = ctx.notes["uploaded"]
    params = {"hash": uploaded["original"][1], "max_distance": NEAR_DUPLICATE_DISTANCE}
    body = json_body(await ctx.request("GET", "/search", params=params), expect=(200,))
    found = {str(item.get("id")): item for item in _matches(body)}
    near_id, different_id = uploaded["near"][0], uploaded["different"][0]
    if near_id not in found:
        raise SmokeFailure(
            f"searching within {NEAR_DUPLICATE_DISTANCE} did not find the near duplicate "
            f"({len(found)} match(es))"
        )
    if different_id in found:
        raise SmokeFailure("searching found the different image as a near duplicate")
    distance = found[near_id].get("distance")
    if isinstance(distance, int) and distance > NEAR_DUPLICATE_DISTANCE:
        raise SmokeFailure(f"the near duplicate came back at distance {distance}")
    return f"near duplicate found at distance {distance}, the different image not"


async def cleanup(ctx: SmokeContext) -> str:
    if not ctx.created:
        raise NotApplicable("nothing was written")
    deleted, refused, problems = 0, 0, []
    for item_id in list(ctx.created):
        response = await ctx.request("DELETE", f"/hashes/{item_id}")
        if response.status_code in (200, 202, 204):
            deleted += 1
            ctx.created.remove(item_id)
        elif response.status_code in GONE_OR_NOT_ALLOWED:
            refused += 1
        else:
            problems.append(f"{item_id}: {response.status_code}")
    if problems:
        raise SmokeFailure(f"deleting what the smoke tests wrote failed: {', '.join(problems)}")
    if refused:
        return f"{deleted} deleted; {refused} not deletable here (the service does not allow it)"
    return f"{deleted} record(s) written by the smoke tests deleted"


STEPS = (
    Step("upload_images", upload_images, required=True),
    Step("search_finds_near_duplicate", search_finds_near_duplicate),
    Step("cleanup", cleanup, always=True),
)
