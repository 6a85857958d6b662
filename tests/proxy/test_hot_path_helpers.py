"""The hot path's helpers: the event loop choice, JSON parsing, cached metric children."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry, Counter

from proxy import jsoncodec
from proxy.server import run
from proxy.telemetry.children import child


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_runs_on_uvloop_when_installed() -> None:
    """``event_loop: auto`` picks uvloop when it can be imported."""
    pytest.importorskip("uvloop")
    assert run(_loop_module(), "auto").startswith("uvloop")


def test_asyncio_setting_keeps_the_standard_loop() -> None:
    """``event_loop: asyncio`` never uses uvloop."""
    assert run(_loop_module(), "asyncio").startswith("asyncio")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"data": {"status": "pending"}, "message": "success"}',
        '{"a": [1, 2.5, "é", null, true]}'.encode(),
        b'{"a": NaN}',
        b'{"a": "\\ud800"}',
        b'[1, {"b": {}}]',
    ],
)
def test_loads_agrees_with_the_standard_library(raw: bytes) -> None:
    """What the standard library reads, ``loads`` reads the same (NaN and lone surrogates too)."""
    mine, theirs = jsoncodec.loads(raw), json.loads(raw)
    assert json.dumps(mine) == json.dumps(theirs)


@pytest.mark.parametrize("raw", [b"", b"{", b"\xff\xfe\x00", b'{"a": 1} x', b"nul"])
def test_loads_refuses_what_the_standard_library_refuses(raw: bytes) -> None:
    """Anything that is not JSON raises ``ValueError``, as ``json.loads`` does."""
    for parse in (json.loads, jsoncodec.loads):
        try:
            parse(raw)
        except ValueError:
            continue
        pytest.fail(f"{parse.__module__}.loads accepted {raw!r}")


@pytest.mark.parametrize(
    "record",
    [
        {"task_id": "video/t-1", "submitted_at": 1764512345.123456, "cost": 324_000, "x": None},
        [["pending", 1764512345.5, "submit"], ["success", 1764512399.25, "watcher"]],
        ["https://cdn.example/v.mp4?a=1&b=é"],
        {"correlation_id": "caf\udce9"},  # a surrogate-escaped header byte: orjson refuses it
    ],
)
def test_dumps_record_reads_back_as_written(record: object) -> None:
    """A record written by ``dumps_record`` reads back equal, whichever library wrote it."""
    text = jsoncodec.dumps_record(record)
    assert json.loads(text) == record
    assert jsoncodec.loads(text) == record


def test_dumps_record_writes_what_orjson_refuses_with_the_standard_library() -> None:
    """An integer past 64 bits is written exactly (by the standard library), not refused."""
    assert jsoncodec.dumps_record({"big": 2**70}) == '{"big":1180591620717411303424}'


def test_children_are_resolved_once_per_label_set() -> None:
    """The same labels give the same child, counting into the same sample."""
    registry = CollectorRegistry()
    requests = Counter("hot_requests", "requests", ["route"], registry=registry)
    first = child(requests, "poll")
    assert child(requests, "poll") is first
    first.inc()
    child(requests, "poll").inc()
    child(requests, "submit").inc()
    assert registry.get_sample_value("hot_requests_total", {"route": "poll"}) == 2
    assert registry.get_sample_value("hot_requests_total", {"route": "submit"}) == 1
