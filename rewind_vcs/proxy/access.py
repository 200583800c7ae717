"""Who may use the proxy, and where it may connect: pure checks, no I/O.

The proxy listens on loopback with no authentication, so two kinds of
strangers can reach it: other local processes, and web pages open in the
user's browser. These checks keep both from using it as more than it is.

- :func:`base_url_refusal`: a base-URL-mode request (``/openai/...`` on the
  proxy itself) must name the proxy in its ``Host`` header (a page on
  ``evil.example`` whose name was rebound to 127.0.0.1 sends ``Host:
  evil.example:PORT``: DNS rebinding), and must not come from a page of
  another origin (``Sec-Fetch-Site: cross-site``/``same-site``, or an
  ``Origin`` other than the proxy's own).
- :func:`destination_refusal`: the proxy relays unrecorded traffic (a blind
  CONNECT tunnel, an absolute-form request for another host) only to public
  addresses on ports 443 and 80, unless the host is one it records or one
  the user allowed: never to loopback, private, link-local or other local
  addresses (it would be an open relay into the machine and its network).

Each returns None when the request may go on, else the one-line reason to
send back with a 403.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import NamedTuple

#: The names the proxy answers to in a ``Host`` header (with its port).
SELF_HOSTS = ("127.0.0.1", "localhost", "[::1]")
#: Ports a blind tunnel or a passthrough request may reach on a public host.
PUBLIC_PORTS = frozenset({443, 80})
_CROSS_SITE = frozenset({"cross-site", "same-site"})

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refusal(NamedTuple):
    """A destination refused, and why (the message for the 403)."""

    reason: str


def self_authorities(port: int) -> frozenset[str]:
    """``host:port`` values of a ``Host`` header that name the proxy itself."""
    return frozenset(f"{host}:{port}" for host in SELF_HOSTS)


def self_origins(port: int) -> frozenset[str]:
    """``Origin`` values of pages served by the proxy itself (it serves none, but they are not foreign)."""
    return frozenset(f"http://{authority}" for authority in self_authorities(port))


def base_url_refusal(
    port: int, host: str | None, origin: str | None, fetch_site: str | None
) -> str | None:
    """Why a request to the proxy's own address must be refused, or None.

    ``host``, ``origin`` and ``fetch_site`` are the values of the request's
    ``Host``, ``Origin`` and ``Sec-Fetch-Site`` headers (None when absent).
    A request without ``Host`` (HTTP/1.0) is not from a browser and passes.
    """
    if host is not None and host.strip().lower() not in self_authorities(port):
        return (
            f"rewind proxy: refused a request for Host {host[:100]!r}: base-URL mode answers "
            f"only to 127.0.0.1:{port}, localhost:{port} or [::1]:{port} (a DNS rebinding page?)"
        )
    if fetch_site is not None and fetch_site.strip().lower() in _CROSS_SITE:
        return (
            f"rewind proxy: refused a request a browser marked Sec-Fetch-Site: {fetch_site[:20]}: "
            "web pages may not use the proxy"
        )
    if origin is not None and origin.strip().lower() not in self_origins(port):
        return (
            f"rewind proxy: refused a request from a web page (Origin {origin[:100]!r}): "
            "web pages may not use the proxy"
        )
    return None


def ip_literal(host: str) -> Address | None:
    """The address ``host`` spells (brackets allowed for IPv6), or None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_public(address: Address) -> bool:
    """A globally routable unicast address (IPv4-mapped IPv6 judged as its IPv4)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def normalise_allowed(entries: Iterable[str]) -> frozenset[str]:
    """``host`` or ``host:port`` entries, lower-case (see :func:`destination_refusal`)."""
    return frozenset(e.strip().lower() for e in entries if e.strip())


def is_allowed(host: str, port: int, allowed: frozenset[str]) -> bool:
    """``host`` (any port) or ``host:port`` is in ``allowed``."""
    name = host.lower()
    shown = f"[{name}]" if ":" in name else name
    return name in allowed or f"{shown}:{port}" in allowed


def port_refusal(host: str, port: int) -> str | None:
    """The part of :func:`destination_refusal` decided before resolving: the port."""
    if port not in PUBLIC_PORTS:
        return (
            f"rewind proxy: refused to relay to {host}:{port}: only ports 443 and 80 are "
            "relayed to hosts rewind does not record"
        )
    return None


def destination_refusal(host: str, port: int, addresses: Iterable[Address]) -> str | None:
    """Why unrecorded traffic for ``host:port`` (resolved to ``addresses``) must not be relayed.

    Callers skip this for hosts the proxy records or the user allowed. Every
    address must be public: a name with one private address among public
    ones is refused too (a rebinding name can answer either).
    """
    refused = port_refusal(host, port)
    if refused is not None:
        return refused
    resolved = list(addresses)
    if not resolved:
        return f"rewind proxy: refused to relay to {host}:{port}: it resolves to no address"
    for address in resolved:
        if not is_public(address):
            return (
                f"rewind proxy: refused to relay to {host}:{port}: it resolves to {address}, "
                "a loopback, private or link-local address (rewind is no relay into this machine "
                "or its network)"
            )
    return None
