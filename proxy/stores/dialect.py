"""The few places SQLite and PostgreSQL need different SQL: one ``Dialect`` per engine.

It imports nothing of the store, so expression modules (``sql_text``) and the store's
protocols can name it without a cycle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

Backend = Literal["sqlite", "postgres"]


_PLACEHOLDER = re.compile(r"\$(\d+)")


@lru_cache(maxsize=256)
def _to_qmark(sql: str) -> str:
    return _PLACEHOLDER.sub(r"?\1", sql)


@dataclass(frozen=True, slots=True)
class Dialect:
    """The few places SQLite and PostgreSQL need different SQL."""

    name: Backend
    lock_rows: str = ""
    skip_locked: str = ""
    day_template: str = "strftime('%Y-%m-%d', {}, 'unixepoch')"
    # Days since the epoch (UTC) of an epoch-seconds column: cheaper to group by than a
    # formatted date (the day's text is made once per group, not once per row).
    day_number_template: str = "CAST({} / 86400 AS INTEGER)"
    # Text as its UTF-8 bytes (the driver then hands over bytes, not a decoded str).
    utf8_template: str = "CAST({} AS BLOB)"
    greatest: str = "max"
    # Held in the migrating transaction beside its own write lock, given the migrations key
    # (SQLite: ``BEGIN IMMEDIATE`` already serialises migrators).
    migration_lock: str = ""
    # The driver runs one statement per call, so a migration's script is split (sqlite3).
    split_scripts: bool = True
    _qmark: bool = field(default=True, repr=False)

    def sql(self, text: str) -> str:
        """``text`` with placeholders this engine understands."""
        return _to_qmark(text) if self._qmark else text

    def day(self, column: str) -> str:
        """An expression for the UTC ``YYYY-MM-DD`` day of an epoch-seconds ``column``."""
        return self.day_template.format(column)

    def day_number(self, column: str) -> str:
        """An expression for the UTC day (days since 1970-01-01) of an epoch-seconds ``column``."""
        return self.day_number_template.format(column)

    @property
    def day_expr(self) -> str:
        """The UTC day a job was submitted on."""
        return self.day("submitted_at")


SQLITE = Dialect(name="sqlite")
POSTGRES = Dialect(
    name="postgres",
    lock_rows=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    day_template="to_char(to_timestamp({}) AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
    day_number_template="CAST(floor({} / 86400) AS BIGINT)",
    utf8_template="convert_to({}, 'UTF8')",
    greatest="GREATEST",
    migration_lock="SELECT pg_advisory_xact_lock($1)",
    split_scripts=False,
    _qmark=False,
)
