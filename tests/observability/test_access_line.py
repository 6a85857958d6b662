"""The access line: the fields structlog's way wrote, the same redaction, one JSON line."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import structlog
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from proxy.context import Caller, RequestContext, RouteKind
from proxy.middleware import CLIENT_CHOSEN, _account
from proxy.state import METRICS
from proxy.telemetry import scope
from proxy.telemetry.linewriter import GATHER_SECONDS, LineWriter
from proxy.telemetry.logging import (
    _OWN_FIELDS,
    access_line,
    close_access_writer,
    configure_logging,
)
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.scope import PROCESS_FIELDS, LeanTrace, bind_process


def test_the_access_line_has_the_process_fields_and_is_redacted() -> None:
    """The line carries its fields, the process's, level, timestamp and ids; keys masked."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    bind_process(worker=1)
    try:
        access_line(
            {
                "method": "GET",
                "path": "/api/v1/tasks/sk-0123456789abcdef",
                "status": 200,
                "duration_ms": 1.5,
                "correlation_id": "Bearer abcdef",
                "model": None,
                "task_id": "t-1",
                "request_id": "r-1",
                "route": "poll",
            },
            (0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331),
        )
        structlog.get_logger("x").info("other", key="sk-secret-value")
    finally:
        PROCESS_FIELDS.clear()
        configure_logging("warning", "json")
    first, other = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "request"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert (first["request_id"], first["route"], first["worker"]) == ("r-1", "poll", 1)
    assert (first["status"], first["model"], first["task_id"]) == (200, None, "t-1")
    assert first["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert first["span_id"] == "b7ad6b7169203331"
    assert "0123456789abcdef" not in out.getvalue()
    assert "abcdef" not in first["correlation_id"]
    assert other["key"] == "[redacted]"
    assert other["worker"] == 1


def test_a_line_without_anything_key_shaped_is_written_as_given() -> None:
    """Values that hold no key-shaped text (a long s is not an s) pass unchanged."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    fields = {"path": "/api/v1/tasks/ta\u017fk-1", "correlation_id": "desk_basi-c", "status": 200}
    try:
        access_line(dict(fields))
        access_line({"path": "/api/v1/tasks/x", "correlation_id": "Ba\u017fic abcdef"})
    finally:
        configure_logging("warning", "json")
    plain, folded = (json.loads(line) for line in out.getvalue().splitlines())
    assert {k: plain[k] for k in fields} == fields
    assert "trace_id" not in plain
    # The long s matches "s" case-insensitively, as the redaction's pattern reads it.
    assert folded["correlation_id"] == "Ba\u017fic [redacted]"


def test_lines_on_a_file_are_written_by_a_thread_in_order_and_all_by_close(
    tmp_path: Path,
) -> None:
    """On a file, access lines arrive in order, every one of them once the writer closes."""
    path = tmp_path / "access.log"
    with path.open("w", encoding="utf-8") as stream:
        configure_logging("info", "json", stream=stream)
        try:
            for i in range(500):
                access_line({"path": f"/api/v1/tasks/t-{i}", "status": 200})
            close_access_writer()
        finally:
            configure_logging("warning", "json")
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["path"] for line in lines] == [f"/api/v1/tasks/t-{i}" for i in range(500)]


def test_a_closed_stream_loses_its_lines_without_raising(tmp_path: Path) -> None:
    """A stream closed under the writer: the lines are lost, nothing is raised."""
    stream = (tmp_path / "gone.log").open("wb")
    writer = LineWriter(stream)
    stream.close()
    writer.write(b'{"event":"request"}\n')
    writer.close()
    assert (tmp_path / "gone.log").read_bytes() == b""


def test_a_line_written_while_a_request_is_served_names_it() -> None:
    """Any line logged while a request is served carries its id, route, caller and lean
    trace ids; after it, none of them."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    ctx = RequestContext("r-9", "r-9", RouteKind.SUBMIT, 0.0, 0.0)
    ctx.caller = Caller(identity="fp:0123456789abcdef")
    ctx.trace = LeanTrace(0x0AF7651916CD43DD8448EB211C80319C, 0xB7AD6B7169203331)
    token = scope.enter(ctx)
    try:
        structlog.get_logger("x").warning("inside")
    finally:
        scope.leave(token)
    try:
        structlog.get_logger("x").warning("after")
    finally:
        configure_logging("warning", "json")
    inside, after = (json.loads(line) for line in out.getvalue().splitlines())
    assert (inside["request_id"], inside["route"]) == ("r-9", "submit")
    assert inside["caller"] == "fp:0123456789abcdef"
    assert inside["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert inside["span_id"] == "b7ad6b7169203331"
    assert not {"request_id", "route", "caller", "trace_id", "span_id"} & set(after)


def test_the_middlewares_line_redacts_every_value_a_client_chose() -> None:
    """Key-shaped text in the method, path, request and correlation ids, alias and task id
    (the values the middleware names as a client's) is masked in its access line."""
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    app = web.Application()
    app[METRICS] = Metrics()
    key = "sk-0123456789abcdef"
    request = make_mocked_request("GET", f"/api/v1/tasks/{key}", app=app)
    ctx = RequestContext(f"r-{key}", f"Bearer {key}", RouteKind.POLL, 0.0, 0.0)
    ctx.alias, ctx.task_id, ctx.caller = key, key, Caller(identity="fp:0123")
    try:
        _account(request, ctx, 200, None, 0.001)
    finally:
        configure_logging("warning", "json")
    line = json.loads(out.getvalue())
    assert "0123456789abcdef" not in out.getvalue()
    assert (line["path"], line["alias"], line["task_id"]) == (
        "/api/v1/tasks/sk-[redacted]",
        "sk-[redacted]",
        "sk-[redacted]",
    )
    assert (line["request_id"], line["correlation_id"]) == ("r-sk-[redacted]", "Bearer [redacted]")
    assert (line["route"], line["caller"], line["status"]) == ("poll", "fp:0123", 200)
    chosen = {k for k, v in line.items() if isinstance(v, str)} - _OWN_FIELDS
    assert chosen <= set(CLIENT_CHOSEN)


def test_lines_in_bursts_are_all_written_and_close_returns_at_once(tmp_path: Path) -> None:
    """Lines queued in bursts, with quiet spells between, all arrive in order; ``close``
    after a quiet spell (the thread between batches) stops the thread without waiting."""
    path = tmp_path / "bursts.log"
    with path.open("wb") as stream:
        writer = LineWriter(stream)
        for burst in range(3):
            for i in range(50):
                writer.write(f"{burst}-{i}\n".encode())
            time.sleep(GATHER_SECONDS * (1.5 + burst))
        started = time.monotonic()
        writer.close()
        assert time.monotonic() - started < 1.0
        assert not writer._thread.is_alive()
    expected = [f"{burst}-{i}" for burst in range(3) for i in range(50)]
    assert path.read_text(encoding="utf-8").splitlines() == expected
