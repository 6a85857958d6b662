"""What the running application holds beyond its settings: the parts opened at start-up.

aiohttp freezes an application before its start-up hooks run, so the parts
that need I/O to build (the store, the tracker, the watcher, the stages that
use them) are set on this holder by the start-up context, and handlers read
them from here.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from proxy.accounts import AccountBook
from proxy.admission.desk import AdmissionDesk
from proxy.catalog.loader import Catalog
from proxy.catalog.pinning import Pinner
from proxy.catalog.schema_registry import SchemaRegistry
from proxy.errors import ServiceUnavailable
from proxy.governance.budgets import BudgetBook
from proxy.governance.keys import KeyRing
from proxy.jobs.labels import Labels
from proxy.jobs.tracker import JobTracker, Replica
from proxy.jobs.watcher import Watcher
from proxy.pipeline import Pipeline
from proxy.roster import Roster
from proxy.stores.base import Store
from proxy.telemetry.store_gauges import StoreGauges
from proxy.upstream.attempts import Outcome
from proxy.upstream.coalesce import Coalescer


@dataclass
class Runtime:
    catalog: Catalog
    pinner: Pinner
    labels: Labels
    replica: Replica
    schemas: SchemaRegistry | None = None  # the upstream's published schemas, pinned
    accounts: AccountBook = field(default_factory=lambda: AccountBook((), None))
    store: Store | None = None
    keyring: KeyRing | None = None
    budgets: BudgetBook | None = None
    tracker: JobTracker | None = None
    watcher: Watcher | None = None
    gauges: StoreGauges | None = None  # the store-read gauges, in the process exporting them
    roster: Roster = field(default_factory=Roster)  # the long-running components
    admission: AdmissionDesk | None = None  # the admission queue, when enabled
    pipeline: Pipeline = field(default_factory=Pipeline)
    polls: Coalescer[Outcome] = field(default_factory=Coalescer)
    rng: random.Random = field(default_factory=random.Random)

    def open_store(self) -> Store:
        """The store, for the admin API: 503 until start-up has opened it."""
        if self.store is None:
            raise ServiceUnavailable("the store is not open yet")
        return self.store
