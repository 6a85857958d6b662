"""The table (one row per fault kind) and the totals line the suite ends with."""

from __future__ import annotations

from collections.abc import Sequence

from chaos.accounting import Figures

COLUMNS = (
    ("fault", "fault", 30),
    ("store", "store", 8),
    ("submits", "submits", 7),
    ("created_upstream", "created", 7),
    ("ledger", "ledger", 6),
    ("unknown", "unknown", 7),
    ("lost", "lost", 4),
    ("double_bought", "double", 6),
    ("proxy_500", "p500", 4),
    ("designed_5xx", "5xx_ok", 6),
    ("leaked_reservations", "leak_res", 8),
    ("leaked_slots", "leak_slot", 9),
    ("seconds", "secs", 5),
)
TOTALS = (
    "submits",
    "created_upstream",
    "ledger",
    "unknown",
    "lost",
    "double_bought",
    "proxy_500",
    "leaked_reservations",
    "leaked_slots",
)


def _cell(figures: Figures, attr: str) -> str:
    value = getattr(figures, attr)
    return f"{value:.0f}" if isinstance(value, float) else str(value)


def table(rows: Sequence[Figures]) -> str:
    head = " ".join(
        f"{title:>{width}}" if i else f"{title:<{width}}"
        for i, (_, title, width) in enumerate(COLUMNS)
    )
    lines = [head, "-" * len(head)]
    for row in rows:
        cells = [
            f"{_cell(row, attr):>{width}}" if i else f"{_cell(row, attr):<{width}}"
            for i, (attr, _, width) in enumerate(COLUMNS)
        ]
        verdict = "ok" if not row.violations else "FAIL " + ", ".join(row.violations)
        lines.append(" ".join(cells) + "  " + verdict)
    return "\n".join(lines)


def details(rows: Sequence[Figures]) -> str:
    out = []
    for row in rows:
        for note in row.notes:
            out.append(f"  {row.fault}: {note}")
    return "\n".join(out)


def totals_line(rows: Sequence[Figures]) -> str:
    sums = {name: sum(getattr(r, name) for r in rows) for name in TOTALS}
    return f"chaos: faults={len(rows)} " + " ".join(f"{k}={v}" for k, v in sums.items())


def failed(rows: Sequence[Figures]) -> bool:
    return any(r.violations for r in rows)
