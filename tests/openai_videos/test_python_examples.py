"""Every ``python`` example of README.md and docs/ runs as written (a reader's own Python, the
official OpenAI SDK installed) against a proxy in front of the simulator, and exits 0."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.simulator import SimulatorConfig
from proxy.simulator.results import file_bytes
from tests.docs_examples import Fence, documents, fences
from tests.e2e.conftest import Stack

API_KEY = "sk-python-example-key-0001"
WITHIN_S = 60.0
EXAMPLES = [f for path in documents() for f in fences(path) if f.language == "python"]


def test_the_readme_has_a_python_example() -> None:
    """The README shows the OpenAI SDK pointed at the proxy."""
    assert any(f.path.name == "README.md" for f in EXAMPLES)


@pytest.mark.parametrize("fence", EXAMPLES, ids=lambda f: f.where)
async def test_python_example_runs(fence: Fence, make_stack: Any, tmp_path: Path) -> None:
    """The block runs to exit 0 with ``MODELLIX_BASE_URL`` and ``MODELLIX_API_KEY`` set; a file
    it downloads is what the simulator's result URL serves."""
    stack: Stack = await make_stack(SimulatorConfig.fast(concurrency_limit=0))
    stack.sim.config = stack.sim.config.model_copy(update={"file_origin": stack.sim_url})
    env = {
        "PATH": os.environ.get("PATH", ""),
        "MODELLIX_BASE_URL": stack.proxy_url,
        "MODELLIX_API_KEY": API_KEY,
        "PYTHONWARNINGS": "ignore::DeprecationWarning",  # the SDK's notice about OpenAI's Sora
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", fence.text, env=env, cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WITHIN_S):
        out, err = await process.communicate()
    assert process.returncode == 0, f"{fence.where}: {err.decode()[-2000:]}"
    assert out
    done = [
        t.task_id for t in stack.sim.tasks.values() if t.status_at(stack.sim.clock()) == "success"
    ]
    files = downloaded(tmp_path)
    assert files or "write_to_file" not in fence.text
    assert files <= {file_bytes(task_id) for task_id in done}


def downloaded(folder: Path) -> set[bytes]:
    """The videos an example wrote into ``folder``."""
    return {path.read_bytes() for path in folder.glob("*.mp4")}
