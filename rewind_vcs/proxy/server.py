"""The proxy server's lifecycle: asyncio + h11, base-URL mode and forward-proxy mode on one loopback port.

Per client connection, one task reads requests with h11 and answers them
(connection.py); the ways in:

- origin-form ``/openai/...``, ``/anthropic/...``, ``/gemini/...`` (base-URL
  mode): routed to that provider's upstream, the prefix removed;
- absolute-form ``POST http://host/path`` (``HTTP_PROXY``): through the handler
  when ``host`` is intercepted, else passed through unrecorded;
- ``CONNECT host:port`` (``HTTPS_PROXY``): for an intercepted host, TLS is
  terminated with a leaf minted by the CA and the requests inside go through
  the handler as ``https``; any other host is tunnelled blind (tunnel.py).

The modules: this one (listening, connection admission, start/stop, in a
thread or on the caller's loop), connection.py (HTTP/1.1 framing of one
client connection, routing, access checks), respond.py (writing a response),
tunnel.py (CONNECT), access.py (the access rules, pure), routes.py (routing,
pure). It never prints: problems go to the ``logging`` loggers of these
modules (``rewind_vcs.proxy.*``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy import access
from rewind_vcs.proxy.connection import ClientConnection
from rewind_vcs.proxy.handler import ForwardHandler, Handler
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.tunnel import Tunnelling
from rewind_vcs.proxy.upstream import UpstreamPool

log = logging.getLogger(__name__)


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


class ProxyServer(Tunnelling):
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
    request head (else the oldest blind tunnel); when every connection is in
    a request, it is refused.

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
        self._connections: set[ClientConnection] = set()
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
            lambda: ClientConnection(self), self.host, self.port, backlog=512
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
                    self._report(f"closing a handler failed: {type(e).__name__}: {e}", logger=log)
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
                self._report(f"stopping the proxy failed: {type(e).__name__}: {e}", logger=log)
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
        self._report(f"{message}: {type(exc).__name__}: {exc}" if exc else message, logger=log)

    def _admit(self) -> bool:
        """Room for one more connection: evict the longest wait for a head if needed.

        With no connection waiting for a head, the oldest blind tunnel goes
        (a local process could otherwise hold every slot with tunnels); a
        connection in the middle of a request is never cut.
        """
        if len(self._connections) < self.max_connections:
            return True
        waiting = [c for c in self._connections if c.waiting_since is not None]
        if waiting:
            victim = min(waiting, key=lambda c: c.waiting_since or 0.0)
        else:
            tunnels = [c for c in self._connections if c.tunnel_since is not None]
            if not tunnels:
                self._report(
                    f"refused a connection: all {self.max_connections} connections are in a request",
                    logger=log,
                )
                return False
            victim = min(tunnels, key=lambda c: c.tunnel_since or 0.0)
        victim.evicted = True
        self._connections.discard(victim)
        victim.abort()
        self._evictions += 1
        if self._evictions in (1, 10, 100) or self._evictions % 1000 == 0:
            self._report(
                f"{self._evictions} connection(s) closed to make room: {self.max_connections} "
                "connections open (the oldest waiting for a request head, else the oldest "
                "blind tunnel)",
                logger=log,
            )
        return True
        waiting = [c for c in self._connections if c.waiting_since is not None]
        if not waiting:
            self._report(
                f"refused a connection: all {self.max_connections} connections are in a request",
                logger=log,
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
                "connections open, the oldest waiting for a request head (a slow or idle client)",
                logger=log,
            )
        return True
