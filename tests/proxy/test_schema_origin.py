"""A served schema's ``servers[].url`` names the proxy where the official CLI would accept it."""

from __future__ import annotations

from typing import Any

import pytest

from proxy.handlers.schemas import with_origin

PUBLISHED: dict[str, Any] = {
    "servers": [{"url": "https://api.modellix.ai/api/v1/vidu/vidu-q3-t2v", "description": "x"}],
    "post": {"requestBody": {}, "responses": {}},
}


@pytest.mark.parametrize(
    "origin",
    ["https://proxy.example.com", "http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:80"],
)
def test_the_endpoint_moves_to_an_origin_the_cli_accepts(origin: str) -> None:
    """An https origin or plain http on a loopback name replaces the upstream's, path kept."""
    moved = with_origin(PUBLISHED, origin)
    assert moved["servers"] == [{"url": f"{origin}/api/v1/vidu/vidu-q3-t2v", "description": "x"}]
    assert moved["post"] == PUBLISHED["post"]
    assert PUBLISHED["servers"][0]["url"].startswith("https://api.modellix.ai")  # not mutated


@pytest.mark.parametrize("origin", ["http://proxy.internal:8080", "http://10.0.0.5", "ftp://x"])
def test_an_origin_the_cli_would_refuse_leaves_the_published_endpoint(origin: str) -> None:
    """Plain http on a non-loopback host would fail the CLI's check: the document is unchanged."""
    assert with_origin(PUBLISHED, origin) is PUBLISHED


def test_odd_server_entries_pass_through() -> None:
    """Entries that are not objects with an http(s) URL are kept as published."""
    document: dict[str, Any] = {"servers": ["text", {"url": "/relative"}, {"no": "url"}]}
    assert with_origin(document, "https://p.example")["servers"] == document["servers"]
