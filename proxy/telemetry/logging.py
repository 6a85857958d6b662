"""Structured JSON logs: a pipeline of small processors.

Request-scoped fields (request id, route, task id) travel in contextvars, so
every line logged while handling a request carries them; every line logged
while a span is active carries its ``trace_id`` and ``span_id``. A redaction
processor runs last before rendering: bearer tokens, ``sk-...`` and ``mlx-vk-...``
keys and anything under a secret-looking key never reach the output.

Libraries log through the standard ``logging`` module (aiohttp's "Error handling
request" tracebacks and HTTP parse errors, which quote the raw request line, asyncio's
"Task exception was never retrieved"). Those records go through the same redaction
and JSON renderer (structlog's ``ProcessorFormatter``): one JSON object per line,
the traceback one escaped ``exception`` field, control characters escaped.

Lines are rendered with orjson. The access line (``access_line``, one per request at
``info``) skips structlog's processor chain and its per-call logger binding: a dict of
the values the middleware has at hand, the bound context, level, timestamp and trace
ids, the same redaction, one ``orjson.dumps`` and one write.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog
from opentelemetry.trace import SpanContext

from proxy.telemetry.redaction import REDACTED, may_hold_key, redact_text
from proxy.telemetry.traceparent import add_trace_context

_FOREIGN_LOGGERS = ("aiohttp", "asyncio", "py.warnings", "threading")
_STATEMENT_LOGGERS = ("aiosqlite", "asyncpg")
# The level ``configure_logging`` set, for hot paths that skip building a line nobody writes.
_level = logging.INFO
_SECRET_KEYS = frozenset(
    {"authorization", "api_key", "apikey", "token", "secret", "password", "x-api-key", "key"}
)

_access_stream: TextIO | None = None
"""Where access lines go when the format is JSON (``None``: through structlog)."""
_access_lock = threading.Lock()
_access_log = structlog.get_logger("proxy.access")

Processor = Callable[[Any, str, MutableMapping[str, Any]], MutableMapping[str, Any]]


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


def render_json(obj: Any, **_: Any) -> str:
    """structlog's serializer: orjson, or ``json`` for what orjson refuses (a huge int)."""
    try:
        return orjson.dumps(obj, default=str).decode()
    except TypeError:
        return json.dumps(obj, default=str)


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


class _ForeignHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``configure_logging`` puts on the root logger (replaced on a new call)."""


def _foreign_records(renderer: Any, stream: TextIO, level: int) -> None:
    """Send the standard ``logging`` records of libraries through redaction and ``renderer``."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
    )
    handler = _ForeignHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ForeignHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _FOREIGN_LOGGERS:  # their records reach the root handler, rendered once
        logging.getLogger(name).propagate = True
    for name in _STATEMENT_LOGGERS:  # every statement and its parameters: never below info
        logging.getLogger(name).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)


def log_thread_exception(args: threading.ExceptHookArgs) -> None:
    """``threading.excepthook`` for the server: one redacted JSON line, not a raw traceback."""
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    exc_info = (args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback)
    logging.getLogger("threading").error("thread.failed %s", thread, exc_info=exc_info)


def configure_logging(
    level: str = "info",
    fmt: str = "json",
    stream: TextIO | None = None,
    extra_processors: tuple[Processor, ...] = (),
) -> None:
    """Set up structlog for the process (called once by the entry point).

    Also routes the standard ``logging`` records of libraries (aiohttp, asyncio) through
    the same redaction and renderer, on the same stream.
    """
    global _level, _access_stream
    _level = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=render_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Extra processors may add fields: then the access line takes structlog's way too.
    _access_stream = (stream or sys.stdout) if fmt == "json" and not extra_processors else None
    _foreign_records(renderer, stream or sys.stdout, logging.getLevelNamesMapping()[level.upper()])
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


_second: tuple[int, str] = (-1, "")
# Values of the access line that never come from a client: no redaction to run on them.
_OWN_FIELDS = frozenset({"event", "level", "timestamp", "route", "model", "trace_id", "span_id"})


def _timestamp(now: float) -> str:
    """As structlog's ``TimeStamper(fmt="iso", utc=True)``, the date and time kept a second."""
    global _second
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{_second[1]}.{int((now - whole) * 1e6):06d}Z"  # microseconds


def access_line(fields: dict[str, Any], span: SpanContext | None = None) -> None:
    """Write one ``request`` line at ``info`` (the caller checked ``enabled(INFO)``).

    The same fields as a structlog line: ``fields``, ``event``, the bound context (request
    id, route, worker, caller), ``level``, ``timestamp``, the active span's ids (``span``:
    the active span's context, when the caller has it at hand); the same redaction, on
    every value a client could have chosen.
    """
    stream = _access_stream
    if stream is None:
        _access_log.info("request", **fields)
        return
    fields["event"] = "request"
    for key, value in structlog.contextvars.get_contextvars().items():
        fields.setdefault(key, value)
    fields["level"] = "info"
    fields["timestamp"] = _timestamp(time.time())
    if span is None:
        add_trace_context(None, "info", fields)
    elif span.is_valid:  # as add_trace_context, without looking the active span up again
        fields.setdefault("trace_id", format(span.trace_id, "032x"))
        fields.setdefault("span_id", format(span.span_id, "016x"))
    # The redaction of ``redact_secrets``, on the values only: no key here is secret-looking
    # (the caller's are fixed; the bound context's are the request id, route, worker, caller).
    # One look over all of them first: nearly always none holds anything key-shaped.
    client = [k for k, v in fields.items() if isinstance(v, str) and k not in _OWN_FIELDS]
    if may_hold_key("\x00".join([fields[k] for k in client])):
        for key in client:
            fields[key] = redact_text(fields[key])
    try:
        line = orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        line = (json.dumps(fields, default=str) + "\n").encode()
    raw = getattr(stream, "buffer", None)  # bytes straight to the file under a text stream
    with _access_lock:
        if raw is not None:
            raw.write(line)
            raw.flush()
        else:
            stream.write(line.decode())
            stream.flush()


def enabled(level: int) -> bool:
    """Whether a line at ``level`` (a ``logging`` level) would be written."""
    return level >= _level


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
