"""Nothing is bought, or read, outside the pipeline, whatever the path looks like.

A recording relay between the proxy and the simulator keeps every request as it
was on the wire. For generated spellings of every route (dot segments plain and
escaped, escaped letters, ``%2F``, ``//``, trailing ``/``, case, ``;``,
backslash, non-ASCII, ``..`` climbing, a mangled prefix), sent byte for byte,
the upstream either receives nothing, or exactly the request the proxy approved:
for a submit, the canonical path of the pinned model and a ledger row for its
task; otherwise an allow-listed path. The proxy runs in virtual-key mode under a
per-key budget, so a bypass would also show as a task without a ledger row.

How hypothesis meets asyncio here: pytest-asyncio drives each example of the
``async`` ``@given`` test on the test's own loop, so one stack serves every
example (the ``function_scoped_fixture`` health check is suppressed on purpose).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from proxy.config import UpstreamSettings
from proxy.context import RouteKind
from proxy.routing import classify, submit_path
from proxy.simulator import Simulator, SimulatorConfig, build_app
from proxy.telemetry.metrics import Metrics
from proxy.upstream.client import Upstream
from tests.e2e.recording import (
    UPSTREAM_KEY,
    Guarded,
    RecordingRelay,
    ServerFactory,
    guarded,
    key_budget,
)
from tests.e2e.test_client_flow import HAILUO
from tests.pathspellings import issue_spellings, spellings

SLUG = "minimax/hailuo-02-t2v"  # $0.324 at 6 s 768P
SUBMIT = f"/api/v1/{SLUG}"
JOB = 324_000
UPSTREAM_AUTH = f"Bearer {UPSTREAM_KEY}"
ALLOWED = {
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/apikey/validate"),
    ("GET", "/api/v1/team/balance"),
    ("GET", "/api/v1/media/files"),
    ("POST", "/api/v1/media/files"),
}
PROPERTY = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@dataclass
class Keyed:
    """The guarded stack, two proxy keys, and a job of the first one."""

    g: Guarded
    owner: str
    other: str
    task_id: str
    approved: set[str] = field(default_factory=set)  # task ids the pipeline recorded


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> dict[str, Any]:
        doc = json.loads(self.body)
        assert isinstance(doc, dict)
        return doc


async def send(base: str, method: str, target: str, token: str, body: bytes = b"") -> Answer:
    """One request written byte for byte, so the proxy sees exactly this spelling."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n".encode()
            + f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n".encode()
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        async with asyncio.timeout(10):
            raw = await reader.read()
    finally:
        writer.close()
    head, _, payload = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" in head.lower():
        payload = dechunk(payload)
    return Answer(int(head.split(b" ", 2)[1]), payload)


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


@pytest.fixture
async def keyed(aiohttp_server: ServerFactory) -> Keyed:
    g = await guarded(aiohttp_server, "virtual")
    owner_id, owner = await g.key(team="studio-a")
    other_id, other = await g.key(team="studio-b")
    await key_budget(g, owner_id, "20")
    await key_budget(g, other_id, "20")
    # The upstream's model list, fetched now with the watcher key: else the first unknown
    # slug would fetch it mid-spelling (a GET of the list, not a bypass, but a new request).
    assert await g.runtime.pinner.listing.ensure(None)
    answer = await send(g.proxy_url, "POST", SUBMIT, owner, json.dumps(HAILUO).encode())
    assert answer.status == 200, answer.body
    task_id: str = answer.json()["data"]["task_id"]
    return Keyed(g, owner, other, task_id, {task_id})


async def exchange(k: Keyed, method: str, target: str, token: str) -> Answer:
    """Send one spelling; check that the upstream got nothing or exactly what was approved."""
    g = k.g
    seen_before = len(g.relay.received)
    created_before = g.sim.counters.tasks_created
    body = json.dumps(HAILUO).encode() if method == "POST" else b""
    answer = await send(g.proxy_url, method, target, token, body)
    new = g.relay.received[seen_before:]
    assert answer.status < 500, (method, target, answer)
    assert len(new) <= 1, (method, target, new)
    route = classify(method, target)  # the proxy's decision, recomputed
    if currently_in_test_context():
        event(f"{method} {route.kind.value} {answer.status}" + (" forwarded" if new else ""))
    if not new:
        assert g.sim.counters.tasks_created == created_before
        return answer
    [seen] = new
    assert seen.header("Authorization") == [UPSTREAM_AUTH]
    assert route.kind in (RouteKind.SUBMIT, RouteKind.POLL, RouteKind.PASSTHROUGH), route
    if route.kind is RouteKind.SUBMIT:
        assert answer.status in (200, 402), answer  # 402: the upstream's own, not a bypass
        assert route.slug == SLUG
        assert route.form is not None
        assert seen.method == "POST"
        canonical = submit_path(route.form, SLUG, route.task_type)
        assert seen.path_qs == (f"{canonical}?{route.query}" if route.query else canonical)
        if answer.status == 200:
            task_id = answer.json()["data"]["task_id"]
            job = await g.store.get_job(task_id)
            assert job is not None, "a task the ledger does not know"
            assert job.pinned_slug == SLUG
            k.approved.add(task_id)
    else:
        assert (seen.method, seen.path_qs) == (method, route.target)
        if route.kind is RouteKind.POLL:
            assert method == "GET"
            assert token == k.owner, "a poll by a key that owns no task reached the upstream"
            assert route.task_id == k.task_id
        else:
            assert (method, seen.path) in ALLOWED or (
                method == "DELETE" and seen.path.startswith("/api/v1/media/files/")
            ), seen
    assert g.sim.counters.tasks_created == len(k.approved)
    return answer


ROUTES: list[tuple[str, list[str]]] = [
    ("POST", ["minimax", "hailuo-02-t2v"]),
    ("POST", ["minimax", "hailuo-02-t2v", "async"]),
    ("POST", ["text-to-video", "minimax", "hailuo-02-t2v", "async"]),
    ("GET", ["tasks", "TASK"]),
    ("GET", ["models"]),
    ("GET", ["apikey", "validate"]),
    ("GET", ["team", "balance"]),
    ("GET", ["media", "files"]),
    ("DELETE", ["media", "files", "file-0"]),
]
OTHER_METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, list[str], str]:
    method, segments = draw(st.sampled_from(ROUTES))
    if draw(st.integers(0, 5)) == 0:
        method = draw(OTHER_METHODS)
    return method, segments, draw(st.sampled_from(["owner", "other"]))


@PROPERTY
@given(request=requests(), data=st.data())
async def test_upstream_sees_nothing_or_exactly_what_was_approved(
    keyed: Keyed, request: tuple[str, list[str], str], data: st.DataObject
) -> None:
    """Any spelling of any route: the upstream gets nothing, or the approved request."""
    method, segments, who = request
    segments = [keyed.task_id if s == "TASK" else s for s in segments]
    target = data.draw(spellings(segments))
    if data.draw(st.booleans()):
        target += "?page=1"
    token = keyed.owner if who == "owner" else keyed.other
    await exchange(keyed, method, target, token)


def task_spellings(task_id: str) -> list[str]:
    p = "/api/v1/"
    hexed = "".join(f"%{ord(c):02X}" for c in task_id)
    return [
        f"{p}tasks/{task_id}",
        f"{p}./tasks/{task_id}",
        f"{p}tasks/./{task_id}",
        f"{p}x/../tasks/{task_id}",
        f"{p}%2e/tasks/%2E/{task_id}",
        f"{p}%74asks/{task_id}",
        f"{p}tasks/{hexed}",
        f"{p}tasks/{task_id}?x=1",
        f"{p}tasks/x/../{task_id}",
        f"{p}tasks/x/%2e%2e/{task_id}",
        f"{p}tasks/{task_id}/",
        f"{p}tasks//{task_id}",
        f"{p}tasks/{task_id}/.",
        f"{p}tasks/{task_id}/x/..",
        f"{p}tasks/{task_id}%2F",
        f"{p}tasks/x%2F..%2F{task_id}",
        f"{p}tasks/{task_id};x",
        f"{p}tasks\\{task_id}",
        f"{p}TASKS/{task_id}",
        f"{p}Tasks/{task_id}",
        f"{p}../v1/tasks/{task_id}",
        f"/API/V1/tasks/{task_id}",
        f"/%61pi/v1/tasks/{task_id}",
        f"/api/v1//tasks/{task_id}",
        f"{p}tasks/{task_id}%00",
    ]


async def test_no_spelling_lets_one_key_read_another_keys_task(keyed: Keyed) -> None:
    """Key 2 polling key 1's task in any spelling never gets it; key 1 does when it is a poll."""
    spelled = task_spellings(keyed.task_id)
    owner_reads = 0
    for target in spelled:
        answer = await exchange(keyed, "GET", target, keyed.other)
        assert answer.status in (400, 404, 405), (target, answer)
        mine = await exchange(keyed, "GET", target, keyed.owner)
        if classify("GET", target).kind is RouteKind.POLL:
            assert mine.status == 200, (target, mine)
            assert mine.json()["data"]["task_id"] == keyed.task_id
            owner_reads += 1
        else:
            assert mine.status in (400, 404, 405), (target, mine)
    assert owner_reads == 10  # the spellings that are polls: the first ten above


async def test_the_issues_submit_spellings_go_through_the_pipeline(keyed: Keyed) -> None:
    """Each spelling the issue names is either a pipeline submit with a ledger row, or refused."""
    bought = 0
    for target in issue_spellings(SUBMIT):
        answer = await exchange(keyed, "POST", target, keyed.owner)
        route = classify("POST", target)
        if route.kind is RouteKind.SUBMIT and route.slug == SLUG:
            assert answer.status == 200, (target, answer)
            bought += 1
        else:
            assert answer.status in (400, 404, 405), (target, answer)
    assert bought == 12
    assert keyed.g.sim.counters.tasks_created == len(keyed.approved) == bought + 1


async def test_the_upstream_client_sends_a_path_byte_for_byte(
    aiohttp_server: ServerFactory,
) -> None:
    """``Upstream`` sends the path it is given unchanged: no dot resolution, no re-encoding."""
    sim = Simulator(SimulatorConfig.fast())
    sim_url = (await aiohttp_server(build_app(sim))).make_url("")
    relay = RecordingRelay(sim_url)
    origin = str((await aiohttp_server(relay.app())).make_url("")).rstrip("/")
    upstream = Upstream(UpstreamSettings(origin=origin), Metrics())
    await upstream.start()
    try:
        for target in (
            "/api/v1/x/../models",
            "/api/v1/./models?q=/../x",
            "/api/v1/%2e%2e/%2E/models",
            "/api/v1//models/",
            "/api/v1/tasks/a%2Fb%3A~",
            "/api/v1/a\\b",
        ):
            await upstream.fetch("GET", target, {"Authorization": UPSTREAM_AUTH}, None, "test")
            assert relay.received[-1].path_qs == target
    finally:
        await upstream.close()
