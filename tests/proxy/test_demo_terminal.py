"""`modellix-proxy demo` from a terminal keeps the proxy up until Ctrl-C, and says so."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from http.client import HTTPConnection
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent / "modellix-proxy"
WITHIN_S = 90.0


def _read_until(fd: int, pattern: str, within: float) -> str:
    """Read the terminal until ``pattern`` shows up; everything read so far."""
    seen = ""
    deadline = time.monotonic() + within
    while re.search(pattern, seen) is None:
        left = deadline - time.monotonic()
        assert left > 0, f"no {pattern!r} within {within}s:\n{seen}"
        ready, _, _ = select.select([fd], [], [], min(left, 1.0))
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                break
            seen += chunk.decode(errors="replace")
    return seen


def _health(base: str) -> int:
    """GET /healthz on the proxy; its status."""
    url = urlsplit(base)
    connection = HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=5)
    try:
        connection.request("GET", "/healthz")
        return connection.getresponse().status
    finally:
        connection.close()


def test_demo_in_a_terminal_stays_up_until_ctrl_c(tmp_path: Path) -> None:
    """After its summary the demo says it stays up; the proxy answers until SIGINT stops it."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(BIN), "demo", "--seconds", "2", "--port", "0"],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        cwd=tmp_path,
        env={**os.environ, "PATH": os.environ.get("PATH", "")},
    )
    os.close(terminal)
    try:
        text = _read_until(
            controller, r"until you press Ctrl-C:.*\n.*MODELLIX_BASE_URL=\S+", WITHIN_S
        )
        base = re.findall(r"MODELLIX_BASE_URL=(\S+)", text)[-1]
        assert "Summary" in text
        assert _health(base) == 200
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        with pytest.raises(ConnectionRefusedError):
            _health(base)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(controller)
