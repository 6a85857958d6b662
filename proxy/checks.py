"""Checks of a configuration that need the built parts (catalog, aliases, prices)."""

from __future__ import annotations

from proxy.config import Settings


def check_settings(settings: Settings) -> list[str]:
    problems: list[str] = []
    if (
        settings.listen.port == settings.admin.port
        and settings.admin.enabled
        and settings.listen.port
    ):
        problems.append("admin.port: must differ from listen.port")
    return problems
