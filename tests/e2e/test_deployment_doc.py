"""docs/deployment.md's examples run as written: a restart on a busy port, a port in use."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.ports import free_ports
from proxy.simulator import Simulator, SimulatorConfig, build_app
from tests.e2e.conftest import ServerFactory

pytestmark = pytest.mark.slow
DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
BIN = Path(sys.executable).parent


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)


async def run_block(block: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        block,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(90):
        out, _ = await process.communicate()
    return process.returncode or 0, out.decode(errors="replace")


@pytest.fixture
async def simulator(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(build_app(Simulator(SimulatorConfig.fast())))


async def test_the_restart_examples_run_as_written(simulator: TestServer, tmp_path: Path) -> None:
    restart, refused = sh_blocks()
    port, admin_port = free_ports(2)
    sim_url = str(simulator.make_url("")).rstrip("/")
    env = proxy_env(sim_url, f"sqlite:///{tmp_path / 'doc.db'}")
    env.update(
        PORT=str(port),
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        MODELLIX_PROXY_LISTEN__HOST="127.0.0.1",
        MODELLIX_PROXY_LISTEN__PORT=str(port),
        MODELLIX_PROXY_ADMIN__PORT=str(admin_port),
    )
    code, out = await run_block(restart, env, tmp_path)
    assert code == 0, out
    assert f"ready again on {port}" in out

    code, out = await run_block(refused, env, tmp_path)
    assert code == 0, out
    assert "exit status 1" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"listen: cannot bind 127.0.0.1:{port}: address already in use"), out
    assert "Traceback" not in (tmp_path / "refused.log").read_text()
