"""Virtual keys: proxy-issued keys that map to a team, a project, models and limits.

A key is ``mlx-vk-<key id>-<secret>``; it is shown once at creation and stored
only as its SHA-256. Requests carrying one are forwarded with the real upstream
key of the Modellix account the key's team bills to (``proxy.accounts``: ``upstream.api_key``
is the account ``default``, ``upstream.accounts`` names more), which no caller ever sees.

Each replica remembers what it read about a key for ``keys.cache_seconds``
(0.5 s by default), so a revocation reaches every replica within that time.

A key is found by the SHA-256 of the whole token (an indexed lookup, never a
comparison of secrets in Python); the stored digest is re-checked with
``hmac.compare_digest``. A proxy key never leaves the proxy: anything shaped like
one (``mlx-vk-``, any case, percent-encoded or not) is either resolved and
swapped for the upstream key or refused, in every key mode.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote

from proxy.accounts import AccountBook
from proxy.config import KeySettings
from proxy.context import Caller
from proxy.errors import ServiceUnavailable, Unauthorized
from proxy.stores.base import VirtualKeyStore
from proxy.stores.records import VirtualKey

PREFIX = "mlx-vk-"
_TOKEN = re.compile(r"^mlx-vk-([a-z0-9]{12})-[A-Za-z0-9_-]{32,}$")


def hash_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def new_key(now: float, **fields: object) -> tuple[VirtualKey, str]:
    """A fresh virtual key record and its token (the only time the token exists)."""
    key_id = secrets.token_hex(6)
    token = f"{PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
    record = VirtualKey(key_id=key_id, key_hash=hash_key(token), created_at=now, **fields)  # type: ignore[arg-type]
    return record, token


def bearer(authorization: str | None) -> str | None:
    """The token of a ``Bearer`` credential, ``None`` for anything else.

    Total: any string (non-ASCII, surrogate-escaped bytes, only whitespace, several
    spaces or tabs between scheme and token) gives a token or ``None``, never an error.
    """
    if not isinstance(authorization, str):
        return None
    parts = authorization.strip().split(None, 1)
    if len(parts) != 2 or parts[0].casefold() != "bearer":
        return None
    token = parts[1].strip()
    return token or None


def _unwrapped(value: str) -> str:
    """``value`` lower-cased with percent-encoding undone (a few layers deep)."""
    text = value
    for _ in range(3):
        decoded = unquote(text, errors="surrogateescape")
        if decoded == text:
            break
        text = decoded
    return text.casefold()


def may_carry_proxy_token(text: str) -> bool:
    """``False`` only when ``text`` surely holds no proxy key: ASCII without a percent
    sign (nothing to decode, lower-casing is case folding), with neither ``mlx-vk-`` nor
    ``basic`` in it. One look over several values at once, joined by a NUL, answers for
    each of them (neither word holds a NUL). Nearly all header values pass it at once.
    """
    if not text.isascii() or "%" in text:
        return True
    low = text.lower()
    return PREFIX in low or "basic" in low


def carries_proxy_token(value: str | None) -> bool:
    """Whether ``value`` holds something shaped like a proxy key, anywhere in it.

    Case and percent-encoding are ignored, and the credentials of a ``Basic``
    authorization are decoded, so no spelling of a proxy key slips past.
    """
    if not value or not may_carry_proxy_token(value):
        return False
    if PREFIX in _unwrapped(value):
        return True
    parts = value.strip().split(None, 1)
    if len(parts) == 2 and parts[0].casefold() == "basic":
        try:
            decoded = base64.b64decode(parts[1].strip(), validate=False)
        except (binascii.Error, ValueError):
            return False
        return PREFIX in _unwrapped(decoded.decode("utf-8", errors="replace"))
    return False


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a request comes from, and the Authorization to send upstream for it."""

    caller: Caller
    upstream_authorization: str
    key: VirtualKey | None = None


class KeyRing:
    """Resolves virtual keys (with a short cache) for every route of the proxy."""

    def __init__(
        self,
        store: VirtualKeyStore,
        settings: KeySettings,
        accounts: AccountBook,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._accounts = accounts
        self._clock = clock
        self._cache: dict[str, tuple[float, VirtualKey | None]] = {}
        # ``virtual`` mode: a request without a proxy key is refused (read on every request).
        self.proxy_keys_only = settings.mode == "virtual"

    @property
    def mode(self) -> str:
        return self._settings.mode

    @property
    def virtual(self) -> bool:
        return self._settings.mode != "passthrough"

    def is_virtual_token(self, token: str | None) -> bool:
        """Whether ``token`` must be resolved as a proxy key (it carries one, in any mode).

        In pass-through mode too: such a token is refused (``resolve``), never forwarded.
        """
        return carries_proxy_token(token)

    async def lookup(self, token: str) -> VirtualKey | None:
        digest = hash_key(token)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        key = await self._store.get_virtual_key_by_hash(digest)
        if key is not None and not hmac.compare_digest(key.key_hash, digest):
            key = None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + self._settings.cache_seconds, key)
        return key

    async def resolve(self, token: str) -> Identity:
        """The identity of a virtual key, or 401 saying why not."""
        if not self.virtual:
            raise Unauthorized(
                "proxy keys (mlx-vk-...) are not accepted here: this proxy forwards the"
                " caller's own Modellix key (keys.mode is passthrough)",
                reason="virtual_keys_disabled",
            )
        if not _TOKEN.fullmatch(token):
            raise Unauthorized("malformed proxy key", reason="invalid_key")
        key = await self.lookup(token)
        now = self._clock()
        if key is None:
            raise Unauthorized("unknown proxy key", reason="invalid_key")
        if key.revoked_at is not None:
            raise Unauthorized(f"proxy key {key.key_id} was revoked", reason="revoked_key")
        if key.expires_at is not None and key.expires_at <= now:
            raise Unauthorized(f"proxy key {key.key_id} has expired", reason="expired_key")
        account = self._accounts.for_team(key.team)
        if account is None:
            raise ServiceUnavailable(
                f"no Modellix account for team {key.team or '(none)'}: virtual keys need "
                "upstream.api_key, or an upstream.accounts entry listing the team "
                "(or upstream.default_account)",
                reason="no_upstream_key",
            )
        caller = Caller(
            identity=f"vk:{key.key_id}",
            team=key.team,
            project=key.project,
            virtual_key_id=key.key_id,
            allowed_models=frozenset(key.allowed_models) if key.allowed_models else None,
            max_concurrent_jobs=key.max_concurrent_jobs,
            account=account.name,
        )
        return Identity(caller, account.authorization, key)
