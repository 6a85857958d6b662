"""Key material out of text: the one redaction shared by logs and traces.

``Bearer <token>``, ``sk-...`` (Modellix keys) and ``mlx-vk-...`` (proxy keys) are masked
wherever they stand in a string, including after a control character or an escape.
"""

from __future__ import annotations

import re

REDACTED = "[redacted]"

# A token runs to a space, quote or separator; control characters do not end it, so a
# key split by one (as a malformed header quotes it) is redacted whole.
_RUN = r"[^ \t\r\n\"',;]+"
_BEARER = re.compile(r"(?i)\b(bearer)[ \t]+" + _RUN)
# A key starts a word, or follows an escape as a repr shows it ("\x7fsk-...", "\tsk-...").
_KEY_START = r"(?:(?<![A-Za-z0-9])|(?<=\\x[0-9a-fA-F]{2})|(?<=\\u[0-9a-fA-F]{4})|(?<=\\[ntrabfv0]))"
_KEYS = re.compile(_KEY_START + r"(sk|mlx-vk)-" + _RUN)


# What every key above contains: text without it (nearly all) is returned as it is.
_MAYBE = re.compile(r"(?i)bearer|sk-|mlx-vk-")


def may_hold_key(text: str) -> bool:
    """Whether ``redact_text`` could change ``text`` (false for nearly all text).

    Also for several values at once, joined by a NUL: none of the words it looks for
    holds one, so a match never spans two values.
    """
    return _MAYBE.search(text) is not None


def redact_text(text: str) -> str:
    """Text with every ``Bearer <token>``, ``sk-...`` and ``mlx-vk-...`` key replaced."""
    if _MAYBE.search(text) is None:
        return text
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _KEYS.sub(lambda m: f"{m.group(1)}-{REDACTED}", text)
