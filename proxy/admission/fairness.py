"""The order queued submits of one team are dispatched in. A pure function.

Round robin across keys (callers) within a team, FIFO within a key: the key
dispatched least recently goes first (a key never dispatched before all others,
oldest submit first), then one submit per key in turn. ``turns`` (when each key was
last dispatched) is kept in the store, so the rotation carries on across ticks,
restarts and replicas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from proxy.stores.admission_records import QueueHead


def fair_order(heads: Sequence[QueueHead], turns: Mapping[str, float]) -> list[QueueHead]:
    """``heads`` (one team's queued submits) in dispatch order."""
    by_caller: dict[str, list[QueueHead]] = {}
    for head in sorted(heads, key=lambda h: (h.enqueued_at, h.queue_id)):
        by_caller.setdefault(head.caller, []).append(head)
    callers = sorted(
        by_caller,
        key=lambda c: (c in turns, turns.get(c, 0.0), by_caller[c][0].enqueued_at, c),
    )
    out: list[QueueHead] = []
    depth = max((len(v) for v in by_caller.values()), default=0)
    for i in range(depth):
        out.extend(by_caller[c][i] for c in callers if i < len(by_caller[c]))
    return out
