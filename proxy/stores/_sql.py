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
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any

from proxy.jsoncodec import dumps_record, loads
from proxy.stores._joined import joined, savepoint
from proxy.stores._sql_tx import Row as Row
from proxy.stores._sql_tx import Tx as Tx
from proxy.stores.dialect import POSTGRES as POSTGRES
from proxy.stores.dialect import SQLITE as SQLITE
from proxy.stores.dialect import Dialect as Dialect
from proxy.stores.records import JobRecord, JobStatus, Source, StatusChange
from proxy.stores.webhook_records import RenderDelivery

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
