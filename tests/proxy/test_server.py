"""Running the proxy: TLS from cert and key files; a graceful stop finishes in-flight work."""

from __future__ import annotations

import asyncio
import gc
import ssl
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from harness.config import settings_for
from proxy.server import GC_THRESHOLDS, start
from tests.support import EchoUpstream, required_binary


def self_signed(tmp: Path) -> tuple[Path, Path]:
    openssl = required_binary("openssl")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_listener_serves_https(echo_url: str, tmp_path: Path) -> None:
    """With cert and key files the proxy serves HTTPS, as the official CLI requires off loopback."""
    cert, key = self_signed(tmp_path)
    settings = settings_for(echo_url, listen={"tls_cert_file": str(cert), "tls_key_file": str(key)})
    running = await start(settings)
    try:
        assert running.base_url.startswith("https://")
        trust = ssl.create_default_context(cafile=str(cert))
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{running.base_url}/api/v1/models", ssl=trust) as resp,
        ):
            assert resp.status == 200
        plain = running.base_url.replace("https://", "http://")
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.ClientError):
                await http.get(f"{plain}/api/v1/models")
    finally:
        await running.stop()


async def test_graceful_stop_finishes_in_flight_requests(echo: EchoUpstream, echo_url: str) -> None:
    """On stop the proxy refuses new connections but lets a request in flight finish."""
    release = asyncio.Event()
    arrived = asyncio.Event()

    async def slow(_request: web.Request) -> web.StreamResponse:
        arrived.set()
        await release.wait()
        return web.json_response({"code": 0, "message": "success", "data": {"balance": 1.0}})

    echo.handlers["/api/v1/team/balance"] = slow
    running = await start(settings_for(echo_url, shutdown_grace_seconds=10))
    async with aiohttp.ClientSession() as http:

        async def in_flight() -> int:
            async with http.get(f"{running.base_url}/api/v1/team/balance") as resp:
                await resp.read()
                return resp.status

        pending = asyncio.ensure_future(in_flight())
        await asyncio.wait_for(arrived.wait(), timeout=5)
        stopping = asyncio.ensure_future(running.stop())
        async with aiohttp.ClientSession() as other, asyncio.timeout(5):
            while True:  # until the listener is closed: new connections are refused
                try:
                    async with other.get(f"{running.base_url}/healthz") as resp:
                        await resp.read()
                except aiohttp.ClientConnectorError:
                    break
        assert not pending.done()  # the request in flight is still being served
        release.set()
        assert await asyncio.wait_for(pending, timeout=5) == 200
        await asyncio.wait_for(stopping, timeout=15)


async def test_start_raises_the_collector_threshold(echo_url: str) -> None:
    """After start-up the first generation is collected every GC_THRESHOLDS[0] allocations
    (Python's 700 ran the collector thousands of times a minute under load)."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    running = await start(settings_for(echo_url))
    try:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert GC_THRESHOLDS[0] >= 10 * 700
    finally:
        await running.stop()
        gc.set_threshold(*before)
