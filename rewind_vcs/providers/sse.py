"""Incremental Server-Sent Events parser.

Follows the WHATWG event-stream rules (https://html.spec.whatwg.org/#event-stream-interpretation)
the way the provider SDKs apply them:

- lines end in ``\\n``, ``\\r\\n`` or ``\\r``, and a chunk may end anywhere, even
  between the ``\\r`` and ``\\n`` of one line end or inside a UTF-8 sequence;
- ``event:``, ``data:``, ``id:`` and ``retry:`` fields, one optional space after
  the colon, several ``data:`` lines joined by ``\\n``, ``:`` comment lines;
- a blank line dispatches the event if any field was seen since the last one
  (as the SDKs do, so an ``event:`` line without ``data:`` still yields an event).

Two deliberate differences from a browser, because rewind reads recordings:
``id`` is reported per event (not carried over to later events) and
:meth:`SSEParser.close` dispatches a final event that lacks its blank line, so
a stream cut short keeps what did arrive (its JSON may be partial; callers parse
defensively).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_LINE_END = re.compile(rb"[\r\n]")
_BOM = "\ufeff"


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event. ``event`` is None when the stream sent no ``event:`` line."""

    event: str | None = None
    data: str = ""
    id: str | None = None
    retry: int | None = None

    def json(self) -> Any:
        """The data parsed as JSON, or None when it is not valid JSON."""
        try:
            return json.loads(self.data)
        except ValueError:
            return None


class SSEParser:
    """Feed bytes as they arrive; get back the events each piece completes."""

    def __init__(self) -> None:
        self._line = bytearray()  # the current line so far, without its terminator
        self._after_cr = False  # the previous byte was a CR: a leading LF belongs to it
        self._first_line = True
        self._reset_event()

    def _reset_event(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None
        self._seen = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        start = 0
        for match in _LINE_END.finditer(chunk):
            end = match.start()
            if self._after_cr and end == start and chunk[end] == 0x0A and not self._line:
                # The LF of a CRLF whose CR ended the previous chunk or line.
                self._after_cr = False
                start = end + 1
                continue
            self._line += chunk[start:end]
            self._after_cr = chunk[end] == 0x0D
            start = end + 1
            self._take_line(bytes(self._line), events)
            self._line.clear()
        if start < len(chunk):
            self._after_cr = False
            self._line += chunk[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: process an unterminated last line and dispatch a pending event."""
        events: list[SSEEvent] = []
        if self._line:
            self._take_line(bytes(self._line), events)
            self._line.clear()
        if self._seen:
            events.append(self._build())
            self._reset_event()
        self._after_cr = False
        return events

    def _take_line(self, raw: bytes, events: list[SSEEvent]) -> None:
        line = raw.decode("utf-8", errors="replace")
        if self._first_line:
            self._first_line = False
            if line.startswith(_BOM):
                line = line[1:]
        if not line:
            if self._seen:
                events.append(self._build())
            self._reset_event()
            return
        if line.startswith(":"):
            return  # comment
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" in value:
                return
            self._id = value
        elif name == "retry":
            if not value.isascii() or not value.isdigit():
                return
            self._retry = int(value)
        else:
            return  # unknown field: ignored, and it does not make an event
        self._seen = True

    def _build(self) -> SSEEvent:
        return SSEEvent(
            event=self._event or None,
            data="\n".join(self._data),
            id=self._id,
            retry=self._retry,
        )


def parse_sse(body: bytes) -> list[SSEEvent]:
    """Every event in a complete stream body."""
    parser = SSEParser()
    events = parser.feed(body)
    events.extend(parser.close())
    return events


def encode_sse(data: str, event: str | None = None, *, separator: str = "\n") -> bytes:
    """One event in wire form (``event:`` line if given, ``data:`` lines, blank line)."""
    lines = []
    if event is not None:
        lines.append(f"event: {event}")
    lines.extend(f"data: {part}" for part in data.split("\n"))
    return (separator.join(lines) + separator + separator).encode("utf-8")
