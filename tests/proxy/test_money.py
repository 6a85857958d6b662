"""Money has one conversion between dollars and micro-dollars."""

from __future__ import annotations

from pathlib import Path


def test_dollars_become_micros_in_one_place() -> None:
    """Only proxy.money converts between dollars and micro-dollars (the simulator, which
    stands in for the upstream, keeps its own arithmetic)."""
    proxy = Path(__file__).resolve().parents[2] / "proxy"
    sources = [p for p in proxy.rglob("*.py") if "simulator" not in p.parts]
    assert len(sources) > 100
    for marker in ("1_000_000", "ROUND_HALF_UP", "MICROS_PER_USD"):
        holders = {p.name for p in sources if marker in p.read_text()}
        holders -= {"money.py", "records.py"}  # records.py: its docstring
        assert not holders, (marker, holders)
