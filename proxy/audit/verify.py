"""Checking the audit trail's hash chain: every edited or deleted row, named.

Verification walks the rows in order from the anchor (the last row retention pruned, or
the start) to the head recorded in ``audit_chain``:

* a missing sequence number is a **deleted** row (or several);
* a row whose fields no longer give its hash was **edited**;
* a row whose ``prev_hash`` is not the hash of the row before it, the row before having
  given its own hash, means the row before was edited and its hash recomputed to match;
* rows missing after the last one found, up to the head, were deleted at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Literal

from proxy.stores.audit_records import AuditChain, AuditRow
from proxy.stores.base import AuditStore

PAGE = 1000

Kind = Literal["edited", "deleted", "unlinked"]


@dataclass(frozen=True, slots=True)
class Problem:
    """One row that is not as it was appended."""

    seq: int
    kind: Kind
    detail: str

    def __str__(self) -> str:
        return f"row {self.seq}: {self.kind} ({self.detail})"


@dataclass(frozen=True, slots=True)
class Verdict:
    rows: int
    head_seq: int
    anchor_seq: int
    problems: tuple[Problem, ...]
    head_hash: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


def check(chain: AuditChain, rows: Iterable[AuditRow]) -> Verdict:
    """The problems of ``rows`` (in sequence order, after the anchor) against ``chain``."""
    problems: list[Problem] = []
    expected_seq, expected_prev = chain.anchor_seq + 1, chain.anchor_hash
    last_intact = True
    count = 0
    for row in rows:
        count += 1
        intact = row.expected_hash() == row.hash
        if row.seq > expected_seq:
            problems.extend(
                Problem(seq, "deleted", "its sequence number is missing")
                for seq in range(expected_seq, row.seq)
            )
        elif row.prev_hash != expected_prev and intact:
            if row.seq == chain.anchor_seq + 1:
                problems.append(Problem(row.seq, "unlinked", "it does not link to the anchor"))
            elif last_intact:  # the row before was edited and its hash recomputed
                problems.append(
                    Problem(row.seq - 1, "edited", "the next row does not link to its hash")
                )
        if not intact:
            problems.append(Problem(row.seq, "edited", "its fields do not give its hash"))
        last_intact = intact
        expected_seq, expected_prev = row.seq + 1, row.hash
    if expected_seq <= chain.head_seq:
        problems.extend(
            Problem(seq, "deleted", "missing before the chain's head")
            for seq in range(expected_seq, chain.head_seq + 1)
        )
    elif expected_seq == chain.head_seq + 1 and expected_prev != chain.head_hash and last_intact:
        problems.append(Problem(chain.head_seq, "edited", "the head does not match its hash"))
    return Verdict(count, chain.head_seq, chain.anchor_seq, tuple(problems), chain.head_hash)


async def _all_rows(store: AuditStore, after: int) -> AsyncIterator[AuditRow]:
    while True:
        page = await store.audit_rows(after_seq=after, limit=PAGE)
        for row in page:
            yield row
        if len(page) < PAGE:
            return
        after = page[-1].seq


async def verify(store: AuditStore) -> Verdict:
    """The store's whole chain, checked (read a page at a time)."""
    chain = await store.audit_chain()
    rows = [row async for row in _all_rows(store, chain.anchor_seq)]
    return check(chain, rows)
