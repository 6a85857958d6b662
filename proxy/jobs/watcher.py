"""The background watcher: polls the jobs no client is polling, until terminal or expiry.

It polls continuously and concurrently, paced by two limits rather than by a batch
per tick: a token bucket (``watcher.max_polls_per_second``, this replica's share of
the team's upstream rate limit) and a cap on polls awaiting the upstream at once
(``watcher.max_in_flight``). Due jobs are leased from the store in chunks of
``watcher.batch_size``; the next chunk is leased as soon as fewer than half a chunk
wait for a slot. When nothing is due the watcher sleeps until the earliest
``next_poll_at`` (at least a quarter second, so that a lease gathers what fell due
meanwhile; at most ``tick_seconds``; ``wake()`` cuts it short). An upstream 429 holds
every token back until the time the upstream named (at most 10 s, then it probes again).

Work is leased (``lease_due_at``), so several replicas never poll the same job at
once and a dead replica's jobs are taken over when its leases run out; a leased job
still waiting for a slot when its lease is about to end is dropped, never polled. The
store serves due jobs from an index on ``next_poll_at``, never a full scan.

Writes are batched: the next poll of each polled job is written with the others in
one transaction per flush (``reschedule_many``, every ``flush_seconds``), and a poll
that saw no change is counted in that same write. Only a status change is written
on its own, by the observer's compare-and-set, so exactly one poller settles a job.

A job the watcher has no key for (pass-through mode after a restart, no
``upstream.api_key``) is rescheduled unpolled until its client polls again; each
such job is logged once per process (``watcher.job_without_credential``) and
counted in the ``jobs_without_credential`` gauge until it has a key or is terminal.

Expiry (``proxy.jobs.expiry``) and the store-read gauges (``proxy.telemetry.store_gauges``)
are components of their own: they run whatever ``watcher.enabled`` says.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import quote

import structlog

from proxy.accounts import AccountBook
from proxy.config import Settings
from proxy.jobs.memory import Bounded
from proxy.jobs.reschedules import RescheduleWriter
from proxy.jobs.schedule import TokenBucket, is_stale, next_poll_delay
from proxy.jobs.status import read_task
from proxy.jobs.tracker import JobTracker, Replica
from proxy.stores.base import LeasedJob, Reschedule, StoreUnavailableError
from proxy.stores.records import JobRecord
from proxy.telemetry.children import child
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.spans import watcher_poll_span
from proxy.upstream import attempts
from proxy.upstream.client import Reply, Upstream
from proxy.upstream.retry import RetryPolicy, server_delay

log = structlog.get_logger("proxy.watcher")
BURST_SECONDS = 0.02
"""The token bucket saves up at most this many seconds' worth of polls."""
LEASE_MARGIN_SECONDS = 2.0
"""A leased job is not polled this close to its lease's end: another replica may take it."""
GATHER_SECONDS = 0.25
"""After a lease that took every due job, the next waits this long (or ``tick_seconds`` if
shorter) for more to fall due: at ~400 polls/s one lease per quarter second takes ~100 jobs,
where leasing each job as it falls due would cost a transaction per few polls. It adds at
most this much to a job's due-lag."""
FLUSH_AT = 500
RETRY_FLUSH_SECONDS = 1.0
"""Reschedules waiting that trigger a flush before ``flush_seconds`` is up."""
RATE_LIMIT_PAUSE = (1.0, 10.0)
"""Bounds of the pause after an upstream 429: its reset time, at most 10 s, after which one
poll probes again (a 429 again pauses again). The upstream's windows are per minute, and a
429 need not be about the rate (a fault, a limit elsewhere): a whole minute of no polls for
every job would cost more than a probe."""


class Watcher:
    def __init__(
        self,
        tracker: JobTracker,
        upstream: Upstream,
        policy: RetryPolicy,
        settings: Settings,
        metrics: Metrics,
        replica: Replica,
        *,
        accounts: AccountBook | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tracker = tracker
        # Without a key in memory a job is polled with its Modellix account's key (a
        # pass-through job's: the default account's, if any).
        self._accounts = accounts or AccountBook.from_settings(settings)
        self._upstream = upstream
        self._policy = policy
        self._settings = settings
        self._metrics = metrics
        self._owner = replica.id
        self._clock = clock
        self._monotonic = monotonic
        self._rng = random.Random()
        self._wake = asyncio.Event()
        # Open jobs leased without a usable key, and those already logged (once per process).
        self._keyless: set[str] = set()
        self._announced: Bounded[str, bool] = Bounded(100_000)
        w = settings.watcher
        # A small burst (20 ms of polls): polls leave evenly spaced, never as a clump that
        # holds the event loop while submits wait.
        self._bucket = TokenBucket(
            w.max_polls_per_second,
            max(1.0, min(float(w.max_in_flight), w.max_polls_per_second * BURST_SECONDS)),
            monotonic(),
        )
        # A chunk small enough to be polled well within its lease at the configured rate.
        self._chunk = max(1, min(w.batch_size, int(w.max_polls_per_second * w.lease_seconds / 4)))
        self.writes = RescheduleWriter(
            tracker.store, self._owner, w.flush_seconds, on_written=self._due_by
        )
        self._queue: deque[LeasedJob] = deque()
        self._low_water = max(1, self._chunk // 2)
        self._queued = asyncio.Event()  # the queue has jobs again
        self._wanted = asyncio.Event()  # the queue fell below the low-water mark
        self._in_flight: dict[str, LeasedJob] = {}
        self._slot_freed = asyncio.Event()
        self._sleeping_until: float | None = None
        self._polled = child(metrics.job_polls, "watcher")
        self.ticks = 0
        self.polls = 0

    def wake(self) -> None:
        """Look for due jobs now (tests, and after a burst of submits)."""
        self._wake.set()

    # --- the loops --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until cancelled; then hand back what was leased and not polled, and flush."""
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._housekeep_forever(), name="watcher-housekeeping")
                group.create_task(self.writes.run(), name="watcher-writes")
                await self._poll_forever(group)
        finally:
            await self._hand_back()

    async def tick(self) -> int:
        """One round by hand: keyless bookkeeping, then poll the jobs due now (one chunk), write.

        The polls run concurrently within ``max_in_flight`` and the rate limit. Returns
        the number of jobs polled (or rescheduled unpolled, for want of a key).
        """
        await self._housekeep()
        due = await self._lease()
        slots = asyncio.Semaphore(self._settings.watcher.max_in_flight)

        async def one(leased: LeasedJob) -> None:
            async with slots:
                await self._token()
                await self._poll_guarded(leased)

        await asyncio.gather(*(one(leased) for leased in due))
        await self.writes.flush()
        return len(due)

    async def _poll_forever(self, group: asyncio.TaskGroup) -> None:
        """Start polls of leased jobs as slots and tokens allow; a sibling task leases more."""
        group.create_task(self._lease_forever(), name="watcher-leases")
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            await self._start_next(group)

    async def _lease_forever(self) -> None:
        """Keep at least half a chunk leased ahead of the polls; idle while nothing is due."""
        tick = self._settings.watcher.tick_seconds
        while True:
            try:
                while len(self._queue) >= self._low_water:
                    self._wanted.clear()
                    await self._wanted.wait()
                got = await self._lease()
                if got:
                    self._queue.extend(got)
                    self._queued.set()
                if len(got) < self._chunk:  # nothing more is due now: gather some
                    await self._idle(floor=min(GATHER_SECONDS, tick))
            except StoreUnavailableError as exc:
                log.warning("watcher.store_unavailable", error=str(exc)[:300])
                await self._nap(tick)
            except Exception:
                log.exception("watcher.lease_failed")
                await self._nap(tick)

    async def _lease(self) -> list[LeasedJob]:
        w = self._settings.watcher
        return await self._tracker.store.lease_due_at(
            self._owner, self._clock(), self._chunk, w.lease_seconds
        )

    async def _start_next(self, group: asyncio.TaskGroup) -> None:
        """Wait for a slot and a token, then start polling the longest-waiting leased job."""
        while len(self._in_flight) >= self._settings.watcher.max_in_flight:
            self._slot_freed.clear()
            await self._slot_freed.wait()
        await self._token()
        leased = self._queue.popleft()
        if len(self._queue) < self._low_water:
            self._wanted.set()
        expires = leased.job.lease_expires_at
        if expires is not None and self._clock() > expires - LEASE_MARGIN_SECONDS:
            log.debug("watcher.lease_ran_out", task_id=leased.job.task_id)
            return  # due again when the lease ends, for whoever leases it then
        self._in_flight[leased.job.task_id] = leased
        group.create_task(self._poll_in_slot(leased))

    async def _poll_in_slot(self, leased: LeasedJob) -> None:
        try:
            await self._poll_guarded(leased)
        except asyncio.CancelledError:  # shutting down mid-poll: hand the job back
            self._give_back(leased)
            raise
        finally:
            self._in_flight.pop(leased.job.task_id, None)
            self._slot_freed.set()

    async def _token(self) -> None:
        while True:  # a bucket, not an event: the wait is known in advance
            wait = self._bucket.take(self._monotonic())
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    async def _idle(self, floor: float = 0.0) -> None:
        """Sleep until the earliest due job (at most ``tick_seconds``) or a wake-up."""
        tick = self._settings.watcher.tick_seconds
        now = self._clock()
        earliest = await self._tracker.store.earliest_due_at()
        until = now + tick if earliest is None else min(earliest, now + tick)
        self._sleeping_until = max(until, now + floor)
        try:
            await self._nap(self._sleeping_until - now)
        finally:
            self._sleeping_until = None

    async def _nap(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    def _due_by(self, at: float) -> None:
        """A reschedule written for ``at``: wake the idle loop if that is before its alarm."""
        if self._sleeping_until is not None and at < self._sleeping_until:
            self._wake.set()

    async def _hand_back(self) -> None:
        """On the way out: leased jobs not polled are due again at once, for any replica."""
        for leased in [*self._queue, *self._in_flight.values()]:
            self._give_back(leased)
        self._queue.clear()
        self._in_flight.clear()
        try:
            async with asyncio.timeout(2.0):
                await self.writes.flush()
        except (TimeoutError, StoreUnavailableError) as exc:  # the leases run out instead
            log.warning("watcher.hand_back_failed", error=str(exc)[:300])

    def _give_back(self, leased: LeasedJob) -> None:
        job = leased.job
        self.writes.add(Reschedule(job.task_id, leased.due_at, job.watcher_attempts, job.stale))

    # --- housekeeping -----------------------------------------------------------------------

    async def _housekeep_forever(self) -> None:
        while True:
            try:
                await self._housekeep()
            except StoreUnavailableError as exc:
                log.warning("watcher.housekeeping_failed", error=str(exc)[:300])
            except Exception:
                log.exception("watcher.housekeeping_failed")
            await asyncio.sleep(self._settings.watcher.gauges_seconds)

    async def _housekeep(self) -> None:
        """This process's own count of jobs it cannot poll for want of a key."""
        await self._prune_keyless()
        self.ticks += 1

    # --- one poll ---------------------------------------------------------------------------

    async def _poll_guarded(self, leased: LeasedJob) -> None:
        """Poll one job; a failure is logged and the job rescheduled, never left leased."""
        try:
            await self._poll(leased)
        except asyncio.CancelledError:
            raise
        except Exception:
            job = leased.job
            log.exception("watcher.poll_failed", task_id=job.task_id)
            self._reschedule(job, job.watcher_attempts + 1)

    async def _poll(self, leased: LeasedJob) -> None:
        job = leased.job
        key = self._tracker.keys.get(job.task_id) or self._account_key(job)
        attempts_made = job.watcher_attempts + 1
        if key is None:
            # No key to poll with (pass-through mode after a restart): wait for the client.
            self._without_key(job)
            self._reschedule(job, job.watcher_attempts)
            return
        if job.task_id in self._keyless:
            self._keyless.discard(job.task_id)
            self._metrics.jobs_without_credential.set(len(self._keyless))
        self._metrics.watcher_due_lag.observe(max(0.0, self._clock() - leased.due_at))
        headers = {
            "Authorization": key if " " in key else f"Bearer {key}",
            "Accept": "application/json",
        }
        tracing = self._tracker.settler.tracing
        span = (
            contextlib.nullcontext()
            if tracing is None
            else watcher_poll_span(
                tracing,
                task_id=job.task_id,
                model=job.pinned_slug,
                attempt=attempts_made,
                submit_traceparent=job.traceparent,
            )
        )
        unsaved = 0
        with span:
            outcome = await attempts.send(
                self._upstream,
                self._policy,
                "GET",
                f"/api/v1/tasks/{quote(job.task_id, safe='')}",
                headers,
                None,
                operation="poll",
                idempotent=True,
                rng=self._rng,
                on_retry=lambda reason: self._metrics.upstream_retries.labels("poll", reason).inc(),
            )
            self._polled.inc()
            self.polls += 1
            reply = outcome.reply
            if reply is not None and reply.status == 429:
                self._rate_limited(reply)
            if reply is not None and _unchanged(job, reply):
                unsaved = 1  # nothing moved: counted in the batched reschedule
            elif reply is not None:
                updated = await self._tracker.observe_reply(
                    job.task_id, reply.status, reply.body, source="watcher"
                )
                if updated is not None and updated.terminal:
                    return
        self._reschedule(job, attempts_made, polls=unsaved)

    def _rate_limited(self, reply: Reply) -> None:
        """An upstream 429 after retries: no watcher poll until the upstream's reset (or
        ``RATE_LIMIT_PAUSE``'s upper bound, then the next poll probes)."""
        low, high = RATE_LIMIT_PAUSE
        asked = server_delay(reply.headers, time.time())
        pause = min(high, max(low, asked or low))
        self._bucket.pause_until(self._monotonic() + pause)
        log.warning("watcher.rate_limited", pause_seconds=round(pause, 1))

    def _without_key(self, job: JobRecord) -> None:
        """Count the job as unpollable; log it the first time this process finds it so."""
        if job.task_id in self._keyless:
            return
        self._keyless.add(job.task_id)
        self._metrics.jobs_without_credential.set(len(self._keyless))
        if self._announced.get(job.task_id):
            return
        self._announced.put(job.task_id, True)
        log.warning(
            "watcher.job_without_credential",
            task_id=job.task_id,
            model=job.pinned_slug,
            team=job.team,
            submitted_at=job.submitted_at,
            correlation_id=job.correlation_id,
            detail="no upstream key in memory and no upstream.api_key: polled only when "
            "its client polls",
        )

    def _account_key(self, job: JobRecord) -> str | None:
        account = self._accounts.get(job.account)
        return None if account is None else account.authorization

    async def _prune_keyless(self) -> None:
        """Forget jobs that have a key again (a client polled) or are terminal."""
        keys = self._tracker.keys
        self._keyless = {t for t in self._keyless if keys.get(t) is None}
        if self._keyless:
            self._keyless &= await self._tracker.store.open_among(sorted(self._keyless))
        self._metrics.jobs_without_credential.set(len(self._keyless))

    def _reschedule(self, job: JobRecord, attempts_made: int, *, polls: int = 0) -> None:
        cadence = self._tracker.cadence
        delay = next_poll_delay(max(1, attempts_made), cadence, self._rng.random())
        self.writes.add(
            Reschedule(
                job.task_id,
                self._clock() + delay,
                attempts_made,
                is_stale(attempts_made, cadence),
                polls,
            )
        )


def _unchanged(job: JobRecord, reply: Reply) -> bool:
    """Whether a poll answer tells the ledger nothing new (same known, open status)."""
    if reply.status != 200:
        return False
    view = read_task(reply.body)
    return (
        view is not None
        and view.status is job.status
        and not job.status.terminal
        and view.raw_status == job.last_seen_status
    )
