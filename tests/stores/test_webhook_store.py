"""Contract tests of webhook deliveries and balance readings, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest

from proxy.stores import Store, open_store
from proxy.stores._webhooks import NoDeliveryRendererError
from proxy.stores.records import JobRecord, JobStatus
from proxy.stores.webhook_records import BalanceReading, DeliveryState, RenderedDelivery
from proxy.webhooks.document import delivery_id, terminal_body
from tests.stores.helpers import T0, new_job

URL = "https://hooks.example.com/done"


async def _terminal(
    store: Store, task_id: str, status: str = "success", at: float = T0 + 60
) -> None:
    await store.observe(
        task_id, status, at, source="watcher", output_urls=["https://cdn/x.mp4"],
        final_cost_micros=324_000 if status == "success" else None,
    )  # fmt: skip


async def test_terminal_transition_enqueues_one_delivery_with_the_task_document(
    store: Store,
) -> None:
    """A job with a callback gets exactly one pending delivery when it turns terminal."""
    await store.insert_job(new_job("t-1", callback_url=URL))
    await store.insert_job(new_job("t-2"))
    assert (await store.get_job("t-1")).callback_url == URL  # type: ignore[union-attr]
    await store.observe("t-1", "processing", T0 + 10, source="watcher")
    assert await store.list_deliveries() == []
    await _terminal(store, "t-1")
    await _terminal(store, "t-2")
    await _terminal(store, "t-1", at=T0 + 70)  # a repeated terminal observation changes nothing
    deliveries = await store.list_deliveries()
    assert [d.task_id for d in deliveries] == ["t-1"]
    d = deliveries[0]
    assert d.delivery_id == delivery_id("t-1")
    assert (d.state, d.attempts, d.url, d.next_attempt_at) == ("pending", 0, URL, T0 + 60)
    doc = json.loads(d.body)
    assert doc["data"] == {
        "status": "success",
        "task_id": "t-1",
        "result": {"resources": [{"url": "https://cdn/x.mp4"}]},
    }
    assert doc["modellix_proxy"]["final_cost_usd"] == 0.324


async def test_the_delivery_is_what_the_renderer_given_at_open_returns(store_url: str) -> None:
    """The store records the id and body its renderer returns, rendered from the terminal job."""
    seen: list[JobStatus] = []

    def render(job: JobRecord) -> RenderedDelivery:
        seen.append(job.status)
        return RenderedDelivery(f"msg_{job.task_id}", terminal_body(job))

    store = await open_store(store_url, render_delivery=render)
    try:
        await store.insert_job(new_job("t-1", callback_url=URL))
        await _terminal(store, "t-1")
        [d] = await store.list_deliveries()
    finally:
        await store.close()
    assert seen == [JobStatus.SUCCESS]
    assert d.delivery_id == "msg_t-1"
    assert json.loads(d.body)["data"]["status"] == "success"


async def test_a_store_without_a_renderer_refuses_to_end_a_callback_job(store_url: str) -> None:
    """Opened without ``render_delivery``, the terminal transaction of a job with a callback
    fails and writes nothing: the job stays open, no delivery is lost silently."""
    store = await open_store(store_url)
    try:
        await store.insert_job(new_job("t-1", callback_url=URL))
        await store.insert_job(new_job("t-2"))
        with pytest.raises(NoDeliveryRendererError):
            await _terminal(store, "t-1")
        await _terminal(store, "t-2")  # a job without a callback needs no renderer
        assert (await store.get_job("t-1")).status is JobStatus.PENDING  # type: ignore[union-attr]
        assert (await store.get_job("t-2")).status is JobStatus.SUCCESS  # type: ignore[union-attr]
        assert await store.list_deliveries() == []
    finally:
        await store.close()


async def test_leased_delivery_is_retried_then_dead_lettered_and_redelivered(
    store: Store, replica: Store
) -> None:
    """A leased delivery is invisible to other workers; failures reschedule, then dead-letter."""
    await store.insert_job(new_job("t-1", callback_url=URL))
    await _terminal(store, "t-1")
    now = T0 + 61
    leased = await store.lease_deliveries("a", now, 10, 30)
    assert [d.task_id for d in leased] == ["t-1"]
    assert await replica.lease_deliveries("b", now + 1, 10, 30) == []
    did = leased[0].delivery_id
    assert not await replica.delivery_failed(did, "b", 500, "not the holder", now + 5)
    assert await store.delivery_failed(did, "a", 500, "the receiver answered 500", now + 5)
    assert await replica.lease_deliveries("b", now + 4, 10, 30) == []
    again = await replica.lease_deliveries("b", now + 5, 10, 30)
    assert [(d.attempts, d.last_status) for d in again] == [(1, 500)]
    assert await replica.delivery_failed(did, "b", None, "refused", None)
    dead = await store.get_delivery("t-1")
    assert dead is not None
    assert (dead.state, dead.attempts) == (DeliveryState.DEAD, 2)
    assert await store.lease_deliveries("a", now + 1e6, 10, 30) == []
    assert await store.delivery_counts() == {"pending": 0, "delivered": 0, "dead": 1}
    assert await store.redeliver(did, now + 100)
    retried = await store.lease_deliveries("a", now + 100, 10, 30)
    assert [d.attempts for d in retried] == [0]
    assert await store.delivery_succeeded(did, now + 101, 204)
    assert await store.purge_deliveries(T0 + 60, 10) == 0  # created at T0 + 60: not before
    done = await store.get_delivery(did)
    assert done is not None
    assert (done.state, done.last_status) == (DeliveryState.DELIVERED, 204)


async def test_webhook_endpoints_are_set_read_and_removed(store: Store) -> None:
    """A per-caller default callback URL can be set, replaced and removed."""
    assert await store.get_webhook_endpoint("vk:abc") is None
    await store.set_webhook_endpoint("vk:abc", URL, T0)
    await store.set_webhook_endpoint("vk:abc", URL + "2", T0 + 1)
    assert await store.list_webhook_endpoints() == {"vk:abc": URL + "2"}
    assert await store.set_webhook_endpoint("vk:abc", None, T0 + 2)
    assert not await store.set_webhook_endpoint("vk:abc", None, T0 + 3)


async def test_balance_readings_round_trip(store: Store) -> None:
    """A reading is stored per team, replaced as a whole, and listed."""
    reading = BalanceReading(
        team="upstream", balance_micros=5, read_at=T0, first_read_at=T0, settled_through=7
    )
    await store.put_balance_reading(reading)
    assert await store.get_balance_reading("upstream") == reading
    assert await store.list_balance_readings() == [reading]


async def test_only_finished_deliveries_are_purged(store: Store) -> None:
    """Purging takes delivered and dead rows older than the cutoff, never pending ones."""
    for i in range(3):
        await store.insert_job(new_job(f"p-{i}", callback_url=URL))
        await _terminal(store, f"p-{i}", at=T0 + i)
    leased = await store.lease_deliveries("a", T0 + 10, 10, 30)
    assert len(leased) == 3
    await store.delivery_succeeded(leased[0].delivery_id, T0 + 11, 200)
    await store.delivery_failed(leased[1].delivery_id, "a", 500, "no", None)
    assert await store.purge_deliveries(T0 + 100, 1) == 1
    assert await store.purge_deliveries(T0 + 100, 10) == 1
    assert [d.task_id for d in await store.list_deliveries()] == ["p-2"]
