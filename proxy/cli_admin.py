"""Operator subcommands that work on the store directly: keys, budgets, report.

They read the same configuration as ``serve`` (``-c`` / ``$MODELLIX_PROXY_CONFIG``
and ``MODELLIX_PROXY_*``) and open ``store.url``, so they work with the proxy
running or not, from any machine that reaches the database.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime

from pydantic import ValidationError

from proxy import money
from proxy.accounts import account_names
from proxy.audit.trail import cli_actor, recorded
from proxy.catalog.from_settings import build_catalog
from proxy.checks import describe_errors
from proxy.cli_common import with_store
from proxy.config import BudgetSpec, Settings
from proxy.governance import focus, report, streaming
from proxy.governance.admin_api import budget_doc, key_json
from proxy.governance.budgets import BudgetBook, iso
from proxy.governance.keys import new_key
from proxy.governance.setup import budget_from_spec
from proxy.stores import Store


def parse_time(text: str) -> float:
    """Epoch seconds from ``YYYY-MM-DD``, an ISO timestamp, or a number."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {text!r}") from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def cmd_keys_create(args: argparse.Namespace) -> int:
    async def work(store: Store, settings: Settings) -> int:
        catalog, _ = build_catalog(settings.models)
        unknown = [m for m in args.model or [] if m not in catalog]
        if unknown:
            print(f"error: not catalog slugs: {', '.join(unknown)}", file=sys.stderr)
            return 2
        if args.expires_in_days is not None and args.expires_in_days <= 0:
            print("error: --expires-in-days must be positive", file=sys.stderr)
            return 2
        days = args.expires_in_days
        expires = None if days is None else time.time() + days * 86400
        record, token = new_key(
            time.time(),
            name=args.name,
            team=args.team,
            project=args.project,
            allowed_models=tuple(args.model or ()),
            expires_at=expires,
            max_concurrent_jobs=args.max_concurrent,
        )
        async with recorded(store, cli_actor(), "key.create", record.key_id) as entry:
            stored = await store.create_virtual_key(record)
            entry.after = key_json(stored)
        print(json.dumps({"key": token, **key_json(record)}, indent=2))
        print("store the key now: it is not shown again", file=sys.stderr)
        return 0

    return with_store(args, work)


def cmd_keys_list(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        keys = await store.list_virtual_keys(team=args.team, include_revoked=args.all)
        print(json.dumps([key_json(k) for k in keys], indent=2))
        return 0

    return with_store(args, work)


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        try:
            async with recorded(store, cli_actor(), "key.revoke", args.key_id) as entry:
                before = await store.get_virtual_key(args.key_id)
                if before is None or not await store.revoke_virtual_key(args.key_id, time.time()):
                    raise LookupError(args.key_id)
                after = await store.get_virtual_key(args.key_id)
                entry.before, entry.after = key_json(before), key_json(after) if after else None
        except LookupError:
            print(f"error: no active key {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
        return 0

    return with_store(args, work)


_BUDGET_OPTIONS = {"limit_usd": "--limit-usd", "scope": "--scope", "subject": "--subject",
                   "window": "--window", "name": "name", "hard": "--soft"}  # fmt: skip


def cmd_budgets_set(args: argparse.Namespace) -> int:
    try:
        limit = money.parse(args.limit_usd)
    except ValueError as exc:
        print(f"error: --limit-usd: {exc}", file=sys.stderr)
        return 2
    try:
        spec = BudgetSpec(
            name=args.name,
            scope=args.scope,
            subject=args.subject,
            window=args.window,
            limit_usd=money.to_decimal(limit),
            hard=not args.soft,
        )
    except ValidationError as exc:
        for line in describe_errors(exc):
            field, _, problem = line.partition(": ")
            print(f"error: {_BUDGET_OPTIONS.get(field, field)}: {problem}", file=sys.stderr)
        return 2

    async def work(store: Store, _settings: Settings) -> int:
        async with recorded(store, cli_actor(), "budget.put", spec.name) as entry:
            entry.before = await budget_doc(store, spec.name)
            stored = await store.put_budget(budget_from_spec(spec, time.time()))
            entry.after = await budget_doc(store, spec.name)
        kind = "hard" if stored.hard else "soft"
        limit = money.display(stored.limit_micros)
        who = f"{stored.scope} {stored.subject or ''}".strip()
        print(f"budget {stored.name}: {who} {stored.window} {limit} {kind}")
        return 0

    return with_store(args, work)


def cmd_budgets_list(args: argparse.Namespace) -> int:
    async def work(store: Store, settings: Settings) -> int:
        book = BudgetBook(store, settings.governance.timezone, 0)
        rows = []
        for applied, window in await book.standing(time.time()):
            b = applied.budget
            spent = window.spent_micros if window else 0
            reserved = window.reserved_micros if window else 0
            rows.append({"name": b.name, "scope": b.scope, "subject": b.subject,
                         "window": b.window, "hard": b.hard,
                         "limit_usd": money.sample(b.limit_micros),
                         "spent_usd": money.sample(spent), "reserved_usd": money.sample(reserved),
                         "resets_at": iso(applied.resets_at)})  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0

    return with_store(args, work)


def cmd_budgets_delete(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        try:
            async with recorded(store, cli_actor(), "budget.delete", args.name) as entry:
                entry.before = await budget_doc(store, args.name)
                if not await store.delete_budget(args.name):
                    raise LookupError(args.name)
        except LookupError:
            print(f"error: no budget {args.name}", file=sys.stderr)
            return 1
        print(f"deleted {args.name}")
        return 0

    return with_store(args, work)


def cmd_report(args: argparse.Namespace) -> int:
    try:
        group_by = report.parse_group_by(args.group_by)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    until = args.until if args.until is not None else time.time() + 1
    since = args.since if args.since is not None else until - 30 * 86400

    async def write(store: Store, settings: Settings) -> None:
        out = sys.stdout.buffer
        if args.format == "focus":  # formatted by the database, written a chunk at a time
            names = account_names(settings)
            await streaming.to_file(focus.chunks("csv", store, since, until, names)[1], out)
            return
        rows = await report.build(store, since, until, group_by)
        if args.format == "csv":
            await streaming.to_file(report.csv_chunks(rows, group_by), out)
        else:
            unexplained = await report.unexplained_spend(store)
            chunks = report.json_chunks(rows, since, until, group_by, unexplained)
            await streaming.to_file(chunks, out)

    async def work(store: Store, settings: Settings) -> int:
        sys.stdout.flush()
        try:
            await write(store, settings)
        except BrokenPipeError:  # the reader went away (``| head``): the read stops, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # nothing left to flush at exit
            os.close(devnull)
            return 1
        return 0

    return with_store(args, work)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="virtual keys: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key (shown once)")
    create.add_argument("--name")
    create.add_argument("--team")
    create.add_argument("--project")
    create.add_argument("--model", action="append", help="allowed pinned slug (repeatable)")
    create.add_argument("--expires-in-days", type=float)
    create.add_argument("--max-concurrent", type=int, help="jobs in flight at once")
    create.set_defaults(func=cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list keys")
    listing.add_argument("--team")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.set_defaults(func=cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_id")
    revoke.set_defaults(func=cmd_keys_revoke)

    budgets = sub.add_parser("budgets", help="budgets: set, list, delete")
    budgets_sub = budgets.add_subparsers(dest="budgets_command", required=True)
    put = budgets_sub.add_parser("set", help="create or change a budget")
    put.add_argument("name")
    put.add_argument("--scope", choices=("key", "team", "project", "global"), required=True)
    put.add_argument("--subject", help="key id, team or project (not for global)")
    put.add_argument("--window", choices=("day", "month", "lifetime"), default="month")
    put.add_argument("--limit-usd", required=True)
    put.add_argument("--soft", action="store_true", help="only signal, never refuse")
    put.set_defaults(func=cmd_budgets_set)
    show = budgets_sub.add_parser("list", help="budgets with their current window")
    show.set_defaults(func=cmd_budgets_list)
    drop = budgets_sub.add_parser("delete", help="delete a budget")
    drop.add_argument("name")
    drop.set_defaults(func=cmd_budgets_delete)

    rep = sub.add_parser("report", help="spend report by day or week, team, project, model")
    rep.add_argument("--since", type=parse_time, help="date/time or epoch (default: 30 days ago)")
    rep.add_argument("--until", type=parse_time, help="date/time or epoch (default: now)")
    rep.add_argument("--group-by", default="day,team,model")
    rep.add_argument("--format", choices=("csv", "json", "focus"), default="csv")
    rep.set_defaults(func=cmd_report)

    for parser in (create, listing, revoke, put, show, drop, rep):
        parser.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
