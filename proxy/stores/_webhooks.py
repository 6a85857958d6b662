"""Completion webhook deliveries and per-caller callback URLs, for both SQL engines.

A delivery row is written by ``enqueue_delivery`` inside the transaction that makes a job
terminal (``proxy.stores._crossings``), so a job with a callback can never turn terminal
without its delivery being recorded. Its id and body are rendered by the webhook feature
(``proxy.webhooks.document.render_delivery``, handed to the store when it is opened): the
store keeps them and never reads them. Workers on any replica lease due rows the way the
watcher leases jobs (``FOR UPDATE SKIP LOCKED`` on PostgreSQL): leasing moves
``next_attempt_at`` to the lease's end, so a crashed worker's row is due again by itself.
"""

from __future__ import annotations

from proxy.stores._sql import Dialect, Row, SqlBase, Tx
from proxy.stores.records import JobRecord
from proxy.stores.webhook_records import Delivery, DeliveryState, RenderDelivery

INSERT_DELIVERY = """
INSERT INTO webhook_deliveries (delivery_id, task_id, caller, team, url, body, state,
    attempts, created_at, next_attempt_at)
VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, $7, $7)
ON CONFLICT DO NOTHING"""

DUE = (
    "SELECT delivery_id FROM webhook_deliveries WHERE next_attempt_at <= $1"
    " ORDER BY next_attempt_at LIMIT $2"
)

LEASE = """
UPDATE webhook_deliveries SET lease_owner = $3, next_attempt_at = $4
WHERE delivery_id IN ({due}{skip_locked}) AND next_attempt_at <= $1
RETURNING *"""

DELIVERED = """
UPDATE webhook_deliveries SET state = 'delivered', delivered_at = $2, next_attempt_at = NULL,
    last_status = $3, last_error = NULL, attempts = attempts + 1, lease_owner = NULL
WHERE delivery_id = $1 AND state = 'pending'"""

FAILED = """
UPDATE webhook_deliveries SET state = $3, next_attempt_at = $4, last_status = $5,
    last_error = $6, attempts = attempts + 1, lease_owner = NULL
WHERE delivery_id = $1 AND lease_owner = $2 AND state = 'pending'"""

UPSERT_ENDPOINT = """
INSERT INTO webhook_endpoints (caller, url, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (caller) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at"""


class NoDeliveryRendererError(RuntimeError):
    """A job with a callback URL turned terminal in a store opened without ``render_delivery``:
    a wiring mistake (every process that makes jobs terminal passes one), never a condition."""


async def enqueue_delivery(
    tx: Tx, dialect: Dialect, job: JobRecord, render: RenderDelivery | None
) -> None:
    """Inside the terminal transaction: record the completion webhook of ``job`` (once)."""
    if job.callback_url is None:
        return
    if render is None:
        raise NoDeliveryRendererError(
            f"job {job.task_id} has a callback URL, and this store was opened without"
            " render_delivery (proxy.webhooks.document.render_delivery)"
        )
    at = job.terminal_at if job.terminal_at is not None else job.submitted_at
    rendered = render(job)
    await tx.execute(
        dialect.sql(INSERT_DELIVERY),
        rendered.delivery_id, job.task_id, job.caller, job.team, job.callback_url,
        rendered.body, at,
    )  # fmt: skip


def delivery_from_row(row: Row) -> Delivery:
    def opt(name: str) -> float | None:
        value = row[name]
        return None if value is None else float(value)

    return Delivery(
        delivery_id=row["delivery_id"],
        task_id=row["task_id"],
        caller=row["caller"],
        team=row["team"],
        url=row["url"],
        body=row["body"],
        state=DeliveryState(row["state"]),
        attempts=int(row["attempts"]),
        created_at=float(row["created_at"]),
        next_attempt_at=opt("next_attempt_at"),
        delivered_at=opt("delivered_at"),
        last_status=row["last_status"],
        last_error=row["last_error"],
        lease_owner=row["lease_owner"],
    )


class WebhooksMixin(SqlBase):
    """``WebhookStore`` over any ``SqlBase`` connection provider."""

    async def set_webhook_endpoint(self, caller: str, url: str | None, now: float) -> bool:
        async with self._write() as tx:
            if url is None:
                sql = "DELETE FROM webhook_endpoints WHERE caller = $1"
                return await tx.execute(self.dialect.sql(sql), caller) > 0
            await tx.execute(self.dialect.sql(UPSERT_ENDPOINT), caller, url, now)
        return True

    async def get_webhook_endpoint(self, caller: str) -> str | None:
        sql = "SELECT url FROM webhook_endpoints WHERE caller = $1"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), caller)
        return None if row is None else str(row["url"])

    async def list_webhook_endpoints(self) -> dict[str, str]:
        async with self._read() as tx:
            rows = await tx.fetch("SELECT caller, url FROM webhook_endpoints ORDER BY caller")
        return {str(r["caller"]): str(r["url"]) for r in rows}

    async def lease_deliveries(
        self, owner: str, now: float, limit: int, lease_seconds: float
    ) -> list[Delivery]:
        sql = LEASE.format(due=DUE, skip_locked=self.dialect.skip_locked)
        async with self._write() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), now, limit, owner, now + lease_seconds)
        return sorted((delivery_from_row(r) for r in rows), key=lambda d: d.created_at)

    async def delivery_succeeded(self, delivery_id: str, now: float, status: int) -> bool:
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(DELIVERED), delivery_id, now, status) > 0

    async def delivery_failed(
        self,
        delivery_id: str,
        owner: str,
        status: int | None,
        error: str,
        retry_at: float | None,
    ) -> bool:
        state = DeliveryState.PENDING if retry_at is not None else DeliveryState.DEAD
        async with self._write() as tx:
            changed = await tx.execute(
                self.dialect.sql(FAILED), delivery_id, owner, state.value, retry_at, status,
                error[:500],
            )  # fmt: skip
        return changed > 0

    async def get_delivery(self, delivery_id: str) -> Delivery | None:
        sql = "SELECT * FROM webhook_deliveries WHERE delivery_id = $1 OR task_id = $1"
        async with self._read() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), delivery_id)
        return None if row is None else delivery_from_row(row)

    async def list_deliveries(
        self, *, state: DeliveryState | None = None, limit: int = 100
    ) -> list[Delivery]:
        where, args = ("WHERE state = $2", [state.value]) if state is not None else ("", [])
        sql = f"SELECT * FROM webhook_deliveries {where} ORDER BY created_at DESC LIMIT $1"  # noqa: S608
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), limit, *args)
        return [delivery_from_row(r) for r in rows]

    async def redeliver(self, delivery_id: str, now: float) -> bool:
        """Make a delivered or dead delivery due again now, with a fresh attempt budget."""
        sql = (
            "UPDATE webhook_deliveries SET state = 'pending', next_attempt_at = $2, attempts = 0,"
            " lease_owner = NULL WHERE delivery_id = $1 OR task_id = $1"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), delivery_id, now) > 0

    async def delivery_counts(self) -> dict[str, int]:
        sql = "SELECT state, COUNT(*) AS n FROM webhook_deliveries GROUP BY state"
        async with self._read() as tx:
            rows = await tx.fetch(sql)
        counts = {s.value: 0 for s in DeliveryState}
        counts.update({str(r["state"]): int(r["n"]) for r in rows})
        return counts

    async def purge_deliveries(self, before: float, limit: int) -> int:
        """Delete up to ``limit`` delivered or dead deliveries created before ``before``."""
        sql = (
            "DELETE FROM webhook_deliveries WHERE delivery_id IN (SELECT delivery_id"
            " FROM webhook_deliveries WHERE state <> 'pending' AND created_at < $1"
            " ORDER BY created_at LIMIT $2)"
        )
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), before, limit)
