"""A mock upstream that answers every request after a fixed delay (22 ms by default).

Run: ``python -m bench.mock --port 9300 [--delay-ms 22]`` (``bench.sweep`` starts it).
The public AI-gateway latency benchmarks put each gateway in front of such a mock, so
that what a gateway adds is read against a known, steady upstream. ``GET
/api/v1/tasks/{id}`` answers a task in Modellix's envelope (``processing``, so the proxy
observes nothing to settle); ``GET /_sim/state`` answers ``{}`` (readiness); anything else
answers 404 in the envelope, after the same delay.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Sequence

import orjson
from aiohttp import web

DELAY = web.AppKey("delay", float)


async def task(request: web.Request) -> web.Response:
    await asyncio.sleep(request.app[DELAY])
    body = {
        "code": 0,
        "message": "success",
        "data": {"task_id": request.match_info["task_id"], "status": "processing"},
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def state(_: web.Request) -> web.Response:
    return web.json_response({})


async def other(request: web.Request) -> web.Response:
    await asyncio.sleep(request.app[DELAY])
    return web.json_response({"code": 404, "message": "Not found: mock"}, status=404)


def build_app(delay_seconds: float) -> web.Application:
    app = web.Application()
    app[DELAY] = delay_seconds
    app.router.add_get("/api/v1/tasks/{task_id}", task)
    app.router.add_get("/_sim/state", state)
    app.router.add_route("*", "/{tail:.*}", other)
    return app


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=22.0)
    args = parser.parse_args(argv)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop
    except ImportError:
        loop = asyncio.new_event_loop()
    else:
        loop = uvloop.new_event_loop()
    gc.freeze()
    web.run_app(
        build_app(args.delay_ms / 1000), host=args.host, port=args.port, access_log=None, loop=loop
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
