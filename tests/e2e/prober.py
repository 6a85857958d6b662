"""A ``/healthz`` prober in its own process: how long the proxy makes a liveness probe wait.

Run as ``python -m tests.e2e.prober URL SECONDS INTERVAL``; it probes over one kept-alive
connection until SECONDS have passed or it gets SIGTERM, then prints one JSON object: the
number of probes, failures, the largest and 99th-percentile latencies in ms, and when the
slow probes (over 50 ms) started, so a failure can name the requests in flight then.
"""

from __future__ import annotations

import http.client
import json
import signal
import sys
import time
from urllib.parse import urlsplit

STOP: list[bool] = []


def probe(url: str, seconds: float, interval: float) -> dict[str, object]:
    signal.signal(signal.SIGTERM, lambda *_: STOP.append(True))
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    latencies: list[float] = []
    slow: list[tuple[float, float]] = []  # (wall-clock start, ms) of probes over 50 ms
    failures = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not STOP:
        started = time.perf_counter()
        try:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                failures += 1
        except (OSError, http.client.HTTPException):
            failures += 1
            conn.close()
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        took = (time.perf_counter() - started) * 1000
        latencies.append(took)
        if took > 50:
            slow.append((round(time.time() - took / 1000, 3), round(took, 1)))
        time.sleep(interval)
    latencies.sort()
    return {
        "probes": len(latencies),
        "failures": failures,
        "max_ms": latencies[-1] if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] if latencies else 0.0,
        "slow": slow[:20],
    }


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], float(sys.argv[2]), float(sys.argv[3]))), flush=True)
