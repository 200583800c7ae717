"""A tiny scripted HTTP/1.1 upstream for the proxy tests (asyncio + h11, TCP_NODELAY).

It runs on its own event loop in a thread, optionally behind TLS, and answers
by path:

- ``POST /v1/chat/completions``: an OpenAI chat completion, or an SSE stream
  of ``stream_words`` (one chunk each, ``stream_delay`` seconds apart) when the
  body asks for ``"stream": true``;
- ``POST /v1/messages``: an Anthropic message;
- ``/status/<code>...``: that status with an OpenAI-shaped JSON error;
- ``/echo...``: JSON describing the request it got (method, path, headers, body size and hash);
- ``/reset``: reads the request, then resets the connection;
- ``/reset-mid``: sends the head and one chunk, then resets;
- ``/hang``: reads the request and never answers;
- ``/malformed``: answers bytes that are not HTTP;
- ``/stream?n=N&delay=S``: N SSE chunks, S seconds apart.

Every chunk written is noted with its ``time.perf_counter()`` in ``sent``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import h11

from rewind_vcs.providers.synthesis import BodyShape, body_pieces
from rewind_vcs.testing.builders import reply_body, reply_response

#: the fake's chat replies: one stream chunk a word, fixed model and usage
_REPLY: dict[str, Any] = {
    "model": "gpt-fake",
    "usage": (5, 4),
    "started_at": 1_700_000_000.0,
    "shape": BodyShape(piece_chars=1),
}


@dataclass
class Seen:
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class FakeUpstream:
    tls: ssl.SSLContext | None = None
    stream_words: list[str] = field(default_factory=lambda: ["Hello", " from", " the", " fake"])
    stream_delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)
    sent: list[tuple[float, bytes]] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    def start(self) -> int:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            self._loop.run_forever()
            self._loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait()
        return self.port

    def stop(self) -> None:
        async def close() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    # serving ----------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.connections += 1
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = None
                parts: list[bytes] = []
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        conn.receive_data(await reader.read(65536))
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        parts.append(bytes(event.data))
                    elif isinstance(event, h11.EndOfMessage):
                        break
                    else:
                        writer.close()
                        return
                assert request is not None
                body = b"".join(parts)
                seen = Seen(
                    request.method.decode(),
                    request.target.decode(),
                    [(k.decode(), v.decode()) for k, v in request.headers.raw_items()],
                    body,
                )
                self.requests.append(seen)
                keep = await self._answer(conn, writer, seen)
                if not keep or conn.our_state is not h11.DONE:
                    writer.close()
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.CancelledError):
            writer.close()

    def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        self.sent.append((time.perf_counter(), data))
        writer.write(data)

    async def _respond(
        self,
        conn: h11.Connection,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        content_type: str = "application/json",
    ) -> bool:
        headers = [("content-type", content_type), ("content-length", str(len(body)))]
        self._send(writer, conn.send(h11.Response(status_code=status, headers=headers)))
        self._send(writer, conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        await writer.drain()
        return True

    async def _stream(
        self, conn: h11.Connection, writer: asyncio.StreamWriter, events: list[bytes], delay: float
    ) -> bool:
        headers = [("content-type", "text/event-stream"), ("cache-control", "no-cache")]
        self._send(writer, conn.send(h11.Response(status_code=200, headers=headers)))
        await writer.drain()
        for i, data in enumerate(events):
            if i and delay:
                await asyncio.sleep(delay)
            self._send(writer, conn.send(h11.Data(data=data)))
            await writer.drain()
        self._send(writer, conn.send(h11.EndOfMessage()))
        await writer.drain()
        return True

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, seen: Seen) -> bool:
        url = urlsplit(seen.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path.startswith("/status/"):
            code = int(path.split("/")[2])
            body = json.dumps(
                {"error": {"message": f"fake {code}", "type": "fake_error", "code": str(code)}}
            ).encode()
            return await self._respond(conn, writer, code, body)
        if path.endswith("/chat/completions"):
            request = json.loads(seen.body or b"{}")
            if request.get("stream"):
                text = "".join(self.stream_words)
                streamed = reply_response("openai", text, stream=True, **_REPLY)
                events = body_pieces(streamed)  # one chunk a word (after the role chunk)
                return await self._stream(conn, writer, events, self.stream_delay)
            body = reply_body("openai", "Hello from the fake", **_REPLY)
            return await self._respond(conn, writer, 200, body)
        if path.endswith("/messages"):
            body = reply_body("anthropic", "Hello from the fake", model="claude-fake", usage=(5, 4))
            return await self._respond(conn, writer, 200, body)
        if path.startswith("/echo"):
            body = json.dumps(
                {
                    "method": seen.method,
                    "path": seen.path,
                    "headers": seen.headers,
                    "body_len": len(seen.body),
                    "body_sha256": hashlib.sha256(seen.body).hexdigest(),
                }
            ).encode()
            return await self._respond(conn, writer, 200, body)
        if path == "/reset":
            _reset(writer)
            return False
        if path == "/reset-mid":
            headers = [("content-type", "text/event-stream")]
            self._send(writer, conn.send(h11.Response(status_code=200, headers=headers)))
            self._send(writer, conn.send(h11.Data(data=b"data: first\n\n")))
            await writer.drain()
            await asyncio.sleep(0.05)
            _reset(writer)
            return False
        if path == "/hang":
            await asyncio.sleep(3600)
            return False
        if path == "/malformed":
            writer.write(b"this is not HTTP at all\r\n\r\n")
            await writer.drain()
            writer.close()
            return False
        if path == "/stream":
            n = int(query.get("n", "3"))
            delay = float(query.get("delay", "0"))
            events = [f"data: {i}\n\n".encode() for i in range(n)]
            return await self._stream(conn, writer, events, delay)
        return await self._respond(conn, writer, 404, b'{"error": {"message": "no such path"}}')


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.transport.abort()
