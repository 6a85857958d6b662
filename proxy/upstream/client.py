"""The one pooled aiohttp session to the upstream origin, and the single place
where aiohttp's client exceptions are mapped to the proxy's own failures.

Every attempt is a CLIENT span whose W3C ``traceparent`` goes upstream with it;
its duration sample carries the trace id as an exemplar.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Coroutine, Iterable, Mapping
from functools import lru_cache
from typing import NamedTuple

import aiohttp
from aiohttp import hdrs
from aiohttp.typedefs import LooseHeaders
from multidict import CIMultiDict, CIMultiDictProxy
from opentelemetry.trace import Span
from yarl import URL

from proxy.config import UpstreamSettings
from proxy.telemetry.children import child
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.spans import (
    client_span,
    lean_trace_headers,
    set_error,
    set_response_status,
)
from proxy.telemetry.traceparent import trace_exemplar
from proxy.telemetry.tracing import Tracing, disabled_tracing
from proxy.upstream.retry import Failure

# RFC 9110 §7.6.1 hop-by-hop fields, plus the obsolete ones proxies still see.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


def end_to_end_pairs(
    headers: Mapping[str, str], drop: frozenset[str] = HOP_BY_HOP
) -> list[tuple[str, str]]:
    """The headers a proxy forwards, in one pass, as pairs: those named in ``drop`` (lower
    case; the hop-by-hop ones) and those named in ``Connection`` left out."""
    if conn := headers.get("Connection"):
        drop = drop | {token.strip().lower() for token in conn.split(",")}
    return [(name, value) for name, value in headers.items() if name.lower() not in drop]


def end_to_end(headers: Mapping[str, str] | CIMultiDictProxy[str]) -> CIMultiDict[str]:
    """The headers a proxy forwards: hop-by-hop ones and those named in ``Connection`` dropped."""
    return CIMultiDict(end_to_end_pairs(headers))


class TransportFailure(Exception):
    """One attempt failed below HTTP; ``failure`` tells whether the request left."""

    def __init__(self, failure: Failure, detail: str) -> None:
        super().__init__(detail)
        self.failure = failure
        self.detail = detail


class Reply(NamedTuple):
    """A complete upstream answer (submits and polls are read whole); a named tuple, the
    cheapest immutable record to make (one per attempt)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float


def map_exception(exc: BaseException) -> TransportFailure:
    """aiohttp's exception tree mapped onto the retry policy's failures."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError | aiohttp.ClientConnectorError):
        return TransportFailure(Failure.CONNECT, "could not connect to the upstream")
    if isinstance(exc, aiohttp.SocketTimeoutError | aiohttp.ServerTimeoutError | TimeoutError):
        return TransportFailure(Failure.READ_TIMEOUT, "the upstream did not answer in time")
    return TransportFailure(Failure.SENT_NO_RESPONSE, "the upstream connection was lost")


@lru_cache(maxsize=8)
def _auto_headers(skip: frozenset[str]) -> tuple[CIMultiDict[None], tuple[tuple[str, str], ...]]:
    """For a session's fixed ``skip_auto_headers``: the map aiohttp keeps of them, and the
    automatic headers left to add where the request has none of that name."""
    skipped: CIMultiDict[None] = CIMultiDict((name, None) for name in sorted(skip))
    defaults = [*aiohttp.ClientRequest.DEFAULT_HEADERS.items()]
    defaults.append((hdrs.USER_AGENT, aiohttp.http.SERVER_SOFTWARE))
    return skipped, tuple((name, value) for name, value in defaults if name not in skipped)


class _Request(aiohttp.ClientRequest):
    """aiohttp's request, its headers and automatic headers set as aiohttp sets them, without
    the two header maps aiohttp builds per request for the session's ``skip_auto_headers``
    nor its header-by-header copy of the request's headers."""

    def update_headers(self, headers: LooseHeaders | None) -> None:
        if not isinstance(headers, CIMultiDict) or hdrs.HOST in headers:
            super().update_headers(headers)  # a Host of the caller's replaces aiohttp's
            return
        # aiohttp's Host, then every header of the caller's, in order: what aiohttp's own
        # loop does for a map without a Host, in one call
        host = self.url.host_port_subcomponent
        assert host is not None  # an absolute URL: aiohttp refused a relative one already
        self.headers = CIMultiDict(((hdrs.HOST, host),))
        self.headers.extend(headers)

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        if not isinstance(skip_auto_headers, frozenset):  # a per-request set: aiohttp's way
            super().update_auto_headers(skip_auto_headers)
            return
        self._skip_auto_headers, defaults = _auto_headers(skip_auto_headers)
        headers = self.headers
        for name, value in defaults:
            if name not in headers:
                headers[name] = value


# A client polls each of its tasks again and again, and a URL object keeps what aiohttp
# reads of it (host, port, path) once computed: the last few thousand are kept whole.
@lru_cache(maxsize=2048)
def _upstream_url(scheme: str, authority: str, path_qs: str) -> URL:
    """``Upstream.url``'s URL (``scheme`` and ``authority`` are the origin's)."""
    path, _, query = path_qs.partition("?")
    return URL.build(
        scheme=scheme, authority=authority, path=path, query_string=query, encoded=True
    )


class Upstream:
    """The upstream origin behind one pooled ``aiohttp.ClientSession``."""

    def __init__(
        self, settings: UpstreamSettings, metrics: Metrics, tracing: Tracing | None = None
    ) -> None:
        self.origin = URL(settings.origin)
        self._scheme = self.origin.scheme
        self._authority = self.origin.raw_authority
        self._settings = settings
        self._metrics = metrics
        self._tracing = tracing if tracing is not None else disabled_tracing()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._settings.pool_size, keepalive_timeout=10)
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._settings.connect_timeout_seconds,
            sock_read=self._settings.read_timeout_seconds,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            cookie_jar=aiohttp.DummyCookieJar(),
            request_class=_Request,
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def started(self) -> bool:
        return self._session is not None and not self._session.closed

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("upstream session not started")
        return self._session

    def url(self, path_qs: str) -> URL:
        """The upstream URL for an already normalized, encoded path and query, byte for byte.

        Built, never joined: ``URL.join`` would resolve dot segments again, and a
        ``str`` URL would be decoded and re-resolved by aiohttp (``%2e%2e`` included).
        """
        return _upstream_url(self._scheme, self._authority, path_qs)

    def fetch(
        self,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        body: bytes | None,
        operation: str,
        *,
        resend_count: int = 0,
    ) -> Coroutine[None, None, Reply]:
        """One attempt, read whole (bounded by ``max_response_bytes``).

        Not a coroutine of its own: the one to await, without a layer between.
        """
        url = _upstream_url(self._scheme, self._authority, path_qs)  # as ``url``
        if not self._tracing.exporting:  # no span to make current: no context manager
            trace_headers = lean_trace_headers(self._tracing)
            return self._fetch(method, url, headers, body, operation, None, trace_headers)
        return self._fetch_traced(method, url, headers, body, operation, resend_count)

    async def _fetch_traced(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        operation: str,
        resend_count: int,
    ) -> Reply:
        with client_span(
            self._tracing,
            method=method,
            url=str(url),
            operation=operation,
            resend_count=resend_count,
        ) as attempt:
            return await self._fetch(
                method, url, headers, body, operation, attempt.span, attempt.headers
            )

    async def _fetch(
        self,
        method: str,
        url: URL,
        headers: Mapping[str, str],
        body: bytes | None,
        operation: str,
        span: Span | None,
        trace_headers: Mapping[str, str],
    ) -> Reply:
        """The attempt itself; ``span`` is the attempt's CLIENT span (``None`` when nothing
        exports: nothing to record) and ``trace_headers`` its trace context."""
        session = self._session
        if session is None:
            raise RuntimeError("upstream session not started")
        if body is not None and len(body) > _STREAM_ABOVE:
            data: bytes | io.BytesIO | None = io.BytesIO(body)
        else:
            data = body
        started = time.perf_counter()
        try:
            # Awaited, not entered: ``async with`` costs two coroutine layers on every step
            # of the exchange, and its release is needed only when the body was not read
            # whole by ``read`` (which releases the connection itself once it has it all).
            resp = await session.request(
                method,
                url,
                headers=_traced(headers, trace_headers),
                data=data,
                allow_redirects=False,
                auto_decompress=True,
            )
            try:
                seconds = time.perf_counter() - started
                self._observe(operation, seconds)
                status = resp.status
                if span is not None:
                    set_response_status(span, status, server=False)
                length = resp.content_length
                cap = self._settings.max_response_bytes
                whole = (
                    length is not None
                    and length <= cap
                    and not resp.headers.get("Content-Encoding")
                )
                if whole:
                    # Framed by Content-Length (aiohttp reads exactly that): one read.
                    payload = await resp.read()
                else:
                    payload = await self._read_capped(resp, cap, operation)
                self._count(operation, _status_class(status))
            except BaseException:
                resp.release()  # what leaving ``async with`` does
                await resp.wait_for_close()
                raise
            if not whole:
                resp.release()
                await resp.wait_for_close()
            return Reply(status, resp.headers, payload, seconds)
        except TransportFailure as failed:
            if span is not None:
                set_error(span, failed.failure.value)
            raise
        except (aiohttp.ClientError, TimeoutError) as exc:
            mapped = map_exception(exc)
            self._count(operation, mapped.failure.value)
            if span is not None:
                set_error(span, mapped.failure.value)
            raise mapped from exc

    async def open(
        self,
        method: str,
        path_qs: str,
        headers: Mapping[str, str],
        body: AsyncIterator[bytes] | bytes | None,
        operation: str,
    ) -> aiohttp.ClientResponse:
        """Start a streamed exchange; the caller reads and releases the response.

        The attempt's span ends with the response headers; the streamed body belongs to
        the server span of the request being served.
        """
        url = self.url(path_qs)
        with client_span(
            self._tracing, method=method, url=str(url), operation=operation
        ) as attempt:
            started = time.perf_counter()
            try:
                resp = await self.session.request(
                    method,
                    url,
                    headers=_traced(headers, attempt.headers),
                    data=body,
                    allow_redirects=False,
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                failure = map_exception(exc)
                self._count(operation, failure.failure.value)
                set_error(attempt.span, failure.failure.value)
                raise failure from exc
            except BaseException as exc:  # e.g. the client's body over the limit
                set_error(attempt.span, type(exc).__qualname__)
                raise
            self._observe(operation, time.perf_counter() - started)
            set_response_status(attempt.span, resp.status, server=False)
            self._count(operation, _status_class(resp.status))
            return resp

    async def _read_capped(self, resp: aiohttp.ClientResponse, cap: int, operation: str) -> bytes:
        """The body read chunk by chunk, refused past ``cap`` bytes (decoded size)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(65536):
            size += len(chunk)
            if size > cap:
                self._count(operation, "too_large")
                raise TransportFailure(Failure.TOO_LARGE, "the upstream answer was too large")
            chunks.append(chunk)
        return b"".join(chunks)

    def _observe(self, operation: str, seconds: float) -> None:
        exemplar = trace_exemplar() if self._tracing.exporting else None
        child(self._metrics.upstream_duration, operation).observe(seconds, exemplar)

    def _count(self, operation: str, outcome: str) -> None:
        child(self._metrics.upstream_requests, operation, outcome).inc()


def _traced(headers: Mapping[str, str], trace_headers: Mapping[str, str]) -> CIMultiDict[str]:
    """The attempt's headers: the client's trace context replaced by this attempt's."""
    out: CIMultiDict[str] = CIMultiDict(headers)
    out.popall("traceparent", None)
    out.popall("tracestate", None)
    out.extend(trace_headers)
    return out


# Request bodies larger than this go as a stream, so writing them never holds the event loop.
_STREAM_ABOVE = 1 << 20


_STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")


def _status_class(status: int) -> str:
    if status == 429:
        return "rate_limited"
    hundreds = status // 100
    return _STATUS_CLASSES[hundreds] if 0 <= hundreds < 6 else f"{hundreds}xx"


async def sleep(seconds: float) -> None:
    """The one place retries wait (kept apart so it reads as policy, not plumbing)."""
    await asyncio.sleep(seconds)


_DROP_RESPONSE = HOP_BY_HOP | {"content-length", "content-encoding"}


def reply_headers(headers: Mapping[str, str]) -> list[tuple[str, str]]:
    """The upstream answer's end-to-end headers (``end_to_end_pairs``), length and encoding
    dropped too; pairs, for ``web.Response`` to build its one header map from."""
    return end_to_end_pairs(headers, _DROP_RESPONSE)
