"""Model pinning: aliases in the ``provider/model`` shape resolve to exact slugs.

``minimax/hailuo`` must never silently mean "whatever is newest": it means the
slug the operator pinned. Under the strict policy (the default) a name is
accepted when it is an alias, a catalog slug, or a slug the upstream lists
(``proxy.catalog.upstream_models``: an exact slug is a pin by definition) to the
caller's account (``proxy.catalog.model_lists``: each account's own list);
anything else, and any slug the operator disabled, is refused with a one-line
404 that suggests the nearest name and points at ``GET /api/v1/models`` (the
full list stays in the ``allowed_models`` field). Under the permissive policy
an unknown slug is forwarded as-is and marked so.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from proxy.catalog.loader import Catalog, CatalogError
from proxy.catalog.model_lists import ModelLists
from proxy.catalog.upstream_models import UpstreamModels
from proxy.config import UpstreamListSettings
from proxy.errors import ModelNotFound

PinPolicy = Literal["strict", "permissive"]
PinOutcome = Literal["pinned", "direct", "upstream-listed", "permissive"]
LIST_POINTER = "GET /api/v1/models lists the models you can use"
MAX_SHOWN = 120  # a longer requested slug is cut in the message: it stays one short line

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
    """Resolve requested slugs to pinned slugs under one policy.

    ``listing`` is the shared model list (pass-through callers'); ``lists`` holds it and
    each account's. Methods taking ``account`` read that account's list (``None``: the
    shared one).
    """

    def __init__(
        self,
        catalog: Catalog,
        aliases: Mapping[str, str] | None = None,
        policy: PinPolicy = "strict",
        listing: UpstreamModels | None = None,
    ) -> None:
        if policy not in ("strict", "permissive"):
            raise CatalogError(f"unknown pin policy {policy!r}")
        self.policy: PinPolicy = policy
        self._catalog = catalog
        self.lists = ModelLists(
            listing if listing is not None else UpstreamModels(UpstreamListSettings(enabled=False))
        )
        self._aliases = dict(DEFAULT_ALIASES if aliases is None else aliases)
        broken = {a: t for a, t in self._aliases.items() if t not in catalog}
        if broken:
            pairs = ", ".join(f"{a} -> {t}" for a, t in sorted(broken.items()))
            raise CatalogError(f"alias targets missing from the catalog: {pairs}")
        shadowing = sorted(a for a in self._aliases if a in catalog)
        if shadowing:
            raise CatalogError(f"aliases must not shadow catalog slugs: {', '.join(shadowing)}")
        hidden = sorted(a for a in self._aliases if a in catalog.disabled)
        if hidden:
            raise CatalogError(f"aliases must not be disabled slugs: {', '.join(hidden)}")

    @property
    def listing(self) -> UpstreamModels:
        """The shared model list: pass-through callers' (and a single account's)."""
        return self.lists.shared

    @property
    def aliases(self) -> Mapping[str, str]:
        return dict(self._aliases)

    def submittable_slugs(self, account: str | None = None) -> list[str]:
        """Every exact slug ``account``'s callers may send: catalog and upstream-listed,
        minus disabled."""
        listed = {s for s in self.lists.of(account) if s not in self._catalog.disabled}
        return sorted({*self._catalog.slugs(), *listed})

    def every_submittable_slug(self) -> list[str]:
        """Every exact slug some caller may send: the catalog's and any account's list's."""
        listed = {s for m in self.lists.lists() for s in m if s not in self._catalog.disabled}
        return sorted({*self._catalog.slugs(), *listed})

    def allowed_names(self, account: str | None = None) -> list[str]:
        """Every name ``account``'s callers may send: submittable slugs and aliases."""
        return sorted({*self.submittable_slugs(account), *self._aliases})

    def needs_listing(self, slug: str, account: str | None = None) -> bool:
        """Whether resolving ``slug`` could change with a fresh list of ``account``."""
        if slug in self._aliases or slug in self._catalog or slug in self._catalog.disabled:
            return False
        listing = self.lists.of(account)
        return listing.enabled and not listing.fresh()

    def resolve(
        self,
        slug: str,
        allowed_models: Collection[str] | None = None,
        account: str | None = None,
    ) -> PinResult:
        """Resolve ``slug`` for a caller of ``account``; raise ``ModelNotFound`` if the
        policy, the account's model list or the caller forbids it."""
        if slug in self._aliases:
            result = PinResult(slug, slug, self._aliases[slug], "pinned")
        elif slug in self._catalog:
            result = PinResult(slug, None, slug, "direct")
        elif slug in self._catalog.disabled:
            raise self._not_found(slug, account, disabled=True)
        elif slug in self.lists.of(account):
            result = PinResult(slug, None, slug, "upstream-listed")
        elif self.policy == "permissive":
            result = PinResult(slug, None, slug, "permissive")
        else:
            raise self._not_found(slug, account)
        if allowed_models is not None and not (
            result.pinned in allowed_models
            or (result.alias is not None and result.alias in allowed_models)
        ):
            allowed = sorted(allowed_models)
            raise ModelNotFound(
                f"{_shown(slug)} is not available to this key; "
                "GET /api/v1/models lists the models it may use",
                details={"allowed_models": allowed},
                reason="model_not_allowed",
            )
        return result

    def resolve_for_anyone(self, slug: str) -> PinResult:
        """Resolve ``slug`` for a caller of unknown account (a keyless schema request): as the
        shared list says, else as the first account's list that holds it says."""
        try:
            return self.resolve(slug)
        except ModelNotFound:
            holder = next((a for a, m in self.lists.accounts().items() if slug in m), None)
            if holder is None:
                raise
            return self.resolve(slug, None, holder)

    def suggestion(self, slug: str, account: str | None = None) -> str | None:
        """The allowed name nearest to ``slug``: same spelling in another case, else closest."""
        names = self.allowed_names(account)
        folded = {name.casefold(): name for name in names}
        exact = folded.get(slug.casefold())
        if exact is not None:
            return exact
        close = difflib.get_close_matches(slug.casefold(), list(folded), n=1, cutoff=0.75)
        return folded[close[0]] if close else None

    def _not_found(
        self, slug: str, account: str | None, *, disabled: bool = False
    ) -> ModelNotFound:
        names = self.allowed_names(account)
        why = "is disabled on this proxy" if disabled else "is not served through this proxy"
        close = None if disabled else self.suggestion(slug, account)
        hint = f" (did you mean '{close}'?)" if close is not None else ""
        listing = self.lists.of(account)
        if not disabled and not listing.known and listing.enabled:
            hint += " (the upstream's model list could not be fetched)"
        details: dict[str, object] = {"allowed_models": names}
        if close is not None:
            details["suggestion"] = close
        return ModelNotFound(
            f"{_shown(slug)} {why}{hint}; {LIST_POINTER}",
            details=details,
            reason="model_disabled" if disabled else "model_not_pinned",
        )


def _shown(slug: str) -> str:
    """``slug`` for a one-line message: cut when it is absurdly long."""
    return slug if len(slug) <= MAX_SHOWN else slug[: MAX_SHOWN - 3] + "..."
