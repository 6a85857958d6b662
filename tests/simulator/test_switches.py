"""Switches, in config and live: billing in answers, prices (with a stale list), schemas."""

from __future__ import annotations

from typing import Any

from proxy.simulator import ManualClock, Simulator
from proxy.simulator.config import SchemaChange
from tests.simulator.conftest import Client, MakeClient, poll, submit

SimClient = tuple[Simulator, Client]
KLING = "kling/kling-v3-t2v"
SEEDANCE = "bytedance/seedance-2.0-t2v"


async def _listed(client: Client, slug: str) -> dict[str, Any]:
    body = await (await client.get("/api/v1/models")).json()
    item: dict[str, Any] = next(m for m in body["models"] if m["slug"] == slug)
    price: dict[str, Any] = item["price"]
    return price


async def _amount(client: Client, clock: ManualClock, slug: str, body: dict[str, Any]) -> str:
    task_id = (await submit(client, body, f"/api/v1/{slug}"))["data"]["task_id"]
    clock.advance(60)
    answer = (await poll(client, task_id))[1]
    amount: str = answer["data"]["billing"]["amount"]
    return amount


async def test_billing_switch_live(sim_client: SimClient, clock: ManualClock) -> None:
    """POST /_sim/switches turns data.billing off and on again; bad switches are 400."""
    _, client = sim_client
    task_id = (await submit(client, {"prompt": "x"}))["data"]["task_id"]
    clock.advance(60)
    off = await client.post("/_sim/switches", json={"report_billing": False})
    assert (await off.json())["data"] == {"report_billing": False}
    assert "billing" not in (await poll(client, task_id))[1]["data"]
    await client.post("/_sim/switches", json={"report_billing": True})
    assert (await poll(client, task_id))[1]["data"]["billing"]["amount"] == "0.3240"
    for bad in ({"report_billing": "no"}, {"other": True}, [1]):
        assert (await client.post("/_sim/switches", json=bad)).status == 400


async def test_price_change_with_the_list_following(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """A new price is charged on new tasks and listed; an accepted task keeps its cost."""
    sim, client = sim_client
    before = (await submit(client, {"prompt": "x"}, f"/api/v1/{KLING}"))["data"]["task_id"]
    changed = await client.post("/_sim/prices", json={"slug": KLING, "price": 0.2})
    assert (await changed.json())["data"]["price"] == {"fixed": 0.2, "unit": "$/sec"}
    assert await _listed(client, KLING) == {"fixed": 0.2, "unit": "$/sec"}
    assert await _amount(client, clock, KLING, {"prompt": "x"}) == "1.0000"
    assert sim.tasks[before].cost_micros == 500_000


async def test_stale_list_shows_the_old_price_while_the_charge_changes(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """``list_follows: false``: the list keeps the old figure, tasks are charged the new one."""
    _, client = sim_client
    body = {"slug": SEEDANCE, "price": {"480p": 0.06, "720p": 0.12}, "list_follows": False}
    response = await client.post("/_sim/prices", json=body)
    assert (await response.json())["data"]["charged"] == {"480P": 0.06, "720P": 0.12}
    assert await _listed(client, SEEDANCE) == {"min": 0.05, "max": 0.4, "unit": "$/sec"}
    assert await _amount(client, clock, SEEDANCE, {"prompt": "x"}) == "0.6000"  # 5 s at 720p
    await client.delete(f"/_sim/prices/{SEEDANCE}")
    assert await _amount(client, clock, SEEDANCE, {"prompt": "x"}) == "0.5000"


async def test_listed_price_alone_changes_only_the_display(
    sim_client: SimClient, clock: ManualClock
) -> None:
    """``listed_price`` changes what the list shows, not what is charged; null follows again."""
    _, client = sim_client
    await client.post("/_sim/prices", json={"slug": KLING, "listed_price": 0.08})
    assert await _listed(client, KLING) == {"fixed": 0.08, "unit": "$/sec"}
    assert await _amount(client, clock, KLING, {"prompt": "x"}) == "0.5000"
    await client.post("/_sim/prices", json={"slug": KLING, "listed_price": None})
    assert await _listed(client, KLING) == {"fixed": 0.1, "unit": "$/sec"}


async def test_price_control_refusals(sim_client: SimClient) -> None:
    """An unknown model is 404; a missing or bad price is 400."""
    _, client = sim_client
    unknown = await client.post("/_sim/prices", json={"slug": "acme/x", "price": 1})
    assert unknown.status == 404
    assert (await unknown.json())["message"].startswith("Model not found: ")
    for bad in (
        {"slug": KLING},
        {"slug": KLING, "price": -1},
        {"slug": KLING, "price": "x"},
        {"slug": KLING, "price": "1e999999"},
        {"slug": KLING, "price": {}},
        {"slug": KLING, "price": {"720p": [1]}},
        {},
    ):
        assert (await client.post("/_sim/prices", json=bad)).status == 400, bad


async def test_config_prices_and_a_stale_list_from_the_start(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """``prices`` set the charge and the list; ``listed_prices`` make the list differ."""
    _, client = await make_client(prices={KLING: "0.3"}, listed_prices={KLING: "0.1"})
    assert await _listed(client, KLING) == {"fixed": 0.1, "unit": "$/sec"}
    assert await _amount(client, clock, KLING, {"prompt": "x"}) == "1.5000"


async def test_schema_change_is_published_and_enforced(sim_client: SimClient) -> None:
    """A changed schema shows in api_schema at once and the submit check follows it."""
    sim, client = sim_client
    change = {
        "properties": {
            "resolution": {"type": "string", "enum": ["720p"], "default": "720p"},
            "camera_motion": {"type": "string", "enum": ["static", "orbit"]},
        },
        "remove": ["execution_expires_after"],
    }
    response = await client.post(f"/_sim/schemas/{SEEDANCE}", json=change)
    assert response.status == 200
    published = (await response.json())["data"]["post"]["requestBody"]["content"]
    props = published["application/json"]["schema"]["properties"]
    assert props["resolution"]["enum"] == ["720p"]
    assert "camera_motion" in props
    assert "execution_expires_after" not in props
    assert sim.listing.get(SEEDANCE).schema["properties"] == props
    narrowed = await client.post(f"/api/v1/{SEEDANCE}", json={"prompt": "x", "resolution": "1080p"})
    assert narrowed.status == 400
    assert (await narrowed.json())["message"] == (
        "Value out of range: parameter 'resolution' must be one of ['720p'], got '1080p'"
    )
    bad_motion = {"prompt": "x", "camera_motion": "spin"}
    assert (await client.post(f"/api/v1/{SEEDANCE}", json=bad_motion)).status == 400
    await client.delete(f"/_sim/schemas/{SEEDANCE}")
    restored = await client.post(f"/api/v1/{SEEDANCE}", json={"prompt": "x", "resolution": "1080p"})
    assert restored.status == 200


async def test_schema_change_refusals(sim_client: SimClient) -> None:
    """An invalid schema fragment or unknown model is refused; nothing changes."""
    sim, client = sim_client
    before = dict(sim.listing.get(SEEDANCE).schema)
    bad = await client.post(f"/_sim/schemas/{SEEDANCE}", json={"properties": {"x": {"type": 5}}})
    assert bad.status == 400
    assert (await bad.json())["message"].startswith("Invalid parameters: the changed schema")
    assert sim.listing.get(SEEDANCE).schema == before
    assert (await client.post("/_sim/schemas/acme/x", json={})).status == 404
    assert (await client.post(f"/_sim/schemas/{SEEDANCE}", json={"rename": 1})).status == 400


async def test_schema_change_in_config_and_required_list(make_client: MakeClient) -> None:
    """``schema_changes`` apply at start; a new ``required`` list is enforced."""
    change = SchemaChange(
        properties={"negative_prompt": {"type": "string", "maxLength": 10}},
        required=["prompt", "negative_prompt"],
    )
    sim, client = await make_client(schema_changes={KLING: change})
    refused = await client.post(f"/api/v1/{KLING}", json={"prompt": "x"})
    assert (await refused.json())["message"] == (
        "Invalid parameters: parameter 'negative_prompt' is required"
    )
    assert sim.listing.get(KLING).schema["required"] == ["prompt", "negative_prompt"]
    await submit(client, {"prompt": "x", "negative_prompt": "blur"}, f"/api/v1/{KLING}")
