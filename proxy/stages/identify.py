"""Identify the caller: in pass-through mode by a fingerprint of the client's key.

The key itself is forwarded untouched and never stored or logged; what the
proxy keeps is ``fp:<16 hex>``, a SHA-256 fingerprint. Team and project come
from the operator's fingerprint table first, then (if trusted) from request
headers.
"""

from __future__ import annotations

import hashlib

import structlog

from proxy.config import IdentitySettings
from proxy.context import Caller, RequestContext
from proxy.errors import Unauthorized


def fingerprint(authorization: str) -> str:
    """A stable, non-reversible name for a bearer key."""
    token = authorization.partition(" ")[2].strip() if " " in authorization else authorization
    return hashlib.sha256(b"modellix-proxy:key:" + token.encode()).hexdigest()[:16]


class IdentifyStage:
    name = "identify"

    def __init__(self, settings: IdentitySettings) -> None:
        self._settings = settings

    async def __call__(self, ctx: RequestContext) -> None:
        auth = ctx.headers.get("Authorization")
        if not auth or not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise Unauthorized(
                "missing or malformed Authorization header (expected 'Bearer <API key>')",
                reason="missing_credentials",
            )
        fp = fingerprint(auth)
        known = self._settings.fingerprints.get(fp, {})
        team = known.get("team")
        project = known.get("project")
        if self._settings.trust_team_headers:
            team = team or _header(ctx, self._settings.team_header)
            project = project or _header(ctx, self._settings.project_header)
        ctx.caller = Caller(identity=f"fp:{fp}", team=team, project=project)
        ctx.upstream_authorization = auth
        structlog.contextvars.bind_contextvars(caller=ctx.caller.identity)


def _header(ctx: RequestContext, name: str) -> str | None:
    value = ctx.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value[:128] if value else None
