"""The access line: the fields structlog's way wrote, the same redaction, one JSON line."""

from __future__ import annotations

import io
import json

import structlog

from proxy.telemetry.logging import access_line, configure_logging


def test_the_access_line_has_the_bound_context_and_is_redacted() -> None:
    out = io.StringIO()
    configure_logging("info", "json", stream=out)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id="r-1", route="poll", worker=1)
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
            }
        )
        structlog.get_logger("x").info("other", key="sk-secret-value")
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging("warning", "json")
    first, other = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["event"] == "request"
    assert first["level"] == "info"
    assert first["timestamp"].endswith("Z")
    assert (first["request_id"], first["route"], first["worker"]) == ("r-1", "poll", 1)
    assert (first["status"], first["model"], first["task_id"]) == (200, None, "t-1")
    assert "0123456789abcdef" not in out.getvalue()
    assert "abcdef" not in first["correlation_id"]
    assert other["key"] == "[redacted]"
    assert set(other) >= {"event", "level", "timestamp", "request_id"}
