"""Metrics in multiprocess mode (``serve --workers N``), in real processes of their own.

prometheus-client picks multiprocess mode when it is imported, from
``PROMETHEUS_MULTIPROC_DIR``: each case runs in a fresh interpreter with it set, and
with warnings as errors.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = """
import json, sys
from proxy.telemetry.metrics import Metrics
m = Metrics()
m.http_requests.labels("poll", "GET", "200").inc(int(sys.argv[1]))
m.http_duration.labels("poll").observe(float(sys.argv[1]) / 100)
m.ledger_writes_pending.set(int(sys.argv[1]))
m.retention_last_success.set(float(sys.argv[1]))
# A store-derived gauge replaced as a whole, as the watcher does: clear, then set again.
m.jobs_in_flight.labels("a").inc(5)
m.jobs_in_flight.labels("gone").inc(1)
m.jobs_in_flight.clear()
m.jobs_in_flight.labels("a").inc(2)
"""

SCRAPE = """
import json, sys
from pathlib import Path

import pytest
from proxy.telemetry.metrics import Metrics
from proxy.telemetry.multiprocess import scrape_registry
m = Metrics()  # the serving worker's own
m.build.info({"version": "test"})
m.jobs_in_flight.labels("a").inc(2)
registry = scrape_registry(m, Path(sys.argv[1]))
out = {}
for family in registry.collect():
    for s in family.samples:
        out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
print(json.dumps(out))
"""


def _run(code: str, directory: Path, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_one_scrape_reports_every_worker_and_store_gauges_once(tmp_path: Path) -> None:
    """Counters sum over workers; livesum over live ones, max is the latest; a gauge read
    from the store comes from the serving worker's memory, cleared label sets gone."""
    from prometheus_client.multiprocess import mark_process_dead

    _run(WORKER, tmp_path, "3")
    _run(WORKER, tmp_path, "4")
    pids = sorted(p.name.split("_")[-1][:-3] for p in tmp_path.glob("gauge_livesum_*.db"))
    mark_process_dead(int(pids[0]), str(tmp_path))  # type: ignore[no-untyped-call]
    samples: dict[str, float] = json.loads(_run(SCRAPE, tmp_path, str(tmp_path)))

    def value(name: str, **labels: str) -> float | None:
        return samples.get(name + json.dumps(labels, sort_keys=True))

    polls = value("modellix_proxy_http_requests_total", code="200", method="GET", route="poll")
    assert polls == 7
    # the request path's lock-free histogram, file-backed in multiprocess mode: both workers
    duration = "modellix_proxy_http_request_duration_seconds"
    assert value(duration + "_count", route="poll") == 2
    assert value(duration + "_sum", route="poll") == pytest.approx(0.07)
    assert value(duration + "_bucket", le="0.05", route="poll") == 2
    assert value(duration + "_bucket", le="0.025", route="poll") == 0
    assert value("modellix_proxy_ledger_writes_pending") in {3, 4}  # one worker left alive
    assert value("modellix_proxy_retention_last_success_timestamp_seconds") == 4
    assert value("modellix_proxy_jobs_in_flight", model="a") == 2  # not 2 + 2 + 2, nor 5 + 2
    assert value("modellix_proxy_jobs_in_flight", model="gone") is None
    assert value("modellix_proxy_build_info", version="test") == 1
