"""The job ledger's parts, composed: submits, polls, terminals, and the writes that must land.

- ``SubmitLedger`` (``proxy.jobs.ledger``): write-ahead intent, then the job, an
  ``unknown`` record or a release;
- ``PollObserver`` (``proxy.jobs.observer``): status changes seen by polls;
- ``Settler`` (``proxy.jobs.settler``): money, metrics, log line and span at terminal;
- ``Outbox`` (``proxy.jobs.outbox``): ledger writes retried while the store is down.

They share the store and two bounded in-memory maps: the upstream key each of this
replica's jobs was submitted with (``keys``), and what was last written per job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from proxy.config import Settings
from proxy.jobs.labels import Labels
from proxy.jobs.ledger import SubmitLedger, SubmitLedgerStore
from proxy.jobs.memory import Bounded, Known
from proxy.jobs.observer import PollObserver
from proxy.jobs.outbox import Outbox
from proxy.jobs.schedule import Cadence
from proxy.jobs.settler import Settler, TerminalHook
from proxy.stores.base import JobStore, JobUpkeepStore, WatcherStore
from proxy.stores.records import JobRecord
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.tracing import Tracing


@dataclass(frozen=True, slots=True)
class Replica:
    """Who this process is, for leases, reservation owners and the ``submitted_by`` column."""

    id: str


class TrackerStore(SubmitLedgerStore, JobStore, WatcherStore, JobUpkeepStore, Protocol):
    """The ledger's and the observer's store, and what the watcher and expiry read through
    ``JobTracker.store``: leases of due jobs, their reschedules, open jobs, expiry."""


class JobTracker:
    def __init__(
        self,
        store: TrackerStore,
        settings: Settings,
        metrics: Metrics,
        labels: Labels,
        replica: Replica,
        *,
        clock: Callable[[], float] = time.time,
        on_terminal: tuple[TerminalHook, ...] = (),
        tracing: Tracing | None = None,
    ) -> None:
        self.store = store
        self.labels = labels
        watcher = settings.watcher
        self.cadence = Cadence(
            watcher.first_check_seconds,
            watcher.base_delay_seconds,
            watcher.max_delay_seconds,
            watcher.jitter,
            watcher.stale_after_attempts,
        )
        self.keys: Bounded[str, str] = Bounded(100_000)
        known: Bounded[str, Known] = Bounded(100_000)
        self.outbox = Outbox(on_change=metrics.ledger_writes_pending.set)
        self.settler = Settler(
            metrics,
            labels,
            replica.id,
            forget=self.keys.pop,
            clock=clock,
            on_terminal=on_terminal,
            tracing=tracing,
        )
        self.ledger = SubmitLedger(
            store,
            settings,
            metrics,
            labels,
            replica.id,
            cadence=self.cadence,
            keys=self.keys,
            known=known,
            outbox=self.outbox,
            clock=clock,
        )
        self.observer = PollObserver(
            store, settings, metrics, labels, self.settler, keys=self.keys, known=known, clock=clock
        )
        self.observe_reply = self.observer.observe_reply
        self.follows = self.observer.follows
        self.cached_terminal = self.observer.cached_terminal

    async def settle(self, job: JobRecord) -> None:
        await self.settler.settle(job)
