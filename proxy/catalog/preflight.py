"""URL preflight for image inputs: is the image there, readable and within limits?

Every hop is vetted by ``HostGuard`` before any connection: the host is
resolved once, every address checked, and the aiohttp connector's resolver
answers only with those checked addresses (so a DNS answer cannot change
between check and connect). Literal IP hosts in any form are rewritten to the
canonical checked address. Redirects are followed by hand (at most
``max_redirects``), each re-checked. A ``HEAD`` comes first, then a ranged
``GET`` of the first bytes for the format and dimensions, read under a byte cap.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from multidict import CIMultiDictProxy
from yarl import URL

from proxy.catalog.images import CorruptImage, ImageInfo, Truncated, check_image, read_info, sniff
from proxy.catalog.netguard import DnsResolver, GuardError, HostGuard, parse_host
from proxy.catalog.spec import ImageConstraints

PreflightReason = Literal[
    "unreachable",
    "status",
    "wrong_type",
    "too_large",
    "too_small",
    "forbidden_address",
    "bad_aspect",
]
_ISSUE_TO_REASON: dict[str, PreflightReason] = {
    "media_format": "wrong_type",
    "media_size": "too_large",
    "media_dimensions": "too_small",
    "media_aspect": "bad_aspect",
}
_BINARY_TYPES = ("application/octet-stream", "binary/octet-stream", "")
_LABEL = re.compile(r"[A-Za-z0-9_-]{1,63}")
MAX_URL_CHARS = 8192


def parse_image_url(url: str) -> URL:
    """``url`` as an http(s) URL with a host that could be connected to, or ``ValueError``.

    Purely local (no DNS): an unparsable URL, a port outside 1..65535, a missing host, or a
    host name that is not a DNS name (an empty or over-long label, spaces, IDNA errors) is
    certain to fail upstream too. The message says what is wrong, never echoing the URL.
    """
    if len(url) > MAX_URL_CHARS:
        raise ValueError(f"is longer than {MAX_URL_CHARS} characters")
    try:
        parsed = URL(url)
        port = parsed.port
    except ValueError as exc:  # UnicodeError (IDNA) included
        raise ValueError(f"is not a valid URL ({_reason(exc)})") from exc
    if parsed.scheme not in ("http", "https"):
        raise ValueError("must be an http(s) URL")
    host = parsed.raw_host
    if not host:
        raise ValueError("has no host")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"has an invalid port {port}")
    if parse_host(host) is None:
        name = host.rstrip(".")
        if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
            raise ValueError("has a host that is not a valid DNS name")
    return parsed


def _reason(exc: ValueError) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:80]


@dataclass(frozen=True, slots=True)
class PreflightOptions:
    """Operator knobs (config section ``validation.preflight``)."""

    mode: Literal["refuse", "warn"] = "refuse"
    allow: Sequence[str] = ()  # host names, ``*.suffix`` or CIDRs exempt from the guard
    max_redirects: int = 3
    head_bytes: int = 65536
    connect_timeout: float = 2.0
    read_timeout: float = 3.0
    total_timeout: float = 5.0
    cache_ttl: float = 60.0
    cache_size: int = 1024
    user_agent: str = "modellix-proxy-preflight/1"


@dataclass(frozen=True, slots=True)
class PreflightResult:
    ok: bool
    reason: PreflightReason | None = None
    detail: str = ""
    info: ImageInfo | None = None
    size: int | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class _Fetched:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class GuardedResolver(AbstractResolver):
    """aiohttp resolver that answers only with addresses ``HostGuard`` approved."""

    def __init__(self, guard: HostGuard) -> None:
        self._guard = guard

    async def resolve(
        self, host: str, port: int = 0, family: int = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._guard.resolve(host)
        return [
            ResolveResult(
                hostname=host,
                host=str(ip),
                port=port,
                family=socket.AF_INET if ip.version == 4 else socket.AF_INET6,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in addresses
        ]

    async def close(self) -> None:
        return None


class _Refused(Exception):
    def __init__(self, reason: PreflightReason, detail: str) -> None:
        super().__init__(detail)
        self.reason, self.detail = reason, detail


class Preflight:
    """Checks image URLs before the upstream is asked to fetch them."""

    def __init__(
        self,
        settings: PreflightOptions | None = None,
        *,
        resolver: DnsResolver | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or PreflightOptions()
        self.guard = HostGuard(self.settings.allow, resolver=resolver, clock=clock)
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._cache: dict[tuple[str, ImageConstraints], tuple[float, PreflightResult]] = {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.guard), use_dns_cache=False, limit=32
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(
                    total=s.total_timeout, sock_connect=s.connect_timeout, sock_read=s.read_timeout
                ),
                trust_env=False,  # never route through an environment proxy
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                headers={"User-Agent": s.user_agent},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def check(self, url: str, limits: ImageConstraints) -> PreflightResult:
        """Preflight one URL (cached for ``cache_ttl`` seconds)."""
        key = (url, limits)
        now = self._clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        try:
            async with asyncio.timeout(self.settings.total_timeout * 2):
                result = await self._check(url, limits)
        except _Refused as exc:
            result = PreflightResult(False, exc.reason, exc.detail)
        except GuardError as exc:
            result = PreflightResult(
                False,
                "forbidden_address" if exc.reason == "forbidden_address" else "unreachable",
                exc.detail,
            )
        except ValueError as exc:  # a redirect to a URL that cannot be used
            result = PreflightResult(False, "unreachable", f"invalid URL: {_reason(exc)}")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            result = PreflightResult(False, "unreachable", f"cannot fetch: {type(exc).__name__}")
        if len(self._cache) >= self.settings.cache_size:
            self._cache.pop(next(iter(self._cache)))
        self._cache[key] = (now + self.settings.cache_ttl, result)
        return result

    async def _check(self, url: str, limits: ImageConstraints) -> PreflightResult:
        head, final = await self._fetch("HEAD", url)
        size: int | None = None
        if 200 <= head.status < 300:
            _check_type(head.headers)
            size = _int(head.headers.get("Content-Length"))
            if size is not None and size >= limits.max_bytes_exclusive:
                raise _Refused("too_large", f"{size} bytes, limit {limits.max_bytes_exclusive}")
        elif head.status in (404, 410):
            raise _Refused("status", f"HTTP {head.status}")
        got, _ = await self._fetch("GET", final, ranged=True)
        if got.status not in (200, 206):
            raise _Refused("status", f"HTTP {got.status}")
        _check_type(got.headers)
        if got.status == 206:
            total = got.headers.get("Content-Range", "").rpartition("/")[2]
            size = _int(total) if total != "*" else size
        else:
            size = _int(got.headers.get("Content-Length")) or size
        warnings: tuple[str, ...] = ()
        try:
            info = read_info(got.body)
        except Truncated:
            info = ImageInfo(sniff(got.body))
            warnings = (f"{url}: dimensions not in the first {len(got.body)} bytes",)
        except CorruptImage as exc:
            raise _Refused("wrong_type", f"unreadable image header: {exc}") from exc
        issues = check_image(info, size, limits)
        if issues:
            raise _Refused(_ISSUE_TO_REASON[issues[0].reason], issues[0].problem)
        return PreflightResult(True, None, "", info, size, warnings)

    async def _fetch(self, method: str, url: str, *, ranged: bool = False) -> tuple[_Fetched, str]:
        headers = {"Range": f"bytes=0-{self.settings.head_bytes - 1}"} if ranged else {}
        for _ in range(self.settings.max_redirects + 1):
            target = await self._vet(url)
            async with self._client().request(
                method, target, headers=headers, allow_redirects=False
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in (301, 302, 303, 307, 308) and location:
                    url = str(URL(url).join(URL(location)))
                    continue
                body = await read_capped(resp, self.settings.head_bytes) if method == "GET" else b""
                return _Fetched(resp.status, resp.headers, body), url
        raise _Refused("status", f"more than {self.settings.max_redirects} redirects")

    async def _vet(self, url: str) -> URL:
        try:
            parsed = parse_image_url(url)
        except ValueError as exc:
            raise _Refused("unreachable", f"unusable URL: it {exc}") from exc
        assert parsed.raw_host is not None  # parse_image_url refuses a URL without a host
        addresses = await self.guard.resolve(parsed.raw_host)
        if parse_host(parsed.raw_host) is not None:  # any literal form: connect to the checked IP
            parsed = parsed.with_host(str(addresses[0]))
        return parsed


def _check_type(headers: CIMultiDictProxy[str]) -> None:
    ctype = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if not ctype.startswith("image/") and ctype not in _BINARY_TYPES:
        raise _Refused("wrong_type", f"content type {ctype[:60]!r} is not an image")


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.strip().isdigit() else None


async def read_capped(resp: aiohttp.ClientResponse, cap: int) -> bytes:
    """At most ``cap`` bytes of ``resp``'s body: a peer that sends more is not read further."""
    chunks: list[bytes] = []
    total = 0
    while total < cap:
        chunk = await resp.content.read(cap - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
