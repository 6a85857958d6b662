"""The store protocol every backend satisfies, and the errors it raises.

The protocol is split by consumer so each part of the proxy depends on what it
uses: the submit and poll pipelines on ``JobStore``, the watcher on
``WatcherStore``, the idempotency stage on ``IdempotencyStore``. ``Store`` is all
of them plus ``close()``; ``proxy.stores.open_store(url)`` returns one.

    StoreError
    ├── DuplicateJobError      insert_job with a task id already recorded
    ├── DuplicateKeyError      create_virtual_key with an id or hash already stored
    ├── JobNotFoundError       observe on a task id never recorded
    ├── MigrationError         schema newer than this code, or an applied migration changed
    ├── HoldLostError          a request's reservation or claim was released under it
    └── StoreUnavailableError  the database could not be reached or did not answer in time

Time is float epoch seconds passed in by the caller; money is integer micro-dollars.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from proxy.stores.admission_records import (
    Admission,
    Cancel,
    DispatchClaim,
    QueuedSubmit,
    QueueHead,
    QueueState,
    QueueStats,
)
from proxy.stores.audit_records import AdminToken, AuditChain, AuditDraft, AuditRow
from proxy.stores.records import (
    Budget,
    BudgetScope,
    BudgetWindow,
    Claim,
    CostQuantiles,
    GroupKey,
    HeldReservation,
    Intent,
    JobPage,
    JobRecord,
    JobStatus,
    LedgerRow,
    NewJob,
    Recovery,
    Refusal,
    RefusalGroupKey,
    RefusalRow,
    ReportGroup,
    ReportKey,
    ReserveResult,
    Source,
    SpendRow,
    StoredResponse,
    Transition,
    UnknownJobs,
    VirtualKey,
    WatcherStats,
)
from proxy.stores.schema_records import SchemaPin, SchemaVersion
from proxy.stores.webhook_records import BalanceReading, Delivery, DeliveryState, SettledSince

if TYPE_CHECKING:  # sql_text needs the dialects, which need this module's errors
    from proxy.stores.sql_text import Expr

DEFAULT_IDEMPOTENCY_TTL = 24 * 3600.0
DEFAULT_IN_FLIGHT_TIMEOUT = 300.0


class StoreError(Exception):
    """Base of the errors a store raises on purpose."""


class DuplicateJobError(StoreError):
    """A job with this task id is already recorded."""


class DuplicateKeyError(StoreError):
    """A virtual key with this id or hash is already stored."""


class JobNotFoundError(StoreError, LookupError):
    """No job with this task id is recorded."""


class MigrationError(StoreError):
    """The database schema cannot be brought to the version this code expects."""


class HoldLostError(StoreError):
    """What a request held (a reservation, a slot, an idempotency claim) is no longer its own:
    another replica took this one for dead and released it. Nothing may be sent."""


class StoreUnavailableError(StoreError):
    """The database could not be reached, or did not answer in time; nothing is known."""


class JobStore(Protocol):
    """The job ledger: one record per accepted submit and what was observed since."""

    async def insert_job(self, job: NewJob) -> JobRecord:
        """Record an accepted submit; durable when this returns."""

    async def get_job(self, task_id: str) -> JobRecord | None:
        """The job with this task id, or ``None``."""

    async def has_job(self, task_id: str) -> bool:
        """Whether the ledger holds a job with this task id (a narrow read: the first
        look at a task a poll names, which is nearly always not one of the proxy's)."""

    async def observe(
        self,
        task_id: str,
        status: str,
        at: float,
        *,
        source: Source = "client",
        output_urls: Sequence[str] | None = None,
        error_reason: str | None = None,
        final_cost_micros: int | None = None,
        cost_source: str | None = None,
        defer_until: float | None = None,
        polls: int = 1,
    ) -> Transition:
        """Count ``polls`` polls and apply ``status`` if it moves the job forward (compare-and-set).

        Unknown status strings are kept in the history but do not move the job.
        ``source="client"`` sets ``last_client_poll_at``; ``defer_until`` (if given)
        pushes ``next_poll_at`` forward like ``defer``. Raises ``JobNotFoundError``.
        """

    async def defer(self, task_id: str, until: float) -> bool:
        """Push a watched, non-terminal job's ``next_poll_at`` to at least ``until``."""

    async def list_jobs(
        self,
        *,
        status: JobStatus | None = None,
        team: str | None = None,
        project: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
        after: str | None = None,
    ) -> JobPage:
        """Jobs newest first (by submit time), filtered; ``after`` is a previous ``next_cursor``."""

    async def spend_summary(
        self, since: float, until: float, group_by: Sequence[GroupKey] = ()
    ) -> list[SpendRow]:
        """Job counts and exact cost sums for jobs submitted in ``[since, until)``."""

    async def in_flight_by_model(self) -> dict[str, int]:
        """Number of non-terminal jobs per pinned slug."""


class LedgerReadStore(Protocol):
    """Finance reads over the whole ledger (``proxy.stores._ledger_reads``): aggregated in
    SQL or read in bounded pages off the event loop, whatever the ledger's size."""

    def ledger_pages(
        self, since: float, until: float, page_size: int = 1000
    ) -> AsyncIterator[list[LedgerRow]]:
        """Terminal jobs submitted in ``[since, until)``, oldest first (by submit time, then
        task id), in pages of at most ``page_size``; nothing held open between pages."""

    def ledger_csv(
        self, since: float, until: float, fields: Sequence[Expr], page_size: int = 2000
    ) -> AsyncGenerator[bytes, None]:
        """The same terminal jobs, oldest first, as CSV lines (no header) of ``fields``, each
        row formatted by the database (``proxy.stores.sql_text``); in chunks of a bounded
        size, read at the consumer's pace."""

    async def report_groups(
        self, since: float, until: float, group_by: Sequence[ReportKey] = ()
    ) -> list[ReportGroup]:
        """Jobs submitted in ``[since, until)`` by group: counts, exact sums and the
        successful jobs' cost percentiles; sorted by group key, ``None`` last."""

    async def cost_quantiles(
        self, since: float, until: float, *, merge: Collection[str] = ()
    ) -> list[CostQuantiles]:
        """P50/P95 of successful jobs' final cost per pinned slug (those in ``merge``
        together, as ``model=None``), for jobs submitted in ``[since, until)``."""

    async def costed_models(self, since: float, until: float) -> list[str]:
        """Pinned slugs of the successful, costed jobs submitted in ``[since, until)``."""


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A job leased to a watcher, and when it was due (``job.next_poll_at`` is the lease end)."""

    job: JobRecord
    due_at: float


@dataclass(frozen=True, slots=True)
class Reschedule:
    """One leased job's next poll, written by ``reschedule_many`` with others in one transaction.

    ``polls`` counts watcher polls not yet written by an observation (a poll that changed
    nothing is counted here instead of in a write of its own).
    """

    task_id: str
    next_poll_at: float
    watcher_attempts: int
    stale: bool
    polls: int = 0


class WatcherStore(Protocol):
    """Scheduling of background polls, leased so one replica polls a job at a time."""

    async def lease_due(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[JobRecord]:
        """Lease up to ``limit`` non-terminal jobs with ``next_poll_at <= now`` to ``owner``.

        A lease moves ``next_poll_at`` to its expiry, so a job whose owner died
        becomes due again when the lease runs out.
        """

    async def reschedule(
        self,
        task_id: str,
        owner: str,
        next_poll_at: float,
        watcher_attempts: int,
        stale: bool,
    ) -> bool:
        """Release ``owner``'s lease and set the next poll; ignored unless owner holds it."""

    async def lease_due_at(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[LeasedJob]:
        """``lease_due``, each job with the time it was due, most overdue first."""

    async def reschedule_many(self, owner: str, items: Sequence[Reschedule]) -> int:
        """``reschedule`` of many jobs in one transaction; how many ``owner`` still held.

        Each item also adds its ``polls`` to the job's ``watcher_polls``.
        """

    async def earliest_due_at(self) -> float | None:
        """The smallest ``next_poll_at`` of any watched job (leased ones: their lease end)."""

    async def watcher_stats(self, now: float) -> WatcherStats:
        """Jobs due by ``now`` (from the ``next_poll_at`` index) and open jobs flagged stale."""

    async def expire_overdue(
        self, now: float, retention_seconds: float, limit: int = 500
    ) -> list[JobRecord]:
        """Mark non-terminal jobs submitted before ``now - retention_seconds`` expired.

        Each job is returned by exactly one call, across replicas.
        """


class IdempotencyStore(Protocol):
    """Idempotency keys scoped per caller (IETF httpapi draft semantics)."""

    async def claim(
        self,
        scope: str,
        key: str,
        fingerprint: str,
        now: float,
        ttl_seconds: float = DEFAULT_IDEMPOTENCY_TTL,
        in_flight_timeout: float = DEFAULT_IN_FLIGHT_TIMEOUT,
        *,
        claim_id: str | None = None,
        owner: str | None = None,
    ) -> Claim:
        """Claim a key: exactly one of concurrent claimers gets ``NEW``.

        ``claim_id`` (the request's internal id) and ``owner`` (its replica) say who holds
        the claim: only that claim is resolved by its intent, and a dead owner's claims
        that never reached an intent are freed by ``recover``.

        An in-flight claim older than ``in_flight_timeout`` is ``NEW`` again only if no
        submit intent holds it (nothing was sent); an expired key is ``NEW`` again.
        """

    async def complete(self, scope: str, key: str, response: StoredResponse) -> bool:
        """Store the response to replay for this key."""

    async def mark_unknown(self, scope: str, key: str) -> bool:
        """Record that the request was sent but its outcome is unknown."""

    async def release(self, scope: str, key: str, claim_id: str | None = None) -> bool:
        """Forget an uncompleted claim (nothing was created upstream) so a retry proceeds.

        With ``claim_id``, only that claim (a newer claim of the key is left alone).
        """

    async def purge_expired(self, now: float) -> int:
        """Delete expired keys; returns how many."""

    async def purge_idempotency_keys(self, now: float, claimed_before: float, limit: int) -> int:
        """Delete at most ``limit`` keys expired by ``now`` and claimed before ``claimed_before``.

        One short transaction per call (a bounded batch); returns how many were deleted.
        """


class VirtualKeyStore(Protocol):
    """Proxy-issued keys, stored as hashes only."""

    async def create_virtual_key(self, key: VirtualKey) -> VirtualKey:
        """Store a new key; raises ``DuplicateKeyError`` if its id or hash exists."""

    async def get_virtual_key(self, key_id: str) -> VirtualKey | None:
        """The key with this id, revoked or not, or ``None``."""

    async def get_virtual_key_by_hash(self, key_hash: str) -> VirtualKey | None:
        """The key with this hash, revoked or not (check ``active``), or ``None``."""

    async def revoke_virtual_key(self, key_id: str, at: float) -> bool:
        """Revoke a key; False if unknown or already revoked."""

    async def list_virtual_keys(
        self, *, team: str | None = None, include_revoked: bool = False
    ) -> list[VirtualKey]:
        """Keys ordered by creation time."""


class BudgetStore(Protocol):
    """Budgets: a reservation holds money against every applicable scope atomically."""

    async def budget_reserve(
        self,
        scopes: Sequence[BudgetScope],
        amount_micros: int,
        *,
        reservation_id: str | None = None,
        owner: str | None = None,
        at: float | None = None,
    ) -> ReserveResult:
        """Hold ``amount_micros`` in every scope, or in none if any would exceed its limit.

        ``owner`` names the replica holding it for a request in progress (released by
        ``recover`` if that replica dies before a ledger row takes it over).

        One transaction of conditional updates (``spent + reserved + amount <= limit``),
        so concurrent reservers across replicas never overshoot a limit.
        """

    async def budget_settle(self, reservation_id: str, final_micros: int) -> bool:
        """Turn a reservation into spend of ``final_micros``; False if not open."""

    async def budget_release(self, reservation_id: str) -> bool:
        """Give a reservation's money back; False if not open."""

    async def budget_window(self, scope_key: str, window_start: float) -> BudgetWindow | None:
        """Where a scope's window stands, or ``None`` if nothing was ever reserved in it."""


class BudgetDefinitionStore(Protocol):
    """Operator-defined budgets, and where many budget windows stand at once."""

    async def put_budget(self, budget: Budget) -> Budget:
        """Create or replace the budget named ``budget.name``; the stored record.

        Replacing keeps the existing ``created_at`` and takes everything else
        (``updated_at`` included) from ``budget``. Raises ``ValueError`` for an
        unknown scope or window, a negative limit, or a subject that does not
        match the scope (``None`` exactly when the scope is ``global``).
        """

    async def delete_budget(self, name: str) -> bool:
        """Delete a budget definition (its windows stay); False if unknown."""

    async def list_budgets(self) -> list[Budget]:
        """Every budget definition, ordered by name."""

    async def budget_windows(
        self, keys: Sequence[tuple[str, float]]
    ) -> dict[tuple[str, float], BudgetWindow]:
        """Windows for many ``(scope_key, window_start)`` pairs; pairs never reserved are absent."""


class RefusalStore(Protocol):
    """The ledger of requests refused before reaching upstream."""

    async def record_refusal(self, refusal: Refusal) -> None:
        """Append one refusal; durable when this returns."""

    async def purge_refusals(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` refusals recorded before ``before``, oldest first; how many."""

    async def refusal_summary(
        self, since: float, until: float, group_by: Sequence[RefusalGroupKey] = ()
    ) -> list[RefusalRow]:
        """Refusal counts and avoided (estimated) cost for refusals ``at`` in ``[since, until)``.

        ``group_by`` takes ``day``, ``team``, ``project``, ``model`` and ``reason``;
        ``status`` is accepted as an alias of ``reason``, so a spend report's
        ``GroupKey`` list can be passed as is. ``ValueError`` for anything else.
        Rows are ordered by the grouped keys (day, team, project, model, reason),
        ``None`` last on every backend.
        """


class IntentStore(Protocol):
    """Write-ahead submit intents, replica heartbeats and the recovery of dead replicas."""

    async def open_intent(self, intent: Intent) -> None:
        """Record a submit about to be sent; durable when this returns."""

    async def intent_to_job(
        self, intent: Intent, job: NewJob, response: StoredResponse | None
    ) -> JobRecord:
        """One transaction: the job recorded, the intent gone, the key completed."""

    async def intent_to_unknown(self, intent: Intent, detail: str) -> JobRecord | None:
        """One transaction: an ``unknown`` record (money kept, slot freed), the intent gone."""

    async def intent_release(
        self, intent: Intent, response: StoredResponse | None, *, complete: bool
    ) -> bool:
        """One transaction: nothing was created upstream; money, slot and key released."""

    async def heartbeat(self, replica_id: str, now: float) -> None:
        """Say that ``replica_id`` is alive at ``now``."""

    async def recover(
        self, me: str, now: float, lease_seconds: float, limit: int = 200
    ) -> Recovery:
        """Dead replicas' intents become ``unknown`` records; their reservations released."""

    async def list_intents(self, limit: int = 100) -> list[Intent]:
        """Intents not yet resolved, oldest first."""

    async def open_reservations(self, limit: int = 100) -> list[HeldReservation]:
        """Reservations still held, with their holder (a replica or a job)."""

    async def release_reservations(self, reservation_ids: Sequence[str]) -> int:
        """Release these reservations if still held (an operator's call); how many were."""

    async def attach_task(self, placeholder: str, task_id: str, now: float) -> JobRecord | None:
        """An ``unknown`` record becomes the job of ``task_id`` (found by an operator)."""

    async def purge_closed_reservations(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` closed reservations created before ``before``; how many."""


class JobUpkeepStore(Protocol):
    """Housekeeping of the job ledger: bounded purges and the reads behind some gauges."""

    async def purge_terminal_jobs(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` jobs that became terminal at or before ``before``; how many."""

    async def unknown_jobs(self) -> UnknownJobs:
        """Jobs with status ``unknown`` and the estimates of those holding a reservation."""

    async def open_among(self, task_ids: Iterable[str]) -> set[str]:
        """Those of ``task_ids`` recorded and not terminal."""


class LeaseStore(Protocol):
    """Named leases: at most one holder at a time across replicas."""

    async def acquire_lease(self, name: str, owner: str, now: float, until: float) -> bool:
        """Take or renew the lease ``name`` until ``until``.

        True if it was free (absent or expired at ``now``) or already ``owner``'s.
        """

    async def release_lease(self, name: str, owner: str) -> bool:
        """Give up the lease if ``owner`` holds it."""


class WebhookStore(Protocol):
    """Completion webhook deliveries (see ``proxy.stores._webhooks``) and per-caller URLs."""

    async def set_webhook_endpoint(self, caller: str, url: str | None, now: float) -> bool:
        """Set (or with ``None`` remove) the default callback URL of ``caller``."""

    async def get_webhook_endpoint(self, caller: str) -> str | None:
        """The default callback URL of ``caller``, if the operator set one."""

    async def list_webhook_endpoints(self) -> dict[str, str]:
        """Every caller's default callback URL."""

    async def lease_deliveries(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[Delivery]:
        """Take up to ``limit`` due deliveries for ``owner`` until ``now + lease_seconds``."""

    async def delivery_succeeded(self, delivery_id: str, now: float, status: int) -> bool:
        """Mark a pending delivery delivered (the receiver answered ``status``)."""

    async def delivery_failed(
        self, delivery_id: str, owner: str, status: int | None, error: str, retry_at: float | None
    ) -> bool:
        """Count a failed attempt: due again at ``retry_at``, or dead-lettered if ``None``."""

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        """One delivery by its id or its task id."""

    async def list_deliveries(
        self, *, state: DeliveryState | None = None, limit: int = 100
    ) -> list[Delivery]:
        """Deliveries, newest first, optionally in one state."""

    async def redeliver(self, delivery_id: str, now: float) -> bool:
        """Make a delivery (by id or task id) due now with a fresh attempt budget."""

    async def delivery_counts(self) -> dict[str, int]:
        """How many deliveries are in each state."""

    async def purge_deliveries(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` delivered or dead deliveries created before ``before``."""


class BalanceStore(Protocol):
    """Balance reconciliation: the last reading per team and the ledger's spend."""

    async def get_balance_reading(self, team: str) -> BalanceReading | None:
        """The last reading for ``team``."""

    async def list_balance_readings(self) -> list[BalanceReading]:
        """The last reading of every team."""

    async def put_balance_reading(self, reading: BalanceReading) -> None:
        """Replace the last reading of ``reading.team``."""

    async def settled_since(
        self, after: int, teams: Sequence[str] | None = None, account: str | None = None
    ) -> SettledSince:
        """Spend the ledger settled after journal sequence ``after`` (of ``teams`` and of
        ``account`` if given), and the sequence that sum runs to
        (``proxy.stores._settlements``)."""

    async def purge_settlements(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` journal rows settled before ``before`` that every reading
        has counted."""


class AdmissionStore(Protocol):
    """The admission queue (``proxy.stores._admission``): submits waiting for a team slot."""

    async def admission_admit(
        self,
        intent: Intent,
        entry: QueuedSubmit,
        stored: StoredResponse | None,
        *,
        limit: int,
        max_queue: int,
        now: float,
        account_limit: int | None = None,
        account_rpm: int | None = None,
    ) -> Admission:
        """One transaction: the intent (a slot of the team, and of its account when
        ``account_limit`` is given, is free, fewer than ``account_rpm`` of the account's
        submits went in the last minute when it is given, and nobody waits ahead), or the
        queue row holding the request's reservations and key, or nothing (the queue is
        full)."""

    async def admission_requeue_intent(
        self, intent: Intent, entry: QueuedSubmit, stored: StoredResponse | None
    ) -> bool:
        """One transaction: a sent-and-refused-for-concurrency intent becomes a queue row."""

    async def admission_in_flight(self, team: str) -> int:
        """The team's ``vk:`` jobs pending or processing, plus their sends in progress."""

    async def admission_account_in_flight(self, account: str) -> int:
        """The same count over every team billing to the Modellix account ``account``."""

    async def admission_account_sends(self, account: str, now: float) -> int:
        """The submits let go with ``account``'s key in the minute before ``now`` (counted
        only while the account has a submit rate)."""

    async def admission_ready(self, now: float, limit: int) -> list[QueueHead]:
        """Queued rows due by ``now``, oldest first."""

    async def admission_turns(self, team: str) -> dict[str, float]:
        """When each caller of ``team`` was last dispatched from the queue."""

    async def admission_claim(
        self,
        queue_id: str,
        owner: str,
        now: float,
        limit: int,
        account_limit: int | None = None,
        account_rpm: int | None = None,
    ) -> DispatchClaim | None:
        """One transaction: the row dispatching and its intent written, if a slot of its team
        (and of its account, when ``account_limit`` is given) is free and, with
        ``account_rpm``, fewer than that many of the account's submits went in the last
        minute."""

    async def admission_to_job(
        self, queue_id: str, intent: Intent, job: NewJob, now: float
    ) -> JobRecord:
        """One transaction: the job recorded, the intent gone, the row dispatched."""

    async def admission_to_unknown(
        self, queue_id: str, intent: Intent, detail: str, now: float
    ) -> JobRecord | None:
        """One transaction: an ``unknown`` record, the intent gone, the row unknown."""

    async def admission_requeue(
        self, queue_id: str, intent: Intent, not_before: float, error: str, now: float
    ) -> bool:
        """One transaction: nothing was created; the intent gone, the row queued again."""

    async def admission_refused(
        self, queue_id: str, intent: Intent, error: str, now: float
    ) -> bool:
        """One transaction: a definite refusal; holds released, the row failed."""

    async def admission_cancel(self, queue_id: str, error: str, now: float) -> Cancel:
        """Cancel a queued row: reservations released, its idempotency key forgotten."""

    async def admission_dismiss(self, queue_id: str) -> bool:
        """A row refused or expired in the queue (its holds already released) marked
        cancelled by its submitter, its error kept; False if it is not in either state."""

    async def admission_expire(
        self, team: str, before: float, error: str, now: float, limit: int = 100
    ) -> list[QueuedSubmit]:
        """Expire ``team``'s rows queued before ``before`` (holds released, key forgotten)."""

    async def admission_orphans(self, now: float, limit: int = 100) -> int:
        """Mark rows whose dispatching replica died (their intent is gone) unknown."""

    async def admission_purge(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` finished rows finished before ``before``."""

    async def admission_get(self, queue_id: str) -> QueuedSubmit | None:
        """One row by its ``q-`` id."""

    async def admission_stats(self) -> list[QueueStats]:
        """Queued rows per team and the oldest one's enqueue time."""

    async def admission_rows(
        self, *, team: str | None = None, states: Sequence[QueueState] = (), limit: int = 1000
    ) -> list[QueuedSubmit]:
        """Rows, oldest first, filtered by team and states."""


class SchemaStore(Protocol):
    """The upstream's published request schemas: versions seen and the pin per model."""

    async def record_schema(
        self, slug: str, hash_: str, document: str, now: float, *, follow: bool
    ) -> SchemaPin:
        """Record a fetched version (first sight pins it; ``follow`` pins every change)."""

    async def accept_schema(self, slug: str, hash_: str | None, now: float) -> SchemaPin | None:
        """Pin ``hash_`` (default: the latest version); ``None`` if unknown."""

    async def schema_pins(self) -> list[SchemaPin]:
        """Every model's pin, by slug."""

    async def schema_pin(self, slug: str) -> SchemaPin | None:
        """One model's pin."""

    async def schema_document(self, slug: str, hash_: str) -> str | None:
        """The canonical JSON of one version."""

    async def schema_versions(self, slug: str) -> list[SchemaVersion]:
        """Every version of one model, oldest first."""


class MediaFileStore(Protocol):
    """Which proxy key uploaded each media file: the File API's owner per file id."""

    async def record_media_file(
        self, file_id: str, key_id: str, team: str | None, now: float
    ) -> None:
        """Record that ``key_id`` uploaded ``file_id`` (a second record of it is ignored)."""

    async def media_file_owner(self, file_id: str) -> str | None:
        """The key id that uploaded ``file_id``; ``None`` if none recorded it."""

    async def media_files_of(self, key_id: str, file_ids: Iterable[str]) -> set[str]:
        """Those of ``file_ids`` that ``key_id`` uploaded."""

    async def forget_media_file(self, file_id: str) -> bool:
        """Drop ``file_id``'s record (it was deleted); whether there was one."""

    async def purge_media_files(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` records of files uploaded before ``before``; how many."""


class ApiJobStore(Protocol):
    """Jobs as another API door shows them (``api``/``api_ref``: an OpenAI video id)."""

    async def job_by_ref(self, api_ref: str) -> JobRecord | None:
        """The job another door knows as ``api_ref`` (hidden ones included), or ``None``."""

    async def api_jobs_page(
        self,
        caller: str,
        api: str,
        *,
        limit: int,
        order: Literal["asc", "desc"] = "desc",
        after: JobRecord | None = None,
    ) -> tuple[list[JobRecord], bool]:
        """``caller``'s jobs made through ``api`` and not hidden, by submit time in ``order``,
        after ``after``; up to ``limit`` of them and whether more follow."""

    async def api_queued_page(
        self,
        caller: str,
        api: str,
        *,
        limit: int,
        order: Literal["asc", "desc"] = "desc",
        after: tuple[float, str] | None = None,
    ) -> list[QueuedSubmit]:
        """``caller``'s submits through ``api`` the admission queue holds unsent (queued,
        being dispatched, refused or expired there), by the job's submit time and door id in
        ``order``, past ``after`` (that pair); at most ``limit + 1`` (one more says more)."""

    async def hide_api_job(self, api_ref: str, caller: str, now: float) -> bool:
        """Remove ``caller``'s job ``api_ref`` from their views (the ledger keeps it); whether
        it was visible until now."""


class AuditStore(Protocol):
    """The audit trail: one hash-chained row per admin action, in the action's transaction."""

    def audited(self, draft: AuditDraft) -> AbstractAsyncContextManager[AuditDraft]:
        """One transaction for an admin action: every call on this store inside the block (in
        this task) joins it, and on a clean exit ``draft``'s row (``before`` and ``after`` as
        the block left them) is appended to the chain before the commit; an exception rolls
        back the change and records nothing. ``draft.row`` is the appended row afterwards."""

    async def audit_rows(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        since: float | None = None,
        until: float | None = None,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
    ) -> list[AuditRow]:
        """Rows after ``after_seq`` matching every filter given, in chain order."""

    async def audit_chain(self) -> AuditChain:
        """The chain's head and its anchor (the last row pruned)."""

    async def prune_audit(self, before: float, limit: int, now: float) -> int:
        """Delete at most ``limit`` rows from the start of the chain, stopping at the first
        row not older than ``before`` (never a younger one); the last deleted row becomes
        the anchor verification starts from. How many were deleted."""


class AdminTokenStore(Protocol):
    """Named admin credentials with a role, stored as hashes only."""

    async def create_admin_token(self, token: AdminToken) -> AdminToken:
        """Store a new token; ``DuplicateKeyError`` if an active one has its name (or id)."""

    async def get_admin_token(self, token_id: str) -> AdminToken | None:
        """The token with this id, revoked or not."""

    async def get_admin_token_by_hash(self, token_hash: str) -> AdminToken | None:
        """The token whose secret hashes to ``token_hash``, revoked or not."""

    async def list_admin_tokens(self, *, include_revoked: bool = False) -> list[AdminToken]:
        """Tokens in order of creation."""

    async def rotate_admin_token(
        self, token_id: str, token_hash: str, at: float
    ) -> AdminToken | None:
        """Give an active token a new secret (the old one stops working); ``None`` if none."""

    async def revoke_admin_token(self, token_id: str, at: float) -> bool:
        """Revoke a token; False if unknown or already revoked."""


class ProbeStore(Protocol):
    """Whether the store takes writes now (the readiness check)."""

    async def probe_write(self) -> None:
        """Return if a write could be made now, else raise ``StoreUnavailableError`` (cheap)."""


@runtime_checkable
class Store(
    IntentStore,
    JobStore,
    LedgerReadStore,
    WatcherStore,
    IdempotencyStore,
    VirtualKeyStore,
    BudgetStore,
    BudgetDefinitionStore,
    RefusalStore,
    JobUpkeepStore,
    LeaseStore,
    WebhookStore,
    BalanceStore,
    AdmissionStore,
    SchemaStore,
    MediaFileStore,
    ApiJobStore,
    AuditStore,
    AdminTokenStore,
    ProbeStore,
    Protocol,
):
    """Everything the proxy keeps: jobs, leases, idempotency keys, keys, budgets, refusals."""

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
