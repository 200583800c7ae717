"""Benchmark clients: a keep-alive ``http.client`` client, an asyncio + h11 one, realistic request bodies.

Both set TCP_NODELAY and send a request's head and body in one write, as the
SDKs' transports do, so a measured difference is the server's (or proxy's),
not a Nagle / delayed-ACK stall of the client.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import time

import h11
import orjson

HEADERS = {
    "content-type": "application/json",
    "accept": "application/json",
    "authorization": "Bearer sk-bench-not-a-real-key-0123456789",
    "user-agent": "rewind-bench/1",
}

_SYSTEM = ("You are a careful research agent. Cite sources, keep answers short, and say when you are "
           "unsure. Use the tools when a fact needs checking. ") * 3


def chat_body(i: int, *, stream: bool = False, turns: int = 3) -> bytes:
    """An OpenAI chat-completions request of about 1.5 KB, distinct for each ``i``."""
    messages = [{"role": "system", "content": _SYSTEM}]
    for t in range(turns):
        messages.append({"role": "user", "content": f"Question {i}.{t}: what changed in the printing "
                                                     f"press between 1440 and 1500, and why did it spread?"})
        messages.append({"role": "assistant", "content": f"Answer {i}.{t}: movable type, oil-based ink and "
                                                          "the screw press; cheap paper and trade routes."})
    messages.append({"role": "user", "content": f"Summarise call {i} in two sentences."})
    body: dict = {"model": "gpt-4o-mini", "messages": messages, "temperature": 0.2}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


class SyncClient:
    """One keep-alive connection; ``call`` and ``stream`` return wall-clock seconds."""

    def __init__(self, port: int, prefix: str = "", timeout: float = 30.0) -> None:
        self.port = port
        self.prefix = prefix  # "/openai" for rewind's base-URL mode, "" for a direct call
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None
        self._open()

    def _open(self) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def _send(self, path: str, body: bytes, headers: dict[str, str] | None) -> http.client.HTTPResponse:
        assert self.conn is not None
        self.conn.request("POST", self.prefix + path, body, {**HEADERS, **(headers or {})})
        return self.conn.getresponse()

    def call(self, body: bytes, path: str = "/v1/chat/completions",
             headers: dict[str, str] | None = None) -> tuple[float, int, bytes]:
        """A non-streaming call: (seconds until the whole body arrived, status, body)."""
        t0 = time.perf_counter()
        resp = self._send(path, body, headers)
        data = resp.read()
        elapsed = time.perf_counter() - t0
        if resp.will_close:
            self.close()
            self._open()
        return elapsed, resp.status, data

    def stream(self, body: bytes, path: str = "/v1/chat/completions",
               headers: dict[str, str] | None = None) -> tuple[float, float, int, int]:
        """A streaming call: (seconds to the first body bytes, seconds to the end, status, bytes)."""
        t0 = time.perf_counter()
        resp = self._send(path, body, headers)
        first = resp.read1()
        ttfc = time.perf_counter() - t0
        size = len(first)
        while True:
            data = resp.read1()
            if not data:
                break
            size += len(data)
        resp.read()  # marks the response complete, so the connection can carry the next request
        total = time.perf_counter() - t0
        if resp.will_close:
            self.close()
            self._open()
        return ttfc, total, resp.status, size


class AsyncClient:
    """One keep-alive connection on asyncio, framed with h11 (cheap enough for 100 at once)."""

    def __init__(self, port: int, prefix: str = "") -> None:
        self.port = port
        self.prefix = prefix
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.h11: h11.Connection | None = None

    async def open(self) -> AsyncClient:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.h11 = h11.Connection(h11.CLIENT)
        return self

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
            self.writer = None

    async def stream(self, body: bytes, path: str = "/v1/chat/completions",
                     headers: dict[str, str] | None = None) -> tuple[float, float, int, int]:
        """One call: (seconds to the first body bytes, seconds to the end, status, body bytes)."""
        assert self.h11 is not None and self.writer is not None and self.reader is not None
        conn = self.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
        head = [("host", f"127.0.0.1:{self.port}"), ("content-length", str(len(body)))]
        head += list({**HEADERS, **(headers or {})}.items())
        t0 = time.perf_counter()
        self.writer.write(conn.send(h11.Request(method="POST", target=self.prefix + path, headers=head))
                          + conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
        ttfc = None
        status = 0
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await self.reader.read(65536)
                conn.receive_data(data)
                if not data and conn.their_state is not h11.DONE:
                    raise ConnectionError("the server closed the connection mid-response")
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                if ttfc is None:
                    ttfc = time.perf_counter() - t0
                size += len(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("the server closed the connection")
        total = time.perf_counter() - t0
        return (ttfc if ttfc is not None else total), total, status, size
