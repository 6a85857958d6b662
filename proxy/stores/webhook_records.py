"""Records of the completion webhooks and the balance reconciliation tables."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from proxy.stores.records import JobRecord


class DeliveryState(StrEnum):
    PENDING = "pending"  # due at next_attempt_at (or leased by a worker until then)
    DELIVERED = "delivered"  # the receiver answered 2xx
    DEAD = "dead"  # dead-lettered after the last attempt failed; an operator may redeliver


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One completion webhook for one terminal job."""

    delivery_id: str
    task_id: str
    caller: str
    team: str | None
    url: str
    body: str
    state: DeliveryState
    attempts: int
    created_at: float
    next_attempt_at: float | None = None
    delivered_at: float | None = None
    last_status: int | None = None
    last_error: str | None = None
    lease_owner: str | None = None


@dataclass(frozen=True, slots=True)
class RenderedDelivery:
    """A completion webhook as its feature renders it: the id it goes by on every retry
    (``Webhook-Id``) and the exact text sent."""

    delivery_id: str
    body: str


RenderDelivery = Callable[[JobRecord], RenderedDelivery]
"""How the webhook feature renders a terminal job's delivery (``proxy.webhooks.document``).

Given to the store when it is opened: the store writes the delivery inside the transaction
that makes the job terminal, but what the delivery says is the feature's business."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BalanceReading:
    """The last balance read for a team, and the reconciliation totals since the first."""

    team: str
    balance_micros: int
    read_at: float
    first_read_at: float
    unexplained_micros: int = 0  # drops the ledger does not explain, summed over windows
    topup_micros: int = 0  # rises (and the ledger spend they hid), summed over windows
    window_drop_micros: int = 0  # the last window: how much the balance fell
    window_ledger_micros: int = 0  # ... what the ledger settled in it
    window_unexplained_micros: int = 0  # ... and the difference (never below zero)
    settled_through: int = 0  # the settlement journal's sequence counted up to


@dataclass(frozen=True, slots=True)
class SettledSince:
    """The settlement journal after one sequence number: ``micros`` settled, up to ``through``."""

    through: int
    micros: int
