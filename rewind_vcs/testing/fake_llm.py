"""A local fake LLM server that speaks the OpenAI, Anthropic and Gemini wire formats.

Used by rewind's tests, benchmarks and ``rewind demo``: a real HTTP/1.1 server
on 127.0.0.1 (asyncio + h11 in a background thread) with keep-alive, chunked
transfer, TCP_NODELAY on every accepted socket, and SSE streams written chunk
by chunk. What it answers comes from :mod:`rewind_vcs.testing.scripts` (by
default a pure function of the request: bodies, ids included, are
deterministic; only the headers ``date``, ``x-request-id`` and timings are
fresh each time), and how the answer is written from the providers'
own ``synthesise`` (:mod:`rewind_vcs.testing.bodies`).

Faults (:mod:`rewind_vcs.testing.faults`) are chosen per request, by the
request header ``x-fake-fault`` or by the constructor's ``faults`` script. A
request that gets ``429``, ``500``, ``reset`` or ``hang`` does not consume a
scripted reply, so a client's retry gets the reply the first try would have.

Manual use: ``python -m rewind_vcs.testing.fake_llm --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import h11

from rewind_vcs.providers.hosts import ProviderName
from rewind_vcs.testing.bodies import (
    Rendered,
    Route,
    embeddings_response,
    error_rendered,
    rendered,
    reply_response,
    reply_seed,
    request_view,
    route,
)
from rewind_vcs.testing.faults import (
    FAULT_HEADER,
    Ending,
    Fault,
    FaultScript,
    close,
    unknown_fault_message,
)
from rewind_vcs.testing.scripts import Endpoint, ReplyScript, ReplySource, prompt_from

__all__ = [
    "FAULT_HEADER",
    "Endpoint",
    "FakeLLM",
    "Fault",
    "ProviderName",
    "ReceivedRequest",
    "main",
]

_READ_SIZE = 65536


class ReceivedRequest(NamedTuple):
    """One request as the fake received it (header names lower-cased)."""

    method: str
    path: str  # path plus query string
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class FakeLLM:
    """The fake provider server. ``with FakeLLM() as fake: ...`` or ``start()``/``stop()``.

    ``reply`` scripts the replies (see :mod:`rewind_vcs.testing.scripts`);
    ``faults`` is a list of :class:`Fault` (or their values, or None for no
    fault) consumed one per request; ``chunk_delay`` is the pause between
    streamed chunks; ``slow_delay`` that of the ``slow`` fault; ``cut_after``
    how many chunks ``cut`` sends; ``volatile_ids`` makes response ids and
    ``created`` fresh each time, as a real provider's are.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        reply: ReplyScript | None = None,
        faults: Iterable[Fault | str | None] = (),
        chunk_delay: float = 0.0,
        slow_delay: float = 0.05,
        cut_after: int = 3,
        volatile_ids: bool = False,
    ) -> None:
        self._requested_port = port
        self._replies = ReplySource(reply)
        self._faults = FaultScript(faults)
        self.chunk_delay = chunk_delay
        self.slow_delay = slow_delay
        self.cut_after = cut_after
        self.volatile_ids = volatile_ids
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._errors: list[Exception] = []
        self._connections_accepted = 0
        self._sock: socket.socket | None = None
        self._port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> FakeLLM:
        if self._thread is not None:
            raise RuntimeError("FakeLLM is already running")
        sock = socket.create_server(("127.0.0.1", self._requested_port), backlog=128)
        sock.setblocking(False)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._ready.clear()
        self._startup_error = None
        self._thread = threading.Thread(
            target=self._run, name=f"fake-llm:{self._port}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeLLM did not start within 10 s")
        if self._startup_error is not None:
            self._thread.join(5)
            self._thread = None
            raise RuntimeError("FakeLLM failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        """Close the listener and every connection (hung ones included), then join the thread."""
        thread, loop, event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and event is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:
                pass  # the loop closed in between: nothing left to stop
        thread.join(10)
        self._thread = None
        self._loop = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> FakeLLM:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests look at --------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a path."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"

    def base_url_env(self) -> dict[str, str]:
        """The SDKs' base-URL variables pointing at this server (for a child process)."""
        return {
            "OPENAI_BASE_URL": self.openai_base_url,
            "ANTHROPIC_BASE_URL": self.url,
            "GOOGLE_GEMINI_BASE_URL": self.url,
        }

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self._requests)

    @property
    def errors(self) -> list[Exception]:
        """Exceptions raised while building replies (each was answered with a 500)."""
        with self._lock:
            return list(self._errors)

    @property
    def connections_accepted(self) -> int:
        return self._connections_accepted

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- the event loop thread -------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced to start() when it happens during start-up
            self._startup_error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, sock=self._sock)
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._connections_accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h11.Connection(h11.SERVER)
        ending = Ending.GRACEFUL
        try:
            while True:
                received = await self._read_request(conn, reader)
                if received is None:
                    break
                keep_open, reset = await self._respond(conn, reader, writer, received)
                if reset:
                    ending = Ending.RESET
                if not keep_open or conn.our_state is not h11.DONE:
                    break
                try:
                    conn.start_next_cycle()
                except h11.ProtocolError:
                    break
        except asyncio.CancelledError:
            ending = Ending.DROP  # stop(): close now, whatever the connection was doing
        except (ConnectionError, h11.ProtocolError):
            pass
        try:
            await close(writer, ending)
        finally:
            self._tasks.discard(task)

    async def _read_request(
        self, conn: h11.Connection, reader: asyncio.StreamReader
    ) -> ReceivedRequest | None:
        head: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(_READ_SIZE))
            elif isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                received = ReceivedRequest(
                    method=head.method.decode(),
                    path=head.target.decode(),
                    headers={k.decode().lower(): v.decode("latin-1") for k, v in head.headers},
                    body=bytes(body),
                )
                with self._lock:
                    self._requests.append(received)
                return received
            else:  # ConnectionClosed or PAUSED
                return None

    async def _respond(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        received: ReceivedRequest,
    ) -> tuple[bool, bool]:
        """Answer one request. Returns (keep the connection open, reset it)."""
        started = time.monotonic()
        fault = self._faults.next(received.headers)
        found = route(received.method, received.path)
        provider = found.provider if found else None
        if not isinstance(fault, Fault):
            answer = error_rendered(provider, 400, started, unknown_fault_message(fault))
            return await self._send(conn, writer, answer, Fault.NONE), False
        if fault is Fault.RESET:
            return False, True
        if fault is Fault.HANG:
            while await reader.read(_READ_SIZE):
                pass  # hold the request unanswered until the client hangs up or stop()
            return False, False
        if fault.status is not None:
            answer = error_rendered(provider, fault.status, started)
            return await self._send(conn, writer, answer, Fault.NONE), False
        try:
            answer = self._render(found, received, started)
        except Exception as exc:  # a failing reply script, or a request the readers choke on
            with self._lock:
                self._errors.append(exc)
            message = f"the fake LLM could not build a reply: {exc!r}"
            answer = error_rendered(provider, 500, started, message)
            fault = Fault.NONE
        return await self._send(conn, writer, answer, fault), False

    def _render(self, found: Route | None, received: ReceivedRequest, started: float) -> Rendered:
        if found is None:
            status = 404 if received.method == "POST" else 405
            message = f"no fake endpoint for {received.method} {received.path}"
            return error_rendered(None, status, started, message)
        try:
            body = json.loads(received.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("not an object")
        except ValueError:
            return error_rendered(
                found.provider, 400, started, "the request body is not a JSON object"
            )
        n = request_view(found, received.path, received.body)
        endpoint = Endpoint(n.endpoint)
        if endpoint is Endpoint.EMBEDDINGS:
            response = embeddings_response(found, n, body)
            return rendered(response, found.provider, started, stream=False)
        prompt = prompt_from(n, n.model or "unknown-model")
        reply = self._replies.reply_for(found.provider, endpoint, body, prompt)
        seed, created = reply_seed(received.path, received.body, self.volatile_ids)
        response = reply_response(
            found, n, body, reply, prompt, target=received.path, seed=seed, created=created
        )
        return rendered(response, found.provider, started, stream=n.stream)

    async def _send(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, answer: Rendered, fault: Fault
    ) -> bool:
        """Write a response; returns False when the connection must close (a cut)."""
        if answer.chunks is None:
            if fault is Fault.SLOW:
                await asyncio.sleep(self.slow_delay)
            headers = answer.headers + [("content-length", str(len(answer.body)))]
            head = conn.send(h11.Response(status_code=answer.status, headers=headers))
            if fault is Fault.CUT:
                writer.write(head + conn.send(h11.Data(data=answer.body[: len(answer.body) // 2])))
                await writer.drain()
                return False
            writer.write(
                head + conn.send(h11.Data(data=answer.body)) + conn.send(h11.EndOfMessage())
            )
            await writer.drain()
            return True
        headers = answer.headers + [("transfer-encoding", "chunked")]
        writer.write(conn.send(h11.Response(status_code=answer.status, headers=headers)))
        await writer.drain()
        chunks = answer.chunks
        cut_at = max(0, min(self.cut_after, len(chunks) - 1)) if fault is Fault.CUT else None
        delay = self.slow_delay if fault is Fault.SLOW else self.chunk_delay
        for index, chunk in enumerate(chunks):
            if index == cut_at:
                return False
            if index and delay:
                await asyncio.sleep(delay)
            writer.write(conn.send(h11.Data(data=chunk)))
            await writer.drain()
        if cut_at is not None:
            return False
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return True


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fake in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m rewind_vcs.testing.fake_llm",
        description="A local fake LLM server speaking the OpenAI, Anthropic and Gemini wire formats.",
    )
    parser.add_argument(
        "--port", type=int, default=8765, help="port on 127.0.0.1 (0: any free port)"
    )
    parser.add_argument(
        "--chunk-delay", type=float, default=0.02, help="seconds between streamed chunks"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        choices=[f.value for f in Fault],
        help="a fault for the next request (repeat for a script, consumed in order)",
    )
    args = parser.parse_args(argv)
    fake = FakeLLM(port=args.port, chunk_delay=args.chunk_delay, faults=args.fault)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
    fake.start()
    print(f"fake LLM listening on {fake.url}")
    for name, value in fake.base_url_env().items():
        print(f"  export {name}={value}")
    print(
        f"pick a fault per request with the header '{FAULT_HEADER}: 429|500|reset|hang|cut|slow'",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
