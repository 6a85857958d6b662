"""The audit trail and the admin credentials, written once for both SQL engines.

An admin action runs in ``audited``: one write transaction that every store call of the
action joins (``proxy.stores._joined``), closed by appending the action's row. Appends lock
the chain's head row first (PostgreSQL: ``FOR UPDATE``; SQLite has one writer), so replicas
append one after another and each row's ``prev_hash`` is the hash of the row before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from proxy.stores._joined import joining
from proxy.stores._sql import Row, SqlBase
from proxy.stores._sql_tx import Tx
from proxy.stores.audit_records import (
    AdminToken,
    AuditChain,
    AuditDraft,
    AuditRow,
    Role,
    canonical,
    row_hash,
)
from proxy.stores.base import DuplicateKeyError

INSERT_ROW = """
INSERT INTO audit_log (seq, at, actor, origin, peer, request_id, action, subject,
    before_json, after_json, prev_hash, hash)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"""
INSERT_CREDENTIAL = """
INSERT INTO admin_tokens (token_id, name, role, token_hash, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
RETURNING *"""


def _row(row: Row) -> AuditRow:
    return AuditRow(
        seq=int(row["seq"]), at=float(row["at"]), actor=row["actor"], origin=row["origin"],
        peer=row["peer"], request_id=row["request_id"], action=row["action"],
        subject=row["subject"], before_json=row["before_json"], after_json=row["after_json"],
        prev_hash=row["prev_hash"], hash=row["hash"],
    )  # fmt: skip


def _token(row: Row) -> AdminToken:
    return AdminToken(
        token_id=row["token_id"],
        name=row["name"],
        role=Role(row["role"]),
        token_hash=row["token_hash"],
        created_at=float(row["created_at"]),
        rotated_at=None if row["rotated_at"] is None else float(row["rotated_at"]),
        revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
    )


def _json(value: object) -> str | None:
    return None if value is None else canonical(value)


class AuditMixin(SqlBase):
    """``AuditStore`` and ``AdminTokenStore`` over any ``SqlBase`` connection provider."""

    @asynccontextmanager
    async def audited(self, draft: AuditDraft) -> AsyncIterator[AuditDraft]:
        async with self._write() as tx:
            with joining(self, tx):
                yield draft
            draft.row = await self._append(tx, draft)

    async def _append(self, tx: Tx, draft: AuditDraft) -> AuditRow:
        head = await tx.fetchrow(
            "SELECT head_seq, head_hash FROM audit_chain WHERE id = 1"  # noqa: S608 (constant)
            + self.dialect.lock_rows
        )
        if head is None:
            raise RuntimeError("audit_chain has no head row (migration 0013 not applied?)")
        seq, prev = int(head["head_seq"]) + 1, str(head["head_hash"])
        before, after = _json(draft.before), _json(draft.after)
        digest = row_hash(
            seq, draft.at, draft.actor, draft.origin, draft.peer, draft.request_id,
            draft.action, draft.subject, before, after, prev,
        )  # fmt: skip
        await tx.execute(
            self.dialect.sql(INSERT_ROW), seq, draft.at, draft.actor, draft.origin, draft.peer,
            draft.request_id, draft.action, draft.subject, before, after, prev, digest,
        )  # fmt: skip
        await tx.execute(
            self.dialect.sql("UPDATE audit_chain SET head_seq = $1, head_hash = $2 WHERE id = 1"),
            seq,
            digest,
        )
        return AuditRow(
            seq, draft.at, draft.actor, draft.origin, draft.peer, draft.request_id,
            draft.action, draft.subject, before, after, prev, digest,
        )  # fmt: skip

    async def audit_rows(
        self,
        *,
        after_seq: int = 0,
        limit: int = 100,
        since: float | None = None,
        until: float | None = None,
        actor: str | None = None,
        action: str | None = None,
        subject: str | None = None,
    ) -> list[AuditRow]:
        where: list[str] = ["seq > $1"]
        args: list[object] = [after_seq]
        for column, op, value in (
            ("at", ">=", since), ("at", "<", until), ("actor", "=", actor),
            ("action", "=", action), ("subject", "=", subject),
        ):  # fmt: skip
            if value is not None:
                args.append(value)
                where.append(f"{column} {op} ${len(args)}")
        args.append(limit)
        filters = " AND ".join(where)
        sql = f"SELECT * FROM audit_log WHERE {filters} ORDER BY seq LIMIT ${len(args)}"  # noqa: S608 (placeholders only)
        async with self._read() as tx:
            rows = await tx.fetch(self.dialect.sql(sql), *args)
        return [_row(r) for r in rows]

    async def audit_chain(self) -> AuditChain:
        async with self._read() as tx:
            row = await tx.fetchrow("SELECT * FROM audit_chain WHERE id = 1")
        if row is None:
            raise RuntimeError("audit_chain has no head row (migration 0013 not applied?)")
        return AuditChain(
            head_seq=int(row["head_seq"]),
            head_hash=row["head_hash"],
            anchor_seq=int(row["anchor_seq"]),
            anchor_hash=row["anchor_hash"],
            pruned_at=None if row["pruned_at"] is None else float(row["pruned_at"]),
        )

    async def prune_audit(self, before: float, limit: int, now: float) -> int:
        """Delete up to ``limit`` of the oldest rows, only a prefix of the chain whose every
        row is older than ``before``; the last one deleted becomes the anchor."""
        async with self._write() as tx:
            chain = await tx.fetchrow(
                "SELECT anchor_seq FROM audit_chain WHERE id = 1"  # noqa: S608 (constant)
                + self.dialect.lock_rows
            )
            if chain is None:
                return 0
            rows = await tx.fetch(
                self.dialect.sql(
                    "SELECT seq, at, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2"
                ),
                int(chain["anchor_seq"]),
                limit,
            )
            last: Row | None = None
            for row in rows:
                if float(row["at"]) >= before:
                    break
                last = row
            if last is None:
                return 0
            deleted = await tx.execute(
                self.dialect.sql("DELETE FROM audit_log WHERE seq <= $1"), int(last["seq"])
            )
            await tx.execute(
                self.dialect.sql(
                    "UPDATE audit_chain SET anchor_seq = $1, anchor_hash = $2, pruned_at = $3"
                    " WHERE id = 1"
                ),
                int(last["seq"]),
                last["hash"],
                now,
            )
        return deleted

    async def create_admin_token(self, token: AdminToken) -> AdminToken:
        async with self._write() as tx:
            row = await tx.fetchrow(
                self.dialect.sql(INSERT_CREDENTIAL), token.token_id, token.name, token.role.value,
                token.token_hash, token.created_at,
            )  # fmt: skip
        if row is None:
            raise DuplicateKeyError(f"an active admin token is named {token.name!r}")
        return _token(row)

    async def get_admin_token(self, token_id: str) -> AdminToken | None:
        sql = self.dialect.sql("SELECT * FROM admin_tokens WHERE token_id = $1")
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(sql, token_id)
        return None if row is None else _token(row)

    async def get_admin_token_by_hash(self, token_hash: str) -> AdminToken | None:
        sql = self.dialect.sql("SELECT * FROM admin_tokens WHERE token_hash = $1")
        async with self._read(inline=True) as tx:
            row = await tx.fetchrow(sql, token_hash)
        return None if row is None else _token(row)

    async def list_admin_tokens(self, *, include_revoked: bool = False) -> list[AdminToken]:
        sql = "SELECT * FROM admin_tokens"
        if not include_revoked:
            sql += " WHERE revoked_at IS NULL"
        async with self._read() as tx:
            rows = await tx.fetch(sql + " ORDER BY created_at, token_id")
        return [_token(r) for r in rows]

    async def rotate_admin_token(
        self, token_id: str, token_hash: str, at: float
    ) -> AdminToken | None:
        sql = (
            "UPDATE admin_tokens SET token_hash = $2, rotated_at = $3"
            " WHERE token_id = $1 AND revoked_at IS NULL RETURNING *"
        )
        async with self._write() as tx:
            row = await tx.fetchrow(self.dialect.sql(sql), token_id, token_hash, at)
        return None if row is None else _token(row)

    async def revoke_admin_token(self, token_id: str, at: float) -> bool:
        sql = "UPDATE admin_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL"
        async with self._write() as tx:
            return await tx.execute(self.dialect.sql(sql), token_id, at) > 0
