"""A byte channel over an asyncio transport: the one I/O primitive of the proxy.

Both sides of the proxy (the client connections the server accepts and the
upstream connections of the pool) use it. It is an :class:`asyncio.Protocol`
rather than asyncio streams because the proxy needs what streams hide: the
exact moment a peer goes away (to stop a relay and record a client
disconnect), whether stray bytes arrived on an idle keep-alive connection,
and the same object before and after a TLS upgrade (``loop.start_tls``).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

#: Stop reading from a peer once this much unread data is buffered.
MAX_BUFFER = 4 * 1024 * 1024


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """TCP_NODELAY: a proxy hop must not add Nagle / delayed-ACK stalls (~40 ms)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return
    try:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class ByteChannel(asyncio.Protocol):
    """Buffered reads, flow-controlled writes, and a callback when the peer is gone."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._eof = False
        self.lost = False  # the transport is closed (by either side)
        self.lost_error: BaseException | None = None
        self._read_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._read_paused = False
        #: Called once when the peer closes, resets, or half-closes the connection.
        self.on_gone: Callable[[], None] | None = None
        self._gone_signalled = False
        self._held: bytes | None = None  # see write_soon()

    # asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Duck-typed on purpose: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = transport  # type: ignore[assignment]
        set_nodelay(transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) > MAX_BUFFER and not self._read_paused and self.transport is not None:
            self._read_paused = True
            self.transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        self._signal_gone()
        # Keep the write side open (the owner decides when to close); TLS
        # transports cannot do that and complain if asked to.
        return self.transport is None or self.transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self.lost_error = exc
        self._eof = True
        self._wake_reader()
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._signal_gone()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # reading ----------------------------------------------------------------------

    @property
    def at_eof(self) -> bool:
        """The peer sent EOF (or the connection is gone) and nothing is left to read."""
        return self._eof and not self._buffer

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def take(self) -> bytes:
        """Everything buffered now (maybe ``b""``), without waiting."""
        data = bytes(self._buffer)
        self._buffer.clear()
        if self._read_paused and not self.lost and self.transport is not None:
            self._read_paused = False
            self.transport.resume_reading()
        return data

    async def read(self, timeout: float | None = None) -> bytes:
        """The next bytes from the peer; ``b""`` at EOF.

        With ``timeout``, raise :class:`TimeoutError` when nothing arrived for
        that many seconds (one timer for the whole wait, none when bytes are
        already buffered: cheaper than ``asyncio.timeout`` on the relay path).
        """
        while not self._buffer and not self._eof:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._read_waiter = waiter
            timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                self._read_waiter = None
                if timer is not None:
                    timer.cancel()
        return self.take()

    def _wake_reader(self) -> None:
        waiter = self._read_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _signal_gone(self) -> None:
        if self._gone_signalled:
            return
        self._gone_signalled = True
        callback = self.on_gone
        if callback is not None:
            callback()

    # writing ----------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write unless the connection is gone (writes to a dead transport are dropped)."""
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        if (
            data
            and not self.lost
            and self.transport is not None
            and not self.transport.is_closing()
        ):
            self.transport.write(data)

    def write_soon(self, data: bytes) -> None:
        """Write ``data`` with the next :meth:`write`, or as soon as the running task yields.

        A response head goes out together with the first body piece when that
        piece is already at hand (one send instead of two), and alone, without
        waiting for anything, when it is not: the flush is a ``call_soon``
        callback, which runs as soon as the task awaits something not ready.
        """
        if self._held is None:
            self._held = data
            asyncio.get_running_loop().call_soon(self._flush_held)
        else:
            self._held += data

    def _flush_held(self) -> None:
        if self._held is not None:
            self.write(b"")

    async def drain(self, timeout: float | None = None) -> None:
        """Wait while the peer is slow; raise ConnectionResetError once it is gone.

        With ``timeout``, raise :class:`TimeoutError` if the peer did not read
        enough within that many seconds.
        """
        if self._write_paused and not self.lost:
            loop = asyncio.get_running_loop()
            waiter = loop.create_future()
            self._drain_waiter = waiter
            timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
            try:
                await waiter
            finally:
                if self._drain_waiter is waiter:
                    self._drain_waiter = None
                if timer is not None:
                    timer.cancel()
        if self.lost or self.transport is None or self.transport.is_closing():
            raise ConnectionResetError("connection lost")

    # closing ----------------------------------------------------------------------

    def close(self) -> None:
        self._flush_held()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        """Close at once, discarding unsent data (a TCP reset for plain sockets)."""
        self._flush_held()
        if self.transport is not None:
            self.transport.abort()
