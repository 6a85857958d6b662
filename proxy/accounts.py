"""The Modellix accounts behind the proxy: whose key, tier and bill each team's jobs use.

An account is an upstream team of its own: its API key, balance, funding tier (which sets
its concurrency, ``TIERS``) and bill. ``upstream.api_key`` is the account ``default``;
``upstream.accounts`` names more, each with the proxy teams that bill to it. A team no
account lists bills to ``upstream.default_account`` (else ``default`` when configured).

Pass-through requests (the caller's own key) belong to no configured account: their jobs
carry no account, and are billed to whatever account the caller's key is.

``AccountBook`` answers, without I/O once built: the account of a team, its key (the
``Authorization`` the proxy injects), its concurrency, its display name. Keys are read
once, at start (``AccountBook.from_settings``); an unreadable key file is an ``OSError``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from proxy.config import DEFAULT_ACCOUNT, Settings, UpstreamAccount

# Funding tiers (total top-ups, USD) -> (team concurrency, requests per minute). Modellix
# confirms the two ends (below $10: 2 / 100; from $1,000: 100 / 1,000); the steps between
# follow a third-party table (reference/modellix-api.md, "Rate limits"): configure
# ``concurrency`` where the account's real limit is known.
TIERS: tuple[tuple[Decimal, int, int], ...] = (
    (Decimal(0), 2, 100),
    (Decimal(10), 10, 100),
    (Decimal(50), 20, 200),
    (Decimal(100), 30, 300),
    (Decimal(500), 50, 500),
    (Decimal(1000), 100, 1000),
)


def tier_limits(funding_usd: Decimal) -> tuple[int, int]:
    """``(concurrency, rpm)`` of the funding tier ``funding_usd`` of top-ups reaches."""
    limits = TIERS[0][1:]
    for threshold, concurrency, rpm in TIERS:
        if funding_usd >= threshold:
            limits = (concurrency, rpm)
    return limits


@dataclass(frozen=True, slots=True)
class Account:
    """One configured account; ``key`` is its secret (never logged, never in a label)."""

    name: str
    key: str
    display_name: str
    concurrency: int | None = None  # upstream tasks in flight at once; None: not gated
    teams: tuple[str, ...] = ()
    rpm: int | None = None  # the account's upstream requests per minute; None: not gated

    @property
    def authorization(self) -> str:
        return f"Bearer {self.key}"

    def __repr__(self) -> str:  # the key stays out of reprs and tracebacks
        return f"Account(name={self.name!r}, concurrency={self.concurrency!r}, rpm={self.rpm!r})"


class AccountError(ValueError):
    """The accounts section cannot be used (two accounts share a key)."""


def account_names(settings: Settings) -> dict[str, str]:
    """Account name -> display name, from the configuration alone (no key read)."""
    names = {DEFAULT_ACCOUNT: DEFAULT_ACCOUNT}
    for name, spec in settings.upstream.accounts.items():
        names[name] = spec.display_name or name
    return names


def _limits(spec: UpstreamAccount) -> tuple[int | None, int | None]:
    """``(concurrency, rpm)``: each as configured, else its funding tier's, else ``None``."""
    tier = tier_limits(spec.funding_usd) if spec.funding_usd is not None else (None, None)
    concurrency = spec.concurrency if spec.concurrency is not None else tier[0]
    return concurrency, spec.rpm if spec.rpm is not None else tier[1]


def submit_rate(rpm: int | None, share: float) -> int | None:
    """Submits per minute an account of ``rpm`` requests per minute may send: ``share`` of
    them (at least one); the rest is left for the polls and reads its key also makes."""
    return None if rpm is None else max(1, int(rpm * share))


class AccountBook:
    """The configured accounts, and which one each team bills to."""

    def __init__(self, accounts: Iterable[Account], default: str | None) -> None:
        self._accounts: dict[str, Account] = {}
        self._by_team: dict[str, str] = {}
        self._by_key: dict[str, str] = {}
        for account in accounts:
            if account.key in self._by_key:
                raise AccountError(
                    f"upstream.accounts.{account.name}: the same api_key as account "
                    f"{self._by_key[account.key]!r}"
                )
            self._accounts[account.name] = account
            self._by_key[account.key] = account.name
            for team in account.teams:
                self._by_team[team] = account.name
        self.default = default if default in self._accounts else None

    @classmethod
    def from_settings(cls, settings: Settings) -> AccountBook:
        """The accounts ``settings`` configure, keys read (``OSError``: an unreadable file)."""
        upstream = settings.upstream
        accounts: list[Account] = []
        default_key = settings.upstream_api_key()
        if default_key:
            accounts.append(Account(DEFAULT_ACCOUNT, default_key, DEFAULT_ACCOUNT))
        for name, spec in upstream.accounts.items():
            key = settings.account_api_key(name)
            if not key:
                raise AccountError(f"upstream.accounts.{name}: the api_key is empty")
            display = spec.display_name or name
            concurrency, rpm = _limits(spec)
            accounts.append(Account(name, key, display, concurrency, spec.teams, rpm))
        default = upstream.default_account or (DEFAULT_ACCOUNT if default_key else None)
        return cls(accounts, default)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._accounts)

    @property
    def several(self) -> bool:
        """Whether ``upstream.accounts`` adds any account (else the single-key proxy)."""
        return any(name != DEFAULT_ACCOUNT for name in self._accounts)

    def all(self) -> tuple[Account, ...]:
        return tuple(self._accounts.values())

    def get(self, name: str | None) -> Account | None:
        """The account ``name``; ``None`` (a pass-through or pre-accounts job): the default."""
        return self._accounts.get(name if name is not None else (self.default or ""))

    def for_team(self, team: str | None) -> Account | None:
        """The account ``team``'s virtual keys bill to; ``None`` if there is none."""
        name = self._by_team.get(team) if team is not None else None
        return self._accounts.get(name or self.default or "")

    def display_names(self) -> Mapping[str, str]:
        """Account name -> display name (FOCUS ``BillingAccountName``)."""
        return {a.name: a.display_name for a in self._accounts.values()}

    def concurrency(self, name: str | None) -> int | None:
        account = self.get(name)
        return None if account is None else account.concurrency

    def submit_rpm(self, name: str | None, share: float) -> int | None:
        """Submits per minute the account ``name`` may send (``submit_rate``); ``None``: not
        gated (no ``rpm`` or tier configured)."""
        account = self.get(name)
        return None if account is None else submit_rate(account.rpm, share)
