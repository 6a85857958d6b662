"""How many workers ``serve`` runs, what each gets, and the reserved port they share."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from proxy.config import ConfigError, load
from proxy.listening import reserve_port
from proxy.workers import (
    WorkerRole,
    orphaned_metrics,
    usable_cores,
    worker_count,
    worker_settings,
)

PG = {"MODELLIX_PROXY_STORE__URL": "postgresql://postgres@127.0.0.1:5432/x"}


def test_auto_is_one_on_sqlite_and_the_cores_on_postgresql() -> None:
    """``workers: auto`` (the default): one process owns a SQLite file; PostgreSQL: cores."""
    assert worker_count(load(None, {}), cores=8) == 1
    assert worker_count(load(None, PG), cores=8) == 8
    assert worker_count(load(None, {**PG, "MODELLIX_PROXY_WORKERS": "3"}), cores=8) == 3
    assert worker_count(load(None, {"MODELLIX_PROXY_WORKERS": "1"}), cores=8) == 1


@pytest.mark.parametrize("url", ["sqlite:///ledger.db", "sqlite:////var/lib/proxy/ledger.db"])
def test_more_than_one_worker_on_sqlite_is_refused(url: str) -> None:
    """A SQLite file has one writing process: two workers are a configuration error."""
    with pytest.raises(ConfigError, match="workers: a SQLite store is written by one process"):
        load(None, {"MODELLIX_PROXY_STORE__URL": url, "MODELLIX_PROXY_WORKERS": "2"})


def test_usable_cores_follow_a_cgroup_quota(tmp_path: Path) -> None:
    """A container limited to 1.5 CPUs gets 2 workers at most; no quota: the affinity."""
    limit = tmp_path / "cpu.max"
    limit.write_text("150000 100000\n", encoding="ascii")
    assert usable_cores(limit) <= 2
    limit.write_text("max 100000\n", encoding="ascii")
    assert usable_cores(limit) >= 1
    assert usable_cores(tmp_path / "missing") >= 1


def test_each_worker_gets_its_share_of_the_group_limits() -> None:
    """The watcher's poll rate and in-flight cap and the upstream pool describe the group."""
    settings = load(None, PG)
    share = worker_settings(settings, 4)
    assert share.watcher.max_polls_per_second == settings.watcher.max_polls_per_second / 4
    assert share.watcher.max_in_flight == 16
    assert share.upstream.pool_size == 25
    assert worker_settings(settings, 1) is settings


def test_a_reserved_port_is_shared_by_reuseport_listeners_only() -> None:
    """Port 0 becomes one port; SO_REUSEPORT listeners join it, anyone else is refused."""
    held, port = reserve_port("127.0.0.1", 0)
    try:
        assert port > 0
        with socket.socket() as worker:
            worker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            worker.bind(("127.0.0.1", port))
            worker.listen()
        with socket.socket() as stranger, pytest.raises(OSError, match="in use"):
            stranger.bind(("127.0.0.1", port))
    finally:
        for sock in held:
            sock.close()


def test_the_last_worker_of_a_dead_supervisor_removes_the_metrics_directory(
    tmp_path: Path,
) -> None:
    """Worker 0 removes it; another worker does when no other writer of it is alive."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    dead = 2**22 + 12345  # above pid_max's default: no such process
    (directory / f"counter_{dead}.db").write_bytes(b"")
    (directory / f"counter_{os.getpid()}.db").write_bytes(b"")
    live_sibling = directory / f"histogram_{os.getppid()}.db"
    live_sibling.write_bytes(b"")
    gone_supervisor = dead + 1
    role = WorkerRole(index=1, count=2, supervisor_pid=gone_supervisor, metrics_dir=directory)
    orphaned_metrics(role)
    assert directory.is_dir()  # another worker (here: a live process) still writes there
    live_sibling.unlink()
    orphaned_metrics(role)
    assert not directory.exists()
    directory.mkdir()
    (directory / f"counter_{os.getppid()}.db").write_bytes(b"")
    orphaned_metrics(WorkerRole(0, 2, gone_supervisor, metrics_dir=directory))
    assert not directory.exists()  # worker 0 does in any case
