"""No import cycles in proxy, bench, chaos or the shared harness: every module can be read
(and loaded) after the modules it imports, so a shared piece lives in the module it belongs
to, not in whichever importer came first.

Read from the source with ``ast``: an import inside a function, or under ``TYPE_CHECKING``,
counts too (deferring an import hides a cycle; it does not remove it).
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("proxy", "bench", "chaos", "harness")


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name (a package by its own)."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imported(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names an import statement names: ``from a import b`` as ``a.b`` (``b`` may
    be a module or a name in ``a``), relative imports resolved against ``package``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        anchor = parts[: len(parts) - node.level + 1]
        base = ".".join([*anchor, base] if base else anchor)
    return [f"{base}.{alias.name}" for alias in node.names]


def import_graph(root: Path, packages: tuple[str, ...]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports anywhere in its source."""
    modules = _modules(root, packages)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for dotted in _imported(node, package):
                while dotted and dotted not in modules:  # a name in a module: the module
                    dotted = dotted.rpartition(".")[0]
                if dotted and dotted != name:
                    targets.add(dotted)
        graph[name] = targets
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (its first module repeated at the end), or None."""
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as err:
        cycle: list[str] = err.args[1]
        return cycle
    return None


def test_proxy_bench_chaos_and_harness_have_no_import_cycle() -> None:
    """No module of proxy, bench, chaos or harness imports, even indirectly, one importing it."""
    graph = import_graph(ROOT, PACKAGES)
    assert len(graph) > 200  # the walk found the packages (a moved folder fails here)
    assert {"proxy.cli", "bench.run", "chaos", "harness"} <= set(graph)
    assert "proxy.cli_common" in graph["proxy.cli_admin"]  # edges are seen
    cycle = cycle_in(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_check_sees_a_deferred_cycle(tmp_path: Path) -> None:
    """A cycle closed by an import inside a function or under TYPE_CHECKING is found."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub.b import thing\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import Other\nthing = 1\n"
    )
    (package / "sub" / "c.py").write_text("def f() -> None:\n    from ..a import x\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.a"] == {"pkg.sub.b"}
    assert graph["pkg.sub.b"] == {"pkg.sub.c"}
    assert graph["pkg.sub.c"] == {"pkg.a"}
    cycle = cycle_in(graph)
    assert cycle is not None
    assert set(cycle) == {"pkg.a", "pkg.sub.b", "pkg.sub.c"}
    (package / "sub" / "c.py").write_text("import os\n")  # the cycle broken: nothing found
    assert cycle_in(import_graph(tmp_path, ("pkg",))) is None
