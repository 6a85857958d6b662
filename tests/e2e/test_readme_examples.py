"""Every example of README.md and docs/ runs as written, found by walking the files.

One proxy (in front of the simulator, on SQLite, with an admin token) serves every document;
each document's ``sh`` lines run in order in one shell environment, as a reader would paste
them (``tests/docs_examples.py`` says how each kind of line runs):

- ``curl`` and the ``modellix-proxy`` commands that answer and exit (``check-config``,
  ``keys``, ``budgets``, ``report``, ``webhooks``, ``balance``, ``audit``, ``admin-tokens``)
  run against the proxy and its store; a ``curl`` must answer below 400 unless its comment
  says ``HTTP <status>``;
- ``<name>`` in a line is the ``name`` field of an earlier JSON answer of the same document
  (``<task_id>``, ``<key_id>``); ``$MODELLIX_BASE_URL``, ``$MODELLIX_API_KEY``, ``$ADMIN_URL``
  and ``$ADMIN_TOKEN`` are this proxy's (an ``export`` of one of them is the reader's own);
- ``MODELLIX_PROXY_...=value`` lines are configuration overrides, checked as ``check-config``
  checks them; ``yaml`` blocks are configuration, checked over a proxy with an upstream key
  and mixed keys (a fragment may need either); a missing secret file is the reader's to make;
- ``make`` lines name targets (and variables) of the Makefile; ``pytest`` lines are
  collected, not run; commands that serve or measure for minutes have every flag they use
  in their ``--help``; ``modellix-cli`` lines use only the official CLI's flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestServer

from harness.config import proxy_env
from harness.processes import ProxyProcess, start_proxy
from proxy.checks import all_problems
from proxy.config import deep_merge
from proxy.simulator import Simulator, SimulatorConfig, build_app
from tests.docs_examples import (
    PROVIDED,
    REPO,
    Fence,
    Kind,
    commands,
    delegated_to,
    documents,
    fences,
    program,
    step_of,
    words_of,
)
from tests.e2e.conftest import ServerFactory

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
API_KEY = "sk-readme-example-key-0001"
ADMIN_TOKEN = "docs-example-admin-token"
WITHIN_S = 60.0
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
#: What a configuration fragment is checked on top of: an upstream key, proxy and own keys.
FRAGMENT_BASE: dict[str, Any] = {"keys": {"mode": "mixed"}, "upstream": {"api_key": "sk-x"}}
_PLACEHOLDER = re.compile(r"<([a-z_]+)>")
_EXPECTED_STATUS = re.compile(r"#.*\bHTTP (\d{3})\b")


async def bash(command: str, env: Mapping[str, str], cwd: Path) -> tuple[int, str, str]:
    """Run one documented line with bash, as a reader would paste it."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", command, env=dict(env), cwd=cwd,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(WITHIN_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def reader_problems(problems: list[Any]) -> list[str]:
    """What is wrong with a configuration, but for secret files the reader makes."""
    return [str(p) for p in problems if "no such file" not in p.message]


def check_yaml(fence: Fence, tmp_path: Path) -> None:
    data = yaml.safe_load(fence.text)
    assert isinstance(data, dict), fence.where
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(deep_merge(json.loads(json.dumps(FRAGMENT_BASE)), data)))
    assert not reader_problems(all_problems(path, {})), fence.where


def bound(command: str, answers: dict[str, str]) -> str:
    """``<name>`` filled in from the document's earlier answers."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in answers, f"no earlier answer carries {name!r}: {command}"
        return answers[name]

    return _PLACEHOLDER.sub(fill, command)


def learn(out: str, answers: dict[str, str]) -> None:
    """Remember the string fields of a JSON answer (and of its ``data``)."""
    try:
        doc = json.loads(out)
    except ValueError:
        return
    for part in (doc, doc.get("data") if isinstance(doc, dict) else None):
        if isinstance(part, dict):
            answers.update({k: v for k, v in part.items() if isinstance(v, str)})


def make_targets() -> tuple[set[str], str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*)\s*:(?!=)", text, flags=re.M)), text


async def check_help(words: list[str], env: Mapping[str, str]) -> None:
    """Every flag of a long-running command is one its ``--help`` lists."""
    head = words[:3] if program(words[0]).startswith("python") else words[:2]
    command = " ".join(shlex.quote(w) for w in [*head, "--help"])
    code, out, err = await bash(command, env, REPO)
    assert code == 0, f"{command}: {err}"
    flags = {w.split("=", 1)[0] for w in words[len(head) :] if w.startswith("--")}
    missing = {f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", out)}
    assert not missing, f"{' '.join(words)}: {missing} not in --help"


async def run_line(
    command: str, env: dict[str, str], answers: dict[str, str], where: str, tmp_path: Path
) -> None:
    kind = step_of(command)
    words = words_of(command)
    if kind is Kind.EXPORT:
        name, _, value = words[-1].partition("=")
        if name not in PROVIDED:
            env[name] = value
        return
    if kind is Kind.OVERRIDE:
        name, _, value = words[0].partition("=")
        problems = reader_problems(all_problems(None, {name: value}))
        assert not problems, f"{where}: {command}: {problems}"
        return
    if kind is Kind.MAKE:
        targets, makefile = make_targets()
        for word in words[1:]:
            if "=" in word:
                assert re.search(rf"\b{word.split('=')[0]}\b", makefile), f"{where}: {word}"
            else:
                assert word in targets, f"{where}: no make target {word}"
        return
    if kind is Kind.PYTEST:
        line = command.replace(".venv/bin/", f"{BIN}/").split(" #", 1)[0]
        code, out, err = await bash(f"{line} --collect-only -q -p no:cacheprovider", env, REPO)
        assert code == 0, f"{where}: {out}{err}"
        assert re.search(r"\.py: [1-9]|[1-9]\d* tests? collected", out), f"{where}: {out}"
        return
    if kind is Kind.CLI:
        assert words[1:3] == ["model", "run"], f"{where}: {command}"
        assert {w for w in words if w.startswith("-")} <= CLI_RUN_FLAGS, f"{where}: {command}"
        if "--body" in words:
            json.loads(words[words.index("--body") + 1])
        return
    if kind is Kind.HELP:
        await check_help(words, env)
        return
    line = bound(command, answers)
    expected = _EXPECTED_STATUS.search(command)
    if program(words[0]) == "curl" and "|" not in line:
        line = f"{line.split(' #', 1)[0]} -w '\\n%{{http_code}}'"
    code, out, err = await bash(line, env, REPO if "check-config" in words else tmp_path)
    assert code == 0, f"{where}: {command}\n{out}\n{err}"
    if line.endswith("%{http_code}'"):
        out, _, status = out.rpartition("\n")
        if expected is not None:
            assert status == expected.group(1), f"{where}: {command}: HTTP {status}\n{out}"
        else:
            assert int(status) < 400, f"{where}: {command}: HTTP {status}\n{out}"
    if " check-config " in f"{line} ":
        assert out.strip() == "configuration OK", f"{where}: {out}{err}"
    learn(out, answers)


@pytest.fixture
async def simulator(aiohttp_server: ServerFactory) -> TestServer:
    """The simulator on loopback."""
    return await aiohttp_server(build_app(Simulator(SimulatorConfig.fast(concurrency_limit=0))))


async def test_every_documented_example_runs(simulator: TestServer, tmp_path: Path) -> None:
    """Every sh line, YAML and JSON block of README.md and docs/ runs or checks as written."""
    store = f"sqlite:///{tmp_path / 'docs.db'}"
    env = proxy_env(
        str(simulator.make_url("")).rstrip("/"),
        store,
        MODELLIX_PROXY_ADMIN__TOKEN=ADMIN_TOKEN,
        MODELLIX_PROXY_KEYS__MODE="mixed",
    )
    proxy: ProxyProcess = await start_proxy(env, tmp_path / "proxy.log")
    ran: dict[str, int] = {}
    try:
        base = {
            **env,
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "MODELLIX_BASE_URL": proxy.url,
            "MODELLIX_API_KEY": API_KEY,
            "ADMIN_URL": f"http://127.0.0.1:{proxy.admin_port}",
            "ADMIN_TOKEN": ADMIN_TOKEN,
        }
        for path in documents():
            shell, answers = dict(base), dict[str, str]()
            runs_sh = delegated_to(path) is None
            for fence in fences(path):
                if fence.language == "yaml":
                    check_yaml(fence, tmp_path)
                elif fence.language == "json":
                    json.loads(fence.text)
                elif fence.language == "sh" and runs_sh:
                    for command in commands(fence.text):
                        await run_line(command, shell, answers, fence.where, tmp_path)
                        ran[command] = ran.get(command, 0) + 1
                else:
                    continue
                key = str(path.relative_to(REPO))
                ran[key] = ran.get(key, 0) + 1

        # What the README's client section promises beyond answering: the same
        # Idempotency-Key replays the first answer, and the poll finds that task.
        submit = next(c for c in ran if c.startswith("curl -s $MODELLIX_BASE_URL/api/v1/minimax"))
        assert "Idempotency-Key" in submit
        first = json.loads((await bash(submit, base, tmp_path))[1])
        again = json.loads((await bash(submit, base, tmp_path))[1])
        assert first["code"] == 0
        assert again["data"]["task_id"] == first["data"]["task_id"]
    finally:
        await proxy.kill()
    assert {"README.md", "docs/configuration.md", "docs/governance.md"} <= set(ran)
    assert any(c.startswith("modellix-proxy keys create") for c in ran)
