"""Secrets out of logs and traces: the one redaction both use, with one marker.

``Bearer <token>``, ``Basic <credentials>``, ``sk-...`` (Modellix keys) and ``mlx-vk-...``
(proxy keys) are masked wherever they stand in a string, including after a control
character or an escape. Span attributes also hide whole values whose name (a header, a
query parameter, an attribute) says they may hold a secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from opentelemetry.util.types import AttributeValue

REDACTED = "[redacted]"

# A token runs to a space, quote or separator; control characters do not end it, so a
# key split by one (as a malformed header quotes it) is redacted whole.
_RUN = r"[^ \t\r\n\"',;]+"
_CREDENTIALS = re.compile(r"(?i)\b(bearer|basic)[ \t]+" + _RUN)
# A key starts a word, or follows an escape as a repr shows it ("\x7fsk-...", "\tsk-...").
_KEY_START = r"(?:(?<![A-Za-z0-9])|(?<=\\x[0-9a-fA-F]{2})|(?<=\\u[0-9a-fA-F]{4})|(?<=\\[ntrabfv0]))"
_KEYS = re.compile(_KEY_START + r"(sk|mlx-vk)-" + _RUN)

# What every secret above contains: text without it (nearly all) is returned as it is.
_MAYBE = re.compile(r"(?i)bearer|basic|sk-|mlx-vk-")

# Names (headers, query parameters, attribute keys) whose values are hidden whole.
_SENSITIVE = re.compile(r"auth|key|token|secret|passw|cookie|signature|credential", re.I)
_NOT_SECRET = frozenset({"idempotency-key"})


def may_hold_key(text: str) -> bool:
    """Whether ``redact_text`` could change ``text`` (false for nearly all text).

    Also for several values at once, joined by a NUL: none of the words it looks for
    holds one, so a match never spans two values. ASCII text (nearly all) is looked at
    lower-cased with four substring tests, which give what ``_MAYBE`` gives on it at a
    fraction of a case-insensitive regex's cost; other text takes the regex, whose
    case-insensitive matching also knows non-ASCII letters (the long s, the Kelvin sign).
    """
    if text.isascii():
        low = text.lower()
        return "bearer" in low or "basic" in low or "sk-" in low or "mlx-vk-" in low
    return _MAYBE.search(text) is not None


def line_may_hold_key(line: bytes) -> bool:
    """``may_hold_key`` for a rendered JSON line (UTF-8): none of the words it looks for
    holds a character JSON escapes, so a value that may hold a key shows it in the line."""
    if line.isascii():
        low = line.lower()
        return b"bearer" in low or b"basic" in low or b"sk-" in low or b"mlx-vk-" in low
    return may_hold_key(line.decode("utf-8", "surrogatepass"))


def redact_text(text: str) -> str:
    """Text with every ``Bearer``/``Basic`` credential and ``sk-``/``mlx-vk-`` key replaced."""
    if not may_hold_key(text):
        return text
    text = _CREDENTIALS.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEYS.sub(lambda m: f"{m.group(1)}-{REDACTED}", text)


def is_sensitive(name: str) -> bool:
    """Whether a header, query parameter or attribute name may carry a secret."""
    return name.lower() not in _NOT_SECRET and bool(_SENSITIVE.search(name))


def redact_value(name: str, value: str) -> str:
    """The value as safe to record: hidden whole under a sensitive name, else keys masked."""
    return REDACTED if is_sensitive(name) else redact_text(value)


def header_attributes(
    headers: Mapping[str, str], names: Iterable[str], prefix: str = "http.request.header."
) -> dict[str, AttributeValue]:
    """Semantic-convention header attributes for the allow-listed ``names``, redacted."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return {
        f"{prefix}{n.lower()}": (redact_value(n, lowered[n.lower()]),)
        for n in names
        if n.lower() in lowered
    }


def redact_url(url: str) -> str:
    """The URL without user info and with sensitive query parameters masked."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = urlencode(
        [(k, redact_value(k, v)) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="[]",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def safe_attributes(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    """Span attributes with values under sensitive names hidden and keys in strings masked."""
    safe: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        name = key.rpartition(".")[2]
        if is_sensitive(name):
            safe[key] = REDACTED if isinstance(value, str | bool | int | float) else (REDACTED,)
        else:
            safe[key] = redact_text(value) if isinstance(value, str) else value
    return safe
