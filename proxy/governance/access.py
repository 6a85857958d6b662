"""Virtual keys on the routes other than submit, and the credential boundary for every route.

With virtual keys on, a request carrying a proxy key is forwarded with the
real upstream key instead; a poll through a proxy key is answered only for
that key's own jobs (404 otherwise, as the upstream answers for a task it does
not know). In ``virtual`` mode a request without a proxy key is refused.

A proxy key never leaves the proxy, in any key mode: an ``Authorization``
carrying one is resolved (and swapped for the upstream key) or refused with
401; any other header carrying one is dropped before the request goes
upstream; a URL carrying one (``?api_key=mlx-vk-...``) is refused, since
forwarding it without the token would change what the client asked for.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from functools import lru_cache
from typing import NoReturn

import structlog

from proxy.errors import NotFound, Unauthorized
from proxy.governance.keys import (
    Identity,
    KeyRing,
    bearer,
    carries_proxy_token,
    may_carry_proxy_token,
)
from proxy.stages.identify import checked_authorization, fingerprint
from proxy.stores.base import JobStore

log = structlog.get_logger("proxy.access")


async def identify(keyring: KeyRing | None, authorization: str | None) -> Identity | None:
    """The virtual-key identity of a request, ``None`` when it passes through as is.

    Raises 401 for a proxy key that is malformed, unknown, revoked or expired (or
    sent to a pass-through proxy), for an ``Authorization`` that hides one in
    another shape or is not printable ASCII (as the submit pipeline does), and in
    ``virtual`` mode for a request without one.
    """
    if passes_through(keyring, authorization):
        return None
    assert authorization is not None  # only a credential may hold a proxy key
    token = bearer(authorization)
    if keyring is not None and token is not None and keyring.is_virtual_token(token):
        return await keyring.resolve(token)
    if carries_proxy_token(authorization):
        raise Unauthorized(
            "a proxy key must be sent as 'Authorization: Bearer mlx-vk-...'", reason="invalid_key"
        )
    if keyring is not None and keyring.proxy_keys_only:
        _refuse_without_proxy_key()
    return None


def passes_through(keyring: KeyRing | None, authorization: str | None) -> bool:
    """``identify`` without a wait, for nearly every pass-through request: ``True`` when the
    request surely holds no proxy key and may pass through as is (``identify`` is ``None``),
    ``False`` when ``identify`` must look closer; 401 where ``identify`` refuses it."""
    if authorization is not None and not _holds_no_proxy_key(authorization):
        return False
    if keyring is not None and keyring.proxy_keys_only:
        _refuse_without_proxy_key()
    return True


@lru_cache(maxsize=1024)  # a client polls with one key again and again: checked once
def _holds_no_proxy_key(authorization: str) -> bool:
    """Whether ``authorization`` surely holds no proxy key (nor then its bearer token, a
    part of it); 401 unless it is bounded printable ASCII."""
    checked_authorization(authorization)  # 401 unless bounded printable ASCII
    return not may_carry_proxy_token(authorization)


def _refuse_without_proxy_key() -> NoReturn:
    raise Unauthorized(
        "this proxy accepts only proxy-issued keys (mlx-vk-...)", reason="virtual_key_required"
    )


def caller_id(identity: Identity | None, authorization: str | None) -> str | None:
    """Who is asking, without the credential: ``vk:<key id>`` or ``fp:<fingerprint>``."""
    if identity is not None:
        return identity.caller.identity
    if not authorization:
        return None
    return f"fp:{fingerprint(authorization)}"


def strip_proxy_tokens(headers: MutableMapping[str, str]) -> list[str]:
    """Drop every header whose value carries a proxy key; the names dropped.

    ``Authorization`` is dropped too: the caller sets the upstream credential after.
    """
    if not may_carry_proxy_token("\x00".join(headers.values())):
        return []  # nearly every request: one look over all the values
    dropped = [name for name, value in headers.items() if carries_proxy_token(value)]
    if not dropped:  # nearly every request: nothing to delete, nothing to say
        return dropped
    for name in dict.fromkeys(dropped):
        while name in headers:
            del headers[name]
    if any(name.lower() != "authorization" for name in dropped):
        log.warning(
            "access.proxy_key_header_dropped",
            headers=sorted({n.lower() for n in dropped if n.lower() != "authorization"}),
        )
    return dropped


def swap(headers: MutableMapping[str, str], identity: Identity | None) -> None:
    """The upstream key in place of a proxy key, on headers from ``upstream_headers`` (which
    has already dropped every header carrying a proxy key)."""
    if identity is not None:
        headers["Authorization"] = identity.upstream_authorization


def refuse_token_in_url(raw_path: str) -> None:
    """401 for a path or query string that carries a proxy key: never forwarded, never trimmed."""
    if carries_proxy_token(raw_path):
        raise Unauthorized(
            "a proxy key must be sent only in the Authorization header, never in the URL",
            reason="key_in_url",
        )


async def own_task(store: JobStore | None, identity: Identity | None, task_id: str) -> None:
    """Refuse a proxy key's poll for a task it did not submit."""
    if identity is None or store is None:
        return
    job = await store.get_job(task_id)
    if job is None or job.caller != identity.caller.identity:
        raise NotFound(f"task {task_id!r} is not one of this key's jobs", reason="task_not_owned")
