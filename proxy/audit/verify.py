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

from collections.abc import Iterable
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
    pages: int = 0  # the reads it took (``verify``)

    @property
    def ok(self) -> bool:
        return not self.problems


class Walk:
    """The chain check as rows arrive, in sequence order after the anchor: it keeps only the
    row before and the problems found, so a trail of any length is checked in constant
    memory (beyond what is broken)."""

    def __init__(self, chain: AuditChain) -> None:
        self.chain = chain
        self.problems: list[Problem] = []
        self.count = 0
        self._expected_seq, self._expected_prev = chain.anchor_seq + 1, chain.anchor_hash
        self._last_intact = True

    def feed(self, row: AuditRow) -> None:
        self.count += 1
        intact = row.expected_hash() == row.hash
        if row.seq > self._expected_seq:
            self.problems.extend(
                Problem(seq, "deleted", "its sequence number is missing")
                for seq in range(self._expected_seq, row.seq)
            )
        elif row.prev_hash != self._expected_prev and intact:
            if row.seq == self.chain.anchor_seq + 1:
                self.problems.append(Problem(row.seq, "unlinked", "it does not link to the anchor"))
            elif self._last_intact:  # the row before was edited and its hash recomputed
                self.problems.append(
                    Problem(row.seq - 1, "edited", "the next row does not link to its hash")
                )
        if not intact:
            self.problems.append(Problem(row.seq, "edited", "its fields do not give its hash"))
        self._last_intact = intact
        self._expected_seq, self._expected_prev = row.seq + 1, row.hash

    def verdict(self, pages: int = 0) -> Verdict:
        """The problems of every row fed, and of the rows missing after the last of them."""
        chain, problems = self.chain, list(self.problems)
        if self._expected_seq <= chain.head_seq:
            problems.extend(
                Problem(seq, "deleted", "missing before the chain's head")
                for seq in range(self._expected_seq, chain.head_seq + 1)
            )
        elif (
            self._expected_seq == chain.head_seq + 1
            and self._expected_prev != chain.head_hash
            and self._last_intact
        ):
            problems.append(Problem(chain.head_seq, "edited", "the head does not match its hash"))
        return Verdict(
            self.count, chain.head_seq, chain.anchor_seq, tuple(problems), chain.head_hash, pages
        )


def check(chain: AuditChain, rows: Iterable[AuditRow]) -> Verdict:
    """The problems of ``rows`` (in sequence order, after the anchor) against ``chain``."""
    walk = Walk(chain)
    for row in rows:
        walk.feed(row)
    return walk.verdict()


async def verify(store: AuditStore, page: int = PAGE) -> Verdict:
    """The store's whole chain, checked as it is read: ``page`` rows at a time, each page
    after the last sequence number of the one before (keyset), none of them kept."""
    if page < 1:
        raise ValueError("page must be at least 1")
    chain = await store.audit_chain()
    walk, after, pages = Walk(chain), chain.anchor_seq, 0
    while True:
        rows = await store.audit_rows(after_seq=after, limit=page)
        pages += 1
        for row in rows:
            walk.feed(row)
        if len(rows) < page:
            return walk.verdict(pages)
        after = rows[-1].seq
