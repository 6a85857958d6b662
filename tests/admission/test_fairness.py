"""The dispatch order within a team: round robin across keys, FIFO within a key."""

from __future__ import annotations

from proxy.admission.fairness import fair_order
from proxy.stores.admission_records import QueueHead


def _head(n: int, caller: str) -> QueueHead:
    return QueueHead(f"q-{n:032x}", "studio", caller, float(n))


def test_keys_take_turns_oldest_first_within_a_key() -> None:
    """One submit per key in turn; each key's own submits in arrival order."""
    heads = [_head(1, "a"), _head(2, "a"), _head(3, "a"), _head(4, "b"), _head(5, "c")]
    order = [h.queue_id[-1] for h in fair_order(heads, {})]
    assert order == ["1", "4", "5", "2", "3"]


def test_the_key_dispatched_least_recently_goes_first() -> None:
    """A key never dispatched goes before the others; then the one dispatched longest ago."""
    heads = [_head(1, "a"), _head(2, "b"), _head(3, "c")]
    turns = {"a": 200.0, "b": 100.0}
    assert [h.caller for h in fair_order(heads, turns)] == ["c", "b", "a"]


def test_a_busy_key_cannot_starve_a_quiet_one() -> None:
    """Forty submits of one key queued first, then one of another: it goes second."""
    heads = [_head(i, "busy") for i in range(40)] + [_head(99, "quiet")]
    assert [h.caller for h in fair_order(heads, {})][:3] == ["busy", "quiet", "busy"]
