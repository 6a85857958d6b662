"""Signing completion webhooks the way Standard Webhooks (standardwebhooks.com) does.

Each delivery carries three headers::

    Webhook-Id: msg_<32 hex>            the delivery id: the same on every retry (dedupe on it)
    Webhook-Timestamp: 1764500000       seconds since the epoch, when this attempt was signed
    Webhook-Signature: v1,<base64>      HMAC-SHA256 over "<id>.<timestamp>.<body>"

The HMAC key is the caller's secret, shown as ``whsec_<base64 of 32 bytes>`` (the key is
the decoded bytes). Secrets are per caller (virtual key or pass-through fingerprint),
derived from the proxy's ``webhooks.signing_secret``: HMAC-SHA256(master, "webhook:" +
caller). A receiver checks the signature with a constant-time comparison and refuses a
timestamp more than a few minutes from its clock (replay).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300.0


def caller_key(master: str, caller: str) -> bytes:
    """The 32-byte signing key of ``caller``, derived from the proxy's master secret."""
    return hmac.new(master.encode(), f"webhook:{caller}".encode(), hashlib.sha256).digest()


def secret_text(key: bytes) -> str:
    """``key`` as the ``whsec_...`` text handed to the receiver."""
    return PREFIX + base64.b64encode(key).decode("ascii")


def key_from_secret(secret: str) -> bytes:
    """The HMAC key a ``whsec_...`` secret stands for."""
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` value: ``v1,<base64 HMAC-SHA256(id.timestamp.body)>``."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Webhook-Id": msg_id,
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": signature(key, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    received: Mapping[str, str],
    body: bytes,
    now: float,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether ``received`` headers sign ``body`` with ``secret`` (what a receiver does)."""
    msg_id = received.get("Webhook-Id", "")
    stamp = received.get("Webhook-Timestamp", "")
    if not msg_id or not stamp.isdigit() or abs(now - int(stamp)) > tolerance:
        return False
    expected = signature(key_from_secret(secret), msg_id, int(stamp), body)
    offered = received.get("Webhook-Signature", "").split()  # space-separated list
    return any(hmac.compare_digest(expected, candidate) for candidate in offered)
