"""Records of the upstream's published request schemas (``proxy.stores._schemas``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SchemaPin:
    """One model's pinned schema and the newest the origin served.

    ``pinned_hash != latest_hash``: the origin changed the schema and validation still uses
    the pinned one (policy ``hold``) until an operator accepts the change.
    """

    slug: str
    pinned_hash: str
    latest_hash: str
    pinned_at: float
    latest_at: float  # when the origin first served ``latest_hash`` (as latest)
    checked_at: float  # the last successful fetch
    changes: int  # how often the served schema changed since the first fetch

    @property
    def waiting(self) -> bool:
        return self.pinned_hash != self.latest_hash


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    slug: str
    hash: str
    first_seen: float
