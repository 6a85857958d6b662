"""The Modellix accounts in the admin API (never their keys).

GET /admin/accounts   each account: its display name, whether unlisted teams bill to it, its
                      concurrency (configured, or its funding tier's) and the upstream tasks it
                      has in flight through the proxy, its requests per minute (likewise) and
                      the submits the proxy let go with its key in the last minute, its teams,
                      its last balance reading
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from aiohttp import web

from proxy import money
from proxy.accounts import Account, AccountBook
from proxy.state import ADMIN_RUNTIME
from proxy.stores.base import AdmissionStore, BalanceStore


class AccountsStore(AdmissionStore, BalanceStore, Protocol):
    """What the view reads: in-flight counts and balance readings."""


async def account_json(
    store: AccountsStore, book: AccountBook, account: Account, balance_label: str
) -> dict[str, Any]:
    reading = await store.get_balance_reading(balance_label)
    return {
        "name": account.name,
        "display_name": account.display_name,
        "default": book.default == account.name,
        "concurrency": account.concurrency,
        "in_flight": await store.admission_account_in_flight(account.name),
        "rpm": account.rpm,
        "submits_last_minute": await store.admission_account_sends(account.name, time.time()),
        "teams": list(account.teams),
        "balance": None
        if reading is None
        else {
            "balance_usd": money.exact(reading.balance_micros),
            "unexplained_usd": money.exact(reading.unexplained_micros),
            "topups_usd": money.exact(reading.topup_micros),
            "read_at": reading.read_at,
        },
    }


def add_routes(app: web.Application, balance_team: str) -> None:
    """``balance_team``: the reading label of the single-key proxy (``balance.team``); with
    several accounts each account's readings carry its own name."""

    async def list_accounts(request: web.Request) -> web.Response:
        runtime = request.app[ADMIN_RUNTIME]
        store = runtime.open_store()
        book = runtime.accounts
        docs = [
            await account_json(store, book, a, a.name if book.several else balance_team)
            for a in book.all()
        ]
        return web.json_response({"accounts": docs})

    app.router.add_get("/admin/accounts", list_accounts)
