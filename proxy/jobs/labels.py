"""Bounded metric label values: catalog slugs, configured teams and projects, else ``other``.

A model the upstream lists without a local spec is labelled under its slug too: the
list is cut at ``models.upstream_list.max_models`` entries, so the values stay bounded.
"""

from __future__ import annotations

from collections.abc import Collection, Container
from dataclasses import dataclass

from proxy.telemetry.metrics import OTHER

PASSTHROUGH = "passthrough"


@dataclass(frozen=True, slots=True)
class Labels:
    models: frozenset[str]
    teams: frozenset[str]
    projects: frozenset[str]
    listed: Container[str] = frozenset()  # the upstream's model list (changes at run time)
    accounts: frozenset[str] = frozenset()  # the configured Modellix accounts

    @classmethod
    def of(
        cls,
        models: Collection[str],
        teams: Collection[str],
        projects: Collection[str],
        listed: Container[str] = frozenset(),
        accounts: Collection[str] = (),
    ) -> Labels:
        return cls(
            frozenset(models), frozenset(teams), frozenset(projects), listed, frozenset(accounts)
        )

    def model(self, slug: str | None) -> str:
        if slug is None:
            return OTHER
        return slug if slug in self.models or slug in self.listed else OTHER

    def team(self, team: str | None) -> str:
        return team if team in self.teams else OTHER

    def account(self, account: str | None) -> str:
        """A configured account's name; ``passthrough`` for the callers' own keys."""
        if account is None:
            return PASSTHROUGH
        return account if account in self.accounts else OTHER

    def project(self, project: str | None) -> str:
        return project if project in self.projects else OTHER
