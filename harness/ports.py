"""Free loopback ports for the processes a test, a fault scenario or a benchmark starts."""

from __future__ import annotations

import random
import socket


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports, below Linux's ephemeral range.

    Ports the kernel hands out for outgoing connections (32768 and up) could be taken
    by a test's own client sockets before the proxy binds them; these cannot.
    """
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randrange(20000, 32000)
        if port in chosen:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    return chosen


def free_port() -> int:
    """One free loopback port (``free_ports(1)``)."""
    return free_ports(1)[0]
