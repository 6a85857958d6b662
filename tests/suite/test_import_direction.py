"""Nothing outside ``tests/`` imports ``tests``: the proxy, the shared harness, the fault suite
and the benchmarks run without the test suite, and what they share with it lives in
``harness``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "harness", "chaos", "bench")


def imports_of_tests(source: str) -> list[str]:
    """The import statements in ``source`` that name ``tests`` or a module under it."""

    def is_tests(module: str) -> bool:
        return module == "tests" or module.startswith("tests.")

    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if is_tests(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and is_tests(node.module or ""):
            found.append(f"from {node.module} import ...")
    return found


def test_the_scan_finds_each_spelling() -> None:
    """Top-level, nested and ``import tests.x`` forms are all caught; look-alikes are not."""
    source = (
        "import tests\nimport tests.support as s\nfrom tests.e2e import conftest\n"
        "def f():\n    from tests import support\n"
        "import testsuite\nfrom testing import x\nfrom . import tests\n"
    )
    assert imports_of_tests(source) == [
        "import tests",
        "import tests.support",
        "from tests.e2e import ...",
        "from tests import ...",
    ]


def test_no_package_outside_tests_imports_tests() -> None:
    """Every module of proxy/, harness/, chaos/ and bench/ imports nothing from ``tests``."""
    scanned = 0
    offenders: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            scanned += 1
            found = imports_of_tests(path.read_text(encoding="utf-8"))
            if found:
                offenders[str(path.relative_to(ROOT))] = found
    assert scanned > 150
    assert offenders == {}
