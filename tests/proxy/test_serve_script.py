"""`make serve` (scripts/serve.sh): the example config, the simulator started for it, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path

import pytest

from harness.config import clean_environ
from harness.ports import free_ports

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
WITHIN_S = 30.0


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _submit(port: int) -> tuple[int, dict[str, object]]:
    connection = HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps({"prompt": "a red fox in snow"})
        headers = {"Authorization": "Bearer sk-serve-script", "Content-Type": "application/json"}
        connection.request("POST", "/api/v1/minimax/hailuo-02-t2v", body, headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_make_serve_runs_the_example_config_with_its_simulator(tmp_path: Path) -> None:
    """The example config works as shipped; the simulator comes up and goes with the proxy."""
    listen, admin, upstream = free_ports(3)
    env = {
        **clean_environ(),
        "BIN": str(Path(sys.executable).parent),
        "MODELLIX_PROXY_LISTEN__PORT": str(listen),
        "MODELLIX_PROXY_ADMIN__PORT": str(admin),
        "MODELLIX_PROXY_UPSTREAM__ORIGIN": f"http://127.0.0.1:{upstream}",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "serve.sh"), str(ROOT / "config.example.yaml")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
        )
    try:
        deadline = time.monotonic() + WITHIN_S
        while not _listening(listen):
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the proxy did not come up"
            time.sleep(0.1)
        assert _listening(upstream), "the simulator was not started"
        status, doc = _submit(listen)
        assert status == 200, doc
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=WITHIN_S) == 0
        output = log.read_text()
        assert f"starting the simulator on http://127.0.0.1:{upstream}" in output
        deadline = time.monotonic() + WITHIN_S
        while _listening(upstream) or _listening(listen):
            assert time.monotonic() < deadline, "the simulator or the proxy outlived Ctrl-C"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
