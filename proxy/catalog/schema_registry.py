"""The pinned published schema of every model, kept in the store and in memory.

A model's schema is fetched from the schema origin (``proxy.catalog.schema_fetch``) and
recorded in the store with its content hash (``proxy.stores._schemas``). The first version
seen is pinned. When the origin later serves another version, the change is recorded
(``schema.changed`` log line, ``modellix_proxy_schema_changes_total``) and then:

- policy ``hold`` (the default): validation keeps the pinned version, and
  ``modellix_proxy_schema_change_waiting{model}`` reads 1, until an operator accepts the new
  one (``POST /admin/schemas/{slug}/accept``, ``modellix-proxy schemas accept``);
- policy ``follow``: the new version is pinned at once.

Every replica reads the pins from the store every ``sync_seconds`` (``sync``), so an
acceptance made on one replica, or with the CLI, reaches all of them. When a model has no
pin yet, ``ensure`` fetches it once on first need (one fetch per model at a time; after a
failure not again for ``retry_seconds``). While the origin cannot be reached the proxy
validates as it would without schemas: nothing extra is refused, and it says so
(``modellix_proxy_schema_origin_up`` 0, ``schema.origin_unreachable``, ``/readyz`` details).

``schema_defaults(slug)`` gives a model's published defaults (for pricing a body that
leaves ``duration`` out, for example).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from proxy.catalog.loader import Catalog
from proxy.catalog.schema_doc import SchemaDoc, SchemaInvalid
from proxy.catalog.schema_fetch import FetchedSchema, SchemaFetcher, SchemaUnavailable
from proxy.catalog.spec import ModelSpec
from proxy.config import UpstreamSchemaSettings
from proxy.jobs.labels import Labels
from proxy.stores.base import SchemaStore, StoreError
from proxy.stores.schema_records import SchemaPin
from proxy.telemetry.metrics import Metrics

log = structlog.get_logger("proxy.catalog.schemas")
ENSURE_WAIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class PinnedSchema:
    """The version of a model's schema that validation uses."""

    slug: str
    hash: str
    doc: SchemaDoc
    document: dict[str, Any]


def disagreements(spec: ModelSpec, doc: SchemaDoc) -> list[dict[str, Any]]:
    """Where the catalog's spec of a model and its published schema differ, field by field."""
    props = spec.json_schema.get("properties", {})
    props = props if isinstance(props, Mapping) else {}
    out: list[dict[str, Any]] = []
    for name in sorted(set(props) | doc.properties):
        ours = props.get(name)
        theirs = doc.fields.get(name)
        if theirs is None:
            out.append({"field": name, "issue": "not in the published schema"})
            continue
        if not isinstance(ours, Mapping):
            out.append({"field": name, "issue": "not in the catalog spec (it would refuse it)"})
            continue
        kind = ours.get("type")
        types = tuple(kind) if isinstance(kind, list) else ((kind,) if kind else ())
        if types and theirs.types and set(types) != set(theirs.types):
            out.append({"field": name, "issue": "type", "catalog": list(types),
                        "published": list(theirs.types)})  # fmt: skip
        enum = ours.get("enum")
        if isinstance(enum, list) and theirs.enum is not None and _set(enum) != _set(theirs.enum):
            out.append({"field": name, "issue": "enum", "catalog": enum,
                        "published": list(theirs.enum)})  # fmt: skip
        for bound, published in (("minimum", theirs.minimum), ("maximum", theirs.maximum)):
            mine = ours.get(bound)
            if mine is not None and published is not None and mine != published:
                out.append({"field": name, "issue": bound, "catalog": mine,
                            "published": published})  # fmt: skip
    return out


def _set(values: Iterable[Any]) -> set[str]:
    return {json.dumps(v, sort_keys=True) for v in values}


class SchemaRegistry:
    """Pins by slug (from the store), their parsed documents, the origin's last state."""

    def __init__(
        self,
        settings: UpstreamSchemaSettings,
        catalog: Catalog,
        metrics: Metrics,
        labels: Labels,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._catalog = catalog
        self._metrics = metrics
        self._labels = labels
        self._clock = clock
        self._monotonic = monotonic
        self._store: SchemaStore | None = None
        self._fetcher: SchemaFetcher | None = None
        self._pins: dict[str, SchemaPin] = {}
        self._pinned: dict[str, PinnedSchema] = {}
        self._failed: dict[str, float] = {}  # slug -> monotonic time of its last failed fetch
        self._origin_failed_at: float | None = None
        self._inflight: dict[str, asyncio.Future[PinnedSchema | None]] = {}
        self.origin_up: bool | None = None  # None: never asked
        self.last_error: str | None = None
        self.last_fetch_at: float | None = None
        self.disagreements: dict[str, list[dict[str, Any]]] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    @property
    def attached(self) -> bool:
        return self._store is not None

    def attach(self, store: SchemaStore, fetcher: SchemaFetcher | None) -> None:
        self._store = store
        self._fetcher = fetcher

    # --- reading ---------------------------------------------------------------------

    def get(self, slug: str) -> PinnedSchema | None:
        """The pinned schema of ``slug``, if one is known."""
        return self._pinned.get(slug)

    def pin(self, slug: str) -> SchemaPin | None:
        return self._pins.get(slug)

    def pins(self) -> list[SchemaPin]:
        return [self._pins[s] for s in sorted(self._pins)]

    def schema_defaults(self, slug: str) -> dict[str, Any]:
        """The published defaults of ``slug``'s pinned schema (``{}`` when none is known)."""
        pinned = self._pinned.get(slug)
        return pinned.doc.defaults() if pinned is not None else {}

    def health(self) -> dict[str, Any]:
        """What ``/readyz`` and the admin API say about schemas (never makes a replica unready)."""
        if not self.enabled:
            return {"enabled": False}
        waiting = sorted(s for s, p in self._pins.items() if p.waiting)
        if self.origin_up is None:
            state = "not fetched yet"
        elif self.origin_up:
            state = "up"
        else:
            state = "unreachable: validating without published schemas where none is pinned"
        return {
            "enabled": True,
            "origin": self.settings.origin,
            "policy": self.settings.policy,
            "origin_state": state,
            "last_error": self.last_error,
            "pinned": len(self._pinned),
            "changes_waiting": waiting,
        }

    def backing_off(self, slug: str) -> bool:
        now = self._monotonic()
        wait = self.settings.retry_seconds
        at = self._failed.get(slug)
        origin = self._origin_failed_at
        return (at is not None and now - at < wait) or (origin is not None and now - origin < wait)

    # --- the store -------------------------------------------------------------------

    async def sync(self) -> None:
        """Read every pin from the store; load the documents of pins that moved."""
        if self._store is None:
            return
        try:
            pins = await self._store.schema_pins()
        except StoreError as exc:
            log.warning("schema.sync_failed", error=str(exc)[:200])
            return
        for pin in pins:
            await self._adopt(pin)

    async def _adopt(self, pin: SchemaPin, fetched: FetchedSchema | None = None) -> None:
        """Take ``pin`` as the model's state; parse its pinned document if it moved."""
        self._pins[pin.slug] = pin
        self._metrics.schema_change_waiting.labels(self._labels.model(pin.slug)).set(
            1 if pin.waiting else 0
        )
        current = self._pinned.get(pin.slug)
        if current is not None and current.hash == pin.pinned_hash:
            return
        if fetched is not None and fetched.hash == pin.pinned_hash:
            document: Any = fetched.document
        else:
            assert self._store is not None
            text = await self._store.schema_document(pin.slug, pin.pinned_hash)
            if text is None:
                return
            document = json.loads(text)
        try:
            doc = SchemaDoc.parse(document)
        except SchemaInvalid as exc:  # recorded before the parser changed: keep what we had
            log.warning("schema.unusable", model=pin.slug, hash=pin.pinned_hash, error=str(exc))
            return
        self._pinned[pin.slug] = PinnedSchema(pin.slug, pin.pinned_hash, doc, document)
        self._compare(pin.slug, doc)

    def _compare(self, slug: str, doc: SchemaDoc) -> None:
        spec = self._catalog.get(slug)
        found = disagreements(spec, doc) if spec is not None else []
        self.disagreements[slug] = found
        if spec is not None:
            self._metrics.schema_catalog_disagreements.labels(self._labels.model(slug)).set(
                len(found)
            )
        if found:
            log.warning("schema.catalog_disagrees", model=slug, fields=found[:20], count=len(found))

    # --- fetching --------------------------------------------------------------------

    async def refresh(self, slug: str) -> str:
        """Fetch ``slug`` now and record it; the outcome (a ``schema_fetches_total`` label)."""
        if self._fetcher is None or self._store is None:
            return "off"
        try:
            fetched = await self._fetcher.fetch(slug)
            SchemaDoc.parse(fetched.document)  # refuse to record what cannot be used
        except SchemaUnavailable as exc:
            return self._failed_fetch(slug, exc.kind, exc.detail)
        except SchemaInvalid as exc:
            return self._failed_fetch(slug, "invalid", str(exc))
        self._origin_up(True)
        self._failed.pop(slug, None)
        before = self._pins.get(slug)
        follow = self.settings.policy == "follow"
        try:
            pin = await self._store.record_schema(
                slug, fetched.hash, fetched.text, self._clock(), follow=follow
            )
        except StoreError as exc:
            log.warning("schema.record_failed", model=slug, error=str(exc)[:200])
            return "store_error"
        outcome = "new" if before is None else "same"
        if before is not None and pin.latest_hash != before.latest_hash:
            outcome = "changed"
            self._metrics.schema_changes.labels(self._labels.model(slug)).inc()
            log.warning(
                "schema.changed",
                model=slug,
                pinned=pin.pinned_hash[:12],
                published=pin.latest_hash[:12],
                policy=self.settings.policy,
                applied=pin.pinned_hash == pin.latest_hash,
            )
        elif before is None:
            log.info("schema.pinned", model=slug, hash=pin.pinned_hash[:12])
        self._metrics.schema_fetches.labels(outcome).inc()
        await self._adopt(pin, fetched)
        return outcome

    def _failed_fetch(self, slug: str, kind: str, detail: str) -> str:
        self._metrics.schema_fetches.labels(kind).inc()
        self._failed[slug] = self._monotonic()
        if kind == "unreachable":
            self._origin_failed_at = self._monotonic()
            self._origin_up(False, detail)
        else:
            self._origin_up(True)
            log.warning("schema.fetch_failed", model=slug, reason=kind, detail=detail[:200])
        return kind

    def _origin_up(self, up: bool, detail: str | None = None) -> None:
        if up:
            self._origin_failed_at = None
            if self.origin_up is False:
                log.info("schema.origin_back", origin=self.settings.origin)
        elif self.origin_up is not False:
            log.warning(
                "schema.origin_unreachable",
                origin=self.settings.origin,
                detail=(detail or "")[:200],
                effect="models without a pinned schema are validated as without schemas",
            )
        self.origin_up = up
        self.last_error = None if up else detail
        self.last_fetch_at = self._clock()
        self._metrics.schema_origin_up.set(1 if up else 0)

    async def refresh_many(self, slugs: Iterable[str]) -> bool:
        """Fetch ``slugs`` a few at a time; stops early (False) once the origin is unreachable."""
        pending = list(slugs)
        width = self.settings.concurrency
        while pending:
            batch, pending = pending[:width], pending[width:]
            outcomes = await asyncio.gather(*(self.refresh(s) for s in batch))
            if "unreachable" in outcomes:
                return False
        return True

    async def ensure(self, slug: str) -> PinnedSchema | None:
        """The pinned schema of ``slug``, fetched now if none is known (one fetch at a time).

        Waits ``ENSURE_WAIT_SECONDS`` at most: past that the body is validated as without a
        schema, and the fetch, still running, pins it for the next request.
        """
        pinned = self._pinned.get(slug)
        if pinned is not None or not self.enabled or self._fetcher is None:
            return pinned
        if self.backing_off(slug):
            return None
        running = self._inflight.get(slug)
        if running is None:
            running = asyncio.ensure_future(self._fetch_once(slug))
            self._inflight[slug] = running
            running.add_done_callback(lambda _f: self._inflight.pop(slug, None))
        try:  # a slow origin delays a submit this long at most; the fetch goes on meanwhile
            return await asyncio.wait_for(asyncio.shield(running), ENSURE_WAIT_SECONDS)
        except TimeoutError:
            return None

    async def _fetch_once(self, slug: str) -> PinnedSchema | None:
        await self.refresh(slug)
        return self._pinned.get(slug)

    async def accepted(self, pin: SchemaPin, previous: SchemaPin | None) -> None:
        """Take ``pin``, an acceptance the store has committed, as the model's state on this
        replica. Called only after the commit (``proxy.admin_schemas``): if the acceptance's
        transaction fails (its audit row refused), this replica keeps validating with the
        version that is still pinned in the store."""
        log.info(
            "schema.accepted",
            model=pin.slug,
            pinned=pin.pinned_hash[:12],
            previous=previous.pinned_hash[:12] if previous is not None else None,
        )
        await self._adopt(pin)

    async def close(self) -> None:
        if self._fetcher is not None:
            await self._fetcher.close()
