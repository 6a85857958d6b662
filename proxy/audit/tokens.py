"""Named admin credentials: issue, resolve (with a short cache), the ``config`` operator.

A stored token is ``mlx-adm-<token id>-<secret>``; it is shown once when added or rotated
and kept only as its SHA-256 (``proxy.governance.keys.hash_key``, as a virtual key is),
compared with the stored one of its id by ``hmac.compare_digest``. The configured
``admin.token`` keeps working as an ``operator`` named ``config``, compared in constant
time. Each replica holds the stored credentials it last read, re-read when older than
``admin.token_cache_seconds``, so a revocation or rotation reaches every replica within that
time, without a restart; the replica that made the change re-reads at once (``forget``). A
token it does not know costs a read at most once per ``admin.unknown_token_seconds``
(``AdminCredentials``).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from proxy.errors import Unauthorized
from proxy.governance.keys import hash_key
from proxy.stores.audit_records import AdminToken, Role
from proxy.stores.base import AdminTokenStore

PREFIX = "mlx-adm-"
CONFIG_NAME = "config"
_TOKEN = re.compile(r"^mlx-adm-([a-z0-9]{12})-[A-Za-z0-9_-]{32,}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def fresh_secret(token_id: str) -> str:
    return f"{PREFIX}{token_id}-{secrets.token_urlsafe(32)}"


def valid_name(name: str) -> bool:
    """Names are short and plain (they appear in every audit row): letters, digits, ``._@-``."""
    return bool(_NAME.fullmatch(name)) and name != CONFIG_NAME


def new_admin_token(name: str, role: Role, now: float) -> tuple[AdminToken, str]:
    """A fresh credential record and its token (the only time the token exists)."""
    token_id = secrets.token_hex(6)
    token = fresh_secret(token_id)
    return AdminToken(token_id, name, role, hash_key(token), now), token


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
    """Resolves a bearer token to a principal: the configured token, or a stored one.

    The replica keeps the stored credentials (a small table: id, name, role, hash, revoked)
    and resolves a token against them in memory. It re-reads them when what it holds is
    older than ``cache_seconds`` and a known token is presented, and, for a token it does
    not know (an unknown id, or a secret that is not the id's), only when what it holds is
    older than ``unknown_seconds``: however many made-up tokens arrive, from however many
    peers, they cost at most one read per ``unknown_seconds`` (a per-token negative cache
    would cost one read per distinct token; a per-peer limit, one per peer, and would lock
    out the operators who share an address with the sender). ``forget`` makes the next
    request re-read, so a change made on this replica applies from that request on."""

    def __init__(
        self,
        config_token: str | None,
        store: Callable[[], AdminTokenStore | None],
        cache_seconds: float,
        unknown_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        on_read: Callable[[str], None] = lambda _cause: None,
    ) -> None:
        self._config = f"Bearer {config_token}".encode() if config_token else None
        self._store = store
        self._cache_seconds = cache_seconds
        self._unknown_seconds = unknown_seconds
        self._clock = clock
        self._on_read = on_read  # each read of the stored tokens, by cause (a metric)
        self._tokens: dict[str, AdminToken] = {}  # by token id, revoked ones too
        self._read_at = -math.inf
        self._changes = 0  # bumped by ``forget``: a read that spanned it is not trusted
        self._read_changes = -1  # ``_changes`` when the tokens held were read
        self._reading = asyncio.Lock()

    def forget(self) -> None:
        """What this replica holds is out of date (a token added, rotated or revoked here):
        the next request re-reads, so a new token works, and an old secret or a revoked
        token is refused, from that request on."""
        self._changes += 1

    async def principal(self, authorization: str) -> Principal:
        """The principal of an ``Authorization`` header, or 401 saying why not."""
        given = authorization.encode("utf-8", "surrogateescape")
        if self._config is not None and hmac.compare_digest(given, self._config):
            return Principal(CONFIG_NAME, Role.OPERATOR)
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        shaped = _TOKEN.fullmatch(token)
        if scheme.casefold() == "bearer" and shaped:
            found = await self._lookup(shaped.group(1), hash_key(token))
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

    def _held(self, token_id: str, digest: str) -> AdminToken | None:
        held = self._tokens.get(token_id)
        if held is None or not hmac.compare_digest(held.token_hash, digest):
            return None
        return held

    async def _lookup(self, token_id: str, digest: str) -> AdminToken | None:
        found = self._held(token_id, digest)
        age = self._clock() - self._read_at
        current = self._read_changes == self._changes
        if current and age < (self._cache_seconds if found else self._unknown_seconds):
            return found
        await self._reread("known" if found else "unknown")
        return self._held(token_id, digest)

    async def _reread(self, cause: str) -> None:
        """Read the stored tokens, once for every request waiting on it."""
        asked_at = self._clock()
        async with self._reading:
            if self._read_at >= asked_at and self._read_changes == self._changes:
                return  # read for another request while this one waited
            store = self._store()
            if store is None:
                return
            changes, read_at = self._changes, self._clock()
            self._on_read(cause)
            tokens = await store.list_admin_tokens(include_revoked=True)
            self._tokens = {token.token_id: token for token in tokens}
            self._read_at, self._read_changes = read_at, changes
