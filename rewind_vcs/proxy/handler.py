"""The seam between the proxy server and what answers a request (forwarder or replayer).

The server parses and routes a client's request into a :class:`ProxyRequest`
and asks a :class:`Handler` for a :class:`ProxyResponse`, whose body it relays
chunk by chunk. :class:`ForwardHandler` sends requests on to the upstream and
reports each finished exchange; the replayer implements the same one method.

The contract, both ways:

- ``handle()`` may raise :class:`CloseConnection` (before or during the body):
  the server then drops the client's connection without a (complete)
  response, the way a network failure looks, so SDKs raise their connection
  error. Any other exception becomes a 502 with a JSON error body.
- The server ends every response by closing the body iterator (``aclose()``)
  and then calling ``on_sent(delivered)``, once: ``delivered`` is True when the
  last byte was handed to the client's socket, False when the client went
  away (or the proxy stopped) first.
- If the client goes away while the server waits on ``handle()`` or on the
  next body chunk, the server cancels that wait: the handler sees
  ``asyncio.CancelledError`` there (or ``GeneratorExit`` at a ``yield``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from rewind_vcs.proxy.headers import Headers, end_to_end
from rewind_vcs.proxy.upstream import Upstream, UpstreamTransportError
from rewind_vcs.store.records import Exchange, Request, Response, TransportError

log = logging.getLogger(__name__)


@dataclass
class ProxyRequest:
    """What a client asked, already routed."""

    method: str
    scheme: str  # "http" (plain or base-URL mode) or "https" (inside an intercepted tunnel)
    # host[:port] the request is meant for: the host the client addressed in
    # forward-proxy mode; the upstream's host in base-URL mode (the proxy's own
    # address says nothing about the call)
    host: str
    path: str  # path and query as sent upstream (base-URL prefix removed)
    headers: list[tuple[str, str]]  # as the client sent them, minus X-Rewind-* headers
    body: bytes
    provider_hint: str | None  # "openai"/"anthropic"/"gemini" from the route, or None
    upstream: str  # upstream base URL, "scheme://host:port[/prefix]"
    span: str | None  # value of X-Rewind-Span
    session_tag: str | None  # value of X-Rewind-Session
    started_at: float  # time.time() when the request head arrived
    t0: float  # time.perf_counter() at the same moment


@dataclass
class ProxyResponse:
    """A response head and its body, yielded as it arrives (never buffered)."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: AsyncIterator[bytes]
    #: Called once by the server after the response ended (see the module docstring).
    on_sent: Callable[[bool], None] | None = field(default=None, repr=False)


class Handler(Protocol):
    """One method: the whole seam."""

    async def handle(self, request: ProxyRequest) -> ProxyResponse: ...


class CloseConnection(Exception):
    """Drop the client's connection without a (complete) response: a network failure."""


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


def bytes_body(data: bytes) -> AsyncIterator[bytes]:
    """A body of one chunk."""
    return _single(data)


def error_body(message: str, code: str) -> bytes:
    """A JSON error in OpenAI's shape (``{"error": {"message", "type", "code"}}``).

    Every SDK turns a non-2xx status into its status error and shows the
    message; the ``type`` says the proxy, not the provider, answered.
    """
    return orjson.dumps({"error": {"message": message, "type": "rewind_proxy_error", "code": code}})


def error_response(status: int, message: str, code: str, reason: str = "") -> ProxyResponse:
    """A JSON error response from the proxy itself (see :func:`error_body`)."""
    body = error_body(message, code)
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    return ProxyResponse(status, reason, headers, bytes_body(body))


def forwarded_headers(headers: Headers, identity_encoding: bool) -> Headers:
    """Headers to send upstream: end-to-end only, and optionally no compression."""
    out = end_to_end(headers, frozenset({"accept-encoding"}) if identity_encoding else frozenset())
    if identity_encoding:
        out.append(("Accept-Encoding", "identity"))
    return out


def client_headers(headers: Headers) -> Headers:
    """Upstream response headers to pass on: end-to-end only (the server redoes the framing)."""
    return end_to_end(headers)


class BodySink(Protocol):
    """Where a recorded response body goes as it arrives (a recorder may spill it to disk)."""

    def write(self, data: bytes) -> None: ...

    def getvalue(self) -> bytes:
        """The body kept in memory: all of it, or ``b""`` when it went elsewhere."""
        ...


class _MemoryBody:
    __slots__ = ("pieces",)

    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.pieces.append(data)

    def getvalue(self) -> bytes:
        return b"".join(self.pieces)


#: Chunk timings kept per response; later pieces of an endless stream merge into the last one.
MAX_CHUNK_TIMINGS = 65536


class _ExchangeRecorder:
    """Collects one exchange as it happens and reports it exactly once."""

    __slots__ = (
        "request",
        "on_exchange",
        "on_error",
        "response",
        "sink",
        "ended_at",
        "ttfb",
        "complete",
        "reported",
    )

    def __init__(
        self,
        request: ProxyRequest,
        on_exchange: Callable[[Exchange], None] | None,
        on_error: Callable[[str], None] | None,
        sink: BodySink | None = None,
    ) -> None:
        self.request = request
        self.on_exchange = on_exchange
        self.on_error = on_error
        self.response = Response()
        # Nothing keeps the body when nothing records it.
        self.sink: BodySink | None = (sink or _MemoryBody()) if on_exchange is not None else None
        self.ended_at: float | None = None
        self.ttfb: float | None = None
        self.complete = False
        self.reported = False

    def head(self, status: int, reason: str, headers: Headers) -> None:
        self.ttfb = time.perf_counter() - self.request.t0
        self.response.status = status
        self.response.reason = reason
        self.response.headers = headers

    def chunk(self, data: bytes) -> None:
        chunks = self.response.chunks
        at = time.perf_counter() - self.request.t0
        if len(chunks) < MAX_CHUNK_TIMINGS:
            chunks.append((at, len(data)))
        else:
            chunks[-1] = (at, chunks[-1][1] + len(data))
        if self.sink is not None:
            self.sink.write(data)

    def finish(self) -> None:
        self.complete = True
        self.ended_at = time.perf_counter()

    def fail(self, kind: TransportError, detail: str) -> None:
        if self.response.error is None and not self.complete:
            self.response.error = kind
            self.response.error_detail = detail
            self.ended_at = time.perf_counter()

    def report(self, delivered: bool = True) -> None:
        if self.reported:
            return
        self.reported = True
        if not delivered and not self.complete:
            self.fail(TransportError.CLIENT_DISCONNECTED, "the client closed the connection")
        if self.on_exchange is None:
            return
        req = self.request
        ended = self.ended_at if self.ended_at is not None else time.perf_counter()
        if self.sink is not None:
            self.response.body = self.sink.getvalue()
            self.sink = None
        exchange = Exchange(
            request=Request(req.method, req.scheme, req.host, req.path, req.headers, req.body),
            response=self.response,
            started_at=req.started_at,
            duration=ended - req.t0,
            span=req.span,
            ttfb=self.ttfb,
        )
        try:
            self.on_exchange(exchange)
        except Exception as e:  # recording must never break the relay
            if self.on_error is not None:
                self.on_error(f"recording an exchange failed: {type(e).__name__}: {e}")


class ForwardHandler:
    """Forward each request to its upstream and report the finished exchange.

    ``timeout`` bounds every wait for upstream bytes (the response head, then
    each body chunk). ``on_exchange`` runs after the last byte reached the
    client (or the exchange failed), on the server's event loop: keep it cheap.

    Failures, as a client sees them:

    - refused, reset, timeout or TLS failure before the response head: the
      client's connection is closed without a response (SDKs raise their
      connection error, as on a real network failure);
    - a malformed response head: a 502 with a JSON error body (code
      ``bad_response``);
    - any failure after the head was sent: the connection is dropped, so the
      client sees a body cut short, as it would from the real upstream.

    ``identity_encoding`` asks the upstream for uncompressed bodies
    (``Accept-Encoding: identity``; the recorded request keeps the client's
    header): recordings stay readable and git can delta-compress them.

    ``body_sink`` (for a handler made for one request, as the recording
    handler does) receives the response body as it arrives (default: kept in
    memory); the exchange reported carries what the sink kept (``getvalue()``).
    ``pool`` is any :class:`~rewind_vcs.proxy.upstream.Upstream`: an
    :class:`UpstreamPool`, or :class:`~rewind_vcs.proxy.memory.MemoryUpstream`
    in tests. A failing ``on_exchange`` is logged to this module's logger
    (and passed to ``on_error``, if given), never raised.
    """

    def __init__(
        self,
        pool: Upstream,
        on_exchange: Callable[[Exchange], None] | None = None,
        timeout: float = 600.0,
        *,
        identity_encoding: bool = True,
        on_error: Callable[[str], None] | None = None,
        body_sink: BodySink | None = None,
    ) -> None:
        self.pool = pool
        self.body_sink = body_sink
        self.on_exchange = on_exchange
        self.timeout = timeout
        self.identity_encoding = identity_encoding
        self.on_error = on_error

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        recorder = _ExchangeRecorder(request, self.on_exchange, self._recording_failed, self.body_sink)
        try:
            upstream = await self.pool.request(
                request.method,
                request.upstream,
                request.path,
                forwarded_headers(request.headers, self.identity_encoding),
                request.body,
                timeout=self.timeout,
            )
        except UpstreamTransportError as e:
            recorder.fail(e.kind, e.detail)
            if e.kind is TransportError.BAD_RESPONSE:
                response = error_response(502, f"rewind proxy: {e}", "bad_response", "Bad Gateway")
                response.on_sent = lambda _delivered: recorder.report()
                return response
            recorder.report()
            raise CloseConnection(str(e)) from None
        except asyncio.CancelledError:
            recorder.report(delivered=False)
            raise
        except Exception as e:  # a bug, not the network: still recorded, then a 502
            recorder.fail(TransportError.BAD_RESPONSE, f"{type(e).__name__}: {e}")
            recorder.report()
            raise
        recorder.head(upstream.status, upstream.reason, upstream.headers)
        return ProxyResponse(
            upstream.status,
            upstream.reason,
            client_headers(upstream.headers),
            self._relay(upstream.body, recorder),
            on_sent=recorder.report,
        )

    @staticmethod
    async def _relay(
        body: AsyncIterator[bytes], recorder: _ExchangeRecorder
    ) -> AsyncIterator[bytes]:
        try:
            async for data in body:
                recorder.chunk(data)
                yield data
            recorder.finish()
        except UpstreamTransportError as e:
            recorder.fail(e.kind, e.detail)
            raise CloseConnection(str(e)) from None
        except Exception as e:
            recorder.fail(TransportError.BAD_RESPONSE, f"{type(e).__name__}: {e}")
            raise
        finally:
            aclose = getattr(body, "aclose", None)
            if aclose is not None:
                await aclose()

    def _recording_failed(self, message: str) -> None:
        log.error("%s", message)
        if self.on_error is not None:
            self.on_error(message)

    async def aclose(self) -> None:
        """Close the pool's idle connections (the server calls this when it stops)."""
        await self.pool.aclose()
