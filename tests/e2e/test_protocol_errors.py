"""Requests that are not HTTP/1.1: a 400 in the upstream's envelope, a counter, quiet logs.

A proxy process at the default ``info`` level receives requests aiohttp's parser refuses
(a NUL or a bare CR in a header, a bad request line, a bad method, an overlong header);
each is answered 4xx in the upstream's JSON envelope; the log has no ``error`` line, no
traceback and none of the client's bytes, at most one line per kind in ten seconds; the
counter ``modellix_proxy_http_protocol_errors_total`` has them all, by kind.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import start_proxy
from proxy.simulator import Simulator, SimulatorConfig, build_app

SECRET = b"sk-client-bytes-0123456789"
MALFORMED = [
    b"GET /api/v1/tasks/x HTTP/1.1\r\nHost: a\r\nX-Bad: a\x00" + SECRET + b"\r\n\r\n",
    b"GET /api/v1/tasks/x HTTP/1.1\r\nHost: a\r\nX-Bad: a\rb" + SECRET + b"\r\n\r\n",
    b"GET /api/v1/tasks/x " + SECRET + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"G\x00T /api/v1/tasks/x HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: a\r\nX-Long: " + b"l" * 20_000 + SECRET + b"\r\n\r\n",
    b"POST /api/v1/a HTTP/1.1\r\nHost: a\r\nContent-Length: 1e3\r\n\r\n" + SECRET,
]
ROUNDS = 20


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(10):
            answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_malformed_requests_are_answered_in_the_envelope_and_logged_quietly(
    tmp_path: Path,
) -> None:
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    server = TestServer(build_app(sim))
    await server.start_server()
    sim_url = str(server.make_url("")).rstrip("/")
    log = tmp_path / "proxy.log"
    env = proxy_env(sim_url, f"sqlite:///{tmp_path / 'p.db'}", MODELLIX_PROXY_LOGGING__LEVEL="info")
    proc = await start_proxy(env, log)
    try:
        for _ in range(ROUNDS):
            for request in MALFORMED:
                status, body = await exchange(proc.port, request)
                assert 400 <= status < 500, (request[:60], status, body)
                doc = json.loads(body)
                assert doc["code"] == status
                assert doc["error_type"] == "malformed_http"
                assert SECRET not in body
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{proc.admin_port}/metrics") as resp,
        ):
            metrics = await resp.text()
    finally:
        await proc.kill()
        await server.close()
    counted = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("modellix_proxy_http_protocol_errors_total{")
    )
    assert counted == ROUNDS * len(MALFORMED)
    text = log.read_text(errors="replace")
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert not [line for line in lines if line.get("level") in ("error", "critical")]
    assert "Traceback" not in text
    assert SECRET.decode() not in text
    quiet = [line for line in lines if line.get("event") == "http.protocol_error"]
    kinds = {line["kind"] for line in quiet}
    print(f"protocol errors: {counted:.0f} counted, {len(quiet)} lines, kinds {sorted(kinds)}")
    assert quiet
    assert len(quiet) <= 2 * len(kinds)  # one line per kind in ten seconds (a slow run: two)
    assert all(line["level"] == "info" for line in quiet)
