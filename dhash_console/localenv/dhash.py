"""dHash, the difference hash: 64 bits that barely change when an image is resized or retouched.

The image is turned grey and shrunk to 9 wide × 8 high; in each row every pixel is compared
with its left neighbour (bit = right > left), giving 8 bits a row, 64 in all, read row by row
with the first comparison as the most significant bit.
"""

from __future__ import annotations

import io
import itertools

from PIL import Image

WIDTH, HEIGHT = 9, 8
BITS = (WIDTH - 1) * HEIGHT
HEX_DIGITS = BITS // 4
# Beyond this an upload is refused before its pixels are decoded: a small, highly compressed
# file can unpack to gigabytes (Pillow's own bomb check only warns below twice its limit).
MAX_PIXELS = 40_000_000


def dhash_image(img: Image.Image) -> int:
    """The dHash of an image already decoded."""
    small = img.convert("L").resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    pixels = small.tobytes()  # mode L: one byte a pixel, row-major
    value = 0
    for row in range(HEIGHT):
        line = pixels[row * WIDTH : (row + 1) * WIDTH]
        for left, right in itertools.pairwise(line):
            value = (value << 1) | (right > left)
    return value


def decode(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Decode an encoded image (PNG, JPEG, ...); ValueError when it is not one we can read."""
    if not data:
        raise ValueError("empty image")
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > max_pixels:
            raise ValueError(f"image is {width}×{height}, more than {max_pixels} pixels")
        img.load()
    except ValueError:
        raise
    except Exception as exc:  # Pillow raises many kinds for broken input; all mean "unreadable"
        raise ValueError(f"cannot decode the image: {type(exc).__name__}") from exc
    return img


def dhash_bytes(data: bytes) -> int:
    """The dHash of an encoded image; ValueError when it cannot be decoded."""
    return dhash_image(decode(data))


def to_hex(value: int) -> str:
    """16 lowercase hex digits."""
    if not 0 <= value < 1 << BITS:
        raise ValueError(f"a dHash is a {BITS}-bit unsigned integer, not {value}")
    return f"{value:0{HEX_DIGITS}x}"


def from_hex(text: str) -> int:
    """The inverse of `to_hex`; accepts either case, refuses anything but 16 hex digits."""
    cleaned = text.strip()
    if len(cleaned) != HEX_DIGITS or any(c not in "0123456789abcdefABCDEF" for c in cleaned):
        raise ValueError(f"a dHash is {HEX_DIGITS} hex digits, not {text[:40]!r}")
    return int(cleaned, 16)


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()
