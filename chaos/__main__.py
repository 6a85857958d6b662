"""``python -m chaos``: run the fault kinds and print the table and the totals line.

Exit status 1 if any invariant was violated (or a scenario could not run).
``--soak N`` instead runs steady traffic for N seconds and prints the store's size.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from chaos import report
from chaos.accounting import Figures
from chaos.runner import DEFAULT_SETTLE, run_scenario
from chaos.scenarios import catalogue
from chaos.soak import soak


def _env_pairs(pairs: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--proxy-env wants NAME=VALUE, got {pair!r}")
        out[name] = value
    return out


async def run_all(args: argparse.Namespace, workdir: Path) -> list[Figures]:
    scenarios = catalogue(args.random_kills, args.seed)
    if args.only:
        scenarios = [s for s in scenarios if any(o in s.name for o in args.only)]
    rows: list[Figures] = []
    extra = _env_pairs(args.proxy_env)
    for sc in scenarios:
        print(f"chaos: running {sc.name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        try:
            figures = await run_scenario(sc, workdir, settle_seconds=args.settle, extra_env=extra)
        except Exception as exc:  # noqa: BLE001 - any crash is reported as a failed row
            figures = Figures(fault=sc.name, store=sc.setup.store)
            figures.checks.append(f"scenario crashed: {exc!r}"[:300])
            figures.seconds = time.monotonic() - started
        rows.append(figures)
        print(report.table([figures]).splitlines()[-1], file=sys.stderr, flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--only", action="append", help="run scenarios whose name contains this")
    parser.add_argument("--random-kills", type=int, default=10, help="property runs (default 10)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--settle",
        type=float,
        default=DEFAULT_SETTLE,
        help="seconds to wait for the store to settle after a fault",
    )
    parser.add_argument(
        "--proxy-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra MODELLIX_PROXY_* setting for every proxy",
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and stores here")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="steady traffic for SECONDS, printing the store's size",
    )
    parser.add_argument(
        "--store", choices=("sqlite", "postgres"), default="sqlite", help="store for --soak"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="chaos-") as tmp:
        workdir = args.workdir or Path(tmp)
        if args.soak is not None:
            extra = _env_pairs(args.proxy_env)
            return asyncio.run(soak(args.soak, args.store, workdir, extra_env=extra))
        rows = asyncio.run(run_all(args, workdir))
    print(report.table(rows))
    print(report.details(rows))
    print(report.totals_line(rows))
    return 1 if report.failed(rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
