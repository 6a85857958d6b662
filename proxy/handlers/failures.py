"""Transport failures rendered for the client, in the upstream's envelope."""

from __future__ import annotations

from proxy.errors import ProxyError, UpstreamTimeout, UpstreamUnavailable
from proxy.upstream.client import TransportFailure
from proxy.upstream.retry import Failure


def transport_error(failure: TransportFailure, *, paid: bool) -> ProxyError:
    """502 when the upstream could not be reached or answered garbage, 504 when it went silent.

    For a paid submit any failure after the request left is an unknown outcome:
    the message says plainly that a task may exist.
    """
    kind = failure.failure
    if kind is Failure.CONNECT:
        return UpstreamUnavailable(
            "could not connect to the Modellix API; nothing was submitted",
            reason="upstream_unreachable",
        )
    if paid:
        return UpstreamTimeout(
            "the Modellix API did not answer the submit "
            f"({failure.detail}); the outcome is unknown and a task may exist. "
            "The proxy did not resend it. Retry with the same Idempotency-Key to be safe.",
            reason="submit_outcome_unknown",
        )
    if kind is Failure.READ_TIMEOUT:
        return UpstreamTimeout("the Modellix API did not answer in time", reason="upstream_timeout")
    return UpstreamUnavailable(f"{failure.detail}", reason="upstream_failed")
