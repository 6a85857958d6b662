"""Named admin credentials: issue, resolve (with a short cache), the ``config`` operator.

A stored token is ``mlx-adm-<token id>-<secret>``; it is shown once when added or rotated
and kept only as its SHA-256, looked up by that digest (an indexed lookup) and re-checked
with ``hmac.compare_digest``. The configured ``admin.token`` keeps working as an
``operator`` named ``config``, compared in constant time. Each replica remembers what it
read about a token for ``admin.token_cache_seconds``, so a revocation or rotation reaches
every replica within that time, without a restart; the replica that made the change forgets
the token at once (``forget``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from proxy.errors import Unauthorized
from proxy.stores.audit_records import AdminToken, Role
from proxy.stores.base import AdminTokenStore

PREFIX = "mlx-adm-"
CONFIG_NAME = "config"
_TOKEN = re.compile(r"^mlx-adm-([a-z0-9]{12})-[A-Za-z0-9_-]{32,}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def fresh_secret(token_id: str) -> str:
    return f"{PREFIX}{token_id}-{secrets.token_urlsafe(32)}"


def valid_name(name: str) -> bool:
    """Names are short and plain (they appear in every audit row): letters, digits, ``._@-``."""
    return bool(_NAME.fullmatch(name)) and name != CONFIG_NAME


def new_admin_token(name: str, role: Role, now: float) -> tuple[AdminToken, str]:
    """A fresh credential record and its token (the only time the token exists)."""
    token_id = secrets.token_hex(6)
    token = fresh_secret(token_id)
    return AdminToken(token_id, name, role, hash_token(token), now), token


def token_json(token: AdminToken) -> dict[str, object]:
    """How the API, the CLI and the audit trail show a credential (never its hash)."""
    return {
        "token_id": token.token_id,
        "name": token.name,
        "role": token.role.value,
        "created_at": token.created_at,
        "rotated_at": token.rotated_at,
        "revoked_at": token.revoked_at,
        "active": token.revoked_at is None,
    }


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an admin request comes from: the credential's name and its role."""

    name: str
    role: Role


class AdminCredentials:
    """Resolves a bearer token to a principal: the configured token, or a stored one."""

    def __init__(
        self,
        config_token: str | None,
        store: Callable[[], AdminTokenStore | None],
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = f"Bearer {config_token}".encode() if config_token else None
        self._store = store
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, AdminToken | None]] = {}
        self._forgotten = 0  # bumped by ``forget``: a lookup that spanned it is not kept

    def forget(self, token_id: str) -> None:
        """Drop what this replica remembers of ``token_id`` (rotated or revoked here): its old
        secret, or the revoked token, is refused from the next request on."""
        self._forgotten += 1
        self._cache = {
            digest: hit
            for digest, hit in self._cache.items()
            if hit[1] is None or hit[1].token_id != token_id
        }

    async def principal(self, authorization: str) -> Principal:
        """The principal of an ``Authorization`` header, or 401 saying why not."""
        given = authorization.encode("utf-8", "surrogateescape")
        if self._config is not None and hmac.compare_digest(given, self._config):
            return Principal(CONFIG_NAME, Role.OPERATOR)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.casefold() == "bearer" and _TOKEN.fullmatch(token):
            found = await self._lookup(token)
            if found is not None and found.revoked_at is None:
                return Principal(found.name, found.role)
            if found is not None:
                raise Unauthorized(f"admin token {found.name!r} was revoked")
        if self._config is None:
            raise Unauthorized(
                "the admin API is off but for stored admin tokens: set admin.token or"
                " admin.token_file, or add a token with modellix-proxy admin-tokens add"
            )
        raise Unauthorized("admin token missing or wrong")

    async def _lookup(self, token: str) -> AdminToken | None:
        digest = hash_token(token)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        store = self._store()
        if store is None:
            return None
        forgotten = self._forgotten
        found = await store.get_admin_token_by_hash(digest)
        if found is not None and not hmac.compare_digest(found.token_hash, digest):
            found = None
        if forgotten != self._forgotten:  # read before a rotation or revocation here ended
            return found
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._cache_seconds, found)
        return found
