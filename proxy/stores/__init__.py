"""Where the proxy keeps jobs, leases, idempotency keys, virtual keys, budgets and refusals.

``open_store(url)`` picks the backend from the URL:

* ``sqlite:///relative/path.db``, ``sqlite:////absolute/path.db`` or
  ``sqlite:///:memory:`` (tests): the embedded default, one process;
* ``postgresql://user@host:port/db`` (or ``postgres://``): shared by replicas.

The protocol is in ``proxy.stores.base``, the records in ``proxy.stores.records``.
"""

from __future__ import annotations

from proxy.stores.base import (
    BudgetDefinitionStore,
    BudgetStore,
    DuplicateJobError,
    DuplicateKeyError,
    IdempotencyStore,
    JobNotFoundError,
    JobStore,
    MigrationError,
    RefusalStore,
    Store,
    StoreError,
    StoreUnavailableError,
    VirtualKeyStore,
    WatcherStore,
)
from proxy.stores.webhook_records import RenderDelivery

__all__ = [
    "BudgetDefinitionStore",
    "BudgetStore",
    "DuplicateJobError",
    "DuplicateKeyError",
    "IdempotencyStore",
    "JobNotFoundError",
    "JobStore",
    "MigrationError",
    "RefusalStore",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "VirtualKeyStore",
    "WatcherStore",
    "open_store",
    "sqlite_path",
]

_SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> str:
    """The file path a ``sqlite:///`` URL names (``sqlite:////abs`` is absolute)."""
    if not url.startswith(_SQLITE_PREFIX) or len(url) == len(_SQLITE_PREFIX):
        raise ValueError(f"not a sqlite:///path URL: {url!r}")
    return url[len(_SQLITE_PREFIX) :]


async def open_store(
    url: str,
    *,
    group_commit_max_writes: int | None = None,
    render_delivery: RenderDelivery | None = None,
) -> Store:
    """Open and migrate the store ``url`` names; call ``close()`` when done.

    ``group_commit_max_writes`` bounds how many writers share one SQLite ``COMMIT``.
    ``render_delivery`` (``proxy.webhooks.document.render_delivery``) renders the completion
    webhook the store records when a job with a callback URL turns terminal; a process that
    may make such a job terminal must pass it (without it, that transaction fails).
    """
    if url.startswith("sqlite:"):
        from proxy.stores.sqlite import SqliteStore

        if group_commit_max_writes is None:
            return await SqliteStore.open(sqlite_path(url), render_delivery=render_delivery)
        return await SqliteStore.open(
            sqlite_path(url),
            group_commit_max_writes=group_commit_max_writes,
            render_delivery=render_delivery,
        )
    if url.startswith(("postgresql://", "postgres://")):
        from proxy.stores.postgres import PostgresStore

        return await PostgresStore.open(url, render_delivery=render_delivery)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")
