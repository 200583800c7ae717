"""CONNECT: TLS interception of the hosts rewind records, blind tunnels to public hosts.

``CONNECT host:port`` (``HTTPS_PROXY``) for an intercepted host is answered
200, then TLS is terminated with a leaf certificate the CA mints for that
host, and the requests inside are served as ``https`` by the same
connection code. Any other host is tunnelled blind, bytes both ways, but only
where :mod:`rewind_vcs.proxy.access` allows: a public address on port 443
or 80, a host the routes record, or one the user allowed; the name is
resolved once and the tunnel connects to the checked address.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

import h11

from rewind_vcs.proxy import access
from rewind_vcs.proxy.access import Refusal
from rewind_vcs.proxy.channel import ByteChannel
from rewind_vcs.proxy.connection import (
    ClientConnection,
    ConnectionServing,
    _BodyTimeout,
    _BodyTooLarge,
)
from rewind_vcs.proxy.tls import CertificateAuthority

log = logging.getLogger(__name__)


def parse_authority(target: str) -> tuple[str, int]:
    """``host:port`` of a CONNECT request (``[v6]:port`` too)."""
    parts = urlsplit("//" + target)
    if not parts.hostname or parts.path or parts.query:
        raise ValueError(f"bad CONNECT target {target!r}")
    port = parts.port  # raises ValueError when out of range
    if port is None:
        raise ValueError(f"CONNECT target {target!r} has no port")
    return parts.hostname.lower(), port


class Tunnelling(ConnectionServing):
    """Answering CONNECT: the part of :class:`~rewind_vcs.proxy.server.ProxyServer` that tunnels."""

    ca: CertificateAuthority | None
    relay_hosts: frozenset[str]
    connect_timeout: float

    async def _connect(
        self, ch: ClientConnection, conn: h11.Connection, target: str
    ) -> tuple[str, int] | None:
        """Answer a CONNECT: intercept (returns the tunnel's host and port) or tunnel blind (None)."""
        try:
            host, port = parse_authority(target)
        except ValueError as e:
            self._refuse(ch, conn, 400, str(e), logger=log)
            return None
        try:
            await self._read_body(ch, conn)
        except _BodyTooLarge:
            self._refuse(ch, conn, 413, "CONNECT with a body", logger=log)
            return None
        except _BodyTimeout:
            self._refuse(ch, conn, 408, "CONNECT with a body that never ends", logger=log)
            return None
        if host not in self.intercept_hosts:
            await self._tunnel_blind(ch, conn, host, port)
            return None
        assert self.ca is not None
        ch.write(
            conn.send(h11.Response(status_code=200, headers=[], reason=b"Connection established"))
        )
        trailing, closed = conn.trailing_data
        if trailing or closed or ch.buffered:
            # TLS bytes sent before our 200 arrived: no client does this; asyncio
            # cannot hand them to the TLS layer, so refuse rather than garble.
            self._report(
                f"CONNECT {target}: the client sent data before the tunnel was open", logger=log
            )
            ch.close()
            return None
        loop = asyncio.get_running_loop()
        try:
            context = self.ca.leaf_context(host)
            assert ch.transport is not None
            ch.transport = await loop.start_tls(
                ch.transport,
                ch,
                context,
                server_side=True,
                ssl_handshake_timeout=self.connect_timeout,
            )
        except (OSError, TimeoutError, ConnectionError) as e:
            self._report(
                f"TLS handshake with a client for {host} failed ({type(e).__name__}: {e}); "
                "does the client trust rewind's CA (SSL_CERT_FILE / NODE_EXTRA_CA_CERTS)?",
                logger=log,
            )
            ch.abort()
            return None
        return host, port

    async def _tunnel_blind(
        self, ch: ClientConnection, conn: h11.Connection, host: str, port: int
    ) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                addresses = await self._relay_addresses(host, port)
                if isinstance(addresses, Refusal):
                    self._refuse(ch, conn, 403, addresses.reason, logger=log)
                    return
                upstream = await _connect_first(loop, addresses, port)
        except (OSError, TimeoutError, UnicodeError) as e:  # UnicodeError: a host name idna refuses
            self._refuse(ch, conn, 502, f"cannot connect to {host}:{port}: {e}", logger=log)
            return
        try:
            ch.write(
                conn.send(
                    h11.Response(status_code=200, headers=[], reason=b"Connection established")
                )
            )
            trailing, _closed = conn.trailing_data
            upstream.write(trailing)
            ch.tunnel_since = loop.time()  # evictable, after every wait for a head (server._admit)
            await asyncio.gather(_pump(ch, upstream), _pump(upstream, ch))
        finally:
            upstream.close()
            ch.close()

    async def _relay_addresses(self, host: str, port: int) -> list[str] | Refusal:
        """Where unrecorded traffic for ``host:port`` may go (see :mod:`access`), resolved once.

        Raises OSError/UnicodeError when the name does not resolve. The
        addresses returned are the ones checked: connecting to them (not the
        name again) leaves no window for a rebinding name to change its answer.
        """
        if access.is_allowed(host, port, self.relay_hosts):
            return [host]
        refused = access.port_refusal(host, port)
        if refused is not None:
            return Refusal(refused)
        literal = access.ip_literal(host)
        found: list[access.Address | None] = [literal]
        if literal is None:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
            found = [access.ip_literal(str(info[4][0])) for info in infos]
        addresses = [a for a in found if a is not None]
        refused = access.destination_refusal(host, port, addresses)
        if refused is not None:
            return Refusal(refused)
        return list(dict.fromkeys(str(a) for a in addresses))


async def _connect_first(
    loop: asyncio.AbstractEventLoop, addresses: list[str], port: int
) -> ByteChannel:
    """A connection to the first of ``addresses`` that answers (the last error if none)."""
    error: OSError | None = None
    for address in addresses:
        try:
            _transport, channel = await loop.create_connection(ByteChannel, address, port)
        except OSError as e:
            error = e
            continue
        return channel
    raise error or OSError(f"no address to connect to on port {port}")


async def _pump(source: ByteChannel, sink: ByteChannel) -> None:
    """Copy bytes one way until EOF, then half-close the other side."""
    try:
        while True:
            data = await source.read()
            if not data:
                break
            sink.write(data)
            await sink.drain()
    except ConnectionError:
        source.abort()
        sink.abort()
        return
    transport = sink.transport
    if transport is not None and not transport.is_closing():
        if transport.can_write_eof():
            transport.write_eof()
        else:
            transport.close()
