"""The simulated upstream's behaviour, without HTTP: accounts, tasks, money, media.

``Simulator`` is the object tests hold: plain methods a test can call with a controllable
clock. Its HTTP faces are built from it, and import it, never the other way round:
``build_app(sim)`` (the API origin, ``proxy.simulator.app``) and ``build_schema_app(sim)``
(the schema origin, ``proxy.simulator.schema_app``).
What is published and charged per model lives in ``Simulator.listing``
(``proxy.simulator.listing``), team limits in ``proxy.simulator.limits``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from proxy.simulator.answers import task_answer
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.faults import OUTCOME_FAULTS, FaultPlan
from proxy.simulator.limits import RateWindows, TeamLimits, WindowState, team_limits
from proxy.simulator.listing import Listing
from proxy.simulator.media_shape import output_shape
from proxy.simulator.pricing import MICROS_PER_USD, output_count
from proxy.simulator.spec import ModelSpec
from proxy.simulator.state import (
    Accounts,
    BillingRecord,
    Counters,
    MediaFile,
    Outcome,
    RequestRecord,
    RouteKind,
    Status,
    Task,
)

if TYPE_CHECKING:
    pass

DEFAULT_TEAM = "default"
TASK_FAILED_MESSAGE = "Generation failed: the upstream provider could not generate the output"
CONTENT_POLICY_MESSAGE = (
    "Content policy violation: the prompt or input media was flagged by the safety filter"
)
CANCELLED_MESSAGE = "Task cancelled: the task was cancelled before it finished"


@dataclass(slots=True)
class UpstreamError(Exception):
    """A refusal rendered as ``{"code": status, "message": message}``."""

    status: int
    message: str
    headers: Mapping[str, str] | None = None


class Simulator:
    """A faithful, deterministic stand-in for api.modellix.ai."""

    def __init__(
        self, config: SimulatorConfig | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config or SimulatorConfig()
        self.clock = clock
        self.closing: asyncio.Event | None = None
        self._changed = asyncio.Event()
        self.reset()

    def reset(self) -> None:
        """Forget every task, charge, file, counter and queued fault; re-seed."""
        micros = int(self.config.initial_balance_usd * MICROS_PER_USD)
        by_team = {
            team: int(spec.balance_usd * MICROS_PER_USD)
            for team, spec in self.config.teams.items()
            if spec.balance_usd is not None
        }
        self.accounts = Accounts(
            initial_micros=micros, initial_by_team=by_team, bill_failed=self.config.bill_failed
        )
        self.faults = FaultPlan(self.config)
        self.counters = Counters()
        self.request_log: list[RequestRecord] = []
        self.media: dict[str, MediaFile] = {}
        self.uploads_in_flight: Counter[str] = Counter()
        self.listing = Listing(self.config)
        self.windows = RateWindows()
        self.report_billing = self.config.report_billing
        """Live switch: ``data.billing`` in task answers (``POST /_sim/switches``)."""
        self._topups: dict[str, Decimal] = dict(self.config.topups_usd)
        self._ids = random.Random(f"{self.config.seed}:ids")

    # -- what tests read --------------------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, Task]:
        return self.accounts.tasks

    def status(self, task_id: str) -> Status:
        """The current status of a task (expired tasks included)."""
        return self.accounts.tasks[task_id].status_at(self.clock())

    def settle(self) -> None:
        """Bill every task finished by now (happens on every request too)."""
        self.accounts.settle(self.clock())

    def billing_records(self) -> list[BillingRecord]:
        self.settle()
        return list(self.accounts.records)

    def billed_total_micros(self, team: str | None = None) -> int:
        self.settle()
        return self.accounts.billed_micros(team)

    def balance_micros(self, team: str = DEFAULT_TEAM) -> int:
        self.settle()
        return self.accounts.balance_micros(team)

    def balance_usd(self, team: str = DEFAULT_TEAM) -> Decimal:
        return Decimal(self.balance_micros(team)) / MICROS_PER_USD

    def requests(
        self, route: RouteKind | None = None, method: str | None = None
    ) -> list[RequestRecord]:
        """Logged requests, optionally only one route kind and/or method."""
        return [
            r
            for r in self.request_log
            if (route is None or r.route == route) and (method is None or r.method == method)
        ]

    # -- what tests do ----------------------------------------------------------------------

    def touch(self) -> None:
        """Wake ``wait_until`` callers: a request arrived, was answered or made a task."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds, re-checked whenever the state changes.

        Wrap it in ``asyncio.timeout()``: it waits for as long as it takes.
        """
        while not predicate():
            await self._changed.wait()

    def inject(self, name: str, count: int = 1, route: str = "any") -> None:
        """Make the next ``count`` requests on ``route`` meet fault ``name``."""
        self.faults.inject(name, count, route)

    def expire(self, task_id: str | None = None) -> None:
        """Expire one task (or all): polls answer 404 as if retention had passed."""
        self.settle()
        for task in self.accounts.tasks.values():
            if task_id is None or task.task_id == task_id:
                task.expired = True

    # -- upstream behaviour -----------------------------------------------------------------

    def authenticate(self, authorization: str | None) -> str:
        """The team of a ``Bearer`` key, or ``UpstreamError`` 401."""
        if not authorization:
            raise UpstreamError(401, "Authentication failed: missing Authorization header")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise UpstreamError(401, "Authentication failed: expected 'Bearer <API key>'")
        key = key.strip()
        if not key:
            raise UpstreamError(401, "Authentication failed: API key is empty")
        if self.config.api_keys is None:
            return DEFAULT_TEAM
        team = self.config.api_keys.get(key)
        if team is None:
            raise UpstreamError(401, "Authentication failed: invalid or expired API key")
        return team

    # -- teams: limits and money ------------------------------------------------------------

    def topups_usd(self, team: str) -> Decimal:
        """``team``'s total top-ups (its funding tier's measure): its starting balance unless
        ``topups_usd`` says otherwise."""
        spec = self.config.teams.get(team)
        start = spec.balance_usd if spec is not None else None
        return self._topups.get(team, self.config.initial_balance_usd if start is None else start)

    def limits(self, team: str) -> TeamLimits:
        """``team``'s concurrency and request limits now (``proxy.simulator.limits``), with
        its own ``teams`` entry's over them."""
        limits = team_limits(self.config, self.topups_usd(team))
        spec = self.config.teams.get(team)
        if spec is None:
            return limits
        return dataclasses.replace(
            limits,
            concurrency=limits.concurrency if spec.concurrency is None else spec.concurrency,
            rpm=limits.rpm if spec.rpm is None else spec.rpm,
        )

    def serves(self, team: str, slug: str) -> bool:
        """Whether ``team`` is served ``slug`` (its ``teams`` entry's ``models``, if any)."""
        spec = self.config.teams.get(team)
        return spec is None or spec.models is None or slug.lower() in spec.models

    def top_up(self, team: str, usd: Decimal) -> None:
        """Add ``usd`` to ``team``'s balance and top-ups (which may raise its tier)."""
        if not usd.is_finite() or usd <= 0:
            raise ValueError("a top-up must be a positive amount")
        self._topups[team] = self.topups_usd(team) + usd
        self.accounts.credit(team, int(usd * MICROS_PER_USD))

    def take_request(self, team: str, kling: bool = False) -> WindowState | None:
        """Use one of ``team``'s requests this minute (and one of its Kling requests).

        The state to report in ``X-RateLimit-*`` (``None`` when no limit is in force),
        or ``UpstreamError`` 429 when the window is used up.
        """
        limits = self.limits(team)
        now = self.clock()
        shown: WindowState | None = None
        for key, limit, what in (
            (team, limits.rpm, f"{limits.rpm} requests per minute"),
            (f"{team}\0kling", limits.kling_rpm if kling else 0, "Kling endpoints allow "
             f"{limits.kling_rpm} requests per minute"),
        ):  # fmt: skip
            if not limit:
                continue
            state = self.windows.take(key, limit, now)
            if not state.allowed:
                self.counters.rate_limit_refusals += 1
                raise UpstreamError(429, f"Rate limit exceeded: {what}", state.headers())
            if shown is None or state.remaining < shown.remaining:
                shown = state
        return shown

    # -- tasks ------------------------------------------------------------------------------

    def create_task(
        self, team: str, spec: ModelSpec, body: Mapping[str, Any], fault: str | None = None
    ) -> Task:
        """Accept a task, or refuse it 429 (concurrency) / 402 (balance)."""
        now = self.clock()
        self.settle()
        limit = self.limits(team).concurrency
        if limit and self.accounts.active(team, now) >= limit:
            self.counters.concurrency_refusals += 1
            raise UpstreamError(
                429,
                f"Rate limit exceeded: concurrent task limit of {limit} reached",
                rate_limit_headers(now),
            )
        offer = self.listing.get(spec.slug)
        defaults = offer.defaults
        cost = offer.cost_micros(body)
        available = self.accounts.available_micros(team)
        if available < cost:
            raise UpstreamError(
                402,
                f"Insufficient balance: available ${_usd(available)} is below "
                f"the task cost ${_usd(cost)}",
            )
        outcome_fault = fault if fault in OUTCOME_FAULTS else None
        outcome_fault = outcome_fault or self.faults.draw_outcome()
        processing_at = now + self.config.pending_seconds
        task = Task(
            task_id=self._new_task_id(),
            slug=spec.slug,
            model_id=spec.model_id,
            kind=spec.kind,
            team=team,
            created_at=now,
            processing_at=processing_at,
            done_at=processing_at + self.faults.processing_seconds(),
            outcome=_OUTCOMES.get(outcome_fault or "", "success"),
            cost_micros=cost,
            outputs=output_count(spec, body, defaults),
            failure_message=_MESSAGES.get(outcome_fault or "", TASK_FAILED_MESSAGE),
            body=dict(body),
            shape=output_shape(spec, body, defaults),
        )
        self.accounts.add(task)
        self.counters.tasks_created += 1
        self.touch()
        return task

    def lookup(self, task_id: str, team: str | None = None) -> Task:
        """A live task, or ``UpstreamError`` 404 for unknown and expired ones, and (``team``
        given) for another team's: a task is seen only with a key of the team that bought it
        (the simulator's reading of team-scoped keys)."""
        self.settle()
        task = self.accounts.tasks.get(task_id)
        now = self.clock()
        if task is None or self._gone(task, now) or (team is not None and task.team != team):
            raise UpstreamError(404, f"Task not found: {task_id}")
        return task

    def cancel(self, task_id: str) -> Task:
        """End a pending or processing task now as ``cancelled`` (never billed).

        ``UpstreamError`` 404 for an unknown task, 409 for one already finished.
        """
        task = self.lookup(task_id)
        now = self.clock()
        if not task.is_active(now):
            raise UpstreamError(409, f"Conflict: task {task_id} is already {task.status_at(now)}")
        self.accounts.cancel(task, now)
        task.failure_message = CANCELLED_MESSAGE
        self.touch()
        return task

    def _gone(self, task: Task, now: float) -> bool:
        return task.expired or now >= task.expires_at(self.config.retention_seconds)

    def task_payload(self, task: Task) -> dict[str, Any]:
        """The poll answer for a task at the current time (``proxy.simulator.answers``).

        Billed at the same instant the status is read: a task that finished since the last
        settlement answers ``success`` together with its ``billing``, never without it.
        """
        now = self.clock()
        self.accounts.settle(now)
        return task_answer(
            task,
            now,
            retention=self.config.retention_seconds,
            file_origin=self.config.file_origin,
            report_billing=self.report_billing,
        )

    def _new_task_id(self) -> str:
        while True:
            task_id = f"{self.config.task_id_prefix}{self._ids.getrandbits(64):016x}"
            if task_id not in self.accounts.tasks:
                return task_id

    def new_file_id(self) -> str:
        return f"file-{self._ids.getrandbits(64):016x}"

    def snapshot(self) -> dict[str, Any]:
        """Counters, money and task counts, as ``GET /_sim/state`` shows them."""
        self.settle()
        now = self.clock()
        by_status = dict.fromkeys(("pending", "processing", "success", "failed", "cancelled"), 0)
        expired = 0
        for task in self.accounts.tasks.values():
            if self._gone(task, now):
                expired += 1
            else:
                by_status[task.status_at(now)] += 1
        teams = self.accounts.teams() | {DEFAULT_TEAM} | set(self.config.teams)
        return {
            "counters": self.counters.as_json(),
            "balance": float(self.balance_usd()),
            "balances_micros": {team: self.accounts.balance_micros(team) for team in sorted(teams)},
            "billed_total_micros": self.accounts.billed_micros(),
            "billed_micros": {team: self.accounts.billed_micros(team) for team in sorted(teams)},
            "billing_records": len(self.accounts.records),
            "max_active": {team: self.accounts.max_active(team) for team in sorted(teams)},
            "limits": {team: self.limits(team).as_json() for team in sorted(teams)},
            "report_billing": self.report_billing,
            "tasks": {**by_status, "expired": expired, "total": len(self.accounts.tasks)},
            "faults_queued": [i.as_json() for i in self.faults.queue],
            "media_files": len(self.media),
            "time": now,
        }


_OUTCOMES: dict[str, Outcome] = {
    "task_failed": "failed",
    "content_policy": "failed",
    "task_cancelled": "cancelled",
}
_MESSAGES = {"content_policy": CONTENT_POLICY_MESSAGE, "task_cancelled": CANCELLED_MESSAGE}


def rate_limit_headers(now: float) -> dict[str, str]:
    """429 headers: the window resets at the next minute boundary."""
    reset = (int(now) // 60 + 1) * 60
    return {"X-RateLimit-Reset": str(reset), "X-RateLimit-Remaining": "0"}


def _usd(micros: int) -> str:
    return f"{Decimal(micros) / MICROS_PER_USD:.4f}"
