"""Access lines written off the event loop's thread: in order, what has queued in one write.

A ``write(2)`` to a log file is nearly always a copy into the page cache, but on a
journalling file system it can wait for the journal while something else on the same file
system is made durable (SQLite's ``fsync`` of the ledger, at every background
transaction). Measured under the latency sweep with the write on the event loop: one
access line in a thousand took 4-8 ms to write, and the loop and every request in flight
waited with it. Here the loop only queues the rendered line; one thread writes whatever
has queued within ``GATHER_SECONDS`` of the first line of a batch, joined, and flushes (a
pipe that is full holds up that thread, not the loop). Woken for every line instead, the
thread cost the loop a hand-over of the GIL per request. While lines keep coming it goes
on sleeping ``GATHER_SECONDS`` and writing what came, and waits on the queue again only
after a quiet spell: each return from that wait is a hand-over of the GIL too.

A line queued is written unless the process is killed before the thread gets to it (about
``GATHER_SECONDS``); ``close`` (at exit, or when logging is configured again) writes every
queued line first. A stream that fails to take a write loses that batch, as a log line
that cannot be written is lost anyway; the failure is not raised into a request.
"""

from __future__ import annotations

import threading
import time
from queue import Empty, SimpleQueue
from typing import BinaryIO

GATHER_SECONDS = 0.01
"""How long the thread lets lines gather after the first of a batch before writing them."""


class LineWriter:
    """One thread writing the lines given to ``write``, in order, to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self._queue: SimpleQueue[bytes | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def write(self, line: bytes) -> None:
        """Queue ``line`` (rendered, newline included); it is written soon after, in order."""
        self._queue.put(line)

    def close(self, timeout: float = 5.0) -> None:
        """Write what has queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()  # quiet: wait for the first line of a burst
            if first is None:
                return
            batch = [first]
            while True:
                # Let a batch gather: one wake-up of this thread per batch, not per line (on
                # a busy proxy each wake-up is a context switch and a hand-over of the GIL).
                # While lines keep coming the thread goes on sleeping and writing, without
                # waiting on the queue in between (one wake-up and hand-over fewer a batch).
                time.sleep(GATHER_SECONDS)
                done = self._take(batch)
                if batch:
                    self._write(batch)
                if done:
                    return
                if not batch:
                    break
                batch = []

    def _take(self, batch: list[bytes]) -> bool:
        """Move the queued lines to ``batch``; whether ``close`` asked to stop."""
        while True:
            try:
                more = self._queue.get_nowait()
            except Empty:
                return False
            if more is None:
                return True
            batch.append(more)

    def _write(self, batch: list[bytes]) -> None:
        try:
            self.raw.write(b"".join(batch))
            self.raw.flush()
        except (OSError, ValueError):  # closed or broken: these lines are lost
            pass
