"""Start-up of governance: the key ring, the budget book, and the config file's budgets."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from proxy.accounts import AccountBook
from proxy.config import BudgetSpec, Settings
from proxy.governance.budgets import BudgetBook, BudgetBookStore
from proxy.governance.keys import KeyRing
from proxy.money import from_decimal
from proxy.stores.base import VirtualKeyStore
from proxy.stores.records import Budget


class GovernanceStore(BudgetBookStore, VirtualKeyStore, Protocol):
    """The budget book's store (the config's budgets upserted into it) and the key ring's."""


def budget_from_spec(spec: BudgetSpec, now: float) -> Budget:
    return Budget(
        name=spec.name,
        scope=spec.scope,
        subject=spec.subject,
        window=spec.window,
        limit_micros=from_decimal(spec.limit_usd),
        hard=spec.hard,
        created_at=now,
        updated_at=now,
    )


async def start_governance(
    store: GovernanceStore,
    settings: Settings,
    accounts: AccountBook,
    clock: Callable[[], float] = time.time,
) -> tuple[KeyRing, BudgetBook]:
    """Upsert the budgets the config file declares, and build the key ring and budget book."""
    now = clock()
    for spec in settings.governance.budgets:
        await store.put_budget(budget_from_spec(spec, now))
    keyring = KeyRing(store, settings.keys, accounts, clock)
    book = BudgetBook(store, settings.governance.timezone, settings.governance.cache_seconds, clock)
    return keyring, book
