"""Contract tests of the audit trail and the admin credentials, run against every backend."""

from __future__ import annotations

import asyncio

import pytest

from proxy.audit.verify import verify
from proxy.stores import DuplicateKeyError, Store
from proxy.stores.audit_records import GENESIS, AdminToken, AuditDraft, Role
from tests.stores.helpers import T0, raw_query
from tests.stores.test_budgets_defs import budget


def draft(action: str = "budget.put", subject: str = "growth-daily", at: float = T0) -> AuditDraft:
    """An admin action by a finance token from a loopback peer."""
    return AuditDraft(
        at=at, actor="finance-bot", origin="api", action=action, subject=subject,
        peer="127.0.0.1", request_id="req-1",
    )  # fmt: skip


async def test_audited_change_and_row_commit_together(store: Store) -> None:
    """The change made in the block and its row land together; the row chains from genesis."""
    async with store.audited(draft()) as entry:
        entry.before = None
        stored = await store.put_budget(budget())
        entry.after = {"limit_micros": stored.limit_micros}
    assert [b.name for b in await store.list_budgets()] == ["growth-daily"]
    rows = await store.audit_rows()
    assert len(rows) == 1
    row = rows[0]
    assert entry.row == row
    assert (row.seq, row.prev_hash, row.actor, row.peer) == (1, GENESIS, "finance-bot", "127.0.0.1")
    assert row.after == {"limit_micros": 50_000_000}
    assert row.before is None
    assert row.expected_hash() == row.hash
    chain = await store.audit_chain()
    assert (chain.head_seq, chain.head_hash) == (1, row.hash)


async def test_reads_inside_see_the_change_and_a_failure_records_nothing(store: Store) -> None:
    """Reads in the block see its uncommitted writes; an exception rolls back change and row."""
    await store.put_budget(budget(limit_micros=1))
    seen: list[int] = []

    async def change_then_refuse() -> None:
        async with store.audited(draft()):
            await store.put_budget(budget(limit_micros=2))
            seen.extend(b.limit_micros for b in await store.list_budgets())
            raise LookupError("refused after the change")

    with pytest.raises(LookupError):
        await change_then_refuse()
    assert seen == [2]
    assert [b.limit_micros for b in await store.list_budgets()] == [1]
    assert await store.audit_rows() == []
    assert (await store.audit_chain()).head_seq == 0


async def test_a_failed_statement_inside_rolls_back_only_its_own_call(store: Store) -> None:
    """A store call that fails inside the block (a duplicate) leaves the earlier change."""
    token = AdminToken("aaaaaaaaaaaa", "ops", Role.OPERATOR, "h1", T0)
    await store.create_admin_token(token)
    async with store.audited(draft("admin_token.add", "bbbbbbbbbbbb")) as entry:
        await store.put_budget(budget())
        with pytest.raises(DuplicateKeyError):
            await store.create_admin_token(AdminToken("bbbbbbbbbbbb", "ops", Role.VIEWER, "h2", T0))
        entry.after = "kept"
    assert [b.name for b in await store.list_budgets()] == ["growth-daily"]
    assert [r.after for r in await store.audit_rows()] == ["kept"]


async def test_filters_and_paging(store: Store) -> None:
    """Rows are filtered by time, actor, action and subject, and paged after a sequence number."""
    for i in range(5):
        async with store.audited(draft("key.revoke" if i % 2 else "key.create", f"k{i}", T0 + i)):
            pass
    assert [r.subject for r in await store.audit_rows(action="key.revoke")] == ["k1", "k3"]
    assert [r.seq for r in await store.audit_rows(since=T0 + 1, until=T0 + 3)] == [2, 3]
    assert [r.seq for r in await store.audit_rows(subject="k4", actor="finance-bot")] == [5]
    assert await store.audit_rows(actor="someone-else") == []
    first = await store.audit_rows(limit=2)
    rest = await store.audit_rows(after_seq=first[-1].seq, limit=10)
    assert [r.seq for r in first + rest] == [1, 2, 3, 4, 5]


async def test_verify_names_an_edited_and_a_deleted_row(store: Store, store_url: str) -> None:
    """Editing a row's field or deleting a row directly in the database is named by verify."""
    for i in range(6):
        async with store.audited(draft(subject=f"b{i}", at=T0 + i)) as entry:
            entry.after = {"i": i}
    assert (await verify(store)).ok
    await raw_query(store_url, "UPDATE audit_log SET after_json = '{\"i\":99}' WHERE seq = 2")
    await raw_query(store_url, "DELETE FROM audit_log WHERE seq = 4")
    await raw_query(store_url, "DELETE FROM audit_log WHERE seq = 6")
    verdict = await verify(store)
    named = sorted((p.seq, p.kind) for p in verdict.problems)
    assert named == [(2, "edited"), (4, "deleted"), (6, "deleted")]


async def test_verify_reads_many_rows_in_pages_and_names_each_broken_one(
    store: Store, store_url: str
) -> None:
    """Over 300 rows read 7 at a time (keyset pages), verify still names an edited row, one
    deleted at a page boundary and one deleted at the end, and counts its reads."""
    for i in range(300):
        async with store.audited(draft(subject=f"b{i}", at=T0 + i)) as entry:
            entry.after = {"i": i}
    verdict = await verify(store, page=7)
    assert (verdict.ok, verdict.rows, verdict.pages) == (True, 300, 300 // 7 + 1)
    await raw_query(store_url, "UPDATE audit_log SET subject = 'x' WHERE seq = 123")
    await raw_query(
        store_url, "DELETE FROM audit_log WHERE seq IN (141, 300)"
    )  # 141 = 20 pages + 1
    verdict = await verify(store, page=7)
    named = sorted((p.seq, p.kind) for p in verdict.problems)
    assert named == [(123, "edited"), (141, "deleted"), (300, "deleted")]
    assert (verdict.rows, verdict.pages) == (298, 298 // 7 + 1)
    assert (await verify(store)).problems == verdict.problems  # one page of 1000: the same
    with pytest.raises(ValueError, match="at least 1"):
        await verify(store, page=0)


async def test_verify_names_a_row_whose_hash_was_recomputed(store: Store, store_url: str) -> None:
    """An edit that also rewrites the row's own hash is named by the next row's broken link."""
    for i in range(3):
        async with store.audited(draft(subject=f"b{i}", at=T0 + i)):
            pass
    await raw_query(store_url, "UPDATE audit_log SET hash = 'f00d', actor = 'x' WHERE seq = 2")
    verdict = await verify(store)
    assert [(p.seq, p.kind) for p in verdict.problems] == [(2, "edited")]


async def test_prune_keeps_younger_rows_and_verify_still_passes(store: Store) -> None:
    """Pruning deletes only the old prefix of the chain, anchors it, and the rest verifies."""
    for at in (T0, T0 + 10, T0 + 20, T0 + 5, T0 + 30):  # one late clock: row 4 is older
        async with store.audited(draft(at=at)):
            pass
    assert await store.prune_audit(T0 + 15, 100, T0 + 100) == 2
    assert [r.seq for r in await store.audit_rows()] == [3, 4, 5]  # 4 stays: after a younger row
    chain = await store.audit_chain()
    assert (chain.anchor_seq, chain.pruned_at) == (2, T0 + 100)
    assert await store.prune_audit(T0 + 15, 100, T0 + 100) == 0
    verdict = await verify(store)
    assert verdict.ok
    assert verdict.rows == 3
    async with store.audited(draft(at=T0 + 40)):
        pass
    assert (await verify(store)).ok


async def test_concurrent_appends_from_two_replicas_keep_one_chain(
    store: Store, replica: Store
) -> None:
    """Two stores on one database appending at once (two replicas on PostgreSQL) leave a
    gapless chain in which every row links to the one before it."""

    async def append(on: Store, who: str, n: int) -> None:
        for i in range(n):
            async with on.audited(draft("budget.put", f"{who}-{i}")) as entry:
                await on.put_budget(budget(name=f"{who}-{i}"))
                entry.after = i

    await asyncio.gather(*(append(s, f"r{j}", 25) for j, s in enumerate([store, replica] * 2)))
    rows = await store.audit_rows(limit=1000)
    assert [r.seq for r in rows] == list(range(1, 101))
    assert len({r.subject for r in rows}) == 100
    verdict = await verify(store)
    assert verdict.ok, verdict.problems
    assert len(await store.list_budgets()) == 100


async def test_admin_tokens_add_rotate_revoke(store: Store) -> None:
    """Tokens are found by hash; a rotation replaces the hash; a name is unique while active."""
    added = await store.create_admin_token(
        AdminToken("t1t1t1t1t1t1", "fin", Role.FINANCE, "h1", T0)
    )
    assert await store.get_admin_token_by_hash("h1") == added
    with pytest.raises(DuplicateKeyError):
        await store.create_admin_token(AdminToken("t2t2t2t2t2t2", "fin", Role.VIEWER, "h2", T0))
    rotated = await store.rotate_admin_token("t1t1t1t1t1t1", "h3", T0 + 1)
    assert rotated is not None
    assert rotated.rotated_at == T0 + 1
    assert await store.get_admin_token_by_hash("h1") is None
    assert await store.revoke_admin_token("t1t1t1t1t1t1", T0 + 2)
    assert not await store.revoke_admin_token("t1t1t1t1t1t1", T0 + 3)
    assert await store.rotate_admin_token("t1t1t1t1t1t1", "h4", T0 + 3) is None
    assert await store.list_admin_tokens() == []
    again = await store.create_admin_token(AdminToken("t2t2t2t2t2t2", "fin", Role.VIEWER, "h2", T0))
    assert [t.token_id for t in await store.list_admin_tokens(include_revoked=True)] == [
        "t1t1t1t1t1t1",
        again.token_id,
    ]
