"""Writing one response to a client: its head, then its body one write per chunk.

:func:`send_response` keeps the server's half of the handler contract
(handler.py): it always closes the body iterator and then calls
``on_sent(delivered)`` once. :func:`while_client_present` is how every wait
on a handler is made: cancelled the moment the client goes away. The
response head of a plain exchange is written directly (:func:`_plain_head`),
skipping h11's per-header validation on the hot path.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import h11

from rewind_vcs.proxy.handler import CloseConnection, ProxyResponse, client_headers

if TYPE_CHECKING:
    from rewind_vcs.proxy.connection import ClientConnection

T = TypeVar("T")

# h11's own header rules (h11/_abnf.py), to check a response head we write ourselves.
_FIELD_NAME = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_FIELD_VALUE = re.compile(rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?")
_CONTENT_LENGTH = re.compile(rb"[0-9]+")
_NO_BODY_STATUS = frozenset({204, 304})
_CHUNKED_LINE = b"Transfer-Encoding: chunked\r\n"


class ClientGone(Exception):
    """The client closed or reset its connection."""


async def close_iterator(body: Any) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        await aclose()


async def while_client_present(ch: ClientConnection, start: Callable[[], Awaitable[T]]) -> T:
    """Await ``start()``, cancelling it if the client goes away meanwhile (-> ClientGone)."""
    if ch.gone:
        raise ClientGone
    ch.cancel_armed = True
    try:
        return await start()
    except asyncio.CancelledError:
        if ch.gone_cancelled:
            ch.gone_cancelled = False
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            raise ClientGone from None
        raise
    finally:
        ch.cancel_armed = False
        if ch.gone_cancelled:  # the awaitable swallowed the cancellation
            ch.gone_cancelled = False
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                task.uncancel()


async def send_response(
    ch: ClientConnection,
    conn: h11.Connection,
    response: ProxyResponse,
    plain: bool,
    report: Callable[[str], None],
) -> bool:
    """Relay a response, one client write per chunk; True if it was delivered whole."""
    delivered = False
    body = response.body
    try:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in client_headers(response.headers)
        ]
        reason = response.reason.encode("latin-1")
        written = _plain_head(conn, response.status, reason, headers) if plain else None
        if written is None:
            chunked = False
            head = conn.send(
                h11.Response(status_code=response.status, headers=headers, reason=reason)
            )
        else:
            head, chunked = written
        ch.write_soon(head)  # with the first body piece if that is already here
        next_chunk = body.__anext__
        while True:
            try:
                data = await while_client_present(ch, next_chunk)
            except StopAsyncIteration:
                break
            if data:
                if chunked:  # h11's chunked framing, without its per-event machinery
                    ch.write(b"%x\r\n%s\r\n" % (len(data), data))
                else:
                    ch.write(conn.send(h11.Data(data=data)))
                await ch.drain()
        ch.write(conn.send(h11.EndOfMessage()))
        delivered = not ch.lost
    except (ClientGone, ConnectionError):
        pass
    except CloseConnection:
        ch.close()
    except asyncio.CancelledError:
        raise
    except Exception as e:
        report(f"relaying a response failed: {type(e).__name__}: {e}")
        ch.close()
    finally:
        try:
            await close_iterator(body)
        except Exception as e:
            report(f"closing a response body failed: {type(e).__name__}: {e}")
        if response.on_sent is not None:
            try:
                response.on_sent(delivered)
            except Exception as e:
                report(f"on_sent failed: {type(e).__name__}: {e}")
    return delivered


def _plain_head(
    conn: h11.Connection, status: int, reason: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[bytes, bool] | None:
    """The bytes h11 would write for this response head and whether the body is chunked.

    None lets h11 write the head.

    Only for a plain exchange (see ``_request``) and a head h11 would send
    unchanged but for its framing: valid names and values, no Host, at most one
    simple Content-Length, no Transfer-Encoding or Connection. h11 still gets a
    Response event carrying just the framing headers, so its state machine and
    body writer (Content-Length checks, chunked framing) work as before; what
    this skips is h11 validating and copying every header once more. A chunked
    body's pieces can then be framed directly too (h11 keeps no state for them).
    """
    if type(status) is not int or not 200 <= status < 1000 or status in _NO_BODY_STATUS:
        return None
    framing: list[tuple[bytes, bytes]] = []
    lines: list[bytes] = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
    for name, value in headers:
        if _FIELD_NAME.fullmatch(name) is None or _FIELD_VALUE.fullmatch(value) is None:
            return None
        lower = name.lower()
        if lower == b"content-length":
            if framing or _CONTENT_LENGTH.fullmatch(value) is None:
                return None
            framing.append((name, value))
        elif lower in (b"host", b"transfer-encoding", b"connection"):
            return None
        lines.append(b"%s: %s\r\n" % (name, value))
    conn.send(h11.Response(status_code=status, headers=framing, reason=reason))
    if not framing:
        lines.append(_CHUNKED_LINE)
    lines.append(b"\r\n")
    return b"".join(lines), not framing
