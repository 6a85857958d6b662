"""Instructions per forwarded poll, counted by callgrind: a figure other load does not move.

Run: ``python -m bench.instructions [--peer proxy|bare] [--level warning|info]
[--distinct] [--polls 1500] [--warm 1000]`` (needs ``valgrind``; about 30-60 s a peer).
The peer (``modellix-proxy serve`` as ``bench.logcost`` configures it, or ``bench.bare``)
runs under ``valgrind --tool=callgrind --instr-atstart=no`` in front of a mock upstream
answering at once (``bench.mock --delay-ms 0``); after ``--warm`` unmeasured polls of 1,000
task ids, counting is switched on (``callgrind_control -i on``) for ``--polls`` more, sent
by 16 connections of a small client that sends only ``Host`` and ``Authorization``, as
wrk does. ``--distinct``: every poll names a task id never seen before (as ``bench.sweep``'s
do), so the proxy's first look at each is counted too.

The figure is the peer's instructions over the measured polls, divided by their number:
repeats agree to about 1-2 %, whatever else the machine runs. (The proxy's background
loops are counted too, a fixed amount of work per wall-clock second, and valgrind's
slowdown moves with the machine's load: hence the spread.) It says nothing of system time
or of cache misses; ``bench.logcost`` measures CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.common import log, proxy_env
from harness.config import clean_environ
from harness.ports import free_port
from harness.services import proxy_command, service

CONNECTIONS = 16
IDS = 1000
_LENGTH = re.compile(rb"(?i)\r\ncontent-length: *(\d+)")


async def _poll(port: int, first: int, count: int, distinct: bool) -> None:
    """``count`` polls over ``CONNECTIONS`` keep-alive connections; each must answer 200."""
    numbers = iter(range(first, first + count))

    async def connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for n in numbers:
            task = f"ins-{n}" if distinct else f"ins-{n % IDS}"
            writer.write(
                f"GET /api/v1/tasks/{task} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                "Authorization: Bearer bench-key\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = _LENGTH.search(head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"poll {task}: {head[:200]!r}")
        writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))


def _total(out: Path) -> int:
    """The instructions callgrind counted (its ``summary:``/``totals:`` lines)."""
    total = 0
    for dump in out.parent.glob(out.name + "*"):
        for line in dump.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    return total


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--peer", choices=("proxy", "bare"), default="proxy")
    parser.add_argument("--level", choices=("warning", "info"), default="warning")
    parser.add_argument("--distinct", action="store_true")
    parser.add_argument("--polls", type=int, default=1500)
    parser.add_argument("--warm", type=int, default=1000)
    args = parser.parse_args(argv)
    pinned = len(os.sched_getaffinity(0)) >= 2
    load_cpus, peer_cpus = ("0", "1") if pinned else (None, None)
    mock_port, peer_port = free_port(), free_port()
    mock_url, peer_url = f"http://127.0.0.1:{mock_port}", f"http://127.0.0.1:{peer_port}"
    with tempfile.TemporaryDirectory(prefix="modellix-instructions-") as tmp:
        workdir = Path(tmp)
        out = workdir / "callgrind.out"
        callgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
        callgrind.append(f"--callgrind-out-file={out}")
        if args.peer == "bare":
            command = [sys.executable, "-m", "bench.bare", "--port", str(peer_port)]
            command += ["--upstream", mock_url]
            env, ready = clean_environ("MODELLIX_"), "/_sim/state"
        else:
            command = proxy_command()
            env = proxy_env(peer_port, mock_url, f"sqlite:///{tmp}/proxy.db")
            env["MODELLIX_PROXY_LOGGING__LEVEL"] = args.level
            ready = "/healthz"
        mock = [sys.executable, "-m", "bench.mock", "--port", str(mock_port), "--delay-ms", "0"]
        with (
            service(
                "mock",
                mock,
                base_url=mock_url,
                ready_path="/_sim/state",
                workdir=workdir,
                env=clean_environ("MODELLIX_"),
                cpus=load_cpus,
            ),
            service(
                args.peer,
                [*callgrind, *command],
                base_url=peer_url,
                ready_path=ready,
                workdir=workdir,
                env=env,
                cpus=peer_cpus,
                ready_within=300.0,  # valgrind starts a Python process 20-50 times slower
            ) as peer,
        ):
            asyncio.run(_poll(peer_port, 0, args.warm, args.distinct))
            control = ["callgrind_control", "-i"]
            subprocess.run([*control, "on", str(peer.process.pid)], check=True, capture_output=True)
            asyncio.run(_poll(peer_port, args.warm, args.polls, args.distinct))
            subprocess.run(
                [*control, "off", str(peer.process.pid)], check=True, capture_output=True
            )
            # Dump now: the dump holds what was counted, whatever the peer's exit takes.
            subprocess.run(
                ["callgrind_control", "-d", str(peer.process.pid)], check=True, capture_output=True
            )
        total = _total(out)
    what = f"{args.peer}" + (f" ({args.level})" if args.peer == "proxy" else "")
    ids = "ids never seen before" if args.distinct else f"{IDS} ids in rotation"
    log(f"{what}: {total:,} instructions over {args.polls} polls of {ids}")
    print(f"{what}: {round(total / args.polls):,} instructions per forwarded poll ({ids})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
