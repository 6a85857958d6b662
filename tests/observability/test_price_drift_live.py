"""A price changed upstream mid-run (the model list not following): a real Prometheus scraping
the proxy sees ModellixProxyPriceDrift fire for that model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.conftest import KEY
from tests.e2e.test_client_flow import wait_terminal
from tests.observability.conftest import LiveStackFactory
from tests.observability.test_real_prometheus import JOB, STARTUP_S, prometheus_scraping, wait_until

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
SLUG = "kling/kling-v3-t2v"  # listed at a fixed $0.10/s
FIRING_S = 60.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": KEY}) as session:
        yield session


async def one_job(http: aiohttp.ClientSession, base: str, prompt: str) -> None:
    body = {"prompt": prompt, "duration": 5}
    async with http.post(f"{base}/api/v1/{SLUG}", json=body) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["X-Modellix-Proxy-Estimated-Cost-Range-USD"] == "0.500000-0.500000"
        task_id = (await resp.json())["data"]["task_id"]
    done = await wait_terminal(http, base, task_id)
    assert done["data"]["status"] == "success"


async def test_a_stale_list_price_fires_the_drift_alert(
    make_live: LiveStackFactory, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    stack = await make_live(models={"preflight": {"mode": "off"}})
    assert stack.running.admin_port is not None
    with prometheus_scraping(stack.running.admin_port, tmp_path) as prom:
        await wait_until(http, prom, f'up{{job="{JOB}"}} == 1', STARTUP_S)
        await one_job(http, stack.proxy_url, "at the listed price")
        outside = f'modellix_proxy_charge_outside_estimate_total{{model="{SLUG}"}}'
        await wait_until(http, prom, outside, STARTUP_S)  # scraped at 0 before the change
        # Kling now charges $0.20/s; the list keeps showing $0.10/s (a stale list).
        change = {"slug": SLUG, "price": 0.2, "list_follows": False}
        async with http.post(f"{stack.sim_url}/_sim/prices", json=change) as resp:
            assert resp.status == 200, await resp.text()
        await one_job(http, stack.proxy_url, "after the price change")
        firing = (
            f'ALERTS{{alertname="ModellixProxyPriceDrift", alertstate="firing", model="{SLUG}"}}'
        )
        await wait_until(http, prom, firing, FIRING_S)
