"""File API: upload (sniffed PNG/JPEG/WebP, size bounds, quotas), list, delete."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from proxy.simulator import ManualClock, Simulator
from proxy.simulator.media import sniff
from tests.simulator.conftest import Client, MakeClient

SimClient = tuple[Simulator, Client]
FILES = "/api/v1/media/files"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 92
JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 60
WEBP = b"RIFF\x24\0\0\0WEBPVP8 " + b"\0" * 30


def _form(
    content: bytes, filename: str = "frame.png", declared: str = "image/png"
) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type=declared)
    return form


async def _upload(client: Client, content: bytes = PNG, **kw: str) -> aiohttp.ClientResponse:
    return await client.post(FILES, data=_form(content, **kw))


def test_sniff_recognises_the_three_formats_only() -> None:
    """PNG, JPEG and WebP are recognised from their bytes; anything else is not."""
    assert (sniff(PNG), sniff(JPEG), sniff(WEBP)) == ("image/png", "image/jpeg", "image/webp")
    for other in (b"GIF89a....", b"RIFF\0\0\0\0WAVE", b"%PDF-1.7", b"", b"\x89PN"):
        assert sniff(other) is None


async def test_upload_list_delete(sim_client: SimClient) -> None:
    """An uploaded file is listed with its https URL, sniffed type and size, then deleted once."""
    _, client = sim_client
    response = await _upload(client, JPEG, filename="frame.png", declared="image/png")
    assert response.status == 200
    data = (await response.json())["data"]
    assert set(data) == {"file_id", "type", "url", "filename", "size", "created_at", "expires_at"}
    assert data["url"].startswith("https://")
    assert (data["size"], data["filename"], data["type"]) == (len(JPEG), "frame.png", "image/jpeg")
    listed = (await (await client.get(FILES)).json())["data"]
    assert [f["file_id"] for f in listed["files"]] == [data["file_id"]]
    deleted = await client.delete(f"{FILES}/{data['file_id']}")
    assert deleted.status == 200
    assert (await deleted.json())["data"] == {"file_id": data["file_id"], "deleted": True}
    again = await client.delete(f"{FILES}/{data['file_id']}")
    assert again.status == 404
    assert (await again.json())["message"] == f"File not found: {data['file_id']}"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            b"GIF89a" + b"\0" * 50,
            "Invalid format: unsupported file type; PNG, JPEG or WebP expected",
        ),
        (b"", "Invalid parameters: parameter 'file' is empty"),
    ],
)
async def test_other_files_are_refused(sim_client: SimClient, content: bytes, message: str) -> None:
    """A file that is not PNG, JPEG or WebP, or an empty one, is refused 400."""
    sim, client = sim_client
    response = await _upload(client, content)
    assert response.status == 400
    assert await response.json() == {"code": 400, "message": message}
    assert sim.media == {}


async def test_list_limit_is_capped_at_100(sim_client: SimClient) -> None:
    """The ``limit`` query parameter never returns more than 100 files."""
    _, client = sim_client
    body = await (await client.get(FILES, params={"limit": "500"})).json()
    assert body["data"]["limit"] == 100


async def test_oversized_upload_is_413(make_client: MakeClient) -> None:
    """A file above the upload cap answers 413 in the upstream envelope."""
    sim, client = await make_client(max_upload_bytes=1024)
    response = await _upload(client, PNG + b"0" * 2048)
    assert response.status == 413
    assert (await response.json())["code"] == 413
    assert sim.media == {}
    assert sim.config.max_upload_bytes == 1024
    assert (await _upload(client, PNG)).status == 200


async def test_upload_without_file_part_is_400(sim_client: SimClient) -> None:
    """A multipart upload without a ``file`` part answers 400."""
    _, client = sim_client
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.bin")
    response = await client.post(FILES, data=form)
    assert response.status == 400


async def test_a_team_keeps_ten_files(sim_client: SimClient) -> None:
    """The eleventh file is refused until one is deleted."""
    _, client = sim_client
    ids = []
    for _ in range(10):
        response = await _upload(client)
        assert response.status == 200
        ids.append((await response.json())["data"]["file_id"])
    refused = await _upload(client)
    assert refused.status == 400
    assert (await refused.json())["message"].startswith("Invalid parameters: file limit of 10")
    assert (await client.delete(f"{FILES}/{ids[0]}")).status == 200
    assert (await _upload(client)).status == 200


async def test_files_expire_after_retention(sim_client: SimClient, clock: ManualClock) -> None:
    """A file is listed for 7 days, then gone (and its place in the quota freed)."""
    _, client = sim_client
    file_id = (await (await _upload(client)).json())["data"]["file_id"]
    clock.advance(7 * 86400 - 1)
    assert len((await (await client.get(FILES)).json())["data"]["files"]) == 1
    clock.advance(1)
    assert (await (await client.get(FILES)).json())["data"]["files"] == []
    assert (await client.delete(f"{FILES}/{file_id}")).status == 404


async def test_a_third_concurrent_upload_is_429(sim_client: SimClient) -> None:
    """With two uploads in flight for the team, a third answers 429 at once."""
    sim, client = sim_client
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield PNG
        await release.wait()

    async def slow_upload() -> int:
        form = aiohttp.FormData()
        form.add_field("file", slow_body(), filename="slow.png", content_type="image/png")
        async with client.post(FILES, data=form) as response:
            return response.status

    async with asyncio.timeout(10), asyncio.TaskGroup() as group:
        slow = [group.create_task(slow_upload()) for _ in range(2)]
        await sim.wait_until(lambda: sim.uploads_in_flight["default"] == 2)
        third = await _upload(client)
        assert third.status == 429
        assert (await third.json())["message"].startswith("Rate limit exceeded: at most 2")
        release.set()
    assert [task.result() for task in slow] == [200, 200]
    assert sim.counters.upload_refusals == 1
    assert sim.uploads_in_flight["default"] == 0
