"""Finance reads against a real proxy process on a ledger of a few thousand jobs, on SQLite and
PostgreSQL: the streamed report and FOCUS export equal the ledger, ``/healthz`` answers while
an export is half-read, and a client that leaves mid-export (mid-``COPY`` on PostgreSQL)
leaves the proxy healthy."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest

from bench.ledger import seed
from harness.config import clean_environ, proxy_env
from harness.processes import ProxyProcess, run_proxy, start_proxy
from proxy.simulator import Simulator, build_app
from proxy.stores import open_store
from tests.e2e.conftest import ServerFactory

ADMIN = "admin-token-for-ledger-reads"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
JOBS = 4000


@pytest.fixture
async def proxy(
    aiohttp_server: ServerFactory, tmp_path: Path, store_url: str
) -> AsyncIterator[tuple[ProxyProcess, str]]:
    """A proxy on a seeded ledger, SQLite or PostgreSQL (``store_url``: both, in turn)."""
    sim = Simulator()
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    await seed(store_url, JOBS, days=30)
    env = proxy_env(
        sim_url,
        store_url,
        MODELLIX_PROXY_ADMIN__ENABLED="true",
        MODELLIX_PROXY_ADMIN__HOST="127.0.0.1",
        MODELLIX_PROXY_ADMIN__TOKEN=ADMIN,
        MODELLIX_PROXY_WATCHER__ENABLED="false",
    )
    proc = await start_proxy(env, tmp_path / "proxy.log")
    try:
        yield proc, store_url
    finally:
        await proc.kill()


def _admin(proc: ProxyProcess) -> str:
    return f"http://127.0.0.1:{proc.admin_port}"


async def _ledger_micros(store_url: str) -> int:
    store = await open_store(store_url)
    try:
        return sum(r.final_cost_micros for r in await store.spend_summary(0, time.time() + 1))
    finally:
        await store.close()


async def test_streamed_report_and_export_equal_the_ledger(
    proxy: tuple[ProxyProcess, str],
) -> None:
    """The JSON and CSV report, the FOCUS CSV, JSON and NDJSON, and the CLI's report all
    carry the ledger's spend to the micro-dollar, one FOCUS row per terminal job."""
    proc, store_url = proxy
    ledger = Decimal(await _ledger_micros(store_url)) / 1_000_000
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.get(f"{_admin(proc)}/admin/report?format=json") as resp:
            assert resp.status == 200
            assert resp.headers.get("Transfer-Encoding") == "chunked"
            doc = await resp.json()
        assert Decimal(doc["total_spend_usd"]) == ledger
        assert sum(r["jobs"] for r in doc["rows"]) == JOBS
        async with http.get(f"{_admin(proc)}/admin/report?format=csv") as resp:
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert [r["spend_usd"] for r in rows] == [r["spend_usd"] for r in doc["rows"]]
        async with http.get(f"{_admin(proc)}/admin/export/focus?format=csv") as resp:
            focus = list(csv.DictReader(io.StringIO(await resp.text())))
        async with http.get(f"{_admin(proc)}/admin/export/focus?format=json") as resp:
            focus_doc = await resp.json()
        async with http.get(f"{_admin(proc)}/admin/export/focus?format=ndjson") as resp:
            assert resp.content_type == "application/x-ndjson"
            lines = [json.loads(line) for line in (await resp.text()).splitlines()]
    assert len(focus) == len(focus_doc["rows"]) == len(lines) == JOBS
    for rows_of in (focus, focus_doc["rows"], lines):
        assert sum(Decimal(r["BilledCost"]) for r in rows_of) == ledger
    env = clean_environ() | {"MODELLIX_PROXY_STORE__URL": store_url}
    cli = await run_proxy("report", "--format", "json", env=env)
    assert cli.code == 0, cli.err
    assert Decimal(json.loads(cli.out)["total_spend_usd"]) == ledger


async def test_healthz_answers_while_an_export_is_half_read_and_after_a_client_leaves(
    proxy: tuple[ProxyProcess, str],
) -> None:
    """An export the client has read only in part holds nothing the client port needs; a
    client that disconnects mid-export leaves the proxy answering, and exporting again."""
    proc, store_url = proxy
    async with aiohttp.ClientSession() as probe:
        for _ in range(3):  # three exports abandoned after their first chunk
            async with aiohttp.ClientSession(headers=AUTH) as leaving:
                resp = await leaving.get(f"{_admin(proc)}/admin/export/focus?format=csv")
                assert resp.status == 200
                first = await resp.content.readany()
                assert first.startswith(b"AvailabilityZone,")
                assert not resp.content.at_eof()  # mid-export
                async with probe.get(f"{proc.url}/healthz") as health:
                    assert health.status == 200
                resp.close()  # the client goes away mid-answer
        async with probe.get(f"{proc.url}/healthz") as health:
            assert health.status == 200
        async with probe.get(f"{_admin(proc)}/admin/export/focus?format=csv", headers=AUTH) as resp:
            rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == JOBS
    assert proc.process.returncode is None
    assert "Traceback" not in proc.log.read_text(errors="replace")
    assert await _ledger_micros(store_url) * Decimal(1) == sum(
        Decimal(r["BilledCost"]) * 1_000_000 for r in rows
    )


async def test_cli_export_whose_reader_leaves_stops_quietly(
    proxy: tuple[ProxyProcess, str],
) -> None:
    """``modellix-proxy report --format focus | head``: when the reader closes the pipe after
    the first bytes, the CLI stops reading the ledger and exits 1 without a traceback."""
    _, store_url = proxy
    env = clean_environ() | {"MODELLIX_PROXY_STORE__URL": store_url}
    read_end, write_end = os.pipe()
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy", "report", "--format", "focus",
        env=env, stdout=write_end, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    os.close(write_end)
    try:
        first = await asyncio.to_thread(os.read, read_end, 1000)
        assert first.startswith(b"AvailabilityZone,")
    finally:
        os.close(read_end)  # the ledger's 2.6 MB of CSV do not fit the pipe: the CLI must stop
    _, err = await asyncio.wait_for(cli.communicate(), timeout=60)
    assert cli.returncode == 1
    assert b"Traceback" not in err, err.decode(errors="replace")
