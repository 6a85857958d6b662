"""The upstream's submit check: the published request schema, plus three special rules.

A body is checked against the model's *current* published schema (``jsonschema``,
Draft 2020-12) and refused with the first problem, in the upstream's own
``"<Category>: <detail>"`` form:

1. a required field absent, ``null``, ``""`` or ``[]`` (in the schema's ``required``
   order): ``Invalid parameters: parameter 'prompt' is required``; then a model's
   one-of rule (Wan i2v needs ``first_frame`` or ``first_clip``);
2. the first other schema violation, in property order: a wrong type is
   ``Invalid format: ...``; an enum, range, length or item count outside its bounds is
   ``Value out of range: ...``; a pattern mismatch is ``Invalid format: ...``;
3. Hailuo's 1080P-only-at-6-seconds rule.

Fields the schema does not name are ignored, as a lenient upstream does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from proxy.simulator.spec import ModelSpec

_ARTICLES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}
_SHOWN = 60


def missing(value: Any) -> bool:
    return value is None or value == "" or value == []


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[: _SHOWN - 3]}..."


def _path(error: ValidationError) -> str:
    parts = list(error.absolute_path)
    text = str(parts[0]) if parts else ""
    for part in parts[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _bounds(schema: Mapping[str, Any], low: str, high: str) -> tuple[Any, Any]:
    return schema.get(low), schema.get(high)


def _range_text(low: Any, high: Any, what: str = "") -> str:
    suffix = f" {what}" if what else ""
    if low is not None and high is not None:
        return f"between {low} and {high}{suffix}"
    if low is not None:
        return f"at least {low}{suffix}"
    return f"at most {high}{suffix}"


def message(error: ValidationError) -> str:
    """The upstream's 400 message for one schema violation."""
    name = _path(error)
    value: Any = error.instance
    keyword = error.validator
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "type":
        types: Any = error.validator_value
        wanted = " or ".join(
            _ARTICLES.get(t, t) for t in ([types] if isinstance(types, str) else types)
        )
        return f"Invalid format: parameter '{name}' must be {wanted}, got {_show(value)}"
    if keyword in ("enum", "const"):
        allowed = error.validator_value if keyword == "enum" else [error.validator_value]
        return (
            f"Value out of range: parameter '{name}' must be one of {allowed}, got {_show(value)}"
        )
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        low, high = _bounds(schema, "minimum", "maximum")
        if keyword.startswith("exclusive"):
            low, high = _bounds(schema, "exclusiveMinimum", "exclusiveMaximum")
            return (
                f"Value out of range: parameter '{name}' must be "
                f"{_range_text(low, high, '(exclusive)')}, got {_show(value)}"
            )
        bounds = _range_text(low, high)
        return f"Value out of range: parameter '{name}' must be {bounds}, got {_show(value)}"
    if keyword in ("minLength", "maxLength"):
        low, high = _bounds(schema, "minLength", "maxLength")
        return (
            f"Value out of range: parameter '{name}' must be {_range_text(low, high, 'characters')}"
            f" long, got {len(value)}"
        )
    if keyword in ("minItems", "maxItems"):
        low, high = _bounds(schema, "minItems", "maxItems")
        return (
            f"Value out of range: parameter '{name}' must have {_range_text(low, high, 'items')}"
            f", got {len(value)}"
        )
    if keyword == "pattern":
        return (
            f"Invalid format: parameter '{name}' must match '{error.validator_value}', "
            f"got {_show(value)}"
        )
    where = f"parameter '{name}'" if name else "request body"
    return f"Invalid parameters: {where}: {error.message[:200]}"


def _rank(error: ValidationError, order: Sequence[str]) -> tuple[int, int]:
    top = error.absolute_path[0] if error.absolute_path else None
    position = order.index(top) if isinstance(top, str) and top in order else len(order)
    return position, 0 if error.validator == "type" else 1


def check_body(
    spec: ModelSpec,
    schema: Mapping[str, Any],
    body: Mapping[str, Any],
    validator: Draft202012Validator | None = None,
) -> str | None:
    """The upstream's 400 message for ``body``, or ``None`` when it is accepted."""
    for name in schema.get("required", ()):
        if missing(body.get(name)):
            return f"Invalid parameters: parameter '{name}' is required"
    if spec.required_one_of and all(missing(body.get(n)) for n in spec.required_one_of):
        return f"Invalid parameters: parameter '{spec.required_one_of[0]}' is required"
    validator = validator or Draft202012Validator(schema)
    errors = [e for e in validator.iter_errors(body) if e.validator != "required"]
    if errors:
        order = list(schema.get("properties", {}))
        return message(min(errors, key=lambda e: _rank(e, order)))
    return _special_rules(spec, schema, body)


def _special_rules(
    spec: ModelSpec, schema: Mapping[str, Any], body: Mapping[str, Any]
) -> str | None:
    if spec.hailuo and body.get("resolution") == "1080P":
        duration = body.get("duration")
        if duration is None:
            duration = schema.get("properties", {}).get("duration", {}).get("default")
        if duration == 10:
            return "Invalid parameters: resolution '1080P' only supports duration 6, got 10"
    return None
