"""A transaction other store calls join: the audit trail's "same transaction as the change".

``SqlBase.joining(tx)`` makes ``tx`` the transaction of every ``_write`` and ``_read`` of the
same store in the same task (a context variable), until it ends: an admin action's reads
(its "before"), its changes and its audit row commit together or not at all. A write that
joins runs in a ``SAVEPOINT``, so a statement a store method expects may fail (and catches)
rolls back only that method's statements, as in a transaction of its own.

Tasks started inside copy the context; a joined transaction that has ended is never used
again (``open`` is cleared), so such a task opens transactions of its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from proxy.stores._sql_tx import Tx

_SAVEPOINT = "joined_write"


@dataclass(slots=True)
class _Joined:
    owner: object
    tx: Tx
    open: bool = True


_CURRENT: ContextVar[_Joined | None] = ContextVar("store_joined_tx", default=None)


def joined(owner: object) -> Tx | None:
    """The transaction ``owner``'s calls join in this task, if one is open."""
    current = _CURRENT.get()
    if current is None or not current.open or current.owner is not owner:
        return None
    return current.tx


@contextmanager
def joining(owner: object, tx: Tx) -> Iterator[None]:
    """Within the block, ``owner``'s reads and writes in this task run in ``tx``."""
    current = _Joined(owner, tx)
    token = _CURRENT.set(current)
    try:
        yield
    finally:
        current.open = False
        _CURRENT.reset(token)


@asynccontextmanager
async def savepoint(tx: Tx) -> AsyncIterator[Tx]:
    """``tx`` inside a savepoint: released on success, rolled back to on failure."""
    await tx.execute(f"SAVEPOINT {_SAVEPOINT}")
    try:
        yield tx
    except BaseException:
        await tx.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
        await tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        raise
    await tx.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
