"""Record the submit's one outcome, then answer: the job before the client hears of it.

``upstream.outcome.read_outcome`` gives the verdict; this stage turns it into the
intent's one ledger outcome (``SubmitLedger.accepted`` / ``unknown`` / ``refused``) and
the client's answer. A queueable submit the upstream refused with 429 (its concurrency
limit: nothing was created) is queued instead (``AdmissionDesk.requeue``).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from proxy.admission.desk import AdmissionDesk
from proxy.context import RequestContext
from proxy.errors import InternalError
from proxy.jobs.ledger import SubmitLedger
from proxy.stages.admit import queueable, upstream_path, upstream_request_headers
from proxy.stages.answers import proxy_headers, rewrite_get_result, unknown_outcome
from proxy.upstream.client import reply_headers
from proxy.upstream.failures import transport_error
from proxy.upstream.outcome import Verdict, read_outcome
from proxy.upstream.retry import Bucket


class RecordStage:
    name = "record"

    def __init__(self, ledger: SubmitLedger, admission: Callable[[], AdmissionDesk | None]) -> None:
        self._ledger = ledger
        self._admission = admission

    async def __call__(self, ctx: RequestContext) -> None:
        outcome, forward = ctx.outcome, ctx.forward
        if outcome is None or forward is None:
            raise InternalError("a submit reached the record stage without being sent")
        reading = read_outcome(outcome)
        extra = proxy_headers(ctx)
        verdict = reading.verdict
        if verdict is Verdict.UNKNOWN:
            placeholder = await self._ledger.unknown(ctx, reading.detail)
            error = unknown_outcome(reading.told, placeholder, extra)
            if reading.status is not None and outcome.bucket is not Bucket.SUCCESS:
                error.details = {**(error.details or {}), "upstream_status": reading.status}
            raise error
        if verdict is Verdict.NOT_SENT:
            assert outcome.failure is not None
            await self._ledger.refused(ctx, outcome.bucket, None)  # never reached the upstream
            not_sent = transport_error(outcome.failure, paid=True)
            not_sent.headers.update(extra)
            raise not_sent
        reply = outcome.reply
        assert reply is not None
        desk = queueable(self._admission(), ctx)
        if verdict is Verdict.BUSY and desk is not None:
            queued = await desk.requeue(
                ctx, upstream_path(ctx), upstream_request_headers(ctx), forward.origin, extra
            )
            if queued is not None:
                ctx.answer = queued
                return
        if verdict is Verdict.ACCEPTED:
            assert reading.task_id is not None
            assert reading.doc is not None
            ctx.task_id = reading.task_id
            body = rewrite_get_result(reading.doc, reading.task_id, forward.origin, reply.body)
            response = web.Response(
                status=reply.status, body=body, headers=reply_headers(reply.headers)
            )
            response.headers.update(extra)
            response.content_type = "application/json"
            await self._ledger.accepted(ctx, reading.task_id, response)
            ctx.answer = response
            return
        # refused, busy or retry-later: nothing was created; the client gets the upstream's
        response = web.Response(
            status=reply.status, body=reply.body, headers=reply_headers(reply.headers)
        )
        response.headers.update(extra)
        await self._ledger.refused(ctx, outcome.bucket, response)
        ctx.answer = response
