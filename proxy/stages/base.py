"""The shape every pipeline stage has."""

from __future__ import annotations

from typing import Protocol

from proxy.context import RequestContext


class Stage(Protocol):
    """One step of the submit pipeline.

    A stage reads and fills in the ``RequestContext``; it refuses the request by
    raising a ``proxy.errors.ProxyError`` subclass, and returns ``None`` to let
    the next stage run.
    """

    name: str

    async def __call__(self, ctx: RequestContext) -> None: ...
