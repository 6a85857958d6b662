"""docs/simulator.md says what the simulator does: its tables match, its examples run."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from harness.ports import free_port
from harness.processes import stop, wait_answering
from proxy.simulator.config import SimulatorConfig
from proxy.simulator.listing import Listing
from proxy.simulator.server import build_parser

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "simulator.md"
BIN = Path(sys.executable).parent
WITHIN_S = 30.0


def _section(title: str) -> str:
    text = DOC.read_text("utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def _rows(markdown: str) -> list[list[str]]:
    rows = []
    for line in markdown.splitlines():
        if line.startswith("| ") and not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows[1:]  # the header


def _sh(markdown: str) -> list[str]:
    return [line for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.S)
            for line in block.splitlines() if line.strip()]  # fmt: skip


def test_price_table_is_the_listing() -> None:
    """The documented models, prices, units and featured flags are exactly the served ones."""
    documented = _rows(_section("Models and prices"))
    served = []
    for offer in Listing(SimulatorConfig()).offers.values():
        spec = offer.spec
        keyed = " ".join(v if k == "*" else f"{k}={v}" for k, v in
                         ((k, str(v)) for k, v in spec.price.items()))  # fmt: skip
        served.append(
            [f"`{spec.slug}`", spec.type, keyed, spec.unit, "yes" if spec.featured else ""]
        )
    assert documented == served


def test_options_table_is_the_parser() -> None:
    """Every documented command-line option exists and every option is documented."""
    documented = {row[0].strip("`") for row in _rows(_section("Running it"))}
    options = {
        s for a in build_parser()._actions for s in a.option_strings if s.startswith("--")
    } - {"--help"}
    assert documented == options


@contextlib.asynccontextmanager
async def _started(command: str) -> AsyncIterator[tuple[dict[str, str], dict[str, str]]]:
    """The simulator a documented command line starts, moved to free ports."""
    ports = {"9100": str(free_port()), "9101": str(free_port())}
    command = command.replace(
        "--port 9100", f"--port {ports['9100']} --schema-port {ports['9101']}"
    )
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", f"exec {command}", env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_answering(process, f"http://127.0.0.1:{ports['9100']}/_sim/state")
        yield ports, env
    finally:
        await stop(process)


@pytest.fixture
async def documented_simulator() -> AsyncIterator[tuple[dict[str, str], dict[str, str]]]:
    """The simulator started by the doc's own command line (Running it), on free ports."""
    (command,) = _sh(_section("Running it"))
    async with _started(command) as started:
        yield started


async def _bash(command: str, env: dict[str, str]) -> str:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WITHIN_S):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_examples_run_as_written(
    documented_simulator: tuple[dict[str, str], dict[str, str]],
) -> None:
    """The Examples lines run against the documented command and answer what the text says."""
    ports, env = documented_simulator
    lines = _sh(_section("Examples"))
    for placeholder, port in ports.items():
        lines = [line.replace(f":{placeholder}/", f":{port}/") for line in lines]
    featured, schema, submitted, billed, price, narrow, no_billing, tiered = lines
    models = json.loads(await _bash(featured, env))["models"]
    assert "google/nano-banana-2-lite" in {m["slug"] for m in models}
    document = json.loads(await _bash(schema, env))
    assert document["post"]["operationId"] == "seedance20FastI2v"
    task_id = json.loads(await _bash(submitted, env))["data"]["task_id"]
    api = f"http://127.0.0.1:{ports['9100']}"
    poll = f"curl -s {api}/api/v1/tasks/{task_id} -H 'Authorization: Bearer sk-any'"
    for _ in range(int(WITHIN_S / 0.05)):  # the fast preset finishes a task within 0.3 s
        answer = json.loads(await _bash(poll, env))
        if answer["data"]["status"] == "success":
            break
        await asyncio.sleep(0.05)
    assert answer["data"]["billing"] == {"status": "succeeded", "amount": "0.2400"}
    assert json.loads(await _bash(billed, env))["total_micros"] == 240_000

    assert json.loads(await _bash(price, env))["data"]["charged"] == 0.2
    models = json.loads(await _bash(featured, env))["models"]
    kling = next(m for m in models if m["slug"] == "kling/kling-v3-t2v")
    assert kling["price"] == {"fixed": 0.1, "unit": "$/sec"}  # the stale list
    schema_after = json.loads(await _bash(narrow, env))["data"]
    body = schema_after["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["resolution"]["enum"] == ["720p"]
    assert json.loads(await _bash(no_billing, env))["data"] == {"report_billing": False}
    refused = await _bash(
        f"curl -s -X POST {api}/api/v1/bytedance/seedance-2.0-t2v -H 'Authorization: Bearer k' "
        """-d '{"prompt": "x", "resolution": "1080p"}'""",
        env,
    )
    assert json.loads(refused)["code"] == 400

    async with _started(tiered) as (tier_ports, _):
        state = f"curl -s http://127.0.0.1:{tier_ports['9100']}/_sim/state"
        limits = json.loads(await _bash(state, env))["limits"]["default"]
        assert limits == {"tier": 0, "concurrency": 2, "rpm": 100, "kling_rpm": 100}
