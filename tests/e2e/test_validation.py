"""Input validation through the running proxy: valid bodies pass unchanged, invalid ones stop.

Every test drives a real simulator and a real proxy on loopback. A refused body must never
reach the upstream, so each refusal test ends by checking the simulator's counters; the
byte-for-byte test records the raw body of every POST the simulator receives.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDictProxy

from proxy.catalog.loader import load_catalog
from proxy.simulator import Simulator, SimulatorConfig, build_app
from tests import support
from tests.catalog.imagebytes import GOOD_IMAGE, example_body
from tests.e2e.conftest import Stack

MakeStack = Callable[..., Awaitable[Stack]]
CATALOG = load_catalog()
CATEGORIES = (
    "Invalid parameters:",
    "Missing required parameter:",
    "Value out of range:",
    "Invalid format:",
)


@dataclass
class Recorded:
    """The stack plus every raw submit body the simulator received, in order."""

    stack: Stack
    bodies: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
async def recorded(make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch) -> Recorded:
    """A stack whose simulator first records the raw body of every submit it receives."""
    seen: list[tuple[str, bytes]] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and request.path.startswith("/api/v1/"):
            seen.append((request.path, await request.read()))  # cached for the handler
        return await handler(request)

    def recording_app(sim: Simulator) -> web.Application:
        app = build_app(sim)
        app.middlewares.insert(0, record)
        return app

    # serve_simulator (behind make_stack) builds the API origin by this name.
    monkeypatch.setattr(support, "build_app", recording_app)
    config = SimulatorConfig.fast(concurrency_limit=0, initial_balance_usd=Decimal(10_000))
    return Recorded(await make_stack(config), seen)


def odd_json(body: dict[str, Any]) -> bytes:
    """JSON the proxy could not reproduce by re-serialising: indented, unescaped, trailing space."""
    return (json.dumps(body, indent=3, ensure_ascii=False) + " \n").encode()


async def post(
    http: aiohttp.ClientSession, stack: Stack, slug: str, body: bytes | dict[str, Any]
) -> tuple[int, dict[str, Any], CIMultiDictProxy[str]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    async with http.post(f"{stack.proxy_url}/api/v1/{slug}", data=data, headers=headers) as resp:
        doc = await resp.json(content_type=None)
        return resp.status, doc, resp.headers


def assert_untouched(stack: Stack) -> None:
    assert stack.sim.counters.submits_received == 0
    assert stack.sim.requests(method="POST") == []
    assert stack.sim.counters.tasks_created == 0


async def test_valid_body_of_every_model_reaches_the_upstream_byte_for_byte(
    recorded: Recorded, http: aiohttp.ClientSession
) -> None:
    """For every catalog slug, a minimal and a defaults-filled valid body pass unchanged."""
    stack = recorded.stack
    failures: list[str] = []
    sent: list[tuple[str, bytes]] = []
    for spec in CATALOG:
        for body in (example_body(spec), example_body(spec, with_defaults=True)):
            raw = odd_json(body)
            status, doc, headers = await post(http, stack, spec.slug, raw)
            sent.append((f"/api/v1/{spec.slug}", raw))
            if status != 200 or headers.get("X-Modellix-Proxy-Model") != spec.slug:
                failures.append(f"{spec.slug}: {status} {doc}")
    assert failures == []
    assert recorded.bodies == sent
    assert stack.sim.counters.tasks_created == 2 * len(CATALOG)


HAILUO_T2V = "minimax/hailuo-02-t2v"
INVALID: list[tuple[str, dict[str, Any], str, list[str]]] = [
    # (slug, body, message category, fields listed in errors, in order)
    (
        HAILUO_T2V,
        {"prompt": "x", "duration": 10, "resolution": "1080P"},
        "Invalid parameters",
        ["resolution"],
    ),
    (
        "minimax/hailuo-2.3-i2v",
        {"prompt": "x", "duration": 6},
        "Missing required parameter",
        ["first_frame_image"],
    ),
    (
        "minimax/hailuo-02-fl2v",
        {"first_frame_image": GOOD_IMAGE},
        "Missing required parameter",
        ["last_frame_image"],
    ),
    (
        "minimax/hailuo-02-i2v",
        {"prompt": 5, "duration": "6", "prompt_optimizer": "yes"},
        "Missing required parameter",
        ["first_frame_image", "duration", "prompt", "prompt_optimizer"],
    ),
    (
        "minimax/minimax-t2v-01",
        {"prompt": "x", "duration": 10, "resolution": "1080P"},
        "Invalid parameters",
        ["resolution", "duration"],
    ),
    ("minimax/hailuo-2.3-t2v", {"prompt": "x" * 2001}, "Value out of range", ["prompt"]),
    (
        "bytedance/seedance-2.0-t2v",
        {"prompt": "x", "duration": 16, "resolution": "8k"},
        "Invalid parameters",
        ["resolution", "duration"],
    ),
    (
        "bytedance/seedance-2.0-i2v",
        {"prompt": "x"},
        "Missing required parameter",
        ["first_frame_image"],
    ),
    (
        "bytedance/seedance-2.0-v2v",
        {"prompt": "x", "video_urls": "https://x.example/y.mp4"},
        "Invalid format",
        ["video_urls"],
    ),
    (
        "kling/kling-v3-t2v",
        {"prompt": "x", "duration": 2, "cfg_scale": "high"},
        "Invalid format",
        ["cfg_scale", "duration"],
    ),
    ("kling/kling-v3-i2v", {"prompt": "x"}, "Missing required parameter", ["image"]),
    ("kling/kling-v2.6-t2v", {"prompt": "x", "duration": 7}, "Value out of range", ["duration"]),
    (
        "alibaba/wan2.7-t2v",
        {"prompt": "x", "duration": 1, "seed": -1},
        "Value out of range",
        ["duration", "seed"],
    ),
    ("alibaba/wan2.7-t2v", {"prompt": "x", "duration": 6.0}, "Invalid format", ["duration"]),
    ("alibaba/wan2.7-i2v", {"prompt": "x"}, "Missing required parameter", ["first_frame"]),
    (
        "alibaba/wan2.7-i2v",
        {"first_frame": "ftp://x.example/y.png"},
        "Invalid format",
        ["first_frame", "first_frame"],
    ),
    (
        "alibaba/wan2.7-videoedit",
        {"prompt": "x", "duration": 1},
        "Missing required parameter",
        ["video_url", "duration"],
    ),
    ("alibaba/wan2.7-image", {"prompt": "x", "n": 13}, "Value out of range", ["n", "n"]),
    (
        "bytedance/seedream-4.5-t2i",
        {"prompt": "x", "sequential_image_generation_max_images": 16},
        "Value out of range",
        ["sequential_image_generation_max_images"],
    ),
    (
        "bytedance/seedream-5.0-lite-edit",
        {"prompt": "x", "image": []},
        "Value out of range",
        ["image"],
    ),
]


async def test_invalid_bodies_are_refused_with_every_problem_and_never_forwarded(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Each invalid body gets a 400 in the upstream's category listing all its problems, offline."""
    for slug, body, category, fields in INVALID:
        status, doc, headers = await post(http, stack, slug, body)
        where = (slug, body, doc)
        assert status == 400, where
        assert doc["code"] == 400, where
        assert doc["message"].startswith(f"{category}: parameter '{fields[0]}'"), where
        assert [e["field"] for e in doc["errors"]] == fields, where
        assert all({"field", "problem", "allowed"} <= set(e) for e in doc["errors"]), where
        assert headers["X-Request-Id"] == doc["request_id"]
    assert_untouched(stack)


async def test_hailuo_1080p_at_10_seconds_names_the_allowed_resolution(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """The Hailuo 1080P + 10 s refusal says which resolution 10 s allows, for every Hailuo slug."""
    for spec in CATALOG:
        if not spec.slug.startswith("minimax/hailuo"):
            continue
        body = {**example_body(spec), "duration": 10, "resolution": "1080P"}
        status, doc, _ = await post(http, stack, spec.slug, body)
        assert status == 400, (spec.slug, doc)
        assert doc["error_type"] == "cross_field"
        assert doc["errors"][0]["allowed"] == ["768P"]
    assert_untouched(stack)


FAMILY_SAMPLES = [
    "minimax/hailuo-02-t2v",
    "minimax/minimax-i2v-01",
    "bytedance/seedance-2.0-i2v",
    "kling/kling-v3-t2v",
    "alibaba/wan2.7-i2v",
    "bytedance/seedream-4.5-t2i",
]


async def test_unknown_field_is_refused_under_the_refuse_policy(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """By default an unknown field is refused in every family, naming the real parameters."""
    for slug in FAMILY_SAMPLES:
        spec = CATALOG.get(slug)
        assert spec is not None
        status, doc, _ = await post(http, stack, slug, {**example_body(spec), "durration": 6})
        assert status == 400, (slug, doc)
        assert doc["message"].startswith("Invalid parameters: parameter 'durration'")
        assert doc["error_type"] == "unknown_field"
        assert doc["errors"][0]["allowed"] == sorted(spec.properties)
    assert_untouched(stack)


async def test_unknown_field_passes_with_a_warning_under_the_warn_policy(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """With unknown_fields=warn the body is forwarded and the answer carries the warning header."""
    stack = await make_stack(models={"unknown_fields": "warn"})
    for slug in FAMILY_SAMPLES:
        spec = CATALOG.get(slug)
        assert spec is not None
        status, doc, headers = await post(http, stack, slug, {**example_body(spec), "durration": 6})
        assert status == 200, (slug, doc)
        warning = headers["X-Modellix-Proxy-Warnings"]
        assert warning == "unknown parameter 'durration' forwarded unchecked"
    assert stack.sim.counters.tasks_created == len(FAMILY_SAMPLES)


async def test_warn_policy_still_refuses_other_problems(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """The warn policy relaxes unknown fields only: a known field out of range is still refused."""
    stack = await make_stack(models={"unknown_fields": "warn"})
    status, doc, _ = await post(http, stack, HAILUO_T2V, {"prompt": "x", "extra": 1, "duration": 7})
    assert status == 400
    assert [e["field"] for e in doc["errors"]] == ["duration"]
    assert_untouched(stack)


async def test_closed_model_refuses_unknown_fields_even_under_warn(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """A model marked closed (Kling V3 i2v) refuses unknown fields whatever the policy."""
    stack = await make_stack(models={"unknown_fields": "warn"})
    spec = CATALOG.get("kling/kling-v3-i2v")
    assert spec is not None
    assert spec.closed
    status, doc, _ = await post(http, stack, spec.slug, {**example_body(spec), "extra": True})
    assert status == 400
    assert doc["error_type"] == "unknown_field"
    assert_untouched(stack)


MALFORMED: list[tuple[bytes, str]] = [
    (b'{"prompt": "x",', "invalid JSON format"),
    (b"\xff\xfe{}", "invalid JSON format"),
    (b'{"prompt": NaN}', "invalid JSON format"),
    (b"", "invalid JSON format"),
    (b"   ", "invalid JSON format"),
    (b'["prompt"]', "request body must be a JSON object, got list"),
    (b'"prompt"', "request body must be a JSON object, got str"),
    (b"null", "request body must be a JSON object, got null"),
    (b"6", "request body must be a JSON object, got int"),
]


async def test_malformed_non_object_or_empty_body_is_refused(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """Bodies that are not a JSON object get 400 'Invalid format: ...' and stay in the proxy."""
    for raw, detail in MALFORMED:
        status, doc, _ = await post(http, stack, HAILUO_T2V, raw)
        assert (status, doc["message"]) == (400, f"Invalid format: {detail}"), raw
    assert_untouched(stack)


async def test_huge_body_is_refused_413_before_validation(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """A body over max_body_bytes gets 413, streamed or with a declared length, and is not sent."""
    stack = await make_stack(max_body_bytes=64 * 1024)
    huge = json.dumps({"prompt": "x" * 100_000}).encode()
    status, doc, _ = await post(http, stack, HAILUO_T2V, huge)
    assert status == 413
    assert doc["message"].startswith("Payload too large:")

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 16_384

    url = f"{stack.proxy_url}/api/v1/{HAILUO_T2V}"
    async with http.post(url, data=chunks()) as resp:
        assert resp.status == 413
    assert_untouched(stack)


async def test_proxy_keeps_answering_after_refusals(
    stack: Stack, http: aiohttp.ClientSession
) -> None:
    """After a run of refusals, a valid body still goes through exactly once."""
    for raw in (b"", b"[]", b"{", json.dumps({"prompt": 1}).encode()):
        status, _, _ = await post(http, stack, HAILUO_T2V, raw)
        assert status == 400
    assert_untouched(stack)
    status, _, _ = await post(http, stack, HAILUO_T2V, {"prompt": "a fox", "duration": 6})
    assert status == 200
    assert len(stack.sim.requests(method="POST")) == 1


async def test_hostile_unknown_field_names_cannot_break_the_warning_header(
    make_stack: MakeStack, http: aiohttp.ClientSession
) -> None:
    """Under warn, CR/LF, non-ASCII or lone-surrogate field names are escaped in the header."""
    stack = await make_stack(models={"unknown_fields": "warn"})
    names = ["a\r\nX-Evil: 1", "日本語", "é\t", "\x00", "\udc80"]
    for name in names:
        body = {"prompt": "x", name: 1}
        raw = json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if name == "\udc80":
            raw = json.dumps(body).encode()  # the escaped form: valid JSON, lone surrogate
        status, doc, headers = await post(http, stack, HAILUO_T2V, raw)
        assert status == 200, (name, doc)
        warning = headers["X-Modellix-Proxy-Warnings"]
        assert warning.isascii()
        assert warning.isprintable()
        assert "X-Evil" not in headers
    assert stack.sim.counters.tasks_created == len(names)
