"""The published request schemas: their data, the api_schema documents, the schema origin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from pytest_aiohttp import AiohttpClient

from proxy import simulator
from proxy.catalog.loader import load_catalog
from proxy.simulator import Simulator, SimulatorConfig, build_schema_app, running
from proxy.simulator.models import MODELS, SCHEMAS, check_request, task_cost_micros
from proxy.simulator.pricing import unit_price
from proxy.simulator.scripts.additions import PATCHES
from proxy.simulator.scripts.build_schemas import REFERENCE, build, render
from tests.simulator.conftest import AUTH

DATA = Path(simulator.__file__).parent / "data"


def _reference() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(REFERENCE.read_text("utf-8"))
    return doc


def test_checked_in_schemas_are_exactly_what_the_script_builds() -> None:
    """schemas.json equals a fresh build from the copied reference and the additions."""
    assert render(build(_reference())) == (DATA / "schemas.json").read_text("utf-8")


def test_every_reference_parameter_is_published_with_its_facts() -> None:
    """Each reference parameter is published with its type, enum and bounds (unless patched)."""
    checked = 0
    for slug, entry in _reference().items():
        if slug == "_meta":
            continue
        properties = SCHEMAS[slug].schema["properties"]
        patched = {p["name"] for p in PATCHES.get(slug, [])}
        for param in entry["parameters"]:
            prop = properties[param["name"]]
            assert prop["type"] == param["type"].split("(")[0].split("<")[0], (slug, param)
            if param["name"] in patched:
                continue
            for source, target in (("enum", "enum"), ("min", "minimum"), ("max", "maximum")):
                assert prop.get(target) == param.get(source), (slug, param["name"], target)
            checked += 1
    assert checked > 200


def test_every_model_publishes_a_valid_schema_and_an_accepted_example() -> None:
    """Every schema is valid JSON Schema, and its minimal example passes the submit check."""
    assert {spec.slug for spec in MODELS.values()} == set(SCHEMAS)
    for spec in MODELS.values():
        published = SCHEMAS[spec.slug]
        Draft202012Validator.check_schema(published.schema)
        assert published.schema["type"] == "object"
        example = published.examples["minimal"]["value"]
        assert set(published.schema.get("required", [])) <= set(example), spec.slug
        assert check_request(spec, example) is None, spec.slug


def test_upstream_publishes_values_the_proxy_catalog_lacks() -> None:
    """Hailuo 02 i2v takes ``512P``, which the proxy's catalog lacks (the schema tests' case of
    a disagreement); Seedance 2.0's ``fps`` is published and the catalog carries it alike."""
    catalog = load_catalog()
    for slug in ("bytedance/seedance-2.0-t2v", "bytedance/seedance-2.0-mini-v2v"):
        fps = SCHEMAS[slug].schema["properties"]["fps"]
        assert (fps["type"], fps["enum"]) == ("integer", [24])
        proxy_spec = catalog.get(slug)
        assert proxy_spec is not None
        ours = proxy_spec.json_schema["properties"]["fps"]
        assert (ours["type"], ours["enum"]) == ("integer", [24])
    resolution = SCHEMAS["minimax/hailuo-02-i2v"].schema["properties"]["resolution"]
    assert "512P" in resolution["enum"]
    hailuo = catalog.get("minimax/hailuo-02-i2v")
    assert hailuo is not None
    assert "512P" not in hailuo.json_schema["properties"]["resolution"]["enum"]


def test_published_defaults_are_what_a_bare_body_is_billed_for() -> None:
    """A video model's minimal body costs its price at the published resolution x duration."""
    checked = 0
    for spec in MODELS.values():
        if spec.basis != "seconds":
            continue
        schema = SCHEMAS[spec.slug].schema
        props = schema["properties"]
        body = SCHEMAS[spec.slug].examples["minimal"]["value"]
        seconds = props.get("duration", {}).get("default") or 5
        key = props.get(spec.price_field, {}).get("default", "*")
        expected = unit_price(spec.price, key) * seconds
        assert task_cost_micros(spec, body) == int(expected * 1_000_000), spec.slug
        checked += 1
    assert checked > 30


async def test_api_schema_document_needs_no_key(aiohttp_client: AiohttpClient) -> None:
    """GET /models/{provider}/{model_id}/api_schema answers the document without a key."""
    sim = Simulator(SimulatorConfig.fast())
    client = await aiohttp_client(build_schema_app(sim))
    response = await client.get("/models/bytedance/seedance-2.0-fast-i2v/api_schema")
    assert response.status == 200
    assert response.content_type == "application/json"
    doc = await response.json()
    assert doc["servers"] == [
        {"url": "https://api.modellix.ai/api/v1/bytedance/seedance-2.0-fast-i2v"}
    ]
    post = doc["post"]
    assert post["operationId"] == "seedance20FastI2v"
    assert post["description"]
    content = post["requestBody"]["content"]["application/json"]
    schema = content["schema"]
    assert schema["type"] == "object"
    assert schema["required"] == ["prompt"]
    assert schema["properties"]["resolution"] == {
        "type": "string",
        "enum": ["480p", "720p"],
        "default": "720p",
        "description": "Output resolution.",
    }
    assert schema["properties"]["duration"]["default"] == 5
    assert content["examples"]["minimal"]["value"] == {
        "prompt": "A red fox running through fresh snow at dawn"
    }
    assert set(post["responses"]) == {"200", "400", "401", "402", "429", "500"}
    accepted = post["responses"]["200"]["content"]["application/json"]
    Draft202012Validator(accepted["schema"]).validate(accepted["example"])
    assert sim.requests(route="schema")[0].status == 200


async def test_schema_origin_refuses_in_json(aiohttp_client: AiohttpClient) -> None:
    """An unknown model is 404 ``Model not found``; other paths and methods answer JSON too."""
    sim = Simulator(SimulatorConfig.fast())
    client = await aiohttp_client(build_schema_app(sim))
    unknown = await client.get("/models/acme/nothing/api_schema")
    assert unknown.status == 404
    assert await unknown.json() == {"code": 404, "message": "Model not found: acme/nothing"}
    for method, path, status in (
        ("GET", "/api/v1/models", 404),
        ("POST", "/models/minimax/hailuo-2.3-t2v/api_schema", 405),
    ):
        response = await client.request(method, path)
        assert response.status == status
        assert (await response.json())["code"] == status
    assert sim.counters.requests["schema"] == 3
    assert sim.counters.tasks_created == 0


async def test_schema_lookup_ignores_case(aiohttp_client: AiohttpClient) -> None:
    """The model in the schema path is matched case-insensitively, like submits."""
    client = await aiohttp_client(build_schema_app(Simulator(SimulatorConfig.fast())))
    response = await client.get("/models/MiniMax/Hailuo-2.3-T2V/api_schema")
    assert response.status == 200
    doc = await response.json()
    assert doc["servers"][0]["url"].endswith("/api/v1/minimax/hailuo-2.3-t2v")


async def test_running_serves_the_schema_origin_on_its_own_listener() -> None:
    """``running()`` exposes ``schema_url``; the API origin does not serve schemas."""
    path = "/models/google/nano-banana-2-lite/api_schema"
    async with running(SimulatorConfig.fast()) as handle, aiohttp.ClientSession() as session:
        assert handle.schema_url != handle.url
        async with session.get(handle.schema_url + path) as response:
            assert response.status == 200
            doc = await response.json()
        assert doc["post"]["requestBody"]["content"]["application/json"]["schema"]["required"] == [
            "prompt"
        ]
        async with session.get(handle.url + path, headers=AUTH) as response:
            assert response.status == 404


@pytest.mark.parametrize("slug", sorted(spec.slug for spec in MODELS.values()))
async def test_every_served_model_has_a_document(aiohttp_client: AiohttpClient, slug: str) -> None:
    """Every model the simulator serves answers its api_schema document."""
    sim = Simulator(SimulatorConfig.fast())
    client = await aiohttp_client(build_schema_app(sim))
    response = await client.get(f"/models/{slug}/api_schema")
    assert response.status == 200
    doc = await response.json()
    schema = doc["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"] == SCHEMAS[slug].schema["properties"]
