"""Image inputs: header-only parsing of JPEG/PNG/WebP and data-URL checks."""

from __future__ import annotations

import base64

import pytest

from proxy.catalog.images import (
    ImageInfo,
    Truncated,
    check_image,
    classify,
    parse_data_url,
    read_info,
)
from proxy.catalog.loader import Catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.spec import ImageConstraints
from tests.catalog.imagebytes import data_url, jpeg, png, webp_vp8, webp_vp8l, webp_vp8x

LIMITS = ImageConstraints(status="documented")


@pytest.mark.parametrize(
    ("blob", "expected"),
    [
        (png(640, 360), ImageInfo("png", 640, 360)),
        (jpeg(1280, 720), ImageInfo("jpeg", 1280, 720)),
        (jpeg(800, 600, app_padding=100_000), ImageInfo("jpeg", 800, 600)),
        (webp_vp8x(1920, 1080), ImageInfo("webp", 1920, 1080)),
        (webp_vp8l(500, 700), ImageInfo("webp", 500, 700)),
        (webp_vp8(1024, 768), ImageInfo("webp", 1024, 768)),
        (b"GIF89a" + b"\x00" * 10, ImageInfo("gif")),
        (b"hello world", ImageInfo("unknown")),
    ],
)
def test_read_info_parses_headers(blob: bytes, expected: ImageInfo) -> None:
    """Format and dimensions come from headers alone for every supported format."""
    assert read_info(blob) == expected


def test_jpeg_header_beyond_the_prefix_is_truncated() -> None:
    """A JPEG whose frame header lies past the given bytes reports Truncated."""
    with pytest.raises(Truncated):
        read_info(jpeg(800, 600, app_padding=100_000)[:65536])


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("https://x/y.png", "url"),
        ("HTTP://x", "url"),
        ("data:image/png;base64,AAAA", "data"),
        ("A" * 80, "base64"),
        ("oss://b/k", "other"),
    ],
)
def test_classify(value: str, kind: str) -> None:
    """Media values are told apart by their prefix."""
    assert classify(value) == kind


def test_data_url_size_is_computed_without_full_decode() -> None:
    """The decoded size of a data URL equals the blob size."""
    blob = jpeg(1280, 720, app_padding=300_000)
    parsed = parse_data_url(data_url(blob, "image/jpeg"))
    assert parsed.size == len(blob)
    assert parsed.info == ImageInfo("jpeg", 1280, 720)


@pytest.mark.parametrize(
    "value",
    [
        "data:image/png,notbase64",
        "data:image/png;base64,@@@@",
        "data:text/plain;base64,AAAA",
        "data:image/png;base64,AAA",
        "data:nocomma",
    ],
)
def test_bad_data_urls_raise(value: str) -> None:
    """Unparseable data URLs raise ValueError."""
    with pytest.raises(ValueError, match=r"\w"):
        parse_data_url(value)


@pytest.mark.parametrize(
    ("blob", "size", "reasons"),
    [
        (png(640, 360), None, []),
        (png(301, 301), None, []),
        (png(300, 900), None, ["media_dimensions", "media_aspect"]),
        (png(2000, 500), None, ["media_aspect"]),
        (png(1000, 400), None, []),
        (b"GIF89a", None, ["media_format"]),
        (png(640, 360), 20 * 1024 * 1024, ["media_size"]),
    ],
)
def test_check_image_limits(blob: bytes, size: int | None, reasons: list[str]) -> None:
    """Format, byte size, short side (exclusive) and aspect 2:5..5:2 (inclusive) are checked."""
    issues = check_image(read_info(blob), size if size is not None else len(blob), LIMITS)
    assert [i.reason for i in issues] == reasons


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (data_url(png(200, 200)), "media_dimensions"),
        (data_url(png(3000, 400)), "media_aspect"),
        (data_url(b"GIF89a" + b"\x00" * 30, "image/gif"), "media_format"),
        (data_url(b"\x00" * 64), "media_format"),
        ("data:image/png;base64,!!!!", "media_format"),
        (base64.b64encode(png(200, 400) + b"\x00" * 64).decode(), "media_dimensions"),
        ("not a url at all", "media_format"),
    ],
)
async def test_media_checker_refuses_bad_inline_images(
    catalog: Catalog, value: str, reason: str
) -> None:
    """Bad inline first frames are refused with the matching reason and no network."""
    spec = catalog.get("minimax/hailuo-2.3-i2v")
    assert spec is not None
    problems, _ = await MediaChecker().check(spec, {"first_frame_image": value})
    assert [(p.field, p.reason) for p in problems] == [("first_frame_image", reason)]


async def test_oversize_data_url_is_refused(catalog: Catalog) -> None:
    """A data URL of 20 MB or more is refused on size without decoding it all."""
    spec = catalog.get("minimax/hailuo-2.3-i2v")
    assert spec is not None
    blob = png(640, 360) + b"\x00" * (20 * 1024 * 1024)
    problems, _ = await MediaChecker().check(spec, {"first_frame_image": data_url(blob)})
    assert [p.reason for p in problems] == ["media_size"]


async def test_reference_image_arrays_are_checked_per_item(catalog: Catalog) -> None:
    """Each item of an image array is checked and named by index."""
    spec = catalog.get("bytedance/seedance-2.0-i2v")
    assert spec is not None
    refs = [data_url(png(640, 360)), data_url(webp_vp8x(100, 100))]
    problems, _ = await MediaChecker().check(spec, {"prompt": "x", "reference_images": refs})
    assert [(p.field, p.reason) for p in problems] == [("reference_images[1]", "media_dimensions")]
