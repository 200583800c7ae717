"""ForwardHandler and ReplayHandler called in-process: no server, no socket, the scripted upstream twin."""

from __future__ import annotations

import logging
import time

import orjson
import pytest

from rewind_vcs.proxy.handler import (
    CloseConnection,
    ForwardHandler,
    ProxyRequest,
    ProxyResponse,
    bytes_body,
)
from rewind_vcs.proxy.memory import MemoryClient, MemoryUpstream, Scripted
from rewind_vcs.proxy.replayer import ReplayHandler
from rewind_vcs.store.records import Exchange, TransportError
from rewind_vcs.store.repo import Repo

from .memory_helpers import PORT, UPSTREAM, chat_body, memory_run, memory_server, post
from .test_handler_contract import COMPLETION, PIECES, _recorded_steps


@pytest.fixture
def run(monkeypatch):
    """Run a coroutine on a loop where opening a socket fails the test."""
    yield from memory_run(monkeypatch)


def request(tag: str = "ok", headers: list[tuple[str, str]] | None = None) -> ProxyRequest:
    return ProxyRequest(
        method="POST",
        scheme="http",
        host="api.openai.com",
        path="/v1/chat/completions?x=1",
        headers=headers or [("Content-Type", "application/json"), ("Accept-Encoding", "gzip")],
        body=chat_body(tag),
        provider_hint="openai",
        upstream="https://api.openai.com:443",
        span="a/b",
        session_tag=None,
        started_at=time.time(),
        t0=time.perf_counter(),
    )


async def drain(body) -> bytes:
    return b"".join([piece async for piece in body])


def test_forward_sends_end_to_end_headers_with_identity_encoding_and_records_the_exchange(run):
    upstream = MemoryUpstream([Scripted(headers=[("Content-Type", "application/json"),
                                                 ("Connection", "keep-alive")], chunks=PIECES)])
    exchanges: list[Exchange] = []
    handler = ForwardHandler(upstream, exchanges.append, 7.0)

    async def main() -> None:
        response = await handler.handle(request(headers=[
            ("Content-Type", "application/json"), ("Accept-Encoding", "gzip"),
            ("Connection", "x-hop"), ("X-Hop", "1"), ("Proxy-Authorization", "Basic eA==")]))
        assert response.status == 200
        assert response.headers == [("Content-Type", "application/json")]  # hop-by-hop dropped
        assert await drain(response.body) == COMPLETION
        assert exchanges == []  # reported only once the server says it was sent
        assert response.on_sent is not None
        response.on_sent(True)
        response.on_sent(True)  # a second call changes nothing

    run(main())
    (sent,) = upstream.requests
    assert (sent.url_base, sent.path, sent.timeout) == ("https://api.openai.com:443", "/v1/chat/completions?x=1", 7.0)
    assert sent.headers == [("Content-Type", "application/json"), ("Accept-Encoding", "identity")]
    (exchange,) = exchanges
    assert exchange.request.header("accept-encoding") == "gzip"  # recorded as the client sent it
    assert exchange.response.body == COMPLETION and exchange.span == "a/b"
    assert [n for _, n in exchange.response.chunks] == [len(p) for p in PIECES]
    assert exchange.ttfb is not None and exchange.response.error is None


def test_forward_network_failures_raise_close_connection_and_are_recorded(run):
    exchanges: list[Exchange] = []
    upstream = MemoryUpstream([Scripted(error=TransportError.TIMEOUT)])

    async def main() -> None:
        with pytest.raises(CloseConnection):
            await ForwardHandler(upstream, exchanges.append).handle(request())

    run(main())
    assert exchanges[0].response.error is TransportError.TIMEOUT
    assert exchanges[0].response.status == 0


def test_a_failing_recorder_is_logged_not_raised(run, caplog):
    def broken(exchange: Exchange) -> None:
        raise OSError("disk full")

    handler = ForwardHandler(MemoryUpstream([Scripted.body(b"{}")]), broken)

    async def main() -> None:
        response = await handler.handle(request())
        assert await drain(response.body) == b"{}"
        assert response.on_sent is not None
        response.on_sent(True)

    with caplog.at_level(logging.ERROR, logger="rewind_vcs.proxy.handler"):
        run(main())
    assert "recording an exchange failed: OSError: disk full" in caplog.text


def test_replay_serves_recordings_by_match_key_and_misses_in_the_providers_format(run, tmp_path):
    async def main() -> None:
        steps = await _recorded_steps(Repo.init(tmp_path))
        replay = ReplayHandler(steps)
        response = await replay.handle(request("ok-again"))
        assert response.status == 200 and await drain(response.body) == COMPLETION
        missed = await replay.handle(request("never recorded"))
        assert missed.status == 400
        assert ("x-should-retry", "false") in missed.headers
        error = orjson.loads(await drain(missed.body))["error"]
        assert "no recorded step matches" in error["message"]
        assert replay.stats.served == [2] and len(replay.stats.misses) == 1
        with pytest.raises(CloseConnection):  # a recorded reset replays as a dropped connection
            await replay.handle(request("reset"))

    run(main())


def test_memory_server_refuses_a_foreign_host_and_times_out_a_slow_head(run, caplog):
    """And says so on the ``rewind_vcs.proxy`` loggers (what the CLI shows), without on_error."""
    async def main() -> None:
        upstream = MemoryUpstream([])
        server = memory_server(ForwardHandler(upstream), head_timeout=0.2)
        foreign = MemoryClient(server)
        answer = await foreign.request(post("/v1/chat/completions", b"{}").replace(
            f"127.0.0.1:{PORT}".encode(), f"evil.example:{PORT}".encode()))
        assert answer.status == 403 and answer.closed
        slow = MemoryClient(server)
        slow.send(b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1")
        answer = await slow.response()
        assert answer.status == 408 and answer.closed
        assert upstream.requests == []
        await server.aclose()

    with caplog.at_level(logging.INFO, logger="rewind_vcs.proxy"):
        run(main())
    warnings = [r for r in caplog.records if r.name == "rewind_vcs.proxy.connection"]
    assert [r.levelno for r in warnings] == [logging.WARNING, logging.INFO]
    assert "evil.example" in warnings[0].getMessage()
    assert "no whole request head within 0.2 s" in warnings[1].getMessage()


class Canned:
    """The smallest handler: keeps what it was asked."""

    def __init__(self) -> None:
        self.requests: list[ProxyRequest] = []

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        self.requests.append(request)
        return ProxyResponse(200, "OK", [("content-type", "text/plain")], bytes_body(b"ok"))


def test_the_server_hands_the_handler_a_routed_request_without_rewind_headers(run):
    handler = Canned()

    async def main() -> None:
        server = memory_server(handler)
        client = MemoryClient(server)
        answer = await client.request(post("/v1/chat/completions", b"{}",
                                           extra="X-Rewind-Span: a/b\r\nX-Rewind-Session: nightly\r\n"))
        assert (answer.status, answer.body) == (200, b"ok")
        await server.aclose()

    run(main())
    (request,) = handler.requests
    assert (request.provider_hint, request.upstream, request.host) == ("openai", UPSTREAM + ":80", "upstream.test")
    assert (request.span, request.session_tag, request.body) == ("a/b", "nightly", b"{}")
    assert not any(k.lower().startswith("x-rewind-") for k, _ in request.headers)
    assert request.t0 > 0 and abs(request.started_at - time.time()) < 5
