"""The proxy server end to end: real sockets, the official SDKs, curl."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import ssl
import subprocess
import threading
import time

import anthropic
import httpx
import openai
import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.handler import (
    CloseConnection,
    ForwardHandler,
    ProxyRequest,
    ProxyResponse,
)
from rewind_vcs.proxy.routes import Routes
from rewind_vcs.proxy.server import ProxyServer
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool
from rewind_vcs.store.records import TransportError

from .fake_upstream import FakeUpstream

MESSAGES = [{"role": "user", "content": "hi"}]


def openai_client(base_url: str, **http: object) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=base_url,
        api_key="sk-test",
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False, **http),  # type: ignore[arg-type]
    )


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes to the proxy, return everything it answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# base-URL mode ----------------------------------------------------------------------------


def test_base_url_mode_openai_sdk_plain(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with openai_client(f"{proxy.url}/openai/v1") as client:
        reply = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].header("host") == f"127.0.0.1:{fake.port}"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.method == "POST"
    assert exchange.request.path == "/v1/chat/completions"
    assert exchange.request.scheme == "http"
    assert json.loads(exchange.request.body)["messages"] == MESSAGES
    assert (
        exchange.request.header("authorization") == "Bearer sk-test"
    )  # redaction is the store's job
    assert exchange.response.status == 200
    assert (
        json.loads(exchange.response.body)["choices"][0]["message"]["content"]
        == "Hello from the fake"
    )
    assert exchange.response.error is None
    assert proxy.errors == []


def test_base_url_mode_stream_first_chunk_arrives_before_upstream_sends_the_last(fake, make_proxy):
    fake.stream_delay = 0.15
    proxy = make_proxy(Routes({"openai": fake.url}))
    words = []
    first_at = None
    with openai_client(f"{proxy.url}/openai/v1") as client:
        stream = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, stream=True)
        for chunk in stream:
            if first_at is None:
                first_at = time.perf_counter()
            if chunk.choices and chunk.choices[0].delta.content:
                words.append(chunk.choices[0].delta.content)
    assert "".join(words) == "Hello from the fake"
    last_data_sent_at = fake.sent[-2][0]  # the last body chunk, before the chunked terminator
    assert first_at is not None and first_at < last_data_sent_at - 0.5
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.response.is_stream
    assert len(exchange.response.chunks) == 7  # role, 4 words, finish, [DONE]: one piece each
    assert exchange.response.body.endswith(b"data: [DONE]\n\n")


def test_base_url_mode_anthropic_sdk(fake, make_proxy):
    proxy = make_proxy(Routes({"anthropic": fake.url}))
    client = anthropic.Anthropic(
        base_url=f"{proxy.url}/anthropic",
        api_key="sk-ant-test",
        max_retries=0,
        http_client=anthropic.DefaultHttpxClient(trust_env=False),
    )
    with client:
        message = client.messages.create(model="claude-fake", max_tokens=10, messages=MESSAGES)
    assert message.content[0].text == "Hello from the fake"
    assert fake.requests[0].path == "/v1/messages"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.path == "/v1/messages"
    assert exchange.request.host == f"127.0.0.1:{fake.port}"


def test_upstream_prefix_and_query_are_kept(fake, make_proxy):
    proxy = make_proxy(Routes({"gemini": fake.url + "/echo/gw"}))
    with httpx.Client(trust_env=False) as client:
        r = client.post(
            f"{proxy.url}/gemini/v1beta/models/gemini-x:streamGenerateContent?alt=sse",
            json={"contents": []},
        )
    assert r.status_code == 200
    assert r.json()["path"] == "/echo/gw/v1beta/models/gemini-x:streamGenerateContent?alt=sse"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.path == "/v1beta/models/gemini-x:streamGenerateContent?alt=sse"


def test_unknown_prefix_is_404_and_not_forwarded(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        r = client.get(f"{proxy.url}/nothing/here")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "unknown_route"
        assert client.post(f"{proxy.url}/openai/echo", content=b"x").status_code == 200
    assert [s.path for s in fake.requests] == ["/echo"]


def test_rewind_headers_are_removed_before_forwarding(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        r = client.post(
            f"{proxy.url}/openai/echo",
            content=b"{}",
            headers={
                "X-Rewind-Span": "supervisor/writer",
                "X-Rewind-Session": "nightly",
                "X-Other": "1",
            },
        )
    forwarded = {k.lower() for k, _ in r.json()["headers"]}
    assert "x-other" in forwarded
    assert not any(name.startswith("x-rewind-") for name in forwarded)
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.span == "supervisor/writer"
    assert exchange.request.header("x-other") == "1"
    assert exchange.request.header("x-rewind-span") is None
    assert exchange.request.header("x-rewind-session") is None


def test_chunked_request_body_is_forwarded_whole(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    parts = [b'{"a": ', b"1", b"}"]
    with httpx.Client(trust_env=False) as client:
        r = client.post(f"{proxy.url}/openai/echo", content=iter(parts))
    assert r.json()["body_len"] == len(b"".join(parts))
    assert fake.requests[0].header("transfer-encoding") is None
    assert fake.requests[0].header("content-length") == str(len(b"".join(parts)))
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.body == b'{"a": 1}'


def test_50_mb_request_body(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    body = os.urandom(1024 * 1024) * 50
    with httpx.Client(trust_env=False, timeout=30) as client:
        r = client.post(f"{proxy.url}/openai/echo", content=body)
    assert r.status_code == 200
    assert r.json()["body_len"] == len(body)
    assert r.json()["body_sha256"] == hashlib.sha256(body).hexdigest()
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.body == body


# keep-alive ------------------------------------------------------------------------------


def test_keep_alive_on_both_sides(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    request = (
        f"POST /openai/echo HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
        "Content-Length: 2\r\n\r\n{}"
    ).encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request)
            response = b""
            while not response.endswith(b"}") or b"\r\n\r\n" not in response:
                chunk = sock.recv(65536)
                assert chunk, "the proxy closed a keep-alive connection"
                response += chunk
            assert response.startswith(b"HTTP/1.1 200")
    assert len(fake.requests) == 3
    assert fake.connections == 1  # one upstream connection, reused
    assert proxy.pool.connections_opened == 1


# forward-proxy mode ----------------------------------------------------------------------


def test_absolute_form_request_to_a_provider_host_is_recorded(fake, make_proxy, ca):
    proxy = make_proxy(Routes({"openai": fake.url}), ca)
    with openai_client("http://api.openai.com/v1", proxy=proxy.url) as client:
        reply = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    assert reply.choices[0].message.content == "Hello from the fake"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.host == "api.openai.com"
    assert exchange.request.path == "/v1/chat/completions"
    assert fake.requests[0].header("host") == f"127.0.0.1:{fake.port}"


def test_absolute_form_record_host_and_passthrough(fake, make_proxy, ca):
    proxy = make_proxy(
        Routes(record_hosts={"api.search.test": fake.url}),
        ca,
        allow_relay_to=[f"127.0.0.1:{fake.port}"],
    )
    with httpx.Client(proxy=proxy.url, trust_env=False) as client:
        passed = client.post(f"http://127.0.0.1:{fake.port}/echo/direct?q=1", content=b"abc")
        recorded = client.post("http://api.search.test/echo/search?q=rewind", content=b"query")
    assert passed.status_code == 200 and passed.json()["path"] == "/echo/direct?q=1"
    assert recorded.status_code == 200 and recorded.json()["path"] == "/echo/search?q=rewind"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.host == "api.search.test"
    assert exchange.request.path == "/echo/search?q=rewind"
    assert exchange.request.body == b"query"
    time.sleep(0.1)
    assert len(proxy.exchanges) == 1  # the passthrough request was not recorded


def test_connect_interception_with_the_openai_sdk(fake, make_proxy, ca, bundle):
    fake.stream_delay = 0.01
    proxy = make_proxy(Routes({"openai": fake.url}), ca)
    verify = ssl.create_default_context(cafile=bundle)
    with openai_client("https://api.openai.com/v1", proxy=proxy.url, verify=verify) as client:
        reply = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
        stream = client.chat.completions.create(model="gpt-fake", messages=MESSAGES, stream=True)
        words = [
            c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
        ]
    assert reply.choices[0].message.content == "Hello from the fake"
    assert "".join(words) == "Hello from the fake"
    plain, streamed = proxy.wait_exchanges(2)
    for exchange in (plain, streamed):
        assert exchange.request.scheme == "https"
        assert exchange.request.host == "api.openai.com"
        assert exchange.request.path == "/v1/chat/completions"
        assert exchange.request.header("host") == "api.openai.com"
    assert streamed.response.is_stream
    assert proxy.errors == []


def test_connect_interception_of_a_record_host(fake, make_proxy, ca, bundle):
    proxy = make_proxy(Routes(record_hosts={"api.search.test": fake.url}), ca)
    verify = ssl.create_default_context(cafile=bundle)
    with httpx.Client(proxy=proxy.url, verify=verify, trust_env=False) as client:
        r = client.post("https://api.search.test/echo/search?q=1", content=b"query")
    assert r.status_code == 200 and r.json()["path"] == "/echo/search?q=1"
    (exchange,) = proxy.wait_exchanges(1)
    assert (exchange.request.scheme, exchange.request.host) == ("https", "api.search.test")
    assert exchange.request.body == b"query"


def test_connect_interception_with_curl(fake, make_proxy, ca, bundle):
    proxy = make_proxy(Routes({"anthropic": fake.url}), ca)
    result = subprocess.run(
        [
            "/usr/bin/curl",
            "--silent",
            "--show-error",
            "--proxy",
            proxy.url,
            "--cacert",
            bundle,
            "--header",
            "content-type: application/json",
            "--data",
            '{"model": "claude-fake", "max_tokens": 5, "messages": []}',
            "https://api.anthropic.com/v1/messages",
        ],
        capture_output=True,
        timeout=20,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"][0]["text"] == "Hello from the fake"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.scheme == "https"
    assert exchange.request.host == "api.anthropic.com"
    assert exchange.request.path == "/v1/messages"
    assert exchange.response.body == result.stdout


def test_curl_refuses_the_minted_cert_without_the_bundle(fake, make_proxy, ca):
    proxy = make_proxy(Routes({"openai": fake.url}), ca)
    result = subprocess.run(
        [
            "/usr/bin/curl",
            "-sS",
            "--proxy",
            proxy.url,
            "--cacert",
            "/dev/null",
            "https://api.openai.com/v1/models",
        ],
        capture_output=True,
        timeout=20,
        env={"PATH": os.environ.get("PATH", "/usr/bin")},
    )
    assert result.returncode != 0
    assert fake.requests == []
    deadline = time.monotonic() + 2
    while not any("TLS handshake" in e for e in proxy.errors) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert any("TLS handshake" in e for e in proxy.errors)


def test_connect_to_another_host_is_tunnelled_blind(make_proxy, ca, tmp_path):
    other = CertificateAuthority.generate("other test CA")
    (tmp_path / "other.pem").write_bytes(other.certificate_pem)
    tls_server = FakeUpstream(tls=other.leaf_context("localhost"))
    tls_server.start()
    try:  # a local host is tunnelled only when the user allows it (tests/security has the rest)
        proxy = make_proxy(Routes(), ca, allow_relay_to=[f"localhost:{tls_server.port}"])
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            sock.sendall(
                f"CONNECT localhost:{tls_server.port} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
            )
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            assert head.startswith(b"HTTP/1.1 200")
            context = ssl.create_default_context(cafile=str(tmp_path / "other.pem"))
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
                assert (
                    issuer["commonName"] == "other test CA"
                )  # the server's own cert, not a minted one
                tls.sendall(
                    b"GET /echo/tunnel HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                )
                response = b""
                while chunk := tls.recv(65536):
                    response += chunk
        assert response.startswith(b"HTTP/1.1 200")
        assert b'"/echo/tunnel"' in response
        time.sleep(0.1)
        assert proxy.exchanges == []
    finally:
        tls_server.stop()


def test_connect_to_an_unreachable_host_is_502(make_proxy, ca):
    proxy = make_proxy(Routes(), ca, allow_relay_to=["127.0.0.1"])
    answer = raw_exchange(
        proxy.port, f"CONNECT 127.0.0.1:{closed_port()} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    assert answer.startswith(b"HTTP/1.1 502")


# errors ----------------------------------------------------------------------------------


def test_malformed_request_gets_400_and_the_proxy_keeps_serving(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    answer = raw_exchange(proxy.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")
    answer = raw_exchange(
        proxy.port, b"GET /openai/echo HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 400")
    with httpx.Client(trust_env=False) as client:
        assert client.post(f"{proxy.url}/openai/echo", content=b"{}").status_code == 200


def test_upstream_status_errors_are_relayed_and_recorded(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url + "/status/429"}))
    with openai_client(f"{proxy.url}/openai/v1") as client:
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.response.status == 429
    assert exchange.response.error is None
    assert json.loads(exchange.response.body)["error"]["message"] == "fake 429"


def test_refused_upstream_drops_the_client_connection(make_proxy):
    proxy = make_proxy(Routes({"openai": f"http://127.0.0.1:{closed_port()}"}))
    with openai_client(f"{proxy.url}/openai/v1") as client:
        with pytest.raises(openai.APIConnectionError):
            client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.response.error is TransportError.CONNECTION_REFUSED
    assert exchange.response.status == 0


def test_upstream_reset_mid_stream_cuts_the_client_short(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        with client.stream("GET", f"{proxy.url}/openai/reset-mid") as r:
            assert r.status_code == 200
            with pytest.raises(httpx.TransportError):
                r.read()
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.response.status == 200
    assert exchange.response.error is TransportError.CONNECTION_RESET
    assert exchange.response.body == b"data: first\n\n"


def test_malformed_upstream_response_is_502(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        r = client.get(f"{proxy.url}/openai/malformed")
    assert r.status_code == 502
    assert r.json()["error"]["code"] == "bad_response"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.response.error is TransportError.BAD_RESPONSE


def test_upstream_timeout(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}), timeout=0.3)
    started = time.perf_counter()
    with httpx.Client(trust_env=False, timeout=5) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{proxy.url}/openai/hang")
        assert time.perf_counter() - started < 2
        assert client.post(f"{proxy.url}/openai/echo", content=b"{}").status_code == 200
    hung, ok = proxy.wait_exchanges(2)
    assert hung.response.error is TransportError.TIMEOUT
    assert 0.3 <= hung.duration < 2
    assert ok.response.error is None


def test_client_hanging_up_mid_stream(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        with client.stream("GET", f"{proxy.url}/openai/stream?n=20&delay=0.2") as r:
            first = next(r.iter_raw())
        assert first == b"data: 0\n\n"
    (exchange,) = proxy.wait_exchanges(1, timeout=2)  # long before the stream's 3.8 s
    assert exchange.response.error is TransportError.CLIENT_DISCONNECTED
    assert exchange.response.body.startswith(b"data: 0\n\n")
    assert len(exchange.response.chunks) < 20
    assert exchange.duration < 2
    with httpx.Client(trust_env=False) as client:
        assert client.post(f"{proxy.url}/openai/echo", content=b"{}").status_code == 200


def test_exchange_is_reported_after_the_last_byte(fake, make_proxy):
    """A slow on_exchange does not delay the response (it runs after the last byte)."""
    pool = UpstreamPool()
    reported = threading.Event()

    def slow_record(exchange):
        time.sleep(1.0)
        reported.set()

    server = ProxyServer(ForwardHandler(pool, slow_record, 5.0), Routes({"openai": fake.url}))
    port = server.start_in_thread()
    try:
        with httpx.Client(trust_env=False) as client:
            started = time.perf_counter()
            r = client.post(f"http://127.0.0.1:{port}/openai/echo", content=b"{}")
            elapsed = time.perf_counter() - started
        assert r.status_code == 200
        assert elapsed < 0.8
        assert not reported.is_set()
        assert reported.wait(3)
    finally:
        server.stop()


# the seam with another handler -------------------------------------------------------------


class CannedHandler:
    """An in-memory twin of a handler, as the replayer will be."""

    def __init__(self) -> None:
        self.requests: list[ProxyRequest] = []
        self.sent: list[bool] = []

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        self.requests.append(request)
        if request.path == "/v1/drop":
            raise CloseConnection("recorded reset")

        async def body():
            for piece in (b"data: a\n\n", b"data: b\n\n"):
                await asyncio.sleep(0)
                yield piece

        return ProxyResponse(
            200, "OK", [("content-type", "text/event-stream")], body(), on_sent=self.sent.append
        )


# lifecycle -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_non_loopback_bind_is_refused(host):
    with pytest.raises(ConfigError):
        ProxyServer(CannedHandler(), Routes(), host=host)


def test_intercepting_without_a_ca_is_refused():
    with pytest.raises(ConfigError):
        ProxyServer(CannedHandler(), Routes(), None, {"api.openai.com"})


def test_port_in_use_is_a_config_error(make_proxy):
    proxy = make_proxy(Routes())
    with pytest.raises(ConfigError):
        ProxyServer(CannedHandler(), Routes(), port=proxy.port).start_in_thread()


def test_stop_is_prompt_and_records_cut_streams(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}), grace=0.2)
    idle = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    streaming = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    try:
        streaming.sendall(
            f"GET /openai/stream?n=50&delay=0.2 HTTP/1.1\r\nHost: localhost:{proxy.port}\r\n\r\n"
            .encode()
        )
        assert streaming.recv(65536).startswith(b"HTTP/1.1 200")
        started = time.perf_counter()
        proxy.server.stop()
        assert time.perf_counter() - started < 2
        assert idle.recv(1) == b""  # closed
        (exchange,) = proxy.wait_exchanges(1)
        assert exchange.response.error is TransportError.CLIENT_DISCONNECTED
    finally:
        idle.close()
        streaming.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", proxy.port), timeout=1).close()


def test_serve_on_the_callers_event_loop(fake):
    async def main() -> int:
        server = ProxyServer(
            ForwardHandler(UpstreamPool(), None, 5.0), Routes({"openai": fake.url})
        )
        task = asyncio.create_task(server.serve())
        while server.port == 0:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"POST /openai/echo HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        response = await reader.read()
        writer.close()
        await server.aclose()
        await asyncio.wait_for(task, 2)
        return int(response.split(b" ", 2)[1])

    assert asyncio.run(main()) == 200


def test_concurrent_streams_are_relayed_and_recorded_separately(fake, make_proxy):
    from concurrent.futures import ThreadPoolExecutor

    proxy = make_proxy(Routes({"openai": fake.url}))

    def one(i: int) -> bytes:
        with httpx.Client(trust_env=False) as client:
            with client.stream("GET", f"{proxy.url}/openai/stream?n=3&delay=0.05&i={i}") as r:
                return b"".join(r.iter_raw())

    with ThreadPoolExecutor(20) as pool:
        bodies = list(pool.map(one, range(20)))
    assert all(body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n" for body in bodies)
    exchanges = proxy.wait_exchanges(20)
    assert sorted(int(e.request.path.rsplit("=", 1)[1]) for e in exchanges) == list(range(20))
    for e in exchanges:  # pieces may coalesce under load: one piece per upstream read
        assert e.response.error is None
        assert e.response.body == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
        assert sum(n for _, n in e.response.chunks) == len(e.response.body)


def test_absolute_form_for_the_proxy_itself_is_base_url_mode(fake, make_proxy):
    """A client that ignores NO_PROXY sends base-URL calls as proxy requests to the proxy."""
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(proxy=proxy.url, trust_env=False) as client:
        r = client.post(f"{proxy.url}/openai/echo", content=b"{}")
    assert r.status_code == 200 and r.json()["path"] == "/echo"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.path == "/echo"


@pytest.mark.parametrize("use_uvloop", [False, True], ids=["asyncio", "uvloop"])
def test_both_event_loops_relay_plain_and_streamed_calls(fake, make_proxy, use_uvloop):
    """uvloop's transports are not asyncio.Transport subclasses: the proxy must not care."""
    if use_uvloop:
        pytest.importorskip("uvloop")
    proxy = make_proxy(Routes({"openai": fake.url}), use_uvloop=use_uvloop)
    with openai_client(f"{proxy.url}/openai/v1") as client:
        reply = client.chat.completions.create(model="gpt-fake", messages=MESSAGES)
        streamed = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-fake", messages=MESSAGES, stream=True) if c.choices)
    assert reply.choices[0].message.content == "Hello from the fake"
    assert streamed
    assert len(proxy.wait_exchanges(2)) == 2 and proxy.errors == []
