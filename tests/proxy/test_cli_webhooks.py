"""The operator subcommands for webhooks, balance and the FOCUS export, on a SQLite file."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from proxy.governance.focus import COLUMNS
from proxy.stores import Store
from proxy.stores.records import NewJob
from proxy.webhooks import signing
from tests.proxy.test_cli_admin import cli, with_store

T0 = 1_767_225_600.0
URL = "https://hooks.example.com/done"


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store file the CLI finds through MODELLIX_PROXY_STORE__URL, and nothing else set."""
    for name in list(os.environ):
        if name.startswith("MODELLIX_PROXY_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    monkeypatch.setenv("MODELLIX_PROXY_STORE__URL", url)
    return url


async def _terminal_job_with_callback(store: Store) -> None:
    await store.insert_job(
        NewJob(task_id="t-1", caller="vk:abc", pinned_slug="minimax/hailuo-02-t2v",
               submitted_at=T0, team="studio", estimated_cost_micros=324_000, callback_url=URL)
    )  # fmt: skip
    await store.observe("t-1", "success", T0 + 60, final_cost_micros=324_000)


def test_webhook_commands_list_redeliver_and_set_endpoints(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Deliveries are listed and redelivered; a caller's default URL is set and removed."""
    with_store(store_url, _terminal_job_with_callback)
    code, out, _ = cli(capsys, "webhooks", "deliveries", "--state", "pending")
    assert code == 0
    [listed] = json.loads(out)
    assert (listed["task_id"], listed["url"], listed["state"]) == ("t-1", URL, "pending")
    code, out, _ = cli(capsys, "webhooks", "redeliver", "t-1")
    assert code == 0
    assert json.loads(out)["state"] == "pending"
    assert cli(capsys, "webhooks", "redeliver", "nope")[0] == 1
    assert cli(capsys, "webhooks", "endpoint", "vk:abc", URL)[0] == 0
    assert json.loads(cli(capsys, "webhooks", "endpoint", "vk:abc")[1])["url"] == URL
    assert cli(capsys, "webhooks", "endpoint", "vk:abc", "--delete")[0] == 0
    assert cli(capsys, "webhooks", "endpoint", "team-a", URL)[0] == 2
    assert cli(capsys, "webhooks", "endpoint", "vk:abc", "ftp://x")[0] == 2


def test_webhook_secret_is_the_callers_derived_key(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`webhooks secret` prints the whsec_ secret the proxy signs that caller's deliveries with."""
    assert cli(capsys, "webhooks", "secret", "vk:abc")[0] == 2
    monkeypatch.setenv("MODELLIX_PROXY_WEBHOOKS__SIGNING_SECRET", "master")
    code, out, _ = cli(capsys, "webhooks", "secret", "vk:abc")
    assert code == 0
    assert out.strip() == signing.secret_text(signing.caller_key("master", "vk:abc"))
    assert out.strip() != signing.secret_text(signing.caller_key("master", "vk:abd"))


def test_report_focus_and_balance(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`report --format focus` writes FOCUS rows; `balance` lists readings (none yet)."""
    with_store(store_url, _terminal_job_with_callback)
    code, out, _ = cli(capsys, "report", "--format", "focus", "--since", "2026-01-01")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["ResourceId"], r["BilledCost"], r["SubAccountId"]) for r in rows] == [
        ("t-1", "0.324000", "studio")
    ]
    assert list(rows[0]) == list(COLUMNS)
    code, out, _ = cli(capsys, "balance")
    assert (code, json.loads(out)) == (0, [])
