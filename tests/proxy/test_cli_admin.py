"""The operator subcommands (keys, budgets, report) against a SQLite store file."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from proxy.cli import main
from proxy.governance.budgets import scope_key
from proxy.governance.keys import hash_key
from proxy.governance.windows import window_bounds
from proxy.stores import Store, open_store
from proxy.stores.records import BudgetScope, NewJob, Refusal
from proxy.webhooks.document import render_delivery

T = TypeVar("T")
SLUG = "minimax/hailuo-02-t2v"
COLUMNS = [
    "jobs",
    "succeeded",
    "failed",
    "estimated_usd",
    "spend_usd",
    "cost_per_job_p50_usd",
    "cost_per_job_p95_usd",
    "refused",
    "refused_savings_usd",
    "aliases",
]


@pytest.fixture
def store_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store file the CLI finds through MODELLIX_PROXY_STORE__URL, and nothing else set."""
    for name in list(os.environ):
        if name.startswith("MODELLIX_PROXY_"):
            monkeypatch.delenv(name)
    url = f"sqlite:///{tmp_path / 'proxy.db'}"
    monkeypatch.setenv("MODELLIX_PROXY_STORE__URL", url)
    return url


def with_store(url: str, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        store = await open_store(url, render_delivery=render_delivery)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def epoch(day: str, hour: int = 12) -> float:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC).timestamp()


def test_keys_create_list_revoke(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A key is printed once at creation, listed without secrets, and revoked exactly once."""
    code, out, err = cli(
        capsys,
        "keys",
        "create",
        "--name",
        "render-farm",
        "--team",
        "studio-a",
        "--project",
        "trailer",
        "--model",
        SLUG,
        "--max-concurrent",
        "2",
    )
    assert code == 0
    assert "not shown again" in err
    created: dict[str, Any] = json.loads(out)
    key_id, token = created["key_id"], created["key"]
    assert re.fullmatch(rf"mlx-vk-{key_id}-[A-Za-z0-9_-]{{32,}}", token)
    assert "key_hash" not in created
    assert created["team"] == "studio-a"
    assert created["allowed_models"] == [SLUG]
    assert created["max_concurrent_jobs"] == 2
    stored = with_store(store_url, lambda s: s.get_virtual_key_by_hash(hash_key(token)))
    assert stored is not None
    assert stored.key_id == key_id

    code, out, _ = cli(capsys, "keys", "create", "--team", "studio-b")
    assert code == 0
    other_id = json.loads(out)["key_id"]
    code, out, _ = cli(capsys, "keys", "list")
    assert code == 0
    listed = json.loads(out)
    assert [k["key_id"] for k in listed] == [key_id, other_id]
    assert token not in out
    assert hash_key(token) not in out
    assert all("key" not in k and "key_hash" not in k for k in listed)
    code, out, _ = cli(capsys, "keys", "list", "--team", "studio-b")
    assert [k["key_id"] for k in json.loads(out)] == [other_id]

    code, out, _ = cli(capsys, "keys", "revoke", key_id)
    assert (code, out) == (0, f"revoked {key_id}\n")
    code, _, err = cli(capsys, "keys", "revoke", key_id)
    assert code == 1
    assert f"no active key {key_id}" in err
    code, out, _ = cli(capsys, "keys", "list")
    assert [k["key_id"] for k in json.loads(out)] == [other_id]
    code, out, _ = cli(capsys, "keys", "list", "--all")
    everything = {k["key_id"]: k for k in json.loads(out)}
    assert everything[key_id]["active"] is False
    assert everything[key_id]["revoked_at"] is not None
    assert everything[other_id]["active"] is True


def test_keys_create_refuses_unknown_models(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A key limited to a model the catalog does not pin is refused with exit code 2."""
    code, out, err = cli(capsys, "keys", "create", "--model", SLUG, "--model", "acme/nope")
    assert code == 2
    assert out == ""
    assert "acme/nope" in err
    assert with_store(store_url, lambda s: s.list_virtual_keys(include_revoked=True)) == []


def test_budgets_set_list_delete(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Budgets are set and changed, listed with their window's spend, and deleted once."""
    assert cli(
        capsys,
        "budgets",
        "set",
        "team-a",
        "--scope",
        "team",
        "--subject",
        "studio-a",
        "--window",
        "day",
        "--limit-usd",
        "12.50",
    ) == (0, "budget team-a: team studio-a day $12.50 hard\n", "")
    assert cli(capsys, "budgets", "set", "all", "--scope", "global", "--limit-usd", "1000") == (
        0,
        "budget all: global month $1,000.00 hard\n",
        "",
    )
    code, out, _ = cli(
        capsys, "budgets", "set", "all", "--scope", "global", "--limit-usd", "900", "--soft"
    )
    assert (code, out) == (0, "budget all: global month $900.00 soft\n")

    async def spend(store: Store) -> None:
        start, _ = window_bounds("day", datetime.now(UTC).timestamp())
        budget = (await store.list_budgets())[1]
        assert budget.name == "team-a"
        scopes = [BudgetScope(scope_key(budget), start, budget.limit_micros)]
        assert (await store.budget_reserve(scopes, 324_000, reservation_id="r1")).ok
        assert (await store.budget_reserve(scopes, 540_000, reservation_id="r2")).ok
        assert await store.budget_settle("r1", 324_000)

    with_store(store_url, spend)
    code, out, _ = cli(capsys, "budgets", "list")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert set(rows) == {"all", "team-a"}
    team = rows["team-a"]
    assert (team["scope"], team["subject"], team["window"], team["hard"]) == (
        "team",
        "studio-a",
        "day",
        True,
    )
    assert (team["limit_usd"], team["spent_usd"], team["reserved_usd"]) == (12.5, 0.324, 0.54)
    assert team["resets_at"].endswith("T00:00:00Z")
    everyone = rows["all"]
    assert (everyone["hard"], everyone["limit_usd"], everyone["spent_usd"]) == (False, 900.0, 0)
    assert everyone["resets_at"][8:] == "01T00:00:00Z"

    assert cli(capsys, "budgets", "delete", "team-a") == (0, "deleted team-a\n", "")
    code, _, err = cli(capsys, "budgets", "delete", "team-a")
    assert code == 1
    assert "no budget team-a" in err
    code, out, _ = cli(capsys, "budgets", "list")
    assert [row["name"] for row in json.loads(out)] == ["all"]


@pytest.mark.parametrize(
    "argv",
    [
        ("everyone", "--scope", "global", "--subject", "studio-a", "--limit-usd", "5"),
        ("team-a", "--scope", "team", "--limit-usd", "5"),
        ("team-a", "--scope", "team", "--subject", "studio-a", "--limit-usd", "five"),
        ("team-a", "--scope", "team", "--subject", "studio-a", "--limit-usd", "0"),
        ("bad name!", "--scope", "global", "--limit-usd", "5"),
    ],
)
def test_budgets_set_refuses_invalid_budgets(
    store_url: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]
) -> None:
    """An invalid budget exits with code 2, says why on stderr, and stores nothing."""
    code, out, err = cli(capsys, "budgets", "set", *argv)
    assert code == 2
    assert out == ""
    assert err.startswith("error: ")
    assert with_store(store_url, lambda s: s.list_budgets()) == []


@pytest.mark.usefixtures("store_url")
def test_budgets_set_refuses_unknown_scope(capsys: pytest.CaptureFixture[str]) -> None:
    """A scope outside key/team/project/global is a usage error (exit code 2)."""
    with pytest.raises(SystemExit) as info:
        main(["budgets", "set", "x", "--scope", "planet", "--limit-usd", "5"])
    assert info.value.code == 2
    assert "--scope" in capsys.readouterr().err


async def _seed_report(store: Store) -> None:
    """Three days of jobs and refusals: two teams on 1 March, one on 2 March, one on 5 March."""
    jobs = [
        ("t1", "2026-03-01", "studio-a", "success", 324_000),
        ("t2", "2026-03-01", "studio-a", "success", 540_000),
        ("t3", "2026-03-01", "studio-b", "failed", 324_000),
        ("t4", "2026-03-02", "studio-a", "success", 324_000),
        ("t5", "2026-03-05", "studio-a", "success", 324_000),
    ]
    for task_id, day, team, status, micros in jobs:
        at = epoch(day)
        await store.insert_job(
            NewJob(
                task_id=task_id,
                caller="fp:test",
                pinned_slug=SLUG,
                submitted_at=at,
                team=team,
                estimated_cost_micros=micros,
                alias="minimax/hailuo" if task_id == "t2" else None,
            )
        )
        final = micros if status == "success" else 0
        await store.observe(task_id, status, at + 60, final_cost_micros=final)
    refusals = [
        ("2026-03-01", "studio-a", 324_000),
        ("2026-03-01", "studio-a", None),
        ("2026-03-02", "studio-b", 540_000),
        ("2026-03-05", "studio-a", 324_000),
    ]
    for day, team, avoided in refusals:
        await store.record_refusal(
            Refusal(
                at=epoch(day, 13),
                reason="budget_exceeded",
                caller="fp:test",
                team=team,
                model=SLUG,
                estimated_cost_micros=avoided,
            )
        )


def test_report_csv_between_dates(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The CSV report covers [--since, --until) by day, team and model, in exact decimals."""
    with_store(store_url, _seed_report)
    code, out, err = cli(
        capsys, "report", "--since", "2026-03-01", "--until", "2026-03-03", "--format", "csv"
    )
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == ",".join(["day", "team", "model", *COLUMNS])
    assert lines[1:] == [
        f"2026-03-01,studio-a,{SLUG},2,2,0,0.864000,0.864000,0.324000,0.540000,2,0.324000,"
        "minimax/hailuo",
        f"2026-03-01,studio-b,{SLUG},1,0,1,0.324000,0.000000,,,0,0.000000,",
        f"2026-03-02,studio-a,{SLUG},1,1,0,0.324000,0.324000,0.324000,0.324000,0,0.000000,",
        f"2026-03-02,studio-b,{SLUG},0,0,0,0.000000,0.000000,,,1,0.540000,",
    ]
    code, out, _ = cli(
        capsys,
        "report",
        "--since",
        "2026-03-01T00:00:00Z",
        "--until",
        "2026-03-06",
        "--group-by",
        "team",
        "--format",
        "csv",
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["team"], r["jobs"], r["spend_usd"], r["refused"]) for r in rows] == [
        ("studio-a", "4", "1.512000", "3"),
        ("studio-b", "1", "0.000000", "1"),
    ]


def test_report_json_between_dates(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The JSON report echoes its period and grouping, and totals the spend as a decimal string."""
    with_store(store_url, _seed_report)
    code, out, _ = cli(
        capsys,
        "report",
        "--since",
        "2026-03-01",
        "--until",
        "2026-03-05",
        "--group-by",
        "team,model",
        "--format",
        "json",
    )
    assert code == 0
    doc = json.loads(out)
    assert (doc["since"], doc["until"]) == (epoch("2026-03-01", 0), epoch("2026-03-05", 0))
    assert doc["group_by"] == ["team", "model"]
    assert doc["total_spend_usd"] == "1.188000"
    assert doc["rows"] == [
        {
            "team": "studio-a",
            "model": SLUG,
            "jobs": 3,
            "succeeded": 3,
            "failed": 0,
            "estimated_usd": "1.188000",
            "spend_usd": "1.188000",
            "cost_per_job_p50_usd": "0.324000",
            "cost_per_job_p95_usd": "0.540000",
            "refused": 2,
            "refused_savings_usd": "0.324000",
            "aliases": "minimax/hailuo",
        },
        {
            "team": "studio-b",
            "model": SLUG,
            "jobs": 1,
            "succeeded": 0,
            "failed": 1,
            "estimated_usd": "0.324000",
            "spend_usd": "0.000000",
            "cost_per_job_p50_usd": None,
            "cost_per_job_p95_usd": None,
            "refused": 1,
            "refused_savings_usd": "0.540000",
            "aliases": None,
        },
    ]
    code, out, _ = cli(capsys, "report", "--since", "2027-01-01", "--format", "json")
    assert code == 0
    assert json.loads(out)["rows"] == []
    assert json.loads(out)["total_spend_usd"] == "0.000000"


@pytest.mark.usefixtures("store_url")
def test_report_refuses_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown group_by exits 2 with the allowed keys; an unparsable date is a usage error."""
    code, out, err = cli(capsys, "report", "--group-by", "team,colour")
    assert (code, out) == (2, "")
    assert "colour" in err
    assert "day, week, account, team, project, model" in err
    with pytest.raises(SystemExit) as info:
        main(["report", "--since", "last tuesday"])
    assert info.value.code == 2
    assert "not a date or time" in capsys.readouterr().err
