"""A published schema read and applied (schema_doc), and fetched from its origin only
(schema_fetch): real loopback servers, no mocks."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.catalog.schema_doc import SchemaDoc, SchemaInvalid
from proxy.catalog.schema_fetch import SchemaFetcher, SchemaUnavailable, canonical
from proxy.config import UpstreamSchemaSettings

ServerFactory = Callable[..., Awaitable[TestServer]]


def document(schema: dict[str, Any]) -> dict[str, Any]:
    return {"post": {"requestBody": {"content": {"application/json": {"schema": schema}}}}}


VIDU = document(
    {
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "minLength": 1},
            "duration": {"type": "integer", "minimum": 1, "maximum": 16, "default": 5},
            "size": {"type": "string", "pattern": "^[0-9]{3,4}\\*[0-9]{3,4}$"},
        },
        "required": ["prompt"],
    }
)


def test_problems_carry_the_schema_reasons() -> None:
    doc = SchemaDoc.parse(VIDU)
    problems, _ = doc.check({"prompt": "x", "foo": 1, "duration": "abc", "size": "1*1"})
    shown = {p.field: p.problem for p in problems}
    assert shown["duration"] == 'must be an integer, got "abc"'
    assert shown["foo"] == "is not a parameter of this model"
    assert shown["size"].startswith("has an invalid format")
    assert {p.status for p in problems} == {"upstream-schema"}
    assert doc.check({}, "refuse")[0][0].field == "prompt"
    assert doc.check({"prompt": "x", "duration": 6.0})[0][0].field == "duration"  # not an int
    warned = ["unknown parameter 'foo' forwarded unchecked"]
    assert doc.check({"prompt": "x", "foo": 1}, "warn") == ([], warned)
    assert doc.defaults() == {"duration": 5}


def test_a_hostile_pattern_cannot_stall_a_check() -> None:
    """Patterns run on RE2: catastrophic backtracking does not exist; a backreference
    RE2 cannot run is left unchecked, never refused on."""
    doc = SchemaDoc.parse(
        document(
            {
                "type": "object",
                "properties": {
                    "a": {"type": "string", "pattern": "^(a+)+$"},
                    "b": {"type": "string", "pattern": "^(x)\\1$"},
                },
            }
        )
    )
    started = time.perf_counter()
    problems, _ = doc.check({"a": "a" * 100_000 + "!", "b": "xy"})
    assert time.perf_counter() - started < 1.0
    assert [p.field for p in problems] == ["a"]
    assert doc.unchecked_patterns == ("^(x)\\1$",)


def test_a_remote_reference_is_never_fetched() -> None:
    doc = SchemaDoc.parse(
        document({"type": "object", "properties": {"a": {"$ref": "http://169.254.169.254/x"}}})
    )
    with pytest.raises(SchemaInvalid, match="cannot be applied"):
        doc.check({"a": 1})


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"post": {}},
        document({"type": "array"}),
        document({"type": "object", "properties": {"a": {"type": 5}}}),
    ],
)
def test_a_document_without_a_usable_schema_is_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(SchemaInvalid):
        SchemaDoc.parse(bad)


async def test_fetch_reads_the_configured_origin_only(aiohttp_server: ServerFactory) -> None:
    """The document and its hash; no redirect is followed; a size cap; a 404 is not_found."""
    seen: list[str] = []

    async def schema(request: web.Request) -> web.StreamResponse:
        seen.append(request.path)
        model = request.match_info["model"]
        if model == "moved":
            raise web.HTTPFound("http://169.254.169.254/models/a/b/api_schema")
        if model == "huge":
            return web.json_response({"pad": "x" * 5000})
        if model == "gone":
            return web.json_response({"code": 404, "message": "Model not found"}, status=404)
        return web.json_response(VIDU)

    app = web.Application()
    app.router.add_get("/models/{provider}/{model}/api_schema", schema)
    server = await aiohttp_server(app)
    origin = str(server.make_url("")).rstrip("/")
    fetcher = SchemaFetcher(UpstreamSchemaSettings(origin=origin, max_bytes=2048))
    try:
        fetched = await fetcher.fetch("vidu/vidu-q3-t2v")
        assert fetched.document == VIDU
        assert fetched.text == canonical(VIDU)
        assert len(fetched.hash) == 64
        for slug, kind in (
            ("a/moved", "unreachable"),
            ("a/huge", "invalid"),
            ("a/gone", "not_found"),
        ):
            with pytest.raises(SchemaUnavailable) as caught:
                await fetcher.fetch(slug)
            assert caught.value.kind == kind
        assert seen == [f"/models/{s}/api_schema" for s in
                        ("vidu/vidu-q3-t2v", "a/moved", "a/huge", "a/gone")]  # fmt: skip
    finally:
        await fetcher.close()


async def test_a_host_name_to_a_private_address_is_refused() -> None:
    """A DNS name resolving to loopback is the SSRF guard's: refused unless allowed."""
    fetcher = SchemaFetcher(UpstreamSchemaSettings(origin="http://localhost:1"))
    try:
        with pytest.raises(SchemaUnavailable) as caught:
            await fetcher.fetch("a/b")
        assert caught.value.kind == "unreachable"
        assert "loopback" in caught.value.detail
    finally:
        await fetcher.close()


def test_canonical_text_ignores_key_order_and_spacing() -> None:
    assert canonical(json.loads('{"b": 1, "a": [1, 2]}')) == '{"a":[1,2],"b":1}'
