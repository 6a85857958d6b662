"""The invariant, computed from the outside: what the upstream sold vs. what the store holds.

Inputs are the upstream's task journal (every purchase, with the prompt it was made
for), the store's ``jobs`` and ``budget_reservations`` rows, and the client's answers.
Each logical request has a unique prompt and a unique ``Idempotency-Key``, so an
upstream task is traced to the request that bought it by its prompt.

How each figure is counted:

- ``ledger``: job rows whose task id is a task the upstream created;
- ``unknown``: job rows with status ``unknown`` (task id ``unknown:...``);
- ``lost``: per request, the tasks it bought minus those with a ledger row minus the
  ``unknown`` records carrying its idempotency key (an unknown record covers one
  purchase), floored at 0; ``unknown`` records with no idempotency key then cover
  any request's remaining tasks, one each;
- ``double_bought``: per request, tasks bought beyond the first;
- ``leaked_reservations``: budget reservations still ``reserved`` that no
  non-terminal job holds (``jobs.reservation_id``);
- ``leaked_slots``: per-key concurrency slots (reservations on a ``jobs:<key id>``
  scope) still ``reserved`` beyond what the key's non-terminal jobs hold: a slot is
  held if a non-terminal job names it (``jobs.slot_reservation_id``, when the
  column exists), otherwise counted against the key's non-terminal jobs that name no
  slot; the functional probe (submits that must fit under the cap) can raise it.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.client import Result, Tally

Row = dict[str, Any]
OPEN_STATES = frozenset({"reserved", "open", "held"})
TERMINAL = frozenset({"success", "failed", "expired"})


@dataclass
class Figures:
    """One scenario's figures; ``violations`` names every broken invariant."""

    fault: str
    store: str = ""
    submits: int = 0
    created_upstream: int = 0
    ledger: int = 0
    unknown: int = 0
    lost: int = 0
    double_bought: int = 0
    proxy_500: int = 0
    designed_5xx: int = 0
    leaked_reservations: int = 0
    leaked_slots: int = 0
    open_jobs: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    """Scenario-specific failures (e.g. a start-up that did not exit cleanly)."""

    @property
    def violations(self) -> list[str]:
        out = [
            f"{name}={value}"
            for name, value in (
                ("lost", self.lost),
                ("double_bought", self.double_bought),
                ("proxy_500", self.proxy_500),
                ("leaked_reservations", self.leaked_reservations),
                ("leaked_slots", self.leaked_slots),
            )
            if value
        ]
        return out + self.checks


def _is_unknown(job: Row) -> bool:
    return str(job.get("status")) == "unknown" or str(job.get("task_id", "")).startswith("unknown:")


def _slot_keys(reservation: Row) -> list[str]:
    """The virtual key ids of ``jobs:<key id>`` scopes a reservation holds."""
    raw = reservation.get("scopes")
    try:
        pairs = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return []
    keys: list[str] = []
    for pair in pairs or []:
        scope = str(pair[0]) if isinstance(pair, list | tuple) and pair else ""
        if scope.startswith("jobs:"):
            keys.append(scope.removeprefix("jobs:"))
    return keys


def lost_and_double(
    results: Sequence[Result], tasks: Sequence[Row], jobs: Sequence[Row]
) -> tuple[int, int, int, int]:
    """``(ledger, unknown, lost, double_bought)`` for these tasks and job rows."""
    key_of_prompt = {r.request.prompt: r.request.key for r in results}
    real_ids = {str(j["task_id"]) for j in jobs if not _is_unknown(j)}
    unknown_by_key: Counter[str] = Counter()
    unattributed = 0
    for job in jobs:
        if _is_unknown(job):
            key = job.get("idempotency_key")
            if key:
                unknown_by_key[str(key)] += 1
            else:
                unattributed += 1
    bought: defaultdict[str, list[str]] = defaultdict(list)
    for task in tasks:
        prompt = str(task.get("prompt"))
        bought[key_of_prompt.get(prompt, f"foreign:{prompt}")].append(str(task["task_id"]))
    ledger = sum(1 for t in tasks if str(t["task_id"]) in real_ids)
    lost = 0
    double = 0
    for key, task_ids in bought.items():
        double += max(0, len(task_ids) - 1)
        uncovered = sum(1 for t in task_ids if t not in real_ids)
        lost += max(0, uncovered - unknown_by_key[key])
    lost = max(0, lost - unattributed)
    unknown = sum(unknown_by_key.values()) + unattributed
    return ledger, unknown, lost, double


def leaks(jobs: Sequence[Row], reservations: Iterable[Row]) -> tuple[int, int, list[str]]:
    """``(leaked_reservations, leaked_slots, examples)`` once nothing is in flight."""
    live = [j for j in jobs if str(j.get("status")) not in TERMINAL]
    held = {str(j["reservation_id"]) for j in live if j.get("reservation_id")}
    held_slots = {str(j["slot_reservation_id"]) for j in live if j.get("slot_reservation_id")}
    slotless_live: Counter[str] = Counter(
        str(j.get("caller", "")).removeprefix("vk:")
        for j in live
        if not j.get("slot_reservation_id")
    )
    holder = {
        str(j[col]): j
        for j in jobs
        for col in ("reservation_id", "slot_reservation_id")
        if j.get(col)
    }
    leaked = 0
    examples: list[str] = []
    open_slots: Counter[str] = Counter()
    for res in reservations:
        if str(res.get("state")) not in OPEN_STATES:
            continue
        rid = str(res["reservation_id"])
        slot_keys = _slot_keys(res)
        if slot_keys:
            if rid in held_slots:
                continue
            for key in slot_keys:
                open_slots[key] += 1
        elif rid in held:
            continue
        else:
            leaked += 1
        if len(examples) < 4:
            job = holder.get(rid)
            where = f"job {job['task_id']} is {job.get('status')}" if job else "no job holds it"
            examples.append(f"open {rid} owner={res.get('owner')}: {where}")
    leaked_slots = sum(max(0, n - slotless_live[key]) for key, n in open_slots.items())
    return leaked, leaked_slots, examples


def account(
    fault: str,
    store: str,
    results: Sequence[Result],
    tally: Tally,
    tasks: Sequence[Row],
    jobs: Sequence[Row],
    reservations: Sequence[Row],
) -> Figures:
    ledger, unknown, lost, double = lost_and_double(results, tasks, jobs)
    leaked, leaked_slots, examples = leaks(jobs, reservations)
    figures = Figures(
        fault=fault,
        store=store,
        submits=len(results),
        created_upstream=len(tasks),
        ledger=ledger,
        unknown=unknown,
        lost=lost,
        double_bought=double,
        proxy_500=tally.proxy_500,
        designed_5xx=tally.designed_5xx,
        leaked_reservations=leaked,
        leaked_slots=leaked_slots,
        open_jobs=sum(
            1 for j in jobs if str(j.get("status")) not in TERMINAL and not _is_unknown(j)
        ),
    )
    if leaked or leaked_slots:
        figures.notes.extend(examples)
    if tally.samples_500:
        figures.notes.append(f"500 body: {tally.samples_500[0][:160]}")
    return figures
