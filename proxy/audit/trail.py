"""Recording an admin action: who, from where, what it changed, in the change's transaction.

    async with recorded(store, actor, "budget.put", name) as entry:
        entry.before = ...          # read inside: the same transaction as the change
        ...change...
        entry.after = ...

On a clean exit the row is appended and committed with the change, then logged as one
``audit.recorded`` event; if the block raises, nothing changed and nothing is recorded.
Secrets never reach a row or the log: fields that hold a key, a token, a hash of one or a
secret are replaced by ``"[redacted]"`` (``redact``).
"""

from __future__ import annotations

import getpass
import os
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog

from proxy.stores.audit_records import AuditDraft
from proxy.stores.base import AuditStore

log = structlog.get_logger("proxy.audit")

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset(
    {"key", "token", "key_hash", "token_hash", "secret", "api_key", "signing_secret"}
)
SECRET_PREFIXES = ("mlx-vk-", "mlx-adm-", "whsec_", "sk-")


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes an admin action and from where."""

    name: str
    origin: str  # "api" or "cli"
    peer: str | None = None
    request_id: str | None = None


def cli_actor() -> Actor:
    """The operator running a ``modellix-proxy`` command: their login, on this host."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = f"uid {os.getuid()}"
    return Actor(f"cli:{user}", "cli", socket.gethostname(), os.urandom(16).hex())


def redact(value: Any) -> Any:
    """``value`` with every secret-holding field and secret-shaped string replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if k in SECRET_FIELDS and v is not None else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str) and value.startswith(SECRET_PREFIXES):
        return REDACTED
    return value


@asynccontextmanager
async def recorded(
    store: AuditStore, actor: Actor, action: str, subject: str
) -> AsyncIterator[AuditDraft]:
    """The change made in the block and its audit row, in one transaction."""
    draft = AuditDraft(
        at=time.time(), actor=actor.name, origin=actor.origin, action=action, subject=subject,
        peer=actor.peer, request_id=actor.request_id,
    )  # fmt: skip
    async with store.audited(draft):
        yield draft
        draft.before, draft.after = redact(draft.before), redact(draft.after)
    row = draft.row
    if row is not None:
        log.info(
            "audit.recorded", seq=row.seq, at=row.at, actor=row.actor, origin=row.origin,
            peer=row.peer, audit_request_id=row.request_id, action=row.action,
            subject=row.subject, before=row.before, after=row.after, hash=row.hash,
        )  # fmt: skip
