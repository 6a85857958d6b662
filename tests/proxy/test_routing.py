"""Path normalization and classification, without I/O: one route decision per raw path."""

from __future__ import annotations

import string
from urllib.parse import unquote

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from proxy.context import PathForm, RouteKind
from proxy.routing import API_PREFIX, Route, by_rules, classify, submit_path
from tests.pathspellings import spellings

SLUG = "minimax/hailuo-2.3-t2v"
SUBMIT = f"/api/v1/{SLUG}"
UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")


@pytest.mark.parametrize(
    "raw",
    [
        "/api/v1/minimax/hailuo-2.3-t2v",
        "/api/v1/./minimax/hailuo-2.3-t2v",
        "/api/v1/x/../minimax/hailuo-2.3-t2v",
        "/api/v1/minimax/./hailuo-2.3-t2v",
        "/api/v1/%2e/minimax/hailuo-2.3-t2v",
        "/api/v1/%2E/minimax/%2E/hailuo-2.3-t2v",
        "/api/v1/x/%2e%2E/minimax/hailuo-2.3-t2v",
        "/api/v1/x/.%2e/minimax/hailuo-2.3-t2v",
        "/api/v1/%6Dinimax/hailuo%2D2%2e3-t2v",
    ],
)
def test_submit_spellings_normalize_to_the_canonical_path(raw: str) -> None:
    """Dot segments and escaped unreserved characters collapse to the one submit path."""
    route = classify("POST", raw)
    assert route.kind is RouteKind.SUBMIT
    assert (route.slug, route.form, route.path) == (SLUG, PathForm.PLAIN, SUBMIT)
    assert route.target == submit_path(PathForm.PLAIN, SLUG, None)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("/api/v1/minimax/hailuo-2.3-t2v/", "bad_path"),  # trailing slash
        ("/api/v1//minimax/hailuo-2.3-t2v", "bad_path"),  # repeated slash
        ("/api/v1/minimax//hailuo-2.3-t2v", "bad_path"),
        ("/api/v1/minimax/hailuo-2.3-t2v/.", "bad_path"),  # would end in "/"
        ("/api/v1/minimax/hailuo-2.3-t2v/x/..", "bad_path"),
        ("/api/v1/../v1/minimax/hailuo-2.3-t2v", "bad_path"),  # climbs above /api/v1/
        ("/api/v1/%2e%2e/v1/minimax/hailuo-2.3-t2v", "bad_path"),
        ("/api/v1/minimax/../../v1/minimax/hailuo-2.3-t2v", "bad_path"),
        ("/api/v1/minimax;x=1/hailuo-2.3-t2v", "bad_path"),  # path parameters
        ("/api/v1/minimax/hailuo-2.3-t2v;", "bad_path"),
        ("/api/v1/minimax\\hailuo-2.3-t2v", "bad_path"),  # backslash
        ("/api/v1/minimax/hailuo-2.3-t2v#x", "bad_path"),
        ("/api/v1/minimax/hailuo-2.3-t2v%", "bad_path"),  # broken escape
        ("/api/v1/minimax/hailuo-2.3-t2v%2", "bad_path"),
        ("/api/v1/minimax/hailuo%zz", "bad_path"),
        ("/api/v1/minimax/hailu\u00f3", "bad_path"),  # raw non-ASCII
        ("/api/v1/minimax%2Fhailuo-2.3-t2v", "route_not_allowed"),  # %2F is not a separator
        ("/api/v1/minimax%2fhailuo-2.3-t2v", "route_not_allowed"),
        ("/api/v1/minimax/hailuo-2.3-t2v%2Fasync", "route_not_allowed"),
        ("/api/v1/minimax/hailu%C3%B3", "route_not_allowed"),  # escaped non-ASCII
        ("/api/v1/minimax/hailuo%3Bx", "route_not_allowed"),
        ("/api/v1/minimax/hailuo-2.3-t2v/sync", "route_not_allowed"),
        ("/api/v1/minimax", "route_not_allowed"),
        ("/api/v1/a/b/c/d/e", "route_not_allowed"),
        ("/api/v1/video/minimax/hailuo-2.3-t2v/async", "route_not_allowed"),
        ("/api/v1/Tasks/abc", "route_not_allowed"),  # reserved, whatever the case
        ("/api/v1/MEDIA/files", "route_not_allowed"),
        ("/api/v1/models/x", "route_not_allowed"),
        ("/api/v1/user/me", "route_not_allowed"),
        ("/api/v1/tasks", "route_not_allowed"),
        ("/api/v1/models", "method_not_allowed"),
        ("/api/v1/tasks/abc", "method_not_allowed"),
        ("/api/v1/apikey/validate", "method_not_allowed"),
    ],
)
def test_posts_that_are_no_submit_are_refused(raw: str, reason: str) -> None:
    """A POST that is not one of the three submit shapes after normalization is refused."""
    route = classify("POST", raw)
    assert route.kind is RouteKind.REFUSED
    assert route.refusal is not None
    assert route.refusal.reason == reason
    assert route.refusal.status == {"bad_path": 400, "route_not_allowed": 404}.get(reason, 405)


def test_outside_the_prefix_is_the_proxys_own() -> None:
    """Paths not literally under /api/v1/ are never API routes (case and escapes included)."""
    for raw in ("/healthz", "/readyz", "/API/V1/models", "/%61pi/v1/models", "/api/v1", "/"):
        assert classify("GET", raw).kind is RouteKind.OWN
    assert classify("GET", "http://h/api/v1/models").kind is RouteKind.OWN


@pytest.mark.parametrize(
    ("raw", "task_id", "path"),
    [
        ("/api/v1/tasks/task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/./tasks/task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/x/../tasks/task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/%74asks/task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/tasks/./task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/tasks/other/../task-1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/tasks/task%2D1", "task-1", "/api/v1/tasks/task-1"),
        ("/api/v1/tasks/folder/task", "folder/task", "/api/v1/tasks/folder/task"),
        ("/api/v1/tasks/folder%2Ftask", "folder/task", "/api/v1/tasks/folder%2Ftask"),
        ("/api/v1/tasks/folder%2ftask", "folder/task", "/api/v1/tasks/folder%2Ftask"),
        ("/api/v1/tasks/a%3Ab+c@d=e", "a:b+c@d=e", "/api/v1/tasks/a%3Ab+c@d=e"),
    ],
)
def test_every_spelling_of_a_task_read_is_a_poll(raw: str, task_id: str, path: str) -> None:
    """The poll's task id (what ownership is checked on) comes from the normalized path."""
    route = classify("GET", raw + "?x=1")
    assert (route.kind, route.task_id, route.path, route.query) == (
        RouteKind.POLL,
        task_id,
        path,
        "x=1",
    )
    assert route.target == f"{path}?x=1"


@pytest.mark.parametrize(
    "raw",
    [
        "/api/v1/tasks/task-1/",
        "/api/v1/tasks//task-1",
        "/api/v1/tasks/task-1/.",
        "/api/v1/tasks/a%2F..%2Ftask-1",  # an id that would climb once decoded
        "/api/v1/tasks/a%2F.%2Ftask-1",
        "/api/v1/tasks/a%2F%2Ftask-1",
        "/api/v1/tasks/task-1%2F",
        "/api/v1/tasks/task%00",
        "/api/v1/tasks/t%C3%A9",
        "/api/v1/tasks/a%5Cb",
        "/api/v1/tasks/" + "a" * 513,
    ],
)
def test_malformed_task_ids_are_refused(raw: str) -> None:
    """A task id no upstream id can be (empty, dot or climbing parts, odd bytes) is refused."""
    route = classify("GET", raw)
    assert route.kind is RouteKind.REFUSED
    assert route.refusal is not None
    assert route.refusal.status == 400


@pytest.mark.parametrize(
    ("method", "raw", "kind", "name"),
    [
        ("GET", "/api/v1/models", RouteKind.PASSTHROUGH, "/api/v1/models"),
        ("GET", "/api/v1/./models", RouteKind.PASSTHROUGH, "/api/v1/models"),
        ("GET", "/api/v1/apikey/validate", RouteKind.KEY_API, "/api/v1/apikey/validate"),
        ("GET", "/api/v1/team/./balance", RouteKind.KEY_API, "/api/v1/team/balance"),
        ("GET", "/api/v1/media/files", RouteKind.PASSTHROUGH, "/api/v1/media/files"),
        ("POST", "/api/v1/media/files", RouteKind.PASSTHROUGH, "/api/v1/media/files"),
        (
            "DELETE",
            "/api/v1/media/files/file-1",
            RouteKind.PASSTHROUGH,
            "/api/v1/media/files/{file_id}",
        ),
    ],
)
def test_allow_list(method: str, raw: str, kind: RouteKind, name: str) -> None:
    """The documented non-paid routes are forwarded, named by their template."""
    route = classify(method, raw)
    assert (route.kind, route.name) == (kind, name)


@pytest.mark.parametrize(
    ("method", "raw", "status", "allow"),
    [
        ("PUT", "/api/v1/models", 405, "GET"),
        ("HEAD", "/api/v1/models", 405, "GET"),
        ("DELETE", "/api/v1/media/files", 405, "GET, POST"),
        ("GET", "/api/v1/media/files/file-1", 405, "DELETE"),
        ("DELETE", "/api/v1/tasks/task-1", 405, "GET"),
        ("GET", SUBMIT, 405, "POST"),
        ("PUT", SUBMIT + "/async", 405, "POST"),
        ("GET", "/api/v1/Models", 404, None),
        ("GET", "/api/v1/models/", 400, None),
        ("GET", "/api/v1/anything/else/here", 404, None),
        ("DELETE", "/api/v1/media/files/a%2Fb", 400, None),
    ],
)
def test_everything_else_is_refused(method: str, raw: str, status: int, allow: str | None) -> None:
    """Unlisted routes are 404, listed ones with another method 405 (with Allow), bad paths 400."""
    route = classify(method, raw)
    assert route.kind is RouteKind.REFUSED
    assert route.refusal is not None
    assert (route.refusal.status, route.refusal.allow) == (status, allow)


def _reference(tail: str) -> list[str] | None:
    """RFC 3986 §6.2.2 then §5.2.4 done the slow, obvious way (None: it climbs above the root)."""
    decoded = []
    for segment in tail.split("/"):
        out = ""
        i = 0
        while i < len(segment):
            if segment[i] == "%":
                char = chr(int(segment[i + 1 : i + 3], 16))
                out += char if char in UNRESERVED else "%" + segment[i + 1 : i + 3].upper()
                i += 3
            else:
                out += segment[i]
                i += 1
        decoded.append(out)
    stack: list[str] = []
    for segment in decoded:
        if segment == "..":
            if not stack:
                return None
            stack.pop()
        elif segment != ".":
            stack.append(segment)
    return stack


SEGMENT_PARTS = st.sampled_from(
    [
        *("minimax", "hailuo-2.3-t2v", "tasks", "models", "async", "x", "A", "%2e", "%2E"),
        *("%2F", "%41", "%7e", "%3B", "%C3%A9", ".", "..", "", ";", "\\", "~", "+", ":", "%"),
        "é",
    ]
)
RAW_PATHS = st.lists(st.lists(SEGMENT_PARTS, min_size=1, max_size=3).map("".join), max_size=6)


BASES = [
    ["minimax", "hailuo-2.3-t2v"],
    ["minimax", "hailuo-2.3-t2v", "async"],
    ["text-to-video", "minimax", "hailuo-2.3-t2v", "async"],
    ["tasks", "task-0123"],
    ["tasks", "folder", "task"],
    ["models"],
    ["apikey", "validate"],
    ["team", "balance"],
    ["media", "files"],
    ["media", "files", "file-1"],
]
SPELLED = st.sampled_from(BASES).flatmap(spellings)
METHODS = st.sampled_from(["GET", "POST", "DELETE"])


@settings(max_examples=300, deadline=None)
@given(segments=RAW_PATHS, method=METHODS)
def test_random_paths_normalize_like_rfc_3986(segments: list[str], method: str) -> None:
    """An accepted path is the RFC normalization of the raw one and classifies the same again."""
    check_normalized(method, API_PREFIX + "/".join(segments))


@settings(max_examples=300, deadline=None)
@given(raw=SPELLED, method=METHODS)
def test_spellings_of_real_routes_normalize_like_rfc_3986(raw: str, method: str) -> None:
    """Edited spellings of every real route: refused, or the RFC normalization, stable."""
    check_normalized(method, raw)


def check_normalized(method: str, raw: str) -> None:
    route = classify(method, raw)
    if route.kind is RouteKind.REFUSED and route.refusal is not None:
        assert route.refusal.status in (400, 404, 405)
        return
    if not raw.startswith(API_PREFIX):
        assert route.kind is RouteKind.OWN
        return
    event(route.kind.value)
    assert route.kind is not RouteKind.OWN
    expected = _reference(raw.removeprefix(API_PREFIX))
    assert expected is not None
    assert all(expected)
    assert route.path == API_PREFIX + "/".join(expected)
    assert "//" not in route.path
    assert not route.path.endswith("/")
    assert not any(s in (".", "..") for s in route.path.split("/"))
    assert "%2E" not in route.path.upper()
    if route.kind is RouteKind.SUBMIT:
        assert route.slug is not None
        assert route.form is not None
        assert route.path == submit_path(route.form, route.slug, route.task_type)
    if route.kind is RouteKind.POLL:
        assert route.task_id == unquote(route.path.removeprefix("/api/v1/tasks/"))
    _same_again(route, method)


def _same_again(route: Route, method: str) -> None:
    again = classify(method, route.path)
    assert (again.kind, again.path, again.name, again.task_id, again.slug) == (
        route.kind,
        route.path,
        route.name,
        route.task_id,
        route.slug,
    )


ID_PARTS = st.sampled_from(
    [
        *("ins-1", "a", "A9", "_", "~", ":", "+", "@", "=", "-", ".", "..", "/", "%", "%41", "%2F"),
        "é",
    ]
)


@settings(max_examples=500, deadline=None)
@given(
    parts=st.lists(ID_PARTS, max_size=6),
    length=st.sampled_from([0, 1, 505, 506, 507, 520]),
    query=st.sampled_from(["", "a=1", "?"]),
)
def test_a_plain_poll_is_routed_as_the_rules_route_it(
    parts: list[str], length: int, query: str
) -> None:
    """The shortcut for a plain poll path gives the route the full rules give, field by field."""
    raw_path = "/api/v1/tasks/" + "".join(parts) + "x" * length
    target = f"{raw_path}?{query}" if query else raw_path
    assert classify("GET", target) == by_rules("GET", raw_path, query)
