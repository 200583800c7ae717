"""A hostile local process that opens many slow connections cannot deny the agent its calls.

Before: 1,008 connections that each sent half a request head made every
agent call hang (the proxy ran out of file descriptors). Now a connection
has a bounded time to send its head, idle keep-alive connections expire,
connections are capped (the longest wait for a head is closed to make
room), and an over-long head is a 431.
"""

from __future__ import annotations

import socket
import time

from rewind_vcs.proxy.server import default_max_connections

from .proxy_helpers import Listener, raw, running_proxy, status_of

HALF_HEAD = b"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


def test_1100_slow_connections_do_not_deny_an_agent_call():
    with running_proxy() as proxy:
        assert proxy.server.max_connections <= 1024
        slow: list[socket.socket] = []
        try:
            for _ in range(1100):
                sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                sock.sendall(HALF_HEAD)
                slow.append(sock)
            started = time.monotonic()
            assert proxy.agent_call() == "Hello from the fake"
            assert time.monotonic() - started < 5
            assert len(proxy.server._connections) <= proxy.server.max_connections
        finally:
            for sock in slow:
                sock.close()
        assert len(proxy.exchanges) == 1  # the agent's call, recorded; no slow one


def test_a_capped_proxy_evicts_slow_heads_not_the_agent():
    with running_proxy(max_connections=20) as proxy:
        slow = []
        try:
            for _ in range(60):
                sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                sock.sendall(HALF_HEAD)
                slow.append(sock)
            for _ in range(3):
                assert proxy.agent_call() == "Hello from the fake"
            assert len(proxy.server._connections) <= 20
            assert _closed(slow[0])  # the oldest slow connection was closed to make room
        finally:
            for sock in slow:
                sock.close()


def test_a_head_trickling_in_gets_408_after_the_head_timeout():
    with running_proxy(head_timeout=0.5) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(HALF_HEAD)
            answer = b""
            try:
                for _ in range(40):  # one byte every 0.05 s: never a whole head
                    sock.sendall(b"a")
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass
            sock.settimeout(3)
            try:
                while chunk := sock.recv(65536):
                    answer += chunk
            except ConnectionResetError:
                pass
            assert status_of(answer) == 408, answer
            assert time.monotonic() - started < 2.5
        assert proxy.agent_call() == "Hello from the fake"
        assert len(proxy.exchanges) == 1


def test_a_silent_connection_and_an_idle_keep_alive_one_are_closed():
    with running_proxy(head_timeout=0.4, idle_timeout=0.6) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as silent:
            started = time.monotonic()
            assert silent.recv(100) == b""  # closed, no answer: nothing was asked
            assert 0.3 < time.monotonic() - started < 2
        request = (
            f"POST /openai/echo HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
            "Content-Length: 2\r\n\r\n{}"
        ).encode()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=3) as kept:
            kept.sendall(request)
            answer = b""
            while not answer.endswith(b"}"):
                answer += kept.recv(65536)
            assert status_of(answer) == 200
            started = time.monotonic()
            assert kept.recv(100) == b""  # the idle keep-alive connection expired
            assert 0.4 < time.monotonic() - started < 2


def test_a_body_that_stops_arriving_gets_408():
    with running_proxy(body_timeout=0.5) as proxy:
        answer, closed = raw(
            proxy.port,
            f"POST /openai/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
            "Content-Length: 100\r\n\r\n{\"mo".encode(),
        )
        assert status_of(answer) == 408 and closed
        assert proxy.fake.requests == [] and proxy.exchanges == []


def test_an_over_long_head_in_one_piece_gets_431():
    with running_proxy() as proxy:
        headers = "".join(f"X-Pad-{i}: {'a' * 1000}\r\n" for i in range(80))  # 80 KB, one send
        answer, closed = raw(
            proxy.port,
            f"GET /openai/v1/models HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n{headers}\r\n".encode(),
        )
        assert status_of(answer) == 431 and closed
        answer, closed = raw(  # and in pieces (h11's own bound)
            proxy.port, b"GET /openai/v1/x HTTP/1.1\r\nX-Pad: " + b"a" * 70000
        )
        assert status_of(answer) == 431 and closed
        assert proxy.fake.requests == []
        assert proxy.agent_call() == "Hello from the fake"


def test_the_default_cap_stays_under_the_open_files_limit():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = default_max_connections()
    assert 64 <= cap <= 1024
    if soft != resource.RLIM_INFINITY and soft > 256:
        assert 2 * cap < soft


def _closed(sock: socket.socket, wait: float = 2) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_blind_tunnels_cannot_hold_every_slot():
    listener = Listener(hold=True)
    try:
        with running_proxy(max_connections=5, allow_relay_to=[f"127.0.0.1:{listener.port}"]) as proxy:
            tunnels = []
            try:
                for _ in range(5):
                    sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
                    sock.sendall(f"CONNECT 127.0.0.1:{listener.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                    assert sock.recv(100).startswith(b"HTTP/1.1 200")
                    tunnels.append(sock)
                assert proxy.agent_call(timeout=20) == "Hello from the fake"
                assert _closed(tunnels[0], wait=5)  # the oldest tunnel made room
                assert not _closed_now(tunnels[-1])
            finally:
                for sock in tunnels:
                    sock.close()
    finally:
        listener.close()


def _closed_now(sock: socket.socket) -> bool:
    sock.settimeout(0.2)
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
