"""A TCP relay the suite controls, put between the proxy and PostgreSQL.

It forwards bytes both ways and can, on command:

- ``pause()``: hold every byte in both directions (a stalled store; connections stay up);
- ``resume()``: let bytes flow again;
- ``cut()``: reset every open connection (RST, not FIN: the peer sees a broken socket);
- ``close()`` / ``open()``: refuse new connections (each is reset as soon as it is
  accepted, so the store looks unreachable) or accept them again.

Only loopback is used; the shared PostgreSQL server itself is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

CHUNK = 64 * 1024


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST: SO_LINGER 0, then close without flushing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Relay:
    """Forward ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._accepting = True
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.connections_seen = 0

    async def start(self) -> Relay:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        """Stop listening and reset every connection."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.cut()
        self._flowing.set()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        """Refuse new connections and reset the open ones."""
        self._accepting = False
        self.cut()

    def open(self) -> None:
        self._accepting = True

    def cut(self) -> int:
        """Reset every open connection; how many were cut."""
        pairs = list(self._pairs)
        self._pairs.clear()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        return len(pairs)

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections_seen += 1
        if not self._accepting:
            _reset(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        try:
            async with asyncio.TaskGroup() as group:
                self._tasks.add(group.create_task(self._pump(reader, up_writer)))
                self._tasks.add(group.create_task(self._pump(up_reader, writer)))
        except* (OSError, asyncio.IncompleteReadError):
            pass  # one side went away: the pair is torn down below
        finally:
            self._tasks = {t for t in self._tasks if not t.done()}
            if pair in self._pairs:
                self._pairs.discard(pair)
                _reset(writer)
                _reset(up_writer)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(CHUNK)
            await self._flowing.wait()
            if not data:
                with contextlib.suppress(OSError):
                    writer.write_eof()
                return
            writer.write(data)
            await writer.drain()
