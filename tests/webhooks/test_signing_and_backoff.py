"""Webhook signatures (Standard Webhooks) and the retry schedule, without I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from proxy.webhooks import signing
from proxy.webhooks.backoff import retry_delay

NOW = 1_800_000_000


def test_signature_is_hmac_sha256_over_id_timestamp_and_body() -> None:
    """v1 signs "<id>.<timestamp>.<body>" with the decoded whsec_ key, base64-encoded."""
    key = signing.caller_key("master", "vk:abc")
    body = b'{"data":{"status":"success"}}'
    expected = hmac.new(key, b"msg_1." + str(NOW).encode() + b"." + body, hashlib.sha256)
    assert signing.signature(key, "msg_1", NOW, body) == "v1," + base64.b64encode(
        expected.digest()
    ).decode("ascii")
    secret = signing.secret_text(key)
    assert secret.startswith("whsec_")
    assert signing.key_from_secret(secret) == key


def test_verify_accepts_the_signed_body_only_within_the_tolerance() -> None:
    """A receiver accepts the exact body and a fresh timestamp; anything else is refused."""
    key = signing.caller_key("master", "vk:abc")
    secret = signing.secret_text(key)
    body = b"{}"
    headers = signing.headers(key, "msg_1", NOW, body)
    assert signing.verify(secret, headers, body, NOW + 10)
    assert not signing.verify(secret, headers, b"{ }", NOW)
    assert not signing.verify(secret, headers, body, NOW + 301)
    other = signing.secret_text(signing.caller_key("master", "vk:abd"))
    assert not signing.verify(other, headers, body, NOW)
    assert not signing.verify(secret, {**headers, "Webhook-Id": "msg_2"}, body, NOW)


@pytest.mark.parametrize(
    ("attempts", "draw", "seconds"),
    [
        (1, 0.5, 5.0),
        (2, 0.5, 10.0),
        (4, 0.5, 40.0),
        (30, 0.5, 3600.0),
        (1, 0.0, 4.0),
        (1, 1.0, 6.0),
    ],
)
def test_retry_delay_doubles_up_to_the_cap_with_jitter(
    attempts: int, draw: float, seconds: float
) -> None:
    """Backoff is base * 2**(n-1), capped, spread by the jitter fraction either way."""
    assert retry_delay(attempts, 5.0, 3600.0, 0.2, draw) == pytest.approx(seconds)
