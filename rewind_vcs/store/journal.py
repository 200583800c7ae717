"""The journal: finished exchanges appended to a file before they become commits.

Committing costs milliseconds and holds the GIL (pygit2), so the proxy never
commits on the response path. Instead each finished exchange is appended to
``.rewind/journal/<session>.<timeline>.jnl`` with one ``write`` (cheap, and
it survives ``kill -9``); commits are made later in batches. Any later
``rewind`` command replays a journal left behind by a crash.

A record is::

    b"RWJ1" | u32 header length | header (JSON) | request body | response body | u32 crc32

all big-endian; the CRC covers everything before it. A torn last record
(a crash mid-write) fails its length or CRC check and is ignored.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from rewind_vcs.store.records import FORMAT_VERSION, Exchange, Request, Response, TransportError

MAGIC = b"RWJ1"
_HEAD = struct.Struct(">4sI")
_CRC = struct.Struct(">I")


@dataclass
class JournalEntry:
    seq: int  # 1-based position in this journal
    exchange: Exchange
    hint: str | None  # provider implied by the route (e.g. "openai"), if any
    offset: int  # byte offset of the record (for diagnostics)


def encode(seq: int, exchange: Exchange, hint: str | None) -> bytes:
    req, resp = exchange.request, exchange.response
    header = orjson.dumps(
        {
            "format": FORMAT_VERSION,
            "seq": seq,
            "hint": hint,
            "started_at": exchange.started_at,
            "duration": exchange.duration,
            "span": exchange.span,
            "ttfb": exchange.ttfb,
            "request": {
                "method": req.method,
                "scheme": req.scheme,
                "host": req.host,
                "path": req.path,
                "headers": req.headers,
                "body_len": len(req.body),
            },
            "response": {
                "status": resp.status,
                "reason": resp.reason,
                "headers": resp.headers,
                "chunks": resp.chunks,
                "error": resp.error.value if resp.error else None,
                "error_detail": resp.error_detail,
                "body_len": len(resp.body),
            },
        }
    )
    payload = b"".join((_HEAD.pack(MAGIC, len(header)), header, req.body, resp.body))
    return payload + _CRC.pack(zlib.crc32(payload))


class Journal:
    """An append-only journal file for one timeline being recorded."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.seq = sum(1 for _ in read_journal(self.path))

    def append(self, exchange: Exchange, hint: str | None = None) -> int:
        """Append one exchange with a single ``write``; returns its sequence number."""
        self.seq += 1
        data = encode(self.seq, exchange, hint)
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        return self.seq

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


def read_journal(path: str | os.PathLike[str]) -> Iterator[JournalEntry]:
    """Every complete, intact record of a journal, in order; a torn tail is skipped."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return
    pos = 0
    while pos + _HEAD.size <= len(data):
        magic, hlen = _HEAD.unpack_from(data, pos)
        if magic != MAGIC:
            return
        hstart = pos + _HEAD.size
        try:
            header = orjson.loads(data[hstart : hstart + hlen])
            rq, rs = header["request"], header["response"]
            bstart = hstart + hlen
            bmid = bstart + rq["body_len"]
            bend = bmid + rs["body_len"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return
        if bend + _CRC.size > len(data):
            return
        (crc,) = _CRC.unpack_from(data, bend)
        if crc != zlib.crc32(data[pos:bend]):
            return
        exchange = Exchange(
            request=Request(rq["method"], rq["scheme"], rq["host"], rq["path"],
                            [(k, v) for k, v in rq["headers"]], data[bstart:bmid]),
            response=Response(
                rs["status"], rs["reason"], [(k, v) for k, v in rs["headers"]], data[bmid:bend],
                [(float(t), int(n)) for t, n in rs["chunks"]],
                TransportError(rs["error"]) if rs["error"] else None, rs["error_detail"],
            ),
            started_at=header["started_at"],
            duration=header["duration"],
            span=header["span"],
            ttfb=header["ttfb"],
        )
        yield JournalEntry(header["seq"], exchange, header["hint"], pos)
        pos = bend + _CRC.size


def journal_path(journal_dir: Path, session_id: str, timeline: str) -> Path:
    return journal_dir / f"{session_id}.{timeline}.jnl"


def parse_journal_name(path: Path) -> tuple[str, str] | None:
    if path.suffix != ".jnl":
        return None
    sid, sep, timeline = path.stem.partition(".")
    return (sid, timeline) if sep else None
