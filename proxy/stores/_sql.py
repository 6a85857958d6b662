"""What the SQL backends share: a tiny transaction interface, dialect knobs, row mapping.

Statements are written once with PostgreSQL ``$n`` placeholders; the SQLite
dialect rewrites them to SQLite's equivalent ``?n``. Everything else that differs
between the engines is a field of ``Dialect``.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import re
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from proxy.jsoncodec import dumps_record, loads
from proxy.stores._joined import joined, savepoint
from proxy.stores._sql_tx import Row as Row
from proxy.stores._sql_tx import Tx as Tx
from proxy.stores.migrations import Backend
from proxy.stores.records import JobRecord, JobStatus, Source, StatusChange
from proxy.stores.webhook_records import RenderDelivery

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
    # The ISO week (``2026-W48``): the year and day of the year of the week's Thursday.
    week_template: str = (
        "strftime('%Y', {0}, 'unixepoch', '-3 days', 'weekday 4') || '-W' || printf('%02d',"
        " (CAST(strftime('%j', {0}, 'unixepoch', '-3 days', 'weekday 4') AS INTEGER) + 6) / 7)"
    )
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

    def week(self, column: str) -> str:
        """An expression for the ISO week (``2026-W48``, UTC) of an epoch-seconds ``column``."""
        return self.week_template.format(column)

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
    week_template="to_char(to_timestamp({0}) AT TIME ZONE 'UTC', 'IYYY-\"W\"IW')",
    day_number_template="CAST(floor({} / 86400) AS BIGINT)",
    utf8_template="convert_to({}, 'UTF8')",
    greatest="GREATEST",
    migration_lock="SELECT pg_advisory_xact_lock($1)",
    split_scripts=False,
    _qmark=False,
)


IN_CHUNK = 500
"""Ids per IN list or batch: well under either engine's placeholder limit."""


class SqlBase(abc.ABC):
    """Base of the SQL stores: subclasses provide connections, mixins the operations."""

    dialect: Dialect
    render_delivery: RenderDelivery | None = None
    """What a completion webhook says (given when opened; see ``proxy.stores._webhooks``)."""

    @abc.abstractmethod
    def _open_write(self, *, inline: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A transaction that serialises with every other writer of the rows it locks.

        ``inline``: its statements are few, short and indexed (the hot path's), so an engine
        that would otherwise run them on another thread may run them on the event loop's.
        """

    @abc.abstractmethod
    def _open_read(self, *, inline: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A connection for reads (``inline`` as for ``_open_write``)."""

    def _write(self, *, inline: bool = False) -> AbstractAsyncContextManager[Tx]:
        """A write transaction: the joined one's savepoint if this task joined one
        (``proxy.stores._joined``), else the engine's own (``_open_write``)."""
        tx = joined(self)
        if tx is not None:
            return savepoint(tx)
        return self._open_write(inline=inline)

    def _read(self, *, inline: bool = False) -> AbstractAsyncContextManager[Tx]:
        """Reads: in the joined transaction if this task joined one (they see its changes),
        else on the engine's connection for reads (``_open_read``)."""
        tx = joined(self)
        if tx is not None:
            return nullcontext(tx)
        return self._open_read(inline=inline)

    async def _select_among(
        self, sql: str, params: Sequence[object], ids: Iterable[str]
    ) -> set[str]:
        """The ``id`` column of ``sql`` for the ``ids`` it finds, read ``IN_CHUNK`` ids at a time.

        ``sql`` selects ``... AS id``, takes ``params`` as ``$1..$n`` and ends in ``IN ({marks})``,
        where the ids' placeholders go: an IN list stays under either engine's placeholder limit.
        """
        wanted = list(dict.fromkeys(ids))
        found: set[str] = set()
        first = len(params) + 1
        for start in range(0, len(wanted), IN_CHUNK):
            chunk = wanted[start : start + IN_CHUNK]
            marks = ", ".join(f"${first + i}" for i in range(len(chunk)))
            async with self._read() as tx:
                rows = await tx.fetch(self.dialect.sql(sql.format(marks=marks)), *params, *chunk)
            found |= {str(row["id"]) for row in rows}
        return found


def rows_changed(status: str) -> int:
    """Rows changed according to a PostgreSQL command tag such as ``UPDATE 3``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def encode_history(history: Sequence[StatusChange]) -> str:
    return dumps_record([[c.status, c.at, c.source] for c in history])


def decode_history(text: str | None) -> tuple[StatusChange, ...]:
    items: list[list[Any]] = loads(text) if text else []
    return tuple(StatusChange(str(s), float(at), _source(src)) for s, at, src in items)


def _source(value: object) -> Source:
    if value == "client":
        return "client"
    if value == "watcher":
        return "watcher"
    if value == "expiry":
        return "expiry"
    return "submit"


def _opt_float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


def job_from_row(row: Row) -> JobRecord:
    """Map a ``jobs`` row (either engine) to a record."""
    urls: list[str] = loads(row["output_urls"]) if row["output_urls"] else []
    return JobRecord(
        task_id=row["task_id"],
        caller=row["caller"],
        pinned_slug=row["pinned_slug"],
        submitted_at=float(row["submitted_at"]),
        status=JobStatus(row["status"]),
        team=row["team"],
        project=row["project"],
        alias=row["alias"],
        input_hash=row["input_hash"],
        correlation_id=row["correlation_id"],
        request_id=row["request_id"],
        idempotency_key=row["idempotency_key"],
        price_table_version=row["price_table_version"],
        estimated_cost_micros=row["estimated_cost_micros"],
        final_cost_micros=row["final_cost_micros"],
        upstream_attempts=row["upstream_attempts"],
        traceparent=row["traceparent"],
        submitted_by=row["submitted_by"],
        first_processing_at=_opt_float(row["first_processing_at"]),
        terminal_at=_opt_float(row["terminal_at"]),
        history=decode_history(row["history"]),
        last_seen_status=row["last_seen_status"],
        client_polls=row["client_polls"],
        watcher_polls=row["watcher_polls"],
        last_client_poll_at=_opt_float(row["last_client_poll_at"]),
        output_urls=tuple(urls),
        error_reason=row["error_reason"],
        next_poll_at=_opt_float(row["next_poll_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=_opt_float(row["lease_expires_at"]),
        watcher_attempts=row["watcher_attempts"],
        stale=bool(row["stale"]),
        reservation_id=row["reservation_id"],
        slot_reservation_id=row.get("slot_reservation_id"),
        callback_url=row.get("callback_url"),
        price_source=row.get("price_source"),
        estimate_low_micros=row.get("estimate_low_micros"),
        estimate_high_micros=row.get("estimate_high_micros"),
        estimate_bounded=bool(row.get("estimate_bounded") or False),
        cost_source=row.get("cost_source"),
        account=row.get("account"),
        api=row.get("api") or "modellix",
        api_ref=row.get("api_ref"),
        api_request=row.get("api_request"),
        hidden_at=_opt_float(row.get("hidden_at")),
    )


def encode_cursor(job: JobRecord) -> str:
    raw = json.dumps([job.submitted_at, job.task_id], ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The ``(submitted_at, task_id)`` a cursor points after; ``ValueError`` if malformed."""
    try:
        at, task_id = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii")))
        return float(at), str(task_id)
    except (binascii.Error, UnicodeError, TypeError, json.JSONDecodeError) as exc:
        raise ValueError(f"malformed cursor: {cursor!r}") from exc
