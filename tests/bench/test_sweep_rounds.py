"""The sweep's rounds: one during which the host took CPU from the machine is set aside
and measured again, within a bound; the host's steal read from ``/proc/stat``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench import sweep, wrk


def _round(stolen: float, index: int) -> sweep.Round:
    latency = {"50": 25.0, "99": 30.0 + index}
    histogram = {25_000: 6435, 30_000 + 1000 * index: 65}
    result = wrk.WrkResult(650.0, 6500, 10.0, latency, histogram_us=histogram)
    return sweep.Round(
        {name: result for name in sweep.PEERS}, {name: stolen for name in sweep.PEERS}
    )


def _measure(
    monkeypatch: pytest.MonkeyPatch, steal_by_round: list[float], rounds: int
) -> tuple[list[sweep.Round], list[sweep.Round], list[int]]:
    asked: list[int] = []

    def fake(*args: object) -> sweep.Round:
        index = args[5]
        assert isinstance(index, int)
        asked.append(index)
        return _round(steal_by_round[index], index)

    monkeypatch.setattr(sweep, "measure_round", fake)
    args = argparse.Namespace(rounds=rounds, max_steal_ms=50.0)
    kept, aside = sweep.measure_point({}, "paths", 16, args, None, {})
    return kept, aside, asked


def test_a_round_the_host_took_cpu_in_is_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    kept, aside, asked = _measure(monkeypatch, [0, 400, 10, 50, 900, 0], rounds=4)
    assert asked == [0, 1, 2, 3, 4, 5]  # two set aside: two more rounds
    assert [max(r.steal_ms.values()) for r in kept] == [0, 10, 50, 0]
    assert [max(r.steal_ms.values()) for r in aside] == [400, 900]


def test_the_extra_rounds_are_bounded_and_the_least_stolen_make_up_the_number(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept, aside, asked = _measure(monkeypatch, [300, 0, 900, 100, 700, 200], rounds=3)
    assert asked == [0, 1, 2, 3, 4, 5]  # at most twice the rounds asked for
    assert [max(r.steal_ms.values()) for r in kept] == [0, 100, 200]
    assert [max(r.steal_ms.values()) for r in aside] == [300, 700, 900]
    point = sweep.summarize(16, kept, aside)
    assert [s["bare"] for s in point["host_steal_ms_by_round"]] == [0, 100, 200]
    assert [s["host_steal_ms"]["proxy"] for s in point["set_aside"]] == [300, 700, 900]


def test_steal_is_read_from_proc_stat() -> None:
    if not Path("/proc/stat").exists():
        pytest.skip("no /proc/stat here")
    first = sweep.steal_ms()
    assert first >= 0
    assert sweep.steal_ms() >= first  # a counter: it never goes back
