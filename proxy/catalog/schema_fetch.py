"""Fetch one model's published request schema from the configured schema origin, and only there.

``GET {origin}/models/{provider}/{model_id}/api_schema``, no key (the upstream publishes it
openly). The request goes to the configured origin and nowhere else: redirects are not
followed, the answer is read under a byte cap and a time limit, and a host name is resolved
through the SSRF guard used for images (``proxy.catalog.netguard``): its addresses must be
public unless the operator allowed the host (``models.upstream_schemas.allow_hosts``). An
origin given as an IP literal is the operator's own choice and is connected to as written.

A fetched document is identified by the SHA-256 of its canonical JSON (sorted keys, no
spaces), so the same schema served with other whitespace or key order has the same hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp
from yarl import URL

from proxy.catalog.netguard import GuardError, HostGuard, parse_host
from proxy.catalog.preflight import GuardedResolver, read_capped
from proxy.config import UpstreamSchemaSettings

SCHEMA_PATH = "/models/{provider}/{model}/api_schema"
FailureKind = Literal["unreachable", "not_found", "invalid"]
USER_AGENT = "modellix-proxy-schemas/1"


class SchemaUnavailable(Exception):
    """The schema could not be fetched (``unreachable``), the origin does not know the model
    (``not_found``), or the answer is not a schema document (``invalid``)."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(detail)
        self.kind: FailureKind = kind
        self.detail = detail


@dataclass(frozen=True, slots=True)
class FetchedSchema:
    slug: str
    document: dict[str, Any]
    text: str  # the canonical JSON of ``document``: what the store keeps
    hash: str  # SHA-256 of ``text``, hex


def canonical(document: Any) -> str:
    """The canonical JSON text of a document: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def schema_url(origin: str, slug: str) -> str:
    """``{origin}/models/{provider}/{model}/api_schema`` with each segment percent-encoded."""
    provider, _, model = slug.partition("/")
    path = SCHEMA_PATH.format(provider=quote(provider, safe=""), model=quote(model, safe=""))
    return origin.rstrip("/") + path


class SchemaFetcher:
    """One aiohttp session to the schema origin, with the guard in its resolver."""

    def __init__(self, settings: UpstreamSchemaSettings) -> None:
        self.settings = settings
        self.origin = URL(settings.origin)
        host = self.origin.raw_host or ""
        literal = parse_host(host) is not None
        # A literal origin is what the operator wrote; a name must resolve to allowed addresses.
        self.guard = HostGuard((*settings.allow_hosts, host) if literal else settings.allow_hosts)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            s = self.settings
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(self.guard), use_dns_cache=False, limit=s.concurrency
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=s.timeout_seconds),
                trust_env=False,  # never through an environment proxy
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, slug: str) -> FetchedSchema:
        """The published document of ``slug``; raises ``SchemaUnavailable``."""
        url = schema_url(self.settings.origin, slug)
        try:
            await self.guard.resolve(self.origin.raw_host or "")  # a clear refusal; the
            # connector's resolver checks the addresses it connects to again
            async with self._client().get(URL(url, encoded=True), allow_redirects=False) as resp:
                if resp.status == 404:
                    raise SchemaUnavailable("not_found", f"the schema origin does not know {slug}")
                if resp.status != 200:
                    raise SchemaUnavailable(
                        "unreachable", f"the schema origin answered {resp.status}"
                    )
                declared = resp.content_length
                if declared is not None and declared > self.settings.max_bytes:
                    raise SchemaUnavailable(
                        "invalid", f"the schema is over {self.settings.max_bytes} bytes"
                    )
                body = await read_capped(resp, self.settings.max_bytes + 1)
        except GuardError as exc:
            raise SchemaUnavailable("unreachable", exc.detail) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SchemaUnavailable("unreachable", f"cannot fetch: {type(exc).__name__}") from exc
        if len(body) > self.settings.max_bytes:
            raise SchemaUnavailable(
                "invalid", f"the schema is over {self.settings.max_bytes} bytes"
            )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise SchemaUnavailable("invalid", "the schema is not JSON") from exc
        if not isinstance(document, dict):
            raise SchemaUnavailable("invalid", "the schema is not a JSON object")
        text = canonical(document)
        return FetchedSchema(slug, document, text, content_hash(text))
