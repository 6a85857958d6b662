"""Balance reconciliation: the pure window arithmetic and the balance answer parser."""

from __future__ import annotations

import pytest

from proxy.governance.reconcile_balance import BalanceUnavailable, next_reading, parse_balance

T0 = 1_800_000_000.0


def test_first_reading_is_the_baseline() -> None:
    """With no previous reading nothing is unexplained yet."""
    first = next_reading(None, "upstream", 100_000_000, T0, 0)
    assert (first.first_read_at, first.unexplained_micros, first.topup_micros) == (T0, 0, 0)


def test_drop_beyond_the_ledger_is_unexplained_and_lag_nets_out() -> None:
    """A drop the ledger explains adds nothing; a late ledger entry cancels a window's excess."""
    first = next_reading(None, "upstream", 100_000_000, T0, 0)
    explained = next_reading(first, "upstream", 99_676_000, T0 + 60, 324_000)
    assert explained.window_unexplained_micros == 0
    outside = next_reading(explained, "upstream", 99_352_000, T0 + 120, 0)
    assert outside.window_unexplained_micros == 324_000
    assert outside.unexplained_micros == 324_000
    seen_late = next_reading(outside, "upstream", 99_352_000, T0 + 180, 324_000)
    assert seen_late.window_unexplained_micros == -324_000
    assert seen_late.unexplained_micros == 0
    assert seen_late.first_read_at == T0


def test_a_rise_is_a_top_up_of_the_rise_plus_the_hidden_ledger_spend() -> None:
    """A balance that rises counts as a top-up; nothing in that window is unexplained."""
    first = next_reading(None, "upstream", 10_000_000, T0, 0)
    topped = next_reading(first, "upstream", 59_676_000, T0 + 60, 324_000)
    assert (topped.topup_micros, topped.unexplained_micros) == (50_000_000, 0)
    assert topped.window_drop_micros == -49_676_000


@pytest.mark.parametrize(
    ("body", "micros"),
    [
        (b'{"code":0,"message":"success","data":{"balance":12.3456}}', 12_345_600),
        (b'{"code":0,"data":{"balance":0}}', 0),
        (b'{"code":0,"data":{"balance":"7.5"}}', 7_500_000),
    ],
)
def test_balance_answers_parse_to_micro_dollars(body: bytes, micros: int) -> None:
    """The upstream's four-decimal USD balance becomes exact micro-dollars."""
    assert parse_balance(body) == micros


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"data":{}}', b'{"data":{"balance":true}}', b'{"data":{"balance":"NaN"}}'],
)
def test_malformed_balance_answers_are_unavailable(body: bytes) -> None:
    """Anything but a finite number is refused, never read as a balance."""
    with pytest.raises(BalanceUnavailable):
        parse_balance(body)
