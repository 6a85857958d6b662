"""The submit pipeline, every step in order: ``build_pipeline`` is the one place the order lives.

1. request id / correlation     (proxy.middleware, outermost)
2. identify the caller          (stages.identify: virtual key or key fingerprint),
                                 before a byte of the body is read
   -- the body is read here, under the size and separator caps (stages.body) --
3. pin the model                (stages.pin)
4. fingerprint the input        (stages.fingerprint: bounded parse, canonical hash)
5. idempotency                  (stages.idempotency: takes the key's claim; a replay needs no
                                 further work, and never depends on the network, so it comes
                                 before validation)
6. validate the input           (stages.validate: the published schema, the catalog's
                                 cross-field rules, media, SSRF guard)
7. price                        (stages.price)
8. completion webhook URL       (stages.callback: header or per-key default, SSRF guard)
9. budget                       (stages.budget: takes the reservation and the per-key slot)
10. admit                       (stages.admit: the write-ahead intent, durable before anything
                                 leaves; or, with the admission queue, beyond the team's upstream
                                 concurrency, a queue row and the queued answer)
11. send                        (stages.send: the upstream submit, with the retry buckets)
12. record                      (stages.record: the outcome read once (upstream.outcome), the
                                 job recorded before the client hears of it, the answer)

The holds steps 5, 9 and 10 take end in one place, ``SubmitLedger.holding``, which the
handler (``handlers.submit``) wraps around the whole walk.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from proxy.admission.desk import AdmissionDesk
from proxy.catalog.loader import Catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.netguard import HostGuard
from proxy.catalog.pinning import Pinner
from proxy.catalog.schema_registry import SchemaRegistry
from proxy.catalog.validation import BodyValidator
from proxy.config import Settings
from proxy.governance.budgets import BudgetBook
from proxy.governance.keys import KeyRing
from proxy.jobs.ledger import SubmitLedger
from proxy.jobs.price_resolver import PriceResolver
from proxy.stages.admit import AdmitStage
from proxy.stages.base import Stage
from proxy.stages.body import BodyLimits
from proxy.stages.budget import BudgetStage, BudgetStageStore
from proxy.stages.callback import CallbackStage
from proxy.stages.fingerprint import FingerprintStage
from proxy.stages.idempotency import IdempotencyStage
from proxy.stages.identify import IdentifyStage
from proxy.stages.pin import PinStage
from proxy.stages.price import PriceStage
from proxy.stages.record import RecordStage
from proxy.stages.send import SendStage
from proxy.stages.validate import ValidateStage
from proxy.stores.base import IdempotencyStore, WebhookStore
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from proxy.upstream.retry import RetryPolicy


class PipelineStore(IdempotencyStore, WebhookStore, BudgetStageStore, Protocol):
    """What the stages themselves read and write: idempotency claims, callers' default
    callback URLs, budget reservations (the tail writes through the ``SubmitLedger``)."""


@dataclass(frozen=True, slots=True)
class Tail:
    """What the submit's tail needs: the ledger, the upstream and its submit policy, the
    admission desk (a getter: the roster starts the queue after the pipeline is built)."""

    ledger: SubmitLedger
    upstream: Upstream
    policy: RetryPolicy
    admission: Callable[[], AdmissionDesk | None]
    rng: random.Random


@dataclass(frozen=True, slots=True)
class Pipeline:
    """The stages that run before the body is read, the body's limits, the stages after."""

    before_body: tuple[Stage, ...] = ()
    after_body: tuple[Stage, ...] = ()
    limits: BodyLimits = field(default_factory=BodyLimits)

    def __iter__(self) -> Iterator[Stage]:
        yield from self.before_body
        yield from self.after_body

    @property
    def names(self) -> tuple[str, ...]:
        """Stage names in running order, ``read_body`` marking where the body is read."""
        return (
            *(s.name for s in self.before_body),
            "read_body",
            *(s.name for s in self.after_body),
        )

    def replacing(self, stage: Stage) -> Pipeline:
        """The same pipeline with the stage of ``stage``'s name swapped for it (tests)."""

        def swap(stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
            return tuple(stage if s.name == stage.name else s for s in stages)

        return Pipeline(swap(self.before_body), swap(self.after_body), self.limits)


def body_limits(settings: Settings) -> BodyLimits:
    limits = settings.limits
    return BodyLimits(
        max_bytes=min(limits.submit_body_bytes, settings.max_body_bytes),
        max_separators=limits.json_max_separators,
        max_depth=limits.json_max_depth,
        max_items=limits.json_max_items,
        max_key_chars=limits.json_max_key_chars,
        off_loop_bytes=limits.off_loop_bytes,
    )


def build_pipeline(
    settings: Settings,
    *,
    catalog: Catalog,
    pinner: Pinner,
    store: PipelineStore,
    keyring: KeyRing | None,
    budgets: BudgetBook,
    media: MediaChecker,
    metrics: Metrics,
    tail: Tail,
    clock: Callable[[], float] = time.time,
    owner: str | None = None,
    prices: PriceResolver | None = None,
    schemas: SchemaRegistry | None = None,
) -> Pipeline:
    """The submit pipeline for ``settings``: who asks first, then what they sent, then
    the send and its one recorded outcome."""
    limits = body_limits(settings)
    validator = BodyValidator(catalog, unknown_fields=settings.models.unknown_fields)
    if prices is None:
        prices = PriceResolver(settings.pricing, catalog, pinner.lists)
    return Pipeline(
        before_body=(IdentifyStage(settings.identity, keyring),),
        after_body=(
            PinStage(pinner),
            FingerprintStage(limits),
            IdempotencyStage(store, settings.idempotency, metrics, clock, owner=owner),
            ValidateStage(catalog, validator, media, limits, schemas=schemas, metrics=metrics),
            PriceStage(prices),
            CallbackStage(settings.webhooks, store, HostGuard(settings.webhooks.allow_hosts)),
            BudgetStage(store, budgets, metrics, clock, owner=owner),
            AdmitStage(tail.ledger, tail.admission),
            SendStage(tail.upstream, tail.policy, tail.admission, metrics, tail.rng),
            RecordStage(tail.ledger, tail.admission),
        ),
        limits=limits,
    )
