"""Published schemas, with a real proxy process in front of the simulator's two origins.

Models the upstream lists outside the catalog are validated by their published schema
before any upstream call; a field the published schema accepts (Seedance ``fps``) passes; a
schema changed upstream is reported and, under ``hold``, applied only once accepted; with
the schema origin down nothing extra is refused.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.ports import free_ports
from harness.processes import ProxyProcess, start_proxy
from harness.waits import wait_until
from proxy.simulator import Simulator, SimulatorConfig, build_app, build_schema_app
from tests.docs_examples import REPO, commands, fences
from tests.e2e.conftest import ServerFactory
from tests.e2e.test_audit_coverage import AUDIT_OFF
from tests.stores.helpers import raw_query

pytestmark = pytest.mark.slow
KEY = {"Authorization": "Bearer sk-schema-test-key-0001"}
ADMIN = "schema-admin-token"
BIN = Path(sys.executable).parent
#: docs/schemas.md's sh lines, run here: schemas list, schemas accept, the curl of the schema.
DOC_COMMANDS = [
    c for f in fences(REPO / "docs" / "schemas.md") if f.language == "sh" for c in commands(f.text)
]

#: Upstream-listed models outside the catalog, each with invalid bodies (and the field the
#: published schema names in its first reason) and one valid body.
CASES: dict[str, tuple[list[tuple[dict[str, Any], str]], dict[str, Any]]] = {
    "vidu/vidu-q3-t2v": (
        [
            ({}, "prompt"),
            ({"prompt": "x", "foo": 1, "duration": "abc"}, "duration"),
            ({"prompt": "x", "resolution": "4k"}, "resolution"),
            ({"prompt": "x", "duration": 99}, "duration"),
        ],
        {"prompt": "a fox", "duration": 5, "resolution": "720p"},
    ),
    "google/veo-3.1-fast-t2v": (
        [
            ({}, "prompt"),
            ({"prompt": "x", "duration": 5}, "duration"),
            ({"prompt": "x", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ],
        {"prompt": "a fox", "duration": 8},
    ),
    "pixverse/pixverse-v5-t2v": (
        [
            ({"duration": 5}, "prompt"),
            ({"prompt": "x", "quality": "8k"}, "quality"),
            ({"prompt": "", "duration": 5}, "prompt"),
        ],
        {"prompt": "a fox", "quality": "540p"},
    ),
    "alibaba/qwen-audio-3.0-tts-flash": (
        [
            ({"prompt": "hello"}, "text"),
            ({"text": 5}, "text"),
            ({"text": "hi", "voice": "Nobody"}, "voice"),
        ],
        {"text": "hello there", "voice": "Ethan"},
    ),
    "openai/whisper-1": (
        [
            ({}, "audio_url"),
            ({"audio_url": "ftp://example.com/a.mp3"}, "audio_url"),
            ({"audio_url": "https://example.com/a.mp3", "temperature": 3}, "temperature"),
        ],
        {"audio_url": "https://example.com/a.mp3", "language": "en"},
    ),
}


@pytest.fixture
async def sim_origins(aiohttp_server: ServerFactory) -> tuple[Simulator, TestServer, TestServer]:
    sim = Simulator(SimulatorConfig.fast(concurrency_limit=0))
    api = await aiohttp_server(build_app(sim))
    schemas = await aiohttp_server(build_schema_app(sim))
    return sim, api, schemas


def _origin(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def schema_env(api: str, schemas: str, store: str, **extra: str) -> dict[str, str]:
    return proxy_env(
        api,
        store,
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ENABLED="true",
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__ORIGIN=schemas,
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__REFRESH_SECONDS="1",
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__SYNC_SECONDS="0.3",
        MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__RETRY_SECONDS="1",
        MODELLIX_PROXY_ADMIN__TOKEN=ADMIN,
        **extra,
    )


async def _submit(
    http: aiohttp.ClientSession, proxy: ProxyProcess, slug: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    async with http.post(f"{proxy.url}/api/v1/{slug}", json=body, headers=KEY) as resp:
        return resp.status, await resp.json()


async def _admin(http: aiohttp.ClientSession, proxy: ProxyProcess, path: str) -> Any:
    url = f"http://127.0.0.1:{proxy.admin_port}{path}"
    async with http.get(url, headers={"Authorization": f"Bearer {ADMIN}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _pinned(http: aiohttp.ClientSession, proxy: ProxyProcess, slugs: list[str]) -> bool:
    listing = await _admin(http, proxy, "/admin/schemas")
    return set(slugs) <= {m["model"] for m in listing["models"]}


async def test_listed_models_validated_by_their_published_schema(
    sim_origins: tuple[Simulator, TestServer, TestServer], tmp_path: Path
) -> None:
    sim, api, schemas = sim_origins
    store = f"sqlite:///{tmp_path / 'schemas.db'}"
    proxy = await start_proxy(
        schema_env(_origin(api), _origin(schemas), store), tmp_path / "proxy.log"
    )
    try:
        async with aiohttp.ClientSession() as http:
            compared = ["bytedance/seedance-2.0-t2v", "minimax/hailuo-02-i2v"]
            await wait_until(lambda: _pinned(http, proxy, [*CASES, *compared]), within=30)
            for slug, (invalid, valid) in CASES.items():
                for body, field in invalid:
                    before = sim.counters.submits_received
                    status, answer = await _submit(http, proxy, slug, body)
                    assert status == 400, (slug, body, answer)
                    errors = answer["errors"]
                    assert errors[0]["field"] == field, (slug, body, errors)
                    assert {e["rule_status"] for e in errors} == {"upstream-schema"}
                    assert sim.counters.submits_received == before, (slug, body)
                status, answer = await _submit(http, proxy, slug, valid)
                assert status == 200, (slug, answer)
                assert answer["data"]["task_id"]
            # A field the published schema accepts passes.
            status, answer = await _submit(
                http, proxy, "bytedance/seedance-2.0-t2v", {"prompt": "a fox", "fps": 24}
            )
            assert status == 200, answer
            # Where the catalog spec disagrees with the published schema (Hailuo 02 i2v's
            # published 512P, which the spec's resolution enum lacks), it is reported.
            shown = await _admin(http, proxy, "/admin/schemas/minimax/hailuo-02-i2v")
            assert "resolution" in {d["field"] for d in shown["catalog_disagreements"]}
            metrics = await _metrics(http, proxy)
            assert (
                'modellix_proxy_schema_catalog_disagreements{model="minimax/hailuo-02-i2v"}'
                in metrics
            )
            # The model list: what the upstream lists, each with what validates it.
            async with http.get(f"{proxy.url}/api/v1/models", headers=KEY) as resp:
                listed = {m["slug"]: m for m in (await resp.json())["models"]}
            assert set(listed) == {item["slug"] for item in sim.listing.items()}
            assert listed["vidu/vidu-q3-t2v"]["proxy_validation"] == "upstream-schema"
            # The CLI's get-schema path answers the pinned document, no key needed.
            url = f"{proxy.url}/models/vidu/vidu-q3-t2v/api_schema"
            async with http.get(url) as resp:
                assert resp.status == 200
                document = await resp.json()
            # Its endpoint names the proxy, so a client following it stays behind the proxy.
            assert document["servers"][0]["url"] == f"{proxy.url}/api/v1/vidu/vidu-q3-t2v"
            assert (
                "prompt"
                in document["post"]["requestBody"]["content"]["application/json"]["schema"][
                    "properties"
                ]
            )
            async with http.get(f"{proxy.url}/models/acme/nothing/api_schema") as resp:
                assert resp.status == 404
                assert (await resp.json())["message"] == "Model not found: acme/nothing"
    finally:
        await proxy.kill()


async def test_changed_schema_held_until_accepted(
    sim_origins: tuple[Simulator, TestServer, TestServer], tmp_path: Path
) -> None:
    _sim, api, schemas = sim_origins
    slug = "vidu/vidu-q3-t2v"
    store = f"sqlite:///{tmp_path / 'hold.db'}"
    env = schema_env(_origin(api), _origin(schemas), store)
    proxy = await start_proxy(env, tmp_path / "proxy.log")
    styled = {"prompt": "a fox", "style": "anime"}
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: _pinned(http, proxy, [slug]), within=30)
            status, _ = await _submit(http, proxy, slug, styled)
            assert status == 400
            change = {"properties": {"style": {"type": "string", "enum": ["anime", "general"]}}}
            async with http.post(f"{_origin(api)}/_sim/schemas/{slug}", json=change) as resp:
                assert resp.status == 200, await resp.text()

            async def waiting() -> bool:
                shown = await _admin(http, proxy, f"/admin/schemas/{slug}")
                return bool(shown["change_waiting"])

            await wait_until(waiting, within=30)
            listing = await _admin(http, proxy, "/admin/schemas")
            assert slug in listing["changes_waiting"]
            metrics = await _metrics(http, proxy)
            assert f'modellix_proxy_schema_change_waiting{{model="{slug}"}} 1.0' in metrics
            # Held: the pinned version still decides, and is what get-schema answers.
            status, answer = await _submit(http, proxy, slug, styled)
            assert status == 400
            assert answer["errors"][0]["field"] == "style"
            async with http.get(f"{proxy.url}/models/{slug}/api_schema") as resp:
                held = await resp.json()
            props = held["post"]["requestBody"]["content"]["application/json"]["schema"]
            assert "style" not in props["properties"]
            # The operator accepts with the CLI (on the store), as docs/schemas.md shows it.
            shell = {**env, "MODELLIX_BASE_URL": proxy.url}
            listing_line, accept_line = DOC_COMMANDS[0], DOC_COMMANDS[1]
            code, out, err = await _run(["bash", "-c", listing_line], shell)
            assert code == 0, err
            assert {row["model"]: row for row in json.loads(out)}[slug]["change_waiting"]
            code, out, err = await _run(["bash", "-c", accept_line], shell)
            assert code == 0, err
            assert out.startswith(f"{slug}: pinned ")

            async def accepted() -> bool:
                status, _ = await _submit(http, proxy, slug, styled)
                return status == 200

            await wait_until(accepted, within=30)
            code, out, _ = await _run(["bash", "-c", listing_line], shell)
            rows = {row["model"]: row for row in json.loads(out)}
            assert rows[slug]["change_waiting"] is False
            assert rows[slug]["changes"] == 1
            code, out, err = await _run(["bash", "-c", DOC_COMMANDS[2]], shell)  # the curl
            assert code == 0, err
            props = json.loads(out)["post"]["requestBody"]["content"]["application/json"]
            assert "style" in props["schema"]["properties"]
    finally:
        await proxy.kill()


async def test_an_accept_whose_audit_row_fails_leaves_the_replica_on_the_old_pin(
    sim_origins: tuple[Simulator, TestServer, TestServer], tmp_path: Path, store_url: str
) -> None:
    """An admin accept whose audit insert is refused (a trigger) fails, and the replica that
    served it still validates with the pinned version; once the audit log takes rows again, the
    same accept applies on that replica at once."""
    _sim, api, schemas = sim_origins
    slug = "vidu/vidu-q3-t2v"
    engine = "sqlite" if store_url.startswith("sqlite") else "postgres"
    env = {
        **schema_env(_origin(api), _origin(schemas), store_url),
        # rounds (sync, then refresh) 5 s apart: none re-reads the pin in the few milliseconds
        # between the failed accept and the submit that checks this replica's memory
        "MODELLIX_PROXY_MODELS__UPSTREAM_SCHEMAS__SYNC_SECONDS": "5",
    }
    proxy = await start_proxy(env, tmp_path / "proxy.log")
    styled = {"prompt": "a fox", "style": "anime"}
    accept = f"http://127.0.0.1:{proxy.admin_port}/admin/schemas/{slug}/accept"
    auth = {"Authorization": f"Bearer {ADMIN}"}
    try:
        async with aiohttp.ClientSession() as http:
            await wait_until(lambda: _pinned(http, proxy, [slug]), within=30)
            change = {"properties": {"style": {"type": "string", "enum": ["anime", "general"]}}}
            async with http.post(f"{_origin(api)}/_sim/schemas/{slug}", json=change) as resp:
                assert resp.status == 200, await resp.text()

            async def waiting() -> bool:
                shown = await _admin(http, proxy, f"/admin/schemas/{slug}")
                return bool(shown["change_waiting"])

            await wait_until(waiting, within=30)
            for sql in AUDIT_OFF[engine]:
                await raw_query(store_url, sql)
            async with http.post(accept, headers=auth) as resp:
                assert resp.status >= 500, await resp.text()
            status, answer = await _submit(http, proxy, slug, styled)
            assert status == 400, answer  # the pinned version still decides on this replica
            assert answer["errors"][0]["field"] == "style"
            assert (await _admin(http, proxy, f"/admin/schemas/{slug}"))["change_waiting"]
            drop = "DROP TRIGGER audit_off" + (" ON audit_log" if engine == "postgres" else "")
            await raw_query(store_url, drop)
            async with http.post(accept, headers=auth) as resp:
                assert resp.status == 200, await resp.text()
            status, answer = await _submit(http, proxy, slug, styled)
            assert status == 200, answer
    finally:
        await proxy.kill()


async def test_schema_origin_down_refuses_nothing_extra(
    sim_origins: tuple[Simulator, TestServer, TestServer], tmp_path: Path
) -> None:
    _sim, api, _ = sim_origins
    (closed,) = free_ports(1)
    store = f"sqlite:///{tmp_path / 'down.db'}"
    env = schema_env(_origin(api), f"http://127.0.0.1:{closed}", store)
    proxy = await start_proxy(env, tmp_path / "proxy.log")
    try:
        async with aiohttp.ClientSession() as http:
            # Fields the simulator ignores: without a schema the proxy forwards them.
            status, answer = await _submit(
                http, proxy, "vidu/vidu-q3-t2v", {"prompt": "a fox", "foo": 1}
            )
            assert status == 200, answer
            # Without a published schema the catalog spec decides: it knows fps ...
            status, answer = await _submit(
                http, proxy, "bytedance/seedance-2.0-t2v", {"prompt": "a fox", "fps": 24}
            )
            assert status == 200, answer
            # ... and refuses what no source says the model takes, as before.
            status, answer = await _submit(
                http, proxy, "bytedance/seedance-2.0-t2v", {"prompt": "a fox", "foo": 1}
            )
            assert status == 400, answer
            assert answer["errors"][0]["field"] == "foo", answer
            async with http.get(f"{proxy.url}/readyz") as resp:
                ready = await resp.json()
            assert resp.status == 200
            assert ready["schemas"]["origin_state"].startswith("unreachable")
            assert "modellix_proxy_schema_origin_up 0.0" in await _metrics(http, proxy)
    finally:
        await proxy.kill()


async def _metrics(http: aiohttp.ClientSession, proxy: ProxyProcess) -> str:
    async with http.get(f"http://127.0.0.1:{proxy.admin_port}/metrics") as resp:
        return await resp.text()


async def _run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**env, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
