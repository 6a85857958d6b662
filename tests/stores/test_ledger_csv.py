"""The FOCUS CSV formatted by the database (``ledger_csv``), on every backend: parsed, it holds
exactly what the Python formatter (``focus.focus_values``) makes of the same jobs, hostile
text and odd amounts included, and it streams in bounded chunks that stop cleanly."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import asyncpg
import pytest
import uvloop

from bench.ledger import seed
from harness.waits import wait_until
from proxy import money
from proxy.governance import focus
from proxy.stores import Store, open_store
from proxy.stores._ledger_csv import LedgerCsvMixin
from proxy.stores._pg_copy import copy_out
from proxy.stores.records import LedgerRow
from proxy.stores.sqlite import SqliteStore
from tests.stores.helpers import T0, new_job

HOSTILE = (
    "comma, inside",
    'say "hi", twice ""',
    "line\nbreak",
    "carriage\rreturn\r\n",
    " leading and trailing ",
    "",
    "ünïcödé ✓ 🎬 \u2028",
    "semi;colon 'single' `back`",
    "back\\slash \\n \\u0000",
    "tab\there",
    "=SUM(A1)+1",
    "a/b/c",
    "%s %d %% printf",
    '{"json": [1]}',
)
WINDOW = (T0 - 40 * 86400, T0 + 60 * 86400)
AMOUNTS = (0, 1, 999_999, 1_000_000, 324_000, -500_000, -1, 9_000_000_000_123_456, None)


def _parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def _expected(job: LedgerRow) -> list[str]:
    """The Python formatter's row as a CSV reader sees it: ``None`` is an empty field."""
    return ["" if v is None else v for v in focus.focus_values(job)]


def _tags_parsed(row: list[str]) -> list[object]:
    at = focus.COLUMNS.index("Tags")
    return [*row[:at], json.loads(row[at]), *row[at + 1 :]]


async def _insert_hostile(store: Store, texts: tuple[str, ...]) -> int:
    n = 0
    for i, text in enumerate(texts):
        amount = AMOUNTS[i % len(AMOUNTS)]
        for j, status in enumerate(("success", "failed")):
            task_id = f"t{i}{j}/{text}"
            await store.insert_job(
                new_job(
                    task_id,
                    team=text if j == 0 else (None if i % 2 else f"team {text}"),
                    project=None if i % 3 == 0 else text,
                    alias=[text, None, "", "minimax/hailuo"][(i + j) % 4],
                    pinned_slug=text if i % 4 == 1 else f"pub {text}/model",
                    correlation_id=None if i % 5 == 0 else f"{text}-{j}",
                    price_table_version=[None, "", f"v{text}"][i % 3],
                    estimated_cost_micros=AMOUNTS[(i + 3) % len(AMOUNTS)],
                    price_source=[None, "operator", "upstream_list", text][i % 4],
                    estimate_low_micros=AMOUNTS[(i + 5) % len(AMOUNTS)],
                    estimate_high_micros=AMOUNTS[(i + 7) % len(AMOUNTS)],
                    submitted_at=T0 + 10 * i + 0.9999 * j,
                    api=("modellix", "openai")[j],
                )
            )
            await store.observe(
                task_id,
                status,
                T0 + 10 * i + [0.2, 3.7, 2000.5][i % 3],  # within the same second, or later
                final_cost_micros=amount,
                cost_source=[None, "charge", "estimate", text][i % 4],
            )
            n += 1
    await store.insert_job(new_job("open/1", submitted_at=T0 + 1))  # not terminal: no row
    for i, at in enumerate((T0 - 0.5, T0 - 86400 * 31 + 0.999, T0 + 59 * 86400 - 1e-4)):
        await store.insert_job(new_job(f"edge/{i}", submitted_at=at))  # month and year ends
        await store.observe(f"edge/{i}", "success", at + 0.25, final_cost_micros=i)
        n += 1
    return n


async def _check_equal(store: Store, page_size: int) -> list[bytes]:
    chunks = [c async for c in focus.csv_chunks(store, *WINDOW, page_size=page_size)]
    rows = _parse(b"".join(chunks))
    assert rows[0] == list(focus.COLUMNS)
    jobs = [job async for page in store.ledger_pages(*WINDOW) for job in page]
    assert len(rows) == len(jobs) + 1
    for got, job in zip(rows[1:], jobs, strict=True):
        pairs = zip(_tags_parsed(got), _tags_parsed(_expected(job)), strict=True)
        differ = {name: (a, b) for name, (a, b) in zip(focus.COLUMNS, pairs, strict=True) if a != b}
        assert differ == {}, job.task_id
    return chunks


async def test_sql_csv_equals_the_python_formatter_on_hostile_text(store: Store) -> None:
    """Quotes, commas, line breaks, printf and JSON syntax, empty and missing text, negative
    and huge amounts: the database's CSV parses to the Python formatter's values."""
    n = await _insert_hostile(store, HOSTILE)
    chunks = await _check_equal(store, page_size=3)
    if isinstance(store, SqliteStore):  # keyset pages of 3 rows, one chunk each
        assert len(chunks) == -(-n // 3)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_sql_csv_keeps_nul_on_sqlite(store: Store) -> None:
    """SQLite text may hold NUL (PostgreSQL's cannot): the field keeps it, whole."""
    await _insert_hostile(store, ("nul\x00inside", "\x00", 'before\x00"quote", after'))
    await _check_equal(store, page_size=2)


async def test_sql_csv_pages_split_ties_on_submit_time(store: Store) -> None:
    """Jobs submitted at the same instant, split across keyset pages (each page starting at
    the last row's time): each exactly once, in task id order."""
    await store.insert_job(new_job("early/1", submitted_at=T0 + 1))
    await store.observe("early/1", "failed", T0 + 30)
    for i in range(7):
        await store.insert_job(new_job(f"tie/{i}", submitted_at=T0 + 10.5))
        await store.observe(f"tie/{i}", "success", T0 + 20, final_cost_micros=100 + i)
    chunks = [c async for c in focus.csv_chunks(store, T0, T0 + 99, page_size=3)]
    rows = _parse(b"".join(chunks))[1:]
    at = focus.COLUMNS.index("ResourceId")
    assert [r[at] for r in rows] == ["early/1", *(f"tie/{i}" for i in range(7))]
    if isinstance(store, SqliteStore):
        assert len(chunks) == 3


async def test_sql_csv_costs_sum_to_the_ledger_in_bounded_chunks(store_url: str) -> None:
    """3,000 seeded jobs: one row each, in order, cost columns summing to the ledger's spend
    exactly, in chunks of bounded size."""
    now = T0 + 40 * 86400
    await seed(store_url, 3000, days=30, now=now)
    store = await open_store(store_url)
    try:
        chunks = [c async for c in focus.csv_chunks(store, 0, now + 1, page_size=200)]
        assert len(chunks) >= 3
        assert max(len(c) for c in chunks) < 1_000_000  # a page, or 256 KB and a COPY batch
        rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode(), newline="")))
        assert len(rows) == 3000
        ledger = (await store.spend_summary(0, now + 1))[0].final_cost_micros
        for column in (*focus.COST_COLUMNS, "ListUnitPrice", "ContractedUnitPrice"):
            assert money.parse(str(sum(Decimal(r[column]) for r in rows))) == ledger
        assert [r["ResourceId"] for r in rows] == sorted(r["ResourceId"] for r in rows)
    finally:
        await store.close()


async def test_an_export_closed_early_leaves_the_store_usable(store_url: str) -> None:
    """A client that goes away after the first chunk: the read (PostgreSQL's COPY) stops,
    its connection goes back clean, and the next reads answer in full."""
    now = T0 + 40 * 86400
    await seed(store_url, 3000, days=30, now=now)
    store = await open_store(store_url)
    try:
        for _ in range(3):
            chunks = focus.csv_chunks(store, 0, now + 1, page_size=100)
            assert (await anext(chunks)).count(b"\n") >= 2
            await chunks.aclose()
        whole = b"".join([c async for c in store.ledger_csv(0, now + 1, focus.SQL_FIELDS)])
        assert len(_parse(whole)) == 3000
        assert (await store.spend_summary(0, now + 1))[0].jobs == 3000
    finally:
        await store.close()


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_keyset_pages_and_copy_agree_on_postgres(store: Store) -> None:
    """The engine-neutral keyset-page form (what SQLite runs) gives PostgreSQL's COPY rows,
    field for field, on the hostile ledger."""
    await _insert_hostile(store, HOSTILE)
    copied = b"".join([c async for c in store.ledger_csv(T0, T0 + 10_000, focus.SQL_FIELDS)])
    paged = LedgerCsvMixin.ledger_csv(store, T0, T0 + 10_000, focus.SQL_FIELDS, 4)  # type: ignore[arg-type]
    pages = [c async for c in paged]
    assert len(pages) == -(-2 * len(HOSTILE) // 4)
    assert _parse(b"".join(pages)) == _parse(copied)


async def _copies_running(url: str) -> int:
    """How many backends of this test's database are running a ``COPY`` now."""
    admin = await asyncpg.connect(url)
    try:
        return int(
            await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state = 'active' AND query LIKE 'COPY%'"
            )
        )
    finally:
        await admin.close()


@contextmanager
def _busy_cores(n: int = 3) -> Iterator[None]:
    """``n`` processes spinning, so the event loop runs late and a socket gathers several
    reads between two of its turns, as on a loaded machine."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
def test_exports_left_mid_copy_on_a_busy_machine_stop_quietly(store_url: str) -> None:
    """Exports closed mid-``COPY`` (some at once, some once the queue is full and the ``COPY``
    waits for room) on the proxy's event loop (uvloop) while three processes keep the cores
    busy: the loop is told of no error (asyncpg failing on a batch that arrives for no waiter:
    it did 23 times in 300 when the ``COPY``'s task was cancelled instead), every ``COPY``
    stops on the server, and the next export is whole."""
    now = T0 + 40 * 86400
    errors: list[str] = []

    async def leave_exports() -> None:
        await seed(store_url, 4000, days=30, now=now)
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: errors.append(str(context["message"])))
        store = await open_store(store_url)
        try:
            with _busy_cores():
                for i in range(60):
                    chunks = focus.csv_chunks(store, 0, now + 1, page_size=100)
                    assert (await anext(chunks)).startswith(b"AvailabilityZone,")
                    for _ in range(i % 4):  # 0 to 3 turns of 10 ms: the queue fills meanwhile
                        await asyncio.sleep(0.01)
                    await chunks.aclose()
            await wait_until(lambda: _no_copies(store_url), what="every COPY stopped")
            whole = b"".join([c async for c in store.ledger_csv(0, now + 1, focus.SQL_FIELDS)])
            assert len(_parse(whole)) == 4000
        finally:
            await store.close()

    uvloop.run(leave_exports())
    assert errors == []


async def _no_copies(url: str) -> bool:
    return await _copies_running(url) == 0


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_copy_that_cannot_be_cancelled_runs_out_quietly(store_url: str) -> None:
    """When the server cannot be asked to cancel (the pool has no connection to spare), a
    ``COPY`` whose reader left runs to its end with its batches dropped: the iterator closes
    without an error, and its connection is closed rather than handed out again."""
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: errors.append(str(context.get("message"))))
    pool = await asyncpg.create_pool(store_url, min_size=1, max_size=1)
    tried: list[type[BaseException]] = []

    async def cancel(pid: int) -> None:  # what the store does, on a pool of one
        try:
            async with pool.acquire(timeout=0.2) as other:
                await other.execute("SELECT pg_cancel_backend($1)", pid)
        except TimeoutError as exc:
            tried.append(type(exc))

    try:
        async with pool.acquire() as conn:
            pid = conn.get_server_pid()
            select = "SELECT g, repeat('x', 200) FROM generate_series(1, $1::int) g"
            chunks = copy_out(conn, select, (200_000,), cancel=cancel, chunk_bytes=1 << 16)
            assert len(await anext(chunks)) >= 1 << 16
            await chunks.aclose()
            assert tried == [TimeoutError]
        async with pool.acquire() as fresh:
            assert fresh.get_server_pid() != pid
            assert await fresh.fetchval("SELECT 1") == 1
    finally:
        await pool.close()
        loop.set_exception_handler(None)
    assert errors == []
