"""Admin commands for completion webhooks and balance reconciliation.

modellix-proxy webhooks deliveries [--state pending|delivered|dead] [--limit N]
modellix-proxy webhooks redeliver <delivery id or task id>
modellix-proxy webhooks endpoint <caller> [<url> | --delete]
modellix-proxy webhooks secret <caller>      the whsec_ secret a receiver verifies with
modellix-proxy balance                       the last reconciliation per team
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from proxy.audit.trail import cli_actor, recorded
from proxy.catalog.preflight import parse_image_url
from proxy.cli_common import settings_or_exit, with_store
from proxy.config import Settings
from proxy.stores import Store
from proxy.stores.webhook_records import DeliveryState
from proxy.webhooks import signing
from proxy.webhooks.admin_api import delivery_json, reading_json


def cmd_deliveries(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        state = DeliveryState(args.state) if args.state else None
        found = await store.list_deliveries(state=state, limit=args.limit)
        print(json.dumps([delivery_json(d) for d in found], indent=2))
        return 0

    return with_store(args, work)


def cmd_redeliver(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        try:
            async with recorded(store, cli_actor(), "webhook.redeliver", args.delivery_id) as e:
                before = await store.get_delivery(args.delivery_id)
                if before is None or not await store.redeliver(args.delivery_id, time.time()):
                    raise LookupError(args.delivery_id)
                after = await store.get_delivery(args.delivery_id)
                e.before = delivery_json(before)
                e.after = delivery_json(after) if after is not None else None
        except LookupError:
            print(f"error: no delivery {args.delivery_id!r}", file=sys.stderr)
            return 1
        print(json.dumps({"delivery_id": args.delivery_id, "state": "pending"}))
        return 0

    return with_store(args, work)


def cmd_endpoint(args: argparse.Namespace) -> int:
    if not args.caller.startswith(("vk:", "fp:")):
        print("error: caller is vk:<key id> or fp:<key fingerprint>", file=sys.stderr)
        return 2
    if args.url is not None:
        try:
            parse_image_url(args.url)
        except ValueError as exc:
            print(f"error: the URL {exc}", file=sys.stderr)
            return 2

    async def work(store: Store, _settings: Settings) -> int:
        if args.url is None and not args.delete:
            url = await store.get_webhook_endpoint(args.caller)
            print(json.dumps({"caller": args.caller, "url": url}))
            return 0
        action = "webhook_endpoint.delete" if args.delete else "webhook_endpoint.put"
        new_url = None if args.delete else args.url
        try:
            async with recorded(store, cli_actor(), action, args.caller) as entry:
                entry.before = {"url": await store.get_webhook_endpoint(args.caller)}
                found = await store.set_webhook_endpoint(args.caller, new_url, time.time())
                if args.delete and not found:
                    raise LookupError(args.caller)
                entry.after = {"url": new_url}
        except LookupError:
            print(json.dumps({"caller": args.caller, "deleted": False}))
            return 1
        if args.delete:
            print(json.dumps({"caller": args.caller, "deleted": True}))
            return 0
        print(json.dumps({"caller": args.caller, "url": args.url}))
        return 0

    return with_store(args, work)


def cmd_secret(args: argparse.Namespace) -> int:
    settings = settings_or_exit(args.config)
    master = settings.webhook_signing_secret()
    if master is None:
        print("error: webhooks.signing_secret is not set", file=sys.stderr)
        return 2
    print(signing.secret_text(signing.caller_key(master, args.caller)))
    return 0


def cmd_balance(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        readings = await store.list_balance_readings()
        print(json.dumps([reading_json(r) for r in readings], indent=2))
        return 0

    return with_store(args, work)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hooks = sub.add_parser("webhooks", help="completion webhooks: deliveries, endpoints, secrets")
    hooks_sub = hooks.add_subparsers(dest="webhooks_command", required=True)
    listing = hooks_sub.add_parser("deliveries", help="list deliveries, newest first")
    listing.add_argument("--state", choices=[s.value for s in DeliveryState])
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(func=cmd_deliveries)
    again = hooks_sub.add_parser("redeliver", help="send a delivery again (same Webhook-Id)")
    again.add_argument("delivery_id", help="delivery id (Webhook-Id) or task id")
    again.set_defaults(func=cmd_redeliver)
    endpoint = hooks_sub.add_parser("endpoint", help="show, set or delete a caller's default URL")
    endpoint.add_argument("caller", help="vk:<key id> or fp:<key fingerprint>")
    endpoint.add_argument("url", nargs="?")
    endpoint.add_argument("--delete", action="store_true")
    endpoint.set_defaults(func=cmd_endpoint)
    secret = hooks_sub.add_parser("secret", help="the signing secret of a caller (whsec_...)")
    secret.add_argument("caller", help="vk:<key id> or fp:<key fingerprint>")
    secret.set_defaults(func=cmd_secret)
    balance = sub.add_parser("balance", help="balance reconciliation: unexplained spend per team")
    balance.set_defaults(func=cmd_balance)
    for parser in (listing, again, endpoint, secret, balance):
        parser.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
