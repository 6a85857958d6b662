"""``modellix-proxy``: serve, demo, check-config, simulator."""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from proxy import __version__
from proxy.cli_common import settings_or_exit
from proxy.config import ENV_PREFIX, Settings
from proxy.telemetry.logging import configure_logging, log_thread_exception
from proxy.telemetry.tracing import setup_tracing


def cmd_serve(args: argparse.Namespace) -> int:
    from proxy.listening import PortUnavailable
    from proxy.server import run, serve_forever
    from proxy.stores.base import StoreError
    from proxy.workers import WorkerRole, supervise, worker_count, worker_settings

    environ: Mapping[str, str] = os.environ
    if args.workers is not None:  # the option wins over the file and MODELLIX_PROXY_WORKERS
        environ = {**os.environ, f"{ENV_PREFIX}WORKERS": args.workers}
    settings = settings_or_exit(args.config, environ)
    problem = store_path_problem(settings.store.url)
    if problem is not None:
        print(f"store: cannot start: {problem}", file=sys.stderr)
        return 1
    configure_logging(settings.logging.level, settings.logging.format)
    threading.excepthook = log_thread_exception
    role: WorkerRole | None = None
    if args.worker_index is not None:  # started by a supervisor (``proxy.workers``)
        role = WorkerRole(
            index=args.worker_index,
            count=args.worker_count,
            supervisor_pid=args.supervisor_pid,
            ready_fd=args.ready_fd,
            metrics_dir=Path(args.metrics_dir) if args.metrics_dir else None,
        )
        settings = worker_settings(settings, role.count)
    else:
        count = worker_count(settings)
        if count > 1:
            command = [sys.executable, "-m", "proxy", "serve"]
            if args.config:
                command.append(f"--config={args.config}")
            try:
                return supervise(settings, count, command, environ)
            except PortUnavailable as err:  # the port stays taken: one line
                print(f"workers: cannot start: {err.strerror}", file=sys.stderr)
                return 1
            except OSError as err:  # no process can be started: one line
                print(f"workers: cannot start: {err}", file=sys.stderr)
                return 1
    try:
        tracing = setup_tracing("modellix-proxy", os.environ, service_version=__version__)
    except ValueError as err:  # OTEL_* asks for something unsupported
        print(f"config: {err}", file=sys.stderr)
        return 2
    try:
        run(serve_forever(settings, tracing=tracing, worker=role), settings.event_loop)
    except PortUnavailable as err:  # the port stays taken: one line, no traceback
        print(f"{err.strerror}", file=sys.stderr)
        return 1
    except StoreError as err:  # unreachable, read-only or too new: one line, no traceback
        print(f"store: cannot start: {err}", file=sys.stderr)
        return 1
    finally:
        tracing.shutdown()  # export what is left (the loop is gone: blocking is fine)
    return 0


def store_path_problem(url: str) -> str | None:
    """Why a ``sqlite:///`` store cannot be opened at all (its directory is missing), or None."""
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        return None
    parent = Path(url.removeprefix("sqlite:///")).parent
    if not parent.is_dir():
        return f"the directory of the SQLite database does not exist: {str(parent)[:200]}"
    return None


def cmd_check_config(args: argparse.Namespace) -> int:
    """Every problem in one run: schema and semantic, each with its field and variable."""
    from proxy.checks import all_problems

    problems = all_problems(args.config, os.environ)
    for problem in problems:
        print(f"error: {problem}")
    if problems:
        print(f"{len(problems)} problem(s) found")
        return 1
    print("configuration OK")
    return 0


def semantic_problems(settings: Settings) -> list[str]:
    """Problems only visible once the parts are built (catalog, aliases, prices)."""
    from proxy.checks import check_settings

    return check_settings(settings)


def cmd_simulator(args: argparse.Namespace) -> int:
    from proxy.simulator.server import config_from_args, run

    configure_logging("info", "json")
    run(args.host, args.port, config_from_args(args), args.schema_port)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from proxy.demo import run_demo

    keep_open = False if args.exit else None  # None: stay up when run from a terminal
    return run_demo(seconds=args.seconds, port=args.port, seed=args.seed, keep_open=keep_open)


def _simulator_options(parser: argparse.ArgumentParser) -> None:
    from proxy.simulator.server import build_parser as simulator_parser

    simulator_parser(parser)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modellix-proxy", description=__doc__)
    parser.add_argument("--version", action="version", version=f"modellix-proxy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
    serve.add_argument(
        "--workers",
        metavar="N",
        help="serving processes sharing the port: a number or auto (default: the workers "
        "setting, $MODELLIX_PROXY_WORKERS; auto: 1 on SQLite, the cores on PostgreSQL)",
    )
    # Set by the supervisor of ``--workers N`` for each worker it starts (proxy.workers).
    for hidden, kind in (
        ("--worker-index", int),
        ("--worker-count", int),
        ("--supervisor-pid", int),
        ("--ready-fd", int),
        ("--metrics-dir", str),
    ):
        serve.add_argument(hidden, type=kind, help=argparse.SUPPRESS)
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="print every problem in the configuration")
    check.add_argument("-c", "--config", help="YAML file (default: $MODELLIX_PROXY_CONFIG)")
    check.set_defaults(func=cmd_check_config)

    sim = sub.add_parser("simulator", help="run the Modellix API simulator")
    _simulator_options(sim)
    sim.set_defaults(func=cmd_simulator)

    demo = sub.add_parser("demo", help="proxy + embedded simulator + synthetic workload")
    demo.add_argument("--seconds", type=float, default=60.0)
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument(
        "--exit",
        action="store_true",
        help="stop at the end even from a terminal (default: stay up until Ctrl-C there)",
    )
    demo.set_defaults(func=cmd_demo)

    # The operator commands, each group in its own module (imported only to build the parser).
    from proxy import cli_admin, cli_schemas
    from proxy.audit import cli as audit_cli
    from proxy.webhooks import cli as webhooks_cli

    for group in (cli_admin, webhooks_cli, cli_schemas, audit_cli):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
