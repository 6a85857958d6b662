"""Fixtures: an echo upstream on loopback and a proxy in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from harness.config import settings_for
from proxy.app import create_app
from tests.support import EchoUpstream

ServerFactory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
def echo() -> EchoUpstream:
    return EchoUpstream()


@pytest.fixture
async def echo_url(echo: EchoUpstream, aiohttp_server: ServerFactory) -> str:
    server = await aiohttp_server(echo.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def proxy_url(echo_url: str, aiohttp_server: ServerFactory) -> str:
    server = await aiohttp_server(create_app(settings_for(echo_url)))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def make_proxy(aiohttp_server: ServerFactory) -> Callable[..., Awaitable[str]]:
    async def make(origin: str, **overrides: Any) -> str:
        app: web.Application = create_app(settings_for(origin, **overrides))
        server = await aiohttp_server(app)
        return str(server.make_url("")).rstrip("/")

    return make


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        yield session
