"""Typed records the stores read and write.

Conventions shared by every backend:

* **time** is float epoch seconds (UTC), always passed in by the caller (``now``,
  ``at``); a store never reads the clock.
* **money** is integer micro-dollars (``1 USD == 1_000_000``); ``None`` means unpriced.
* records are frozen: a store returns a fresh record after every change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Literal


class JobStatus(StrEnum):
    """Lifecycle status of a job; ``unknown`` and ``expired`` are the proxy's own."""

    UNKNOWN = "unknown"
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILED = "failed"
    EXPIRED = "expired"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({JobStatus.SUCCESS, JobStatus.FAILED, JobStatus.EXPIRED})

Source = Literal["submit", "client", "watcher", "expiry"]
"""Who produced a status: the submit pipeline, a client poll, the watcher, expiry."""


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One entry of a job's append-only history: a raw status string, when, from whom."""

    status: str
    at: float
    source: Source


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    """What the submit pipeline knows when it records an accepted job."""

    task_id: str
    caller: str
    pinned_slug: str
    submitted_at: float
    team: str | None = None
    project: str | None = None
    alias: str | None = None
    input_hash: str | None = None
    correlation_id: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    price_table_version: str | None = None
    estimated_cost_micros: int | None = None
    price_source: str | None = None  # "operator" | "upstream_list" | "unpriced"
    estimate_low_micros: int | None = None
    estimate_high_micros: int | None = None
    estimate_bounded: bool = False
    status: JobStatus = JobStatus.PENDING
    upstream_attempts: int = 1
    traceparent: str | None = None
    submitted_by: str | None = None
    next_poll_at: float | None = None
    reservation_id: str | None = None
    slot_reservation_id: str | None = None
    callback_url: str | None = None  # completion webhook target (proxy.webhooks)
    account: str | None = None  # the Modellix account billed (None: the caller's own key)
    api: str = "modellix"  # the API door it came through: "modellix" or "openai"
    api_ref: str | None = None  # the id that door shows for it ("video_<intent id>")
    api_request: str | None = None  # JSON: what the client asked, in that door's terms


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRecord:
    """One job as stored: what was submitted plus everything observed since."""

    task_id: str
    caller: str
    pinned_slug: str
    submitted_at: float
    status: JobStatus
    team: str | None = None
    project: str | None = None
    alias: str | None = None
    input_hash: str | None = None
    correlation_id: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None
    price_table_version: str | None = None
    estimated_cost_micros: int | None = None
    final_cost_micros: int | None = None
    price_source: str | None = None  # "operator" | "upstream_list" | "unpriced"
    estimate_low_micros: int | None = None
    estimate_high_micros: int | None = None
    estimate_bounded: bool = False
    cost_source: str | None = None  # "charge" | "estimate": what the final cost is
    upstream_attempts: int = 1
    traceparent: str | None = None
    submitted_by: str | None = None
    first_processing_at: float | None = None
    terminal_at: float | None = None
    history: tuple[StatusChange, ...] = ()
    last_seen_status: str | None = None
    client_polls: int = 0
    watcher_polls: int = 0
    last_client_poll_at: float | None = None
    output_urls: tuple[str, ...] = ()
    error_reason: str | None = None
    next_poll_at: float | None = None
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    watcher_attempts: int = 0
    stale: bool = False
    reservation_id: str | None = None
    slot_reservation_id: str | None = None
    callback_url: str | None = None
    account: str | None = None  # the Modellix account billed (None: the caller's own key)
    api: str = "modellix"
    api_ref: str | None = None
    api_request: str | None = None
    hidden_at: float | None = None  # removed from its owner's views (the ledger keeps it)

    @property
    def terminal(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    """The outcome of one observation: ``became_terminal`` is True for exactly one caller."""

    previous_status: JobStatus
    new_status: JobStatus
    changed: bool
    became_terminal: bool
    job: JobRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class WatcherStats:
    """The watcher's queue at one moment: jobs due, how overdue the oldest is, stale jobs."""

    due: int
    oldest_due_at: float | None
    stale: int


@dataclass(frozen=True, slots=True)
class UnknownJobs:
    """Jobs whose submit outcome is unknown, and the estimates their reservations hold."""

    jobs: int
    held_micros: int


@dataclass(frozen=True, slots=True)
class JobPage:
    """One page of ``list_jobs``; pass ``next_cursor`` as ``after`` for the next page."""

    jobs: tuple[JobRecord, ...]
    next_cursor: str | None


GroupKey = Literal[
    "day", "account", "team", "project", "model", "status", "price_source", "cost_source"
]
GROUP_KEYS: tuple[GroupKey, ...] = (
    "day",
    "account",
    "team",
    "project",
    "model",
    "status",
    "price_source",
    "cost_source",
)


def spend_source(price_source: str | None, cost_source: str | None) -> str:
    """Where a job's settled cost came from: ``charge`` (the upstream's billing), else the
    estimate's price source (``operator``, ``upstream_list``), else ``unpriced``."""
    if cost_source == "charge":
        return "charge"
    return price_source or "unpriced"


ReportKey = Literal["day", "week", "account", "team", "project", "model", "api"]
REPORT_KEYS: tuple[ReportKey, ...] = (
    "day", "week", "account", "team", "project", "model", "api"
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportGroup:
    """One group of the spend report, aggregated by the store (``LedgerReadStore``).

    Keys not grouped by are ``None`` (``week`` is the ISO week, ``2026-W48``, of the UTC
    submit day). ``p50``/``p95``: nearest-rank percentiles of the successful jobs' final
    cost (``None`` without one); ``aliases``: how clients named the pinned model, sorted;
    ``api``: the door the jobs came through (``modellix`` or ``openai``).
    """

    day: str | None = None
    week: str | None = None
    account: str | None = None
    team: str | None = None
    project: str | None = None
    model: str | None = None
    api: str | None = None
    jobs: int = 0
    succeeded: int = 0
    failed: int = 0  # failed or expired
    estimated_cost_micros: int = 0
    final_cost_micros: int = 0
    p50_micros: int | None = None
    p95_micros: int | None = None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CostQuantiles:
    """Nearest-rank P50/P95 of the final cost of ``jobs`` successful jobs of one model
    (``None``: the models merged into one group)."""

    model: str | None
    jobs: int
    p50_micros: int
    p95_micros: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerRow:
    """One terminal job as a finance export reads it (the columns it needs, no history)."""

    task_id: str
    pinned_slug: str
    status: JobStatus
    submitted_at: float
    terminal_at: float | None
    team: str | None = None
    project: str | None = None
    alias: str | None = None
    correlation_id: str | None = None
    price_table_version: str | None = None
    estimated_cost_micros: int | None = None
    final_cost_micros: int | None = None
    price_source: str | None = None
    cost_source: str | None = None
    estimate_low_micros: int | None = None
    estimate_high_micros: int | None = None
    account: str | None = None  # the Modellix account billed (None: the caller's own key)
    caller: str | None = None  # who submitted it (a pass-through caller's key fingerprint)
    api: str = "modellix"  # the API door the job came through


@dataclass(frozen=True, slots=True, kw_only=True)
class SpendRow:
    """Spend of one group; keys not grouped by are ``None``; ``day`` is ``YYYY-MM-DD`` UTC."""

    day: str | None = None
    account: str | None = None
    team: str | None = None
    project: str | None = None
    model: str | None = None
    status: str | None = None
    price_source: str | None = None
    cost_source: str | None = None
    jobs: int = 0
    unpriced_jobs: int = 0
    estimated_cost_micros: int = 0
    final_cost_micros: int = 0


class ClaimOutcome(Enum):
    """What ``claim`` found for an idempotency key."""

    NEW = "new"
    REPLAY = "replay"
    MISMATCH = "mismatch"
    IN_FLIGHT = "in_flight"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredResponse:
    """The response the first request with a key got, replayed byte for byte."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    task_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """Result of ``claim``: ``response`` is set only for ``REPLAY``."""

    outcome: ClaimOutcome
    response: StoredResponse | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VirtualKey:
    """A proxy-issued key: only its hash is stored; ``upstream_key_ref`` names a configured key."""

    key_id: str
    key_hash: str
    created_at: float
    name: str | None = None
    team: str | None = None
    project: str | None = None
    upstream_key_ref: str | None = None
    allowed_models: tuple[str, ...] = ()
    revoked_at: float | None = None
    expires_at: float | None = None
    max_concurrent_jobs: int | None = None

    @property
    def active(self) -> bool:
        """Not revoked (expiry needs a clock: see ``usable_at``)."""
        return self.revoked_at is None

    def usable_at(self, now: float) -> bool:
        """Not revoked and not expired at ``now`` (a key expires at ``expires_at`` exactly)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One budget a reservation must fit: a scope key, its window's start, its hard limit."""

    scope_key: str
    window_start: float
    limit_micros: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetWindow:
    """Where one scope's window stands; ``remaining`` may be negative after overruns."""

    scope_key: str
    window_start: float
    limit_micros: int
    spent_micros: int
    reserved_micros: int

    @property
    def remaining_micros(self) -> int:
        return self.limit_micros - self.spent_micros - self.reserved_micros


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    """Money held against every scope of one request until it is settled or released."""

    reservation_id: str
    amount_micros: int
    scopes: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveResult:
    """``reservation`` when every scope had room, else the first ``refused`` scope's window."""

    reservation: Reservation | None = None
    refused: BudgetWindow | None = None

    @property
    def ok(self) -> bool:
        return self.reservation is not None


BudgetScopeKind = Literal["key", "team", "project", "global"]
"""What a budget applies to: one virtual key, a team, a project, or everything."""
BUDGET_SCOPE_KINDS: tuple[BudgetScopeKind, ...] = ("key", "team", "project", "global")

BudgetPeriod = Literal["day", "month", "lifetime"]
"""A budget's window: UTC day, UTC calendar month, or never reset."""
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = ("day", "month", "lifetime")


@dataclass(frozen=True, slots=True)
class Budget:
    """An operator-defined budget; ``subject`` is the key id, team or project (``None`` if global).

    ``hard`` budgets refuse requests that would exceed ``limit_micros``; soft ones only warn.
    Spend is tracked in ``budget_windows`` by the caller's choice of scope key.
    """

    name: str
    scope: BudgetScopeKind
    subject: str | None
    window: BudgetPeriod
    limit_micros: int
    hard: bool
    created_at: float
    updated_at: float


RefusalGroupKey = Literal["day", "team", "project", "model", "reason", "status"]
"""How ``refusal_summary`` groups; ``status`` is an alias of ``reason`` (so a ``GroupKey`` fits)."""
REFUSAL_GROUP_KEYS: tuple[RefusalGroupKey, ...] = ("day", "team", "project", "model", "reason")


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """One request the proxy refused before it reached upstream, and what it would have cost."""

    at: float
    reason: str
    caller: str | None = None
    team: str | None = None
    project: str | None = None
    model: str | None = None
    estimated_cost_micros: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RefusalRow:
    """Refusals of one group; keys not grouped by are ``None``; ``day`` is ``YYYY-MM-DD`` UTC.

    ``avoided_micros`` sums the refused requests' estimates (unpriced ones count 0).
    """

    day: str | None = None
    team: str | None = None
    project: str | None = None
    model: str | None = None
    reason: str | None = None
    refusals: int = 0
    avoided_micros: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Intent:
    """A paid submit about to be sent: written before the send, removed with its outcome.

    ``job`` is what the ledger records if the send creates a task (its ``task_id`` is the
    ``unknown:<intent id>`` placeholder until the upstream names the task).
    """

    intent_id: str
    owner: str
    created_at: float
    job: NewJob
    idempotency_scope: str | None = None
    idempotency_key: str | None = None
    reservation_id: str | None = None
    slot_reservation_id: str | None = None

    @property
    def placeholder(self) -> str:
        return unknown_task_id(self.intent_id)


def unknown_task_id(intent_id: str) -> str:
    """The ledger key of an ``unknown`` record for the submit with this intent id."""
    return f"unknown:{intent_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldReservation:
    """An open reservation: who holds it (a replica for a request in progress, or a job)."""

    reservation_id: str
    amount_micros: int
    scopes: tuple[tuple[str, float], ...]
    owner: str | None
    created_at: float | None
    task_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovery:
    """What one sweep of dead replicas' leftovers did."""

    unknown: tuple[JobRecord, ...] = ()
    reservations_released: int = 0
    claims_released: int = 0
