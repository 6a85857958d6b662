"""``upstream.accounts``: the documented example as configured, the single-key default, tiers,
and every configuration mistake refused with the field it is about."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from proxy.accounts import (
    AccountBook,
    AccountError,
    account_names,
    submit_rate,
    tier_limits,
)
from proxy.checks import all_problems
from proxy.config import ConfigError, Settings, deep_merge, load
from tests.docs_examples import REPO, fences


def _documented(tmp_path: Path) -> dict[str, Any]:
    """docs/accounts.md's example, its key files made in ``tmp_path``."""
    (example,) = [f for f in fences(REPO / "docs" / "accounts.md") if f.language == "yaml"]
    data: dict[str, Any] = yaml.safe_load(example.text)
    for name, account in data["upstream"]["accounts"].items():
        path = tmp_path / f"{name}.key"
        path.write_text(f"sk-{name}-0001\n", encoding="utf-8")
        account["api_key_file"] = str(path)
    return data


def test_the_documented_example_maps_teams_to_accounts(tmp_path: Path) -> None:
    """The docs' example: keys read from files, tier and explicit concurrency, team mapping,
    unlisted teams to the default account, display names."""
    settings = Settings.model_validate(_documented(tmp_path))
    book = AccountBook.from_settings(settings)
    assert book.several
    assert book.names == ("studio", "agency")
    studio, agency = book.get("studio"), book.get("agency")
    assert studio is not None
    assert agency is not None
    assert (studio.concurrency, agency.concurrency) == (30, 5)  # $250 of top-ups: tier 30
    assert (studio.rpm, agency.rpm) == (300, 100)  # the tier's rpm; the configured one
    share = settings.admission.submit_rpm_share
    assert (book.submit_rpm("studio", share), book.submit_rpm("agency", share)) == (120, 40)
    assert studio.authorization == "Bearer sk-studio-0001"
    assert book.for_team("video") is studio
    assert book.for_team("ads") is agency
    assert book.for_team("somebody-else") is studio  # default_account
    assert book.get(None) is studio  # pass-through jobs fall back to the default account
    assert agency.authorization == "Bearer sk-agency-0001"
    assert book.display_names()["studio"] == "Studio (Modellix team 4711)"
    assert "sk-" not in repr(studio)
    assert not [str(p) for p in all_problems(_write(tmp_path, _documented(tmp_path)), {})]


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_the_single_key_stays_the_default_account() -> None:
    """``upstream.api_key`` alone is the account ``default``, used by every team, ungated."""
    settings = load(None, {"MODELLIX_PROXY_UPSTREAM__API_KEY": "sk-only"})
    book = AccountBook.from_settings(settings)
    assert not book.several
    assert book.names == ("default",)
    account = book.for_team("anyone")
    assert account is not None
    assert (account.name, account.key, account.concurrency) == ("default", "sk-only", None)
    assert book.submit_rpm("default", 0.4) is None  # no rpm, no tier: submits not paced
    assert book.for_team(None) is account
    assert account_names(settings) == {"default": "default"}
    assert AccountBook.from_settings(load(None, {})).for_team("x") is None


def test_an_account_key_comes_from_the_environment() -> None:
    """``MODELLIX_PROXY_UPSTREAM__ACCOUNTS__<NAME>__API_KEY`` makes (or keys) an account."""
    settings = load(
        None,
        {
            "MODELLIX_PROXY_UPSTREAM__ACCOUNTS__STUDIO__API_KEY": "12345",
            "MODELLIX_PROXY_UPSTREAM__ACCOUNTS__STUDIO__TEAMS": "[video]",
        },
    )
    account = AccountBook.from_settings(settings).for_team("video")
    assert account is not None
    assert (account.name, account.key) == ("studio", "12345")


@pytest.mark.parametrize(
    ("funding", "concurrency"),
    [("0", 2), ("9.99", 2), ("10", 10), ("50", 20), ("100", 30), ("999", 50), ("1000", 100)],
)
def test_funding_tiers(funding: str, concurrency: int) -> None:
    """Total top-ups give the tier's concurrency; the ends are Modellix's figures."""
    assert tier_limits(Decimal(funding))[0] == concurrency


@pytest.mark.parametrize(
    ("rpm", "share", "submits"), [(None, 0.4, None), (100, 0.4, 40), (2, 0.4, 1), (30, 1.0, 30)]
)
def test_an_accounts_submit_rate_is_its_share_of_the_rpm(
    rpm: int | None, share: float, submits: int | None
) -> None:
    """Submits a minute: the share of the rpm, at least one; no rpm: not paced."""
    assert submit_rate(rpm, share) == submits


@pytest.mark.parametrize(
    ("upstream", "message"),
    [
        ({"accounts": {"a": {"teams": ["x"]}}}, "exactly one of api_key and api_key_file"),
        (
            {"accounts": {"a": {"api_key": "k1", "concurrency": 2, "funding_usd": 5}}},
            "concurrency or funding_usd, not both",
        ),
        (
            {"accounts": {"a": {"api_key": "k1"}, "b": {"api_key": "k1"}}},
            "two accounts have the same api_key",
        ),
        (
            {"api_key": "k0", "accounts": {"a": {"api_key": "k0"}}},
            "two accounts have the same api_key",
        ),
        (
            {
                "accounts": {
                    "a": {"api_key": "k1", "teams": ["x"]},
                    "b": {"api_key": "k2", "teams": ["x"]},
                }
            },
            "team 'x' already bills to account 'a'",
        ),
        ({"accounts": {"a": {"api_key": "k1"}}, "default_account": "b"}, "no account 'b'"),
        ({"api_key": "k0", "accounts": {"default": {"api_key": "k1"}}}, "already is the account"),
        ({"accounts": {"a b": {"api_key": "k1"}}}, "is not a name"),
    ],
)
def test_mistakes_are_refused_with_their_field(
    upstream: dict[str, Any], message: str, tmp_path: Path
) -> None:
    """Each mistake is a ConfigError under ``upstream`` saying what is wrong."""
    with pytest.raises(ConfigError) as info:
        load(_write(tmp_path, {"upstream": upstream}), {})
    problems = info.value.problems
    assert any(p.startswith("upstream") and message in p for p in problems), problems


def test_check_config_reads_key_files_for_duplicates(tmp_path: Path) -> None:
    """Two accounts whose key files hold the same key: check-config names the account."""
    for name in ("a", "b"):
        (tmp_path / f"{name}.key").write_text("sk-same\n", encoding="utf-8")
    data = {
        "upstream": {
            "accounts": {
                name: {"api_key_file": str(tmp_path / f"{name}.key"), "teams": [name]}
                for name in ("a", "b")
            }
        },
        "keys": {"mode": "virtual"},
    }
    problems = [str(p) for p in all_problems(_write(tmp_path, data), {})]
    assert any("upstream.accounts.b" in p and "same api_key as account 'a'" in p for p in problems)
    with pytest.raises(AccountError):
        AccountBook.from_settings(Settings.model_validate(data))
    missing = deep_merge(data, {"upstream": {"accounts": {"b": {"api_key_file": "/nope"}}}})
    problems = [str(p) for p in all_problems(_write(tmp_path, missing), {})]
    assert any("upstream.accounts.b.api_key_file: no such file /nope" in p for p in problems)
