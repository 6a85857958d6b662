"""JSON on the hot path: orjson when installed, the standard library otherwise.

Parsing only: what the proxy writes keeps the standard library's exact bytes (answers
are compared byte for byte, replayed and rewritten), while reading poll and submit
answers is where the time goes. Anything orjson refuses is parsed again by the standard
library, so both agree on what is JSON. One difference remains: orjson reads integers
past 64 bits as floats; use ``loads`` where such numbers do not matter (task statuses).
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency; this is the fallback
    orjson = None  # type: ignore[assignment]


def loads(data: bytes | str) -> Any:
    """The document in ``data``; ``ValueError`` (``UnicodeDecodeError`` included) if none."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # decided below, by the same rules as without orjson
    return json.loads(data)
