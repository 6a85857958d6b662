"""``serve --workers N``: N serving processes on one client port, and their supervisor.

The supervisor is the process the operator started. It binds (without listening) the
client and admin ports with ``SO_REUSEADDR`` and ``SO_REUSEPORT`` (``proxy.listening``: a
port that a busy proxy has just left binds at once; one a live server holds does not), so
a port given as 0 becomes one concrete port that every worker, and every restarted worker,
binds again; then it starts the workers as ``python -m proxy serve`` subprocesses, each
listening on the client port with ``SO_REUSEPORT`` (the kernel spreads new connections over
them). Worker 0 starts alone (it applies migrations; a store it cannot reach ends the start
with its one-line error), then the others together. After that the supervisor:

- restarts a worker that exits, after a backoff that doubles from 0.5 s up to 30 s while
  restarts keep failing within 30 s;
- on SIGTERM or SIGINT sends SIGTERM to every worker (each stops accepting and lets its
  in-flight requests finish within ``shutdown_grace_seconds``), kills what is still there
  10 s after that, and exits;
- gives its workers a fresh ``PROMETHEUS_MULTIPROC_DIR`` and removes it at exit
  (``proxy.telemetry.multiprocess``; after a ``kill -9`` of the supervisor, worker 0
  removes it on its way out).

A worker exits when its supervisor does, even after ``kill -9`` (``PR_SET_PDEATHSIG`` on
Linux, and a check of the parent pid every second everywhere): nothing is orphaned.

Every worker is a replica of its own (``host:pid``) that shares only the store with the
others, exactly as replicas on several hosts do: the watcher, recovery sweep, retention,
webhook deliveries, balance reconciliation and admission dispatcher run in each worker and
take turns through the store's leases. The settings describe the whole group: the
watcher's poll rate and in-flight cap and the upstream connection pool are divided among
the workers. Worker 0 alone serves the admin listener (``/metrics`` for the whole group,
the admin API).

Default (``workers: auto``): one process on SQLite, whose file one process writes (its
group commit batches the writers of one process; a second process would queue on the file
lock with ``busy_timeout`` instead, adding contention, not throughput); on PostgreSQL the
cores this process may use (its CPU affinity, capped by a cgroup CPU quota). More than one
worker on SQLite is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from proxy.config import Settings
from proxy.listening import reserve_port_retrying

log = structlog.get_logger("proxy.workers")

BACKOFF_SECONDS = (0.5, 30.0)
"""First and longest pause before restarting a worker that exited."""
STABLE_SECONDS = 30.0
"""A worker that ran this long before exiting is restarted after the shortest pause."""
KILL_AFTER_GRACE_SECONDS = 10.0
"""A worker still running this long after the grace period is killed."""
PARENT_CHECK_SECONDS = 1.0
PR_SET_PDEATHSIG = 1
READY = b"ready\n"


# --- how many ---------------------------------------------------------------------------------


def usable_cores(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may run on, capped by a cgroup v2 CPU quota when there is one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        return max(1, cores)
    if quota != "max" and int(period) > 0:
        cores = min(cores, math.ceil(int(quota) / int(period)))
    return max(1, cores)


def worker_count(settings: Settings, cores: int | None = None) -> int:
    """``settings.workers``, with ``auto`` resolved: 1 on SQLite, else the usable cores."""
    if isinstance(settings.workers, int):
        return settings.workers
    if settings.store.url.startswith("sqlite"):
        return 1
    return usable_cores() if cores is None else cores


def worker_settings(settings: Settings, count: int) -> Settings:
    """One worker's share of the limits that ``settings`` sets for the whole group."""
    if count <= 1:
        return settings
    watcher = settings.watcher.model_copy(
        update={
            "max_polls_per_second": settings.watcher.max_polls_per_second / count,
            "max_in_flight": math.ceil(settings.watcher.max_in_flight / count),
        }
    )
    upstream = settings.upstream.model_copy(
        update={"pool_size": math.ceil(settings.upstream.pool_size / count)}
    )
    return settings.model_copy(update={"watcher": watcher, "upstream": upstream})


# --- the worker's side ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What a worker process was told by its supervisor (hidden ``serve`` options)."""

    index: int
    count: int
    supervisor_pid: int
    ready_fd: int | None = None
    metrics_dir: Path | None = None

    @property
    def serves_admin(self) -> bool:
        return self.index == 0


def die_with_supervisor(role: WorkerRole) -> None:
    """Ask Linux for SIGTERM when the supervisor dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != role.supervisor_pid:  # it died before the request above
        raise SystemExit(1)


async def watch_supervisor(role: WorkerRole, stop: asyncio.Event) -> None:
    """Set ``stop`` once the supervisor is gone (where there is no PR_SET_PDEATHSIG)."""
    while True:  # no event tells of a parent's death: the pid is looked at every second
        await asyncio.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != role.supervisor_pid:
            break
    log.warning("worker.supervisor_gone", worker=role.index)
    stop.set()


def orphaned_metrics(role: WorkerRole) -> None:
    """After a worker's stop, with its supervisor gone: remove the metrics directory it left.

    Worker 0 removes it; so does any worker that finds no other worker of the group alive
    (the pids in the directory's file names), so the directory goes even when worker 0 did
    not get that far (killed, or its stop failed).
    """
    directory = role.metrics_dir
    if directory is None or not supervisor_gone(role):
        return
    if role.serves_admin or not _others_alive(directory):
        shutil.rmtree(directory, ignore_errors=True)


def supervisor_gone(role: WorkerRole) -> bool:
    """Whether the supervisor has died (or is dying).

    A kill -9 ends the supervisor's threads one by one: when the thread that started this
    worker ends first, the kernel hands the worker to another thread of the same dying
    process and sends ``PR_SET_PDEATHSIG`` then (again when the last thread ends), so
    ``getppid()`` can still name the supervisor while it dies. Its main thread is then a
    zombie: that is read from ``/proc`` too.
    """
    if os.getppid() != role.supervisor_pid:
        return True
    try:
        stat = Path(f"/proc/{role.supervisor_pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _others_alive(directory: Path) -> bool:
    """Whether a process other than this one that wrote into ``directory`` still runs."""
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    pids = {int(n.rsplit("_", 1)[1].split(".")[0]) for n in names if n.endswith(".db")}
    return any(_running(pid) for pid in pids - {os.getpid()})


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def report_ready(role: WorkerRole) -> None:
    """Tell the supervisor this worker listens (once; the pipe is closed after)."""
    if role.ready_fd is None:
        return
    try:
        os.write(role.ready_fd, READY)
    finally:
        os.close(role.ready_fd)


# --- the supervisor ---------------------------------------------------------------------------


class WorkerFailed(Exception):
    """A worker exited before it was ready during the group's start."""

    def __init__(self, index: int, code: int) -> None:
        super().__init__(f"worker {index} exited with {code} before it was ready")
        self.index = index
        self.code = code


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    started: float


class Supervisor:
    """Runs ``count`` workers of ``command`` until told to stop; see the module."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        command: Sequence[str],
        environ: Mapping[str, str],
    ) -> None:
        self._settings = settings
        self._count = count
        self._command = list(command)
        self._environ = dict(environ)
        self._stopping = asyncio.Event()
        self._workers: dict[int, _Worker] = {}
        self._metrics_dir: Path | None = None
        self.restarts = 0

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> int:
        """The exit status: 0 after a requested stop, else the failed worker's."""
        settings = self._settings
        held, port = await reserve_port_retrying(
            "listen", settings.listen.host, settings.listen.port
        )
        env = dict(self._environ)
        env["MODELLIX_PROXY_LISTEN__PORT"] = str(port)
        if settings.admin.enabled:
            try:
                admin_held, admin_port = await reserve_port_retrying(
                    "admin", settings.admin.host, settings.admin.port
                )
            except BaseException:
                for sock in held:
                    sock.close()
                raise
            held.extend(admin_held)
            env["MODELLIX_PROXY_ADMIN__PORT"] = str(admin_port)
        self._metrics_dir = Path(tempfile.mkdtemp(prefix="modellix-proxy-metrics-"))
        env["PROMETHEUS_MULTIPROC_DIR"] = str(self._metrics_dir)
        self._environ = env
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        log.info("workers.starting", workers=self._count, port=port, pid=os.getpid())
        try:
            return await self._serve()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            for sock in held:
                sock.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)

    async def _serve(self) -> int:
        starts: list[BaseException | None] = [await _failure(self._start(0))]
        if starts[0] is None:
            starts += await asyncio.gather(
                *(_failure(self._start(i)) for i in range(1, self._count))
            )
        for failed in starts:
            if failed is not None:
                await self._stop_all()
                if self._stopping.is_set():  # told to stop while starting: not a failure
                    return 0
                if not isinstance(failed, WorkerFailed):
                    raise failed
                log.error("workers.start_failed", worker=failed.index, code=failed.code)
                return failed.code if failed.code > 0 else 1
        if self._stopping.is_set():
            await self._stop_all()
            return 0
        log.info(
            "workers.started",
            workers=self._count,
            pids=[w.process.pid for w in self._workers.values()],
        )
        async with asyncio.TaskGroup() as group:
            for index in range(self._count):
                group.create_task(self._keep(index), name=f"worker-{index}")
            await self._stopping.wait()
            await self._stop_all()
        log.info("workers.stopped")
        return 0

    async def _spawn(self, index: int) -> tuple[asyncio.subprocess.Process, bool]:
        """Start worker ``index``; whether it reported ready (else it has exited)."""
        read_end, write_end = os.pipe()
        try:
            argv = [
                *self._command,
                f"--worker-index={index}",
                f"--worker-count={self._count}",
                f"--supervisor-pid={os.getpid()}",
                f"--ready-fd={write_end}",
                f"--metrics-dir={self._metrics_dir}",
            ]
            process = await asyncio.create_subprocess_exec(
                *argv, env=self._environ, pass_fds=(write_end,)
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._workers[index] = _Worker(index, process, time.monotonic())
        reader = asyncio.StreamReader()
        pipe = os.fdopen(read_end, "rb", buffering=0)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        try:
            said = await reader.readline()  # b"" once the worker has exited
        finally:
            transport.close()
        if self._stopping.is_set():  # started while the group was stopping: stop it too
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        return process, said == READY

    async def _start(self, index: int) -> None:
        process, ready = await self._spawn(index)
        if not ready:
            code = await process.wait()
            self._buried(process.pid)
            raise WorkerFailed(index, code)

    async def _keep(self, index: int) -> None:
        """Wait for worker ``index`` to exit and start it again, until the group stops."""
        failures = 0
        while True:
            worker = self._workers[index]
            code = await worker.process.wait()
            self._buried(worker.process.pid)
            if self._stopping.is_set():
                return
            ran = time.monotonic() - worker.started
            failures = 0 if ran >= STABLE_SECONDS else failures + 1
            low, high = BACKOFF_SECONDS
            pause = min(high, low * 2 ** max(0, failures - 1))
            log.warning(
                "worker.exited",
                worker=index,
                pid=worker.process.pid,
                code=code,
                ran_seconds=round(ran, 1),
                restart_in_seconds=pause,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=pause)
            if self._stopping.is_set():
                return
            self.restarts += 1
            try:
                process, ready = await self._spawn(index)
            except OSError as exc:  # no fork, no pipe: the old worker stays buried; try again
                log.error("worker.not_restarted", worker=index, error=str(exc))
                self._workers[index] = _Worker(index, worker.process, time.monotonic())
                continue
            if ready:
                log.info("worker.restarted", worker=index, pid=process.pid)

    def _buried(self, pid: int) -> None:
        """A worker is gone: its live gauges leave the totals."""
        if self._metrics_dir is None:
            return
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, str(self._metrics_dir))  # type: ignore[no-untyped-call]

    async def _stop_all(self) -> None:
        """SIGTERM to every worker; SIGKILL to any still there after the grace period."""
        live = [w.process for w in self._workers.values() if w.process.returncode is None]
        log.info("workers.stopping", workers=len(live))
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        within = self._settings.shutdown_grace_seconds + KILL_AFTER_GRACE_SECONDS
        try:
            async with asyncio.timeout(within):
                await asyncio.gather(*(p.wait() for p in live))
        except TimeoutError:
            for process in live:
                if process.returncode is None:
                    log.error("worker.killed", pid=process.pid, after_seconds=within)
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.gather(*(p.wait() for p in live))


async def _failure(start: Awaitable[None]) -> BaseException | None:
    """What ``start`` raised (``None``: the worker is ready)."""
    try:
        await start
    except Exception as exc:  # noqa: BLE001 - handed to the caller, which re-raises it
        return exc
    return None


def supervise(
    settings: Settings, count: int, command: Sequence[str], environ: Mapping[str, str]
) -> int:
    """Run the supervisor on its own event loop (asyncio's: it only waits); its exit status."""
    return asyncio.run(Supervisor(settings, count, command, environ).run())
