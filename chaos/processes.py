"""The real processes a fault scenario runs: the simulated upstream and the proxies.

Processes are started with the shared harness (``harness.processes``: the same
``start_proxy``, readiness waits and stops as the end-to-end tests); this module adds what
the fault suite needs on top: an upstream process that can be killed and restarted on
the same port, and a fleet of proxies that can lose a member.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from harness.ports import free_port
from harness.processes import (
    ProxyProcess,
    kill,
    spawn,
    start_proxy,
    start_proxy_on,
    stop,
    wait_answering,
)


@dataclass
class Upstream:
    """``python -m chaos.upstream`` on a fixed port; every generation appends to one journal."""

    workdir: Path
    config: Mapping[str, Any] = field(default_factory=dict)
    latency: float = 0.0
    port: int = field(default_factory=free_port)
    schema_port: int = field(default_factory=free_port)
    generation: int = 0
    process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def schema_url(self) -> str:
        """The schema origin (``/models/{provider}/{model}/api_schema``)."""
        return f"http://127.0.0.1:{self.schema_port}"

    @property
    def journal(self) -> Path:
        return self.workdir / "upstream-tasks.jsonl"

    async def start(self) -> None:
        """Start a new generation and wait until it answers ``/_sim/state``."""
        self.generation += 1
        log = self.workdir / "upstream.log"
        argv = [
            sys.executable,
            "-m",
            "chaos.upstream",
            "--port",
            str(self.port),
            "--schema-port",
            str(self.schema_port),
            "--journal",
            str(self.journal),
            "--config",
            json.dumps(dict(self.config)),
            "--latency",
            str(self.latency),
            "--generation",
            str(self.generation),
        ]
        self.process = await spawn(argv, log)
        await wait_answering(self.process, f"{self.url}/_sim/state", log)

    async def kill(self) -> None:
        if self.process is not None:
            await kill(self.process)

    async def stop(self) -> None:
        if self.process is not None:
            await stop(self.process)

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.request(method, f"{self.url}{path}", json=body) as resp,
        ):
            return await resp.json()

    async def inject(self, name: str, count: int, route: str = "submit") -> None:
        await self.control("POST", "/_sim/faults", {"name": name, "count": count, "route": route})

    async def submits_received(self) -> int:
        try:
            state = await self.control("GET", "/_sim/state")
        except (aiohttp.ClientError, TimeoutError):
            return 0
        return int(state["counters"]["submits_received"])

    def tasks(self) -> list[dict[str, Any]]:
        """Every task any generation created (the journal)."""
        if not self.journal.exists():
            return []
        lines = self.journal.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class Fleet:
    """Proxy replicas sharing one store; a member is ``None`` while it is down."""

    env: Mapping[str, str]
    workdir: Path
    size: int = 1
    members: list[ProxyProcess | None] = field(default_factory=list)
    starts: int = 0

    async def start_all(self) -> None:
        started = await asyncio.gather(
            *(self._start(i) for i in range(self.size)), return_exceptions=True
        )
        self.members = [p if isinstance(p, ProxyProcess) else None for p in started]
        for failure in started:
            if isinstance(failure, BaseException):
                raise failure

    async def _start(self, index: int) -> ProxyProcess:
        self.starts += 1
        return await start_proxy(self.env, self.workdir / f"proxy-{index}.log")

    async def kill(self, index: int) -> None:
        member = self.members[index]
        self.members[index] = None
        if member is not None:
            await member.kill(signal.SIGKILL)

    async def restart(self, index: int) -> None:
        self.members[index] = await self._start(index)

    async def kill_group(self, index: int) -> ProxyProcess | None:
        """kill -9 of member ``index`` and its workers at once; the member that was."""
        member = self.members[index]
        self.members[index] = None
        if member is not None:
            await member.kill_group()
        return member

    async def restart_on(self, index: int, port: int, admin_port: int) -> None:
        """Start member ``index`` again on the ports given (those of a member just gone)."""
        self.starts += 1
        log = self.workdir / f"proxy-{index}.log"
        self.members[index] = await start_proxy_on(self.env, log, port, admin_port)

    def urls(self) -> list[str]:
        return [m.url for m in self.members if m is not None]

    async def stop_all(self) -> None:
        for index, member in enumerate(self.members):
            self.members[index] = None
            if member is not None:
                await member.stop()
