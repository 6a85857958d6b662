"""No API key, bearer token or admin token reaches any log line, metric or span."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from proxy.simulator import SimulatorConfig
from proxy.telemetry.tracing import Tracing
from tests.observability.conftest import LiveStack, LiveStackFactory
from tests.observability.traffic import (
    AUTH,
    BAD_KEY,
    HAILUO,
    KEY,
    PINNED_PATH,
    accepted,
    get,
    job_terminal,
    poll_until_terminal,
    submit,
)

ADMIN_TOKEN = "sk-LEAKCHECK-admin-5d6e7f8091a2"
MARKER = "LEAKCHECK"
# "Bearer" followed by anything but a redaction placeholder.
UNREDACTED_BEARER = re.compile(r"(?i)bearer\s+(?!\[redacted\])[^\s\"',;]")
FAST_WATCHER = {
    "enabled": True,
    "first_check_seconds": 0.1,
    "base_delay_seconds": 0.1,
    "max_delay_seconds": 0.3,
    "jitter": 0.0,
    "tick_seconds": 0.05,
    "client_grace_seconds": 0.0,
}


@pytest.fixture
async def stack(make_live: LiveStackFactory, traced: Tracing) -> LiveStack:
    """A simulator that knows one key, and a proxy with watcher, admin token and tracing."""
    sim_config = SimulatorConfig.fast(concurrency_limit=0, api_keys={KEY: "team-a"})
    return await make_live(
        sim_config,
        tracing=traced,
        watcher=FAST_WATCHER,
        admin={"enabled": True, "host": "127.0.0.1", "port": 0, "token": ADMIN_TOKEN},
    )


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session."""
    async with aiohttp.ClientSession() as session:
        yield session


async def drive_everything(stack: LiveStack, http: aiohttp.ClientSession) -> None:
    """Submits, polls, pass-through, refusals, upstream errors and faults, all carrying keys."""
    base = stack.proxy_url
    # A job followed by the client, one retried after a 503, one left to the watcher.
    task_id = await accepted(http, base)
    await poll_until_terminal(http, base, task_id)
    stack.sim.inject("503", count=1, route="submit")
    await poll_until_terminal(http, base, await accepted(http, base, path=PINNED_PATH))
    await job_terminal(stack.store, await accepted(http, base, headers={"X-Api-Key": KEY}))
    # A failed job, an unknown outcome, a malformed answer.
    await poll_until_terminal(
        http, base, await accepted(http, base, body={**HAILUO, "prompt": "x [sim:task_failed]"})
    )
    status, _ = await submit(http, base, body={**HAILUO, "prompt": "x [sim:reset_before_create]"})
    assert status == 504
    status, _ = await submit(http, base, body={**HAILUO, "prompt": "x [sim:malformed]"})
    assert status >= 500
    # The upstream refuses a revoked key on submit, poll and pass-through.
    bad = {"Authorization": f"Bearer {BAD_KEY}"}
    status, doc = await submit(http, base, headers=bad)
    assert status == 401, doc
    assert (await get(http, f"{base}/api/v1/tasks/{task_id}", headers=bad))[0] == 401
    assert (await get(http, f"{base}/api/v1/apikey/validate", headers=bad))[0] == 200
    # Keys in places a careless proxy would log: query string, odd headers, cookies.
    status, _ = await get(
        http,
        f"{base}/api/v1/models?api_key={KEY}&token={KEY}",
        headers={**AUTH, "Cookie": f"session={KEY}", "X-Api-Key": KEY},
    )
    assert status == 200
    assert (await get(http, f"{base}/api/v1/team/balance"))[0] == 200
    assert (await get(http, f"{base}/api/v1/tasks/task-does-not-exist"))[0] == 404
    # Refused before the upstream: bad JSON, an unknown model, a body that is not an object.
    async with http.post(
        f"{base}{PINNED_PATH}",
        data=b'{"prompt": "unterminated',
        headers={**AUTH, "Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
    assert (await submit(http, base, path="/api/v1/nobody/no-such-model"))[0] >= 400
    async with http.post(f"{base}{PINNED_PATH}", json=[KEY], headers=AUTH) as resp:
        assert resp.status == 400
    # Transient upstream trouble on a poll, and a method the proxy has never heard of.
    stack.sim.inject("500", count=3, route="poll")
    assert (await get(http, f"{base}/api/v1/tasks/task-in-trouble"))[0] >= 500
    async with http.request("PURGE", f"{base}/api/v1/cache", headers=AUTH) as resp:
        assert resp.status < 600
    # The admin listener, with a wrong and a right token.
    wrong = {"Authorization": f"Bearer {ADMIN_TOKEN}x"}
    assert (await get(http, f"{stack.admin_url}/admin/jobs", headers=wrong))[0] == 401
    right = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert (await get(http, f"{stack.admin_url}/admin/jobs", headers=right))[0] == 200


async def test_no_secret_in_logs_metrics_or_spans(
    stack: LiveStack,
    http: aiohttp.ClientSession,
    spans: InMemorySpanExporter,
    log_stream: io.StringIO,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Across broad traffic, no key or bearer token appears in any log, metric or span."""
    caplog.set_level(logging.DEBUG)
    await drive_everything(stack, http)
    logs = log_stream.getvalue()
    events = {json.loads(line).get("event") for line in logs.splitlines() if line.strip()}
    assert "job.terminal" in events
    assert "request" in events
    plain = (await get(http, f"{stack.admin_url}/metrics", headers={}))[1].decode()
    openmetrics = (
        await get(
            http, f"{stack.admin_url}/metrics", headers={"Accept": "application/openmetrics-text"}
        )
    )[1].decode()
    assert "modellix_proxy_jobs_terminal_total" in plain
    finished = spans.get_finished_spans()
    assert {"modellix.job", "POST /api/v1/{provider}/{model}", "GET", "POST"} <= {
        span.name for span in finished
    }
    exported = "\n".join(span.to_json(indent=None) for span in finished)
    outputs = {
        "structlog": logs,
        "stdlib logging": caplog.text,
        "metrics": plain,
        "openmetrics": openmetrics,
        "spans": exported,
    }
    for name, text in outputs.items():
        assert MARKER not in text, f"a key leaked into {name}"
        leak = UNREDACTED_BEARER.search(text)
        assert leak is None, f"a bearer token leaked into {name}: {leak.group(0) if leak else ''}"
    assert "[redacted]" in exported  # the query-string key was seen, and masked
