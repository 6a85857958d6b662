"""Following the proxy's jobs through the poll answers seen (a client's or the watcher's).

A status change is applied with compare-and-set, so exactly one observer, on any
replica, sees a job become terminal and settles it. Polls that change nothing
are counted in memory and written with the next change. Task ids that are not
the proxy's are remembered as foreign and cost nothing after the first look.

Credentials: the upstream key a job is polled with is the one chosen at submit
(``keys``). A poll never replaces it. In pass-through mode, after a restart has
emptied ``keys``, a poll by the very key that submitted the job (same caller
fingerprint) gives it back; a proxy-issued key is never kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from proxy.config import Settings
from proxy.jobs.labels import Labels
from proxy.jobs.memory import Bounded, Known
from proxy.jobs.settler import Settler
from proxy.jobs.status import Phase, complete_view, task_state
from proxy.jsoncodec import loads
from proxy.stores.base import JobNotFoundError, JobStore, StoreError
from proxy.stores.records import JobRecord, JobStatus
from proxy.telemetry.metrics import Metrics

log = structlog.get_logger("proxy.jobs")
PROXY_KEY_PREFIX = "mlx-vk-"


class PollObserver:
    def __init__(
        self,
        store: JobStore,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        settler: Settler,
        *,
        keys: Bounded[str, str],
        known: Bounded[str, Known],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self.labels = labels
        self._settler = settler
        self.keys = keys
        self._known = known
        self._clock = clock
        self._foreign: Bounded[str, bool] = Bounded(100_000)
        self._terminal: Bounded[tuple[str, str], bytes] = Bounded(settings.poll.terminal_cache_size)

    def cached_terminal(self, task_id: str, caller: str | None) -> bytes | None:
        """The terminal answer this caller was given for this task, if still cached."""
        if not caller or not self._settings.poll.serve_terminal_from_ledger:
            return None
        return self._terminal.get((task_id, caller))

    def follows(self, task_id: str, status: int) -> bool:
        """Whether a poll answer may change the ledger (``observe_reply`` does nothing with
        any other): a 200 for a task not known to be foreign. Asked first, it spares a
        foreign task's poll the call."""
        return status == 200 and not self._foreign.get(task_id)

    async def observe_reply(
        self,
        task_id: str,
        status: int,
        body: bytes,
        *,
        source: str,
        caller: str | None = None,
        credential: str | None = None,
        document: dict[str, Any] | None = None,
    ) -> JobRecord | None:
        """Apply a poll answer to the job; returns the job if it is ours.

        ``caller`` is who polled (``vk:<id>`` / ``fp:<fingerprint>``); ``credential`` the
        upstream key that poll was sent with, given only in pass-through mode (the
        client's own Modellix key), and kept only to give back a key lost in a restart.
        ``document``: ``body`` already parsed, if it was (not parsed again).
        A store failure loses nothing: the poll's answer still reaches the client, and the
        next poll (a client's or the watcher's) sees the same change.
        """
        if not self.follows(task_id, status):
            return None  # a foreign task costs nothing after the first look, not even a parse
        try:
            return await self._observe(task_id, body, source, caller, credential, document)
        except StoreError as exc:
            log.warning("job.observation_not_written", task_id=task_id, error=str(exc)[:300])
            return None

    async def _observe(
        self,
        task_id: str,
        body: bytes,
        source: str,
        caller: str | None,
        credential: str | None,
        document: dict[str, Any] | None,
    ) -> JobRecord | None:
        if document is None:
            try:
                document = loads(body)
            except ValueError:  # not JSON, or not UTF-8
                return None
        # The status first: all that a poll changing nothing, or a foreign task, costs.
        state = task_state(document)
        if state is None:
            return None
        _, _, raw_status, _, status = state
        now = self._clock()
        if status is None:
            job = await self._store.get_job(task_id)
            self._metrics.unknown_status.labels(
                self.labels.model(job.pinned_slug if job else None)
            ).inc()
            log.warning("job.unrecognised_status", task_id=task_id, status=raw_status)
            return job
        grace = self._settings.watcher.client_grace_seconds
        client = source == "client"
        known = self._known.get(task_id)
        if (
            client
            and known is not None
            and known.status is status
            and not status.terminal
            and now < known.deferred_until - grace / 2
        ):
            known.unsaved_polls += 1  # nothing moved: written with the next change
            return None
        if known is None:
            # The first look at this task: nearly always not ours, so the narrow read first.
            job = await self._store.get_job(task_id) if await self._store.has_job(task_id) else None
            if job is None:
                # Not submitted through this ledger; it never will be (ids are new at submit).
                self._foreign.put(task_id, True)
                return None
            known = Known(job.status, job.estimated_cost_micros)
            self._known.put(task_id, known)
            self._recover_key(job, caller, credential)
        view = complete_view(state)
        final: int | None = None
        cost_source: str | None = None
        error_reason = view.message
        if view.bucket is Phase.BLOCKED:
            error_reason = f"{view.raw_status}: {view.message or 'refused by the upstream'}"
        if status is JobStatus.SUCCESS and view.charge_micros is not None:
            final, cost_source = view.charge_micros, "charge"  # what the upstream billed
        elif status is JobStatus.SUCCESS or (
            status is JobStatus.FAILED and self._settings.watcher.bill_failed
        ):
            final = known.estimate_micros
            cost_source = "estimate" if final is not None else None
        elif status is JobStatus.FAILED:
            final = 0
        try:
            transition = await self._store.observe(
                task_id,
                status.value,
                now,
                source="client" if client else "watcher",
                output_urls=view.output_urls or None,
                error_reason=error_reason if status is JobStatus.FAILED else None,
                final_cost_micros=final,
                cost_source=cost_source,
                defer_until=now + grace if client else None,
                polls=known.unsaved_polls + 1 if client else 1,
            )
        except JobNotFoundError:
            self._known.pop(task_id)
            return None
        if client:
            known.unsaved_polls = 0
            known.deferred_until = now + grace
        known.status = transition.job.status
        if transition.job.terminal:
            self._known.pop(task_id)
        if status.terminal and caller:
            self._terminal.put((task_id, caller), body)
        if transition.became_terminal:
            await self._settler.settle(transition.job)
        return transition.job

    def _recover_key(self, job: JobRecord, caller: str | None, credential: str | None) -> None:
        """A pass-through job's key, lost in a restart, given back by the key that submitted it."""
        if (
            credential
            and caller is not None
            and caller == job.caller
            and caller.startswith("fp:")
            and PROXY_KEY_PREFIX not in credential
            and self.keys.get(job.task_id) is None
            and not job.terminal
        ):
            self.keys.put(job.task_id, credential)
