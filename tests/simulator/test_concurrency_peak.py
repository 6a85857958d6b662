"""The simulator reports the most tasks a team ran at once, and its concurrency refusals."""

from __future__ import annotations

from proxy.simulator import ManualClock
from tests.simulator.conftest import HAILUO, MakeClient, submit


async def test_peak_concurrency_and_refusals_are_reported(
    make_client: MakeClient, clock: ManualClock
) -> None:
    """Two overlapping tasks, a refusal at the limit, then one after the others ended:
    the peak is 2, one refusal counted, both in ``GET /_sim/state``."""
    sim, client = await make_client(concurrency_limit=2, processing_seconds=(1.0, 1.0))
    await submit(client, {"prompt": "a"})
    clock.advance(0.5)
    await submit(client, {"prompt": "b"})
    refused = await client.post(HAILUO, json={"prompt": "c"})
    assert refused.status == 429
    clock.advance(5)
    await submit(client, {"prompt": "d"})
    state = await (await client.get("/_sim/state")).json()
    assert state["max_active"]["default"] == 2
    assert state["counters"]["concurrency_refusals"] == 1
    assert sim.accounts.max_active("default") == 2
