"""ForwardHandler: what it forwards, and the Exchange it reports."""

from __future__ import annotations

import time

import httpx

from rewind_vcs.proxy.handler import forwarded_headers
from rewind_vcs.proxy.routes import Routes


def test_exchange_has_the_exact_bytes_and_chunk_timings(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        with client.stream("GET", f"{proxy.url}/openai/stream?n=4&delay=0.1") as r:
            received = [piece for piece in r.iter_raw()]
    (exchange,) = proxy.wait_exchanges(1)
    response = exchange.response
    sent_pieces = [data for _, data in fake.sent]
    # the chunked framing is undone: the body is the payload the upstream sent, byte for byte
    assert response.body == b"".join(f"data: {i}\n\n".encode() for i in range(4))
    assert b"".join(received) == response.body
    assert len(sent_pieces) == 6  # head, 4 chunks, terminator
    assert [n for _, n in response.chunks] == [len(f"data: {i}\n\n") for i in range(4)]
    times = [t for t, _ in response.chunks]
    assert times == sorted(times)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(0.05 < gap < 0.6 for gap in gaps), gaps
    assert exchange.ttfb is not None and 0 < exchange.ttfb <= times[0]
    assert times[-1] <= exchange.duration < times[-1] + 0.2
    assert response.status == 200
    assert response.header("content-type") == "text/event-stream"
    assert response.header("transfer-encoding") == "chunked"  # as received from the upstream
    assert response.error is None


def test_compression_is_turned_off_upstream_but_recorded_as_sent(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))
    with httpx.Client(trust_env=False) as client:
        client.post(
            f"{proxy.url}/openai/echo", content=b"{}", headers={"Accept-Encoding": "gzip, br"}
        )
    assert fake.requests[0].header("accept-encoding") == "identity"
    (exchange,) = proxy.wait_exchanges(1)
    assert exchange.request.header("accept-encoding") == "gzip, br"


def test_forwarded_headers_drop_hop_by_hop():
    headers = [
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "1"),
        ("Proxy-Authorization", "Basic Zm9v"),
        ("Keep-Alive", "timeout=5"),
        ("Authorization", "Bearer sk"),
        ("Accept-Encoding", "gzip"),
        ("Content-Type", "application/json"),
    ]
    assert forwarded_headers(headers, identity_encoding=False) == [
        ("Authorization", "Bearer sk"),
        ("Accept-Encoding", "gzip"),
        ("Content-Type", "application/json"),
    ]
    assert forwarded_headers(headers, identity_encoding=True) == [
        ("Authorization", "Bearer sk"),
        ("Content-Type", "application/json"),
        ("Accept-Encoding", "identity"),
    ]


def test_a_failing_recorder_does_not_break_the_relay(fake, make_proxy):
    proxy = make_proxy(Routes({"openai": fake.url}))

    def broken(exchange):
        raise RuntimeError("disk full")

    proxy.server.handler.on_exchange = broken
    with httpx.Client(trust_env=False) as client:
        assert client.post(f"{proxy.url}/openai/echo", content=b"{}").status_code == 200
        assert client.post(f"{proxy.url}/openai/echo", content=b"{}").status_code == 200
    deadline = time.monotonic() + 2
    while len(proxy.errors) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(proxy.errors) == 2 and all("disk full" in e for e in proxy.errors)
