"""Image inputs: data URLs, magic-byte sniffing and header-only dimensions.

Nothing here decodes pixels: JPEG dimensions come from the first SOF marker,
PNG from IHDR, WebP from its VP8 / VP8L / VP8X chunk header. A data URL is
base64-decoded only as far as its header needs (its size is computed from the
encoded length).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Literal

from proxy.catalog.spec import ImageConstraints

HEAD_BYTES = 65536
ValueKind = Literal["url", "data", "base64", "other"]

_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_B64_START = re.compile(r"[A-Za-z0-9+/]{64}")
_OTHER_MAGIC = (
    (b"GIF8", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\x00\x00\x00\x0cjP  ", "jpeg2000"),
)


class Truncated(ValueError):
    """The header needs more bytes than were given."""


class CorruptImage(ValueError):
    """The bytes claim a format but its header is unreadable."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # jpeg, png, webp, or another sniffed name, or "unknown"
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class ImageIssue:
    reason: str  # media_format | media_size | media_dimensions | media_aspect
    problem: str
    allowed: object = None


def classify(value: str) -> ValueKind:
    """What kind of reference a media field holds."""
    low = value[:8].lower()
    if low.startswith(("http://", "https://")):
        return "url"
    if low.startswith("data:"):
        return "data"
    if _B64_START.match(value):
        return "base64"
    return "other"


def sniff(head: bytes) -> str:
    """The image format named by the leading magic bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    for magic, name in _OTHER_MAGIC:
        if head.startswith(magic):
            return name
    return "unknown"


def read_info(head: bytes) -> ImageInfo:
    """Format and dimensions from the first bytes; raises ``Truncated`` / ``CorruptImage``."""
    fmt = sniff(head)
    if fmt == "png":
        if len(head) < 24:
            raise Truncated("png header")
        if head[12:16] != b"IHDR":
            raise CorruptImage("PNG without IHDR")
        return ImageInfo(
            "png", int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        )
    if fmt == "webp":
        return _webp(head)
    if fmt == "jpeg":
        return _jpeg(head)
    return ImageInfo(fmt)


def _webp(head: bytes) -> ImageInfo:
    chunk = head[12:16]
    if len(head) < {b"VP8L": 25}.get(chunk, 30):
        raise Truncated("webp header")
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise CorruptImage("VP8 start code missing")
        w = int.from_bytes(head[26:28], "little") & 0x3FFF
        h = int.from_bytes(head[28:30], "little") & 0x3FFF
        return ImageInfo("webp", w, h)
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise CorruptImage("VP8L signature missing")
        bits = int.from_bytes(head[21:25], "little")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return ImageInfo("webp", w, h)
    raise CorruptImage("unknown WebP chunk")


def _jpeg(head: bytes) -> ImageInfo:
    pos, n = 2, len(head)
    while True:
        if pos + 1 >= n:
            raise Truncated("jpeg markers")
        if head[pos] != 0xFF:
            raise CorruptImage("JPEG marker expected")
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):
            raise CorruptImage("JPEG without a frame header")
        if pos + 4 > n:
            raise Truncated("jpeg segment length")
        length = int.from_bytes(head[pos + 2 : pos + 4], "big")
        if length < 2:
            raise CorruptImage("JPEG segment length")
        if marker in _SOF:
            if pos + 9 > n:
                raise Truncated("jpeg frame header")
            h = int.from_bytes(head[pos + 5 : pos + 7], "big")
            w = int.from_bytes(head[pos + 7 : pos + 9], "big")
            return ImageInfo("jpeg", w, h)
        pos += 2 + length


@dataclass(frozen=True, slots=True)
class DataURL:
    mediatype: str
    size: int  # decoded bytes
    info: ImageInfo


def decode_base64_image(payload: str, mediatype: str = "") -> DataURL:
    """Size and header of base64 image data, decoding only what the header needs."""
    n = len(payload)
    if n == 0 or n % 4:
        raise ValueError("base64 data has an invalid length")
    size = n // 4 * 3 - (2 if payload.endswith("==") else 1 if payload.endswith("=") else 0)
    try:
        info = _header_info(payload)
    except binascii.Error as exc:
        raise ValueError("invalid base64 data") from exc
    except Truncated as exc:
        raise ValueError("image header is truncated") from exc
    return DataURL(mediatype, size, info)


def _header_info(payload: str) -> ImageInfo:
    """Decode growing prefixes (4 KiB, 64 KiB, all) until the header is readable."""
    for chars in (4096 // 3 * 4, HEAD_BYTES // 3 * 4, len(payload)):
        try:
            return read_info(base64.b64decode(payload[:chars], validate=True))
        except Truncated:
            if chars >= len(payload):
                raise
    raise Truncated("unreachable")  # pragma: no cover


def parse_data_url(value: str) -> DataURL:
    """Parse ``data:[<mediatype>][;params];base64,<data>``; raises ``ValueError``."""
    comma = value.find(",")
    if comma < 0:
        raise ValueError("data URL without a comma")
    meta = value[5:comma].split(";")
    if "base64" not in (p.strip().lower() for p in meta[1:]):
        raise ValueError("data URL must be base64-encoded")
    mediatype = meta[0].strip().lower()
    if mediatype and not mediatype.startswith("image/"):
        raise ValueError(f"data URL media type must be image/*, got {mediatype[:40]!r}")
    return decode_base64_image(value[comma + 1 :], mediatype)


def check_image(info: ImageInfo, size: int | None, limits: ImageConstraints) -> list[ImageIssue]:
    """Every way an image breaks its constraints (format first: nothing else is known)."""
    if info.format not in limits.formats:
        got = info.format if info.format != "unknown" else "unrecognised bytes"
        return [
            ImageIssue(
                "media_format",
                f"must be {', '.join(limits.formats)}, got {got}",
                list(limits.formats),
            )
        ]
    issues: list[ImageIssue] = []
    if size is not None and size >= limits.max_bytes_exclusive:
        issues.append(
            ImageIssue(
                "media_size",
                f"must be smaller than {limits.max_bytes_exclusive} bytes, got {size}",
                {"max_bytes_exclusive": limits.max_bytes_exclusive},
            )
        )
    w, h = info.width, info.height
    if w is None or h is None:
        return issues
    if min(w, h) <= limits.min_short_side_exclusive:
        issues.append(
            ImageIssue(
                "media_dimensions",
                f"short side must exceed {limits.min_short_side_exclusive} px, got {w}x{h}",
                {"min_short_side_exclusive": limits.min_short_side_exclusive},
            )
        )
    if h == 0 or not limits.aspect_min <= w / h <= limits.aspect_max:
        issues.append(
            ImageIssue(
                "media_aspect",
                f"aspect ratio (width/height) must be between {limits.aspect_min:g} and "
                f"{limits.aspect_max:g}, got {w}x{h}",
                {"aspect_min": limits.aspect_min, "aspect_max": limits.aspect_max},
            )
        )
    return issues
