"""Small loopback servers the fault tests point the proxy at (besides the FakeLLM).

- :class:`BlobUpstream`: an HTTP/1.1 upstream with big, binary, non-JSON and
  gzip-encoded answers, for bodies the fake LLM never sends;
- :class:`EchoServer`: a plain TCP echo server, the "unknown host" a CONNECT
  is tunnelled to blind.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


def blob(size: int) -> bytes:
    """The response body of ``/v1/blob?size=N``: deterministic, and not the request's bytes."""
    return random.Random(11).randbytes(1024) * (size // 1024) + random.Random(12).randbytes(size % 1024)


class _BlobHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        parts = urlsplit(self.path)
        headers: list[tuple[str, str]] = []
        if parts.path == "/v1/blob":
            size = int(parse_qs(parts.query)["size"][0])
            out, ctype = blob(size), "application/octet-stream"
            headers.append(("x-request-sha256", hashlib.sha256(body).hexdigest()))
        elif parts.path == "/v1/chat/completions":
            out, ctype = body[::-1] + b"\x00", "application/octet-stream"
            headers.append(("x-echo-odd", self.headers.get("x-odd", "-")))
        elif parts.path == "/v1/text":
            out, ctype = b"echo: " + body, "text/plain; charset=utf-8"
        elif parts.path == "/v1/gzipped":
            out, ctype = gzip.compress(b'{"compressed": true}', mtime=0), "application/json"
            headers.append(("content-encoding", "gzip"))  # although the proxy asked for identity
        elif parts.path == "/v1/empty":
            out, ctype = b"", "application/octet-stream"
        else:
            out, ctype = b"no such path", "text/plain"
            self.send_response(404)
        if parts.path in ("/v1/blob", "/v1/chat/completions", "/v1/text", "/v1/gzipped", "/v1/empty"):
            self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(out)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(out)


class BlobUpstream:
    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _BlobHandler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BlobUpstream:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class EchoServer:
    """Accepts TCP connections on 127.0.0.1 and echoes every byte back; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    @staticmethod
    def _echo(conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def __enter__(self) -> EchoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.thread.join(5)
        self.sock.close()
