"""A tiny HTTP server on 127.0.0.1 for driving the real SDKs.

It records each request the SDK sends (as a records.Request) and answers with
the next queued records.Response, byte for byte.
"""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rewind_vcs.store.records import Request, Response

_SKIPPED_HEADERS = {"content-length", "transfer-encoding", "connection"}


class WireServer:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._responses: deque[Response] = deque()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                server.requests.append(
                    Request(
                        method=self.command,
                        scheme="http",
                        host=self.headers.get("host", ""),
                        path=self.path,
                        headers=[(k.lower(), v) for k, v in self.headers.items()],
                        body=body,
                    )
                )
                response = (
                    server._responses.popleft()
                    if server._responses
                    else Response(status=500, body=b'{"error": {"message": "no response queued"}}')
                )
                self.send_response(response.status, response.reason or None)
                for name, value in response.headers:
                    if name.lower() not in _SKIPPED_HEADERS:
                        self.send_header(name, value)
                self.send_header("content-length", str(len(response.body)))
                self.end_headers()
                self.wfile.write(response.body)
                self.wfile.flush()

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: object) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def respond(self, *responses: Response) -> None:
        self._responses.extend(responses)

    @property
    def last(self) -> Request:
        return self.requests[-1]

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
