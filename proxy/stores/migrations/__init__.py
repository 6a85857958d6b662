"""Versioned schema migrations, one SQL file per version and backend.

Files live in ``sqlite/`` and ``postgres/`` next to this module and are named
``NNNN_what.sql``; both folders hold the same versions. Later changes append files;
numbers are handed out ahead to changes made side by side, so a number may land before a
lower one: versions are unique and ascending, not necessarily contiguous, and a lower
version landing later is applied at the next open like any pending one. An applied file
never changes (its checksum is recorded in ``schema_version`` and
checked at every open). The backends apply what is pending at open, under a lock
(SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``pg_advisory_xact_lock``), so replicas
starting at once do not race, and re-running is a no-op.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from proxy.stores.base import MigrationError
from proxy.stores.dialect import Backend as Backend

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " checksum TEXT NOT NULL,"
    " applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)"
)
"""The same DDL works on both engines."""

ADVISORY_LOCK_KEY = 0x4D4C5853544F5245
"""``pg_advisory_xact_lock`` key held while PostgreSQL migrations run ("MLXSTORE")."""


@dataclass(frozen=True, slots=True)
class Migration:
    """One versioned schema change."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(backend: Backend) -> tuple[Migration, ...]:
    """Every migration for ``backend``, in version order."""
    found: list[Migration] = []
    for entry in resources.files(__name__).joinpath(backend).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise MigrationError(f"{backend} migrations are not numbered uniquely from 1: {versions}")
    return tuple(found)


def pending(migrations: tuple[Migration, ...], applied: Mapping[int, str]) -> tuple[Migration, ...]:
    """Migrations not yet applied, given ``{version: checksum}`` already applied.

    Raises ``MigrationError`` if the database is newer than this code or an
    applied migration was edited since.
    """
    known = {m.version: m for m in migrations}
    for version, checksum in applied.items():
        if version not in known:
            raise MigrationError(f"database schema version {version} is newer than this code")
        if known[version].checksum != checksum:
            raise MigrationError(f"migration {version} changed after it was applied")
    return tuple(m for m in migrations if m.version not in applied)


def latest_version(backend: Backend) -> int:
    """The schema version this code brings a database to (its highest)."""
    return max((m.version for m in load(backend)), default=0)


def split_statements(sql: str) -> list[str]:
    """Split an SQLite script into statements (SQLite runs one per call)."""
    statements: list[str] = []
    buffer = ""
    for line in sql.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise MigrationError(f"incomplete SQL statement: {buffer[:80]!r}")
    return statements
