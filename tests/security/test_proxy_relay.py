"""A hostile local process cannot use the proxy as a relay into this machine or its network.

Before: ``CONNECT 127.0.0.1:6379`` (any host, any port) was tunnelled blind,
and absolute-form requests for any host were forwarded. Now unrecorded
traffic goes only to public addresses on ports 443 and 80, checked on the
address the name resolves to (and connected to that very address).
"""

from __future__ import annotations

import ipaddress
import json

import pytest

from rewind_vcs.proxy import access
from rewind_vcs.proxy.tls import CertificateAuthority

from .proxy_helpers import Listener, raw, running_proxy, status_of


@pytest.fixture
def listener():
    service = Listener()
    yield service
    service.close()


@pytest.fixture
def ca(tmp_path):
    return CertificateAuthority.create(tmp_path / "ca")


def connect(port: int, target: str) -> tuple[int | None, str, bool]:
    answer, closed = raw(port, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    body = answer.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in answer else b"{}"
    message = json.loads(body or b"{}").get("error", {}).get("message", "")
    return status_of(answer), message, closed


def test_connect_to_a_local_service_is_refused(listener, ca):
    with running_proxy(ca) as proxy:
        for target in (f"127.0.0.1:{listener.port}", f"localhost:{listener.port}"):
            status, message, closed = connect(proxy.port, target)
            assert status == 403 and closed, (target, status)
            assert "443 and 80" in message
        assert listener.accepted == 0
        assert proxy.agent_call() == "Hello from the fake"


@pytest.mark.parametrize(
    "target",
    [
        "localhost:443",  # a name that resolves to loopback
        "127.0.0.1:80",
        "[::1]:443",
        "[::ffff:127.0.0.1]:443",  # IPv4-mapped loopback
        "10.1.2.3:443",
        "192.168.0.1:80",
        "169.254.169.254:80",  # the cloud metadata service
        "100.64.0.1:443",  # carrier-grade NAT
        "0.0.0.0:443",
        "[fe80::1]:443",
        "[fd00::1]:443",
    ],
)
def test_connect_to_loopback_private_or_link_local_is_refused_on_any_port(ca, target):
    with running_proxy(ca) as proxy:
        status, message, closed = connect(proxy.port, target)
        assert status == 403 and closed
        assert "loopback, private or link-local" in message


def test_connect_to_a_public_host_on_another_port_is_refused_before_resolving(ca):
    with running_proxy(ca) as proxy:
        status, message, _ = connect(proxy.port, "ssh.example.invalid:22")  # never resolved
        assert status == 403 and "only ports 443 and 80" in message


def test_absolute_form_passthrough_to_a_local_service_is_refused(listener, ca):
    with running_proxy(ca) as proxy:
        answer, closed = raw(
            proxy.port,
            f"GET http://127.0.0.1:{listener.port}/admin HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{listener.port}\r\n\r\n".encode(),
        )
        assert status_of(answer) == 403 and closed
        answer, _ = raw(proxy.port, b"GET http://169.254.169.254/latest/meta-data HTTP/1.1\r\n"
                                    b"Host: 169.254.169.254\r\n\r\n")
        assert status_of(answer) == 403
        assert listener.accepted == 0 and proxy.exchanges == []


def test_an_allowed_local_host_is_tunnelled(listener, ca):
    with running_proxy(ca, allow_relay_to=[f"127.0.0.1:{listener.port}"]) as proxy:
        answer, _ = raw(
            proxy.port, f"CONNECT 127.0.0.1:{listener.port} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        )
        assert status_of(answer) == 200
    assert listener.accepted == 1


def _addresses(*texts: str) -> list[access.Address]:
    return [ipaddress.ip_address(t) for t in texts]


def test_destination_policy():
    public = _addresses("93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946")
    assert access.destination_refusal("example.com", 443, public) is None
    assert access.destination_refusal("example.com", 80, public[:1]) is None
    assert "only ports 443 and 80" in (access.destination_refusal("example.com", 8443, public) or "")
    # one private address among public ones (a rebinding name) is enough to refuse
    mixed = public + _addresses("127.0.0.1")
    assert "127.0.0.1" in (access.destination_refusal("rebind.example", 443, mixed) or "")
    assert access.destination_refusal("x.example", 443, []) is not None
    for text in ("::ffff:10.0.0.1", "224.0.0.1", "ff02::1", "::", "198.18.0.1"):
        assert not access.is_public(ipaddress.ip_address(text)), text
    allowed = access.normalise_allowed(["Intranet.Example", "10.0.0.5:8080", " "])
    assert access.is_allowed("intranet.example", 9999, allowed)
    assert access.is_allowed("10.0.0.5", 8080, allowed)
    assert not access.is_allowed("10.0.0.5", 8081, allowed)
