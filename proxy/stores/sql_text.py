"""Text made by the database: a few expression kinds, declared as data, rendered per engine.

A finance export (FOCUS) declares each column as one of these values over the ``jobs``
columns; ``render`` turns it into an SQL expression of the store's engine that yields the
column's text, or ``NULL`` for an empty field, so the rows leave the database already
formatted, with no Python work per row. The text is exactly what the Python formatter of the
same column gives (``proxy.governance.focus``): money as six-place decimal strings from
integer micro-dollars (never through a float), times as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC
from the epoch seconds' whole part, JSON objects without their ``null`` members.

``csv_line`` (SQLite) quotes each field the way RFC 4180 asks: any text that may hold a
comma, a quote or a line break is quoted with its quotes doubled; PostgreSQL's
``COPY ... (FORMAT csv)`` quotes the separate columns itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from proxy.stores.dialect import Dialect


@dataclass(frozen=True, slots=True)
class Const:
    """A fixed text (``None``: the field is always empty)."""

    text: str | None


@dataclass(frozen=True, slots=True)
class Col:
    """A text column of ``jobs`` as it is (``NULL`` stays empty)."""

    name: str


@dataclass(frozen=True, slots=True)
class Concat:
    """The parts one after the other (each never ``NULL``)."""

    parts: tuple[Const | Col, ...]


@dataclass(frozen=True, slots=True)
class WhenText:
    """``then`` where ``test`` is a non-empty text, else empty."""

    test: Col
    then: Const | Col | Concat


@dataclass(frozen=True, slots=True)
class FirstText:
    """``first`` where it is a non-empty text, else ``second``."""

    first: Col
    second: Col | Const


@dataclass(frozen=True, slots=True)
class Named:
    """Where ``column`` is a non-empty text: its name from ``names`` (``(value, name)``
    pairs), else the text itself; where it is empty: ``otherwise``."""

    column: Col
    names: tuple[tuple[str, str], ...]
    otherwise: Const


@dataclass(frozen=True, slots=True)
class Before:
    """The part of ``column`` before the first ``separator``; empty without one."""

    column: Col
    separator: str


@dataclass(frozen=True, slots=True)
class Money:
    """An integer micro-dollar column as exact dollars (``-0.500000``); ``NULL`` is
    ``default`` (empty where that is ``None``)."""

    column: str
    default: int | None = None


@dataclass(frozen=True, slots=True)
class Instant:
    """Epoch seconds as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, the whole second).

    ``seconds`` is SQL over ``jobs`` columns that both engines read alike; ``{greatest}``
    in it stands for the engine's two-argument maximum."""

    seconds: str


@dataclass(frozen=True, slots=True)
class MonthStart:
    """The first instant of the calendar month (UTC) holding an epoch-seconds column."""

    column: str


@dataclass(frozen=True, slots=True)
class MonthEnd:
    """The first instant of the next calendar month (UTC)."""

    column: str


@dataclass(frozen=True, slots=True)
class JsonObject:
    """A JSON object of text members (``(key, column)``, in this order), ``NULL`` ones left
    out; compact, as ``orjson`` writes it."""

    members: tuple[tuple[str, Col | FirstText], ...]


Expr = (
    Const
    | Col
    | Concat
    | WhenText
    | FirstText
    | Named
    | Before
    | Money
    | Instant
    | MonthStart
    | MonthEnd
    | JsonObject
)
"""What a column can be."""

_PLAIN = (Money, Instant, MonthStart, MonthEnd)
"""Kinds whose text never holds a comma, a quote or a line break."""

_PG_ISO = '\'YYYY-MM-DD"T"HH24:MI:SS"Z"\''


def literal(text: str) -> str:
    """``text`` as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def render(expr: Expr, dialect: Dialect) -> str:
    """An SQL expression of ``dialect`` whose value is ``expr``'s text, or ``NULL``."""
    pg = dialect.name == "postgres"
    match expr:
        case Const(text):
            return "NULL" if text is None else literal(text)
        case Col(name):
            return name
        case Concat(parts):
            return "(" + " || ".join(render(p, dialect) for p in parts) + ")"
        case WhenText(test, then):
            return f"CASE WHEN {test.name} <> '' THEN {render(then, dialect)} END"
        case FirstText(first, second):
            other = render(second, dialect)
            return f"CASE WHEN {first.name} <> '' THEN {first.name} ELSE {other} END"
        case Named(Col(name), names, otherwise):
            named = name
            if names:
                whens = " ".join(f"WHEN {literal(k)} THEN {literal(v)}" for k, v in names)
                named = f"CASE {name} {whens} ELSE {name} END"
            return f"CASE WHEN {name} <> '' THEN {named} ELSE {render(otherwise, dialect)} END"
        case Before(Col(name), separator):
            if pg:
                at = f"strpos({name}, {literal(separator)})"
                return f"CASE WHEN {at} > 0 THEN substr({name}, 1, {at} - 1) END"
            # In bytes: SQLite's substr() on text stops at a NUL, on a blob it does not.
            blob = f"CAST({name} AS BLOB)"
            at = f"instr({blob}, CAST({literal(separator)} AS BLOB))"
            return f"CASE WHEN {at} > 0 THEN CAST(substr({blob}, 1, {at} - 1) AS TEXT) END"
        case Money(column, default):
            value = column if default is None else f"COALESCE({column}, {int(default)})"
            if pg:  # bigint times a six-place numeric: exact, with six places
                return f"CAST({value} * 0.000001 AS TEXT)"
            text = (
                f"printf('%s%d.%06d', CASE WHEN {value} < 0 THEN '-' ELSE '' END,"
                f" abs({value}) / 1000000, abs({value}) % 1000000)"
            )  # printf takes NULL for 0: a missing amount stays missing
            return (
                text if default is not None else f"CASE WHEN {column} IS NOT NULL THEN {text} END"
            )
        case Instant(seconds):
            at = seconds.format(greatest=dialect.greatest)
            if pg:
                return f"to_char(to_timestamp(floor({at})) AT TIME ZONE 'UTC', {_PG_ISO})"
            # One datetime() (``YYYY-MM-DD HH:MM:SS``), its space made a T: cheaper than
            # strftime(), or date() and time() each converting the instant
            whole = f"CAST({at} AS INTEGER)"
            return f"(replace(datetime({whole}, 'unixepoch'), ' ', 'T') || 'Z')"
        case MonthStart(column):
            if pg:
                month = f"date_trunc('month', to_timestamp({column}) AT TIME ZONE 'UTC')"
                return f"to_char({month}, {_PG_ISO})"
            day = f"date(CAST({column} AS INTEGER), 'unixepoch')"
            return f"(substr({day}, 1, 8) || '01T00:00:00Z')"
        case MonthEnd(column):
            if pg:
                month = f"date_trunc('month', to_timestamp({column}) AT TIME ZONE 'UTC')"
                return f"to_char({month} + INTERVAL '1 month', {_PG_ISO})"
            return (
                f"(date(CAST({column} AS INTEGER), 'unixepoch', 'start of month', '+1 month')"
                " || 'T00:00:00Z')"
            )
        case JsonObject(members):
            fields: list[str] = []
            for key, member in members:
                name = literal(f',"{key}":')  # keys of ours: no escaping needed
                value = render(member, dialect)
                json = f"to_json(CAST({value} AS TEXT))" if pg else f"json_quote({value})"
                if not fields and _never_null(member):  # no comma to strip after all
                    opening = literal('{"' + key + '":')
                    fields.append(f"{opening} || {json}")
                elif pg:  # to_json of NULL is NULL, and so is the member
                    fields.append(f"COALESCE({name} || {json}, '')")
                else:
                    fields.append(f"CASE WHEN {value} IS NULL THEN '' ELSE {name} || {json} END")
            if members and _never_null(members[0][1]):
                return _balanced([*fields, "'}'"])
            return "('{' || substr(" + _balanced(fields) + ", 2) || '}')"
    raise TypeError(f"not a text expression: {expr!r}")  # pragma: no cover (Expr is closed)


def _never_null(expr: Expr) -> bool:
    """Whether ``expr`` has a text for every row (a fixed one, or a fallback to one)."""
    match expr:
        case Const(text):
            return text is not None
        case FirstText(_, second):
            return _never_null(second)
        case Concat(parts):
            return all(_never_null(p) for p in parts)
    return False


def _needs_quotes(expr: Expr) -> bool:
    if isinstance(expr, _PLAIN):
        return False
    if isinstance(expr, Const):
        return expr.text is not None and any(c in expr.text for c in ',"\r\n')
    return True


def _leaves(expr: Expr) -> tuple[list[str], bool]:
    """The ``jobs`` columns ``expr``'s text is made of, and whether its fixed text (or, for
    a JSON object, its syntax) may hold a quote of its own."""
    match expr:
        case Const(text):
            return [], text is not None and '"' in text
        case Col(name):
            return [name], False
        case Concat(parts):
            found = [_leaves(p) for p in parts]
            return [c for cols, _ in found for c in cols], any(q for _, q in found)
        case WhenText(_, then):
            return _leaves(then)
        case FirstText(first, second):
            cols, quoted = _leaves(second)
            return [first.name, *cols], quoted
        case Named(Col(name), names, otherwise):
            quoted = any('"' in v for _, v in names) or _leaves(otherwise)[1]
            return [name], quoted
        case Before(Col(name), separator):
            return [name], '"' in separator
    return [], True  # a JSON object: its keys are quoted


def csv_field(expr: Expr, dialect: Dialect) -> str:
    """SQL for ``expr``'s text as the inside of one CSV field, ``NULL`` empty: quotes doubled
    where its text may need quoting (``csv_line`` puts the surrounding quotes in the fixed
    text beside it, so a missing value is the empty quoted field, ``""``).

    The text is computed once either way: on SQLite, ``replace()`` runs only where a column
    it is made of holds a quote (``instr()`` of each: cheaper than copying every value),
    unless its fixed text may hold one itself."""
    sql = render(expr, dialect)
    if _needs_quotes(expr):
        doubled = "replace(" + sql + ", '\"', '\"\"')"
        columns, quoted = _leaves(expr)
        if dialect.name != "sqlite" or quoted:
            sql = doubled
        elif columns:  # else no quote anywhere: nothing to double
            test = " OR ".join(f"instr({c}, '\"')" for c in dict.fromkeys(columns))
            sql = f"CASE WHEN {test} THEN {doubled} ELSE {sql} END"
    return f"COALESCE({sql}, '')"


@dataclass(frozen=True, slots=True)
class CsvLine:
    """One CSV line (without its line break) made by SQL in two steps: ``columns``, each
    distinct field's expression once (``f0``, ``f1``..., ready to select from the table),
    and ``line``, over those names, the fields joined with their commas."""

    columns: tuple[str, ...]
    line: str


def csv_line(exprs: Sequence[Expr], dialect: Dialect) -> CsvLine:
    """The SQL for a CSV line of the ``exprs``' fields.

    A field that repeats (the four cost columns and two unit prices are one amount) is
    computed once; fixed text, commas and the quotes around a quoted field included, is one
    literal between two computed fields; the concatenation is a balanced tree, so building a
    line copies it about log2(fields) times, not once per field."""
    names: dict[Expr, str] = {}
    parts: list[str] = []
    text: list[str] = []  # fixed text since the last computed field
    for i, expr in enumerate(exprs):
        if i:
            text.append(",")
        if isinstance(expr, Const):
            value = expr.text or ""
            text.append('"' + value.replace('"', '""') + '"' if _needs_quotes(expr) else value)
            continue
        quoted = _needs_quotes(expr)
        if quoted:
            text.append('"')
        if text:
            parts.append(literal("".join(text)))
            text.clear()
        parts.append(names.setdefault(expr, f"f{len(names)}"))
        if quoted:
            text.append('"')
    if text or not parts:
        parts.append(literal("".join(text)))
    columns = tuple(f"{csv_field(expr, dialect)} AS {name}" for expr, name in names.items())
    return CsvLine(columns, _balanced(parts))


def _balanced(parts: Sequence[str]) -> str:
    if len(parts) == 1:
        return parts[0]
    half = len(parts) // 2
    return f"({_balanced(parts[:half])} || {_balanced(parts[half:])})"
