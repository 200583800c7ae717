"""Helpers for the proxy security tests: a recording proxy in front of the fake upstream, raw sockets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx
import openai

from rewind_vcs.proxy.handler import ForwardHandler
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool
from rewind_vcs.store.records import Exchange
from tests.proxy.fake_upstream import FakeUpstream


@dataclass
class Proxy:
    server: ProxyServer
    fake: FakeUpstream
    exchanges: list[Exchange] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def agent_call(self, timeout: float = 10.0) -> str:
        """What an agent does: one chat completion through base-URL mode with the OpenAI SDK."""
        client = openai.OpenAI(
            base_url=f"{self.url}/openai/v1",
            api_key="sk-test",
            max_retries=0,
            http_client=httpx.Client(trust_env=False, timeout=timeout),
        )
        with client:
            reply = client.chat.completions.create(
                model="gpt-fake", messages=[{"role": "user", "content": "hi"}]
            )
        return reply.choices[0].message.content or ""


@contextmanager
def running_proxy(
    ca: CertificateAuthority | None = None, **options: object
) -> Iterator[Proxy]:
    fake = FakeUpstream()
    fake.start()
    proxy = Proxy(server=None, fake=fake)  # type: ignore[arg-type]
    handler = ForwardHandler(UpstreamPool(connect_timeout=2.0), proxy.record, 5.0)
    proxy.server = ProxyServer(handler, Routes({"openai": fake.url}), ca, **options)  # type: ignore[arg-type]
    proxy.server.start_in_thread()
    try:
        yield proxy
    finally:
        proxy.server.stop()
        fake.stop()


def raw(port: int, data: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``data``; (everything answered, whether the proxy closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except TimeoutError:
            return out, False
        except ConnectionResetError:
            return out, True
        return out, True


def status_of(answer: bytes) -> int | None:
    if not answer.startswith(b"HTTP/1.1 "):
        return None
    return int(answer[9:12])


class Listener:
    """A local service the proxy must not be a relay to: counts the connections it gets."""

    def __init__(self, hold: bool = False) -> None:
        self.hold = hold
        self.held: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            if self.hold:
                self.held.append(conn)
            else:
                conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for conn in self.held:
            conn.close()
        self.sock.close()
