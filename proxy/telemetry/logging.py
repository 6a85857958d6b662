"""Structured JSON logs: a pipeline of small processors.

Request-scoped fields (request id, route, caller) come from the request being served
(``proxy.telemetry.scope``: one context variable per request, read when a line is
written), so every line logged while handling a request carries them; every line logged
while a span is active carries its ``trace_id`` and ``span_id`` (when nothing exports
traces, the request's sampled-out ids). A redaction
processor runs last before rendering: bearer tokens, ``sk-...`` and ``mlx-vk-...``
keys and anything under a secret-looking key never reach the output.

Libraries log through the standard ``logging`` module (aiohttp's "Error handling
request" tracebacks and HTTP parse errors, which quote the raw request line, asyncio's
"Task exception was never retrieved"). Those records go through the same redaction
and JSON renderer (structlog's ``ProcessorFormatter``): one JSON object per line,
the traceback one escaped ``exception`` field, control characters escaped.

Lines are rendered with orjson. The access line (``access_line``, one per request at
``info``) skips structlog's processor chain and its per-call logger binding: a dict of
the values the middleware has at hand (the request's fields and trace ids included), the
process's fields, level and timestamp, the same redaction, one ``orjson.dumps``; on a
file or a pipe a thread of its own writes it (``proxy.telemetry.linewriter``), so an
access line may land a little after a line written later by the event loop itself.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

import orjson
import structlog

from proxy.telemetry.linewriter import LineWriter
from proxy.telemetry.redaction import REDACTED, line_may_hold_key, may_hold_key, redact_text
from proxy.telemetry.scope import PROCESS_FIELDS, add_scope
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
_access_writer: LineWriter | None = None
"""The thread writing access lines, when the stream is a file (or a pipe) with bytes under it."""
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
            add_scope,
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
    global _level, _access_stream, _access_writer
    _level = logging.getLevelNamesMapping()[level.upper()]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=render_json)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # Extra processors may add fields: then the access line takes structlog's way too.
    _access_stream = (stream or sys.stdout) if fmt == "json" and not extra_processors else None
    close_access_writer()  # the lines queued for the previous stream go there first
    raw = getattr(_access_stream, "buffer", None)  # bytes straight to the file
    if raw is not None:
        _access_writer = LineWriter(raw)
    _foreign_records(renderer, stream or sys.stdout, logging.getLevelNamesMapping()[level.upper()])
    processors: list[Any] = [
        add_scope,
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
"""The second ``_timestamp`` last wrote: its date and time up to the decimal point."""
# Values of the access line that never come from a client: no redaction to run on them.
_OWN_FIELDS = frozenset(
    {"event", "level", "timestamp", "route", "model", "caller", "trace_id", "span_id"}
)


_MICROSECONDS = 10**6  # in a second


def _timestamp(now: float) -> str:
    """As structlog's ``TimeStamper(fmt="iso", utc=True)``, the date and time kept a second."""
    global _second
    whole = int(now)
    if _second[0] != whole:
        _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole)))
    # The microseconds, six digits: "1" and the five or fewer after it, cut (cheaper than
    # a format spec).
    return _second[1] + str(_MICROSECONDS + int((now - whole) * _MICROSECONDS))[1:] + "Z"


def milliseconds(seconds: float) -> float:
    """``seconds`` in milliseconds to three decimals: ``round(seconds * 1000, 3)`` but for a
    value a nanosecond or less from a half microsecond (without its decimal conversion)."""
    return round(seconds * _MICROSECONDS) / 1000


def _render(fields: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # what orjson refuses (a huge int, a lone surrogate)
        return (json.dumps(fields, default=str) + "\n").encode("utf-8", "surrogatepass")


def access_line(
    fields: dict[str, Any],
    ids: tuple[int, int] | None = None,
    chosen: tuple[str, ...] | None = None,
) -> None:
    """Write one ``request`` line at ``info`` (the caller checked ``enabled(INFO)``).

    ``fields``: the line's values, the request's own (request id, route, caller) among
    them; ``ids``: the request span's trace and span id. Added here: ``event``, the
    process's fields (the worker), ``level``, ``timestamp``, the ids in W3C hex; the
    redaction of ``redact_secrets``, on every value a client could have chosen.
    ``chosen``: the keys of the values a client could have chosen, when the caller knows
    them (every other value is a number, ``None`` or the proxy's own): then only those are
    looked at for a key, not the whole line.
    """
    stream = _access_stream
    if stream is None:  # structlog's way: its processors add what is added below
        _access_log.info("request", **fields)
        return
    fields["event"] = "request"
    if PROCESS_FIELDS:
        for key, value in PROCESS_FIELDS.items():
            fields.setdefault(key, value)
    fields["level"] = "info"
    fields["timestamp"] = _timestamp(time.time())
    if ids is not None:  # W3C hex: the bytes' hex is cheaper than a format spec
        fields["trace_id"] = ids[0].to_bytes(16).hex()
        fields["span_id"] = ids[1].to_bytes(8).hex()
    if chosen is None:
        line = _render(fields)
        suspect = line_may_hold_key(line)
    else:
        # None of the words ``may_hold_key`` looks for holds a NUL: one test for them all.
        suspect = may_hold_key(
            "\0".join([v for k in chosen if isinstance(v := fields.get(k), str)])
        )
        line = b"" if suspect else _render(fields)
    if suspect:  # nearly never: then redact each value a client chose
        # The redaction of ``redact_secrets``, on the values only: no key here is
        # secret-looking (the caller's are fixed, the process's are the worker's index).
        for key, value in fields.items():
            if isinstance(value, str) and key not in _OWN_FIELDS:
                fields[key] = redact_text(value)
        line = _render(fields)
    writer = _access_writer
    if writer is not None:  # written by its thread: the event loop never waits on the file
        writer.write(line)
        return
    with _access_lock:
        stream.write(line.decode())
        stream.flush()


def close_access_writer() -> None:
    """Write the access lines still queued and stop their thread (at exit, too)."""
    global _access_writer
    writer, _access_writer = _access_writer, None
    if writer is not None:
        writer.close()


atexit.register(close_access_writer)


def enabled(level: int) -> bool:
    """Whether a line at ``level`` (a ``logging`` level) would be written."""
    return level >= _level


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
