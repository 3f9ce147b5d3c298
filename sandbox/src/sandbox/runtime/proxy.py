"""A service: a real TCP proxy on a local port.

Each new connection asks ``backends()`` for the ready pods that the service's
selector matches at that moment and goes, round-robin, to one of them; so a
selector change re-routes new connections at once, while connections already
open (requests in flight) finish on the pod they started on, as with kube-proxy's
conntrack.  With no ready backend the connection is refused (closed at once),
as a Service without endpoints rejects it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import socket
from collections.abc import Callable

log = logging.getLogger(__name__)

Backends = Callable[[], list[tuple[str, int]]]


class ServiceProxy:
    def __init__(self, host: str, port: int, backends: Backends, name: str = ""):
        self.host = host
        self.port = port
        self.name = name
        self._backends = backends
        self._counter = itertools.count()
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self.connections_served = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()

    def retarget(self, backends: Backends) -> None:
        self._backends = backends

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            backends = self._backends()
            if not backends:
                _reset(client_writer)
                return
            host, port = backends[next(self._counter) % len(backends)]
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
            except OSError:
                _reset(client_writer)
                return
            self.connections_served += 1
            await asyncio.gather(
                _pipe(client_reader, upstream_writer),
                _pipe(upstream_reader, client_writer),
                return_exceptions=True,
            )
        finally:
            self._connections.discard(task)
            client_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass
    finally:
        if reader.at_eof():
            # the client is gone: nothing to close, and nothing of this copy is worth raising
            return  # noqa: B012
        writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST, as a connection to a service with no endpoints is refused."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
    writer.close()
