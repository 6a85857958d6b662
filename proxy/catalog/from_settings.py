"""The catalog and the pinner the ``models`` section of the settings describes."""

from __future__ import annotations

from proxy.catalog.loader import Catalog, load_catalog
from proxy.catalog.pinning import DEFAULT_ALIASES, Pinner
from proxy.catalog.upstream_models import UpstreamModels
from proxy.config import ModelSettings


def build_catalog(models: ModelSettings) -> tuple[Catalog, Pinner]:
    """Raises ``CatalogError`` for broken overrides or aliases (``check-config`` reports it).

    The pinner's ``listing`` (the upstream's model list) starts empty: the application
    connects it to the upstream (``proxy.lifecycle``; kept fresh by the ``model-list`` component).
    """
    catalog = load_catalog(models.overrides)
    aliases = dict(DEFAULT_ALIASES if models.aliases is None else models.aliases)
    aliases.update(models.extra_aliases)
    listing = UpstreamModels(models.upstream_list)
    return catalog, Pinner(catalog, aliases, models.policy, listing)
