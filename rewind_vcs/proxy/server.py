"""The proxy server: asyncio + h11, base-URL mode and forward-proxy mode on one loopback port.

Per client connection, one task reads requests with h11 and answers them:

- origin-form ``/openai/...``, ``/anthropic/...``, ``/gemini/...`` (base-URL
  mode): routed to that provider's upstream, the prefix removed;
- absolute-form ``POST http://host/path`` (``HTTP_PROXY``): through the handler
  when ``host`` is intercepted, else passed through unrecorded;
- ``CONNECT host:port`` (``HTTPS_PROXY``): for an intercepted host, TLS is
  terminated with a leaf minted by the CA and the requests inside go through
  the handler as ``https``; any other host is tunnelled blind.

The server owns framing only: request bodies are read whole (they are JSON),
response bodies are relayed one client write per chunk the handler yields,
and keep-alive works on both sides. It never prints: problems go to the
optional ``on_error`` callback.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple, TypeVar
from urllib.parse import urlsplit

import h11

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy import access
from rewind_vcs.proxy.channel import ByteChannel
from rewind_vcs.proxy.handler import (
    CloseConnection,
    ForwardHandler,
    Handler,
    ProxyRequest,
    ProxyResponse,
    client_headers,
    error_body,
    error_response,
)
from rewind_vcs.proxy.headers import REWIND_PREFIX, Headers
from rewind_vcs.proxy.routes import BadTarget, Mode, Routes, route_request
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool

T = TypeVar("T")

log = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024

# h11's own header rules (h11/_abnf.py), to check a response head we write ourselves.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_CONTENT_LENGTH = re.compile(rb"[0-9]+")
_NO_BODY_STATUS = frozenset({204, 304})
_CHUNKED_LINE = b"Transfer-Encoding: chunked\r\n"


class _ClientGone(Exception):
    """The client closed or reset its connection."""


def check_loopback(host: str) -> None:
    """Refuse to listen anywhere but loopback: the proxy has no authentication."""
    if host == "localhost":
        return
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"the proxy must listen on a loopback address, not {host!r}",
            hint="use 127.0.0.1 or ::1",
        ) from None
    if not address.is_loopback:
        raise ConfigError(
            f"the proxy must listen on a loopback address, not {host}",
            hint="it has no authentication; use 127.0.0.1 or ::1",
        )


def default_max_connections() -> int:
    """Client connections to allow at once: well under the open-files limit.

    Each client connection may hold an upstream one too, and the recorder
    needs files of its own: half the soft limit less a margin, 64 to 1024.
    """
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return 256
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return 1024
    return max(64, min(1024, (soft - 128) // 2))


def _parse_authority(target: str) -> tuple[str, int]:
    """``host:port`` of a CONNECT request (``[v6]:port`` too)."""
    parts = urlsplit("//" + target)
    if not parts.hostname or parts.path or parts.query:
        raise ValueError(f"bad CONNECT target {target!r}")
    port = parts.port  # raises ValueError when out of range
    if port is None:
        raise ValueError(f"CONNECT target {target!r} has no port")
    return parts.hostname.lower(), port


async def _close_iterator(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


class _ClientConnection(ByteChannel):
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


class ProxyServer:
    """The recording/replaying proxy on one loopback port.

    ``handler`` answers routed requests (a :class:`ForwardHandler` to record,
    the replayer to replay). ``intercept_hosts`` are the hosts whose CONNECT
    tunnels are TLS-terminated and whose absolute-form requests go through the
    handler; None means ``routes.intercept_hosts()`` when a CA is given, else
    none. ``passthrough`` answers absolute-form requests for other hosts
    (default: forwarded unrecorded). If ``handler`` (or ``passthrough``) has an
    async ``aclose()``, the server calls it when it stops.

    Hygiene (see :mod:`rewind_vcs.proxy.access`): unrecorded traffic (blind
    tunnels, passthrough requests) goes only to public addresses on ports 443
    and 80, or to the routes' hosts and ``allow_relay_to`` (``host`` or
    ``host:port`` entries); base-URL-mode requests must name the proxy in
    ``Host`` and not come from a web page. A connection has ``head_timeout``
    seconds from its start (or from the first byte of a later request) to
    send a whole request head, and may sit idle between requests for
    ``idle_timeout``; each wait for request-body bytes is bounded by
    ``body_timeout``. At ``max_connections`` (default: from the open-files
    limit), a new connection evicts the one that has waited longest for a
    request head; when every connection is in a request, it is refused.

    Problems are logged to this module's logger (``on_error``, if given,
    receives the same lines at WARNING and above).
    """

    def __init__(
        self,
        handler: Handler,
        routes: Routes,
        ca: CertificateAuthority | None = None,
        intercept_hosts: Iterable[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        on_error: Callable[[str], None] | None = None,
        passthrough: Handler | None = None,
        grace: float = 2.0,
        connect_timeout: float = 10.0,
        max_request_body: int = 1024 * 1024 * 1024,
        use_uvloop: bool = True,
        head_timeout: float = 20.0,
        idle_timeout: float = 75.0,
        body_timeout: float = 60.0,
        max_connections: int | None = None,
        allow_relay_to: Iterable[str] = (),
    ) -> None:
        check_loopback(host)
        if intercept_hosts is None:
            hosts = routes.intercept_hosts() if ca is not None else set()
        else:
            hosts = {h.strip().lower() for h in intercept_hosts if h.strip()}
            if hosts and ca is None:
                raise ConfigError(
                    "intercepting HTTPS hosts needs a CA",
                    hint="run `rewind init` to create one, or intercept no hosts",
                )
        self.handler = handler
        self.routes = routes
        self.ca = ca
        self.intercept_hosts: set[str] = hosts
        self.host = host
        self.port = port
        self.on_error = on_error
        self.passthrough: Handler = passthrough or ForwardHandler(
            UpstreamPool(connect_timeout=connect_timeout), None, identity_encoding=False
        )
        self.grace = grace
        self.connect_timeout = connect_timeout
        self.max_request_body = max_request_body
        self.use_uvloop = use_uvloop
        self.head_timeout = head_timeout
        self.idle_timeout = idle_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections or default_max_connections()
        self.relay_hosts = access.normalise_allowed(
            [*routes.intercept_hosts(), *self.intercept_hosts, *allow_relay_to]
        )
        self._evictions = 0
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_ClientConnection] = set()
        self._closing = False
        self._closed: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> int:
        """Listen; returns the bound port."""
        if self._server is not None:
            return self.port
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._closed = asyncio.Event()
        self._server = await loop.create_server(
            lambda: _ClientConnection(self), self.host, self.port, backlog=512
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def serve(self) -> None:
        """Listen and serve until :meth:`aclose`."""
        await self.start()
        assert self._closed is not None
        await self._closed.wait()

    async def aclose(self) -> None:
        """Stop listening, close idle connections, give in-flight ones ``grace`` seconds, then cut them."""
        if self._closing:
            if self._closed is not None:
                await self._closed.wait()
            return
        self._closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            if not conn.busy:
                conn.close()
        await self._wait_connections(self.grace)
        for conn in list(self._connections):
            conn.abort()  # a client still streaming: it sees its connection drop
        await self._wait_connections(1.0)
        leftover = [c.task for c in self._connections if c.task is not None and not c.task.done()]
        for task in leftover:
            task.cancel()
        if leftover:
            await asyncio.wait(leftover, timeout=1.0)
        for handler in (self.handler, self.passthrough):
            aclose = getattr(handler, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception as e:
                    self._report(f"closing a handler failed: {type(e).__name__}: {e}")
        if self._server is not None:
            await self._server.wait_closed()
        if self._closed is not None:
            self._closed.set()

    async def _wait_connections(self, timeout: float) -> None:
        tasks = [c.task for c in self._connections if c.task is not None and not c.task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    def start_in_thread(self) -> int:
        """Serve on a new event loop in a daemon thread; returns the bound port."""
        if self._thread is not None:
            return self.port
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._new_loop()
            asyncio.set_event_loop(loop)
            loop.set_exception_handler(self._loop_exception)
            try:
                try:
                    loop.run_until_complete(self.start())
                except BaseException as e:
                    failure.append(e)
                    return
                finally:
                    ready.set()
                loop.run_until_complete(self.serve())
            finally:
                try:
                    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                    for task in pending:
                        task.cancel()
                    if pending:
                        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        self._thread = threading.Thread(target=run, name="rewind-proxy", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            error = failure[0]
            if isinstance(error, OSError):
                raise ConfigError(f"cannot listen on {self.host}:{self.port}: {error}") from error
            raise error
        return self.port

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start_in_thread` (from another thread)."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if thread.is_alive() and not loop.is_closed():
            future = asyncio.run_coroutine_threadsafe(self.aclose(), loop)
            try:
                future.result(timeout)
            except Exception as e:
                self._report(f"stopping the proxy failed: {type(e).__name__}: {e}")
        thread.join(timeout)
        self._thread = None

    def _new_loop(self) -> asyncio.AbstractEventLoop:
        if self.use_uvloop:
            try:
                import uvloop
            except ImportError:
                pass
            else:
                return uvloop.new_event_loop()
        return asyncio.new_event_loop()

    def _loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        message = context.get("message", "")
        self._report(f"{message}: {type(exc).__name__}: {exc}" if exc else message)

    def _report(self, message: str, level: int = logging.WARNING) -> None:
        log.log(level, "%s", message)
        if self.on_error is not None and level >= logging.WARNING:
            try:
                self.on_error(message)
            except Exception:
                pass

    def _admit(self) -> bool:
        """Room for one more connection: evict the longest wait for a head if needed."""
        if len(self._connections) < self.max_connections:
            return True
        waiting = [c for c in self._connections if c.waiting_since is not None]
        if not waiting:
            self._report(
                f"refused a connection: all {self.max_connections} connections are in a request"
            )
            return False
        victim = min(waiting, key=lambda c: c.waiting_since or 0.0)
        victim.evicted = True
        self._connections.discard(victim)
        victim.abort()
        self._evictions += 1
        if self._evictions in (1, 10, 100) or self._evictions % 1000 == 0:
            self._report(
                f"{self._evictions} connection(s) closed to make room: {self.max_connections} "
                "connections open, the oldest waiting for a request head (a slow or idle client)"
            )
        return True

    # one client connection ----------------------------------------------------------

    async def _serve_connection(self, ch: _ClientConnection) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
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
                if _head_size(event) > _MAX_HEAD:
                    self._refuse(ch, conn, 431, f"request head over {_MAX_HEAD // 1024} KiB")
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
                    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
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
        except (_ClientGone, ConnectionError):
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
                raise _ClientGone

    def _refuse(
        self,
        ch: ByteChannel,
        conn: h11.Connection,
        status: int,
        message: str,
        level: int = logging.WARNING,
    ) -> None:
        """Answer an error the client caused, then close the connection."""
        self._report(message, level)
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

    # CONNECT ------------------------------------------------------------------------

    async def _connect(
        self, ch: _ClientConnection, conn: h11.Connection, target: str
    ) -> tuple[str, int] | None:
        """Answer a CONNECT: intercept (returns the tunnel's host and port) or tunnel blind (None)."""
        try:
            host, port = _parse_authority(target)
        except ValueError as e:
            self._refuse(ch, conn, 400, str(e))
            return None
        try:
            await self._read_body(ch, conn)
        except _BodyTooLarge:
            self._refuse(ch, conn, 413, "CONNECT with a body")
            return None
        except _BodyTimeout:
            self._refuse(ch, conn, 408, "CONNECT with a body that never ends")
            return None
        if host not in self.intercept_hosts:
            await self._tunnel_blind(ch, conn, host, port)
            return None
        assert self.ca is not None
        ch.write(
            conn.send(h11.Response(status_code=200, headers=[], reason=b"Connection established"))
        )
        trailing, closed = conn.trailing_data
        if trailing or closed or ch.buffered:
            # TLS bytes sent before our 200 arrived: no client does this; asyncio
            # cannot hand them to the TLS layer, so refuse rather than garble.
            self._report(f"CONNECT {target}: the client sent data before the tunnel was open")
            ch.close()
            return None
        loop = asyncio.get_running_loop()
        try:
            context = self.ca.leaf_context(host)
            assert ch.transport is not None
            ch.transport = await loop.start_tls(
                ch.transport,
                ch,
                context,
                server_side=True,
                ssl_handshake_timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError, ConnectionError) as e:
            self._report(
                f"TLS handshake with a client for {host} failed ({type(e).__name__}: {e}); "
                "does the client trust rewind's CA (SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)?"
            )
            ch.abort()
            return None
        return host, port

    async def _tunnel_blind(
        self, ch: _ClientConnection, conn: h11.Connection, host: str, port: int
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = await self._relay_addresses(host, port)
                if isinstance(addresses, _Refusal):
                    self._refuse(ch, conn, 403, addresses.reason)
                    return
                upstream = await _connect_first(loop, addresses, port)
        except (OSError, TimeoutError, UnicodeError) as e:  # UnicodeError: a host name idna refuses
            self._refuse(ch, conn, 502, f"cannot connect to {host}:{port}: {e}")
            return
        try:
            ch.write(
                conn.send(
                    h11.Response(status_code=200, headers=[], reason=b"Connection established")
                )
            )
            trailing, _closed = conn.trailing_data
            upstream.write(trailing)
            await asyncio.gather(_pump(ch, upstream), _pump(upstream, ch))
        finally:
            upstream.close()
            ch.close()

    async def _relay_addresses(self, host: str, port: int) -> list[str] | _Refusal:
        """Where unrecorded traffic for ``host:port`` may go (see :mod:`access`), resolved once.

        Raises OSError/UnicodeError when the name does not resolve. The
        addresses returned are the ones checked: connecting to them (not the
        name again) leaves no window for a rebinding name to change its answer.
        """
        if access.is_allowed(host, port, self.relay_hosts):
            return [host]
        refused = access.port_refusal(host, port)
        if refused is not None:
            return _Refusal(refused)
        literal = access.ip_literal(host)
        found: list[access.Address | None] = [literal]
        if literal is None:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            found = [access.ip_literal(str(info[4][0])) for info in infos]
        addresses = [a for a in found if a is not None]
        refused = access.destination_refusal(host, port, addresses)
        if refused is not None:
            return _Refusal(refused)
        return list(dict.fromkeys(str(a) for a in addresses))

    # one request --------------------------------------------------------------------

    async def _request(
        self,
        ch: _ClientConnection,
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
        # framed by its headers) lets _send_response write the response head itself.
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
            if isinstance(relay, _Refusal):
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
            return await self._send_response(ch, conn, response, plain)

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
            response = await self._while_client_present(
                ch, functools.partial(handler.handle, request)
            )
        except (CloseConnection, _ClientGone):  # a network-like failure, or the client left
            ch.close()
            return False
        except Exception as e:
            self._report(f"the handler failed on {method} {route.path}: {type(e).__name__}: {e}")
            response = error_response(502, f"rewind proxy: {e}", "proxy_error", "Bad Gateway")
        return await self._send_response(ch, conn, response, plain)

    async def _while_client_present(
        self, ch: _ClientConnection, start: Callable[[], Awaitable[T]]
    ) -> T:
        """Await ``start()``, cancelling it if the client goes away meanwhile (-> _ClientGone)."""
        if ch.gone:
            raise _ClientGone
        ch.cancel_armed = True
        try:
            return await start()
        except asyncio.CancelledError:
            if ch.gone_cancelled:
                ch.gone_cancelled = False
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                raise _ClientGone from None
            raise
        finally:
            ch.cancel_armed = False
            if ch.gone_cancelled:  # the awaitable swallowed the cancellation
                ch.gone_cancelled = False
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    task.uncancel()

    async def _send_response(
        self,
        ch: _ClientConnection,
        conn: h11.Connection,
        response: ProxyResponse,
        plain: bool = False,
    ) -> bool:
        """Relay a response, one client write per chunk; True if it was delivered whole."""
        delivered = False
        body = response.body
        try:
            headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in client_headers(response.headers)
            ]
            reason = response.reason.encode("latin-1")
            written = _plain_head(conn, response.status, reason, headers) if plain else None
            if written is None:
                chunked = False
                head = conn.send(
                    h11.Response(status_code=response.status, headers=headers, reason=reason)
                )
            else:
                head, chunked = written
            ch.write_soon(head)  # with the first body piece if that is already here
            next_chunk = body.__anext__
            while True:
                try:
                    data = await self._while_client_present(ch, next_chunk)
                except StopAsyncIteration:
                    break
                if data:
                    if chunked:  # h11's chunked framing, without its per-event machinery
                        ch.write(b"%x\r\n%s\r\n" % (len(data), data))
                    else:
                        ch.write(conn.send(h11.Data(data=data)))
                    await ch.drain()
            ch.write(conn.send(h11.EndOfMessage()))
            delivered = not ch.lost
        except (_ClientGone, ConnectionError):
            pass
        except CloseConnection:
            ch.close()
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._report(f"relaying a response failed: {type(e).__name__}: {e}")
            ch.close()
        finally:
            try:
                await _close_iterator(body)
            except Exception as e:
                self._report(f"closing a response body failed: {type(e).__name__}: {e}")
            if response.on_sent is not None:
                try:
                    response.on_sent(delivered)
                except Exception as e:
                    self._report(f"on_sent failed: {type(e).__name__}: {e}")
        return delivered


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class _Refusal(NamedTuple):
    reason: str


async def _connect_first(
    loop: asyncio.AbstractEventLoop, addresses: list[str], port: int
) -> ByteChannel:
    """A connection to the first of ``addresses`` that answers (the last error if none)."""
    error: OSError | None = None
    for address in addresses:
        try:
            _transport, channel = await loop.create_connection(ByteChannel, address, port)
        except OSError as e:
            error = e
            continue
        return channel
    raise error or OSError(f"no address to connect to on port {port}")


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


def _plain_head(
    conn: h11.Connection, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, bool] | None:
    """The bytes h11 would write for this response head and whether the body is chunked.

    None lets h11 write the head.

    Only for a plain exchange (see ``_request``) and a head h11 would send
    unchanged but for its framing: valid names and values, no Host, at most one
    simple Content-Length, no Transfer-Encoding or Connection. h11 still gets a
    Response event carrying just the framing headers, so its state machine and
    body writer (Content-Length checks, chunked framing) work as before; what
    this skips is h11 validating and copying every header once more. A chunked
    body's pieces can then be framed directly too (h11 keeps no state for them).
    """
    if type(status) is not int or not 200 <= status < 1000 or status in _NO_BODY_STATUS:
        return None
    framing: list[tuple[bytes, bytes]] = []
    lines: list[bytes] = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in headers:
        if _FIELD_NAME.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
            return None
        lower = name.lower()
        if lower == b"content-length":
            if framing or _CONTENT_LENGTH.fullmatch(value) is None:
                return None
            framing.append((name, value))
        elif lower in (b"host", b"transfer-encoding", b"connection"):
            return None
        lines.append(b"%s: %s\r\n" % (name, value))
    conn.send(h11.Response(status_code=status, headers=framing, reason=reason))
    if not framing:
        lines.append(_CHUNKED_LINE)
    lines.append(b"\r\n")
    return b"".join(lines), not framing


async def _pump(source: ByteChannel, sink: ByteChannel) -> None:
    """Copy bytes one way until EOF, then half-close the other side."""
    try:
        while True:
            data = await source.read()
            if not data:
                break
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        source.abort()
        sink.abort()
        return
    transport = sink.transport
    if transport is not None and not transport.is_closing():
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
