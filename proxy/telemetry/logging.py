"""Structured JSON logs: a pipeline of small processors.

Request-scoped fields (request id, route, task id) travel in contextvars, so
every line logged while handling a request carries them; every line logged
while a span is active carries its ``trace_id`` and ``span_id``. A redaction
processor runs last before rendering: bearer tokens and anything under a
secret-looking key never reach the output.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import structlog

from proxy.telemetry.tracing import add_trace_context

_BEARER = re.compile(r"(?i)\b(bearer)\s+[^\s\"',;]+")
_SECRET_KEYS = frozenset(
    {"authorization", "api_key", "apikey", "token", "secret", "password", "x-api-key", "key"}
)
REDACTED = "[redacted]"

Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]


def redact_text(text: str) -> str:
    """Text with every ``Bearer <token>`` replaced."""
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {
            k: (REDACTED if str(k).lower() in _SECRET_KEYS else _redact(v))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Drop values under secret-looking keys and bearer tokens anywhere in strings."""
    for key in list(event):
        if key.lower() in _SECRET_KEYS:
            event[key] = REDACTED
        else:
            event[key] = _redact(event[key])
    return event


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    extra_processors: tuple[Processor, ...] = (),
) -> None:
    """Set up structlog for the process (called once by the entry point)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_context,
        *extra_processors,
        structlog.processors.format_exc_info,
        redact_secrets,
        renderer,
    ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
