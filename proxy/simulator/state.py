"""What the simulated upstream remembers: tasks, their lifecycle, billing, counters.

Every status is computed lazily from the injected clock, so nothing runs in the
background. A task is created with its whole future fixed (when it starts
processing, when it ends, whether it ends ``success``, ``failed`` or ``cancelled``);
asking at a later time only reveals more of it (``Simulator.cancel`` is the one way to
change it: it ends the task now). Statuses move one way, even if a test clock
were moved backwards: the furthest status ever reported is remembered.

Billing: a task is billed exactly once, at the moment it reaches ``success``
(also ``failed`` when ``bill_failed``; ``cancelled`` never), in integer
micro-dollars. A team's balance is its initial balance plus its top-ups minus what
was billed. A submit is refused when
the *available* balance (balance minus the cost of tasks already accepted and
not yet billed) is below the task's cost, so the balance never goes negative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from proxy.simulator.media_shape import OutputShape
from proxy.simulator.spec import Kind

Status = Literal["pending", "processing", "success", "failed", "cancelled"]
Outcome = Literal["success", "failed", "cancelled"]
RouteKind = Literal["submit", "poll", "models", "validate", "balance", "media", "schema", "other"]
ROUTE_KINDS: tuple[RouteKind, ...] = (
    "submit",
    "poll",
    "models",
    "validate",
    "balance",
    "media",
    "schema",
    "other",
)
"""``schema``: the schema origin's ``api_schema`` requests (a listener of their own)."""
_RANK: dict[Status, int] = {
    "pending": 0,
    "processing": 1,
    "success": 2,
    "failed": 2,
    "cancelled": 2,
}


@dataclass(slots=True)
class Task:
    """One accepted task with its predetermined future."""

    task_id: str
    slug: str
    model_id: str
    kind: Kind
    team: str
    created_at: float
    processing_at: float
    done_at: float
    outcome: Outcome
    cost_micros: int
    outputs: int = 1
    failure_message: str = ""
    expired: bool = False
    billed: bool = False
    body: dict[str, Any] = field(default_factory=dict)
    shape: OutputShape = field(default_factory=lambda: OutputShape("video", "mp4"))
    _seen: Status = "pending"

    def status_at(self, now: float) -> Status:
        """The status at ``now``; never earlier than a status already reported."""
        if now >= self.done_at:
            status: Status = self.outcome
        elif now >= self.processing_at:
            status = "processing"
        else:
            status = "pending"
        if _RANK[status] < _RANK[self._seen]:
            return self._seen
        self._seen = status
        return status

    def expires_at(self, retention: float) -> float:
        """When the task stops answering polls (404): ``retention`` after it finished."""
        return self.done_at + retention

    def is_active(self, now: float) -> bool:
        """Pending or processing (counts against the concurrency limit)."""
        return self.status_at(now) in ("pending", "processing")

    @property
    def billable(self) -> bool:
        return self.outcome == "success"

    def charged(self, bill_failed: bool) -> bool:
        """Whether the task is billed: a success, or a failure when failures are billed."""
        return self.outcome == "success" or (self.outcome == "failed" and bill_failed)


@dataclass(frozen=True, slots=True)
class BillingRecord:
    """One charge the upstream made for a finished task."""

    task_id: str
    slug: str
    team: str
    amount_micros: int
    billed_at: float
    status: Status

    def as_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "slug": self.slug,
            "team": self.team,
            "amount_micros": self.amount_micros,
            "billed_at": self.billed_at,
            "status": self.status,
        }


@dataclass(slots=True)
class RequestRecord:
    """One request the simulator received (control endpoints excluded)."""

    method: str
    path: str
    route: RouteKind
    time: float
    headers: dict[str, str]
    fault: str | None = None
    status: int | None = None
    """HTTP status answered; ``None`` while in flight or when the connection was dropped."""


@dataclass(slots=True)
class Counters:
    """What a test asserts on to count upstream traffic."""

    requests: dict[RouteKind, int] = field(default_factory=lambda: dict.fromkeys(ROUTE_KINDS, 0))
    submits_received: int = 0
    tasks_created: int = 0
    concurrency_refusals: int = 0  # submits refused 429 for the team's concurrency limit
    rate_limit_refusals: int = 0  # requests refused 429 for a requests-per-minute window
    upload_refusals: int = 0  # uploads refused 429 for the concurrent-upload limit
    faults_applied: dict[str, int] = field(default_factory=dict)

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "total_requests": self.total_requests,
            "submits_received": self.submits_received,
            "tasks_created": self.tasks_created,
            "concurrency_refusals": self.concurrency_refusals,
            "rate_limit_refusals": self.rate_limit_refusals,
            "upload_refusals": self.upload_refusals,
            "faults_applied": dict(self.faults_applied),
        }


@dataclass(slots=True)
class MediaFile:
    """An uploaded media file."""

    file_id: str
    team: str
    filename: str
    content_type: str
    size: int
    created_at: float
    url: str

    def as_json(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "type": self.content_type,
            "url": self.url,
            "filename": self.filename,
            "size": self.size,
            "created_at": self.created_at,
        }


@dataclass(slots=True)
class Accounts:
    """Tasks and money, per team."""

    initial_micros: int
    initial_by_team: dict[str, int] = field(default_factory=dict)  # teams starting elsewhere
    tasks: dict[str, Task] = field(default_factory=dict)
    records: list[BillingRecord] = field(default_factory=list)
    bill_failed: bool = False
    # Indexes kept alongside ``tasks`` so a request costs O(tasks in flight), not O(all tasks).
    _unbilled: dict[str, Task] = field(default_factory=dict)
    _open: dict[str, Task] = field(default_factory=dict)
    _billed: Counter[str] = field(default_factory=Counter)
    _held: Counter[str] = field(default_factory=Counter)
    _credited: Counter[str] = field(default_factory=Counter)

    def add(self, task: Task) -> None:
        """Accept a task: it counts against concurrency until done, and is held until billed."""
        self.tasks[task.task_id] = task
        self._open[task.task_id] = task
        if self._charges(task):
            self._unbilled[task.task_id] = task
            self._held[task.team] += task.cost_micros

    def settle(self, now: float) -> None:
        """Bill every task that has finished by ``now`` and was not billed yet."""
        due = [task for task in self._unbilled.values() if now >= task.done_at]
        for task in sorted(due, key=lambda t: (t.done_at, t.created_at)):
            task.billed = True
            del self._unbilled[task.task_id]
            self._held[task.team] -= task.cost_micros
            self._billed[task.team] += task.cost_micros
            record = BillingRecord(
                task.task_id, task.slug, task.team, task.cost_micros, task.done_at, task.outcome
            )
            self.records.append(record)

    def _charges(self, task: Task) -> bool:
        return task.charged(self.bill_failed)

    def cancel(self, task: Task, now: float) -> None:
        """End ``task`` as ``cancelled`` at ``now``: never billed, its hold released."""
        task.outcome = "cancelled"
        task.done_at = now
        task.processing_at = min(task.processing_at, now)
        if self._unbilled.pop(task.task_id, None) is not None:
            self._held[task.team] -= task.cost_micros

    def credit(self, team: str, micros: int) -> None:
        """A top-up: ``team``'s balance grows by ``micros``."""
        self._credited[team] += micros

    def billed_micros(self, team: str | None = None) -> int:
        if team is None:
            return sum(self._billed.values())
        return self._billed[team]

    def balance_micros(self, team: str) -> int:
        initial = self.initial_by_team.get(team, self.initial_micros)
        return max(0, initial + self._credited[team] - self.billed_micros(team))

    def held_micros(self, team: str) -> int:
        """Cost of accepted, not yet billed tasks that will be charged."""
        return self._held[team]

    def available_micros(self, team: str) -> int:
        return self.balance_micros(team) - self.held_micros(team)

    def active(self, team: str, now: float) -> int:
        """Pending or processing tasks of ``team`` at ``now`` (finished ones leave the index)."""
        count = 0
        for task_id, task in list(self._open.items()):
            if task.expired or not task.is_active(now):
                del self._open[task_id]
            elif task.team == team:
                count += 1
        return count

    def max_active(self, team: str) -> int:
        """The most tasks of ``team`` pending or processing at any one instant so far."""
        edges: list[tuple[float, int]] = []
        for task in self.tasks.values():
            if task.team == team:
                edges += [(task.created_at, 1), (task.done_at, -1)]
        peak = running = 0
        for _, step in sorted(edges):  # at a tie a task ending comes first (-1 < 1)
            running += step
            peak = max(peak, running)
        return peak

    def live(self, now: float, retention: float | None = None) -> Iterator[Task]:
        for task in self.tasks.values():
            if task.expired:
                continue
            if retention is not None and now >= task.expires_at(retention):
                continue
            yield task

    def teams(self) -> set[str]:
        return {t.team for t in self.tasks.values()} | {r.team for r in self.records}
