"""What the stages of the pipeline learn about one request.

A ``RequestContext`` is created by the outermost middleware and handed to
every stage in order; stages fill in its fields and never touch private
attributes of aiohttp objects.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import CIMultiDictProxy

from proxy.stores.records import Intent
from proxy.telemetry.scope import LeanTrace
from proxy.upstream.attempts import Outcome


class RouteKind(enum.StrEnum):
    SUBMIT = "submit"
    POLL = "poll"
    PASSTHROUGH = "passthrough"  # an allow-listed non-paid upstream route
    KEY_API = "key_api"  # GET /api/v1/apikey/validate and /api/v1/team/balance
    REFUSED = "refused"  # under /api/v1/ but not a route the proxy forwards
    OWN = "own"


class PathForm(enum.StrEnum):
    """The three submit path forms the upstream has published."""

    PLAIN = "plain"  # /api/v1/{provider}/{model}
    ASYNC = "async"  # /api/v1/{provider}/{model}/async
    TYPED = "typed"  # /api/v1/{type}/{provider}/{model}/async


@dataclass(slots=True)
class Caller:
    """Who sent the request: never the key itself, only what identifies it."""

    identity: str  # "fp:<fingerprint>" in pass-through mode, "vk:<id>" for virtual keys
    team: str | None = None
    project: str | None = None
    virtual_key_id: str | None = None
    allowed_models: frozenset[str] | None = None
    max_concurrent_jobs: int | None = None
    account: str | None = None  # the Modellix account billed (None: the caller's own key)


@dataclass(frozen=True, slots=True)
class Forward:
    """How a submit goes upstream, from the client's request: the query string kept,
    the headers it is sent with (before the caller's credential is set), and the public
    origin the answer's ``get_result`` URL is rewritten to."""

    query: str
    headers: CIMultiDictProxy[str]
    origin: str


@dataclass(slots=True)
class RequestContext:
    request_id: str  # the client's X-Request-Id (or one made up): for logs, never a database key
    correlation_id: str
    route: RouteKind
    started_monotonic: float
    received_at: float  # wall clock, seconds since the epoch
    headers: Mapping[str, str] = field(default_factory=dict)  # the client's request headers
    # see ``internal_id``: minted on first use (a poll never needs one)
    minted_id: str | None = None
    # submit routes
    path_form: PathForm | None = None
    task_type: str | None = None  # the {type} segment of the typed path form
    requested_slug: str | None = None
    alias: str | None = None
    pinned_slug: str | None = None
    pin_policy_outcome: str | None = None  # "pinned" | "direct" | "permissive"
    body: bytes = b""
    payload: dict[str, Any] | None = None
    input_hash: str | None = None
    warnings: list[str] = field(default_factory=list)
    # identity
    caller: Caller | None = None
    upstream_authorization: str | None = None
    # money
    price_table_version: str | None = None
    estimated_cost_micros: int | None = None  # reserved and shown: the top of the range
    price_source: str | None = None  # "operator" | "upstream_list" | "unpriced"
    estimate_low_micros: int | None = None
    estimate_high_micros: int | None = None
    estimate_bounded: bool = False  # the range rests on pricing.input_bound_seconds
    # idempotency
    idempotency_key: str | None = None
    # budgets: reservations held for this submit until it becomes a job (or is released)
    reservation_id: str | None = None
    slot_reservation_id: str | None = None  # the per-key concurrency slot
    # the write-ahead intent, from just before the upstream send until its outcome is recorded
    intent: Intent | None = None
    budget_headers: dict[str, str] = field(default_factory=dict)
    # upstream
    upstream_seconds: float = 0.0
    upstream_attempts: int = 0
    forward: Forward | None = None
    outcome: Outcome | None = None  # the upstream send's (stages.send), read by stages.record
    task_id: str | None = None
    # tracing: what a job records at submit; the request's sampled-out span (nothing exports)
    traceparent: str | None = None
    trace: LeanTrace | None = None
    # completion webhook target (stages.callback), recorded on the job
    callback_url: str | None = None
    # the answer, once a stage has one: a replay, a queued answer, the upstream's
    answer: web.StreamResponse | None = None
    # the API door: "modellix" (/api/v1/...) or "openai" (/v1/videos, proxy.openai_videos),
    # the id that door shows for the job and the client's request in its terms (JSON)
    api: str = "modellix"
    api_ref: str | None = None
    api_request: str | None = None

    @property
    def internal_id(self) -> str:
        """Minted by the proxy for this request: the key of its intent, reservations, slots."""
        if self.minted_id is None:
            self.minted_id = uuid.uuid4().hex
        return self.minted_id

    @property
    def model_label(self) -> str | None:
        return self.pinned_slug or self.requested_slug
