"""The sweep's percentiles over pooled runs: wrk's report read with its whole histogram."""

from __future__ import annotations

import pytest

from bench import wrk

REPORT = """Running 1s test @ http://127.0.0.1:1
  1 threads and 2 connections
  Latency Distribution
     50%   22.10ms
     75%   22.50ms
     90%   23.00ms
     99%   25.00ms
  40 requests in 1.00s, 8.00KB read
Requests/sec:     40.00
BENCH_STATUS 200 40
BENCH_LATENCY 22100 30
BENCH_LATENCY 23000 9
BENCH_LATENCY 25000 1
"""


def test_the_histogram_is_read_beside_the_percentiles() -> None:
    result = wrk.parse(REPORT)
    assert result.histogram_us == {22100: 30, 23000: 9, 25000: 1}
    assert result.p99 == 25.0
    assert "histogram_us" not in result.as_json()


def test_percentiles_rank_as_wrk_does() -> None:
    histogram = {1000: 98, 2000: 1, 9000: 1}  # 100 requests
    # wrk's rank for p99 of 100: round(99 + 0.5) = 100, the slowest request
    assert wrk.percentile_ms(histogram, 99.0) == 9.0
    assert wrk.percentile_ms(histogram, 50.0) == 1.0
    assert wrk.percentile_ms({1000: 1}, 99.0) == 1.0
    with pytest.raises(ValueError, match="no requests"):
        wrk.percentile_ms({}, 99.0)


def test_pooled_runs_weigh_one_slow_run_by_its_share_of_requests() -> None:
    quiet = {1000: 1000}
    slow = {1000: 980, 5000: 19}  # one run with a pause: its own p99 is 5 ms
    assert wrk.percentile_ms(slow, 99.0) == 5.0
    # over both runs' 1,999 requests the 19 slow ones are under 1 %: p99 is a fast one
    assert wrk.pooled([quiet, slow]) == {1000: 1980, 5000: 19}
    assert wrk.percentile_ms(wrk.pooled([quiet, slow]), 99.0) == 1.0
