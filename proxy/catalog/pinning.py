"""Model pinning: aliases in the ``provider/model`` shape resolve to exact slugs.

``minimax/hailuo`` must never silently mean "whatever is newest": it means the
slug the operator pinned. Under the strict policy (the default) anything that
is neither an alias nor a catalog slug is refused with a 404 naming the allowed
slugs; under the permissive policy it is forwarded as-is and marked so.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from proxy.catalog.loader import Catalog, CatalogError
from proxy.errors import ModelNotFound

PinPolicy = Literal["strict", "permissive"]
PinOutcome = Literal["pinned", "direct", "permissive"]

DEFAULT_ALIASES: Mapping[str, str] = {
    "minimax/hailuo": "minimax/hailuo-02-t2v",
    "minimax/hailuo-i2v": "minimax/hailuo-02-i2v",
    "minimax/hailuo-fl2v": "minimax/hailuo-02-fl2v",
    "minimax/hailuo-human": "minimax/hailuo-2.3-t2v",
    "minimax/hailuo-human-i2v": "minimax/hailuo-2.3-i2v",
    "bytedance/seedance": "bytedance/seedance-2.0-t2v",
    "bytedance/seedance-i2v": "bytedance/seedance-2.0-i2v",
    "bytedance/seedance-v2v": "bytedance/seedance-2.0-v2v",
    "kling/kling": "kling/kling-v3-t2v",
    "kling/kling-i2v": "kling/kling-v3-i2v",
    "kling/kling-omni": "kling/kling-v3-omni-video",
    "alibaba/wan": "alibaba/wan2.7-t2v",
    "alibaba/wan-i2v": "alibaba/wan2.7-i2v",
    "alibaba/wan-image": "alibaba/wan2.7-image",
    "bytedance/seedream": "bytedance/seedream-4.5-t2i",
    "bytedance/seedream-edit": "bytedance/seedream-5.0-lite-edit",
}


@dataclass(frozen=True, slots=True)
class PinResult:
    """How a requested slug was resolved."""

    requested: str
    alias: str | None  # the alias used, if any
    pinned: str  # the slug forwarded upstream
    outcome: PinOutcome


class Pinner:
    """Resolve requested slugs to pinned slugs under one policy."""

    def __init__(
        self,
        catalog: Catalog,
        aliases: Mapping[str, str] | None = None,
        policy: PinPolicy = "strict",
    ) -> None:
        if policy not in ("strict", "permissive"):
            raise CatalogError(f"unknown pin policy {policy!r}")
        self.policy: PinPolicy = policy
        self._catalog = catalog
        self._aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        broken = {a: t for a, t in self._aliases.items() if t not in catalog}
        if broken:
            pairs = ", ".join(f"{a} -> {t}" for a, t in sorted(broken.items()))
            raise CatalogError(f"alias targets missing from the catalog: {pairs}")
        shadowing = sorted(a for a in self._aliases if a in catalog)
        if shadowing:
            raise CatalogError(f"aliases must not shadow catalog slugs: {', '.join(shadowing)}")
        self._folded = {name.casefold(): name for name in [*catalog.slugs(), *self._aliases]}

    @property
    def aliases(self) -> Mapping[str, str]:
        return dict(self._aliases)

    def allowed_names(self) -> list[str]:
        """Every name a client may send: catalog slugs and aliases."""
        return sorted({*self._catalog.slugs(), *self._aliases})

    def resolve(self, slug: str, allowed_models: Collection[str] | None = None) -> PinResult:
        """Resolve ``slug``; raise ``ModelNotFound`` if the policy or the caller forbids it."""
        if slug in self._aliases:
            result = PinResult(slug, slug, self._aliases[slug], "pinned")
        elif slug in self._catalog:
            result = PinResult(slug, None, slug, "direct")
        elif self.policy == "permissive":
            result = PinResult(slug, None, slug, "permissive")
        else:
            raise self._not_found(slug)
        if allowed_models is not None and not (
            result.pinned in allowed_models
            or (result.alias is not None and result.alias in allowed_models)
        ):
            allowed = sorted(allowed_models)
            raise ModelNotFound(
                f"{slug} is not available to this key; allowed: {', '.join(allowed) or '(none)'}",
                details={"allowed_models": allowed},
                reason="model_not_allowed",
            )
        return result

    def _not_found(self, slug: str) -> ModelNotFound:
        hint = ""
        close = self._folded.get(slug.casefold())
        if close is not None:
            hint = f" (did you mean '{close}'?)"
        names = self.allowed_names()
        return ModelNotFound(
            f"{slug}{hint}. Allowed models: {', '.join(names)}",
            details={"allowed_models": names},
            reason="model_not_pinned",
        )
