"""Which pipeline a request path belongs to.

The upstream keeps every route under ``/api/v1``. A POST whose path names a
model is a paid submit, in one of three published forms; ``GET
/api/v1/tasks/{task_id}`` (ids may contain ``/``) is a poll; everything else
under ``/api/v1`` passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from proxy.context import PathForm, RouteKind

API_PREFIX = "/api/v1/"
# First path segments the upstream uses for its own, non-model routes.
RESERVED_SEGMENTS = frozenset({"tasks", "models", "media", "apikey", "team", "files", "user"})
TASK_TYPES = frozenset({"text-to-image", "text-to-video", "image-to-image", "image-to-video"})


@dataclass(frozen=True, slots=True)
class Route:
    kind: RouteKind
    form: PathForm | None = None
    provider: str | None = None
    model: str | None = None
    task_type: str | None = None
    task_id: str | None = None

    @property
    def slug(self) -> str | None:
        if self.provider is None or self.model is None:
            return None
        return f"{self.provider}/{self.model}"


def classify(method: str, raw_path: str) -> Route:
    """The route for a request, from its method and raw (still percent-encoded) path."""
    if not raw_path.startswith(API_PREFIX):
        return Route(RouteKind.OWN)
    tail = raw_path[len(API_PREFIX) :]
    if method == "GET" and tail.startswith("tasks/") and len(tail) > len("tasks/"):
        return Route(RouteKind.POLL, task_id=unquote(tail[len("tasks/") :]))
    if method != "POST":
        return Route(RouteKind.PASSTHROUGH)
    segments = [unquote(s) for s in tail.split("/")]
    if any(not s for s in segments) or segments[0] in RESERVED_SEGMENTS:
        return Route(RouteKind.PASSTHROUGH)
    if len(segments) == 2:
        return Route(RouteKind.SUBMIT, PathForm.PLAIN, segments[0], segments[1])
    if len(segments) == 3 and segments[2] == "async":
        return Route(RouteKind.SUBMIT, PathForm.ASYNC, segments[0], segments[1])
    if len(segments) == 4 and segments[0] in TASK_TYPES and segments[3] == "async":
        return Route(RouteKind.SUBMIT, PathForm.TYPED, segments[1], segments[2], segments[0])
    return Route(RouteKind.PASSTHROUGH)


def submit_path(form: PathForm, slug: str, task_type: str | None) -> str:
    """The upstream path for a submit of ``slug`` in the client's own path form."""
    from urllib.parse import quote

    provider, model = slug.split("/", 1)
    base = f"{quote(provider, safe='')}/{quote(model, safe='')}"
    if form is PathForm.PLAIN:
        return f"{API_PREFIX}{base}"
    if form is PathForm.ASYNC:
        return f"{API_PREFIX}{base}/async"
    return f"{API_PREFIX}{task_type}/{base}/async"
