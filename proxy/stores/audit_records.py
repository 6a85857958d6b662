"""What the audit trail and the admin credentials keep, and how an audit row is hashed.

A row's hash is the SHA-256 (hex) of the canonical JSON (sorted keys, no spaces, UTF-8) of
its fields and the previous row's hash, so editing any field of any row, or deleting a row,
breaks the chain at that row (``proxy.audit.verify``). ``before`` and ``after`` are hashed
as the canonical JSON text they are stored as.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

GENESIS = ""
"""The ``prev_hash`` of the first row ever appended."""


class Role(StrEnum):
    """What an admin credential may do; each role includes those before it."""

    VIEWER = "viewer"
    FINANCE = "finance"
    OPERATOR = "operator"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


def canonical(value: Any) -> str:
    """The one JSON text of ``value`` that is hashed and stored (sorted keys, compact)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(slots=True)
class AuditDraft:
    """An admin action being recorded: who, from where, what; ``before`` and ``after`` are
    set while the change is made (``AuditStore.audited``), and ``row`` once it is appended."""

    at: float
    actor: str
    origin: str
    action: str
    subject: str
    peer: str | None = None
    request_id: str | None = None
    before: Any = None
    after: Any = None
    row: AuditRow | None = None


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One appended row, as stored."""

    seq: int
    at: float
    actor: str
    origin: str
    peer: str | None
    request_id: str | None
    action: str
    subject: str
    before_json: str | None
    after_json: str | None
    prev_hash: str
    hash: str

    @property
    def before(self) -> Any:
        return None if self.before_json is None else json.loads(self.before_json)

    @property
    def after(self) -> Any:
        return None if self.after_json is None else json.loads(self.after_json)

    def expected_hash(self) -> str:
        """The hash this row's fields and ``prev_hash`` give (equal to ``hash`` if untouched)."""
        return row_hash(
            self.seq, self.at, self.actor, self.origin, self.peer, self.request_id,
            self.action, self.subject, self.before_json, self.after_json, self.prev_hash,
        )  # fmt: skip


def row_hash(
    seq: int,
    at: float,
    actor: str,
    origin: str,
    peer: str | None,
    request_id: str | None,
    action: str,
    subject: str,
    before_json: str | None,
    after_json: str | None,
    prev_hash: str,
) -> str:
    fields = {
        "seq": seq, "at": at, "actor": actor, "origin": origin, "peer": peer,
        "request_id": request_id, "action": action, "subject": subject,
        "before": before_json, "after": after_json, "prev_hash": prev_hash,
    }  # fmt: skip
    return hashlib.sha256(canonical(fields).encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditChain:
    """The chain's head (last appended row) and anchor (last pruned row; seq 0: none)."""

    head_seq: int
    head_hash: str
    anchor_seq: int
    anchor_hash: str
    pruned_at: float | None


@dataclass(frozen=True, slots=True)
class AdminToken:
    """A named admin credential; only the SHA-256 of its token is stored."""

    token_id: str
    name: str
    role: Role
    token_hash: str
    created_at: float
    rotated_at: float | None = None
    revoked_at: float | None = None
