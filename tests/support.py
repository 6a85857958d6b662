"""Shared test helpers: settings pointed at a given upstream, a recording echo upstream."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.config import Settings, deep_merge, load
from proxy.simulator import Simulator


def settings_for(origin: str, **overrides: Any) -> Settings:
    """Settings for a proxy in front of ``origin``, on ephemeral ports, no admin listener."""
    base: dict[str, Any] = {
        "listen": {"host": "127.0.0.1", "port": 0},
        "admin": {"enabled": False},
        "upstream": {
            "origin": origin,
            "retry": {"base_delay_seconds": 0.01, "max_delay_seconds": 0.05},
        },
        "logging": {"level": "warning"},
        "store": {"url": "sqlite:///:memory:"},
        "watcher": {"enabled": False},
        # no model-list fetch at start: tests count what reaches the upstream (on need only)
        # no published schemas unless a test names the simulator's schema origin
        "models": {
            "upstream_list": {"fetch_at_start": False},
            "upstream_schemas": {"enabled": False},
        },
    }
    merged = deep_merge(base, overrides)
    settings = load(None, {})
    return Settings.model_validate(deep_merge(settings.model_dump(mode="python"), merged))


async def serve_simulator(
    aiohttp_server: Callable[..., Awaitable[TestServer]], sim: Simulator, **kwargs: Any
) -> tuple[str, str]:
    """Serve ``sim``'s API and schema origins on loopback; their origins, no trailing slash."""
    api = await aiohttp_server(sim.create_app(), **kwargs)
    schemas = await aiohttp_server(sim.create_schema_app(), **kwargs)
    return str(api.make_url("")).rstrip("/"), str(schemas.make_url("")).rstrip("/")


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body_len: int
    body_sha: str


@dataclass
class EchoUpstream:
    """An upstream that records what reached it and answers with what the test asks."""

    seen: list[Seen] = field(default_factory=list)
    handlers: dict[str, Callable[[web.Request], Awaitable[web.StreamResponse]]] = field(
        default_factory=dict
    )

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            digest.update(chunk)
            size += len(chunk)
        self.seen.append(
            Seen(request.method, request.raw_path, dict(request.headers), size, digest.hexdigest())
        )
        for prefix, handler in self.handlers.items():
            if request.path.startswith(prefix):
                return await handler(request)
        return web.json_response(
            {
                "code": 0,
                "message": "success",
                "data": {
                    "method": request.method,
                    "path": request.raw_path,
                    "size": size,
                    "sha256": digest.hexdigest(),
                },
            }
        )


def required_binary(name: str, install: str = "") -> str:
    """The path of ``name``. Missing, the test is skipped on a workstation but fails in CI
    (``CI`` set), where ``make test`` installs everything the suite needs."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed" + (f" ({install})" if install else "")
    if os.environ.get("CI"):
        pytest.fail(message + ": CI must provide it")
    pytest.skip(message)


async def wait_for(predicate: Callable[[], bool], within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds, polling; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def wait_until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until the coroutine ``check()`` answers true, polling; fail after ``within`` s."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def envelope(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc


PG_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@asynccontextmanager
async def fresh_postgres(prefix: str = "test_e2e") -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database (``<prefix>_<random>``), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
