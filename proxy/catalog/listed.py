"""What can be known about a body for a model without a local spec.

An upstream-listed model (or, under the permissive policy, any unknown slug) has no
schema in the catalog. The body has already passed what applies to every model: a JSON
object within the size and shape limits. Here the fields every Modellix model documents
the same way are checked where present: ``prompt`` and ``negative_prompt`` are non-empty
strings, ``seed`` is an integer. Nothing else is refused: an unknown model's other
parameters are the upstream's to judge. Problems carry ``rule_status: upstream-listed``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from proxy.catalog.validation import FORMAT, RANGE, Problem

RULE_STATUS = "upstream-listed"
MAX_PROMPT_CHARS = 100_000  # far above any documented prompt limit (Seedream: 10,000)
STRING_FIELDS = ("prompt", "negative_prompt")
INTEGER_FIELDS = ("seed",)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def common_problems(payload: Mapping[str, Any]) -> list[Problem]:
    """Problems with the documented common fields of ``payload`` (empty when none)."""
    problems: list[Problem] = []
    for name in STRING_FIELDS:
        if name not in payload:
            continue
        value = payload[name]
        if not isinstance(value, str):
            problems.append(_problem(name, f"must be a string, got {_shown(value)}", "string"))
        elif name == "prompt" and not 0 < len(value) <= MAX_PROMPT_CHARS:
            problems.append(
                _problem(
                    name,
                    f"must be between 1 and {MAX_PROMPT_CHARS} characters long, got {len(value)}",
                    {"minLength": 1, "maxLength": MAX_PROMPT_CHARS},
                    RANGE,
                    "maxLength" if value else "minLength",
                )
            )
    for name in INTEGER_FIELDS:
        value = payload.get(name)
        if name in payload and (not isinstance(value, int) or isinstance(value, bool)):
            problems.append(_problem(name, f"must be an integer, got {_shown(value)}", "integer"))
    return problems


def _problem(
    field: str,
    problem: str,
    allowed: Any,
    category: str = FORMAT,
    keyword: str = "type",
) -> Problem:
    return Problem(field, problem, allowed, category, "schema", RULE_STATUS, keyword)


def price_hint(slug: str | None, outcome: str | None) -> str:
    """What to add to the config so an unpriced model can run under a budget."""
    entry = f'pricing.models."{slug}"'
    if outcome in (RULE_STATUS, "permissive"):  # no local spec: priced from common fields
        return (
            f"add {entry} to the config to allow it (without a local spec it is priced from "
            "the body's duration, resolution and n/num_images fields)"
        )
    return f"add {entry} to the config to allow it"
