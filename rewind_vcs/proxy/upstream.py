"""A small async HTTP/1.1 keep-alive connection pool to the upstreams (h11 framing).

Built for the relay hot path: one connection per in-flight request, idle
connections kept per (scheme, host, port) and reused LIFO, TCP_NODELAY, TLS
with SNI for https upstreams. The response body is an async generator that
yields one piece per socket read, so a streamed answer goes on as it arrives.

Every failure is an :class:`UpstreamTransportError` whose ``kind`` is the
:class:`~rewind_vcs.store.records.TransportError` to record.

:class:`Upstream` is the seam: what a forwarding handler needs from the
network (send one request, get its response as it arrives). The pool
implements it over sockets; :class:`rewind_vcs.proxy.memory.MemoryUpstream`
is its scripted in-memory twin for tests.

Reusing an idle connection races with the server closing it. A reused
connection that dies before any byte of the response arrived (the write
failed, or the server's close was already on its way) is discarded and the
request is sent once more on a fresh connection, as browsers do; a fresh
connection is never retried.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, NamedTuple, Protocol

import h11

from rewind_vcs.errors import ConfigError, UpstreamError
from rewind_vcs.proxy.channel import ByteChannel
from rewind_vcs.proxy.headers import Headers, end_to_end
from rewind_vcs.proxy.routes import UpstreamURL
from rewind_vcs.store.records import TransportError

_NOT_FORWARDED = frozenset({"host", "content-length", "expect"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class UpstreamTransportError(UpstreamError):
    """The upstream exchange failed at the transport level; ``kind`` says how."""

    def __init__(self, kind: TransportError, detail: str) -> None:
        self.kind = kind
        self.detail = detail
        super().__init__(f"upstream {kind.value.replace('_', ' ')}: {detail}")


class UpstreamResponse(NamedTuple):
    """Status line and headers of a response, and its body as it arrives.

    ``body`` yields one ``bytes`` per read from the upstream socket. Iterate it
    to the end (the connection then goes back to the pool) or ``aclose()`` it
    (the connection is closed).
    """

    status: int
    reason: str
    headers: Headers  # as received, original casing
    body: AsyncGenerator[bytes, None]


class Upstream(Protocol):
    """Where a forwarding handler sends requests: the seam between the handler and the network."""

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
        """Send one request to ``url_base`` + ``path``; return once the response head arrived.

        Raises :class:`UpstreamTransportError` when the exchange fails before
        the head; the body iterator raises it when the exchange fails later.
        """
        ...

    async def aclose(self) -> None:
        """Release what the upstream holds (idle connections); in-flight bodies end on their own."""
        ...


def upstream_ssl_context(extra_ca_file: str | None = None) -> ssl.SSLContext:
    """Verify upstreams against the system CAs, plus ``extra_ca_file`` if given."""
    context = ssl.create_default_context()
    if extra_ca_file:
        try:
            context.load_verify_locations(cafile=extra_ca_file)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"cannot load the upstream CA file {extra_ca_file}: {e}",
                hint="give a PEM file of CA certificates",
            ) from None
    context.set_alpn_protocols(["http/1.1"])
    return context


class _Connection:
    __slots__ = ("key", "channel", "h11", "idle_since")

    def __init__(self, key: tuple[str, str, int], channel: ByteChannel) -> None:
        self.key = key
        self.channel = channel
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0


class _Stale(Exception):
    """The connection died before any response byte arrived."""


def _send_headers(target: UpstreamURL, headers: Headers, method: str, body: bytes) -> Headers:
    out: Headers = [("Host", target.authority)]
    out.extend(end_to_end(headers, _NOT_FORWARDED))
    if body or method in _BODY_METHODS:
        out.append(("Content-Length", str(len(body))))
    return out


class UpstreamPool:
    """Keep-alive HTTP/1.1 connections to upstreams, shared by concurrent requests.

    ``connect_timeout`` bounds TCP connect plus TLS handshake; ``read_timeout``
    bounds each wait for upstream bytes (the head, then every body piece),
    unless a request passes its own ``timeout``.
    """

    def __init__(
        self,
        ssl_context_for_upstream: ssl.SSLContext | None = None,
        *,
        max_idle_per_host: int = 16,
        connect_timeout: float = 10.0,
        read_timeout: float = 600.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self._ssl = ssl_context_for_upstream
        self.max_idle_per_host = max_idle_per_host
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._targets: dict[str, UpstreamURL] = {}
        self._closed = False
        #: TCP connections opened so far (reuse shows as fewer connections than requests).
        self.connections_opened = 0

    # public -----------------------------------------------------------------------

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
        """Send one request to ``url_base`` + ``path``; return once the response head arrived.

        ``headers`` are end-to-end headers as the client sent them: Host,
        Content-Length and hop-by-hop headers are replaced by the pool's own.
        """
        if self._closed:
            raise UpstreamTransportError(TransportError.CONNECTION_REFUSED, "the pool is closed")
        target = self._target(url_base)
        key = (target.scheme, target.host, target.port)
        send_headers = _send_headers(target, headers, method, body)
        read_timeout = self.read_timeout if timeout is None else timeout
        for attempt in range(2):
            conn = self._checkout(key)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(target, key)
            try:
                status, reason, response_headers = await self._send_and_read_head(
                    conn, method, target.prefix + path, send_headers, body, read_timeout
                )
            except _Stale as e:
                conn.channel.abort()
                if reused and attempt == 0:
                    continue
                raise UpstreamTransportError(TransportError.CONNECTION_RESET, str(e)) from None
            except BaseException:
                conn.channel.abort()
                raise
            return UpstreamResponse(
                status, reason, response_headers, self._body(conn, read_timeout)
            )
        raise AssertionError("unreachable")  # pragma: no cover

    def idle_connections(self) -> int:
        return sum(len(v) for v in self._idle.values())

    def close(self) -> None:
        """Close every idle connection; in-flight ones close when their body ends."""
        self._closed = True
        for conns in self._idle.values():
            for conn in conns:
                conn.channel.close()
        self._idle.clear()

    async def aclose(self) -> None:
        self.close()

    # connections ------------------------------------------------------------------

    def _target(self, url_base: str) -> UpstreamURL:
        target = self._targets.get(url_base)
        if target is None:
            target = self._targets[url_base] = UpstreamURL.parse(url_base)
        return target

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = upstream_ssl_context()
        return self._ssl

    def _checkout(self, key: tuple[str, str, int]) -> _Connection | None:
        conns = self._idle.get(key)
        now = time.monotonic()
        while conns:
            conn = conns.pop()
            ch = conn.channel
            # EOF, a reset or stray bytes (say, a 408 before closing) all mean: unusable.
            if ch.lost or ch.at_eof or ch.buffered or now - conn.idle_since > self.idle_timeout:
                ch.close()
                continue
            return conn
        return None

    def _release(self, conn: _Connection) -> None:
        h = conn.h11
        ch = conn.channel
        if (
            self._closed
            or h.our_state is not h11.DONE
            or h.their_state is not h11.DONE
            or ch.lost
            or ch.at_eof
            or h.trailing_data[0]  # bytes after the response: not a clean connection
        ):
            ch.close()
            return
        h.start_next_cycle()
        conns = self._idle.setdefault(conn.key, [])
        if len(conns) >= self.max_idle_per_host:
            ch.close()
            return
        conn.idle_since = time.monotonic()
        conns.append(conn)

    async def _connect(self, target: UpstreamURL, key: tuple[str, str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"{target.host}:{target.port}"
        context = self._ssl_context() if target.scheme == "https" else None
        try:
            async with asyncio.timeout(self.connect_timeout):
                _transport, channel = await loop.create_connection(
                    ByteChannel,
                    target.host,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                    ssl_handshake_timeout=self.connect_timeout if context is not None else None,
                )
        except TimeoutError:
            raise UpstreamTransportError(
                TransportError.TIMEOUT, f"connecting to {where} timed out"
            ) from None
        except ssl.SSLError as e:
            raise UpstreamTransportError(TransportError.UPSTREAM_TLS, f"{where}: {e}") from None
        except ConnectionRefusedError:
            raise UpstreamTransportError(
                TransportError.CONNECTION_REFUSED, f"{where} refused the connection"
            ) from None
        except socket.gaierror as e:
            raise UpstreamTransportError(
                TransportError.CONNECTION_REFUSED, f"cannot resolve {target.host}: {e}"
            ) from None
        except (ConnectionResetError, ConnectionAbortedError) as e:
            kind = (
                TransportError.UPSTREAM_TLS
                if context is not None
                else TransportError.CONNECTION_RESET
            )
            raise UpstreamTransportError(kind, f"{where}: {e}") from None
        except OSError as e:
            raise UpstreamTransportError(
                TransportError.CONNECTION_REFUSED, f"cannot connect to {where}: {e}"
            ) from None
        self.connections_opened += 1
        return _Connection(key, channel)

    # one exchange -----------------------------------------------------------------

    async def _send_and_read_head(
        self,
        conn: _Connection,
        method: str,
        path: str,
        headers: Headers,
        body: bytes,
        read_timeout: float,
    ) -> tuple[int, str, Headers]:
        h = conn.h11
        ch = conn.channel
        where = f"{conn.key[1]}:{conn.key[2]}"
        try:
            # One write (one send, one segment) for the whole request: head, body and end.
            # latin-1 both ways: HTTP/1.1 header values may hold obs-text bytes (h11 would encode
            # str as ASCII and fail); the server decoded them as latin-1, so this is exact.
            raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
            pieces = [h.send(h11.Request(method=method, target=path, headers=raw)) or b""]
            if body:
                pieces.extend(h.send_with_data_passthrough(h11.Data(data=body)) or ())
            pieces.append(h.send(h11.EndOfMessage()) or b"")
            ch.write(b"".join(pieces))
            await ch.drain(read_timeout)
        except (ConnectionError, OSError) as e:
            raise _Stale(
                f"{where} closed the connection before the request was sent ({e})"
            ) from None
        except TimeoutError:
            raise UpstreamTransportError(
                TransportError.TIMEOUT,
                f"{where} did not read the request within {read_timeout:g} s",
            ) from None

        received = False
        eof = False
        while True:
            try:
                event = h.next_event()
            except h11.RemoteProtocolError as e:
                if eof:
                    raise UpstreamTransportError(
                        TransportError.CONNECTION_RESET,
                        f"{where} closed the connection in the middle of the response head",
                    ) from None
                raise UpstreamTransportError(
                    TransportError.BAD_RESPONSE, f"{where} sent a malformed response head: {e}"
                ) from None
            if event is h11.NEED_DATA:
                data = await self._read(ch, read_timeout, where, waiting_for="a response")
                if not data and not received:
                    raise _Stale(f"{where} closed the connection without a response")
                received = True
                eof = not data
                h.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                return (
                    event.status_code,
                    event.reason.decode("latin-1"),
                    [
                        (k.decode("latin-1"), v.decode("latin-1"))
                        for k, v in event.headers.raw_items()
                    ],
                )
            if isinstance(event, h11.InformationalResponse):
                continue  # 100 Continue and friends: the final response follows
            raise UpstreamTransportError(
                TransportError.BAD_RESPONSE, f"{where}: unexpected {type(event).__name__}"
            )

    @staticmethod
    async def _read(ch: ByteChannel, read_timeout: float, where: str, waiting_for: str) -> bytes:
        try:
            data = await ch.read(read_timeout)
        except TimeoutError:
            raise UpstreamTransportError(
                TransportError.TIMEOUT,
                f"{where} sent nothing for {read_timeout:g} s (waiting for {waiting_for})",
            ) from None
        if not data and ch.lost_error is not None:
            error = ch.lost_error
            kind = (
                TransportError.UPSTREAM_TLS
                if isinstance(error, ssl.SSLError)
                else TransportError.CONNECTION_RESET
            )
            if waiting_for == "a response" and kind is TransportError.CONNECTION_RESET:
                return b""  # let the caller tell a stale keep-alive connection from a reset
            raise UpstreamTransportError(kind, f"{where}: {error}")
        return data

    async def _body(self, conn: _Connection, read_timeout: float) -> AsyncGenerator[bytes, None]:
        h = conn.h11
        ch = conn.channel
        where = f"{conn.key[1]}:{conn.key[2]}"
        done = False
        eof = False
        try:
            while True:
                pieces: list[bytes] = []
                while True:
                    try:
                        event = h.next_event()
                    except h11.RemoteProtocolError as e:
                        if eof:
                            raise UpstreamTransportError(
                                TransportError.CONNECTION_RESET,
                                f"{where} closed the connection in the middle of the body",
                            ) from None
                        raise UpstreamTransportError(
                            TransportError.BAD_RESPONSE, f"{where} sent a malformed body: {e}"
                        ) from None
                    if isinstance(event, h11.Data):
                        data = event.data
                        pieces.append(data if type(data) is bytes else bytes(data))
                    elif isinstance(event, h11.EndOfMessage):
                        done = True
                        break
                    elif event is h11.NEED_DATA:
                        break
                    else:  # ConnectionClosed before the end cannot happen: h11 raises first
                        raise UpstreamTransportError(
                            TransportError.BAD_RESPONSE,
                            f"{where}: unexpected {type(event).__name__}",
                        )
                if done:
                    self._release(conn)
                if pieces:
                    yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                if done:
                    return
                data = await self._read(ch, read_timeout, where, waiting_for="the body")
                eof = not data
                h.receive_data(data)
        finally:
            if not done:
                ch.abort()


if TYPE_CHECKING:  # the pool is an Upstream (checked by mypy, never run)
    _POOL_IS_AN_UPSTREAM: Upstream = UpstreamPool()
