"""A throwaway Prometheus for the demo, when the binary is installed."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "dashboards" / "rules" / "modellix-proxy.yml"


class PrometheusProcess:
    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self._process = process
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def start_if_installed(cls, workdir: Path, admin_port: int | None) -> PrometheusProcess | None:
        binary = shutil.which("prometheus")
        if binary is None or admin_port is None:
            return None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        rules = f"rule_files: ['{RULES}']\n" if RULES.exists() else ""
        config = workdir / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 2s, evaluation_interval: 5s}\n"
            f"{rules}"
            "scrape_configs:\n"
            "  - job_name: modellix-proxy\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{admin_port}']}}]\n",
            encoding="utf-8",
        )
        log = (workdir / "prometheus.log").open("wb")
        process = subprocess.Popen(  # noqa: S603 - fixed arguments, binary from PATH
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--enable-feature=exemplar-storage",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return cls(process, port)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
