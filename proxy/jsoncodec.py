"""JSON on the hot path: orjson when installed, the standard library otherwise.

Parsing, and the proxy's own records: what the proxy writes to clients keeps the standard
library's exact bytes (answers are compared byte for byte, replayed and rewritten; request
fingerprints are hashes of the standard library's canonical form), while reading poll and
submit answers and writing the ledger's JSON columns (a job's history, its URLs, an
intent's job) is where the time goes. Anything orjson refuses is parsed again by the standard
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


def dumps_record(value: Any) -> str:
    """Compact JSON text of one of the proxy's own records (strings, finite numbers, lists,
    string-keyed objects); anything orjson refuses (a lone surrogate, an integer past 64
    bits) is written by the standard library instead."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:  # orjson.JSONEncodeError
            pass
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
