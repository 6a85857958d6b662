"""A real proxy process under malformed HTTP, an unwritable store, and an unreachable one.

- Every line the process logs is one JSON object with no key material, even when aiohttp's
  own HTTP parser fails on a raw request line that quotes the key.
- ``/readyz`` answers 503 while the store cannot take a write, and 200 again after.
- Start-up against a store that cannot be reached prints one line and exits non-zero.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.postgres import PG_ADMIN_URL, fresh_postgres
from harness.processes import run_proxy, start_proxy
from harness.waits import REQUEST_S, wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app

SECRET = "LEAKCHECK7f3a9c"
KEY = f"sk-{SECRET}"


@pytest.fixture
async def sim_url() -> AsyncIterator[str]:
    server = TestServer(build_app(Simulator(SimulatorConfig.fast(concurrency_limit=0))))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def send_raw(port: int, data: bytes) -> bytes:
    """Send ``data``, read what comes back until the proxy closes (or 5 s pass)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read()
    except (TimeoutError, ConnectionError):
        return b""
    finally:
        writer.close()


def malformed_requests() -> list[bytes]:
    key = KEY.encode()
    head = b"POST /api/v1/minimax/hailuo-02-t2v HTTP/1.1\r\nHost: x\r\n"
    end = b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    return [
        head + b"Authorization: Bearer " + key[:8] + b"\x01" + key[8:] + b"\r\n" + end,
        head + b"Authorization: Bearer " + key + b"\x00tail\r\n" + end,
        head + b"Authorization: Bearer " + key + b"\xff\xfe\r\n" + end,
        head + b"Authorization: Bearer " + key + b"\r\nX-Modellix-Team: \x7f" + key + b"\r\n" + end,
        head + b"X-Big: " + key * 2000 + b"\r\n" + end,
        b"POST /api/v1/tasks/" + key + b" HTTP/1.1 junk\r\nHost: x\r\n\r\n",
        b"G\x01T /" + key + b" HTTP/1.1\r\nAuthorization: Bearer " + key + b"\r\n\r\n",
        head + b"Authorization: Bearer " + key + b"\r\nContent-Length: -5\r\n\r\n",
        head + b"Authorization: Bearer " + key + b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /api/v1/tasks/abc HTTP/1.1\r\nAuthorization: Bearer " + key + b"\r\n"
        b"Connection: close\r\n\r\n",
    ]


async def test_every_log_line_is_json_without_key_material(sim_url: str, tmp_path: Path) -> None:
    """Malformed raw HTTP carrying a key: the log is JSON lines and never shows the key."""
    log = tmp_path / "proxy.log"
    env = proxy_env(
        sim_url, f"sqlite:///{tmp_path / 'p.db'}", MODELLIX_PROXY_LOGGING__LEVEL="debug"
    )
    proc = await start_proxy(env, log)
    try:
        for request in malformed_requests():
            await send_raw(proc.port, request)
        async with aiohttp.ClientSession() as session, session.get(f"{proc.url}/readyz") as resp:
            assert resp.status == 200
    finally:
        await proc.kill(signal.SIGTERM)
    text = log.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line
    assert SECRET.lower() not in text.lower()
    assert '"http.protocol_error"' in text  # the refusals were logged (quietly, one line each)
    assert "Error handling request" not in text


async def test_readyz_fails_while_the_sqlite_store_cannot_be_written(
    sim_url: str, tmp_path: Path
) -> None:
    """Another process holding SQLite's write lock makes /readyz 503; releasing it, 200."""
    db = tmp_path / "p.db"
    env = proxy_env(sim_url, f"sqlite:///{db}")
    proc = await start_proxy(env, tmp_path / "proxy.log")
    holder = sqlite3.connect(db, isolation_level=None, timeout=10)
    try:
        async with aiohttp.ClientSession() as session:
            holder.execute("BEGIN EXCLUSIVE")
            await wait_ready(session, proc.url, 503)
            holder.execute("ROLLBACK")
            await wait_ready(session, proc.url, 200)
    finally:
        holder.close()
        await proc.kill(signal.SIGTERM)


async def wait_ready(session: aiohttp.ClientSession, url: str, status: int) -> None:
    """Wait until /readyz answers ``status``, its store check saying the same."""

    async def answers() -> bool:
        async with session.get(f"{url}/readyz") as resp:
            if resp.status != status:
                return False
            doc = await resp.json()
            assert doc["checks"]["store"] is (status == 200)
            return True

    await wait_until(answers, REQUEST_S, f"/readyz answering {status}")


@pytest.mark.postgres
async def test_readyz_fails_while_postgres_is_read_only(sim_url: str, tmp_path: Path) -> None:
    """A PostgreSQL database switched to read-only makes /readyz 503; switched back, 200."""
    async with fresh_postgres() as url:
        name = url.rsplit("/", 1)[1]
        proc = await start_proxy(proxy_env(sim_url, url), tmp_path / "proxy.log")
        admin = await asyncpg.connect(PG_ADMIN_URL)
        try:
            async with aiohttp.ClientSession() as session:
                await set_read_only(admin, name, True)
                await wait_ready(session, proc.url, 503)
                await set_read_only(admin, name, False)
                await wait_ready(session, proc.url, 200)
        finally:
            await admin.close()
            await proc.kill(signal.SIGTERM)


async def set_read_only(admin: asyncpg.Connection, name: str, on: bool) -> None:
    """Make new sessions of ``name`` read-only (or not) and end the current ones."""
    await admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {on}')
    await admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid()",
        name,
    )


@pytest.mark.parametrize(
    "store_url",
    ["sqlite:////nonexistent-dir-for-tests/sub/p.db", "postgresql://postgres@127.0.0.1:1/none"],
    ids=["sqlite-missing-dir", "postgres-closed-port"],
)
async def test_start_against_an_unreachable_store_prints_one_line(
    sim_url: str, store_url: str
) -> None:
    """The process exits non-zero after one clear line naming the store, with no traceback."""
    env = proxy_env(sim_url, store_url, MODELLIX_PROXY_LISTEN__PORT="0")
    env["MODELLIX_PROXY_ADMIN__ENABLED"] = "false"
    done = await run_proxy("serve", env=env)
    lines = (done.out + done.err).strip().splitlines()
    assert done.code != 0
    assert len(lines) == 1, lines
    assert lines[0].startswith("store: cannot start:"), lines
    assert "Traceback" not in lines[0]
