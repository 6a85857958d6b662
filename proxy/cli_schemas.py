"""Admin commands for the upstream's published schemas (on the store, proxy running or not).

modellix-proxy schemas list                     every model's pin; which changes wait
modellix-proxy schemas show <provider/model>    one pin, its versions and pinned document
modellix-proxy schemas accept <provider/model> [--hash H]   pin the latest (or H)

An acceptance reaches every running replica within ``models.upstream_schemas.sync_seconds``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from proxy.admin_schemas import pin_json
from proxy.audit.trail import cli_actor, recorded
from proxy.cli_common import with_store
from proxy.config import Settings
from proxy.stores import Store


def cmd_list(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        pins = await store.schema_pins()
        if args.waiting:
            pins = [p for p in pins if p.waiting]
        print(json.dumps([pin_json(p) for p in pins], indent=2))
        return 0

    return with_store(args, work)


def cmd_show(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        pin = await store.schema_pin(args.model)
        if pin is None:
            print(f"error: no schema recorded for {args.model}", file=sys.stderr)
            return 1
        out = pin_json(pin)
        versions = await store.schema_versions(args.model)
        out["versions"] = [{"hash": v.hash, "first_seen": v.first_seen} for v in versions]
        text = await store.schema_document(args.model, pin.pinned_hash)
        out["pinned"] = json.loads(text) if text is not None else None
        print(json.dumps(out, indent=2))
        return 0

    return with_store(args, work)


def cmd_accept(args: argparse.Namespace) -> int:
    async def work(store: Store, _settings: Settings) -> int:
        try:
            async with recorded(store, cli_actor(), "schema.accept", args.model) as entry:
                before = await store.schema_pin(args.model)
                pin = await store.accept_schema(args.model, args.hash, time.time())
                if pin is None:
                    raise LookupError(args.model)
                entry.before = pin_json(before) if before is not None else None
                entry.after = pin_json(pin)
        except LookupError:
            what = f"version {args.hash}" if args.hash else "schema"
            print(f"error: no {what} recorded for {args.model}", file=sys.stderr)
            return 1
        print(f"{pin.slug}: pinned {pin.pinned_hash}")
        return 0

    return with_store(args, work)


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    schemas = sub.add_parser("schemas", help="published request schemas: list, show, accept")
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True)
    listing = schemas_sub.add_parser("list", help="every model's pinned schema")
    listing.add_argument("--waiting", action="store_true", help="only changes waiting")
    listing.set_defaults(func=cmd_list)
    show = schemas_sub.add_parser("show", help="one model's pin, versions and document")
    show.add_argument("model", help="provider/model")
    show.set_defaults(func=cmd_show)
    accept = schemas_sub.add_parser("accept", help="pin the latest published version")
    accept.add_argument("model", help="provider/model")
    accept.add_argument("--hash", help="pin this recorded version instead of the latest")
    accept.set_defaults(func=cmd_accept)
    for parser in (listing, show, accept):
        parser.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
