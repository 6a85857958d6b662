"""Every refusal on ``/v1/videos`` is OpenAI's envelope with OpenAI's status, refused before
any upstream call where nothing needs one; the upstream's own refusals and failures read as
OpenAI's; videos are their owner's only; content and remix say plainly what is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types import Video

from harness.ports import free_port
from harness.waits import wait_until
from tests.e2e.conftest import Stack

KEY = "Bearer sk-refusals-key-0001"
OTHER = "Bearer sk-refusals-key-0002"
ENVELOPE = {"message", "type", "param", "code"}
HAILUO = {"model": "hailuo-2.3", "prompt": "a fox", "seconds": "6", "size": "1280x720"}
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


async def call(
    http: aiohttp.ClientSession, method: str, url: str, key: str | None = KEY, **kw: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers = {"Authorization": key} if key else {}
    async with http.request(method, url, headers=headers, **kw) as resp:
        return resp.status, await resp.json(content_type=None), dict(resp.headers)


def refusal(status: int, doc: dict[str, Any], want: int) -> dict[str, Any]:
    """The ``error`` object of an OpenAI envelope answered with ``want``."""
    assert status == want, doc
    assert set(doc) == {"error"}
    assert set(doc["error"]) == ENVELOPE
    error: dict[str, Any] = doc["error"]
    return error


async def test_refusals_before_the_upstream(stack: Stack, session: aiohttp.ClientSession) -> None:
    """No key, unknown model, unknown argument, file_id, bad JSON, no prompt, a model that
    needs an image: each OpenAI's envelope and status, and nothing sent upstream."""
    url = f"{stack.proxy_url}/v1/videos"
    cases: list[tuple[dict[str, Any], str | None, int, str | None, str]] = [
        ({"json": HAILUO}, None, 401, None, "invalid_api_key"),
        ({"json": {**HAILUO, "model": "sora-2"}}, KEY, 404, "model", "model_not_found"),
        ({"json": {**HAILUO, "n": 2}}, KEY, 400, "n", "invalid_value"),
        (
            {"json": {**HAILUO, "input_reference": {"file_id": "file-1"}}},
            KEY, 400, "input_reference.file_id", "unsupported_parameter",
        ),
        ({"data": b"{not json", "headers": {"Content-Type": "application/json"}}, KEY, 400,
         None, "malformed_json"),
        ({"json": {"model": "hailuo-2.3"}}, KEY, 400, "prompt", "missing_required_parameter"),
        ({"json": {**HAILUO, "model": "hailuo-2.3-fast"}}, KEY, 400, "input_reference",
         "invalid_value"),
        ({"json": {**HAILUO, "size": "big"}}, KEY, 400, "size", "invalid_value"),
    ]  # fmt: skip
    for kwargs, key, status, param, code in cases:
        extra = kwargs.pop("headers", {})
        headers = {**extra, **({"Authorization": key} if key else {})}
        async with session.post(url, headers=headers, **kwargs) as resp:
            error = refusal(resp.status, await resp.json(content_type=None), status)
        assert (error["param"], error["code"]) == (param, code), error
    assert stack.sim.requests(method="POST") == []


async def test_upstream_refusal_failure_and_unknown_outcome(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    """The upstream's 400 is OpenAI's 400 with its message; a task that fails is a ``failed``
    video with an error; a submit sent without an answer is 504, not to be retried, naming the
    video, which then reads ``failed`` with ``submit_outcome_unknown``."""
    url = f"{stack.proxy_url}/v1/videos"
    body = {**HAILUO, "prompt": "a fox [sim:content_policy_submit]"}
    status, doc, _ = await call(session, "POST", url, json=body)
    assert "Content policy" in refusal(status, doc, 400)["message"]
    status, doc, _ = await call(
        session, "POST", url, json={**HAILUO, "prompt": "[sim:task_failed]"}
    )
    failing = Video.model_validate(doc)

    async def failed() -> bool:
        _, seen, _ = await call(session, "GET", f"{url}/{failing.id}")
        return bool(seen["status"] == "failed")

    await wait_until(failed, within=20, what="the failed video")
    _, seen, _ = await call(session, "GET", f"{url}/{failing.id}")
    assert Video.model_validate(seen).error is not None
    assert seen["error"]["code"] == "generation_failed"
    status, doc, headers = await call(
        session, "POST", url, json={**HAILUO, "prompt": "[sim:reset_after_create]"}
    )
    error = refusal(status, doc, 504)
    assert headers["x-should-retry"] == "false"
    video_id = error["message"].split("GET /v1/videos/")[1].split(" ")[0]
    status, seen, _ = await call(session, "GET", f"{url}/{video_id}")
    assert status == 200
    assert Video.model_validate(seen).status == "failed"
    assert seen["error"]["code"] == "submit_outcome_unknown"


async def test_a_video_is_its_owners_only(stack: Stack, session: aiohttp.ClientSession) -> None:
    """Another key gets 404 for every route of the video and an empty list."""
    url = f"{stack.proxy_url}/v1/videos"
    _, doc, _ = await call(session, "POST", url, json=HAILUO)
    video_id = doc["id"]
    for method, path in (
        ("GET", f"/{video_id}"),
        ("DELETE", f"/{video_id}"),
        ("GET", f"/{video_id}/content"),
        ("POST", f"/{video_id}/remix"),
    ):
        status, doc, _ = await call(session, method, url + path, OTHER, json={"prompt": "x"})
        assert refusal(status, doc, 404)["code"] == "not_found"
    _, listed, _ = await call(session, "GET", url, OTHER)
    assert listed["data"] == []
    _, listed, _ = await call(session, "GET", url)
    assert [v["id"] for v in listed["data"]] == [video_id]


async def test_content_variants_and_remix(stack: Stack, session: aiohttp.ClientSession) -> None:
    """Content of an unfinished video is 404 ``video_not_ready``; a thumbnail no model gives is
    404 ``variant_not_available``; an unknown variant 400; remix 400 ``unsupported_operation``."""
    url = f"{stack.proxy_url}/v1/videos"
    _, doc, _ = await call(session, "POST", url, json=HAILUO)
    video = f"{url}/{doc['id']}"
    status, doc, _ = await call(session, "GET", f"{video}/content")
    assert refusal(status, doc, 404)["code"] == "video_not_ready"

    async def done() -> bool:
        _, seen, _ = await call(session, "GET", video)
        return bool(seen["status"] == "completed")

    await wait_until(done, within=20, what="the completed video")
    status, doc, _ = await call(session, "GET", f"{video}/content", params={"variant": "thumbnail"})
    assert refusal(status, doc, 404)["code"] == "variant_not_available"
    status, doc, _ = await call(session, "GET", f"{video}/content", params={"variant": "gif"})
    assert refusal(status, doc, 400)["param"] == "variant"
    status, doc, _ = await call(session, "POST", f"{video}/remix", json={"prompt": "again"})
    assert refusal(status, doc, 400)["code"] == "unsupported_operation"


async def test_list_pages_in_both_orders(stack: Stack) -> None:
    """Five videos read back by the SDK's auto-paging two at a time, newest first by default
    and oldest first with ``order=asc``."""
    async with AsyncOpenAI(
        base_url=f"{stack.proxy_url}/v1", api_key=KEY.split()[1], max_retries=0
    ) as client:
        made = [
            (await client.videos.create(model="kling-v3", prompt=f"shot {i}", seconds="8")).id
            for i in range(5)
        ]
        newest = [v.id async for v in client.videos.list(limit=2)]
        oldest = [v.id async for v in client.videos.list(limit=2, order="asc")]
        first = await client.videos.list(limit=2)
    assert newest == made[::-1]
    assert oldest == made
    assert first.has_more
    assert [v.id for v in first.data] == made[:2:-1][:2]


async def test_unrouted_paths_under_v1_answer_in_openais_envelope(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    """A method or a path no route of the door takes: aiohttp's 405/404 in OpenAI's envelope
    (the ``Allow`` header kept), while the Modellix door keeps the upstream's envelope."""
    status, doc, headers = await call(session, "PUT", f"{stack.proxy_url}/v1/videos/video_1")
    assert refusal(status, doc, 405)["code"] == "method_not_allowed"
    assert "GET" in headers["Allow"]
    status, doc, _ = await call(session, "GET", f"{stack.proxy_url}/v1/videos/video_1/frames")
    assert refusal(status, doc, 404)["code"] == "not_found"
    status, doc, _ = await call(session, "GET", f"{stack.proxy_url}/elsewhere")
    assert status == 404
    assert doc["code"] == 404  # the upstream's envelope off the door


async def test_content_when_the_file_host_is_down(
    stack: Stack, session: aiohttp.ClientSession
) -> None:
    """A finished video whose result URL's host refuses connections: 502 in OpenAI's
    envelope, naming the video, and the proxy keeps serving."""
    stack.sim.config = stack.sim.config.model_copy(
        update={"file_origin": f"http://127.0.0.1:{free_port()}"}
    )
    url = f"{stack.proxy_url}/v1/videos"
    _, doc, _ = await call(session, "POST", url, json=HAILUO)
    video = f"{url}/{doc['id']}"

    async def done() -> bool:
        _, seen, _ = await call(session, "GET", video)
        return bool(seen["status"] == "completed")

    await wait_until(done, within=20, what="the completed video")
    status, doc, _ = await call(session, "GET", f"{video}/content")
    error = refusal(status, doc, 502)
    assert error["code"] == "upstream_unavailable"
    assert doc["error"]["message"].endswith(f"{video.rsplit('/', 1)[1]}.")
    status, _, _ = await call(session, "GET", video)
    assert status == 200
