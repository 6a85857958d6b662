"""The audit and admin-tokens subcommands, on each engine: CLI changes are audited as
``cli:<login>``, tokens are shown once, and verify and prune keep the chain checkable."""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest

from proxy.cli import main
from proxy.governance.keys import hash_key
from tests.proxy.test_cli_admin import with_store
from tests.stores.helpers import raw_query


@pytest.fixture
def cli_store(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The engine's fresh database, found by the CLI through MODELLIX_PROXY_STORE__URL."""
    for name in list(os.environ):
        if name.startswith("MODELLIX_PROXY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODELLIX_PROXY_STORE__URL", store_url)
    return store_url


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_admin_tokens_and_the_audit_trail(
    cli_store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Add, rotate and revoke a token from the CLI; each is a row; verify names an edit."""
    code, out, err = cli(capsys, "admin-tokens", "add", "fin-ann", "--role", "finance")
    assert code == 0
    assert "not shown again" in err
    added = json.loads(out)
    assert re.fullmatch(rf"mlx-adm-{added['token_id']}-[A-Za-z0-9_-]{{32,}}", added["token"])
    assert "token_hash" not in added
    stored = with_store(cli_store, lambda s: s.get_admin_token_by_hash(hash_key(added["token"])))
    assert stored is not None
    assert stored.role == "finance"
    assert cli(capsys, "admin-tokens", "add", "fin-ann", "--role", "viewer")[0] == 1
    assert cli(capsys, "admin-tokens", "add", "config", "--role", "viewer")[0] == 2
    code, out, _ = cli(capsys, "admin-tokens", "rotate", added["token_id"])
    assert code == 0
    assert json.loads(out)["token"] != added["token"]
    assert cli(capsys, "admin-tokens", "revoke", added["token_id"])[0] == 0
    assert cli(capsys, "admin-tokens", "revoke", added["token_id"])[0] == 1  # nothing recorded
    assert json.loads(cli(capsys, "admin-tokens", "list")[1]) == []
    code, out, _ = cli(capsys, "budgets", "set", "cap", "--scope", "global", "--limit-usd", "5")
    assert code == 0

    code, out, _ = cli(capsys, "audit")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["action"] for r in rows] == [
        "admin_token.add", "admin_token.rotate", "admin_token.revoke", "budget.put",
    ]  # fmt: skip
    assert {r["origin"] for r in rows} == {"cli"}
    assert all(r["actor"].startswith("cli:") for r in rows)
    assert rows[3]["before"] is None
    assert rows[3]["after"]["limit_usd"] == 5
    assert added["token"] not in out
    assert stored.token_hash not in out
    code, out, _ = cli(capsys, "audit", "--action", "budget.put")
    assert [json.loads(line)["subject"] for line in out.splitlines()] == ["cap"]

    code, out, err = cli(capsys, "audit", "verify")
    assert (code, err) == (0, "")
    assert "intact: 4 rows checked" in out
    asyncio_run_sql(cli_store, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2")
    code, out, err = cli(capsys, "audit", "verify")
    assert code == 1
    assert err.strip() == "audit: row 2: edited (its fields do not give its hash)"
    paged = cli(capsys, "audit", "verify", "--page-size", "1")  # one row a read: the same
    assert paged == (1, out, err)
    with pytest.raises(SystemExit):
        cli(capsys, "audit", "verify", "--page-size", "0")


def test_prune_deletes_only_rows_older_than_the_retention(
    cli_store: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows older than audit.retention_days go, younger stay, and the chain still verifies."""
    for name in ("a", "b", "c"):
        assert cli(capsys, "admin-tokens", "add", name, "--role", "viewer")[0] == 0
    old = 1_000_000_000.0  # 2001: far past any retention
    asyncio_run_sql(cli_store, f"UPDATE audit_log SET at = {old} WHERE seq <= 2")  # noqa: S608
    monkeypatch.setenv("MODELLIX_PROXY_AUDIT__RETENTION_DAYS", "400")
    assert cli(capsys, "audit", "verify")[0] == 1  # the edit of `at` is itself detected
    code, out, _ = cli(capsys, "audit", "prune")
    assert code == 0
    assert json.loads(out) == {"deleted": 2, "retention_days": 400.0}
    code, out, _ = cli(capsys, "audit", "verify")
    assert code == 0, out
    assert "1 rows checked, head 3, anchor 2" in out


def asyncio_run_sql(url: str, sql: str) -> None:
    """One statement on a connection of its own, outside the store (a tamperer's edit)."""
    asyncio.run(raw_query(url, sql))
