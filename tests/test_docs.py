"""The user documents hold together: a short README, links that resolve, examples a test runs."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from prometheus_client import CollectorRegistry

from proxy.config import Settings
from proxy.telemetry.metrics import Metrics
from tests.docs_examples import (
    LANGUAGES,
    REPO,
    Kind,
    anchors,
    broken_link,
    commands,
    delegated_to,
    documents,
    fences,
    github_anchor,
    relative_links,
    step_of,
)

README_MAX_LINES = 300
#: Words that mean nothing to a reader of the documents: issue numbers and days.
NOT_FOR_USERS = re.compile(r"\bissues? #?\d+|\bthis (morning|afternoon|evening)\b|\byesterday\b")


def test_readme_is_a_front_page() -> None:
    lines = (REPO / "README.md").read_text(encoding="utf-8").count("\n")
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference to docs/"


@pytest.mark.parametrize(
    "path", [*documents(), REPO / "bench" / "README.md"], ids=lambda p: str(p.relative_to(REPO))
)
def test_every_relative_link_resolves(path: object) -> None:
    assert isinstance(path, type(REPO))
    links = relative_links(path)
    broken = [why for link in links if (why := broken_link(path, link)) is not None]
    assert not broken


def test_the_link_checker_can_fail() -> None:
    """A missing file and a missing heading are both reported."""
    readme = REPO / "README.md"
    assert broken_link(readme, "docs/no-such-page.md") is not None
    assert broken_link(readme, "docs/configuration.md#no-such-heading") is not None
    assert broken_link(readme, "docs/configuration.md") is None
    assert github_anchor("Several workers in one container: `--workers N`") == (
        "several-workers-in-one-container---workers-n"
    )
    assert "configuration" in anchors(REPO / "docs" / "configuration.md")


def test_every_fence_says_what_it_is() -> None:
    """``sh``, ``yaml``, ``json`` and ``python`` blocks are examples a test runs; ``text`` is
    not."""
    untagged = [f.where for p in documents() for f in fences(p) if f.language not in LANGUAGES]
    assert not untagged, f"tag these blocks ({', '.join(sorted(LANGUAGES))}): {untagged}"


def test_every_sh_line_has_a_way_to_run() -> None:
    """The example test knows how to run each line (or a named test runs the document's)."""
    seen = 0
    for path in documents():
        runner = delegated_to(path)
        if runner is not None:
            assert runner.is_file(), f"{path.name} names {runner}, which does not exist"
            assert path.name in runner.read_text(encoding="utf-8"), runner
            continue
        for fence in fences(path):
            if fence.language == "sh":
                for command in commands(fence.text):
                    step_of(command)  # raises for a line no kind fits
                    seen += 1
    assert seen > 10


def test_step_of_refuses_what_it_cannot_run() -> None:
    assert step_of("curl -s $MODELLIX_BASE_URL/api/v1/models") is Kind.RUN
    assert step_of("make demo   # the demo") is Kind.MAKE
    assert step_of("MODELLIX_PROXY_LISTEN__PORT=8080") is Kind.OVERRIDE
    assert step_of(".venv/bin/pytest tests/e2e -q") is Kind.PYTEST
    assert step_of("modellix-proxy serve --workers 2") is Kind.HELP
    with pytest.raises(ValueError, match="does not know how to run"):
        step_of("rm -rf /tmp/something")


def test_yaml_and_json_examples_parse() -> None:
    """Parsing is the least of it: the e2e example test checks YAML as configuration."""
    count = 0
    for path in documents():
        for fence in fences(path):
            if fence.language == "yaml":
                assert isinstance(yaml.safe_load(fence.text), dict), fence.where
                count += 1
            elif fence.language == "json":
                json.loads(fence.text)
                count += 1
    assert count > 5


def test_no_issue_numbers_or_days_in_user_documents() -> None:
    found = [
        f"{path.relative_to(REPO)}: {match.group(0)!r}"
        for path in [*documents(), REPO / "bench" / "README.md"]
        for match in NOT_FOR_USERS.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not found


def _leaves(data: object, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], object]:
    if isinstance(data, dict) and data:
        out: dict[tuple[str, ...], object] = {}
        for key, value in data.items():
            out.update(_leaves(value, (*prefix, str(key))))
        return out
    return {prefix: data}


def test_the_configuration_reference_is_every_setting_with_its_default() -> None:
    """docs/configuration.md's full reference: each field of ``Settings``, at its default."""
    (reference,) = [
        f
        for f in fences(REPO / "docs" / "configuration.md")
        if f.language == "yaml" and f.text.startswith("listen:")
    ]
    documented = _leaves(yaml.safe_load(reference.text))
    actual = _leaves(Settings().model_dump(mode="json"))

    def shown(path: tuple[str, ...]) -> bool:  # examples of open-ended maps
        return path[:2] not in {("pricing", "models"), ("models", "overrides")}

    assert {p for p in actual if shown(p)} == {p for p in documented if shown(p)}
    for path, value in documented.items():
        if shown(path):
            want = actual[path]
            if isinstance(value, list) and isinstance(want, list):  # sets written as lists
                value, want = sorted(map(str, value)), sorted(map(str, want))
            same = value == want
            assert same, f"{'.'.join(path)}: documented {value!r}, default {want!r}"


def test_the_readme_roster_is_the_roster() -> None:
    """The README's background table lists proxy/background.py's components, in its order."""
    source = (REPO / "proxy" / "background.py").read_text(encoding="utf-8")
    names = re.findall(r'(?:Loop|Closing)\("([\w-]+)"|r\.skip\(\s*"([\w-]+)"', source)
    ordered = list(dict.fromkeys(a or b for a, b in names))
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = re.findall(r"^\| `([\w-]+)` \|", readme.split("## Architecture", 1)[1], flags=re.M)
    assert ordered == table
    assert len(table) >= 10


def test_the_alert_table_is_the_rules() -> None:
    """docs/observability.md's alert table lists every shipped alert rule, and only those."""
    rules = (REPO / "dashboards" / "rules" / "modellix-proxy.yml").read_text(encoding="utf-8")
    shipped = set(re.findall(r"^\s*- alert: (\w+)", rules, flags=re.M))
    page = (REPO / "docs" / "observability.md").read_text(encoding="utf-8")
    assert set(re.findall(r"^\| `(ModellixProxy\w+)` \|", page, flags=re.M)) == shipped


def test_the_metrics_table_is_every_metric() -> None:
    """docs/observability.md's metrics table names every metric the proxy registers."""
    registry = CollectorRegistry()
    Metrics(registry)
    page = (REPO / "docs" / "observability.md").read_text(encoding="utf-8")
    documented: set[str] = set()
    for row in (line for line in page.splitlines() if line.startswith("| `modellix_proxy_")):
        first = row.split("`")[1]
        documented |= set(re.findall(r"`(modellix_proxy_\w+?)(?:_total|_info)?`", row))
        for short in re.findall(r"`(_\w+)`", row):  # `_p95_usd` beside `..._p50_usd`
            cuts = [i for i, ch in enumerate(first) if ch == "_"]
            documented |= {first[:i] + short for i in cuts}
    registered = {collector.name for collector in registry.collect()}
    assert registered - documented == set()


def test_the_admin_api_page_lists_every_admin_route() -> None:
    """Each /admin route the proxy registers (method and path) is on docs/admin-api.md."""
    registered = set()
    for path in (REPO / "proxy").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        for method, route in re.findall(r'add_(get|post|put|delete)\(\s*"(/admin[^"]*)"', source):
            registered.add(f"{method.upper()} {_shape(route)}")
    page = (REPO / "docs" / "admin-api.md").read_text(encoding="utf-8")
    found = re.findall(r"^(GET|POST|PUT|DELETE)\s+(/admin\S*)", page, flags=re.M)
    listed = {f"{method} {_shape(route.split('?')[0])}" for method, route in found}
    assert len(registered) >= 20
    assert registered - listed == set()


def _shape(route: str) -> str:
    """``/admin/jobs/{task_id:.+}`` and ``/admin/jobs/{task_id}`` alike."""
    return re.sub(r"\{[^}]*\}", "{}", route)


def test_every_page_is_reachable_from_the_readme() -> None:
    """Each docs/ page is linked from the README's "Where next" table."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    where_next = readme.split("## Where next", 1)[1].split("\n## ", 1)[0]
    linked = set(re.findall(r"\]\((docs/[\w./-]+\.md)\)", where_next))
    pages = {str(p.relative_to(REPO)) for p in (REPO / "docs").rglob("*.md")}
    assert pages - linked == set()
