"""Body validation against the catalog: every problem found, in the upstream's words.

Validators are compiled once per model when ``BodyValidator`` is built. Each
jsonschema error becomes a ``Problem`` (field, problem, allowed) carrying the
upstream message category and a bounded machine reason; ``refusal()`` turns a
list of problems into one ``InvalidInput`` that lists them all.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator, TypeChecker, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from proxy.catalog.loader import Catalog
from proxy.catalog.spec import ModelSpec, Rule
from proxy.errors import InvalidInput, MalformedJSON

UnknownFieldPolicy = Literal["refuse", "warn"]

MISSING = "Missing required parameter"
INVALID = "Invalid parameters"
RANGE = "Value out of range"
FORMAT = "Invalid format"
_CATEGORY_RANK = {MISSING: 0, FORMAT: 1, INVALID: 2, RANGE: 3}
_RANGE_KEYWORDS = frozenset(
    {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"}
    | {"minItems", "maxItems", "x-pixelArea"}
)
_TYPE_NAMES = {"integer": "an integer", "number": "a number", "string": "a string"}
_TYPE_NAMES |= {"boolean": "a boolean", "array": "an array", "object": "an object"}


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a request body."""

    field: str
    problem: str
    allowed: Any = None
    category: str = INVALID
    reason: str = "schema"
    status: str | None = None  # certainty of the rule: documented | inferred
    keyword: str = ""  # the JSON Schema keyword that failed, if any

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field,
            "problem": self.problem,
            "allowed": self.allowed,
        }
        if self.status is not None:
            out["rule_status"] = self.status
        return out


def _pixel_area(
    validator: Validator, spec: Mapping[str, Any], instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """Custom keyword: ``WxH`` sizes whose pixel count and aspect must lie in bounds."""
    if not isinstance(instance, str):
        return
    sep = re.escape(str(spec.get("separator", "x")))
    match = re.fullmatch(rf"([0-9]{{1,5}}){sep}([0-9]{{1,5}})", instance)
    if match is None:
        return
    width, height = int(match[1]), int(match[2])
    area, lo, hi = width * height, spec["min"], spec["max"]
    if not lo <= area <= hi:
        yield ValidationError(f"has {area:,} pixels, allowed {lo:,}..{hi:,}")
    elif "ratio_min" in spec and not spec["ratio_min"] <= width / height <= spec["ratio_max"]:
        yield ValidationError(f"aspect {width}/{height} is outside 1/16..16")


def _is_strict_integer(_checker: TypeChecker, instance: object) -> bool:
    """JSON ``6.0`` is not an integer here: the upstream refuses it ("must be an integer")."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _validator_class() -> type[Validator]:
    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    extended: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator, {"x-pixelArea": _pixel_area}, type_checker=checker
    )
    return extended


MAX_INT_DIGITS = 64  # no parameter needs more; converting thousands of digits is costly


class _LongInteger(ValueError):
    pass


def parse_body(body: bytes | str) -> dict[str, Any]:
    """Parse a submit body; anything but a JSON object raises ``MalformedJSON``."""
    try:
        value = json.loads(body, parse_constant=_reject_constant, parse_int=_bounded_int)
    except _LongInteger as exc:
        raise MalformedJSON(
            f"a number has more than {MAX_INT_DIGITS} digits", reason="malformed_json"
        ) from exc
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise MalformedJSON("invalid JSON format", reason="malformed_json") from exc
    if not isinstance(value, dict):
        kind = type(value).__name__ if value is not None else "null"
        raise MalformedJSON(f"request body must be a JSON object, got {kind}", reason="not_object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _LongInteger(text[:20])
    return int(text)


def _short(value: Any) -> str:
    text = json.dumps(_clipped(value), ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _clipped(value: Any, depth: int = 0) -> Any:
    """A small copy of ``value`` for a message: long strings and containers cut short."""
    if isinstance(value, str):
        return value[:64]
    if depth >= 3:
        return "..." if isinstance(value, list | dict) else value
    if isinstance(value, list):
        return [_clipped(v, depth + 1) for v in value[:8]]
    if isinstance(value, dict):
        return {str(k)[:64]: _clipped(v, depth + 1) for k, v in list(value.items())[:8]}
    return value


def _path(parts: Iterator[str | int] | Any) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class BodyValidator:
    """Schema and cross-field checks for every catalog model, compiled once."""

    def __init__(self, catalog: Catalog, *, unknown_fields: UnknownFieldPolicy = "refuse") -> None:
        self.unknown_fields = unknown_fields
        self._cls = _validator_class()
        self._validators: dict[str, Validator] = {
            spec.slug: self._cls(spec.json_schema) for spec in catalog
        }

    def check(self, spec: ModelSpec, payload: Mapping[str, Any]) -> tuple[list[Problem], list[str]]:
        """Problems (sorted, most relevant first) and warnings for one body."""
        validator = self._validators.get(spec.slug) or self._cls(spec.json_schema)
        problems: list[Problem] = []
        for error in validator.iter_errors(_clipped_view(payload)):
            problems.extend(_map_error(error, spec))
        warnings: list[str] = []
        known = spec.properties
        for name in payload:
            if name in known:
                continue
            if self.unknown_fields == "refuse" or spec.closed:
                problems.append(
                    Problem(
                        name,
                        "is not a parameter of this model",
                        sorted(known),
                        INVALID,
                        "unknown_field",
                    )
                )
            else:
                shown = header_safe(name, 60)
                warnings.append(f"unknown parameter '{shown}' forwarded unchecked")
        return sort_problems(problems), warnings


_CLIP_CHARS = 4096


class _Clipped(str):
    """A long string as the schema check sees it: its first characters, its true length.

    jsonschema writes ``repr(instance)`` into every error message; for a string of many
    megabytes that is one long call. Length keywords read ``len()`` (the true length);
    patterns (all anchored at the start here), enums and types give the same answer on the
    first characters as on the whole string.
    """

    length: int

    def __new__(cls, value: str) -> _Clipped:
        clipped = super().__new__(cls, value[:_CLIP_CHARS])
        clipped.length = len(value)
        return clipped

    def __len__(self) -> int:
        return self.length

    def __repr__(self) -> str:
        return f"{str.__repr__(self[:40])}... ({self.length} characters)"


def _clipped_view(value: Any) -> Any:
    """``value`` with every string longer than ``_CLIP_CHARS`` replaced by a ``_Clipped``."""
    if isinstance(value, str):
        return _Clipped(value) if len(value) > _CLIP_CHARS else value
    if isinstance(value, list):
        return [_clipped_view(v) for v in value]
    if isinstance(value, dict):
        return {k: _clipped_view(v) for k, v in value.items()}
    return value


def header_safe(text: str, limit: int = 300) -> str:
    """``text`` as printable ASCII, everything else escaped: warnings travel in a header.

    A body's field names and URLs are client-controlled; a CR/LF or a non-ASCII character
    reaching ``X-Modellix-Proxy-Warnings`` would make the answer fail after a paid submit.
    """
    ascii_text = text[: limit * 2].encode("ascii", "backslashreplace").decode("ascii")
    safe = "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in ascii_text)
    return safe if len(safe) <= limit else safe[: limit - 3] + "..."


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Deduplicated, most relevant first; a type error hides other errors of its field."""
    typed = {p.field for p in problems if p.keyword == "type"}
    seen: set[tuple[str, str]] = set()
    out: list[Problem] = []
    for p in problems:
        key = (p.field, p.problem)
        if key in seen or (p.field in typed and p.keyword != "type"):
            continue
        seen.add(key)
        out.append(p)
    return sorted(out, key=lambda p: (_CATEGORY_RANK.get(p.category, 9), p.field))


MAX_LISTED_PROBLEMS = 50


def refusal(problems: list[Problem]) -> InvalidInput:
    """One ``InvalidInput`` naming the first problem and listing them (the first 50)."""
    first = problems[0]
    detail = f"parameter '{first.field}' {first.problem}" if first.field else first.problem
    if len(problems) > 1:
        more = len(problems) - 1
        detail += f" (and {more} more problem{'s' if more > 1 else ''}, see errors)"
    return InvalidInput(
        detail,
        category=first.category,
        errors=[p.as_dict() for p in problems[:MAX_LISTED_PROBLEMS]],
        reason=first.reason,
    )


def _rule_id(error: ValidationError, schema: Mapping[str, Any]) -> str | None:
    path = list(error.absolute_schema_path)
    if len(path) >= 2 and path[0] == "allOf" and isinstance(path[1], int):
        entry = schema.get("allOf", [])[path[1]]
        comment = entry.get("$comment") if isinstance(entry, Mapping) else None
        return comment if isinstance(comment, str) else None
    return None


def _map_error(error: ValidationError, spec: ModelSpec) -> list[Problem]:
    return map_error(error, spec.json_schema, spec.rules)


def map_error(
    error: ValidationError,
    schema: Mapping[str, Any],
    rules: Mapping[str, Rule],
    default_status: str | None = None,
) -> list[Problem]:
    """Problems for one jsonschema error of ``schema``; ``rules`` give cross-field wording and
    each problem's ``rule_status`` (``default_status`` where no rule names one)."""
    rule_id = _rule_id(error, schema)
    rule = rules.get(rule_id) if rule_id else None
    path = list(error.absolute_path)
    field = _path(path)
    if rule is None and path:
        param = rules.get(f"param:{path[0]}")
        status = param.status if param else default_status
    else:
        status = rule.status if rule else default_status
    reason = "cross_field" if rule else "schema"
    kind: Any = error.validator
    value: Any = error.validator_value
    sub: Any = error.schema
    sub = sub if isinstance(sub, Mapping) else {}

    def make(
        problem: str, allowed: Any = None, category: str = INVALID, where: str = field
    ) -> Problem:
        if rule is not None:
            problem = f"{problem} ({rule.text})"
            allowed = allowed if allowed is not None else rule.allowed
        return Problem(where, problem, allowed, category, reason, status, str(kind))

    if kind == "required":
        present = error.instance if isinstance(error.instance, Mapping) else {}
        missing = [name for name in value if name not in present]
        if rule is not None or path:
            return [make("is required", category=MISSING, where=_path([*path, n])) for n in missing]
        return [
            Problem(
                n, "is required", None, MISSING, reason, _param_status(rules, n, status), "required"
            )
            for n in missing
        ]
    if kind in ("anyOf", "oneOf") and rule is not None:
        where = rule.fields[0] if rule.fields else field
        text = "is required" if rule.category == MISSING else "is invalid"
        problem = f"{text} ({rule.text})"
        return [Problem(where, problem, rule.allowed, rule.category, reason, status, str(kind))]
    if kind == "not" and value == {}:
        return [make("is not allowed here")]
    if kind == "type":
        names = value if isinstance(value, list) else [value]
        wanted = " or ".join(_TYPE_NAMES.get(str(n), str(n)) for n in names)
        # The upstream words type errors as format errors ("... must be an integer").
        return [make(f"must be {wanted}, got {_short(error.instance)}", value, FORMAT)]
    if kind in ("enum", "const"):
        allowed = list(value) if kind == "enum" else [value]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in allowed)
        listed = "one of [" + ", ".join(map(_short, allowed)) + "]"
        shown = _short(value) if kind == "const" else listed
        category = RANGE if numeric and isinstance(error.instance, int | float) else INVALID
        return [make(f"must be {shown}, got {_short(error.instance)}", allowed, category)]
    if kind in _RANGE_KEYWORDS:
        return [make(_range_problem(kind, sub, error), _bounds(sub), RANGE)]
    if kind == "pattern":
        return [make(f"has an invalid format, got {_short(error.instance)}", value, FORMAT)]
    return [make(f"is invalid: {error.message[:200]}", None, rule.category if rule else INVALID)]


def _param_status(rules: Mapping[str, Rule], name: str, default: str | None) -> str | None:
    rule = rules.get(f"param:{name}")
    return rule.status if rule else default


def _bounds(sub: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength")
    bounds = {k: sub[k] for k in (*keys, "minItems", "maxItems") if k in sub}
    if "x-pixelArea" in sub:
        bounds.update(sub["x-pixelArea"])
    return bounds or None


def _range_problem(kind: str, sub: Mapping[str, Any], error: ValidationError) -> str:
    got = error.instance
    if kind in ("minLength", "maxLength"):
        lo, hi = sub.get("minLength", 0), sub.get("maxLength")
        limit = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        return f"must be {limit} characters long, got {len(got) if isinstance(got, str) else '?'}"
    if kind in ("minItems", "maxItems"):
        lo, hi = sub.get("minItems", 0), sub.get("maxItems")
        limit = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        return f"must have {limit} items, got {len(got) if isinstance(got, list) else '?'}"
    if kind == "x-pixelArea":
        return f"{error.message}, got {_short(got)}"
    lo = sub.get("minimum", sub.get("exclusiveMinimum"))
    hi = sub.get("maximum", sub.get("exclusiveMaximum"))
    if lo is not None and hi is not None:
        return f"must be between {lo} and {hi}, got {_short(got)}"
    if lo is not None:
        return f"must be at least {lo}, got {_short(got)}"
    return f"must be at most {hi}, got {_short(got)}"


def clipped_view(value: Any) -> Any:
    """``value`` as the schema checks see it: long strings clipped, their lengths kept."""
    return _clipped_view(value)


def strict_integer_checker() -> TypeChecker:
    """Draft 2020-12's type checker with ``integer`` as the upstream has it (``6.0`` is not)."""
    checker: TypeChecker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    return checker
