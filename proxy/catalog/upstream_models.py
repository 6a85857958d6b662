"""The upstream's model list (``GET /api/v1/models``), cached in memory: part of the catalog.

Every slug the upstream lists is submittable under the ``strict`` policy (an exact slug
is a pin by definition); aliases still map only to the slugs the operator chose. Models
without a local spec are checked for what can be known (``proxy.catalog.listed``).

Where the list comes from:

- each configured account has its own list, fetched with its key
  (``proxy.catalog.model_lists``); the shared one (``upstream.api_key``'s, else the first
  of ``upstream.accounts``'), which pass-through callers use too, is fetched by the
  ``model-list`` component (``keep_fresh``, in ``proxy.background``'s roster) at start and
  every ``models.upstream_list.refresh_seconds`` (unless ``fetch_at_start`` is off: then
  on first need, with that key); every other account's on first need, again once stale;
- otherwise on first need with the caller's own key (``ensure``), again once stale;
- every ``GET /api/v1/models`` answered through the proxy refreshes it too.

A failed fetch keeps the last good list and is not retried for ``retry_seconds``, so
unknown slugs cannot turn into a storm of list requests. The list is cut at
``max_models`` entries: its slugs become metric label values, which must stay bounded.
"""

from __future__ import annotations

import asyncio
import json
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import structlog

from proxy.catalog.list_prices import ListPrice, parse_list_price, prices_digest
from proxy.config import UpstreamListSettings
from proxy.upstream.client import TransportFailure, Upstream

log = structlog.get_logger("proxy.catalog.upstream_models")

MODELS_PATH = "/api/v1/models"
MAX_SLUG_CHARS = 256  # the official CLI's bound on a model slug

Fetch = Callable[[str], Awaitable[Any]]
"""Fetch the list document with one ``Authorization`` value; raises ``ListUnavailable``."""


class ListUnavailable(Exception):
    """The upstream's model list could not be fetched or did not have the documented shape."""


def valid_slug(slug: object) -> bool:
    """The official CLI's slug rules: ``provider/model``, two non-empty segments, no controls."""
    if not isinstance(slug, str) or not 0 < len(slug) <= MAX_SLUG_CHARS or slug != slug.strip():
        return False
    parts = slug.split("/")
    if len(parts) != 2 or not all(parts):
        return False
    return not any(unicodedata.category(ch) in ("Cc", "Cf") for ch in slug)


def parse_models(document: Any, limit: int) -> list[dict[str, Any]]:
    """The items of a list document (top-level ``models`` array), invalid items skipped.

    Raises ``ListUnavailable`` when the document does not have that shape at all.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("models"), list):
        raise ListUnavailable("the model list has no top-level 'models' array")
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in document["models"]:
        if not isinstance(item, Mapping) or not valid_slug(item.get("slug")):
            continue
        slug = str(item["slug"])
        if slug in seen:
            continue
        seen.add(slug)
        items.append(dict(item))
        if len(items) >= limit:
            log.warning("upstream_models.list_cut", limit=limit)
            break
    return items


class UpstreamModels:
    """The last good model list of the upstream, by exact slug."""

    def __init__(
        self,
        settings: UpstreamListSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or UpstreamListSettings()
        self._clock = clock
        self._items: dict[str, dict[str, Any]] = {}
        self._prices: dict[str, ListPrice] = {}
        self._digest: str | None = None
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._fetch: Fetch | None = None
        self._fallback: str | None = None
        self._lock: asyncio.Lock | None = None
        self.loaded = asyncio.Event()  # set once a list has been fetched

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def known(self) -> bool:
        """Whether a list was ever fetched."""
        return self._fetched_at is not None

    def __contains__(self, slug: object) -> bool:
        return slug in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def item(self, slug: str) -> dict[str, Any] | None:
        """The upstream's own entry for ``slug`` (a copy), as it listed it."""
        found = self._items.get(slug)
        return dict(found) if found is not None else None

    def price(self, slug: str) -> ListPrice | None:
        """The display price the list gives ``slug``, when it gives one the proxy can use."""
        return self._prices.get(slug)

    @property
    def prices_version(self) -> str | None:
        """A digest of every price in the current list (``None`` before the first fetch)."""
        return self._digest

    def slugs(self) -> list[str]:
        return sorted(self._items)

    def fresh(self) -> bool:
        at = self._fetched_at
        return at is not None and self._clock() - at < self.settings.refresh_seconds

    def sibling(self) -> UpstreamModels:
        """An empty list with the same settings and clock (another account's list)."""
        return UpstreamModels(self.settings, clock=self._clock)

    def connect(self, fetch: Fetch, fallback_authorization: str | None = None) -> None:
        """Where lists come from: ``fetch``, with the watcher key when one is configured."""
        self._fetch = fetch
        self._fallback = fallback_authorization

    @property
    def has_own_key(self) -> bool:
        """Whether this list is fetched with a configured key (an account's, the watcher's)."""
        return self._fallback is not None

    def update(self, document: Any) -> None:
        """Replace the list with a fetched document; raises ``ListUnavailable`` for a bad shape."""
        items = parse_models(document, self.settings.max_models)
        self._items = {item["slug"]: item for item in items}
        self._prices = {
            slug: price
            for slug, price in ((s, parse_list_price(i)) for s, i in self._items.items())
            if price is not None
        }
        self._digest = prices_digest(items)
        self._fetched_at = self._clock()
        self._failed_at = None
        self.loaded.set()

    async def ensure(self, authorization: str | None) -> bool:
        """Fetch the list if it is missing or stale (one fetch at a time); whether it is known.

        Uses the watcher key when one is configured, else ``authorization`` (the caller's).
        Never raises: a failure keeps the last good list and is logged.
        """
        if not self.enabled or self.fresh():
            return self.known
        credential = self._fallback or authorization
        if self._fetch is None or credential is None or self._backing_off():
            return self.known
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.fresh() or self._backing_off():  # another request fetched it meanwhile
                return self.known
            await self.refresh(credential)
        return self.known

    async def refresh(self, authorization: str) -> None:
        """Fetch now; on failure keep the last good list and back off."""
        if self._fetch is None:
            return
        try:
            self.update(await self._fetch(authorization))
        except ListUnavailable as failed:
            self._failed_at = self._clock()
            log.warning("upstream_models.fetch_failed", detail=str(failed), kept=len(self._items))
            return
        log.info("upstream_models.fetched", models=len(self._items))

    def _backing_off(self) -> bool:
        at = self._failed_at
        return at is not None and self._clock() - at < self.settings.retry_seconds


def upstream_fetch(upstream: Upstream) -> Fetch:
    """A ``Fetch`` that asks the upstream with one attempt (a GET: the next need retries)."""

    async def fetch(authorization: str) -> Any:
        headers = {"Authorization": authorization, "Accept": "application/json"}
        try:
            reply = await upstream.fetch("GET", MODELS_PATH, headers, None, "models")
        except TransportFailure as failure:
            raise ListUnavailable(failure.detail) from failure
        if reply.status != 200:
            raise ListUnavailable(f"the upstream answered {reply.status}")
        try:
            return json.loads(reply.body)
        except ValueError as exc:
            raise ListUnavailable("the model list is not JSON") from exc

    return fetch


async def keep_fresh(listing: UpstreamModels, authorization: str) -> None:
    """Refetch the list whenever it goes stale (sooner after a failure), until cancelled."""
    while True:
        await listing.refresh(authorization)
        wait = (
            listing.settings.refresh_seconds if listing.fresh() else listing.settings.retry_seconds
        )
        await asyncio.sleep(max(wait, 1.0))
