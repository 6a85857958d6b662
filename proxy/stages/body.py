"""What one submit body may cost before it is validated: bounded reading, parsing and hashing.

A body is read in chunks under a byte cap, and each chunk's JSON separators (``,`` and
``:``) are counted as it arrives: that count bounds the members and items the body can
hold, so a body of a million tiny keys is refused (413) before a byte of it is parsed.
Once parsed, the tree is walked once: nesting depth, members plus items, and key length
are bounded (400 ``Invalid format``).

Work that grows with the body stays off the event loop: a body over ``off_loop_bytes`` is
parsed in a worker thread, and its canonical form is hashed there in slices, so no single
C call (which holds the GIL) runs long. Base64 images are long strings without separators,
so a legitimate inline image costs bytes, never structure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from proxy.catalog.validation import parse_body
from proxy.errors import MalformedJSON, PayloadTooLarge

_SLICE = 1 << 16  # characters of a long string escaped per call
_FLUSH = 1 << 16  # bytes buffered before a hash update


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Bounds on one submit body (config section ``limits``)."""

    max_bytes: int = 16 * 1024 * 1024
    max_separators: int = 20_000
    max_depth: int = 32
    max_items: int = 2_000
    max_key_chars: int = 256
    off_loop_bytes: int = 256 * 1024


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"request body exceeds the proxy's limit of {limit} bytes", details={"limit_bytes": limit}
    )


async def read_bounded(
    chunks: AsyncIterable[bytes], declared: int | None, limits: BodyLimits
) -> bytes:
    """The whole body, refused (413) as soon as it passes the byte or separator budget."""
    if declared is not None and declared > limits.max_bytes:
        raise too_large(limits.max_bytes)
    parts: list[bytes] = []
    size = 0
    separators = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limits.max_bytes:
            raise too_large(limits.max_bytes)
        separators += chunk.count(b",") + chunk.count(b":")
        if separators > limits.max_separators:
            raise PayloadTooLarge(
                f"request body holds more than {limits.max_separators} JSON separators "
                f"(',' and ':'); a submit body may have at most {limits.max_items} "
                "members and items",
                details={"limit_separators": limits.max_separators},
                reason="json_too_complex",
            )
        parts.append(chunk)
    return b"".join(parts)


def check_shape(value: Any, limits: BodyLimits) -> None:
    """Refuse (400) a parsed body deeper, wider or with longer keys than ``limits`` allow."""
    items = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
            for key in node:
                if len(key) > limits.max_key_chars:
                    raise _complex(
                        f"a member name is longer than {limits.max_key_chars} characters"
                    )
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limits.max_depth:
            raise _complex(f"JSON nesting is deeper than {limits.max_depth} levels")
        items += len(node)
        if items > limits.max_items:
            raise _complex(f"the body has more than {limits.max_items} members and items")
        stack.extend((child, depth + 1) for child in children)


def _complex(detail: str) -> MalformedJSON:
    return MalformedJSON(detail, reason="json_too_complex")


def parse_bounded(body: bytes, limits: BodyLimits) -> dict[str, Any]:
    """The body as a JSON object within ``limits``; ``MalformedJSON`` otherwise."""
    payload = parse_body(body)
    check_shape(payload, limits)
    return payload


async def parse_object(body: bytes, limits: BodyLimits) -> dict[str, Any]:
    """``parse_bounded``, in a worker thread when the body is large."""
    if len(body) <= limits.off_loop_bytes:
        return parse_bounded(body, limits)
    return await asyncio.to_thread(parse_bounded, body, limits)


def canonical_pieces(value: Any) -> Iterator[str]:
    """The text of ``json.dumps(value, sort_keys=True, separators=(",", ":"))``, in pieces.

    ASCII escapes keep it encodable (lone surrogates included); a long string is escaped
    in slices, so no single call holds the interpreter for long.
    """
    if isinstance(value, str):
        if len(value) <= _SLICE:
            yield encode_basestring_ascii(value)
            return
        yield '"'
        for start in range(0, len(value), _SLICE):
            yield encode_basestring_ascii(value[start : start + _SLICE])[1:-1]
        yield '"'
    elif value is None:
        yield "null"
    elif value is True:
        yield "true"
    elif value is False:
        yield "false"
    elif isinstance(value, int):
        yield int.__repr__(value)
    elif isinstance(value, float):
        yield json.dumps(value)
    elif isinstance(value, dict):
        yield "{"
        for i, (key, item) in enumerate(sorted(value.items())):
            yield ("," if i else "") + encode_basestring_ascii(key) + ":"
            yield from canonical_pieces(item)
        yield "}"
    elif isinstance(value, list):
        yield "["
        for i, item in enumerate(value):
            if i:
                yield ","
            yield from canonical_pieces(item)
        yield "]"
    else:  # parsed JSON holds nothing else
        raise TypeError(f"not a JSON value: {type(value).__name__}")


def canonical_digest(prefix: bytes, payload: Any) -> str:
    """SHA-256 over ``prefix`` and the canonical form of ``payload``, built in pieces."""
    digest = hashlib.sha256(prefix)
    buffer: list[str] = []
    size = 0
    for piece in canonical_pieces(payload):
        buffer.append(piece)
        size += len(piece)
        if size >= _FLUSH:
            digest.update("".join(buffer).encode("ascii"))
            buffer.clear()
            size = 0
    digest.update("".join(buffer).encode("ascii"))
    return digest.hexdigest()
