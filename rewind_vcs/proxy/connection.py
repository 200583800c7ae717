"""One client connection: HTTP/1.1 framing, routing and the relay of one response at a time.

:class:`ClientConnection` is the asyncio protocol of an accepted client
connection; :class:`ConnectionServing` (a base of
:class:`~rewind_vcs.proxy.server.ProxyServer`) serves it: it reads request
heads with h11 within the head and idle timeouts, bounds heads (431) and
bodies (413, 408), routes each request (:func:`~rewind_vcs.proxy.routes.route_request`),
applies the access rules of :mod:`rewind_vcs.proxy.access`, asks the handler
and relays its response one client write per body chunk, keeping the
connection alive when both sides allow it. CONNECT is handed to
:class:`~rewind_vcs.proxy.tunnel.Tunnelling`.

The server owns framing only: request bodies are read whole (they are JSON),
and the handler contract (handler.py) is kept here: ``on_sent`` once per
response, :class:`~rewind_vcs.proxy.handler.CloseConnection` drops the
connection, any other handler exception is a 502 with a JSON error, and a
client that goes away cancels what the handler awaits.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import h11

from rewind_vcs.proxy import access
from rewind_vcs.proxy.access import Refusal
from rewind_vcs.proxy.channel import ByteChannel
from rewind_vcs.proxy.handler import (
    CloseConnection,
    Handler,
    ProxyRequest,
    error_body,
    error_response,
)
from rewind_vcs.proxy.headers import REWIND_PREFIX, Headers
from rewind_vcs.proxy.respond import ClientGone, send_response, while_client_present
from rewind_vcs.proxy.routes import BadTarget, Mode, Routes, route_request

if TYPE_CHECKING:
    from rewind_vcs.proxy.server import ProxyServer

T = TypeVar("T")

log = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024


class ClientConnection(ByteChannel):
    """One accepted client connection and the task that serves it."""

    def __init__(self, server: ProxyServer) -> None:
        super().__init__()
        self.server = server
        self.task: asyncio.Task[None] | None = None
        self.busy = False  # between a request head and the end of its response (or tunnelling)
        self.cancel_armed = False  # the task awaits the handler: cancel it if the client goes
        self.gone_cancelled = False
        self.on_gone = self._client_gone
        #: Waiting for a request head since this loop time (None: in a request or a tunnel).
        self.waiting_since: float | None = None
        #: A blind tunnel since this loop time (None: not one).
        self.tunnel_since: float | None = None
        self.evicted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        server = self.server
        if server._closing or not server._admit():
            self.abort()
            return
        self.waiting_since = asyncio.get_running_loop().time()
        server._connections.add(self)
        self.task = asyncio.get_running_loop().create_task(server._serve_connection(self))

    @property
    def gone(self) -> bool:
        return self.lost or self._eof

    def _client_gone(self) -> None:
        task = self.task
        if self.cancel_armed and task is not None and not task.done():
            self.gone_cancelled = True
            task.cancel()


class ConnectionServing:
    """Serving client connections: the part of :class:`~rewind_vcs.proxy.server.ProxyServer` that speaks HTTP/1.1.

    The attributes are the server's configuration (set by its constructor).
    """

    handler: Handler
    passthrough: Handler
    routes: Routes
    intercept_hosts: set[str]
    port: int
    head_timeout: float
    idle_timeout: float
    body_timeout: float
    max_request_body: int
    on_error: Callable[[str], None] | None
    _connections: set[ClientConnection]

    def _report(
        self, message: str, level: int = logging.WARNING, logger: logging.Logger = log
    ) -> None:
        """Log a problem (and pass it to ``on_error`` at WARNING and above)."""
        logger.log(level, "%s", message)
        if self.on_error is not None and level >= logging.WARNING:
            try:
                self.on_error(message)
            except Exception:
                pass

    # provided by tunnel.Tunnelling -----------------------------------------------------

    async def _connect(
        self, ch: ClientConnection, conn: h11.Connection, target: str
    ) -> tuple[str, int] | None:
        raise NotImplementedError

    async def _relay_addresses(self, host: str, port: int) -> list[str] | Refusal:
        raise NotImplementedError

    # one client connection ----------------------------------------------------------

    async def _serve_connection(self, ch: ClientConnection) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        tunnel: tuple[str, int] | None = None  # (host, port) inside an intercepted CONNECT
        fresh = True
        try:
            while True:
                ch.busy = False
                ch.waiting_since = asyncio.get_running_loop().time()
                try:
                    event = await self._next_head(ch, conn, fresh)
                except h11.RemoteProtocolError as e:
                    if not ch.evicted:
                        self._refuse(ch, conn, e.error_status_hint, f"malformed request: {e}")
                    return
                except _HeadTimeout as e:
                    if e.started:
                        self._refuse(ch, conn, 408, str(e), logging.INFO)
                    else:
                        ch.close()
                    return
                fresh = False
                ch.waiting_since = None
                if not isinstance(event, h11.Request):
                    ch.close()  # ConnectionClosed, or bytes after the peer half-closed
                    return
                ch.busy = True
                if _head_size(event) > MAX_HEAD:
                    self._refuse(ch, conn, 431, f"request head over {MAX_HEAD // 1024} KiB")
                    return
                t0 = time.perf_counter()
                started_at = time.time()
                method = event.method.decode("ascii")
                target = event.target.decode("latin-1")
                if method == "CONNECT":
                    if tunnel is not None:
                        self._refuse(ch, conn, 400, "CONNECT inside a CONNECT tunnel")
                        return
                    tunnel = await self._connect(ch, conn, target)
                    if tunnel is None:
                        return
                    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
                    continue
                keep_alive = await self._request(
                    ch, conn, event, method, target, tunnel, t0, started_at
                )
                if not keep_alive or ch.gone:
                    ch.close()
                    return
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                else:
                    ch.close()
                    return
        except (ClientGone, ConnectionError):
            ch.close()
        except asyncio.CancelledError:
            ch.abort()
            raise
        except Exception as e:
            self._report(f"proxy connection failed: {type(e).__name__}: {e}")
            ch.abort()
        finally:
            self._connections.discard(ch)

    async def _next_head(self, ch: ByteChannel, conn: h11.Connection, fresh: bool) -> Any:
        """The next request head (or the end), within the head and idle timeouts."""
        loop = asyncio.get_running_loop()
        started = bool(conn.trailing_data[0])  # some of the head is here
        limit = self.head_timeout if fresh or started else self.idle_timeout
        deadline = loop.time() + limit
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                data = await ch.read(remaining)
            except TimeoutError:
                raise _HeadTimeout(started, limit) from None
            if data and not started:
                started = True
                if not fresh:  # a fresh connection's head is due head_timeout after it opened
                    limit = self.head_timeout
                    deadline = loop.time() + limit
            conn.receive_data(data)

    async def _next_event(self, ch: ByteChannel, conn: h11.Connection) -> Any:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                try:
                    data = await ch.read(self.body_timeout)
                except TimeoutError:
                    raise _BodyTimeout from None
                conn.receive_data(data)
                continue
            return event

    async def _read_body(self, ch: ByteChannel, conn: h11.Connection) -> bytes:
        if conn.they_are_waiting_for_100_continue:
            ch.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        parts: list[bytes] = []
        size = 0
        while True:
            event = await self._next_event(ch, conn)
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > self.max_request_body:
                    raise _BodyTooLarge
                parts.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return bytes(parts[0]) if len(parts) == 1 else b"".join(parts)
            else:
                raise ClientGone

    def _refuse(
        self,
        ch: ByteChannel,
        conn: h11.Connection,
        status: int,
        message: str,
        level: int = logging.WARNING,
        logger: logging.Logger = log,
    ) -> None:
        """Answer an error the client caused, then close the connection."""
        self._report(message, level, logger)
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            body = error_body(message, "bad_request" if status < 500 else "proxy_error")
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ]
            try:
                ch.write(conn.send(h11.Response(status_code=status, headers=headers)))
                ch.write(conn.send(h11.Data(data=body)))
                ch.write(conn.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:
                pass
        ch.close()

    # one request --------------------------------------------------------------------

    async def _request(
        self,
        ch: ClientConnection,
        conn: h11.Connection,
        event: h11.Request,
        method: str,
        target: str,
        tunnel: tuple[str, int] | None,
        t0: float,
        started_at: float,
    ) -> bool:
        """Read, route and answer one request; True if the connection may be kept."""
        try:
            body = await self._read_body(ch, conn)
        except _BodyTooLarge:
            self._refuse(ch, conn, 413, f"request body over {self.max_request_body} bytes")
            return False
        except _BodyTimeout:
            self._refuse(ch, conn, 408, f"no request body bytes for {self.body_timeout:g} s")
            return False
        except h11.RemoteProtocolError as e:
            self._refuse(ch, conn, e.error_status_hint, f"malformed request body: {e}")
            return False
        headers: Headers = []
        span = session_tag = host = origin = fetch_site = None
        # A plain exchange (HTTP/1.1, keep-alive, a method whose response has a body
        # framed by its headers) lets send_response write the response head itself.
        plain = event.http_version == b"1.1" and method != "HEAD"
        for raw_name, raw_value in event.headers.raw_items():
            name = raw_name.decode("latin-1")
            value = raw_value.decode("latin-1")
            lower = name.lower()
            if lower.startswith(REWIND_PREFIX):
                if lower == "x-rewind-span":
                    span = value
                elif lower == "x-rewind-session":
                    session_tag = value
                continue
            if lower == "connection":
                plain = False
            elif lower == "host":
                host = value
            elif lower == "origin":
                origin = value
            elif lower == "sec-fetch-site":
                fetch_site = value
            headers.append((name, value))
        try:
            decision = route_request(
                self.routes,
                target,
                tunnel=tunnel,
                self_port=self.port,
                intercept_hosts=self.intercept_hosts,
            )
        except BadTarget as e:
            self._refuse(ch, conn, 400, str(e))
            return False
        handler: Handler = self.handler
        if decision.mode is Mode.BASE_URL:
            refused = access.base_url_refusal(self.port, host, origin, fetch_site)
            if refused is not None:
                self._refuse(ch, conn, 403, refused)
                return False
        elif decision.mode is Mode.PASSTHROUGH:
            handler = self.passthrough
            assert decision.target_host is not None
            try:
                relay = await self._relay_addresses(decision.target_host, decision.target_port)
            except (OSError, UnicodeError):
                relay = []  # the passthrough handler fails the same way and says so
            if isinstance(relay, Refusal):
                self._refuse(ch, conn, 403, relay.reason)
                return False
        route = decision.route
        scheme = decision.scheme
        if route is None:
            response = error_response(
                404,
                f"rewind proxy: no provider prefix in {target!r}; "
                "use /openai/..., /anthropic/... or /gemini/...",
                "unknown_route",
                "Not Found",
            )
            return await send_response(ch, conn, response, plain, self._report)

        request = ProxyRequest(
            method=method,
            scheme=scheme,
            host=route.host,
            path=route.path,
            headers=headers,
            body=body,
            provider_hint=route.provider,
            upstream=route.upstream,
            span=span,
            session_tag=session_tag,
            started_at=started_at,
            t0=t0,
        )
        try:
            response = await while_client_present(ch, functools.partial(handler.handle, request))
        except (CloseConnection, ClientGone):  # a network-like failure, or the client left
            ch.close()
            return False
        except Exception as e:
            self._report(f"the handler failed on {method} {route.path}: {type(e).__name__}: {e}")
            response = error_response(502, f"rewind proxy: {e}", "proxy_error", "Bad Gateway")
        return await send_response(ch, conn, response, plain, self._report)


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class _HeadTimeout(Exception):
    """No whole request head in time; ``started``: some of it had arrived."""

    def __init__(self, started: bool, limit: float) -> None:
        super().__init__(f"no whole request head within {limit:g} s")
        self.started = started


def _head_size(event: h11.Request) -> int:
    """About the bytes of a request head (h11 bounds only a head that arrives in pieces)."""
    size = len(event.target) + 16
    for name, value in event.headers.raw_items():
        size += len(name) + len(value) + 4
    return size
