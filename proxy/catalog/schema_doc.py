"""A published ``api_schema`` document, read: its request schema, compiled to check bodies with.

The document is an OpenAPI-style operation (``reference/modellix-api.md`` §8)::

    {"servers": [{"url": "https://api.modellix.ai/api/v1/{provider}/{model}"}],
     "post": {"requestBody": {"content": {"application/json": {"schema": {...}}}}, ...}}

``SchemaDoc.parse`` takes the request schema out (a JSON Schema object), checks it against
the Draft 2020-12 meta-schema, and reads what other parts need per field: type, enum,
range, default, required. ``SchemaDoc.check`` lists a body's problems in the catalog's
refusal format (``proxy.catalog.validation``), each with ``rule_status: upstream-schema``.

A published schema is someone else's data. Regular expressions (``pattern``) run on RE2,
which has no backtracking: a hostile pattern cannot stall the check. A pattern RE2 cannot
compile is left unchecked (listed in ``unchecked_patterns``), never refused on. References
(``$ref``) resolve only inside the document: nothing is fetched to check a body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable

from proxy.catalog.validation import (
    INVALID,
    Problem,
    header_safe,
    map_error,
    sort_problems,
    strict_integer_checker,
)

RULE_STATUS = "upstream-schema"
MAX_DEPTH = 64  # nesting of the request schema: far beyond any published one
UnknownFields = Literal["refuse", "warn"]


class SchemaInvalid(ValueError):
    """The document holds no usable request schema."""


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # an invalid pattern is reported here, not on stderr
    return options


_OPTIONS = _re2_options()


def compile_pattern(pattern: str) -> Any | None:
    """The RE2 program for ``pattern``, or ``None`` if RE2 cannot run it."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except (re2.error, TypeError, ValueError):
        return None


class _Patterns:
    """Compiled patterns of one document, by source text (only what RE2 accepts)."""

    def __init__(self) -> None:
        self.compiled: dict[str, Any] = {}
        self.unchecked: set[str] = set()

    def add(self, pattern: str) -> None:
        program = compile_pattern(pattern)
        if program is None:
            self.unchecked.add(pattern)
        else:
            self.compiled[pattern] = program

    def search(self, pattern: str, text: str) -> bool | None:
        """Whether ``pattern`` matches somewhere in ``text``; ``None``: not checkable."""
        program = self.compiled.get(pattern)
        return None if program is None else program.search(text) is not None


def _descend(
    validator: Validator, item: Any, schema: Any, *, path: str, schema_path: str | None = None
) -> Iterator[ValidationError]:
    """``validator.descend`` (a method of jsonschema's validators the protocol leaves out)."""
    descend: Any = getattr(validator, "descend")  # noqa: B009
    errors: Iterator[ValidationError] = descend(item, schema, path=path, schema_path=schema_path)
    return errors


def _validator_class(patterns: _Patterns) -> type[Validator]:
    def pattern(
        validator: Validator, value: Any, instance: Any, _schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "string") or not isinstance(value, str):
            return
        if patterns.search(value, instance) is False:
            yield ValidationError(f"does not match {value[:200]!r}")

    def pattern_properties(
        validator: Validator, value: Any, instance: Any, _schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object") or not isinstance(value, Mapping):
            return
        for regex, subschema in value.items():
            for name, item in instance.items():
                if patterns.search(regex, name):
                    yield from _descend(validator, item, subschema, path=name, schema_path=regex)

    def additional_properties(
        validator: Validator, value: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if not validator.is_type(instance, "object"):
            return
        named = schema.get("properties", {})
        regexes = schema.get("patternProperties", {})
        extras = [
            name
            for name in instance
            if name not in named and not any(patterns.search(r, name) for r in regexes)
        ]
        if isinstance(value, Mapping):
            for name in extras:
                yield from _descend(validator, instance[name], value, path=name)
        elif value is False and extras:
            shown = ", ".join(repr(n) for n in extras[:5])
            yield ValidationError(f"additional properties are not allowed ({shown})")

    extended: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
        Draft202012Validator,
        {
            "pattern": pattern,
            "patternProperties": pattern_properties,
            "additionalProperties": additional_properties,
        },
        type_checker=strict_integer_checker(),
    )
    return extended


def _walk(node: Any, patterns: _Patterns, depth: int = 0) -> None:
    """Collect every ``pattern`` (and ``patternProperties`` key); refuse absurd nesting."""
    if depth > MAX_DEPTH:
        raise SchemaInvalid(f"the request schema is nested deeper than {MAX_DEPTH} levels")
    if isinstance(node, Mapping):
        if isinstance(node.get("pattern"), str):
            patterns.add(node["pattern"])
        regexes = node.get("patternProperties")
        if isinstance(regexes, Mapping):
            for regex in regexes:
                patterns.add(str(regex))
        for child in node.values():
            _walk(child, patterns, depth + 1)
    elif isinstance(node, list):
        for child in node:
            _walk(child, patterns, depth + 1)


def request_schema(document: Mapping[str, Any]) -> dict[str, Any]:
    """``post.requestBody.content["application/json"].schema`` of a document."""
    post = document.get("post")
    body = post.get("requestBody") if isinstance(post, Mapping) else None
    content = body.get("content") if isinstance(body, Mapping) else None
    media = content.get("application/json") if isinstance(content, Mapping) else None
    schema = media.get("schema") if isinstance(media, Mapping) else None
    if not isinstance(schema, dict):
        raise SchemaInvalid("no post.requestBody.content['application/json'].schema object")
    if schema.get("type", "object") != "object":
        raise SchemaInvalid("the request schema does not describe a JSON object")
    return schema


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """What the schema says about one top-level field."""

    name: str
    types: tuple[str, ...] = ()
    enum: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    default: Any = None
    has_default: bool = False
    required: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": list(self.types), "required": self.required}
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.has_default:
            out["default"] = self.default
        return out


def _field(name: str, sub: Any, required: bool) -> FieldInfo:
    if not isinstance(sub, Mapping):
        return FieldInfo(name, required=required)
    kind = sub.get("type")
    types = (
        tuple(str(t) for t in kind) if isinstance(kind, list) else ((str(kind),) if kind else ())
    )
    enum = sub.get("enum")
    lo, hi = sub.get("minimum"), sub.get("maximum")
    return FieldInfo(
        name,
        types,
        tuple(enum) if isinstance(enum, list) else None,
        lo if isinstance(lo, int | float) and not isinstance(lo, bool) else None,
        hi if isinstance(hi, int | float) and not isinstance(hi, bool) else None,
        sub.get("default"),
        "default" in sub,
        required,
    )


@dataclass(frozen=True)
class SchemaDoc:
    """One parsed, compiled request schema."""

    schema: dict[str, Any]
    fields: dict[str, FieldInfo]
    open_fields: bool  # additionalProperties explicitly allows fields it does not name
    closed: bool  # additionalProperties: false
    unchecked_patterns: tuple[str, ...]
    _validator: Validator = field(repr=False, compare=False)

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> SchemaDoc:
        """Raises ``SchemaInvalid`` for a document without a usable request schema."""
        schema = request_schema(document)
        patterns = _Patterns()
        _walk(schema, patterns)
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            raise SchemaInvalid(f"the request schema is invalid: {exc.message[:200]}") from exc
        except RecursionError as exc:
            raise SchemaInvalid("the request schema is nested too deeply") from exc
        props = schema.get("properties", {})
        props = props if isinstance(props, Mapping) else {}
        required = schema.get("required", [])
        required = {str(r) for r in required} if isinstance(required, list) else set()
        extra = schema.get("additionalProperties", None)
        # Top-level unknown fields are judged by the proxy's own policy (``check``).
        compiled = {k: v for k, v in schema.items() if k != "additionalProperties"}
        # An explicit registry: a ``$ref`` outside the document is never fetched.
        validator = _validator_class(patterns)(compiled, registry=Registry())
        doc = cls(
            schema,
            {
                str(name): _field(str(name), sub, str(name) in required)
                for name, sub in props.items()
            },
            extra is True or isinstance(extra, Mapping),
            extra is False,
            tuple(sorted(patterns.unchecked)),
            validator,
        )
        doc.check({}, "warn")  # a reference that cannot resolve fails here, not on a request
        return doc

    @property
    def properties(self) -> frozenset[str]:
        return frozenset(self.fields)

    def defaults(self) -> dict[str, Any]:
        """Every top-level field's published default."""
        return {name: f.default for name, f in self.fields.items() if f.has_default}

    def check(
        self, payload: Mapping[str, Any], unknown_fields: UnknownFields = "refuse"
    ) -> tuple[list[Problem], list[str]]:
        """Problems (sorted) and warnings of one body against the published schema."""
        problems: list[Problem] = []
        try:
            # The whole body, not a clipped view: a published pattern may be anchored at the
            # end. A large body is checked off the event loop (``stages.validate``).
            for error in self._validator.iter_errors(payload):
                problems.extend(map_error(error, self.schema, {}, RULE_STATUS))
        except (Unresolvable, RecursionError) as exc:
            raise SchemaInvalid(f"the request schema cannot be applied: {exc}") from exc
        warnings: list[str] = []
        if not self.open_fields:
            known = sorted(self.fields)
            for name in payload:
                if name in self.fields:
                    continue
                if unknown_fields == "refuse" or self.closed:
                    problems.append(
                        Problem(
                            name,
                            "is not a parameter of this model",
                            known,
                            INVALID,
                            "unknown_field",
                            RULE_STATUS,
                        )
                    )
                else:
                    shown = header_safe(name, 60)
                    warnings.append(f"unknown parameter '{shown}' forwarded unchecked")
        return sort_problems(problems), warnings
