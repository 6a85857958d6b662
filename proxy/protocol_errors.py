"""Client protocol errors are not server errors.

A request aiohttp's parser cannot read (a NUL or a bare CR in a header, a bad request
line, an overlong line, a broken chunked body) never reaches the application: aiohttp
answers it from ``RequestHandler.handle_error``, which logs ``"Error handling request"``
at ``error`` level with the parser's traceback, and quotes the client's bytes. Anyone
could fill the logs and page whoever alerts on error lines.

``ProtocolErrorRunner`` (an ``AppRunner``) serves connections with ``GuardedHandler``
(a ``RequestHandler`` subclass). For a client protocol error it answers 400 (or the
parser's own 4xx) in the upstream's JSON envelope (``error_type: malformed_http``),
counts it in ``modellix_proxy_http_protocol_errors_total{kind}`` and writes at most one
``info`` line per kind every ``LOG_EVERY_SECONDS`` (how many were left out in between in
``suppressed``), without traceback and without the client's bytes. Anything else
aiohttp's error path sees (a server-side failure, 5xx) keeps aiohttp's handling and its
traceback.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import structlog
from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server
from prometheus_client import Counter

log = structlog.get_logger("proxy.protocol")

LOG_EVERY_SECONDS = 10.0
REASON = "malformed_http"
# The parser's exception classes, most specific first: a bounded set of ``kind`` labels.
KINDS: tuple[tuple[type[Exception], str], ...] = (
    (http_exceptions.BadHttpMethod, "bad_method"),
    (http_exceptions.BadStatusLine, "bad_request_line"),
    (http_exceptions.LineTooLong, "line_too_long"),
    (http_exceptions.InvalidHeader, "invalid_header"),
    (http_exceptions.InvalidURLError, "invalid_url"),
    (http_exceptions.ContentLengthError, "bad_content_length"),
    (http_exceptions.TransferEncodingError, "bad_transfer_encoding"),
    (http_exceptions.ContentEncodingError, "bad_content_encoding"),
    (http_exceptions.PayloadEncodingError, "bad_payload_encoding"),
    (http_exceptions.BadHttpMessage, "bad_message"),
)


def kind_of(exc: BaseException) -> str:
    """The ``kind`` label of a parser error (``other`` for a class not listed)."""
    for cls, kind in KINDS:
        if isinstance(exc, cls):
            return kind
    return "other"


class QuietLog:
    """At most one line per kind every ``every`` seconds; the rest counted as suppressed."""

    def __init__(self, every: float = LOG_EVERY_SECONDS) -> None:
        self._every = every
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def note(self, kind: str, status: int) -> None:
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self._every:
            self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
            return
        self._last[kind] = now
        log.info(
            "http.protocol_error",
            kind=kind,
            status=status,
            suppressed=self._suppressed.pop(kind, 0),
        )


def envelope_body(status: int, kind: str) -> bytes:
    """The upstream's error envelope for a request that could not be read."""
    return orjson.dumps(
        {
            "code": status,
            "message": f"Invalid format: the request is not valid HTTP/1.1 ({kind})",
            "error_type": REASON,
            "kind": kind,
        }
    )


class GuardedHandler(RequestHandler):
    """``RequestHandler`` whose answer to a client protocol error is quiet (the module)."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if not isinstance(exc, http_exceptions.HttpProcessingError) or status >= 500:
            return super().handle_error(request, status, exc, message)  # server-side: traceback
        code = exc.code if 400 <= exc.code < 500 else status
        kind = kind_of(exc)
        server = self._manager
        if isinstance(server, ProtocolErrorServer):
            server.protocol_errors.labels(kind).inc()
            server.quiet.note(kind, code)
        response = web.Response(
            status=code, body=envelope_body(code, kind), content_type="application/json"
        )
        response.force_close()
        return response


class ProtocolErrorServer(Server):
    """aiohttp's ``Server`` building ``GuardedHandler`` connections."""

    protocol_errors: Counter
    quiet: QuietLog

    def __call__(self) -> RequestHandler:
        return GuardedHandler(self, loop=self._loop, **self._kwargs)


class ProtocolErrorRunner(web.AppRunner):
    """``AppRunner`` whose server answers client protocol errors quietly (the module)."""

    def __init__(self, app: web.Application, protocol_errors: Counter, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._protocol_errors = protocol_errors

    async def _make_server(self) -> Server:
        server = await super()._make_server()
        # aiohttp builds its Server inside the application; the subclass only replaces how
        # a connection's handler is made (``__call__``), so the instance is re-classed.
        server.__class__ = ProtocolErrorServer
        assert isinstance(server, ProtocolErrorServer)
        server.protocol_errors = self._protocol_errors
        server.quiet = QuietLog()
        return server
