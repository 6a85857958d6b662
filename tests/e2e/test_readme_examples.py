"""The README's examples run as written: curl, check-config and the admin CLI, on a live proxy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from proxy.simulator import Simulator, SimulatorConfig
from tests.e2e.conftest import ServerFactory
from tests.e2e.processes import ProxyProcess, proxy_env, start_proxy

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BIN = Path(sys.executable).parent
API_KEY = "sk-readme-example-key-0001"
WITHIN_S = 30.0
#: Flags of the official CLI's `model run` (Modellix/modellix-cli src/commands/model/run.ts).
CLI_RUN_FLAGS = frozenset(
    [
        "--api-key",
        "--body",
        "--body-file",
        "--interval",
        "--max-body-bytes",
        "--model-slug",
        "--output",
        "--quiet",
        "-q",
        "--timeout",
        "--wait",
        "--no-wait",
    ]
)


def sh_blocks(markdown: str) -> list[str]:
    """The README's ```sh blocks."""
    return re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)


def commands(block: str) -> list[str]:
    """A block's commands, continuation lines joined, comments kept for bash to ignore."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [line.strip() for line in joined.splitlines() if line.strip()]


def section(markdown: str, title: str) -> str:
    """The text under a ``## title`` heading, up to the next one."""
    start = markdown.index(f"\n## {title}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


async def bash(command: str, env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run one README line with bash, as a reader would paste it."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, env=env, cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WITHIN_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def simulator(aiohttp_server: ServerFactory) -> TestServer:
    """The simulator on loopback."""
    return await aiohttp_server(Simulator(SimulatorConfig.fast(concurrency_limit=0)).create_app())


async def test_readme_examples_run_as_written(simulator: TestServer, tmp_path: Path) -> None:
    """Every curl, check-config and admin CLI line of the README runs and does what it says."""
    text = README.read_text(encoding="utf-8")
    store = f"sqlite:///{tmp_path / 'readme.db'}"
    env = proxy_env(str(simulator.make_url("")).rstrip("/"), store)
    proxy: ProxyProcess = await start_proxy(env, tmp_path / "proxy.log")
    try:
        shell = {**env, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
                 "MODELLIX_BASE_URL": proxy.url, "MODELLIX_API_KEY": API_KEY}  # fmt: skip
        client = section(text, "Point a client at the proxy")
        lines = [c for b in sh_blocks(client) for c in commands(b)]
        cli = [c for c in lines if c.startswith("modellix-cli ")]
        assert len(cli) == 1
        words = shlex.split(cli[0])
        assert words[1:3] == ["model", "run"]
        assert {w for w in words if w.startswith("-")} <= CLI_RUN_FLAGS
        json.loads(words[words.index("--body") + 1])
        curls = [c for c in lines if c.startswith("curl ")]
        assert len(curls) == 2
        code, out, err = await bash(curls[0], shell, tmp_path)
        assert code == 0, err
        submitted = json.loads(out)
        assert submitted["code"] == 0, submitted
        task_id = submitted["data"]["task_id"]
        code, again, _ = await bash(curls[0], shell, tmp_path)  # same Idempotency-Key: replayed
        assert json.loads(again)["data"]["task_id"] == task_id
        code, out, err = await bash(curls[1].replace("<task_id>", task_id), shell, tmp_path)
        assert code == 0, err
        assert json.loads(out)["data"]["task_id"] == task_id

        checks = [c for b in sh_blocks(text) for c in commands(b) if " check-config " in f"{c} "]
        assert checks
        for check in checks:
            code, out, err = await bash(check, {**shell, "MODELLIX_PROXY_STORE__URL": store},
                                        REPO)  # fmt: skip
            assert (code, out.strip()) == (0, "configuration OK"), err

        admin = section(text, "Keys, budgets and the spend report")
        runs = [c for b in sh_blocks(admin) for c in commands(b) if c.startswith("modellix-proxy")]
        assert {shlex.split(c)[1] for c in runs} == {"keys", "budgets", "report"}
        key_id = None
        for command in runs:
            if key_id is not None:
                command = command.replace("3f9a0c1b2d4e", key_id)
            code, out, err = await bash(command, shell, tmp_path)
            assert code == 0, f"{command}\n{out}\n{err}"
            if " keys create " in f"{command} ":
                key_id = json.loads(out)["key_id"]
        assert key_id is not None
    finally:
        await proxy.kill()
