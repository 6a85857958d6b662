"""File API: upload, list, delete."""

from __future__ import annotations

import aiohttp

from proxy.simulator import Simulator
from tests.simulator.conftest import Client, MakeClient

SimClient = tuple[Simulator, Client]
FILES = "/api/v1/media/files"


def _form(content: bytes, filename: str = "frame.png") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="image/png")
    return form


async def test_upload_list_delete(sim_client: SimClient) -> None:
    """An uploaded file is listed with its https URL and size, then deleted once."""
    _, client = sim_client
    response = await client.post(FILES, data=_form(b"\x89PNG" + b"0" * 96))
    assert response.status == 200
    data = (await response.json())["data"]
    assert set(data) == {"file_id", "type", "url", "filename", "size", "created_at"}
    assert data["url"].startswith("https://")
    assert (data["size"], data["filename"], data["type"]) == (100, "frame.png", "image/png")
    listed = (await (await client.get(FILES)).json())["data"]
    assert [f["file_id"] for f in listed["files"]] == [data["file_id"]]
    deleted = await client.delete(f"{FILES}/{data['file_id']}")
    assert deleted.status == 200
    again = await client.delete(f"{FILES}/{data['file_id']}")
    assert again.status == 404
    assert (await again.json())["message"] == f"File not found: {data['file_id']}"


async def test_list_limit_is_capped_at_100(sim_client: SimClient) -> None:
    """The ``limit`` query parameter never returns more than 100 files."""
    _, client = sim_client
    body = await (await client.get(FILES, params={"limit": "500"})).json()
    assert body["data"]["limit"] == 100


async def test_oversized_upload_is_413(make_client: MakeClient) -> None:
    """A file above the upload cap answers 413 in the upstream envelope."""
    sim, client = await make_client(max_upload_bytes=1024)
    response = await client.post(FILES, data=_form(b"0" * 2048))
    assert response.status == 413
    assert (await response.json())["code"] == 413
    assert sim.media == {}


async def test_upload_without_file_part_is_400(sim_client: SimClient) -> None:
    """A multipart upload without a ``file`` part answers 400."""
    _, client = sim_client
    form = aiohttp.FormData()
    form.add_field("other", b"x", filename="x.bin")
    response = await client.post(FILES, data=form)
    assert response.status == 400
