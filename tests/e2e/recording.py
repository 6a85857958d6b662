"""A recording relay between the proxy and the simulator, and a proxy stack built around it.

The relay keeps every request verbatim (request line, raw headers, body) and
the status the simulator gave it, then forwards it unchanged: the path is sent
exactly as received (an encoded ``yarl.URL`` built, never joined or
re-resolved), so the simulator answers what the proxy really sent.
``guarded`` builds simulator -> relay -> proxy on loopback, with the proxy in
the given key mode and the simulator accepting only ``UPSTREAM_KEY``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_to_bytes

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from harness.config import settings_for
from proxy import money
from proxy.app import create_app
from proxy.governance.keys import new_key
from proxy.runtime import Runtime
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.state import RUNTIME
from proxy.stores.base import Store
from proxy.stores.records import Budget
from proxy.upstream.client import end_to_end

ServerFactory = Callable[..., Awaitable[TestServer]]
UPSTREAM_KEY = "sk-real-upstream-key-0001"


@dataclass(frozen=True)
class Received:
    """One request as it reached the relay, and the status the simulator answered."""

    method: str
    path_qs: str  # the raw request target, as on the request line
    raw_headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    status: int

    def header(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in the order received."""
        wanted = name.lower().encode("latin-1")
        return [v.decode("latin-1") for k, v in self.raw_headers if k.lower() == wanted]

    @property
    def path(self) -> str:
        return self.path_qs.partition("?")[0]

    def carries(self, text: str) -> bool:
        """Whether ``text`` appears anywhere in the request, raw or percent-decoded, any case."""
        needle = text.lower().encode()
        blobs = [f"{self.method} {self.path_qs}".encode(), self.body]
        blobs.extend(k + b": " + v for k, v in self.raw_headers)
        for blob in blobs:
            for form in (blob, unquote_to_bytes(blob)):
                if needle in form.lower():
                    return True
        return False


@dataclass
class RecordingRelay:
    upstream: URL
    received: list[Received] = field(default_factory=list)

    def carrying(self, text: str) -> list[Received]:
        """The requests that carried ``text`` in any form."""
        return [r for r in self.received if r.carries(text)]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 26)
        app.cleanup_ctx.append(self._client_ctx)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        return app

    async def _client_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            self._client = session
            yield

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        path, _, query = request.raw_path.partition("?")
        url = URL.build(
            scheme=self.upstream.scheme,
            authority=self.upstream.raw_authority,
            path=path,
            query_string=query,
            encoded=True,
        )
        headers = end_to_end(request.headers)
        headers.popall("Host", None)
        headers.popall("Content-Length", None)
        async with self._client.request(
            request.method, url, headers=headers, data=body or None, allow_redirects=False
        ) as resp:
            payload = await resp.read()
            out = end_to_end(resp.headers)
            out.popall("Content-Length", None)
        self.received.append(
            Received(
                request.method, request.raw_path, tuple(request.raw_headers), body, resp.status
            )
        )
        return web.Response(status=resp.status, body=payload, headers=out)


@dataclass
class Guarded:
    sim: Simulator
    sim_url: str
    relay: RecordingRelay
    proxy_url: str
    runtime: Runtime

    @property
    def store(self) -> Store:
        assert self.runtime.store is not None
        return self.runtime.store

    async def key(self, **fields: Any) -> tuple[str, str]:
        """A new proxy key in the store: its id and its token."""
        record, token = new_key(time.time(), **fields)
        await self.store.create_virtual_key(record)
        return record.key_id, token


async def guarded(
    aiohttp_server: ServerFactory,
    mode: str,
    sim_config: SimulatorConfig | None = None,
    **overrides: Any,
) -> Guarded:
    """Simulator, recording relay and proxy (key ``mode``), all on loopback."""
    sim = Simulator(
        sim_config or SimulatorConfig.fast(concurrency_limit=0, api_keys={UPSTREAM_KEY: "default"})
    )
    sim_url = str((await aiohttp_server(build_app(sim))).make_url("")).rstrip("/")
    relay = RecordingRelay(URL(sim_url))
    relay_url = str((await aiohttp_server(relay.app())).make_url("")).rstrip("/")
    settings = settings_for(
        relay_url,
        keys={"mode": mode, "cache_seconds": 0.1},
        upstream={"api_key": UPSTREAM_KEY},
        **overrides,
    )
    app = create_app(settings)
    proxy_url = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    return Guarded(sim, sim_url, relay, proxy_url, app[RUNTIME])


async def key_budget(g: Guarded, key_id: str, limit_usd: str) -> None:
    """A hard monthly budget of ``limit_usd`` on one virtual key, seen by the proxy at once."""
    now = time.time()
    await g.store.put_budget(
        Budget(
            name=f"key-{key_id}",
            scope="key",
            subject=key_id,
            window="month",
            limit_micros=money.parse(limit_usd),
            hard=True,
            created_at=now,
            updated_at=now,
        )
    )
    assert g.runtime.budgets is not None
    g.runtime.budgets.invalidate()
