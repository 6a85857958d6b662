"""Admin commands for the audit trail and the admin credentials (on the store, proxy
running or not).

modellix-proxy audit [--since T] [--until T] [--actor A] [--action X] [--subject S]
                     [--after SEQ] [--limit N]    rows in chain order, as JSON lines
modellix-proxy audit verify [--page-size N]       check the hash chain, N rows read at a time
                                                  (constant memory); exit 1 naming every
                                                  edited or deleted row
modellix-proxy audit prune                        delete rows older than audit.retention_days
modellix-proxy admin-tokens add NAME --role viewer|finance|operator   (token shown once)
modellix-proxy admin-tokens list [--all]
modellix-proxy admin-tokens rotate TOKEN_ID       a new secret (shown once); the old one stops
modellix-proxy admin-tokens revoke TOKEN_ID

Changes made here are recorded like the API's, with the actor ``cli:<login>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from proxy.audit.admin_api import row_json
from proxy.audit.retention import prune
from proxy.audit.tokens import fresh_secret, new_admin_token, token_json, valid_name
from proxy.audit.trail import cli_actor, recorded
from proxy.audit.verify import PAGE, verify
from proxy.cli_admin import parse_time
from proxy.cli_common import with_store
from proxy.config import Settings
from proxy.governance.keys import hash_key
from proxy.stores import Store
from proxy.stores.audit_records import Role
from proxy.stores.base import DuplicateKeyError


def cmd_list(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        after, left = args.after, args.limit
        while left > 0:
            rows = await store.audit_rows(
                after_seq=after, limit=min(left, 1000), since=args.since, until=args.until,
                actor=args.actor, action=args.action, subject=args.subject,
            )  # fmt: skip
            for row in rows:
                print(json.dumps(row_json(row), ensure_ascii=False))
            if len(rows) < min(left, 1000):
                break
            after, left = rows[-1].seq, left - len(rows)
        return 0

    return with_store(args, work)


def page_size(text: str) -> int:
    """``--page-size``: a whole number of rows, at least 1."""
    try:
        size = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of rows: {text!r}") from None
    if size < 1:
        raise argparse.ArgumentTypeError(f"at least 1 row, got {size}")
    return size


def cmd_verify(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        verdict = await verify(store, args.page_size)
        for problem in verdict.problems:
            print(f"audit: {problem}", file=sys.stderr)
        state = "intact" if verdict.ok else f"BROKEN ({len(verdict.problems)} problems)"
        print(
            f"audit chain {state}: {verdict.rows} rows checked, head {verdict.head_seq},"
            f" anchor {verdict.anchor_seq}; head hash {verdict.head_hash or '-'}"
        )
        return 0 if verdict.ok else 1

    return with_store(args, work)


def cmd_prune(args: argparse.Namespace) -> int:
    async def work(store: Store, settings: Settings) -> int:
        deleted = await prune(store, settings.audit.retention_days, time.time())
        print(json.dumps({"deleted": deleted, "retention_days": settings.audit.retention_days}))
        return 0

    return with_store(args, work)


def cmd_tokens_add(args: argparse.Namespace) -> int:
    if not valid_name(args.name):
        print("error: name: 1-64 letters, digits and ._@- (not 'config')", file=sys.stderr)
        return 2

    async def work(store: Store, _settings: Settings) -> int:
        record, token = new_admin_token(args.name, Role(args.role), time.time())
        try:
            async with recorded(store, cli_actor(), "admin_token.add", record.token_id) as entry:
                stored = await store.create_admin_token(record)
                entry.after = token_json(stored)
        except DuplicateKeyError:
            print(f"error: an active admin token is named {args.name!r}", file=sys.stderr)
            return 1
        print(json.dumps({"token": token, **token_json(stored)}, indent=2))
        print("store the token now: it is not shown again", file=sys.stderr)
        return 0

    return with_store(args, work)


def cmd_tokens_list(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        tokens = await store.list_admin_tokens(include_revoked=args.all)
        print(json.dumps([token_json(t) for t in tokens], indent=2))
        return 0

    return with_store(args, work)


def cmd_tokens_rotate(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        token = fresh_secret(args.token_id)
        try:
            async with recorded(store, cli_actor(), "admin_token.rotate", args.token_id) as entry:
                before = await store.get_admin_token(args.token_id)
                rotated = await store.rotate_admin_token(
                    args.token_id, hash_key(token), time.time()
                )
                if before is None or rotated is None:
                    raise LookupError(args.token_id)
                entry.before, entry.after = token_json(before), token_json(rotated)
        except LookupError:
            print(f"error: no active admin token {args.token_id!r}", file=sys.stderr)
            return 1
        print(json.dumps({"token": token, **token_json(rotated)}, indent=2))
        print("store the token now: it is not shown again", file=sys.stderr)
        return 0

    return with_store(args, work)


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        try:
            async with recorded(store, cli_actor(), "admin_token.revoke", args.token_id) as entry:
                before = await store.get_admin_token(args.token_id)
                if before is None or not await store.revoke_admin_token(args.token_id, time.time()):
                    raise LookupError(args.token_id)
                after = await store.get_admin_token(args.token_id)
                entry.before = token_json(before)
                entry.after = token_json(after) if after else None
        except LookupError:
            print(f"error: no active admin token {args.token_id!r}", file=sys.stderr)
            return 1
        print(f"revoked {args.token_id}")
        return 0

    return with_store(args, work)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit trail of admin actions: list, verify, prune")
    audit.add_argument("--since", type=parse_time, help="date/time or epoch")
    audit.add_argument("--until", type=parse_time, help="date/time or epoch")
    audit.add_argument("--actor", help="the admin credential's name (cli:<login> for the CLI)")
    audit.add_argument("--action", help="e.g. budget.put, key.revoke")
    audit.add_argument("--subject", help="what was changed: a key id, budget name, ...")
    audit.add_argument("--after", type=int, default=0, help="rows after this sequence number")
    audit.add_argument("--limit", type=int, default=1000)
    audit.set_defaults(func=cmd_list)
    audit_sub = audit.add_subparsers(dest="audit_command")
    check = audit_sub.add_parser("verify", help="check the hash chain; name any edited row")
    check.add_argument(
        "--page-size", type=page_size, default=PAGE, help=f"rows read at a time (default {PAGE})"
    )
    check.set_defaults(func=cmd_verify)
    drop = audit_sub.add_parser("prune", help="delete rows older than audit.retention_days")
    drop.set_defaults(func=cmd_prune)

    tokens = sub.add_parser("admin-tokens", help="named admin credentials: add, list, rotate")
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True)
    add = tokens_sub.add_parser("add", help="add a token (shown once)")
    add.add_argument("name")
    add.add_argument("--role", choices=[r.value for r in Role], required=True)
    add.set_defaults(func=cmd_tokens_add)
    listing = tokens_sub.add_parser("list", help="the stored admin tokens (never a secret)")
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.set_defaults(func=cmd_tokens_list)
    rotate = tokens_sub.add_parser("rotate", help="a new secret for a token (shown once)")
    rotate.add_argument("token_id")
    rotate.set_defaults(func=cmd_tokens_rotate)
    revoke = tokens_sub.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token_id")
    revoke.set_defaults(func=cmd_tokens_revoke)
    for parser in (audit, check, drop, add, listing, rotate, revoke):
        parser.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
