"""In-memory twins of the proxy's two I/O edges, for tests: no socket is ever opened.

Like httpx's ``MockTransport``, these are test infrastructure shipped with
the package so that tests (ours, and those of code built on the proxy) can
drive the real proxy code without a network:

- :class:`MemoryUpstream` implements :class:`~rewind_vcs.proxy.upstream.Upstream`
  (what :class:`~rewind_vcs.proxy.handler.ForwardHandler` sends requests to)
  from a script of :class:`Scripted` answers: a status, headers and body
  chunks, or a transport failure before the head or after some chunks, or a
  wait that only ends when cancelled. It keeps every request it got.
- :class:`MemoryClient` is one client connection to a
  :class:`~rewind_vcs.proxy.server.ProxyServer` over an in-memory transport:
  it feeds request bytes to the server's real connection code (HTTP/1.1
  framing, routing, the handler contract) and collects what the server
  writes back, parsed with h11.

Both run on the caller's event loop and need no thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import h11

from rewind_vcs.proxy.headers import Headers
from rewind_vcs.proxy.upstream import UpstreamResponse, UpstreamTransportError
from rewind_vcs.store.records import TransportError

if TYPE_CHECKING:
    from rewind_vcs.proxy.server import ProxyServer


@dataclass(frozen=True)
class UpstreamRequest:
    """One request a :class:`MemoryUpstream` received."""

    method: str
    url_base: str
    path: str
    headers: Headers
    body: bytes
    timeout: float | None


@dataclass
class Scripted:
    """One scripted upstream answer.

    ``error`` fails the exchange before the head (refused, reset, timeout, a
    bad head...); ``hang_before_head`` first waits until cancelled. Otherwise
    the head is answered, then ``chunks`` one by one: ``cut_after`` chunks in,
    the body fails with ``cut``; ``hang_after`` chunks in, the body waits
    until cancelled. ``raises`` raises that exception from ``request()`` (a
    bug, not the network).
    """

    status: int = 200
    reason: str = "OK"
    headers: Headers = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    error: TransportError | None = None
    cut_after: int | None = None
    cut: TransportError = TransportError.CONNECTION_RESET
    hang_before_head: bool = False
    hang_after: int | None = None
    raises: Exception | None = None

    @classmethod
    def body(
        cls, data: bytes, status: int = 200, content_type: str = "application/json"
    ) -> Scripted:
        """A whole body in one chunk, with its Content-Type and Content-Length."""
        headers = [("Content-Type", content_type), ("Content-Length", str(len(data)))]
        return cls(status=status, headers=headers, chunks=[data])


Script = Callable[[UpstreamRequest], Scripted] | Iterable[Scripted]


class MemoryUpstream:
    """A scripted :class:`~rewind_vcs.proxy.upstream.Upstream` (a test twin).

    ``script`` is a function from the request to its :class:`Scripted` answer,
    or a sequence of answers given out in order (an exhausted sequence answers
    with a refused connection).
    """

    def __init__(self, script: Script) -> None:
        self._respond = script if callable(script) else None
        self._queue = [] if callable(script) else list(script)
        self.requests: list[UpstreamRequest] = []
        #: Waits (for a head or a chunk) cancelled by the caller.
        self.cancelled = 0
        #: Bodies started and not yet ended or closed.
        self.open_bodies = 0
        self.closed = False

    async def request(
        self,
        method: str,
        url_base: str,
        path: str,
        headers: Headers,
        body: bytes = b"",
        *,
        timeout: float | None = None,
    ) -> UpstreamResponse:
        seen = UpstreamRequest(method, url_base, path, list(headers), body, timeout)
        self.requests.append(seen)
        if self.closed:
            raise UpstreamTransportError(
                TransportError.CONNECTION_REFUSED, "the upstream is closed"
            )
        if self._respond is not None:
            answer = self._respond(seen)
        elif self._queue:
            answer = self._queue.pop(0)
        else:
            raise UpstreamTransportError(TransportError.CONNECTION_REFUSED, "nothing scripted")
        await asyncio.sleep(0)  # a real upstream never answers synchronously
        if answer.raises is not None:
            raise answer.raises
        if answer.hang_before_head:
            await self._hang()
        if answer.error is not None:
            raise UpstreamTransportError(answer.error, f"scripted {answer.error.value}")
        self.open_bodies += 1
        return UpstreamResponse(
            answer.status, answer.reason, list(answer.headers), self._body(answer)
        )

    async def _hang(self) -> None:
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def _body(self, answer: Scripted) -> AsyncGenerator[bytes, None]:
        try:
            for i, chunk in enumerate(answer.chunks):
                if answer.cut_after == i:
                    raise UpstreamTransportError(answer.cut, f"scripted {answer.cut.value}")
                if answer.hang_after == i:
                    await self._hang()
                await asyncio.sleep(0)
                yield chunk
            n = len(answer.chunks)
            if answer.cut_after is not None and answer.cut_after >= n:
                raise UpstreamTransportError(answer.cut, f"scripted {answer.cut.value}")
            if answer.hang_after is not None and answer.hang_after >= n:
                await self._hang()
        finally:
            self.open_bodies -= 1

    async def aclose(self) -> None:
        self.closed = True


class MemoryTransport(asyncio.Transport):
    """The server side of an in-memory client connection: writes are kept, closes are noted."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        super().__init__()
        self._protocol = protocol
        self.written = bytearray()
        self.closing = False
        self.aborted = False
        self.eof_written = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self.closing:
            self.written += data

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            asyncio.get_running_loop().call_soon(self._protocol.connection_lost, None)

    def abort(self) -> None:
        self.aborted = True
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self.closing

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        self.eof_written = True

    def get_write_buffer_size(self) -> int:
        return 0


@dataclass
class MemoryResponse:
    """What the server answered on a :class:`MemoryClient`: None fields if it closed first."""

    status: int | None
    headers: list[tuple[str, str]]
    body: bytes
    complete: bool  # the whole response arrived
    closed: bool  # the server closed the connection


class MemoryClient:
    """One client connection to ``server`` over a :class:`MemoryTransport` (call on its loop)."""

    def __init__(self, server: ProxyServer) -> None:
        from rewind_vcs.proxy.connection import ClientConnection

        self.connection = ClientConnection(server)
        self.transport = MemoryTransport(self.connection)
        self.connection.connection_made(self.transport)
        self._read = 0

    def send(self, data: bytes) -> None:
        """Bytes from the client."""
        self.connection.data_received(data)

    def hang_up(self) -> None:
        """The client goes away (a reset)."""
        if not self.transport.closing:
            self.transport.closing = True
            self.connection.connection_lost(ConnectionResetError("the client hung up"))

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self.connection.task

    async def response(self, timeout: float = 5.0) -> MemoryResponse:
        """The next response, once complete or once the server closed the connection."""
        parser = h11.Connection(h11.CLIENT)
        parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
        parser.send(h11.EndOfMessage())
        status: int | None = None
        headers: list[tuple[str, str]] = []
        body = bytearray()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                event = parser.next_event()
            except h11.RemoteProtocolError:  # closed in the middle of the response
                return MemoryResponse(status, headers, bytes(body), False, True)
            if event is h11.NEED_DATA:
                pending = bytes(self.transport.written[self._read :])
                if pending:
                    self._read += len(pending)
                    parser.receive_data(pending)
                    continue
                if self.transport.closing:
                    parser.receive_data(b"")
                    continue
                if loop.time() > deadline:
                    raise TimeoutError("no whole response in time")
                await asyncio.sleep(0.001)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return MemoryResponse(status, headers, bytes(body), True, self.transport.closing)
            elif isinstance(event, h11.ConnectionClosed):
                return MemoryResponse(status, headers, bytes(body), False, True)

    async def request(self, data: bytes, timeout: float = 5.0) -> MemoryResponse:
        """Send a whole request; its response."""
        self.send(data)
        return await self.response(timeout)
