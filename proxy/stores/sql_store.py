"""Every operation of ``Store``, declared once for both SQL engines.

``SqlStore`` composes the operation mixins (one module per table group) and the
migrations; an engine (``proxy.stores.sqlite``, ``proxy.stores.postgres``) adds only how
it connects, opens transactions, probes and closes. What differs in SQL between the two
is a field of ``proxy.stores._sql.Dialect``.
"""

from __future__ import annotations

from proxy.stores import migrations
from proxy.stores._admission import AdmissionMixin
from proxy.stores._api_jobs import ApiJobsMixin
from proxy.stores._audit import AuditMixin
from proxy.stores._balance import BalanceMixin
from proxy.stores._budget_defs import BudgetDefinitionsMixin
from proxy.stores._budgets import BudgetsMixin
from proxy.stores._idempotency import IdempotencyMixin
from proxy.stores._intents import IntentsMixin
from proxy.stores._job_upkeep import JobUpkeepMixin
from proxy.stores._jobs import JobsMixin
from proxy.stores._leases import LeasesMixin
from proxy.stores._ledger_csv import LedgerCsvMixin
from proxy.stores._ledger_reads import LedgerReadsMixin
from proxy.stores._media_files import MediaFilesMixin
from proxy.stores._refusals import RefusalsMixin
from proxy.stores._schemas import SchemasMixin
from proxy.stores._settlements import SettlementsMixin
from proxy.stores._vkeys import VirtualKeysMixin
from proxy.stores._webhooks import WebhooksMixin

RECORD_MIGRATION = "INSERT INTO schema_version (version, name, checksum) VALUES ($1, $2, $3)"


class SqlStore(
    AdmissionMixin,  # first: it builds on IntentsMixin
    IntentsMixin,
    JobsMixin,
    LedgerReadsMixin,
    LedgerCsvMixin,
    IdempotencyMixin,
    VirtualKeysMixin,
    BudgetsMixin,
    BudgetDefinitionsMixin,
    RefusalsMixin,
    JobUpkeepMixin,
    LeasesMixin,
    WebhooksMixin,
    BalanceMixin,
    SettlementsMixin,
    SchemasMixin,
    MediaFilesMixin,
    ApiJobsMixin,
    AuditMixin,
):
    """``Store``'s operations and migrations over an engine's connections (``SqlBase``)."""

    async def migrate(self) -> int:
        """Apply pending migrations in one write transaction (under the dialect's migration
        lock, if any), so replicas opening at once apply each exactly once; the version after."""
        known = migrations.load(self.dialect.name)
        async with self._write() as tx:
            if self.dialect.migration_lock:
                await tx.execute(
                    self.dialect.sql(self.dialect.migration_lock), migrations.ADVISORY_LOCK_KEY
                )
            await tx.execute(migrations.SCHEMA_VERSION_DDL)
            rows = await tx.fetch("SELECT version, checksum FROM schema_version")
            for migration in migrations.pending(known, {r["version"]: r["checksum"] for r in rows}):
                script = migration.sql
                statements = (
                    migrations.split_statements(script) if self.dialect.split_scripts else [script]
                )
                for statement in statements:
                    await tx.execute(statement)
                await tx.execute(
                    self.dialect.sql(RECORD_MIGRATION),
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        return len(known)

    async def schema_version(self) -> int:
        """The highest migration applied to this database."""
        async with self._read() as tx:
            row = await tx.fetchrow("SELECT MAX(version) AS v FROM schema_version")
        return int(row["v"]) if row and row["v"] is not None else 0
