"""Test-only helpers: the simulator's Hailuo prices as an operator table, the simulator served
in-process, a recording echo upstream, and a binary a test needs. What chaos/ and bench/ share
with the tests (processes, ports, settings, PostgreSQL databases, the condition wait and its
bounds) is in ``harness``."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.simulator import Simulator, build_app, build_schema_app
from tests.ci_skips import in_ci

# An operator price table at the simulator's own Hailuo prices, for tests that need an exact
# estimate from ``pricing.models`` (the shipped default is empty: prices come from the
# upstream's model list, which gives Hailuo a min/max range).
_HAILUO = {"unit": "per_second", "usd_by_resolution": {"768P": "0.054", "1080P": "0.12"}}
SIMULATOR_HAILUO_PRICES: dict[str, Any] = {
    "models": {
        slug: _HAILUO
        for slug in (
            "minimax/hailuo-02-t2v",
            "minimax/hailuo-02-i2v",
            "minimax/hailuo-02-fl2v",
            "minimax/hailuo-2.3-t2v",
            "minimax/hailuo-2.3-i2v",
        )
    }
}


async def serve_simulator(
    aiohttp_server: Callable[..., Awaitable[TestServer]], sim: Simulator, **kwargs: Any
) -> tuple[str, str]:
    """Serve ``sim``'s API and schema origins on loopback; their origins, no trailing slash."""
    api = await aiohttp_server(build_app(sim), **kwargs)
    schemas = await aiohttp_server(build_schema_app(sim), **kwargs)
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
    if in_ci():
        pytest.fail(message + ": CI must provide it")
    pytest.skip(message)


def envelope(body: bytes) -> dict[str, Any]:
    doc = json.loads(body)
    assert isinstance(doc, dict)
    return doc
