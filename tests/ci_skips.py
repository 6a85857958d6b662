"""Under CI a skipped test is a failure: a test that skips can never fail, and CI (``.ci/run``
on a clean clone, ``make test`` installing every service and tool) has all a test needs.

Hooks for ``tests/conftest.py``; on a workstation (``CI`` unset) skips stay skips. A test that
must be able to skip even in CI is listed in ``ALLOWED`` with the reason.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Mapping

import pytest

ALLOWED: Mapping[str, str] = {}
"""Node ids (a whole file: its path; one test: ``path::name``, parameters included or not)
that may skip under CI, each with why. Empty: every test the suite has runs in CI."""


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``CI`` says this is a CI run (``true``, ``1`` or ``yes``, as CI services set)."""
    return environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def allowance(nodeid: str, allowed: Mapping[str, str] = ALLOWED) -> str | None:
    """Why ``nodeid`` may skip under CI, or ``None``: it must not."""
    path, _, name = nodeid.partition("::")
    bare = name.split("[", 1)[0]
    for key in (nodeid, f"{path}::{bare}", path):
        if key in allowed:
            return allowed[key]
    return None


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The reason a skipped report gives."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _fail_unless_allowed(report: pytest.CollectReport | pytest.TestReport) -> None:
    if not report.skipped or hasattr(report, "wasxfail") or not in_ci():
        return
    if allowance(report.nodeid) is not None:
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI ({skip_reason(report)}): in CI every test must run; "
        "provide what it needs, or list it in tests/ci_skips.py ALLOWED with the reason"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _fail_unless_allowed(report)
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collectreport(report: pytest.CollectReport) -> None:
    _fail_unless_allowed(report)
