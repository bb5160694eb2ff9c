"""Images generated in code, and the dHash they must get, computed here on its own.

The expected hash is worked out from the pixels we chose, not by calling the service's
code, so a service that hashes wrongly fails the test. dHash: grayscale, resize to
9 wide × 8 high, bit = right pixel > left pixel, row-major, most significant bit first.
"""

from __future__ import annotations

import io
import itertools
import random

from PIL import Image

WIDTH, HEIGHT = 9, 8
Pixels = list[list[int]]  # HEIGHT rows of WIDTH grey levels


def reference_dhash(pixels: Pixels) -> str:
    """The dHash of a 9×8 grey image, as 16 hex digits."""
    value = 0
    for row in pixels:
        for left, right in itertools.pairwise(row):
            value = (value << 1) | (1 if right > left else 0)
    return f"{value:016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def png(pixels: Pixels, scale: int = 1) -> bytes:
    """Grey PNG of `pixels`, each cell `scale`×`scale` pixels (nearest neighbour)."""
    image = Image.new("L", (WIDTH, HEIGHT))
    image.putdata([value for row in pixels for value in row])
    if scale > 1:
        image = image.resize((WIDTH * scale, HEIGHT * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def known_pixels() -> Pixels:
    """A fixed 9×8 image whose neighbours always differ (no ties for `>` to hide).

    Already at dHash size and already grey, so any resize and greyscale step leaves it
    as it is: its hash does not depend on the service's choice of resampling filter.
    """
    return [[(x * 37 + y * 71 + x * y * 13) % 256 for x in range(WIDTH)] for y in range(HEIGHT)]


KNOWN_PNG = png(known_pixels())
KNOWN_DHASH = reference_dhash(known_pixels())


def near_duplicate_set(seed: int) -> tuple[bytes, bytes, bytes]:
    """(original, near duplicate, different): 72×64 PNGs, fresh for each run.

    The near duplicate is the original a little brighter: every linear resampling filter
    keeps the sign of each neighbour difference, so its dHash stays (almost) the same.
    The different one is the negative: every neighbour comparison flips, so its dHash is
    (almost) the complement.
    """
    rng = random.Random(seed)
    base: Pixels = []
    for _ in range(HEIGHT):
        row = [rng.randrange(30, 214)]
        while len(row) < WIDTH:
            step = rng.randrange(25, 90) * rng.choice((-1, 1))
            nxt = row[-1] + step
            if not 30 <= nxt < 214:
                nxt = row[-1] - step
            row.append(nxt)
        base.append(row)
    brighter = [[value + 12 for value in row] for row in base]
    negative = [[255 - value for value in row] for row in base]
    return png(base, 8), png(brighter, 8), png(negative, 8)
