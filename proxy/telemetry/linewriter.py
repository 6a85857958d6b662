"""Access lines written off the event loop's thread: in order, what has queued in one write.

A ``write(2)`` to a log file is nearly always a copy into the page cache, but on a
journalling file system it can wait for the journal while something else on the same file
system is made durable (SQLite's ``fsync`` of the ledger, at every background
transaction). Measured under the latency sweep with the write on the event loop: one
access line in a thousand took 4-8 ms to write, and the loop and every request in flight
waited with it. Here the loop only queues the rendered line; one thread writes whatever
has queued within ``GATHER_SECONDS`` of the first line of a batch, joined, and flushes (a
pipe that is full holds up that thread, not the loop). Woken for every line instead, the
thread cost the loop a hand-over of the GIL per request.

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
            first = self._queue.get()
            batch = [] if first is None else [first]
            done = first is None
            if not done:
                # Let a batch gather: one wake-up of this thread per batch, not per line (on
                # a busy proxy each wake-up is a context switch and a hand-over of the GIL).
                time.sleep(GATHER_SECONDS)
            while not done:
                try:
                    more = self._queue.get_nowait()
                except Empty:
                    break
                if more is None:
                    done = True
                else:
                    batch.append(more)
            if batch:
                try:
                    self.raw.write(b"".join(batch))
                    self.raw.flush()
                except (OSError, ValueError):  # closed or broken: these lines are lost
                    pass
            if done:
                return
