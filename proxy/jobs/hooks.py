"""What the HTTP handlers ask of the job ledger."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from proxy.context import RequestContext
from proxy.upstream.retry import Bucket


class JobHooks(Protocol):
    async def record_accepted(self, ctx: RequestContext, task_id: str, response: web.Response) -> None:
        """A submit was accepted upstream: the job is written before the client hears of it."""

    async def record_unknown(self, ctx: RequestContext, detail: str) -> None:
        """A submit was sent and no usable answer came back."""

    async def record_refused(self, ctx: RequestContext, bucket: Bucket, response: web.Response) -> None:
        """The upstream refused the submit (or kept failing transiently)."""

    async def finish_claim(self, ctx: RequestContext) -> None:
        """Release whatever the submit still holds (an idempotency claim left open)."""

    async def observe_reply(
        self, task_id: str, status: int, body: bytes, *, source: str, authorization: str | None
    ) -> None:
        """A poll answer passed through: update the job if its status moved."""

    async def cached_terminal(self, task_id: str, authorization: str | None) -> bytes | None:
        """A terminal poll answer kept for this caller, served without the upstream."""
