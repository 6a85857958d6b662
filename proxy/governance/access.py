"""Virtual keys on the routes other than submit: swap in the upstream key, keep tasks private.

With virtual keys on, a request carrying a proxy key is forwarded with the
real upstream key instead; a poll through a proxy key is answered only for
that key's own jobs (404 otherwise, as the upstream answers for a task it does
not know). In ``virtual`` mode a request without a proxy key is refused.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from proxy.errors import NotFound, Unauthorized
from proxy.governance.keys import Identity, KeyRing, bearer
from proxy.stores.base import Store


async def identify(keyring: KeyRing | None, authorization: str | None) -> Identity | None:
    """The virtual-key identity of a request, ``None`` when it passes through as is."""
    if keyring is None or not keyring.virtual:
        return None
    token = bearer(authorization)
    if keyring.is_virtual_token(token) and token is not None:
        return await keyring.resolve(token)
    if keyring.mode == "virtual":
        raise Unauthorized(
            "this proxy accepts only proxy-issued keys (mlx-vk-...)", reason="virtual_key_required"
        )
    return None


def swap(headers: MutableMapping[str, str], identity: Identity | None) -> None:
    if identity is not None:
        headers["Authorization"] = identity.upstream_authorization


async def own_task(store: Store | None, identity: Identity | None, task_id: str) -> None:
    """Refuse a proxy key's poll for a task it did not submit."""
    if identity is None or store is None:
        return
    job = await store.get_job(task_id)
    if job is None or job.caller != identity.caller.identity:
        raise NotFound(f"task {task_id!r} is not one of this key's jobs", reason="task_not_owned")
