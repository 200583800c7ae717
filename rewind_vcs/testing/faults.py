"""Fault injection for the fake LLM: which fault a request gets, and how a connection ends.

Faults are chosen per request, by the request header ``x-fake-fault``
(:data:`FAULT_HEADER`) or by a script (one entry consumed by each request, in
arrival order; the header wins when both are set):

- ``429`` / ``500``: the provider's error JSON with that status;
- ``reset``: close the socket with a TCP reset, no response;
- ``hang``: never answer (the connection is released when the server stops
  or the client hangs up);
- ``cut``: send the head and a few chunks (half the body when not streaming),
  then drop the connection;
- ``slow``: a pause between chunks (before the body when not streaming).
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
import threading
from collections.abc import Iterable, Mapping

#: Request header that picks a fault for that one request.
FAULT_HEADER = "x-fake-fault"


class Fault(enum.StrEnum):
    NONE = "none"
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    RESET = "reset"
    HANG = "hang"
    CUT = "cut"
    SLOW = "slow"

    @property
    def status(self) -> int | None:
        """The HTTP status of an error fault, None for the others."""
        return int(self.value) if self.value.isdigit() else None


def unknown_fault_message(asked: str) -> str:
    choices = ", ".join(f.value for f in Fault)
    return f"unknown {FAULT_HEADER} value {asked!r}; use one of {choices}"


class FaultScript:
    """The faults to come: a scripted list consumed one per request, overridden by the header.

    Thread-safe: the list is consumed under a lock.
    """

    def __init__(self, faults: Iterable[Fault | str | None] = ()) -> None:
        self._queue = [Fault.NONE if f is None else Fault(f) for f in faults]
        self._lock = threading.Lock()

    def next(self, headers: Mapping[str, str]) -> Fault | str:
        """The fault for a request with ``headers`` (lower-cased names); an unknown header
        value comes back as the string it was, to be answered with a 400."""
        with self._lock:
            scripted = self._queue.pop(0) if self._queue else Fault.NONE
        asked = headers.get(FAULT_HEADER, "").strip().lower()
        if not asked:
            return scripted
        try:
            return Fault(asked)
        except ValueError:
            return asked


class Ending(enum.Enum):
    """How the server closes a connection."""

    GRACEFUL = "graceful"  # send what is buffered, then FIN
    DROP = "drop"  # close now, discarding anything unsent
    RESET = "reset"  # close with a TCP reset


async def close(writer: asyncio.StreamWriter, ending: Ending) -> None:
    if ending is Ending.GRACEFUL:
        writer.close()
        try:
            await writer.wait_closed()
            return
        except (ConnectionError, asyncio.CancelledError):
            ending = Ending.DROP
    sock = writer.get_extra_info("socket")
    if ending is Ending.RESET and sock is not None and sock.fileno() != -1:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
