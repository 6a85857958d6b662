"""Admit the submit: durable before anything leaves.

Without the admission queue (or for a submit it does not apply to), the write-ahead
intent is written (``SubmitLedger.open_intent``): if the process dies from here on, the
intent becomes an ``unknown`` record, never a purchase nobody knows of. With the queue,
one store transaction writes the intent when the team has a free upstream slot, or a
durable queue row beyond it, and the client hears the queued answer at once
(``admission.desk``). Either way the request's holds are handed over (``hand_over``).
"""

from __future__ import annotations

from collections.abc import Callable

from multidict import CIMultiDict

from proxy.admission.desk import AdmissionDesk
from proxy.context import RequestContext
from proxy.errors import InternalError, ServiceUnavailable
from proxy.jobs.ledger import SubmitLedger
from proxy.routing import submit_path
from proxy.stages.answers import proxy_headers
from proxy.stores.base import HoldLostError, StoreError


def upstream_path(ctx: RequestContext) -> str:
    """The path and query the submit is sent to: the pinned slug in the client's form."""
    slug = ctx.pinned_slug or ctx.requested_slug
    if slug is None or ctx.path_form is None or ctx.forward is None:
        raise InternalError("submit without a model slug")
    path = submit_path(ctx.path_form, slug, ctx.task_type)
    return f"{path}?{ctx.forward.query}" if ctx.forward.query else path


def upstream_request_headers(ctx: RequestContext) -> CIMultiDict[str]:
    """The headers the submit is sent with: the client's kept ones, the caller's credential."""
    if ctx.forward is None:
        raise InternalError("submit without its forwarding details")
    headers = CIMultiDict(ctx.forward.headers)
    if ctx.upstream_authorization is not None:
        headers["Authorization"] = ctx.upstream_authorization
    return headers


def queueable(desk: AdmissionDesk | None, ctx: RequestContext) -> AdmissionDesk | None:
    """The admission desk when it applies to this submit."""
    return desk if desk is not None and desk.applies(ctx) else None


class AdmitStage:
    name = "admit"

    def __init__(self, ledger: SubmitLedger, admission: Callable[[], AdmissionDesk | None]) -> None:
        self._ledger = ledger
        self._admission = admission  # set once the roster has started the queue

    async def __call__(self, ctx: RequestContext) -> None:
        desk = queueable(self._admission(), ctx)
        try:
            if desk is None:
                await self._ledger.open_intent(ctx)
                return
            assert ctx.forward is not None
            ctx.answer = await desk.admit(
                ctx,
                upstream_path(ctx),
                upstream_request_headers(ctx),
                ctx.forward.origin,
                proxy_headers(ctx),
            )
        except HoldLostError as exc:
            raise ServiceUnavailable(
                "this replica lost its hold on the budget or the idempotency key (it was taken "
                "for dead during a stall), so the submit was not sent (nothing was bought); retry",
                reason="hold_lost",
                headers={"Retry-After": "1"},
            ) from exc
        except StoreError as exc:
            raise ServiceUnavailable(
                "the proxy's ledger is unavailable, so the submit was not sent (nothing was "
                "bought); retry shortly",
                reason="store_unavailable",
                headers={"Retry-After": "1"},
            ) from exc
