"""What can be checked of the image and the compose setup without a Docker engine."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.support import required_binary

ROOT = Path(__file__).resolve().parents[2]


def test_compose_mounts_point_at_files_in_the_repo() -> None:
    """Every bind mount and secret in the compose file names something that exists."""
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    base = ROOT / "deploy"
    mounts = 0
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (base / source).resolve().exists(), f"{name}: {source}"
                mounts += 1
    assert mounts, "no bind mount found to check"
    assert compose["secrets"], "no secret found to check"
    for secret in compose["secrets"].values():
        assert (base / secret["file"]).exists()
    assert {"proxy-a", "proxy-b", "postgres", "prometheus", "grafana", "alertmanager"} <= set(
        compose["services"]
    )


@pytest.mark.prometheus
def test_compose_prometheus_config_is_valid(tmp_path: Path) -> None:
    """``promtool check config`` accepts the compose Prometheus config with the shipped rules."""
    promtool = required_binary("promtool", "apt-get install prometheus")
    config = (ROOT / "deploy" / "prometheus.yml").read_text()
    rules = ROOT / "dashboards" / "rules"
    local = tmp_path / "prometheus.yml"
    local.write_text(config.replace("/etc/modellix-proxy/rules", str(rules)))
    result = subprocess.run(
        [promtool, "check", "config", str(local)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_wheel_carries_the_catalog_and_migrations(tmp_path: Path) -> None:
    """The package the image installs includes the catalog data and the SQL migrations."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    wheel = next(tmp_path.glob("modellix_proxy-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "proxy/catalog/data/catalog.json" in names
    assert any(n.startswith("proxy/stores/migrations/sqlite/0001") for n in names)
    assert any(n.startswith("proxy/stores/migrations/postgres/0001") for n in names)
    assert "proxy/py.typed" in names


def test_dockerfile_runs_as_non_root_with_a_health_check() -> None:
    """The image drops root and checks its own health."""
    text = (ROOT / "Dockerfile").read_text()
    assert "\nUSER proxy\n" in text
    assert "HEALTHCHECK" in text
    assert "pip install ." in text
