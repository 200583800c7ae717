"""The handler contract (proxy/handler.py's docstring), checked against every handler, without sockets.

Each handler answers through the real server code (HTTP/1.1 framing, routing,
the relay loop) over an in-memory client connection (proxy.memory.MemoryClient);
the forwarding ones talk to the scripted in-memory upstream
(proxy.memory.MemoryUpstream). The replayer serves steps recorded, for real,
into a temp repository by the recording handler from the same scripts, so the
suite also checks that a replayed failure looks like the recorded one.

The contract: a response's ``on_sent`` is called exactly once (True only when
delivered whole); a network-like failure drops the connection without a
response; a bad answer or a handler bug is a 502 with a JSON error; a client
that hangs up cancels what the handler awaits; keep-alive and
``Connection: close`` are honoured.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from rewind_vcs.proxy.handler import ForwardHandler, Handler
from rewind_vcs.proxy.memory import MemoryClient, MemoryUpstream, Scripted, UpstreamRequest
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.replayer import ReplayHandler
from rewind_vcs.proxy.run import RecordingHandler
from rewind_vcs.store.records import EndInfo, Exchange, SessionInfo, TransportError
from rewind_vcs.store.repo import Repo

from .memory_helpers import CountingHandler, chat_body, memory_run, memory_server, post


@pytest.fixture
def run(monkeypatch):
    """Run a coroutine on a loop where opening a socket fails the test."""
    yield from memory_run(monkeypatch)

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-fake",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)
PIECES = [COMPLETION[:20], COMPLETION[20:60], COMPLETION[60:]]
JSON = ("Content-Type", "application/json")

SCRIPTS: dict[str, Callable[[], Scripted]] = {
    "ok": lambda: Scripted(headers=[JSON, ("Content-Length", str(len(COMPLETION)))], chunks=PIECES),
    "ok-again": lambda: Scripted(headers=[JSON], chunks=PIECES),  # chunked to the client
    "reset": lambda: Scripted(error=TransportError.CONNECTION_RESET),
    "bad": lambda: Scripted(error=TransportError.BAD_RESPONSE),
    "cut": lambda: Scripted(headers=[JSON], chunks=PIECES, cut_after=2),
    "bug": lambda: Scripted(raises=RuntimeError("scripted bug")),
    "hang": lambda: Scripted(hang_before_head=True),
}


def script(request: UpstreamRequest) -> Scripted:
    return SCRIPTS[orjson.loads(request.body)["messages"][0]["content"]]()


@dataclass
class Subject:
    """One handler under test, and what it reported (None: it reports nothing)."""

    handler: Handler
    upstream: MemoryUpstream | None
    reported: Callable[[], list[Exchange]] | None


async def _ask(client: MemoryClient, tag: str, hang_up: bool = False) -> None:
    if hang_up:
        client.send(post("/v1/chat/completions", chat_body(tag)))
        for _ in range(20):
            await asyncio.sleep(0)
        client.hang_up()
        assert client.task is not None
        await asyncio.wait_for(client.task, 2)
    else:
        await client.request(post("/v1/chat/completions", chat_body(tag), close=True))


class _ListeningRecorder(Recorder):
    """The real recorder (journalling into a real repository), keeping what it was given."""

    def __init__(self, repo: Repo, info: SessionInfo) -> None:
        super().__init__(repo, info)
        self.seen: list[Exchange] = []

    def record(self, exchange: Exchange, hint: str | None = None, session_tag: str | None = None,
               spool: Any = None) -> None:
        self.seen.append(exchange)
        super().record(exchange, hint, session_tag, spool)


async def _recorded_steps(repo: Repo) -> list[Any]:
    recorder = Recorder(repo, SessionInfo(name="contract", command=["test"]))
    server = memory_server(RecordingHandler(recorder, MemoryUpstream(script), 5.0))
    for tag in SCRIPTS:
        await _ask(MemoryClient(server), tag, hang_up=tag == "hang")
    await server.aclose()
    recorder.finish(EndInfo(exit_code=0))
    return list(repo.timeline("contract").steps)


async def make_subject(kind: str, tmp_path: Path) -> Subject:
    if kind == "forward":
        upstream = MemoryUpstream(script)
        exchanges: list[Exchange] = []
        return Subject(ForwardHandler(upstream, exchanges.append, 5.0), upstream, lambda: exchanges)
    if kind == "recording":
        upstream = MemoryUpstream(script)
        recorder = _ListeningRecorder(Repo.init(tmp_path / "recording"), SessionInfo(name="rec"))
        handler = RecordingHandler(recorder, upstream, 5.0)

        def journalled() -> list[Exchange]:
            assert recorder.pending == len(recorder.seen)  # each one journalled, once
            return recorder.seen

        return Subject(handler, upstream, journalled)
    assert kind == "replay"
    steps = await _recorded_steps(Repo.init(tmp_path / "replay"))
    assert len(steps) == len(SCRIPTS)
    return Subject(ReplayHandler(steps), None, None)


KINDS = ["forward", "recording", "replay"]


def _errors(reported: list[Exchange]) -> list[TransportError | None]:
    return [exchange.response.error for exchange in reported]


@pytest.mark.parametrize("kind", KINDS)
def test_a_whole_answer_is_relayed_and_on_sent_is_called_once_with_true(kind, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        counting = CountingHandler(subject.handler)
        server = memory_server(counting)
        client = MemoryClient(server)
        first = await client.request(post("/v1/chat/completions", chat_body("ok")))
        second = await client.request(post("/v1/chat/completions", chat_body("ok-again"), close=True))
        assert (first.status, first.body, first.complete, first.closed) == (200, COMPLETION, True, False)
        assert (second.status, second.body, second.complete) == (200, COMPLETION, True)
        assert second.closed  # Connection: close is honoured, after a kept-alive request
        assert counting.sent == [True, True]
        if subject.upstream is not None:
            assert [r.path for r in subject.upstream.requests] == ["/v1/chat/completions"] * 2
            assert subject.upstream.open_bodies == 0
        await server.aclose()
        if subject.reported is not None:
            assert _errors(subject.reported()) == [None, None]

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_network_failure_before_the_head_drops_the_connection_without_a_response(kind, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        counting = CountingHandler(subject.handler)
        server = memory_server(counting)
        client = MemoryClient(server)
        answer = await client.request(post("/v1/chat/completions", chat_body("reset")))
        assert (answer.status, answer.body, answer.closed) == (None, b"", True)
        assert client.transport.written == b""
        assert counting.sent == []  # no response, so nothing to report as sent
        await server.aclose()
        if subject.reported is not None:
            assert _errors(subject.reported()) == [TransportError.CONNECTION_RESET]

    run(main())


@pytest.mark.parametrize("tag", ["bad", "bug"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_answer_or_a_handler_bug_is_a_502_with_a_json_error(kind, tag, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        counting = CountingHandler(subject.handler)
        server = memory_server(counting)
        client = MemoryClient(server)
        answer = await client.request(post("/v1/chat/completions", chat_body(tag)))
        assert answer.status == 502 and answer.complete
        error = orjson.loads(answer.body)["error"]
        assert error["type"] == "rewind_proxy_error"
        assert error["code"] in ("bad_response", "proxy_error")
        assert counting.sent == [True] * counting.responses  # each returned response: once
        again = await client.request(post("/v1/chat/completions", chat_body("ok")))
        assert again.status == 200  # the connection stays usable after a 502
        await server.aclose()
        if subject.reported is not None:
            assert _errors(subject.reported()) == [TransportError.BAD_RESPONSE, None]

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_body_cut_short_drops_the_connection_and_on_sent_says_not_delivered(kind, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        counting = CountingHandler(subject.handler)
        server = memory_server(counting)
        client = MemoryClient(server)
        answer = await client.request(post("/v1/chat/completions", chat_body("cut")))
        assert answer.status == 200 and not answer.complete and answer.closed
        assert answer.body == b"".join(PIECES[:2])
        assert counting.sent == [False]
        await server.aclose()
        if subject.reported is not None:
            assert _errors(subject.reported()) == [TransportError.CONNECTION_RESET]

    run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_hanging_up_cancels_the_handlers_wait(kind, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        counting = CountingHandler(subject.handler)
        server = memory_server(counting)
        client = MemoryClient(server)
        client.send(post("/v1/chat/completions", chat_body("hang")))
        for _ in range(20):
            await asyncio.sleep(0)
        assert client.task is not None and not client.task.done()  # the handler is waiting
        started = asyncio.get_running_loop().time()
        client.hang_up()
        await asyncio.wait_for(client.task, 2)  # the replayer would otherwise wait 30 s
        assert asyncio.get_running_loop().time() - started < 1
        assert client.transport.written == b""
        if subject.upstream is not None:
            assert subject.upstream.cancelled == 1
        await server.aclose()
        if subject.reported is not None:
            assert _errors(subject.reported()) == [TransportError.CLIENT_DISCONNECTED]

    run(main())


@pytest.mark.parametrize("kind", ["forward", "recording"])
def test_a_client_hanging_up_mid_body_cancels_the_wait_and_on_sent_gets_false(kind, run, tmp_path):
    async def main() -> None:
        subject = await make_subject(kind, tmp_path)
        assert subject.upstream is not None
        SCRIPTS["slow"] = lambda: Scripted(headers=[JSON], chunks=PIECES, hang_after=1)
        try:
            counting = CountingHandler(subject.handler)
            server = memory_server(counting)
            client = MemoryClient(server)
            client.send(post("/v1/chat/completions", chat_body("slow")))
            for _ in range(50):
                await asyncio.sleep(0)
            assert PIECES[0] in bytes(client.transport.written)
            client.hang_up()
            assert client.task is not None
            await asyncio.wait_for(client.task, 2)
            assert counting.sent == [False]
            assert subject.upstream.cancelled == 1 and subject.upstream.open_bodies == 0
            await server.aclose()
        finally:
            del SCRIPTS["slow"]
        assert subject.reported is not None
        assert _errors(subject.reported()) == [TransportError.CLIENT_DISCONNECTED]

    run(main())


def test_these_tests_cannot_open_a_socket(run):
    import socket

    from .memory_helpers import SocketOpened

    with pytest.raises(SocketOpened):
        socket.socket()
    with pytest.raises(SocketOpened):
        socket.create_connection(("127.0.0.1", 9))
