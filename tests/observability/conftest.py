"""Shared fixtures for the observability tests: promtool lookup and repository paths."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "dashboards"


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool; tests needing it are skipped only when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return path


def run_promtool(promtool: str, *args: str, stdin: str | None = None) -> None:
    """Run promtool and fail the test with its output when it exits non-zero."""
    done = subprocess.run(
        [promtool, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
