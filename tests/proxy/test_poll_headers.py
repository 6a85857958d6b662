"""The headers a poll sends upstream: made once per client header set, never different."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from structlog.testing import capture_logs

from harness.config import settings_for
from proxy.config import Settings
from proxy.context import Caller
from proxy.forwarding import poll_headers, upstream_headers
from proxy.governance.keys import Identity

PROXY_KEY = "mlx-vk-abcdef012345-" + "s" * 40
IDENTITY = Identity(Caller("vk:abcdef012345"), "Bearer sk-upstream-account")


class _Transport:
    """A connection's transport, as far as a request reads it: the peer and local address."""

    def __init__(self, peer: str) -> None:
        self._extra: dict[str, Any] = {"peername": (peer, 40000), "sockname": ("10.0.0.9", 8080)}

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return False


def _request(headers: dict[str, str], peer: str = "192.0.2.7") -> web.Request:
    return make_mocked_request(
        "GET", "/api/v1/tasks/t-1", headers=headers, transport=_Transport(peer)
    )


def _settings(trusted: bool) -> Settings:
    return settings_for("http://127.0.0.1:1", trust_forwarded_headers=trusted)


def _expected(request: web.Request, settings: Settings, identity: Identity | None) -> list[Any]:
    out = upstream_headers(request, settings, keep_length=False)
    if identity is not None:
        out["Authorization"] = identity.upstream_authorization
    return list(out.items())


SHAPES = [
    {"Host": "proxy.example", "Authorization": "Bearer sk-1"},
    {"Host": "proxy.example", "Authorization": "Bearer sk-1", "Accept": "application/json"},
    {"Authorization": "Bearer sk-1"},  # no Host: the local address the request arrived on
    {
        "Host": "proxy.example",
        "Authorization": "Bearer sk-1",
        "X-Forwarded-For": "203.0.113.1",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "api.example",
        "Connection": "keep-alive, X-Hop",
        "X-Hop": "dropped",
        "Content-Length": "0",
    },
    {"Host": "proxy.example", "Authorization": f"Bearer {PROXY_KEY}"},
]


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("identity", [None, IDENTITY])
@pytest.mark.parametrize("headers", SHAPES)
def test_poll_headers_are_the_upstream_headers_with_the_upstream_key(
    headers: dict[str, str], identity: Identity | None, trusted: bool
) -> None:
    """Made or kept, a poll's headers are ``upstream_headers`` with the upstream key of a
    proxy key's identity in place of its Authorization, and read-only."""
    settings = _settings(trusted)
    for _ in range(2):  # made, then kept
        request = _request(headers)
        made = poll_headers(request, settings, identity)
        assert list(made.items()) == _expected(request, settings, identity)
        with pytest.raises(TypeError):
            made["X-Extra"] = "1"  # type: ignore[index]


def test_poll_headers_are_kept_per_headers_address_trust_and_identity() -> None:
    """The same client headers from the same address get the headers made before; another
    address, trust setting or identity gets its own."""
    headers = {"Host": "proxy.example", "Authorization": "Bearer sk-kept"}
    untrusted, trusted = _settings(False), _settings(True)
    first = poll_headers(_request(headers), untrusted, None)
    assert poll_headers(_request(dict(headers)), untrusted, None) is first
    other_peer = poll_headers(_request(headers, peer="198.51.100.3"), untrusted, None)
    assert other_peer["X-Forwarded-For"] == "198.51.100.3"
    assert first["X-Forwarded-For"] == "192.0.2.7"
    other_host = poll_headers(_request({**headers, "Host": "other.example"}), untrusted, None)
    assert other_host["X-Forwarded-Host"] == "other.example"
    forwarded = {**headers, "X-Forwarded-For": "203.0.113.1"}
    assert poll_headers(_request(forwarded), trusted, None)["X-Forwarded-For"] == (
        "203.0.113.1, 192.0.2.7"
    )
    assert poll_headers(_request(forwarded), untrusted, None)["X-Forwarded-For"] == "192.0.2.7"
    swapped = poll_headers(_request(headers), untrusted, IDENTITY)
    assert swapped["Authorization"] == IDENTITY.upstream_authorization
    assert first["Authorization"] == "Bearer sk-kept"


def test_a_header_dropped_for_a_proxy_key_is_dropped_and_logged_at_every_poll() -> None:
    """A header other than Authorization carrying a proxy key never goes upstream, and each
    poll carrying one is logged (its headers are never kept)."""
    headers = {"Host": "proxy.example", "Authorization": "Bearer sk-1", "X-Api-Key": PROXY_KEY}
    with capture_logs() as logs:
        for _ in range(2):
            made = poll_headers(_request(headers), _settings(False), None)
            assert "X-Api-Key" not in made
            assert made["Authorization"] == "Bearer sk-1"
    dropped = [line for line in logs if line["event"] == "access.proxy_key_header_dropped"]
    assert [line["headers"] for line in dropped] == [["x-api-key"], ["x-api-key"]]
