"""One route decision per request: normalize the raw path once, classify it, forward that.

Nothing reaches the upstream unless its normalized path is one of these:

- a **submit** (``POST``, one of the three published shapes): the full pipeline,
  and the upstream sees the canonical path of the pinned model;
- a **poll** (``GET /api/v1/tasks/{task_id}``, ids may contain ``/``): the
  ownership check runs on the id taken from the normalized path;
- an **allow-listed** non-paid route (models list, key validation, team
  balance, media files): forwarded with the normalized path.

Everything else under ``/api/v1/`` is refused before any upstream call. The
rules, applied to the raw request target (``request.raw_path``: nothing decoded):

1. The path must start with ``/api/v1/`` exactly as sent (case-sensitive, no
   percent-encoding in the prefix); anything else is not the API.
2. A ``#`` anywhere, or a character outside RFC 3986 ``pchar`` in the path
   (backslash, ``;`` path parameters, quotes, brackets, raw non-ASCII...), is
   refused (400 ``bad_path``).
3. ``%XX`` must be two hex digits (400 otherwise). An escaped unreserved
   character (``%2e``, ``%41``, ``%7E``) is decoded; any other escape (``%2F``,
   ``%3B``, ``%C3%A9``) stays encoded, upper-cased, inside its segment.
4. Dot segments (``.``, ``..``, once decoded) are removed as in RFC 3986
   §5.2.4, with ``/api/v1/`` as the root: a ``..`` that would climb above it is
   refused (400), and so is a path ending in a dot segment (it would end in ``/``).
5. Empty segments are refused (400): no ``//``, no trailing ``/``.
6. Route names are matched exactly (``/api/v1/Models`` is not the models
   list). Model slug segments may hold only unreserved characters; task and
   file ids, once decoded, only the characters the CLI allows in them.

The query string is not routed; it is forwarded as sent. The upstream client
sends the normalized path byte for byte (``Upstream.url`` never re-resolves it).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from urllib.parse import quote, unquote

from proxy.context import PathForm, RouteKind
from proxy.stores.admission_records import is_queue_id

API_PREFIX = "/api/v1/"
# First path segments the upstream uses for its own, non-model routes (compared lower-cased).
RESERVED_SEGMENTS = frozenset({"tasks", "models", "media", "apikey", "team", "files", "user"})
TASK_TYPES = frozenset({"text-to-image", "text-to-video", "image-to-image", "image-to-video"})
MAX_ID_LENGTH = 512

_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")
# RFC 3986 pchar without ";" (path parameters are refused); each "%" must start an escape.
_RAW_ALLOWED = _UNRESERVED | frozenset("!$&'()*+,=:@%")
_HEX = frozenset(string.hexdigits)
# What the official CLI accepts in a task id (besides "/"), and DSH in a media file id.
_ID_CHARS = _UNRESERVED | frozenset(":+@=")

POLL_NAME = "/api/v1/tasks/{task_id}"
# A poll path the rules leave as it is (nearly every one): one segment of id characters, no
# "%", not a dot segment (it does not start with "."), not over ``MAX_ID_LENGTH``.
_PLAIN_POLL = re.compile(
    rf"/api/v1/tasks/([A-Za-z0-9_~:+@=-][A-Za-z0-9._~:+@=-]{{0,{MAX_ID_LENGTH - 1}}})"
)
VALIDATE_NAME = "/api/v1/apikey/validate"
BALANCE_NAME = "/api/v1/team/balance"
MEDIA_NAME = "/api/v1/media/files"
MEDIA_FILE_NAME = "/api/v1/media/files/{file_id}"
SUBMIT_NAMES = {
    PathForm.PLAIN: "/api/v1/{provider}/{model}",
    PathForm.ASYNC: "/api/v1/{provider}/{model}/async",
    PathForm.TYPED: "/api/v1/{type}/{provider}/{model}/async",
}
# The upstream's documented non-paid routes with fixed segments: name -> methods -> kind.
_FIXED: dict[tuple[str, ...], tuple[str, dict[str, RouteKind]]] = {
    ("models",): ("/api/v1/models", {"GET": RouteKind.PASSTHROUGH}),
    ("apikey", "validate"): (VALIDATE_NAME, {"GET": RouteKind.KEY_API}),
    ("team", "balance"): (BALANCE_NAME, {"GET": RouteKind.KEY_API}),
    ("media", "files"): (MEDIA_NAME, {"GET": RouteKind.PASSTHROUGH, "POST": RouteKind.PASSTHROUGH}),
}


@dataclass(frozen=True, slots=True)
class PathRefusal:
    """Why a path is refused: 400 malformed, 404 not an allowed route, 405 wrong method."""

    status: int
    reason: str
    detail: str
    allow: str | None = None  # the methods the route does accept (405 only)


@dataclass(slots=True)  # not frozen: a frozen __init__ costs microseconds on every request
class Route:
    """What ``classify`` decided; read-only by convention once made."""

    kind: RouteKind
    form: PathForm | None = None
    provider: str | None = None
    model: str | None = None
    task_type: str | None = None
    task_id: str | None = None
    name: str = ""  # the route template (low-cardinality), "" when no route matched
    path: str = ""  # the normalized path: what is forwarded upstream
    query: str = ""  # the raw query string, without "?"
    refusal: PathRefusal | None = None
    file_id: str | None = None  # the decoded media file id (``MEDIA_FILE_NAME`` only)

    @property
    def slug(self) -> str | None:
        if self.provider is None or self.model is None:
            return None
        return f"{self.provider}/{self.model}"

    @property
    def target(self) -> str:
        """The normalized path and the client's query: the upstream request target."""
        return f"{self.path}?{self.query}" if self.query else self.path


class BadPath(ValueError):
    """The raw path breaks a normalization rule."""


def _refused(status: int, reason: str, detail: str, allow: str | None = None) -> Route:
    return Route(RouteKind.REFUSED, refusal=PathRefusal(status, reason, detail, allow))


def _decode_unreserved(segment: str) -> str:
    """``%XX`` of an unreserved character decoded; every other escape kept, upper-cased."""
    head, *escapes = segment.split("%")
    out = [head]
    for part in escapes:
        if len(part) < 2 or part[0] not in _HEX or part[1] not in _HEX:
            raise BadPath("'%' must be followed by two hex digits")
        char = chr(int(part[:2], 16))
        out.append(char if char in _UNRESERVED else f"%{part[:2].upper()}")
        out.append(part[2:])
    return "".join(out)


def normalize(tail: str) -> list[str]:
    """The segments of a raw path after ``/api/v1/``, normalized by the module's rules."""
    raw = tail.split("/")
    last = len(raw) - 1
    out: list[str] = []
    for i, segment in enumerate(raw):
        if not segment:
            raise BadPath("empty path segment ('//' or a trailing '/')")
        if not _RAW_ALLOWED.issuperset(segment):
            bad = next(c for c in segment if c not in _RAW_ALLOWED)
            raise BadPath(f"character {bad!r} is not allowed in a path")
        if "%" in segment:
            segment = _decode_unreserved(segment)
        if segment == "." or segment == "..":
            if i == last:
                raise BadPath("path ends with a dot segment")
            if segment == "..":
                if not out:
                    raise BadPath("'..' climbs above /api/v1/")
                out.pop()
            continue
        out.append(segment)
    return out


def _task_id(segments: list[str]) -> str | None:
    """The decoded task id, or ``None`` if it holds what no upstream id holds."""
    task_id = "/".join(segments)
    if "%" in task_id:
        task_id = unquote(task_id)
    if len(task_id) > MAX_ID_LENGTH:
        return None
    for part in task_id.split("/"):
        if not part or part == "." or part == ".." or not _ID_CHARS.issuperset(part):
            return None
    return task_id


def _not_allowed(path: str) -> Route:
    return _refused(404, "route_not_allowed", f"{path} is not a route this proxy forwards")


def _wrong_method(method: str, path: str, allow: str) -> Route:
    return _refused(405, "method_not_allowed", f"{method} is not allowed on {path}", allow)


def classify(method: str, raw_target: str) -> Route:
    """The route for a request, from its method and raw request target (path and query)."""
    if "#" in raw_target:
        return _refused(400, "bad_path", "'#' is not allowed in a request target")
    raw_path, _, query = raw_target.partition("?")
    if method == "GET" and (plain := _PLAIN_POLL.fullmatch(raw_path)) is not None:
        # What ``by_rules`` decides for it, without splitting and re-joining the path.
        return Route(RouteKind.POLL, None, None, None, None, plain[1], POLL_NAME, raw_path, query)
    return by_rules(method, raw_path, query)


def by_rules(method: str, raw_path: str, query: str) -> Route:
    """The route for a raw path (no ``#``, without its query), by the module's rules."""
    if not raw_path.startswith(API_PREFIX):
        return Route(RouteKind.OWN, path=raw_path, query=query)
    try:
        segments = normalize(raw_path[len(API_PREFIX) :])
    except BadPath as bad:
        return _refused(400, "bad_path", str(bad))
    path = API_PREFIX + "/".join(segments)
    head = segments[0]
    if head == "tasks" and len(segments) > 1:
        if method not in ("GET", "DELETE"):
            return _wrong_method(method, POLL_NAME, "GET")
        task_id = _task_id(segments[1:])
        if method == "DELETE" and (task_id is None or not is_queue_id(task_id)):
            # only the proxy's own queued submits can be cancelled (admission queue)
            return _wrong_method(method, POLL_NAME, "GET")
        if task_id is None:
            return _refused(400, "bad_path", "malformed task id")
        return Route(RouteKind.POLL, task_id=task_id, name=POLL_NAME, path=path, query=query)
    fixed = _FIXED.get(tuple(segments))
    if fixed is not None:
        name, methods = fixed
        kind = methods.get(method)
        if kind is None:
            return _wrong_method(method, name, ", ".join(methods))
        return Route(kind, name=name, path=path, query=query)
    if len(segments) == 3 and head == "media" and segments[1] == "files":
        if method != "DELETE":
            return _wrong_method(method, MEDIA_FILE_NAME, "DELETE")
        file_id = unquote(segments[2])
        if len(file_id) > MAX_ID_LENGTH or not _ID_CHARS.issuperset(file_id):
            return _refused(400, "bad_path", "malformed file id")
        return Route(
            RouteKind.PASSTHROUGH, name=MEDIA_FILE_NAME, path=path, query=query, file_id=file_id
        )
    return _submit(method, segments, path, query)


def _submit(method: str, segments: list[str], path: str, query: str) -> Route:
    """A submit in one of the three published shapes, or a refusal."""
    count = len(segments)
    if (
        count < 2
        or count > 4
        or segments[0].lower() in RESERVED_SEGMENTS
        or any(not _UNRESERVED.issuperset(s) for s in segments)
    ):
        return _not_allowed(path)
    if count == 2:
        form, provider, model, task_type = PathForm.PLAIN, segments[0], segments[1], None
    elif count == 3 and segments[2] == "async":
        form, provider, model, task_type = PathForm.ASYNC, segments[0], segments[1], None
    elif count == 4 and segments[0] in TASK_TYPES and segments[3] == "async":
        form, provider, model, task_type = PathForm.TYPED, segments[1], segments[2], segments[0]
    else:
        return _not_allowed(path)
    name = SUBMIT_NAMES[form]
    if method != "POST":
        return _wrong_method(method, name, "POST")
    return Route(
        RouteKind.SUBMIT, form, provider, model, task_type, name=name, path=path, query=query
    )


def submit_path(form: PathForm, slug: str, task_type: str | None) -> str:
    """The upstream path for a submit of ``slug`` in the client's own path form."""
    provider, model = slug.split("/", 1)
    base = f"{quote(provider, safe='')}/{quote(model, safe='')}"
    if form is PathForm.PLAIN:
        return f"{API_PREFIX}{base}"
    if form is PathForm.ASYNC:
        return f"{API_PREFIX}{base}/async"
    return f"{API_PREFIX}{task_type}/{base}/async"
