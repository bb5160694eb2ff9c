"""dHash on images generated here, with hashes worked out by hand from the chosen pixels."""

from __future__ import annotations

import io
import random
from collections.abc import Callable

import pytest
from PIL import Image

from dhash_console.localenv.dhash import (
    decode,
    dhash_bytes,
    dhash_image,
    from_hex,
    hamming,
    to_hex,
)

W, H = 9, 8  # dHash size: an image of this size and mode L is hashed as it is


def grey(pixel: Callable[[int, int], int], width: int = W, height: int = H) -> Image.Image:
    """A grey image from `pixel(x, y) -> 0..255`."""
    img = Image.new("L", (width, height))
    img.putdata([pixel(x, y) for y in range(height) for x in range(width)])
    return img


def png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def smooth_scene(width: int, height: int, seed: int) -> Image.Image:
    """A photo-like image: a few soft blobs of light, smooth at any size."""
    rng = random.Random(seed)
    blobs = [
        (rng.random(), rng.random(), rng.uniform(0.1, 0.35), rng.uniform(-1, 1)) for _ in range(5)
    ]

    def pixel(x: int, y: int) -> int:
        u, v = x / width, y / height
        value = 128.0
        for cx, cy, radius, weight in blobs:
            d2 = ((u - cx) ** 2 + (v - cy) ** 2) / radius**2
            value += 120 * weight / (1 + d2)
        return max(0, min(255, int(value)))

    return grey(pixel, width, height)


# -- known hashes, by hand --------------------------------------------------------------------


def test_left_to_right_gradient_sets_every_bit() -> None:
    # every right neighbour is brighter: 8 comparisons × 8 rows, all 1
    assert dhash_image(grey(lambda x, y: x * 30)) == 0xFFFF_FFFF_FFFF_FFFF


def test_right_to_left_gradient_clears_every_bit() -> None:
    assert dhash_image(grey(lambda x, y: 255 - x * 30)) == 0


def test_top_to_bottom_gradient_has_no_horizontal_differences() -> None:
    # equal neighbours in each row: right > left is false everywhere
    assert dhash_image(grey(lambda x, y: y * 30)) == 0


def test_stripes_alternate_bits() -> None:
    # columns 0, 255, 0, 255, ...: up, down, up, down → 1010 1010 in every row
    assert dhash_image(grey(lambda x, y: 255 * (x % 2))) == 0xAAAA_AAAA_AAAA_AAAA


def test_rows_are_read_top_first_and_msb_first() -> None:
    # rows 0-3 rise, rows 4-7 fall: the first 32 bits (the high ones) are set
    rising_then_falling = grey(lambda x, y: x * 30 if y < 4 else 255 - x * 30)
    assert dhash_image(rising_then_falling) == 0xFFFF_FFFF_0000_0000
    # only the very first comparison (row 0, pixels 0 → 1) rises: the most significant bit
    first_only = grey(lambda x, y: 200 if (x, y) == (1, 0) else 100)
    assert dhash_image(first_only) == 1 << 63


def test_colour_is_hashed_through_its_grey_level() -> None:
    img = Image.new("RGB", (W, H))
    img.putdata([(x * 30, 0, 0) for y in range(H) for x in range(W)])  # redder to the right
    assert dhash_image(img) == 0xFFFF_FFFF_FFFF_FFFF


def test_encoded_bytes_hash_like_the_image() -> None:
    img = grey(lambda x, y: (x * 37 + y * 71 + x * y * 13) % 256)
    assert dhash_bytes(png(img)) == dhash_image(img)


# -- behaviour on real-sized images -----------------------------------------------------------


def test_resizing_barely_changes_the_hash() -> None:
    scene = smooth_scene(288, 256, seed=7)
    base = dhash_image(scene)
    for size in ((144, 128), (576, 512), (300, 240)):
        resized = scene.resize(size, Image.Resampling.BICUBIC)
        assert hamming(base, dhash_image(resized)) <= 3, size


def test_a_near_duplicate_is_near_and_a_different_image_is_far() -> None:
    scene = smooth_scene(180, 160, seed=3)
    brighter = scene.point(lambda v: min(255, v + 12))
    other = smooth_scene(180, 160, seed=99)
    base = dhash_image(scene)
    assert hamming(base, dhash_image(brighter)) <= 4
    assert hamming(base, dhash_image(other)) >= 16


def test_the_negative_of_an_image_flips_its_comparisons() -> None:
    img = grey(lambda x, y: (x * 37 + y * 71 + x * y * 13) % 256)  # no equal neighbours
    negative = img.point(lambda v: 255 - v)
    assert hamming(dhash_image(img), dhash_image(negative)) == 64


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not an image at all",
        png(grey(lambda x, y: x))[:30],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
    ],
    ids=["empty", "text", "truncated png", "png signature only"],
)
def test_undecodable_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        dhash_bytes(data)


def test_an_image_with_too_many_pixels_is_refused_before_decoding() -> None:
    data = png(Image.new("L", (400, 300)))
    with pytest.raises(ValueError, match="pixels"):
        decode(data, max_pixels=100_000)
    assert decode(data).size == (400, 300)


# -- hex and distance -------------------------------------------------------------------------


def test_hex_round_trip() -> None:
    assert to_hex(0) == "0000000000000000"
    assert to_hex(0xAAAA_AAAA_AAAA_AAAA) == "aaaaaaaaaaaaaaaa"
    assert from_hex("AAAAaaaaAAAAaaaa") == 0xAAAA_AAAA_AAAA_AAAA
    value = 0x0123_4567_89AB_CDEF
    assert from_hex(to_hex(value)) == value


@pytest.mark.parametrize("text", ["", "abc", "0123456789abcdeg", "0x23456789abcdef", "0" * 17])
def test_from_hex_refuses_what_is_not_sixteen_hex_digits(text: str) -> None:
    with pytest.raises(ValueError):
        from_hex(text)


@pytest.mark.parametrize("value", [-1, 1 << 64])
def test_to_hex_refuses_values_outside_64_bits(value: int) -> None:
    with pytest.raises(ValueError):
        to_hex(value)


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0
    assert hamming(0, 0xFFFF_FFFF_FFFF_FFFF) == 64
    assert hamming(0b1011, 0b0110) == 3
