"""What every ``modellix-proxy`` command module shares: settings read or a clean exit, and
a store opened for one operator command.

Kept apart from ``proxy.cli`` (the parser and serving) so the command modules
(``cli_admin``, ``cli_schemas``, ``webhooks.cli``) depend on it and ``proxy.cli`` depends on
them, never the other way round.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping

from proxy.config import ConfigError, Settings, load
from proxy.stores import Store, open_store
from proxy.telemetry.logging import configure_logging
from proxy.webhooks.document import render_delivery


def settings_or_exit(path: str | None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from ``path`` and the environment; every problem printed, exit 2, if none."""
    try:
        return load(path, os.environ if environ is None else environ)
    except ConfigError as err:
        for problem in err.problems:
            print(f"config: {problem}", file=sys.stderr)
        raise SystemExit(2) from err


def with_store(args: argparse.Namespace, work: Callable[[Store, Settings], Awaitable[int]]) -> int:
    """Run ``work`` on the configured store (``args.config``), closed afterwards; its exit code.
    Log events go to stderr, in the configured format."""
    settings = settings_or_exit(args.config)
    # Events (an admin action's ``audit.recorded`` line) on the process's stderr: stdout is
    # the command's output.
    configure_logging(
        settings.logging.level, settings.logging.format, stream=sys.__stderr__ or sys.stderr
    )

    async def run() -> int:
        store = await open_store(settings.store.url, render_delivery=render_delivery)
        try:
            return await work(store, settings)
        finally:
            await store.close()

    return asyncio.run(run())
