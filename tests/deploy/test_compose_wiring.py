"""The compose setup would come up: every address names a service on a port it serves.

Docker cannot run here and the Compose plugin is not in the package archives (only the
legacy Python ``docker-compose`` 1.x is), so this is a static cross-check of the compose file,
the Dockerfile, the Prometheus, Alertmanager and Grafana configs: who calls whom, on which
port, who waits for whom, and what each health check asks.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PROXY_IMAGE = "modellix-proxy:local"
#: Ports the third-party images serve (their documented defaults; the file changes none).
IMAGE_PORTS = {
    "postgres": {5432},
    "prom/prometheus": {9090},
    "prom/alertmanager": {9093},
    "grafana/grafana": {3000},
    "jaegertracing/all-in-one": {4317, 4318, 16686},
}


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    block = text[text.rindex("ENV PATH=") :].split("\nUSER", 1)[0]
    return dict(re.findall(r"(MODELLIX_PROXY_\w+)=(\S+)", block))


def _argv(value: Any) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def served_ports(name: str) -> set[int]:
    """What a service listens on, from its image, command line or environment."""
    service = SERVICES[name]
    image = str(service.get("image", ""))
    argv = _argv(service.get("entrypoint")) + _argv(service.get("command"))
    if image == PROXY_IMAGE:
        if "simulator" in argv:
            ports = {int(argv[argv.index("--port") + 1])}
            if "--schema-port" in argv:  # the published schemas' origin
                ports.add(int(argv[argv.index("--schema-port") + 1]))
            return ports
        env = {**_dockerfile_env(), **service.get("environment", {})}
        return {int(env["MODELLIX_PROXY_LISTEN__PORT"]), int(env["MODELLIX_PROXY_ADMIN__PORT"])}
    for prefix, ports in IMAGE_PORTS.items():
        if image.split(":")[0] == prefix:
            return ports
    script = "\n".join(argv)
    found = re.findall(r"\(\"0\.0\.0\.0\", (\d+)\)", script)
    assert found, f"{name}: cannot tell which port it serves"
    return {int(p) for p in found}


def _default(value: str) -> str:
    """``${VAR:-default}`` as compose resolves it with the variable unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def addresses() -> list[tuple[str, str]]:
    """Every (where, URL or host:port) one part of the setup uses to reach another."""
    found: list[tuple[str, str]] = []
    for name, service in SERVICES.items():
        for key, value in (service.get("environment") or {}).items():
            if isinstance(value, str) and "://" in value:
                found.append((f"{name}.{key}", _default(value)))
    prometheus = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for static in job["static_configs"]:
            found += [(f"prometheus scrape {job['job_name']}", t) for t in static["targets"]]
    for manager in prometheus["alerting"]["alertmanagers"]:
        for static in manager["static_configs"]:
            found += [("prometheus alerting", t) for t in static["targets"]]
    alertmanager = yaml.safe_load((ROOT / "dashboards/alertmanager/alertmanager.yml").read_text())
    for receiver in alertmanager["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            found.append((f"alertmanager receiver {receiver['name']}", hook["url"]))
    for path in (ROOT / "dashboards" / "provisioning" / "datasources").glob("*.yml"):
        for source in yaml.safe_load(path.read_text())["datasources"]:
            found.append((f"grafana datasource {source['name']}", source["url"]))
    return found


def _host_port(address: str) -> tuple[str, int]:
    url = urlsplit(address if "://" in address else f"tcp://{address}")
    default = {"http": 80, "https": 443, "postgresql": 5432}.get(url.scheme, 0)
    assert url.hostname is not None, address
    return url.hostname, url.port or default


def test_every_address_is_a_service_on_a_port_it_serves() -> None:
    """Upstream, store, traces, scrapes, alerting, webhooks and data sources all resolve."""
    seen = addresses()
    assert len(seen) >= 8
    for where, address in seen:
        host, port = _host_port(address)
        assert host in SERVICES, f"{where}: {address} names no service"
        assert port in served_ports(host), f"{where}: {host} does not serve port {port}"


def test_health_checks_ask_ports_the_services_serve() -> None:
    """A service on the proxy image that is not the proxy overrides the image's health check."""
    image_check = re.search(r"HEALTHCHECK.*?(\d{4,5})/healthz", (ROOT / "Dockerfile").read_text(),
                            flags=re.S)  # fmt: skip
    assert image_check is not None
    image_port = int(image_check.group(1))
    for name, service in SERVICES.items():
        check = service.get("healthcheck")
        if service.get("image") == PROXY_IMAGE and check is None:
            assert image_port in served_ports(name), f"{name} inherits a check on {image_port}"
        if check is None:
            continue
        command = " ".join(_argv(check["test"]))
        ports = {
            int(p) for p in re.findall(r"(?:127\.0\.0\.1|localhost)'?,?\s*:?(\d{4,5})", command)
        }
        assert ports <= served_ports(name), f"{name}: health check asks {ports}"


def _depends(name: str) -> dict[str, str]:
    raw = SERVICES[name].get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {k: v.get("condition", "service_started") for k, v in raw.items()}


def test_services_wait_for_what_they_call_and_never_in_a_circle() -> None:
    """A proxy waits for a healthy store and upstream; nothing waits on a proxy; no cycles."""
    for name in SERVICES:
        for callee, condition in _depends(name).items():
            assert callee in SERVICES, f"{name} depends on {callee}, not a service"
            if condition == "service_healthy":
                assert SERVICES[callee].get("healthcheck") or (
                    SERVICES[callee].get("image") == PROXY_IMAGE
                ), f"{name} waits for {callee} to be healthy, which has no health check"
    proxies = [
        n
        for n, s in SERVICES.items()
        if s.get("image") == PROXY_IMAGE and "simulator" not in _argv(s.get("entrypoint"))
    ]
    assert proxies == ["proxy-a", "proxy-b"]
    for proxy in proxies:
        assert _depends(proxy) == {"postgres": "service_healthy", "simulator": "service_healthy"}
    for name in SERVICES:
        assert not set(_depends(name)) & set(proxies), f"{name} waits for a proxy"

    def reachable(start: str, path: tuple[str, ...]) -> None:
        for callee in _depends(start):
            assert callee not in path, f"dependency cycle: {' -> '.join((*path, callee))}"
            reachable(callee, (*path, callee))

    for name in SERVICES:
        reachable(name, (name,))


def test_images_built_here_are_built_by_every_service_that_starts_first() -> None:
    """The local image is built by the services that use it (none would pull it)."""
    users = {n: s for n, s in SERVICES.items() if s.get("image") == PROXY_IMAGE}
    assert users, f"no service runs {PROXY_IMAGE}"
    for name, service in users.items():
        assert service.get("build"), f"{name} uses {PROXY_IMAGE} without building it"
