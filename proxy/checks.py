"""Checks of a configuration that need the built parts (catalog, aliases, prices, files)."""

from __future__ import annotations

from proxy.catalog.from_settings import build_catalog
from proxy.catalog.loader import CatalogError, load_catalog
from proxy.config import Settings


def check_settings(settings: Settings) -> list[str]:
    """Every problem found, each naming the field it is about."""
    problems: list[str] = []
    admin, listen = settings.admin, settings.listen
    if admin.enabled and listen.port and admin.port == listen.port and admin.host == listen.host:
        problems.append("admin.port: must differ from listen.port")
    for name in ("tls_cert_file", "tls_key_file"):
        path = getattr(listen, name)
        if path is not None and not path.is_file():
            problems.append(f"listen.{name}: no such file {path}")
    for field, path in (
        ("admin.token_file", admin.token_file),
        ("upstream.api_key_file", settings.upstream.api_key_file),
    ):
        if path is not None and not path.is_file():
            problems.append(f"{field}: no such file {path}")
    upstream = settings.upstream
    has_key = upstream.api_key is not None or upstream.api_key_file is not None
    if settings.keys.mode != "passthrough" and not has_key:
        problems.append(
            "keys.mode: virtual keys need upstream.api_key or upstream.api_key_file "
            "(the key the proxy injects)"
        )
    url = settings.store.url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.append("store.url: use sqlite:///path.db or postgresql://user@host:port/db")
    try:
        catalog = load_catalog(settings.models.overrides)
    except CatalogError as exc:
        problems.append(f"models.overrides: {exc}")
        return problems
    try:
        build_catalog(settings.models)
    except CatalogError as exc:
        problems.append(f"models.aliases: {exc}")
    for slug, entry in settings.pricing.models.items():
        if slug not in catalog:
            problems.append(f"pricing.models.{slug}: not a model in the catalog")
        if entry.usd is None and not entry.usd_by_resolution:
            problems.append(f"pricing.models.{slug}: needs usd or usd_by_resolution")
    return problems
