"""Identify the caller: a proxy-issued virtual key, or a fingerprint of the client's own key.

Pass-through mode forwards the client's Modellix key untouched and never stores
or logs it; what the proxy keeps is ``fp:<16 hex>``, a SHA-256 fingerprint.
Team and project then come from the operator's fingerprint table first, then
(if trusted) from request headers. With virtual keys the caller is
``vk:<key id>``, team, project, model allow-list and concurrency cap come from
the key, and the real upstream key is injected.
"""

from __future__ import annotations

import hashlib

import structlog

from proxy.config import IdentitySettings
from proxy.context import Caller, RequestContext
from proxy.errors import Unauthorized
from proxy.governance.keys import KeyRing, bearer


def fingerprint(authorization: str) -> str:
    """A stable, non-reversible name for a bearer key."""
    token = authorization.partition(" ")[2].strip() if " " in authorization else authorization
    return hashlib.sha256(b"modellix-proxy:key:" + token.encode()).hexdigest()[:16]


class IdentifyStage:
    name = "identify"

    def __init__(self, settings: IdentitySettings, keyring: KeyRing | None = None) -> None:
        self._settings = settings
        self._keyring = keyring

    async def __call__(self, ctx: RequestContext) -> None:
        auth = ctx.headers.get("Authorization")
        token = bearer(auth)
        if auth is None or token is None:
            raise Unauthorized(
                "missing or malformed Authorization header (expected 'Bearer <API key>')",
                reason="missing_credentials",
            )
        keyring = self._keyring
        if keyring is not None and keyring.is_virtual_token(token):
            identity = await keyring.resolve(token)
            ctx.caller = identity.caller
            ctx.upstream_authorization = identity.upstream_authorization
        elif keyring is not None and keyring.virtual and not _passthrough_allowed(keyring):
            raise Unauthorized(
                "this proxy accepts only proxy-issued keys (mlx-vk-...)",
                reason="virtual_key_required",
            )
        else:
            ctx.caller = self._passthrough_caller(ctx, auth)
            ctx.upstream_authorization = auth
        structlog.contextvars.bind_contextvars(caller=ctx.caller.identity)

    def _passthrough_caller(self, ctx: RequestContext, auth: str) -> Caller:
        fp = fingerprint(auth)
        known = self._settings.fingerprints.get(fp, {})
        team = known.get("team")
        project = known.get("project")
        if self._settings.trust_team_headers:
            team = team or _header(ctx, self._settings.team_header)
            project = project or _header(ctx, self._settings.project_header)
        return Caller(identity=f"fp:{fp}", team=team, project=project)


def _passthrough_allowed(keyring: KeyRing) -> bool:
    return keyring.mode == "mixed"


def _header(ctx: RequestContext, name: str) -> str | None:
    value = ctx.headers.get(name)
    if value is None:
        return None
    value = value.strip()
    return value[:128] if value else None
