"""Property tests through the live proxy: no body crashes it or reaches the upstream while invalid.

For every generated body (arbitrary bytes, arbitrary JSON, objects with random field names and
types, mutations of valid bodies) the proxy must answer with a well-formed envelope and never a
5xx, keep answering (``/healthz``), and:

- when it refuses, the simulator's submit count did not move;
- when it forwards, the catalog validator (schema and inline media) accepts the body, and the
  simulator, the stand-in for the real API, accepts it too (200): the two tables agree.

How hypothesis meets asyncio here: pytest-asyncio runs an ``async def`` test decorated with
``@given`` by driving each generated example to completion on the test's own event loop. The
stack fixtures (simulator + proxy on loopback) are therefore built once per test and shared by
all its examples, which is intended (the proxy must survive the whole run), so the
``function_scoped_fixture`` health check is suppressed. Examples are bounded (150 per test,
``deadline=None``), and URL preflight is off so a random ``http://`` string never waits on DNS
(preflight has its own tests in test_ssrf.py).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from proxy.catalog.loader import load_catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.spec import ModelSpec
from proxy.catalog.validation import BodyValidator, parse_body
from proxy.errors import MalformedJSON
from proxy.simulator import SimulatorConfig
from tests.catalog.imagebytes import example_body
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]
CATALOG = load_catalog()
SPECS = sorted(CATALOG, key=lambda s: s.slug)
SLUGS = [spec.slug for spec in SPECS]
REFUSE = BodyValidator(CATALOG, unknown_fields="refuse")
WARN = BodyValidator(CATALOG, unknown_fields="warn")
CATEGORIES = (
    "Invalid parameters: ",
    "Missing required parameter: ",
    "Value out of range: ",
    "Invalid format: ",
)
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(sorted({p for s in SPECS for p in s.properties})) | st.text(
    max_size=12
)


async def _stack(make_stack: MakeStack, **models: Any) -> Stack:
    sim = SimulatorConfig.fast(concurrency_limit=0, initial_balance_usd=Decimal(10**9))
    return await make_stack(sim, models={"preflight": {"mode": "off"}, **models})


@pytest.fixture
async def strict(make_stack: MakeStack) -> Stack:
    return await _stack(make_stack)


@pytest.fixture
async def lenient(make_stack: MakeStack) -> Stack:
    return await _stack(make_stack, unknown_fields="warn")


def encode(body: Any, ascii_only: bool) -> bytes:
    return json.dumps(body, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


async def catalog_accepts(validator: BodyValidator, slug: str, raw: bytes) -> bool:
    spec = CATALOG.get(slug)
    assert spec is not None
    try:
        payload = parse_body(raw)
    except MalformedJSON:
        return False
    problems, _ = validator.check(spec, payload)
    media_problems, _ = await MediaChecker().check(spec, payload, network=False)
    return not problems and not media_problems


async def probe(
    stack: Stack, http: aiohttp.ClientSession, validator: BodyValidator, slug: str, raw: bytes
) -> None:
    """Send one body; check the answer, the upstream count and the catalog's verdict agree."""
    before = stack.sim.counters.submits_received
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{stack.proxy_url}/api/v1/{slug}", data=raw, headers=headers) as resp:
        status = resp.status
        doc = await resp.json(content_type=None)
    forwarded = stack.sim.counters.submits_received - before
    assert status < 500, doc
    assert isinstance(doc, dict)
    event("forwarded" if forwarded else f"refused: {doc.get('error_type')}")
    if forwarded:
        assert forwarded == 1
        assert await catalog_accepts(validator, slug, raw), (slug, raw[:300])
        assert status == 200, ("the simulator refused a body the catalog accepts", slug, doc)
    else:
        assert status == 400, doc
        assert doc["message"].startswith(CATEGORIES), doc
        assert not await catalog_accepts(validator, slug, raw), (slug, raw[:300], doc)
        if doc["error_type"] not in ("malformed_json", "not_object"):
            assert doc["errors"], doc
            assert all({"field", "problem", "allowed"} <= set(e) for e in doc["errors"])
    async with http.get(f"{stack.proxy_url}/healthz") as health:
        assert health.status == 200


@st.composite
def mutated_bodies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid body of a random model with one to three edits, often still valid."""
    spec: ModelSpec = draw(st.sampled_from(SPECS))
    body: dict[str, Any] = example_body(spec, with_defaults=draw(st.booleans()))
    props = sorted(spec.properties)
    schemas = spec.json_schema["properties"]
    enums = [name for name in props if "enum" in schemas[name]]
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["drop", "value", "number", "enum", "enum", "unknown"]))
        if edit == "drop" and body:
            del body[draw(st.sampled_from(sorted(body)))]
        elif edit == "value":
            body[draw(st.sampled_from(props))] = draw(json_values)
        elif edit == "number":
            number = st.integers(-3, 40) | st.sampled_from([0.5, 6.0, 1e9, -0.0])
            body[draw(st.sampled_from(props))] = draw(number)
        elif edit == "enum" and enums:
            name = draw(st.sampled_from(enums))
            body[name] = draw(st.sampled_from(schemas[name]["enum"]))
        elif edit == "unknown":
            body[draw(st.text(min_size=1, max_size=12))] = draw(json_values)
    return spec.slug, body


@PROPERTY
@given(slug=st.sampled_from(SLUGS), raw=st.binary(max_size=300))
async def test_arbitrary_bytes(
    strict: Stack, http: aiohttp.ClientSession, slug: str, raw: bytes
) -> None:
    """Random bytes are refused 400 without reaching the upstream, and the proxy keeps answering."""
    await probe(strict, http, REFUSE, slug, raw)


@PROPERTY
@given(slug=st.sampled_from(SLUGS), value=json_values, ascii_only=st.booleans())
async def test_arbitrary_json(
    strict: Stack, http: aiohttp.ClientSession, slug: str, value: Any, ascii_only: bool
) -> None:
    """Any JSON document, object or not, is answered cleanly and forwarded only when valid."""
    await probe(strict, http, REFUSE, slug, encode(value, ascii_only))


@PROPERTY
@given(
    slug=st.sampled_from(SLUGS),
    body=st.dictionaries(field_names, json_values, max_size=8),
    ascii_only=st.booleans(),
)
async def test_random_objects_under_the_warn_policy(
    lenient: Stack, http: aiohttp.ClientSession, slug: str, body: dict[str, Any], ascii_only: bool
) -> None:
    """Objects with random names and types, unknown fields allowed: forwarded only when valid."""
    await probe(lenient, http, WARN, slug, encode(body, ascii_only))


@PROPERTY
@given(case=mutated_bodies(), ascii_only=st.booleans())
async def test_mutations_of_valid_bodies(
    strict: Stack, http: aiohttp.ClientSession, case: tuple[str, dict[str, Any]], ascii_only: bool
) -> None:
    """Edited valid bodies are forwarded exactly when the catalog accepts them, then accepted."""
    slug, body = case
    await probe(strict, http, REFUSE, slug, encode(body, ascii_only))


@PROPERTY
@given(case=mutated_bodies(), ascii_only=st.booleans())
async def test_mutations_under_the_warn_policy(
    lenient: Stack, http: aiohttp.ClientSession, case: tuple[str, dict[str, Any]], ascii_only: bool
) -> None:
    """Valid bodies plus random unknown fields (any name) are forwarded with a safe warning."""
    slug, body = case
    await probe(lenient, http, WARN, slug, encode(body, ascii_only))
