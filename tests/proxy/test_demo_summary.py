"""`modellix-proxy demo` without a terminal: its ledger equals the simulator's billing."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent / "modellix-proxy"


def test_demo_ledger_equals_billing_and_buys_nothing_twice(tmp_path: Path) -> None:
    """A short demo (every model family, an upstream-listed one included) ends with the
    ledger equal to what the simulator billed and one upstream task per accepted job."""
    done = subprocess.run(
        [str(BIN), "demo", "--seconds", "6", "--port", "0", "--exit"],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    ledger = re.search(r"ledger spend (\S+)\s+vs\s+simulator billed (\S+)\s+\(equal\)", out)
    assert ledger is not None, out[-2000:]
    assert ledger[1] == ledger[2]
    tasks = re.search(r"tasks created upstream (\d+)\s+vs\s+jobs accepted (\d+)", out)
    assert tasks is not None
    assert tasks[1] == tasks[2]
    assert int(tasks[1]) > 0
