"""Checks of the image inputs of one body: data URLs locally, URLs by preflight.

Every image value is checked (data URLs and raw base64 decoded header-only, URLs
pre-flighted concurrently) and each failure becomes a ``Problem``; in ``warn``
mode a preflight failure (other than a forbidden address) is a warning instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Literal

from proxy.catalog.images import check_image, classify, decode_base64_image, parse_data_url
from proxy.catalog.preflight import Preflight, PreflightResult, parse_image_url
from proxy.catalog.spec import ImageConstraints, ModelSpec
from proxy.catalog.validation import Problem, header_safe

PreflightMode = Literal["refuse", "warn"]

_PREFLIGHT_REASON = {
    "unreachable": "media_unreachable",
    "status": "media_unreachable",
    "wrong_type": "media_format",
    "too_large": "media_size",
    "too_small": "media_dimensions",
    "bad_aspect": "media_aspect",
    "forbidden_address": "forbidden_address",
}
_CATEGORY = {
    "media_format": "Invalid format",
    "media_size": "Value out of range",
    "media_dimensions": "Value out of range",
    "media_aspect": "Value out of range",
}
MAX_URLS_PER_REQUEST = 16


def image_values(
    spec: ModelSpec, payload: Mapping[str, Any]
) -> list[tuple[str, str, ImageConstraints]]:
    """(field path, value, constraints) of every image reference in the body."""
    out: list[tuple[str, str, ImageConstraints]] = []
    for media in spec.media:
        if media.media != "image" or media.field not in payload:
            continue
        limits = media.constraints or ImageConstraints()
        value = payload[media.field]
        if isinstance(value, str):
            out.append((media.field, value, limits))
        elif isinstance(value, list):
            out.extend(
                (f"{media.field}[{i}]", item, limits)
                for i, item in enumerate(value)
                if isinstance(item, str)
            )
    return out


class MediaChecker:
    """Image checks for the validate stage."""

    def __init__(
        self, preflight: Preflight | None = None, *, mode: PreflightMode = "refuse"
    ) -> None:
        self.preflight = preflight
        self.mode = mode

    async def check(
        self, spec: ModelSpec, payload: Mapping[str, Any], *, network: bool = True
    ) -> tuple[list[Problem], list[str]]:
        """Problems and warnings for the image inputs; ``network=False`` skips URL preflight."""
        problems: list[Problem] = []
        warnings: list[str] = []
        urls: list[tuple[str, str, ImageConstraints]] = []
        for field, value, limits in image_values(spec, payload):
            kind = classify(value)
            if kind == "url":
                try:
                    parse_image_url(value)
                except ValueError as exc:
                    problems.append(
                        Problem(
                            field,
                            f"{exc}",
                            ["https://..."],
                            "Invalid format",
                            "media_format",
                            limits.status,
                        )
                    )
                    continue
                urls.append((field, value, limits))
            elif kind in ("data", "base64"):
                problems.extend(_check_inline(field, value, kind, limits))
            elif not value.lower().startswith("oss://"):
                problems.append(
                    Problem(
                        field,
                        "must be an http(s) URL or a base64 data URL",
                        ["https://...", "data:image/...;base64,..."],
                        "Invalid format",
                        "media_format",
                        limits.status,
                    )
                )
        if not urls or not network or self.preflight is None:
            return problems, warnings
        if len(urls) > MAX_URLS_PER_REQUEST:
            warnings.append(f"only the first {MAX_URLS_PER_REQUEST} image URLs were pre-flighted")
            urls = urls[:MAX_URLS_PER_REQUEST]
        preflight = self.preflight
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(preflight.check(value, limits)) for _, value, limits in urls]
        for (field, _value, limits), task in zip(urls, tasks, strict=True):
            self._apply(field, limits, task.result(), problems, warnings)
        return problems, warnings

    def _apply(
        self,
        field: str,
        limits: ImageConstraints,
        result: PreflightResult,
        problems: list[Problem],
        warnings: list[str],
    ) -> None:
        warnings.extend(header_safe(f"{field}: {w}") for w in result.warnings)
        if result.ok or result.reason is None:
            return
        reason = _PREFLIGHT_REASON[result.reason]
        if self.mode == "warn" and reason != "forbidden_address":
            warnings.append(header_safe(f"{field}: preflight {result.reason}: {result.detail}"))
            return
        problem = f"cannot be used ({result.reason}): {result.detail}"
        problems.append(
            Problem(
                field,
                problem,
                None,
                _CATEGORY.get(reason, "Invalid parameters"),
                reason,
                limits.status,
            )
        )


def _check_inline(field: str, value: str, kind: str, limits: ImageConstraints) -> list[Problem]:
    try:
        data = parse_data_url(value) if kind == "data" else decode_base64_image(value)
    except ValueError as exc:
        return [
            Problem(
                field,
                f"is not a readable image: {exc}",
                list(limits.formats),
                "Invalid format",
                "media_format",
                limits.status,
            )
        ]
    return [
        Problem(
            field,
            issue.problem,
            issue.allowed,
            _CATEGORY[issue.reason],
            issue.reason,
            limits.status,
        )
        for issue in check_image(data.info, data.size, limits)
    ]
