"""Build the pin and validate stages from one typed config section.

Config shape (e.g. the ``catalog`` section of the proxy's settings)::

    pin_policy: strict            # strict | permissive
    aliases: null                 # null = DEFAULT_ALIASES; a mapping replaces them
    extra_aliases: {acme/video: minimax/hailuo-2.3-t2v}   # added on top
    unknown_fields: refuse        # refuse | warn
    overrides: {models: {...}, disable: [...]}            # see proxy.catalog.loader
    preflight: {enabled: true, mode: refuse, allow: ["10.20.0.0/16", "*.corp.example"],
                max_redirects: 3, connect_timeout: 2, read_timeout: 3, total_timeout: 5,
                cache_ttl: 60}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from proxy.catalog.loader import Catalog, load_catalog
from proxy.catalog.media import MediaChecker
from proxy.catalog.netguard import DnsResolver
from proxy.catalog.pinning import DEFAULT_ALIASES, Pinner
from proxy.catalog.preflight import Preflight, PreflightSettings
from proxy.catalog.validation import BodyValidator
from proxy.stages.pin import PinStage
from proxy.stages.validate import ValidateStage


class PreflightConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    mode: Literal["refuse", "warn"] = "refuse"
    allow: tuple[str, ...] = ()
    max_redirects: int = Field(3, ge=0, le=10)
    connect_timeout: float = Field(2.0, gt=0)
    read_timeout: float = Field(3.0, gt=0)
    total_timeout: float = Field(5.0, gt=0)
    cache_ttl: float = Field(60.0, ge=0)


class CatalogConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    pin_policy: Literal["strict", "permissive"] = "strict"
    aliases: dict[str, str] | None = None
    extra_aliases: dict[str, str] = Field(default_factory=dict)
    unknown_fields: Literal["refuse", "warn"] = "refuse"
    overrides: dict[str, Any] = Field(default_factory=dict)
    preflight: PreflightConfig = PreflightConfig()


@dataclass(slots=True)
class CatalogStages:
    """The built pieces; ``close()`` releases the preflight HTTP session."""

    catalog: Catalog
    pinner: Pinner
    pin: PinStage
    validate: ValidateStage
    preflight: Preflight | None

    async def close(self) -> None:
        if self.preflight is not None:
            await self.preflight.close()


def build_stages(
    config: CatalogConfig | Mapping[str, Any] | None = None,
    *,
    resolver: DnsResolver | None = None,
) -> CatalogStages:
    """Load the catalog, compile validators and build both stages (call once at start-up)."""
    cfg = (
        config if isinstance(config, CatalogConfig) else CatalogConfig.model_validate(config or {})
    )
    catalog = load_catalog(cfg.overrides)
    aliases = {**(DEFAULT_ALIASES if cfg.aliases is None else cfg.aliases), **cfg.extra_aliases}
    pinner = Pinner(catalog, aliases, cfg.pin_policy)
    preflight: Preflight | None = None
    if cfg.preflight.enabled:
        p = cfg.preflight
        settings = PreflightSettings(
            mode=p.mode,
            allow=p.allow,
            max_redirects=p.max_redirects,
            connect_timeout=p.connect_timeout,
            read_timeout=p.read_timeout,
            total_timeout=p.total_timeout,
            cache_ttl=p.cache_ttl,
        )
        preflight = Preflight(settings, resolver=resolver)
    media = MediaChecker(preflight, mode=cfg.preflight.mode)
    validator = BodyValidator(catalog, unknown_fields=cfg.unknown_fields)
    return CatalogStages(
        catalog, pinner, PinStage(pinner), ValidateStage(catalog, validator, media), preflight
    )
