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
import codecs
import hashlib
import json
import re
import secrets
from collections.abc import AsyncIterable, Iterator
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

from proxy.catalog.validation import parse_body
from proxy.errors import MalformedJSON, PayloadTooLarge

_SLICE = 1 << 16  # characters of a long string escaped per call
_FLUSH = 1 << 16  # bytes buffered before a hash update
_WINDOW = 1 << 20  # bytes decoded per call
_LIFT_CHARS = 1 << 14  # string literals longer than this are parsed by hand
# Raw control characters, which JSON forbids inside a string (escaped ones are fine).
_RAW_CONTROL = re.compile(r"[\x00-\x1f]")
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r")


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
    """The body as a JSON object within ``limits``; ``MalformedJSON`` otherwise.

    A body over ``limits.off_loop_bytes`` is parsed by ``parse_large``, whose C calls each
    take a bounded slice (this runs in a worker thread, and the GIL changes hands only
    between calls).
    """
    payload = parse_large(body) if len(body) > limits.off_loop_bytes else parse_body(body)
    check_shape(payload, limits)
    return payload


def decode_text(body: bytes) -> str:
    """The body as text (UTF-8, or the UTF-16/32 ``json.loads`` would detect), in slices."""
    encoding = json.detect_encoding(body[:4])  # errors as json.loads(bytes) has them
    decoder = codecs.getincrementaldecoder(encoding)("surrogatepass")
    try:
        parts = [
            decoder.decode(body[start : start + _WINDOW]) for start in range(0, len(body), _WINDOW)
        ]
        parts.append(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise MalformedJSON("invalid JSON format", reason="malformed_json") from exc
    return "".join(parts)


def parse_large(body: bytes, lift_chars: int = _LIFT_CHARS, window: int = _SLICE) -> dict[str, Any]:
    """``parse_body`` for a large body, without one long call on its long strings.

    Long string literals (base64 images, data URLs) are cut out of the text and put back
    after the rest is parsed: without escapes their contents need only a check for raw
    control characters, done in slices; with escapes they are decoded ``window``
    characters at a time, each cut where no escape (or surrogate pair) is split. What
    is left is small, or made of what the separator budget already bounds.
    """
    encoding = json.detect_encoding(body[:4])
    utf8 = encoding in ("utf-8", "utf-8-sig")
    if utf8 and _has_control_bytes(body):  # never valid in JSON, in a string or outside
        raise MalformedJSON("invalid JSON format", reason="malformed_json")
    text = decode_text(body)
    nonce = secrets.token_hex(8)  # a client cannot forge a marker it does not know
    pieces: list[str] = []
    lifted: list[str] = []
    copied = 0
    pos = text.find('"')
    while pos >= 0:
        end = _string_end(text, pos)
        if (
            end - pos > lift_chars
            and not (
                _has_raw_whitespace(text, pos, end) if utf8 else _has_raw_control(text, pos, end)
            )
            and not _member_name(text, end)
        ):
            pieces += (text[copied:pos], f'"\\u0000{nonce}:{len(lifted)}"')
            if text.find("\\", pos, end) < 0:
                lifted.append(text[pos + 1 : end])
            else:
                lifted.append(_decode_escaped(text, pos + 1, end, window))
            copied = end + 1
        pos = text.find('"', end + 1)
    if not lifted:
        return parse_body(text)
    pieces.append(text[copied:])
    restored: dict[str, Any] = _restore(parse_body("".join(pieces)), f"\x00{nonce}:", lifted)
    return restored


def _decode_escaped(text: str, start: int, end: int, window: int) -> str:
    """The value of the string literal whose contents are ``text[start:end]``, in slices."""
    parts: list[str] = []
    while start < end:
        cut = end if end - start <= window else _safe_cut(text, start, start + window)
        try:
            parts.append(json.loads('"' + text[start:cut] + '"'))
        except ValueError as exc:  # an invalid escape: the whole document is invalid
            raise MalformedJSON("invalid JSON format", reason="malformed_json") from exc
        start = cut
    return "".join(parts)


def _escape_at(text: str, start: int, index: int) -> bool:
    """Whether the backslash at ``index`` begins an escape (an even run of them precedes)."""
    low = max(start, index - 4096)
    run = index - low - len(text[low:index].rstrip("\\"))
    if run == index - low and low > start:  # the run goes on before the slice: count it all
        run = index - start - len(text[start:index].rstrip("\\"))
    return run % 2 == 0


def _safe_cut(text: str, start: int, cut: int) -> int:
    """A cut at or before ``cut`` that splits no escape and no ``\\uD8xx\\uDCxx`` pair."""
    while True:
        last = text.rfind("\\", max(start, cut - 6), cut)
        if last < 0:
            return cut
        if not _escape_at(text, start, last):  # the second half of a complete ``\\\\``
            return cut
        size = 6 if text[last + 1 : last + 2] == "u" else 2
        high = size == 6 and text[last + 2 : last + 4].lower() in ("d8", "d9", "da", "db")
        if last + size < cut or (last + size == cut and not high):
            return cut
        if last <= start:  # nothing safe before: take the escape (or the pair) whole
            low = text[last + 6 : last + 10].lower()
            pair = high and low[:2] == "\\u" and low[2:4] in ("dc", "dd", "de", "df")
            return last + size + (6 if pair else 0)
        cut = last  # before this escape: what precedes it is complete


def _string_end(text: str, start: int) -> int:
    """Index of the quote closing the string literal opened at ``start``."""
    pos = start + 1
    while True:
        end = text.find('"', pos)
        if end < 0:
            raise MalformedJSON("invalid JSON format", reason="malformed_json")
        if text[end - 1] != "\\":
            return end
        run = end - pos - len(text[pos:end].rstrip("\\"))
        if run % 2 == 0:  # not escaped
            return end
        pos = end + 1


def _has_control_bytes(body: bytes) -> bool:
    """Whether UTF-8 ``body`` holds a control byte other than tab, CR and LF (in slices)."""
    return any(
        len(piece.translate(None, _CONTROL_BYTES)) != len(piece)
        for piece in (body[at : at + _WINDOW] for at in range(0, len(body), _WINDOW))
    )


def _has_raw_whitespace(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` holds a raw tab, CR or LF (JSON whitespace, not string)."""
    return any(text.find(ch, start, end) >= 0 for ch in "\t\n\r")


def _has_raw_control(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` holds a raw control character (searched in slices)."""
    return any(
        _RAW_CONTROL.search(text, at, min(at + _WINDOW, end)) is not None
        for at in range(start, end, _WINDOW)
    )


def _member_name(text: str, end: int) -> bool:
    """Whether the string ending at ``end`` is a member name (a ``:`` follows)."""
    return text[end + 1 : end + 64].lstrip(" \t\r\n").startswith(":")


def _restore(value: Any, prefix: str, lifted: list[str]) -> Any:
    """``value`` with every marker string replaced by the string it stands for."""
    if isinstance(value, str):
        if value.startswith(prefix):
            return lifted[int(value[len(prefix) :])]
        return value
    if isinstance(value, list):
        return [_restore(v, prefix, lifted) for v in value]
    if isinstance(value, dict):
        return {k: _restore(v, prefix, lifted) for k, v in value.items()}
    return value


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
