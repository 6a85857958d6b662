"""Under CI a skip fails the run unless allowed; on a workstation it stays a skip. Real pytest
runs of a small test file with the suite's hooks, as CI and a workstation run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.waits import PROCESS_START_S
from tests.ci_skips import allowance, in_ci

ROOT = Path(__file__).resolve().parents[2]
CONFTEST = (
    "from tests.ci_skips import pytest_collectreport, pytest_runtest_makereport  # noqa: F401\n"
)
SAMPLE = """
import pytest


def test_runs() -> None:
    assert True


def test_skips() -> None:
    pytest.skip("no widget here")


@pytest.fixture
def tool() -> None:
    pytest.skip("no tool here")


def test_skips_in_a_fixture(tool: None) -> None:
    assert True


@pytest.mark.xfail(reason="known")
def test_expected_to_fail() -> None:
    raise AssertionError
"""


def run(tmp_path: Path, ci: str | None, source: str = SAMPLE) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_sample.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfs", str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_START_S,
        check=False,
    )


def test_under_ci_a_skip_fails_the_run(tmp_path: Path) -> None:
    """CI=true: a test skipped in its body fails, one skipped by a fixture errors (at set-up),
    each naming its reason; an expected failure stays one."""
    done = run(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "1 failed, 1 passed, 1 xfailed, 1 error" in done.stdout
    assert "skipped under CI (no widget here)" in done.stdout
    assert "skipped under CI (no tool here)" in done.stdout


def test_on_a_workstation_a_skip_stays_a_skip(tmp_path: Path) -> None:
    """No CI (or CI=false): the same file passes with its skips."""
    for ci in (None, "false"):
        done = run(tmp_path, ci)
        assert done.returncode == 0, done.stdout
        assert "1 passed, 2 skipped, 1 xfailed" in done.stdout


def test_under_ci_a_module_level_skip_fails_collection(tmp_path: Path) -> None:
    """A whole file skipped at import (importorskip, allow_module_level) fails under CI too."""
    source = 'import pytest\n\npytest.importorskip("no_such_module_here")\n' + SAMPLE
    done = run(tmp_path, "true", source)
    assert done.returncode != 0, done.stdout
    assert "skipped under CI" in done.stdout


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/a/test_x.py::test_one", "one test"),
        ("tests/a/test_x.py::test_param[sqlite]", "every parameter"),
        ("tests/a/test_x.py::test_param[postgres]", "every parameter"),
        ("tests/a/test_x.py::test_exact[a]", "that parameter"),
        ("tests/a/test_x.py::test_exact[b]", None),
        ("tests/b/test_y.py::test_any", "the whole file"),
        ("tests/a/test_x.py::test_other", None),
    ],
)
def test_the_allow_list_names_tests_files_or_parameters(nodeid: str, expected: str | None) -> None:
    allowed = {
        "tests/a/test_x.py::test_one": "one test",
        "tests/a/test_x.py::test_param": "every parameter",
        "tests/a/test_x.py::test_exact[a]": "that parameter",
        "tests/b/test_y.py": "the whole file",
    }
    assert allowance(nodeid, allowed) == expected


def test_ci_is_read_as_ci_services_set_it() -> None:
    for value in ("true", "1", "True", "yes"):
        assert in_ci({"CI": value}), value
    for value in ("", "false", "0", "no"):
        assert not in_ci({"CI": value}), value
    assert not in_ci({})
