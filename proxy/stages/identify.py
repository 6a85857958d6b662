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
import re
from functools import lru_cache

from proxy.config import IdentitySettings
from proxy.context import Caller, RequestContext
from proxy.errors import BadRequest, Unauthorized
from proxy.governance.keys import KeyRing, bearer

# aiohttp decodes header bytes as UTF-8 with ``surrogateescape``: a byte that is not
# UTF-8 arrives as a lone surrogate (U+DC80..U+DCFF). A credential is printable ASCII.
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_TEXT = re.compile(r"[^\x00-\x1f\x7f\ud800-\udfff]*")
MAX_AUTHORIZATION_CHARS = 16_448  # "Bearer " and a key of 16,384 (the CLI's limit)


@lru_cache(maxsize=1024)  # a client polls with one key again and again: hash it once
def fingerprint(authorization: str) -> str:
    """A stable, non-reversible name for a bearer key (total: any string hashes).

    Remembered for the last 1,024 credentials seen, in this process's memory only (where
    the credentials of the requests it serves are anyway)."""
    token = authorization.partition(" ")[2].strip() if " " in authorization else authorization
    data = token.encode("utf-8", "surrogatepass")  # equal to .encode() for any valid text
    return hashlib.sha256(b"modellix-proxy:key:" + data).hexdigest()[:16]


def checked_authorization(value: str | None) -> str | None:
    """The ``Authorization`` value, refused (401) unless it is bounded printable ASCII."""
    if value is None:
        return None
    if len(value) > MAX_AUTHORIZATION_CHARS:
        raise Unauthorized(
            f"the Authorization header is longer than {MAX_AUTHORIZATION_CHARS} characters",
            reason="malformed_credentials",
        )
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise Unauthorized(
            "the Authorization header holds bytes that are not printable ASCII "
            "(non-UTF-8 bytes or control characters)",
            reason="malformed_credentials",
        )
    return value


class IdentifyStage:
    name = "identify"

    def __init__(self, settings: IdentitySettings, keyring: KeyRing | None = None) -> None:
        self._settings = settings
        self._keyring = keyring

    async def __call__(self, ctx: RequestContext) -> None:
        auth = checked_authorization(ctx.headers.get("Authorization"))
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
    """A team or project header: UTF-8 text without control characters, else 400."""
    value = ctx.headers.get(name)
    if value is None:
        return None
    value = value.strip()[:128]
    if not _TEXT.fullmatch(value):
        raise BadRequest(
            f"header '{name}' must be UTF-8 text without control characters",
            reason="malformed_header",
        )
    return value or None
