"""The process harness shared by ``tests/``, ``chaos/`` and ``bench/``.

One place for what all three need to run the proxy and its stand-ins as real processes:
free loopback ports (``ports``), the environment and settings a proxy is started with
(``config``), starting ``modellix-proxy serve`` or any service subprocess and waiting until
it answers, stopping and killing it (``processes`` for asyncio callers, ``services`` for
the synchronous benchmarks), a fresh PostgreSQL database (``postgres``), and the one
condition wait with the bounds every wait is derived from (``waits``).

It is a sibling of ``tests/``, ``chaos/`` and ``bench/`` (run from the repository root,
type-checked with them) and not part of the installed ``proxy`` package: nothing here is
needed to run the proxy. It imports nothing from ``tests`` (``tests/suite`` checks that no
package outside ``tests`` does).
"""
