"""The upstream pool: keep-alive reuse, the stale-connection retry, TLS with SNI, failures."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.tls import CertificateAuthority
from rewind_vcs.proxy.upstream import UpstreamPool, UpstreamTransportError, upstream_ssl_context
from rewind_vcs.store.records import TransportError

from .fake_upstream import FakeUpstream

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def fetch(pool: UpstreamPool, base: str, path: str = "/echo", **kw) -> tuple[int, bytes]:
    response = await pool.request(
        "POST", base, path, [("Content-Type", "application/json")], b"{}", **kw
    )
    body = b"".join([piece async for piece in response.body])
    return response.status, body


async def raw_server(
    answer: Callable[[int, int, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[bool]],
) -> tuple[asyncio.AbstractServer, int, list[int]]:
    """A server that calls ``answer(connection number, request number on it, r, w)`` per request head."""
    counts: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        counts.append(0)
        n = len(counts)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                counts[n - 1] += 1
                if not await answer(n, counts[n - 1], reader, writer):
                    writer.close()
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], counts


def test_sequential_requests_reuse_one_connection(fake):
    async def main() -> None:
        pool = UpstreamPool()
        for _ in range(5):
            status, body = await fetch(pool, fake.url)
            assert status == 200 and json.loads(body)["method"] == "POST"
        assert pool.connections_opened == 1
        assert pool.idle_connections() == 1
        await pool.aclose()
        assert pool.idle_connections() == 0

    asyncio.run(main())
    assert fake.connections == 1


def test_concurrent_requests_use_separate_connections_and_idle_is_capped(fake):
    async def main() -> None:
        pool = UpstreamPool(max_idle_per_host=2)
        results = await asyncio.gather(
            *(fetch(pool, fake.url, "/stream?n=2&delay=0.05") for _ in range(4))
        )
        assert all(status == 200 for status, _ in results)
        assert pool.connections_opened == 4
        assert pool.idle_connections() == 2
        await pool.aclose()

    asyncio.run(main())


def test_request_headers_host_and_length(fake):
    async def main() -> None:
        pool = UpstreamPool()
        response = await pool.request(
            "POST",
            fake.url + "/echo/prefix",
            "/v1/x?y=1",
            [
                ("Host", "wrong.example"),
                ("Connection", "keep-alive"),
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "999"),
                ("Expect", "100-continue"),
                ("X-Keep", "yes"),
            ],
            b"hello",
        )
        body = json.loads(b"".join([p async for p in response.body]))
        headers = {k.lower(): v for k, v in body["headers"]}
        assert body["path"] == "/echo/prefix/v1/x?y=1"
        assert headers == {
            "host": f"127.0.0.1:{fake.port}",
            "x-keep": "yes",
            "content-length": "5",
        }
        await pool.aclose()

    asyncio.run(main())


def test_a_reused_connection_that_died_is_retried_once_on_a_fresh_one():
    async def answer(conn: int, n: int, reader, writer) -> bool:
        if n == 1:
            writer.write(OK)
            await writer.drain()
            return True
        return False  # second request on a connection: close without answering (the race)

    async def main() -> None:
        server, port, counts = await raw_server(answer)
        pool = UpstreamPool()
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        assert pool.connections_opened == 2
        assert counts == [2, 1]  # the dead connection saw the request, the fresh one answered it
        server.close()
        await pool.aclose()

    asyncio.run(main())


def test_a_fresh_connection_closing_without_a_response_is_a_reset():
    async def answer(conn: int, n: int, reader, writer) -> bool:
        return False

    async def main() -> None:
        server, port, counts = await raw_server(answer)
        pool = UpstreamPool()
        with pytest.raises(UpstreamTransportError) as info:
            await fetch(pool, f"http://127.0.0.1:{port}")
        assert info.value.kind is TransportError.CONNECTION_RESET
        assert counts == [1]  # not retried
        server.close()

    asyncio.run(main())


def test_an_idle_connection_closed_by_the_server_is_not_used():
    async def answer(conn: int, n: int, reader, writer) -> bool:
        writer.write(OK)
        await writer.drain()
        return False  # close right after answering (no Connection: close header)

    async def main() -> None:
        server, port, counts = await raw_server(answer)
        pool = UpstreamPool()
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        assert counts == [1, 1]  # the dead connection never got the second request
        server.close()
        await pool.aclose()

    asyncio.run(main())


def test_stray_bytes_on_an_idle_connection_make_it_unusable():
    async def answer(conn: int, n: int, reader, writer) -> bool:
        writer.write(OK + b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        return True

    async def main() -> None:
        server, port, counts = await raw_server(answer)
        pool = UpstreamPool()
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        await asyncio.sleep(0.05)
        assert await fetch(pool, f"http://127.0.0.1:{port}") == (200, b"ok")
        assert pool.connections_opened == 2
        server.close()
        await pool.aclose()

    asyncio.run(main())


def test_closing_the_body_early_closes_the_connection(fake):
    async def main() -> None:
        pool = UpstreamPool()
        response = await pool.request("GET", fake.url, "/stream?n=5&delay=0.05", [], b"")
        first = await response.body.__anext__()
        assert first == b"data: 0\n\n"
        await response.body.aclose()
        assert pool.idle_connections() == 0
        assert await fetch(pool, fake.url) == (200, (await fetch(pool, fake.url))[1])
        assert pool.connections_opened == 2
        await pool.aclose()

    asyncio.run(main())


def test_read_timeout_and_refused():
    async def answer(conn: int, n: int, reader, writer) -> bool:
        await asyncio.sleep(10)
        return False

    async def main() -> None:
        server, port, _ = await raw_server(answer)
        pool = UpstreamPool()
        with pytest.raises(UpstreamTransportError) as info:
            await fetch(pool, f"http://127.0.0.1:{port}", timeout=0.2)
        assert info.value.kind is TransportError.TIMEOUT
        server.close()
        await server.wait_closed()
        with pytest.raises(UpstreamTransportError) as info:
            await fetch(pool, f"http://127.0.0.1:{port}")
        assert info.value.kind is TransportError.CONNECTION_REFUSED

    asyncio.run(main())


def test_tls_handshake_timeout_is_a_timeout():
    async def main() -> None:
        async def silent(reader, writer):
            await asyncio.sleep(10)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = UpstreamPool(connect_timeout=0.2)
        with pytest.raises(UpstreamTransportError) as info:
            await fetch(pool, f"https://127.0.0.1:{port}")
        assert info.value.kind is TransportError.TIMEOUT
        server.close()

    asyncio.run(main())


def test_https_upstream_with_sni_and_an_extra_ca(tmp_path):
    other = CertificateAuthority.generate("upstream test CA")
    ca_file = tmp_path / "upstream-ca.pem"
    ca_file.write_bytes(other.certificate_pem)
    names: list[str | None] = []
    context = other.leaf_context("localhost")
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    tls_fake = FakeUpstream(tls=context)
    tls_fake.start()
    try:

        async def main() -> None:
            pool = UpstreamPool(upstream_ssl_context(str(ca_file)))
            status, body = await fetch(pool, f"https://localhost:{tls_fake.port}")
            assert status == 200
            assert dict(json.loads(body)["headers"])["Host"] == f"localhost:{tls_fake.port}"
            await pool.aclose()
            untrusting = UpstreamPool(ssl.create_default_context())
            with pytest.raises(UpstreamTransportError) as info:
                await fetch(untrusting, f"https://localhost:{tls_fake.port}")
            assert info.value.kind is TransportError.UPSTREAM_TLS

        asyncio.run(main())
    finally:
        tls_fake.stop()
    assert names[0] == "localhost"


def test_missing_upstream_ca_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError):
        upstream_ssl_context(str(tmp_path / "nope.pem"))
