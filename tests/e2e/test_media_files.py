"""The File API through proxy keys: each key lists and deletes only the files it uploaded.

Simulator, recording relay and proxy run on loopback (``tests.e2e.recording``); every
upload goes upstream with the one upstream key, so upstream all files are one team's.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.catalog.imagebytes import png
from tests.e2e.recording import UPSTREAM_KEY, Guarded, ServerFactory, guarded

FILES = "/api/v1/media/files"
OWN_KEY = {"Authorization": f"Bearer {UPSTREAM_KEY}"}


async def upload(http: aiohttp.ClientSession, g: Guarded, auth: dict[str, str]) -> str:
    form = aiohttp.FormData()
    form.add_field("file", png(64, 64), filename="ref.png", content_type="image/png")
    async with http.post(f"{g.proxy_url}{FILES}", data=form, headers=auth) as resp:
        doc = await resp.json()
        assert resp.status == 200, doc
    file_id: str = doc["data"]["file_id"]
    return file_id


async def listed(
    http: aiohttp.ClientSession, g: Guarded, auth: dict[str, str], query: str = ""
) -> dict[str, Any]:
    async with http.get(f"{g.proxy_url}{FILES}{query}", headers=auth) as resp:
        doc: dict[str, Any] = await resp.json()
        assert resp.status == 200, doc
    assert (doc["code"], doc["message"]) == (0, "success")
    data: dict[str, Any] = doc["data"]
    return data


def ids(data: dict[str, Any]) -> list[str]:
    return [f["file_id"] for f in data["files"]]


async def delete(
    http: aiohttp.ClientSession, g: Guarded, auth: dict[str, str], file_id: str
) -> tuple[int, dict[str, Any]]:
    async with http.delete(f"{g.proxy_url}{FILES}/{file_id}", headers=auth) as resp:
        doc: dict[str, Any] = await resp.json()
        return resp.status, doc


async def test_each_proxy_key_sees_and_deletes_only_its_own_files(
    aiohttp_server: ServerFactory,
) -> None:
    """B's list lacks A's file and B's delete of it is a 404 never sent upstream; A lists and
    deletes it; the caller's own upstream key still sees the upstream's list unchanged."""
    g = await guarded(aiohttp_server, "mixed")
    _, token_a = await g.key(team="studio-a")
    _, token_b = await g.key(team="studio-b")
    _, token_a2 = await g.key(team="studio-a")
    key_a = {"Authorization": f"Bearer {token_a}"}
    key_b = {"Authorization": f"Bearer {token_b}"}
    key_a2 = {"Authorization": f"Bearer {token_a2}"}
    async with aiohttp.ClientSession() as http:
        a_first = await upload(http, g, key_a)
        b_file = await upload(http, g, key_b)
        a_second = await upload(http, g, key_a)
        own_file = await upload(http, g, OWN_KEY)
        assert set(g.sim.media) == {a_first, b_file, a_second, own_file}

        b_list = await listed(http, g, key_b)
        assert (ids(b_list), b_list["total"]) == ([b_file], 1)
        a_list = await listed(http, g, key_a)
        assert (ids(a_list), a_list["total"]) == ([a_second, a_first], 2)  # newest first
        assert a_list["files"][0]["url"].endswith("/ref.png")
        # The client's limit applies to the key's own files, not to the team's page.
        a_page = await listed(http, g, key_a, "?limit=1")
        assert (ids(a_page), a_page["total"], a_page["limit"]) == ([a_second], 2, 1)
        assert await listed(http, g, key_a2) == {"files": [], "total": 0, "limit": 100}

        sent = len(g.relay.received)
        for other in (key_b, key_a2):  # another team's key, and another key of the same team
            status, doc = await delete(http, g, other, a_first)
            assert (status, doc["code"], doc["error_type"]) == (404, 404, "file_not_owned"), doc
            assert doc["message"].startswith("Not found: "), doc
        status, doc = await delete(http, g, key_a, own_file)  # uploaded with the upstream key
        assert (status, doc["error_type"]) == (404, "file_not_owned")
        assert len(g.relay.received) == sent  # none of them went upstream
        assert a_first in g.sim.media

        status, doc = await delete(http, g, key_a, a_first)
        assert (status, doc["data"]) == (200, {"file_id": a_first, "deleted": True}), doc
        assert a_first not in g.sim.media
        assert await g.store.media_file_owner(a_first) is None
        assert ids(await listed(http, g, key_a)) == [a_second]

        # The caller's own Modellix key passes through: the upstream's whole list, its deletes.
        own_list = await listed(http, g, OWN_KEY)
        assert set(ids(own_list)) == {b_file, a_second, own_file}
        assert own_list["total"] == 3
        status, _ = await delete(http, g, OWN_KEY, own_file)
        assert status == 200
        assert own_file not in g.sim.media
    assert g.relay.carrying("mlx-vk-") == []


async def test_an_upload_answer_survives_a_store_failure(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """When the owner cannot be recorded, the client still gets the upstream's file id."""
    db = tmp_path / "proxy.db"
    g = await guarded(aiohttp_server, "virtual", store={"url": f"sqlite:///{db}"})
    _, token = await g.key(team="studio-a")
    with sqlite3.connect(db) as conn:  # the table goes away under the running proxy
        conn.execute("DROP TABLE media_files")
    async with aiohttp.ClientSession() as http:
        file_id = await upload(http, g, {"Authorization": f"Bearer {token}"})
    assert file_id in g.sim.media


@pytest.mark.parametrize("query", ["?limit=0", "?limit=x"])
async def test_a_bad_limit_is_the_upstreams_to_refuse(
    aiohttp_server: ServerFactory, query: str
) -> None:
    """A limit the proxy cannot apply goes upstream as sent, and the upstream's 400 comes back."""
    g = await guarded(aiohttp_server, "virtual")
    _, token = await g.key(team="studio-a")
    async with aiohttp.ClientSession() as http:
        url = f"{g.proxy_url}{FILES}{query}"
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 400, await resp.text()
    assert g.relay.received[-1].path_qs == f"{FILES}{query}"
