"""Fuzz: thousands of malformed requests against a proxy process in front of the simulator.

A seeded generator builds bodies (invalid JSON, deep nesting, huge numbers, NaN/Infinity
literals, wrong types in every field of a few models, unicode and escaped lone surrogates,
long strings, malformed image URLs) and raw header blocks (bytes that are not UTF-8, control
characters, overlong lines, duplicated Authorization, odd Content-Type and Content-Length).
Everything is sent over raw sockets, as written. The proxy must never answer with its own
5xx nor write an ``error`` line or a traceback for them, and a ``/healthz`` prober in
another process must never see the event loop stalled: the issue's target is 100 ms,
measured by this test and printed; the assertion guards at 500 ms, five times that, so a
loaded CI machine's scheduling noise is not read as a stall while the stalls this guards
against (1.6 s and 17.7 s before the bounded body work) still fail it. Timed targets belong
to measurements, not to assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import start_proxy
from harness.waits import PROCESS_START_S
from proxy.simulator import Simulator, SimulatorConfig, build_app

REQUESTS = 5_000
CONCURRENCY = 4
TIME_LIMIT = 90.0
TARGET_PROBE_MS = 100.0  # the target, reported
MAX_PROBE_MS = 500.0  # the assertion: a stall, not scheduling noise
MODELS = {
    "minimax/hailuo-02-t2v": ["prompt", "duration", "resolution", "prompt_optimizer"],
    "minimax/hailuo-02-i2v": ["prompt", "first_frame_image", "duration", "resolution"],
    "kling/kling-v3-t2v": ["prompt", "duration", "aspect_ratio", "negative_prompt"],
    "bytedance/seedance-2.0-i2v": ["prompt", "first_frame_image", "reference_images"],
}
SLUGS = sorted(MODELS)
KEY = b"Bearer sk-fuzz-key-0123456789"
BAD_URLS = [
    "http://[::1",
    "http://a:99999/x.png",
    "http://a:b@",
    "http://" + "a" * 300 + ".com/x.png",
    "http://a..b/x",
    "http://\u00e9\u0301x.\u3002/x",
    "http://127.0.0.1/x.png",
    "http://[::ffff:127.0.0.1]/x.png",
    "ftp://example.com/x.png",
    "http://exa mple.com/x",
    "data:image/png;base64,!!!!",
    "data:,",
]
WEIRD_VALUES = [
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e29",
    "-6",
    "0",
    str(10**300),
    "true",
    "null",
    "[]",
    "{}",
    '"\\ud800"',
    '"\\udfff\\ud800x"',
    '"\\u0000"',
    '"\u202e\u0000\U0001f600"',
    "[[[[[[[[[[]]]]]]]]]]",
    '"' + "x" * 5000 + '"',
    "1.0",
    "-0",
    "123456789012345678901234567890",
]


def rand_value(rng: random.Random) -> str:
    """A JSON (or almost-JSON) value text."""
    pick = rng.random()
    if pick < 0.5:
        return rng.choice(WEIRD_VALUES)
    if pick < 0.7:
        return json.dumps(rng.choice(BAD_URLS))
    if pick < 0.8:
        return json.dumps([rng.choice(BAD_URLS) for _ in range(rng.randint(0, 20))])
    if pick < 0.9:
        return json.dumps("".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 40))))
    return str(rng.uniform(-1e12, 1e12))


def rand_body(rng: random.Random, slug: str) -> bytes:
    """A body that is malformed in some way, or valid JSON with hostile values."""
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
    if kind == 1:
        depth = rng.choice([10, 40, 200, 5000, 50_000])
        return b'{"prompt": "x", "a": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == 2:
        return b'{"prompt": "x", "duration": ' + rng.choice(WEIRD_VALUES).encode() + b"}"
    if kind == 3:  # truncated or doubled JSON
        text = json.dumps({"prompt": "a cat", "duration": 6})
        return text[: rng.randint(0, len(text))].encode() + (b"}" * rng.randint(0, 2))
    if kind == 4:  # many keys
        n = rng.choice([100, 3_000, 30_000])
        return json.dumps({f"k{i}": i for i in range(n)}).encode()
    if kind == 5:  # a long string
        return json.dumps({"prompt": "y" * rng.choice([10_000, 300_000, 1_000_000])}).encode()
    fields = MODELS[slug]
    members = [f'"prompt": {json.dumps("a cat")}']
    for field in rng.sample(fields, rng.randint(1, len(fields))):
        members.append(f"{json.dumps(field)}: {rand_value(rng)}")
    if rng.random() < 0.2:
        members.append(f"{json.dumps(chr(0xD800 + rng.randrange(2048)))}: 1")
    rng.shuffle(members)
    return ("{" + ", ".join(members) + "}").encode("utf-8", "surrogatepass")


def rand_headers(rng: random.Random, body: bytes) -> list[bytes]:
    """A header block with at most a few hostile lines."""
    auth = [b"Authorization: " + KEY]
    pick = rng.randrange(12)
    if pick == 0:
        auth = [b"Authorization: Bearer sk-\xff\xfe\xc0"]
    elif pick == 1:
        auth = [b"Authorization: Bearer sk-a\x01b"]
    elif pick == 2:
        auth = [b"Authorization: " + KEY, b"Authorization: Bearer sk-other"]
    elif pick == 3:
        auth = [b"Authorization: Bearer " + b"k" * rng.choice([5000, 20_000])]
    elif pick == 4:
        auth = []
    elif pick == 5:
        auth = [b"Authorization: Basic Zm9vOmJhcg=="]
    lines = [*auth, b"Host: 127.0.0.1"]
    ctype = rng.choice(
        [
            b"application/json",
            b"text/plain",
            b"application/json; charset=latin-1",
            b"\xff/\xfe",
            b"",
        ]
    )
    lines.append(b"Content-Type: " + ctype)
    if rng.random() < 0.1:
        lines.append(b"X-Modellix-Team: " + bytes(rng.randrange(0x80, 0x100) for _ in range(6)))
    if rng.random() < 0.05:
        lines.append(b"X-Filler: " + b"f" * 9000)
    if rng.random() < 0.05:
        lines.append(b"Idempotency-Key: " + bytes(rng.randrange(1, 256) for _ in range(20)))
    length = rng.random()
    if length < 0.05:
        lines.append(b"Content-Length: -1")
    elif length < 0.1:
        lines.append(b"Content-Length: 1e3")
    elif length < 0.12:
        lines.append(b"Content-Length: " + str(len(body)).encode() + b", 5")
    else:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    lines.append(b"Connection: close")
    return lines


def rand_request(rng: random.Random) -> bytes:
    slug = rng.choice(SLUGS)
    body = rand_body(rng, slug)
    path = f"/api/v1/{slug}".encode()
    if rng.random() < 0.05:
        path = rng.choice(
            [b"/api/v1/tasks/\xff\xfe", b"/api/v1/%zz/x", b"/api/v1/tasks/" + b"t" * 9000]
        )
    method = b"POST" if rng.random() < 0.95 else rng.choice([b"GET", b"PUT", b"P\x00ST"])
    head = method + b" " + path + b" HTTP/1.1\r\n" + b"\r\n".join(rand_headers(rng, body))
    return head + b"\r\n\r\n" + body


def favour(*pids: int) -> None:
    """Schedule the proxy and the prober ahead of the load generator (and other work).

    The bound is on what one request makes the proxy's event loop wait, not on how busy
    the machine is; as root the two processes get a higher priority (elsewhere, as is).
    """
    for pid in pids:
        try:
            os.setpriority(os.PRIO_PROCESS, pid, -10)
        except PermissionError:
            return


async def exchange(port: int, request: bytes) -> int | None:
    """The status the proxy answered with, or ``None`` if it closed without an answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        async with asyncio.timeout(15):
            line = await reader.readline()
    except ConnectionError:
        return None
    finally:
        writer.close()
    parts = line.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    server = TestServer(build_app(sim))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


# its own time limit, the proxy's start and stop: the suite's 120 s default cuts it short on
# a loaded machine (a load pass saw the whole test take 106 s)
@pytest.mark.timeout(TIME_LIMIT + 2 * PROCESS_START_S)
@pytest.mark.slow
async def test_five_thousand_malformed_requests_get_no_5xx_and_never_stall(
    sim_url: str, tmp_path: Path
) -> None:
    """5,000 seeded malformed requests: no 5xx from the proxy; /healthz is never stalled."""
    env = proxy_env(
        sim_url,
        f"sqlite:///{tmp_path / 'p.db'}",
        MODELLIX_PROXY_MODELS__PREFLIGHT__MODE="refuse",
        MODELLIX_PROXY_MODELS__PREFLIGHT__TIMEOUT_SECONDS="0.5",
    )
    proc = await start_proxy(env, tmp_path / "proxy.log")
    rng = random.Random(20261130)
    requests = [rand_request(rng) for _ in range(REQUESTS)]
    statuses: dict[int | None, int] = {}
    five_hundreds: list[bytes] = []
    spans: list[tuple[float, float, bytes]] = []  # (start, end, head) of every request
    prober = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.e2e.prober",
        proc.url,
        str(TIME_LIMIT),
        "0.01",
        stdout=asyncio.subprocess.PIPE,
    )
    favour(proc.process.pid, prober.pid)
    try:
        queue = iter(requests)
        started = time.monotonic()

        async def worker() -> None:
            for request in queue:
                if time.monotonic() - started > TIME_LIMIT:
                    return
                began = time.time()
                status = await exchange(proc.port, request)
                spans.append((began, time.time(), request[:120]))
                statuses[status] = statuses.get(status, 0) + 1
                if status is not None and status >= 500:
                    five_hundreds.append(request[:300])

        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
    finally:
        if prober.returncode is None:
            prober.send_signal(signal.SIGTERM)
        out, _ = await prober.communicate()
        await proc.kill(signal.SIGTERM)
    sent = sum(statuses.values())
    assert sent == REQUESTS, f"only {sent} requests within {TIME_LIMIT} s: {statuses}"
    assert not five_hundreds, five_hundreds[:5]
    probes = json.loads(out) if out else None
    assert probes is not None, "the prober printed nothing"
    assert probes["failures"] == 0, probes
    # Hostile bytes are the client's problem: no error-level line, no traceback, no echo.
    text = (tmp_path / "proxy.log").read_text(errors="replace")
    errors = [ln for ln in text.splitlines() if '"level": "error"' in ln or '"level":"error"' in ln]
    assert not errors, errors[:3]
    assert "Traceback" not in text
    assert KEY.decode().split()[1] not in text
    print(  # the measurement behind the 100 ms target (pytest -s shows it)
        f"fuzz: {sent} requests, statuses {sorted(statuses.items(), key=str)}, "
        f"/healthz max {probes['max_ms']} ms (target {TARGET_PROBE_MS} ms)"
    )
    if probes["max_ms"] > MAX_PROBE_MS:
        at, took = max(probes["slow"], key=lambda slow: slow[1])
        busy = [head for start, end, head in spans if start <= at + took / 1000 and end >= at]
        raise AssertionError(f"/healthz waited {took} ms; in flight: {busy}; {probes}")
