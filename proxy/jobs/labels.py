"""Bounded metric label values: catalog slugs, configured teams and projects, else ``other``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from proxy.telemetry.metrics import OTHER


@dataclass(frozen=True, slots=True)
class Labels:
    models: frozenset[str]
    teams: frozenset[str]
    projects: frozenset[str]

    @classmethod
    def of(
        cls, models: Collection[str], teams: Collection[str], projects: Collection[str]
    ) -> Labels:
        return cls(frozenset(models), frozenset(teams), frozenset(projects))

    def model(self, slug: str | None) -> str:
        return slug if slug in self.models else OTHER

    def team(self, team: str | None) -> str:
        return team if team in self.teams else OTHER

    def project(self, project: str | None) -> str:
        return project if project in self.projects else OTHER
