"""The store is a layer: nothing under proxy/stores imports a feature of the proxy, only
other store modules and the leaf utilities listed here (which import nothing of the proxy).
Read from the source with ``ast``, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STORES = ROOT / "proxy" / "stores"
ALLOWED_LEAVES = frozenset({"proxy.jsoncodec", "proxy.money"})
"""What a store module may import from outside ``proxy.stores``: JSON and money codecs."""


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _proxy_imports(source: str, package: str) -> set[str]:
    """Every ``proxy...`` name imported by ``source`` (a module of ``package``): ``from a
    import b`` as ``a.b``, relative imports resolved."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "proxy" or name.startswith("proxy.")}


def _imports_of(path: Path) -> set[str]:
    module = _module(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    return _proxy_imports(path.read_text(), package)


def _allowed(name: str) -> bool:
    return any(
        name == top or name.startswith(f"{top}.") for top in {"proxy.stores", *ALLOWED_LEAVES}
    )


def test_store_modules_import_only_the_store_and_leaf_utilities() -> None:
    """No module under proxy/stores imports a proxy package outside the allowed list."""
    sources = sorted(STORES.rglob("*.py"))
    assert len(sources) > 20  # the walk found the store (a moved folder fails here)
    outside = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sources
        for name in _imports_of(path)
        if not _allowed(name)
    }
    assert outside == set()


def test_allowed_leaf_utilities_import_nothing_of_the_proxy() -> None:
    """The leaves the store may use are leaves: they import no proxy module themselves."""
    for leaf in sorted(ALLOWED_LEAVES):
        path = ROOT / (leaf.replace(".", "/") + ".py")
        assert _imports_of(path) == set(), leaf


def test_the_check_sees_a_feature_import() -> None:
    """The reader catches absolute, relative and in-function imports of a feature."""
    source = (
        "from proxy.stores.records import JobRecord\n"
        "from . import _sql\n"
        "from proxy.money import sample\n"
        "from ..webhooks import document\n"
        "def f() -> None:\n"
        "    import proxy.jobs.ledger\n"
    )
    names = _proxy_imports(source, "proxy.stores")
    assert {n for n in names if not _allowed(n)} == {"proxy.webhooks.document", "proxy.jobs.ledger"}
