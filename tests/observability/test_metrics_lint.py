"""The live /metrics output after traffic: promtool-clean, bounded labels, exemplars parse."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families
from prometheus_client.parser import text_string_to_metric_families as parse_text

from proxy.middleware import KNOWN_METHODS
from proxy.telemetry.metrics import OTHER
from proxy.telemetry.tracing import Tracing
from tests.observability.conftest import LiveStack, LiveStackFactory, run_promtool
from tests.observability.traffic import get, round_of_traffic

FORBIDDEN_LABELS = frozenset(
    {"task_id", "key", "api_key", "authorization", "token", "url", "path", "trace_id", "span_id"}
)
FORBIDDEN_LABELS |= {"request_id", "correlation_id", "caller", "idempotency_key"}
MAX_SERIES_PER_METRIC = 60
OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def stack(
    make_live: LiveStackFactory, http: aiohttp.ClientSession, traced: Tracing
) -> LiveStack:
    """A proxy (exporting traces) that has served jobs, refusals, retries and pass-through."""
    stack = await make_live(tracing=traced)
    for _ in range(3):
        stack.sim.inject("503", count=1, route="submit")
        await round_of_traffic(http, stack.proxy_url)
    for method in ("FOOBAR", "PURGE"):
        async with http.request(method, f"{stack.proxy_url}/api/v1/models"):
            pass
    return stack


async def test_promtool_check_metrics_is_clean(
    stack: LiveStack, http: aiohttp.ClientSession, promtool: str
) -> None:
    """`promtool check metrics` finds nothing to complain about in the live exposition."""
    status, body = await get(http, f"{stack.admin_url}/metrics", headers={})
    assert status == 200
    text = body.decode()
    assert "modellix_proxy_job_cost_usd_bucket" in text
    assert "_created" not in text  # disable_created_metrics(): half the series, no reader
    run_promtool(promtool, "check", "metrics", stdin=text)


async def test_labels_are_bounded(stack: LiveStack, http: aiohttp.ClientSession) -> None:
    """No label carries ids, keys, URLs or trace ids, and no metric grows many series."""
    body = (await get(http, f"{stack.admin_url}/metrics", headers={}))[1].decode()
    families = list(parse_text(body))
    assert families
    for family in families:
        names = {name for sample in family.samples for name in sample.labels}
        assert not names & FORBIDDEN_LABELS, (family.name, names & FORBIDDEN_LABELS)
        series = {
            tuple(sorted((k, v) for k, v in sample.labels.items() if k not in {"le", "quantile"}))
            for sample in family.samples
        }
        assert len(series) <= MAX_SERIES_PER_METRIC, (family.name, len(series))
    methods = {
        sample.labels["method"]
        for family in families
        for sample in family.samples
        if "method" in sample.labels
    }
    assert "GET" in methods
    assert methods <= KNOWN_METHODS | {OTHER}


async def test_openmetrics_exposition_parses_with_exemplars(
    stack: LiveStack, http: aiohttp.ClientSession
) -> None:
    """The OpenMetrics exposition parses, and with traces exported histograms carry trace ids."""
    async with http.get(f"{stack.admin_url}/metrics", headers=OPENMETRICS) as resp:
        assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
        text = await resp.text()
    with_exemplars: set[str] = set()
    for family in text_string_to_metric_families(text):  # type: ignore[no-untyped-call]
        for sample in family.samples:
            if sample.exemplar is not None:
                assert set(sample.exemplar.labels) == {"trace_id"}
                assert len(sample.exemplar.labels["trace_id"]) == 32
                with_exemplars.add(family.name)
    assert {
        "modellix_proxy_http_request_duration_seconds",
        "modellix_proxy_upstream_request_duration_seconds",
        "modellix_proxy_job_cost_usd",
        "modellix_proxy_job_time_to_terminal_seconds",
    } <= with_exemplars
