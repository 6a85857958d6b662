"""Balance reconciliation: money that left the upstream balance without the ledger seeing it.

Every ``balance.interval_seconds`` one replica (the ``balance`` lease) reads
``GET /api/v1/team/balance`` with the watcher key (``upstream.api_key``) and compares the
drop since the previous reading (kept in the store, so restarts and other replicas carry
on from it) with the spend the ledger settled since then (of ``balance.ledger_teams`` if set,
else every job): the settlement journal's rows after the sequence the previous reading counted
up to. The journal is in commit order (``proxy.stores._settlements``), so every settlement is
counted in exactly one window, whatever commits late: never by a time taken before a commit.

* The balance fell by *D*, the ledger settled *L*: the window's unexplained spend is
  *D - L*. The running total (``modellix_proxy_unexplained_spend_usd``) adds it up since
  the first reading. It may be negative for a window (the upstream billed a job before
  the proxy saw it turn terminal; the next window then shows the matching surplus), so
  look at the total, not one window.
* The balance rose: a top-up. Its amount is at least the rise plus the ledger spend of
  the window (spend the top-up hid); that is added to the top-up total and the window
  counts as explained (a window with both a top-up and spend outside the proxy hides that
  spend: the reading cannot tell them apart).

Unexplained spend is spend through another path (a key used directly, another tool, a job
the proxy lost). It needs the watcher key to belong to the upstream team the ledger's
jobs bill to; the ``balance.team`` label names it.

With several Modellix accounts (``upstream.accounts``) each account is reconciled on its
own: its balance read with its key, against the settlements of the jobs billed to it (the
journal records each job's account), under its own lease (``balance:<account>``) and
labelled with the account's name.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal, InvalidOperation
from typing import Protocol

import structlog

from proxy.accounts import AccountBook
from proxy.config import Settings
from proxy.money import from_decimal, sample
from proxy.stores.base import BalanceStore, LeaseStore
from proxy.stores.webhook_records import BalanceReading
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import TransportFailure, Upstream

log = structlog.get_logger("proxy.balance")
LEASE = "balance"
BALANCE_PATH = "/api/v1/team/balance"
ReadBalance = Callable[[], Awaitable[int]]


class BalanceUnavailable(Exception):
    """The balance could not be read (transport failure, refusal, or a malformed answer)."""


class ReconcileStore(BalanceStore, LeaseStore, Protocol):
    """What reconciliation needs of the store."""


def parse_balance(body: bytes) -> int:
    """Micro-dollars from ``{"code": 0, "data": {"balance": 12.3456}}``."""
    try:
        doc = json.loads(body)
        value = doc["data"]["balance"]
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise TypeError(type(value).__name__)
        usd = Decimal(str(value))
    except (ValueError, KeyError, TypeError, InvalidOperation) as exc:
        raise BalanceUnavailable(f"malformed balance answer: {exc}") from exc
    if not usd.is_finite():
        raise BalanceUnavailable("the balance is not a finite number")
    return from_decimal(usd)


def upstream_reader(upstream: Upstream, watcher_key: str) -> ReadBalance:
    """Read the team balance once through the proxy's upstream client."""

    async def read() -> int:
        headers = {"Authorization": f"Bearer {watcher_key}", "Accept": "application/json"}
        try:
            reply = await upstream.fetch("GET", BALANCE_PATH, headers, None, "balance")
        except TransportFailure as failure:
            raise BalanceUnavailable(failure.detail) from failure
        if reply.status != 200:
            raise BalanceUnavailable(f"the upstream answered {reply.status}")
        return parse_balance(reply.body)

    return read


def next_reading(
    previous: BalanceReading | None,
    team: str,
    balance: int,
    now: float,
    ledger: int,
    settled_through: int = 0,
) -> BalanceReading:
    """The reading after ``previous`` given the balance now and the ledger spend settled since
    (up to journal sequence ``settled_through``)."""
    if previous is None:
        return BalanceReading(
            team=team,
            balance_micros=balance,
            read_at=now,
            first_read_at=now,
            settled_through=settled_through,
        )
    drop = previous.balance_micros - balance
    unexplained, topup = (drop - ledger, 0) if drop >= 0 else (0, ledger - drop)
    return BalanceReading(
        team=team,
        balance_micros=balance,
        read_at=now,
        first_read_at=previous.first_read_at,
        unexplained_micros=previous.unexplained_micros + unexplained,
        topup_micros=previous.topup_micros + topup,
        window_drop_micros=drop,
        window_ledger_micros=ledger,
        window_unexplained_micros=unexplained,
        settled_through=settled_through,
    )


class BalanceReconciler:
    """Runs a reconciliation round every ``balance.interval_seconds`` while the app runs."""

    def __init__(
        self,
        store: ReconcileStore,
        settings: Settings,
        metrics: Metrics,
        owner: str,
        read: ReadBalance,
        *,
        account: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``account``: reconcile that Modellix account's jobs only (under the label and
        lease of its name); ``None``: ``balance.team`` and ``balance.ledger_teams``."""
        self._store = store
        self._settings = settings.balance
        self._account = account
        self.label = account or settings.balance.team
        self.lease = LEASE if account is None else f"{LEASE}:{account}"
        self._teams = (settings.balance.ledger_teams or None) if account is None else None
        self._metrics = metrics
        self._owner = owner
        self._read = read
        self._clock = clock
        self.rounds = 0

    async def run(self) -> None:
        """A round, then wait the interval; until cancelled (the lease is then given up)."""
        try:
            while True:
                try:
                    await self.round()
                except asyncio.CancelledError:
                    raise
                except BalanceUnavailable as exc:
                    log.warning("balance.unavailable", owner=self._owner, error=str(exc))
                except Exception:
                    log.exception("balance.round_failed", owner=self._owner)
                await asyncio.sleep(self._settings.interval_seconds)
        finally:
            try:
                await self._store.release_lease(self.lease, self._owner)
            except Exception:  # shutting down: the lease runs out by itself
                log.warning("balance.release_failed", owner=self._owner, exc_info=True)

    async def round(self) -> BalanceReading | None:
        """One round if this replica holds the lease (and the last is old enough)."""
        s = self._settings
        now = self._clock()
        if not await self._store.acquire_lease(self.lease, self._owner, now, now + s.lease_seconds):
            return None
        previous = await self._store.get_balance_reading(self.label)
        if previous is not None and now - previous.read_at < s.interval_seconds * 0.5:
            return None  # another replica read it moments ago
        balance = await self._read()
        now = self._clock()
        # After the balance: a settlement the upstream billed before the reading but the
        # ledger settled after it lands in this window or the next, never in none.
        after = previous.settled_through if previous is not None else 0
        settled = await self._store.settled_since(after, self._teams, self._account)
        ledger = settled.micros if previous is not None else 0
        reading = next_reading(previous, self.label, balance, now, ledger, settled.through)
        await self._store.put_balance_reading(reading)
        # Hold the lease until the next round is due: one round per interval across replicas.
        await self._store.acquire_lease(self.lease, self._owner, now, now + s.interval_seconds)
        self._export(reading)
        self.rounds += 1
        if reading.window_unexplained_micros or previous is None:
            log.info(
                "balance.reconciled",
                team=self.label,
                balance_usd=sample(reading.balance_micros),
                window_drop_usd=sample(reading.window_drop_micros),
                window_ledger_usd=sample(reading.window_ledger_micros),
                window_unexplained_usd=sample(reading.window_unexplained_micros),
                unexplained_usd=sample(reading.unexplained_micros),
                topups_usd=sample(reading.topup_micros),
            )
        return reading

    def _export(self, r: BalanceReading) -> None:
        m, team = self._metrics, r.team
        m.balance.labels(team).set(sample(r.balance_micros))
        m.unexplained_spend.labels(team).set(sample(r.unexplained_micros))
        m.unexplained_window.labels(team).set(sample(r.window_unexplained_micros))
        m.balance_topups.labels(team).set(sample(r.topup_micros))
        m.balance_last_success.labels(team).set(r.read_at)


def balance_reconcilers(
    store: ReconcileStore,
    settings: Settings,
    metrics: Metrics,
    owner: str,
    upstream: Upstream,
    accounts: AccountBook,
    clock: Callable[[], float] = time.time,
) -> list[BalanceReconciler]:
    """One reconciler per Modellix account; the single-key proxy keeps ``balance.team``."""
    if not accounts.several:
        account = accounts.get(None)
        if account is None:
            return []
        read = upstream_reader(upstream, account.key)
        return [BalanceReconciler(store, settings, metrics, owner, read, clock=clock)]
    return [
        BalanceReconciler(
            store,
            settings,
            metrics,
            owner,
            upstream_reader(upstream, account.key),
            account=account.name,
            clock=clock,
        )
        for account in accounts.all()
    ]
