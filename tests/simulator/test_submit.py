"""Submit: the three path forms, the envelope, and the upstream's own refusals."""

from __future__ import annotations

import pytest

from proxy.simulator import Simulator
from tests.simulator.conftest import HAILUO, Client, MakeClient, submit

SimClient = tuple[Simulator, Client]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/minimax/hailuo-2.3-t2v",
        "/api/v1/minimax/hailuo-2.3-t2v/async",
        "/api/v1/text-to-video/minimax/hailuo-2.3-t2v/async",
    ],
)
async def test_each_path_form_creates_a_task(sim_client: SimClient, path: str) -> None:
    """Every documented submit path form accepts the request and creates one task."""
    sim, client = sim_client
    answer = await submit(client, {"prompt": "a cat"}, path)
    assert answer["code"] == 0
    assert answer["data"]["model_id"] == "minimax-hailuo-2.3-t2v"
    assert list(sim.tasks) == [answer["data"]["task_id"]]


async def test_submit_envelope_is_exact(sim_client: SimClient) -> None:
    """The submit answer has exactly the upstream's fields, with get_result on our origin."""
    _, client = sim_client
    response = await client.post(HAILUO, json={"prompt": "a cat"})
    assert response.content_type == "application/json"
    answer = await response.json()
    task_id = answer["data"]["task_id"]
    origin = str(client.make_url("/")).rstrip("/")
    assert answer == {
        "code": 0,
        "message": "success",
        "data": {
            "status": "pending",
            "task_id": task_id,
            "model_id": "minimax-hailuo-2.3-t2v",
            "get_result": {"method": "GET", "url": f"{origin}/api/v1/tasks/{task_id}"},
        },
    }
    assert task_id.startswith("task-")


async def test_unknown_type_prefix_is_404(sim_client: SimClient) -> None:
    """The typed path form with a type outside the four known ones answers 404."""
    _, client = sim_client
    response = await client.post(
        "/api/v1/audio-to-video/minimax/hailuo-2.3-t2v/async", json={"prompt": "x"}
    )
    assert response.status == 404


async def test_unknown_model_is_404_with_upstream_message(sim_client: SimClient) -> None:
    """An unknown model answers 404 ``Model not found: provider/model``."""
    sim, client = sim_client
    response = await client.post("/api/v1/acme/nothing", json={"prompt": "x"})
    assert response.status == 404
    assert await response.json() == {"code": 404, "message": "Model not found: acme/nothing"}
    assert sim.counters.tasks_created == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Invalid parameters: parameter 'prompt' is required"),
        ({"prompt": ""}, "Invalid parameters: parameter 'prompt' is required"),
        (
            {"prompt": "x", "duration": 8},
            "Value out of range: parameter 'duration' must be one of [6, 10], got 8",
        ),
        (
            {"prompt": "x", "duration": 10, "resolution": "1080P"},
            "Invalid parameters: resolution '1080P' only supports duration 6, got 10",
        ),
        (
            {"prompt": "x", "duration": "6"},
            "Invalid format: parameter 'duration' must be an integer, got '6'",
        ),
    ],
)
async def test_bad_bodies_are_refused_400(
    sim_client: SimClient, body: dict[str, object], message: str
) -> None:
    """Obviously bad bodies are refused 400 with the upstream's category and no task."""
    sim, client = sim_client
    response = await client.post(HAILUO, json=body)
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": message}
    assert sim.counters.tasks_created == 0
    assert sim.counters.submits_received == 1


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
async def test_invalid_json_is_refused(sim_client: SimClient, raw: bytes) -> None:
    """A body that is not a JSON object answers 400 ``Invalid format: invalid JSON format``."""
    _, client = sim_client
    response = await client.post(HAILUO, data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": "Invalid format: invalid JSON format"}


async def test_image_to_video_requires_its_image(sim_client: SimClient) -> None:
    """An i2v model without its required image field is refused 400."""
    _, client = sim_client
    response = await client.post("/api/v1/minimax/hailuo-2.3-i2v", json={"prompt": "x"})
    body = await response.json()
    assert body["message"] == "Invalid parameters: parameter 'first_frame_image' is required"


async def test_task_ids_may_contain_a_slash(make_client: MakeClient) -> None:
    """With a ``folder/`` prefix the task id contains "/" and polls work raw or %2F-encoded."""
    _, client = await make_client(task_id_prefix="folder/")
    answer = await submit(client, {"prompt": "x"})
    task_id = answer["data"]["task_id"]
    assert task_id.startswith("folder/")
    for path in (f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id.replace('/', '%2F')}"):
        response = await client.get(path)
        assert response.status == 200
        assert (await response.json())["data"]["task_id"] == task_id


async def test_unknown_api_path_is_404_envelope(sim_client: SimClient) -> None:
    """A path no route serves answers 404 in the upstream envelope, counted as other."""
    sim, client = sim_client
    response = await client.get("/api/v1/nothing/here/at/all")
    assert response.status == 404
    assert (await response.json())["code"] == 404
    assert sim.counters.requests["other"] == 1


V2V = "/api/v1/bytedance/seedance-2.0-v2v"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/api/v1/bytedance/seedance-2.0-fast-i2v",
            {"prompt": "x", "resolution": "1080p"},
            "Value out of range: parameter 'resolution' must be one of ['480p', '720p'], "
            "got '1080p'",
        ),
        (
            V2V,
            {"prompt": "x", "video_urls": ["a", "b", "c", "d"]},
            "Value out of range: parameter 'video_urls' must have between 1 and 3 items, got 4",
        ),
        (
            V2V,
            {"prompt": "x", "video_urls": ["a", 5]},
            "Invalid format: parameter 'video_urls[1]' must be a string, got 5",
        ),
        (V2V, {"video_urls": ["a"]}, "Invalid parameters: parameter 'prompt' is required"),
        (
            V2V,
            {"prompt": "x", "video_urls": []},
            "Invalid parameters: parameter 'video_urls' is required",
        ),
        (
            HAILUO,
            {"prompt": "x" * 2001},
            "Value out of range: parameter 'prompt' must be between 1 and 2000 characters long, "
            "got 2001",
        ),
        (HAILUO, {"prompt": None}, "Invalid parameters: parameter 'prompt' is required"),
        (
            HAILUO,
            {"prompt": "x", "prompt_optimizer": "yes"},
            "Invalid format: parameter 'prompt_optimizer' must be a boolean, got 'yes'",
        ),
        (
            "/api/v1/kling/kling-v3-t2v",
            {"prompt": "x", "cfg_scale": 1.5},
            "Value out of range: parameter 'cfg_scale' must be between 0 and 1, got 1.5",
        ),
        (
            "/api/v1/bytedance/seedance-2.0-t2v",
            {"prompt": "x", "execution_expires_after": 60},
            "Value out of range: parameter 'execution_expires_after' must be between 3600 and "
            "259200, got 60",
        ),
        (
            "/api/v1/alibaba/wan2.7-i2v",
            {"first_frame": "ftp://x/y.png"},
            "Invalid format: parameter 'first_frame' must match '^(https?://|oss://|data:image/)', "
            "got 'ftp://x/y.png'",
        ),
        (
            "/api/v1/bytedance/seedance-2.0-t2v",
            {"prompt": "x", "fps": 30},
            "Value out of range: parameter 'fps' must be one of [24], got 30",
        ),
        (
            "/api/v1/openai/whisper-1",
            {"audio_url": "https://x/a.mp3", "temperature": "hot"},
            "Invalid format: parameter 'temperature' must be a number, got 'hot'",
        ),
    ],
)
async def test_published_schema_is_enforced(
    sim_client: SimClient, path: str, body: dict[str, object], message: str
) -> None:
    """The submit check follows the published schema, answering the upstream's categories."""
    sim, client = sim_client
    response = await client.post(path, json=body)
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": message}
    assert sim.counters.tasks_created == 0


async def test_unknown_fields_are_ignored(sim_client: SimClient) -> None:
    """Fields the schema does not name are accepted, as a lenient upstream does."""
    sim, client = sim_client
    body = {"prompt": "x", "whatever": {"deep": [1, 2]}, "fps": "nope"}
    await submit(client, body)
    assert sim.counters.tasks_created == 1


async def test_deeply_nested_body_is_refused_cleanly(sim_client: SimClient) -> None:
    """A body nested beyond the JSON parser's depth answers 400, never 500."""
    _, client = sim_client
    raw = b'{"prompt": "x", "a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(HAILUO, data=raw, headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": "Invalid format: invalid JSON format"}
