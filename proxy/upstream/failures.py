"""Transport failures rendered for the client, in the upstream's envelope."""

from __future__ import annotations

from proxy.errors import ProxyError, TooManyRequests, UpstreamTimeout, UpstreamUnavailable
from proxy.upstream.client import TransportFailure
from proxy.upstream.retry import Failure

#: Seconds a client should wait before resending a submit that never left.
NOT_SENT_RETRY_AFTER = "5"


class SubmitNotSent(TooManyRequests):
    """A paid submit that never reached the upstream: no task, no charge, safe to resend.

    429, not 502: the official CLI reports any submit 5xx as "outcome unknown" (a task may
    exist, do not resend) and shows the proxy's message only for its "definitely rejected"
    statuses (400-405, 413, 415, 422, 429). 429 with ``Retry-After`` is the one of those
    that means "nothing happened, try again later".
    """

    category = "Upstream unreachable"


def transport_error(failure: TransportFailure, *, paid: bool) -> ProxyError:
    """502 when the upstream could not be reached or answered garbage, 504 when it went silent.

    A paid submit that never left is a 429 the official CLI shows as a rejection
    (:class:`SubmitNotSent`). A paid submit that did leave never comes here: its outcome is
    unknown, and the submit handler records it and answers so (``unknown_outcome``).
    """
    kind = failure.failure
    if kind is Failure.CONNECT and paid:
        return SubmitNotSent(
            "could not connect to the Modellix API; the submit was not sent: no task was "
            "created and nothing was charged. Retry later (the same Idempotency-Key is safe)",
            reason="upstream_unreachable",
            headers={"Retry-After": NOT_SENT_RETRY_AFTER},
        )
    if kind is Failure.CONNECT:
        return UpstreamUnavailable(
            "could not connect to the Modellix API; nothing was submitted",
            reason="upstream_unreachable",
        )
    if kind is Failure.READ_TIMEOUT:
        return UpstreamTimeout("the Modellix API did not answer in time", reason="upstream_timeout")
    return UpstreamUnavailable(f"{failure.detail}", reason="upstream_failed")
