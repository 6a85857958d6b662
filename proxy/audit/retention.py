"""Pruning the audit trail: only rows older than ``audit.retention_days``, oldest first.

The store deletes a prefix of the chain whose every row is older than the cut-off and keeps
the last deleted row's sequence number and hash as the chain's anchor, so ``audit verify``
checks what remains from there. A row younger than the retention is never deleted, nor any
row after it.
"""

from __future__ import annotations

from proxy.stores.base import AuditStore

BATCH = 1000


async def prune(store: AuditStore, retention_days: float, now: float, batch: int = BATCH) -> int:
    """Delete every row older than ``retention_days`` (in batches); how many."""
    cutoff = now - retention_days * 86400
    total = 0
    while True:
        deleted = await store.prune_audit(cutoff, batch, now)
        total += deleted
        if deleted < batch:
            return total
