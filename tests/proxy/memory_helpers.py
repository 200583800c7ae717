"""Running the real proxy code in memory: an event loop on which opening a socket fails the test."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import orjson
import pytest

from rewind_vcs.proxy.handler import Handler, ProxyRequest, ProxyResponse
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer

T = TypeVar("T")
PORT = 8080  # the port the in-memory server believes it listens on
UPSTREAM = "http://upstream.test"


class SocketOpened(AssertionError):
    """A test that must not touch the network opened a socket."""


def _forbidden(*args: object, **kwargs: object) -> Any:
    raise SocketOpened("a test that runs without sockets opened one")


class _NoSocket(socket.socket):
    def __init__(self, *args: object, **kwargs: object) -> None:
        _forbidden()


def memory_run(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """For a ``run`` fixture: ``run(coro)`` on an event loop made before sockets were forbidden.

    (The loop's self-pipe is a socket pair.) Each test module declares
    ``@pytest.fixture def run(monkeypatch): yield from memory_run(monkeypatch)``.
    """
    loop = asyncio.new_event_loop()
    monkeypatch.setattr(socket, "socket", _NoSocket)
    for name in ("create_connection", "socketpair", "getaddrinfo", "create_server"):
        monkeypatch.setattr(socket, name, _forbidden)

    def run_it(coro: Coroutine[Any, Any, T]) -> T:
        return loop.run_until_complete(asyncio.wait_for(coro, 20))

    yield run_it
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def memory_server(handler: Handler, **options: Any) -> ProxyServer:
    """A ProxyServer that is never started: MemoryClient connections are fed to it directly."""
    server = ProxyServer(handler, Routes({"openai": UPSTREAM}), **options)
    server.port = PORT
    return server


def post(path: str, body: bytes, *, close: bool = False, extra: str = "") -> bytes:
    """A base-URL-mode POST as an SDK sends it."""
    connection = "Connection: close\r\n" if close else ""
    return (
        f"POST /openai{path} HTTP/1.1\r\nHost: 127.0.0.1:{PORT}\r\n"
        f"Content-Type: application/json\r\n{connection}{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def chat_body(tag: str) -> bytes:
    return orjson.dumps({"model": "gpt-fake", "messages": [{"role": "user", "content": tag}]})


class CountingHandler:
    """Wraps a handler and counts how often the server calls each response's ``on_sent``."""

    def __init__(self, inner: Handler) -> None:
        self.inner = inner
        self.sent: list[bool] = []
        self.responses = 0

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        response = await self.inner.handle(request)
        self.responses += 1
        original = response.on_sent

        def on_sent(delivered: bool) -> None:
            self.sent.append(delivered)
            if original is not None:
                original(delivered)

        response.on_sent = on_sent
        return response

    async def aclose(self) -> None:
        aclose = getattr(self.inner, "aclose", None)
        if aclose is not None:
            await aclose()
