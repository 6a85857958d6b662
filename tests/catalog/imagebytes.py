"""Tiny but well-formed image headers with real dimensions, for tests."""

from __future__ import annotations

import base64
import struct
import zlib

from proxy.catalog.loader import Catalog
from proxy.catalog.spec import ModelSpec


def png(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (with CRC) followed by IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def jpeg(width: int, height: int, app_padding: int = 0) -> bytes:
    """SOI, a JFIF APP0 segment, an optional padding APP1 segment, SOF0, EOI."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    out = b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", len(app0) + 2) + app0
    while app_padding > 0:
        size = min(app_padding, 65000)
        out += b"\xff\xe1" + struct.pack(">H", size + 2) + b"\x00" * size
        app_padding -= size
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return out + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


def _riff(chunk: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", len(chunk) + 4) + b"WEBP" + chunk


def webp_vp8x(width: int, height: int) -> bytes:
    """An extended-format WebP header (VP8X canvas size)."""
    data = (
        b"\x00\x00\x00\x00" + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    )
    return _riff(b"VP8X" + struct.pack("<I", len(data)) + data)


def webp_vp8l(width: int, height: int) -> bytes:
    """A lossless WebP header (VP8L bit-packed size)."""
    bits = (width - 1) | ((height - 1) << 14)
    data = b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 4
    return _riff(b"VP8L" + struct.pack("<I", len(data)) + data)


def webp_vp8(width: int, height: int) -> bytes:
    """A lossy WebP header (VP8 key frame)."""
    data = b"\x00\x00\x00" + b"\x9d\x01\x2a" + struct.pack("<HH", width, height) + b"\x00" * 4
    return _riff(b"VP8 " + struct.pack("<I", len(data)) + data)


def data_url(blob: bytes, mediatype: str = "image/png") -> str:
    return f"data:{mediatype};base64," + base64.b64encode(blob).decode()


GOOD_IMAGE = data_url(png(640, 360))
VIDEO_URL = "https://cdn.example.com/clip.mp4"


def example_body(spec: ModelSpec, *, with_defaults: bool = False) -> dict[str, object]:
    """A valid body for ``spec``: required fields, one start-media field, optionally defaults."""
    props = spec.json_schema["properties"]
    body: dict[str, object] = dict(spec.defaults) if with_defaults else {}
    wanted = list(spec.json_schema.get("required", []))
    wanted += [
        r.fields[0] for r in spec.rules.values() if r.category == "Missing required parameter"
    ]
    media = {m.field: m for m in spec.media}
    for name in wanted:
        schema = props[name]
        if name in media:
            value: object = GOOD_IMAGE if media[name].media == "image" else VIDEO_URL
            body[name] = [value] if media[name].many else value
        elif "enum" in schema:
            body[name] = schema["enum"][0]
        elif schema.get("type") == "array":
            body[name] = [VIDEO_URL]
        else:
            body[name] = "a red fox running through snow"
    return body


def all_specs(catalog: Catalog) -> list[ModelSpec]:
    return sorted(catalog, key=lambda s: s.slug)
