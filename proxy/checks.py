"""Checks of a configuration: the schema and what only the built parts see, in one run.

:func:`all_problems` reports every problem at once: schema errors (each field that fails
validation) and the checks that need the catalog, aliases, prices and files, run on the
configuration with the invalid fields set back to their defaults. Each problem names its
field path and the ``MODELLIX_PROXY_*`` variable that overrides it (and says so when the
value came from that variable).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from proxy.accounts import AccountBook, AccountError
from proxy.catalog.from_settings import build_catalog
from proxy.catalog.loader import CatalogError, load_catalog
from proxy.config import (
    CONFIG_PATH_ENV,
    ENV_PREFIX,
    ConfigError,
    Settings,
    _env_overrides,
    _read_file,
    deep_merge,
)

Loc = tuple[str | int, ...]
_FIELD = re.compile(r"^([A-Za-z_][\w.\-/]*?):\s")
_ENV_PART = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
# Rounds of "reset the invalid fields and validate again" before giving up on the rest.
MAX_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem: the field it is about (dotted), what is wrong, where the value came from."""

    field: str
    message: str
    from_env: bool = False

    @property
    def env_var(self) -> str | None:
        """The override variable of the field (``None`` for list items and the top level)."""
        parts = self.field.split(".")
        if not self.field or not all(_ENV_PART.fullmatch(part) for part in parts):
            return None  # list items and keys like slugs cannot be spelled in a variable
        return ENV_PREFIX + "__".join(part.upper() for part in parts)

    def __str__(self) -> str:
        var = self.env_var
        if var is None:
            hint = ""
        elif self.from_env:
            hint = f" (set by {var})"
        else:
            hint = f" (env {var})"
        where = self.field or "(top level)"
        return f"{where}: {self.message}{hint}"


_SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]*/[a-z0-9][a-z0-9._-]*$")


def field_of(loc: Loc) -> str:
    """A pydantic error location as a dotted field path (``budgets.0.limit_usd``)."""
    return ".".join(str(part) for part in loc)


def describe_errors(exc: ValidationError, prefix: Sequence[str] = ()) -> list[str]:
    """One plain line per invalid field (``limit_usd: must be greater than 0``), no links."""
    lines = []
    for err in exc.errors(include_url=False):
        where = field_of((*prefix, *err["loc"])) or "(top level)"
        lines.append(f"{where}: {_message(err)}")
    return list(dict.fromkeys(lines))


def _message(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _has(data: Any, loc: Loc) -> bool:
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            return False
        node = node[part]
    return True


def _drop(data: Any, loc: Loc) -> Loc | None:
    """Remove the deepest existing prefix of ``loc`` from ``data``; what was removed."""
    for end in range(len(loc), 0, -1):
        head = loc[:end]
        if not _has(data, head):
            continue
        parent = data
        for part in head[:-1]:
            parent = parent[part]
        key = head[-1]
        if isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, list) and isinstance(key, int):
            parent[key] = None  # keeps the round's other indexes; removed before the next
        return head
    return None


def _compact(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _compact(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_compact(v) for v in data if v is not None]
    return data


def all_problems(path: Path | str | None, environ: Mapping[str, str]) -> list[Problem]:
    """Every schema and semantic problem of the configuration ``load`` would build."""
    if path is None and environ.get(CONFIG_PATH_ENV):
        path = environ[CONFIG_PATH_ENV]
    try:
        from_file = _read_file(Path(path)) if path is not None else {}
        overrides = _env_overrides(environ)
    except ConfigError as err:  # unreadable file, not YAML: nothing else can be checked
        return [Problem("", problem) for problem in err.problems]
    data = deep_merge(from_file, overrides)
    problems: list[Problem] = []
    dropped: list[str] = []
    settings: Settings | None = None
    for _ in range(MAX_ROUNDS):
        data = _compact(data)
        try:
            settings = Settings.model_validate(data)
            break
        except ValidationError as exc:
            progress = False
            for error in exc.errors(include_url=False):
                loc: Loc = tuple(error["loc"])
                problem = Problem(field_of(loc), _message(error), _has(overrides, loc))
                if problem not in problems:
                    problems.append(problem)
                removed = _drop(data, loc)
                if removed is not None:
                    dropped.append(field_of(removed))
                    progress = True
            if not progress:
                break
    if settings is None:
        return problems
    for text in check_settings(settings):
        match = _FIELD.match(text)
        field = match.group(1) if match else ""
        if any(field == d or field.startswith(f"{d}.") or d in text for d in dropped):
            continue  # about a default that stands in for an invalid value
        message = text[match.end() :] if match else text
        loc = tuple(field.split(".")) if field else ()
        problems.append(Problem(field, message, bool(loc) and _has(overrides, loc)))
    return problems


def check_settings(settings: Settings) -> list[str]:
    """Every problem found, each naming the field it is about."""
    problems: list[str] = []
    admin, listen = settings.admin, settings.listen
    if admin.enabled and listen.port and admin.port == listen.port and admin.host == listen.host:
        problems.append("admin.port: must differ from listen.port")
    for name in ("tls_cert_file", "tls_key_file"):
        path = getattr(listen, name)
        if path is not None and not path.is_file():
            problems.append(f"listen.{name}: no such file {path}")
    for field, path in (
        ("admin.token_file", admin.token_file),
        ("upstream.api_key_file", settings.upstream.api_key_file),
    ):
        if path is not None and not path.is_file():
            problems.append(f"{field}: no such file {path}")
    upstream = settings.upstream
    has_key = upstream.api_key is not None or upstream.api_key_file is not None
    has_key = has_key or bool(upstream.accounts)
    if settings.keys.mode != "passthrough" and not has_key:
        problems.append(
            "keys.mode: virtual keys need upstream.api_key or upstream.api_key_file "
            "(the key the proxy injects), or upstream.accounts"
        )
    if settings.admission.enabled and (settings.keys.mode == "passthrough" or not has_key):
        problems.append(
            "admission.enabled: the queue sends with the proxy's own key, so it needs "
            "keys.mode virtual or mixed and upstream.api_key or upstream.accounts "
            "(pass-through submits are never queued)"
        )
    problems.extend(account_problems(settings))
    url = settings.store.url
    if not url.startswith(("sqlite:///", "postgresql://", "postgres://")):
        problems.append("store.url: use sqlite:///path.db or postgresql://user@host:port/db")
    try:
        catalog = load_catalog(settings.models.overrides)
    except CatalogError as exc:
        problems.append(f"models.overrides: {exc}")
        return problems
    try:
        build_catalog(settings.models)
    except CatalogError as exc:
        problems.append(f"models.aliases: {exc}")
    for slug, entry in settings.pricing.models.items():
        # A slug outside the local catalog may be one the upstream lists (priced from the
        # body's common fields): only its shape can be checked offline.
        if slug not in catalog and not _SLUG.match(slug):
            problems.append(f"pricing.models.{slug}: not a model slug (provider/model, lowercase)")
        if entry.usd is None and not entry.usd_by_resolution:
            problems.append(f"pricing.models.{slug}: needs usd or usd_by_resolution")
    problems += _openai_video_models(settings)
    return problems


def _openai_video_models(settings: Settings) -> list[str]:
    """``openai_videos.models``: each OpenAI name maps to at least one slug-shaped target (a
    slug the upstream lists is only known at run time: its shape is what is checked here)."""
    problems = []
    for name, target in settings.openai_videos.models.items():
        if target.text is None and target.image is None:
            problems.append(f"openai_videos.models.{name}: needs text or image (or both)")
        for kind, slug in (("text", target.text), ("image", target.image)):
            if slug is not None and not _SLUG.match(slug):
                problems.append(
                    f"openai_videos.models.{name}.{kind}: not a model slug (provider/model)"
                )
    for family, slug in settings.openai_videos.remix_models.items():
        if not _SLUG.match(family + "-v2v"):
            problems.append(
                f"openai_videos.remix_models.{family}: not a model family (provider/name)"
            )
        if slug and not _SLUG.match(slug):
            problems.append(
                f"openai_videos.remix_models.{family}: not a model slug (provider/model)"
            )
    return problems


def account_problems(settings: Settings) -> list[str]:
    """What stops ``upstream.accounts`` from working: a key file missing or unreadable, two
    accounts with the same key (read from their files too), a budget or admission override
    for a team no account bills when there is no default account."""
    problems: list[str] = []
    upstream = settings.upstream
    missing = False
    for name, account in upstream.accounts.items():
        path = account.api_key_file
        if path is not None and not path.is_file():
            problems.append(f"upstream.accounts.{name}.api_key_file: no such file {path}")
            missing = True
    if missing:
        return problems
    try:
        book = AccountBook.from_settings(settings)
    except OSError as exc:
        return [f"upstream.accounts: a key file cannot be read ({exc.strerror})"]
    except AccountError as exc:
        return [str(exc)]
    if book.default is None and upstream.accounts:
        for team in settings.admission.teams:
            if book.for_team(team) is None:
                problems.append(
                    f"admission.teams.{team}: no account bills team {team!r} "
                    "(list it in an upstream.accounts entry, or set upstream.default_account)"
                )
    return problems
