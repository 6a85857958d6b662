"""The demo's closing summary: jobs and money by model, refusals, replays, reconciliation."""

from __future__ import annotations

import time
from typing import TextIO

from proxy import money
from proxy.config import Settings
from proxy.demo.workload import Workload
from proxy.server import Running
from proxy.simulator import Simulator
from proxy.state import RUNTIME


def _usd(micros: int) -> str:
    return money.display(micros)


async def print_summary(
    out: TextIO, proxy: Running, sim: Simulator, workload: Workload, settings: Settings
) -> bool:
    """Print the summary; True when the ledger equals the simulator's billing to the
    micro-dollar and every task created upstream is a job the proxy accepted."""
    store = proxy.app[RUNTIME].store
    if store is None:
        return False
    rows = await store.spend_summary(0, time.time() + 1, ["model", "status"])
    by_model: dict[str, dict[str, int]] = {}
    for row in rows:
        entry = by_model.setdefault(
            row.model or "?",
            {"jobs": 0, "success": 0, "failed": 0, "other": 0, "cost": 0, "unpriced": 0},
        )
        entry["jobs"] += row.jobs
        key = row.status if row.status in ("success", "failed") else "other"
        entry[key] += row.jobs
        entry["cost"] += row.final_cost_micros
        entry["unpriced"] += row.unpriced_jobs
    sim.settle()
    billed_by_model: dict[str, int] = {}
    for record in sim.accounts.records:
        billed_by_model[record.slug] = billed_by_model.get(record.slug, 0) + record.amount_micros
    out.write("\nSummary\n=======\n")
    out.write(
        f"{'model':34} {'jobs':>5} {'success':>8} {'failed':>7} {'other':>6} {'spend':>10} "
        f"{'billed':>10}\n"
    )
    total, models_equal = 0, True
    for model, e in sorted(by_model.items()):
        total += e["cost"]
        spend = _usd(e["cost"]) if e["unpriced"] < e["jobs"] else "unpriced"
        billed_here = billed_by_model.get(model, 0)
        models_equal = models_equal and e["cost"] == billed_here
        mark = "" if e["cost"] == billed_here else "  DIFFERENT"
        counts = f"{e['jobs']:5d} {e['success']:8d} {e['failed']:7d} {e['other']:6d}"
        out.write(f"{model:34} {counts} {spend:>10} {_usd(billed_here):>10}{mark}\n")
    t = workload.tally
    out.write(
        f"\nrequests sent {t.sent}, accepted {t.accepted}, replayed from the idempotency store "
        f"{t.replayed}, other answers {dict(t.other) or 'none'}\n"
    )
    out.write(
        "refused before any upstream call: "
        + (", ".join(f"{reason} {n}" for reason, n in t.refused.most_common()) or "none")
        + "\n"
    )
    refusals = await store.refusal_summary(0, time.time() + 1)
    avoided = sum(row.avoided_micros for row in refusals)
    out.write(f"estimated cost of the refused submits (money not spent): {_usd(avoided)}\n")
    budgets = proxy.app[RUNTIME].budgets
    if budgets is not None:
        for applied, window in await budgets.standing(time.time()):
            b = applied.budget
            spent = window.spent_micros if window else 0
            out.write(f"budget {b.name} ({'hard' if b.hard else 'soft'}, {b.window}): "
                      f"{_usd(spent)} spent of {_usd(b.limit_micros)}\n")  # fmt: skip
    billed = sim.billed_total_micros()
    created = sim.counters.tasks_created
    out.write(
        f"\nledger spend {_usd(total)}  vs  simulator billed {_usd(billed)}"
        f"  ({'equal' if total == billed else 'DIFFERENT'})\n"
    )
    out.write(
        f"tasks created upstream {created}  vs  jobs accepted {t.accepted}"
        f"  ({'no duplicate purchases' if created == t.accepted else 'DIFFERENT'})\n"
    )
    sources = await store.spend_summary(0, time.time() + 1, ["price_source", "cost_source"])
    out.write(
        "prices from: "
        + ", ".join(
            f"{r.price_source or 'unpriced'} {r.jobs} jobs (cost: {r.cost_source or 'none'})"
            for r in sources
        )
        + "\n"
    )
    out.flush()
    return total == billed and models_equal and created == t.accepted
