"""Fixtures: a simulator on a hand-moved clock, served over loopback HTTP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pytest_aiohttp import AiohttpClient

from proxy.simulator import ManualClock, Simulator, SimulatorConfig, build_app

AUTH = {"Authorization": "Bearer sk-test"}
HAILUO = "/api/v1/minimax/hailuo-2.3-t2v"
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[tuple[Simulator, Client]]]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def make_client(aiohttp_client: AiohttpClient, clock: ManualClock) -> MakeClient:
    """Build a simulator with config overrides and a client that sends a valid key."""

    async def make(**overrides: Any) -> tuple[Simulator, Client]:
        sim = Simulator(SimulatorConfig.fast(**overrides), clock)
        client = await aiohttp_client(build_app(sim), headers=AUTH)
        return sim, client

    return make


@pytest.fixture
async def sim_client(make_client: MakeClient) -> tuple[Simulator, Client]:
    return await make_client()


async def submit(client: Client, body: dict[str, Any], path: str = HAILUO) -> dict[str, Any]:
    """Submit and return the JSON answer, asserting HTTP 200."""
    response = await client.post(path, json=body)
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def poll(client: Client, task_id: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/api/v1/tasks/{task_id}")
    answer: dict[str, Any] = await response.json()
    return response.status, answer
