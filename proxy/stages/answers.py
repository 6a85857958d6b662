"""What a submit's answer carries beyond the upstream's: the proxy's own headers, and the
answer for a submit whose outcome is unknown."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from proxy.context import RequestContext
from proxy.errors import UpstreamTimeout
from proxy.money import exact


def _header_value(text: str) -> str:
    """Printable ASCII only, bounded: a header the proxy adds must never break an answer."""
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)[:1024]


def proxy_headers(ctx: RequestContext) -> dict[str, str]:
    """The headers the proxy adds to a submit's answer (model, alias, estimate, budget)."""
    out: dict[str, str] = {}
    if ctx.pinned_slug:
        out["X-Modellix-Proxy-Model"] = _header_value(ctx.pinned_slug)
    if ctx.alias:
        out["X-Modellix-Proxy-Alias"] = _header_value(ctx.alias)
    if ctx.estimated_cost_micros is not None:
        out["X-Modellix-Proxy-Estimated-Cost-USD"] = exact(ctx.estimated_cost_micros)
    if ctx.price_source:
        out["X-Modellix-Proxy-Price-Source"] = ctx.price_source
    if ctx.estimate_low_micros is not None and ctx.estimate_high_micros is not None:
        out["X-Modellix-Proxy-Estimated-Cost-Range-USD"] = (
            f"{exact(ctx.estimate_low_micros)}-{exact(ctx.estimate_high_micros)}"
        )
    if ctx.estimate_bounded:
        out["X-Modellix-Proxy-Estimate-Bounded"] = "true"
    if ctx.price_table_version:
        out["X-Modellix-Proxy-Price-Version"] = ctx.price_table_version
    out.update(ctx.budget_headers)
    if ctx.warnings:
        out["X-Modellix-Proxy-Warnings"] = _header_value("; ".join(ctx.warnings))
    return out


def unknown_outcome(what: str, placeholder: str, headers: dict[str, str]) -> UpstreamTimeout:
    """The answer for a submit that was sent and may have created a task."""
    return UpstreamTimeout(
        f"{what}; the outcome is unknown and a task may exist. The proxy did not resend it "
        f"and will not: it is recorded as {placeholder}, and a retry with the same "
        "Idempotency-Key gets 409 until an operator reconciles it. Check your tasks before "
        "submitting again with a new key.",
        reason="submit_outcome_unknown",
        details={"unknown_record": placeholder},
        headers=headers,
    )


def rewrite_get_result(doc: dict[str, Any], task_id: str, origin: str, raw: bytes) -> bytes:
    """The accepted answer with its ``get_result`` URL pointing at the proxy."""
    data = doc["data"]
    get_result = data.get("get_result")
    if not isinstance(get_result, dict) or "url" not in get_result:
        return raw
    get_result["url"] = f"{origin}/api/v1/tasks/{quote(task_id, safe='')}"
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
