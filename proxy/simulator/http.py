"""What the simulator's HTTP modules share: typed keys and the answer shapes."""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from aiohttp import web

from proxy.simulator.core import Simulator

SIM = web.AppKey("simulator", Simulator)
TEAM = web.RequestKey("team", str)
FAULT = web.RequestKey("fault", str)
BODY = web.RequestKey("body", object)
DROPPED = 499
"""Status of the placeholder answer returned after the connection was reset."""


def redacted_headers(request: web.BaseRequest) -> dict[str, str]:
    """The request's headers for the log, the Authorization value masked."""
    return {
        k: ("Bearer ***" if k.lower() == "authorization" else v) for k, v in request.headers.items()
    }


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """The upstream's error envelope."""
    return web.json_response({"code": status, "message": message}, status=status, headers=headers)


def ok(data: Any) -> web.Response:
    """The upstream's success envelope."""
    return web.json_response({"code": 0, "message": "success", "data": data})


def reset_connection(request: web.BaseRequest) -> web.StreamResponse:
    """Drop the connection with a TCP reset (RST) and no answer.

    The returned placeholder is never written: aiohttp meets a closed transport,
    treats it as a premature client disconnection and logs that at debug level only.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=DROPPED)
