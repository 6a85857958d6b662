"""The framework's floor: a bare aiohttp pass-through to the same upstream, nothing else.

Run: ``python -m bench.bare --port 9200 --upstream http://127.0.0.1:9100`` (``bench.run``
starts it). One pooled ``ClientSession``; every request is forwarded with its method, path,
query, body and end-to-end headers, and the answer comes back with its status and body.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Sequence

from aiohttp import ClientSession, TCPConnector, web

from proxy.server import GC_THRESHOLDS

SESSION = web.AppKey("session", ClientSession)
HOP = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length"})


async def forward(request: web.Request) -> web.Response:
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    body = await request.read()
    async with request.app[SESSION].request(
        request.method, request.rel_url, headers=headers, data=body or None
    ) as answer:
        payload = await answer.read()
        return web.Response(status=answer.status, body=payload, content_type=answer.content_type)


def build_app(upstream: str) -> web.Application:
    app = web.Application()

    async def session(app: web.Application):  # type: ignore[no-untyped-def]
        async with ClientSession(upstream, connector=TCPConnector(limit=0)) as client:
            app[SESSION] = client
            yield

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/{tail:.*}", forward)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args(argv)
    loop: asyncio.AbstractEventLoop
    try:  # the same event loop as the proxy's default, so the floor is like for like
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    gc.freeze()  # and the proxy's collector settings after start-up, for the same reason
    gc.set_threshold(*GC_THRESHOLDS)
    web.run_app(
        build_app(args.upstream), host=args.host, port=args.port, access_log=None, loop=loop
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
