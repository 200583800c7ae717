"""The journal: finished exchanges appended to a file before they become commits.

Committing costs milliseconds and holds the GIL (pygit2), so the proxy never
commits on the response path. Instead each finished exchange is appended to
``.rewind/journal/<session>.<timeline>.jnl`` with one ``writev`` (cheap, and
it survives ``kill -9``); commits are made later in batches. Any later
``rewind`` command replays a journal left behind by a crash.

A record is::

    b"RWJ1" | u32 header length | header (JSON) | request body | response body | u32 crc32

all big-endian; the CRC covers everything before it. A torn last record
(a crash mid-write) fails its length or CRC check and is ignored. The
header's ``format`` is checked: a record of a newer format than
:data:`JOURNAL_FORMAT` raises :class:`~rewind_vcs.errors.FormatTooNewError`.

A response body too large to keep in memory while it streams (see
:class:`BodySpool`) is written as it arrives to its own *spill file*
``journal/<random>.spill`` and the record then carries no response body but
``response.spill = {"file", "len", "crc"}`` (format 2). Nothing in this
module copies a body: records are framed with ``writev`` and the CRC is
computed piece by piece.

:data:`raw_write` is the one place bytes reach the disk (a fault seam: tests
replace it with a write that fails with ``ENOSPC``).
"""

from __future__ import annotations

import errno
import os
import secrets
import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store.records import Exchange, Request, Response, TransportError

MAGIC = b"RWJ1"
#: The newest record format this rewind writes and reads (1: inline bodies; 2: spill files).
JOURNAL_FORMAT = 2
_HEAD = struct.Struct(">4sI")
_CRC = struct.Struct(">I")
SPILL_SUFFIX = ".spill"

#: ``os.write``, the one call that writes journal and spill bytes (replace it to inject faults).
raw_write: Callable[[int, memoryview], int] = os.write


def disk_full(exc: BaseException) -> bool:
    """True when ``exc`` says the disk (or the user's quota) is full, from the OS or from libgit2."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(exc)
    return "No space left on device" in text or "Disk quota exceeded" in text


def _write_all(fd: int, parts: Sequence[bytes]) -> None:
    for part in parts:
        view = memoryview(part)
        while view:
            n = raw_write(fd, view)
            view = view[n:]


@dataclass(frozen=True)
class Spill:
    """A response body kept in its own file next to the journal."""

    file: str  # the file's name in the journal directory
    length: int
    crc: int


@dataclass
class JournalEntry:
    seq: int  # 1-based position in this journal
    exchange: Exchange  # with an empty response body when ``spill`` is set
    hint: str | None  # provider implied by the route (e.g. "openai"), if any
    offset: int  # byte offset of the record (for diagnostics)
    spill: Spill | None = None  # where the response body is, when not in ``exchange``
    end: int = 0  # byte offset just after the record (0 when not read from a file)


def _header(seq: int, exchange: Exchange, hint: str | None, spill: Spill | None) -> bytes:
    req, resp = exchange.request, exchange.response
    response: dict[str, Any] = {
        "status": resp.status,
        "reason": resp.reason,
        "headers": resp.headers,
        "chunks": resp.chunks,
        "error": resp.error.value if resp.error else None,
        "error_detail": resp.error_detail,
        "body_len": 0 if spill else len(resp.body),
    }
    if spill is not None:
        response["spill"] = {"file": spill.file, "len": spill.length, "crc": spill.crc}
    return orjson.dumps(
        {
            "format": 2 if spill else 1,
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
            "response": response,
        }
    )


def frame(seq: int, exchange: Exchange, hint: str | None, spill: Spill | None = None) -> list[bytes]:
    """The pieces of one record, in order (bodies are not copied)."""
    header = _header(seq, exchange, hint, spill)
    head = _HEAD.pack(MAGIC, len(header))
    resp_body = b"" if spill else exchange.response.body
    crc = zlib.crc32(head)
    for part in (header, exchange.request.body, resp_body):
        crc = zlib.crc32(part, crc)
    return [head, header, exchange.request.body, resp_body, _CRC.pack(crc)]


def encode(seq: int, exchange: Exchange, hint: str | None, spill: Spill | None = None) -> bytes:
    """One record as bytes (a copy: for tests and tools; :class:`Journal` writes the frame)."""
    return b"".join(frame(seq, exchange, hint, spill))


class Journal:
    """An append-only journal file for one timeline being recorded."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.seq = 0
        self._end = 0  # where the last whole record ends
        for entry in read_journal(self.path):
            self.seq = entry.seq
        self._end = os.fstat(self._fd).st_size

    def append(self, exchange: Exchange, hint: str | None = None, spill: Spill | None = None) -> int:
        """Append one exchange; returns its sequence number.

        If the write fails (a full disk), the torn record is cut off again so
        the journal stays readable, and the ``OSError`` propagates.
        """
        parts = frame(self.seq + 1, exchange, hint, spill)
        try:
            _write_all(self._fd, parts)
        except OSError:
            try:
                os.ftruncate(self._fd, self._end)
            except OSError:
                pass  # a torn tail is ignored by every reader anyway
            raise
        self._end += sum(len(p) for p in parts)
        self.seq += 1
        return self.seq

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def remove(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)


class BodySpool:
    """A response body as it streams in: kept in memory up to ``threshold`` bytes, then spilled.

    Past the threshold every piece is written straight to a spill file in
    ``directory`` (the journal's), so an endless stream costs disk, not
    memory. A write error (a full disk) is kept in :attr:`failed`; later
    pieces are dropped and the exchange cannot be recorded.
    """

    def __init__(self, directory: Path, threshold: int) -> None:
        self.directory = directory
        self.threshold = threshold
        self.size = 0
        self.failed: OSError | None = None
        self._pieces: list[bytes] = []
        self._fd = -1
        self._path: Path | None = None
        self._crc = 0

    @property
    def spilled(self) -> bool:
        return self._path is not None

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._path is None:
            self._pieces.append(data)
            if self.size > self.threshold:
                self._spill()
            return
        self._write(data)

    def getvalue(self) -> bytes:
        """The body, when it stayed in memory; ``b""`` once spilled (see :meth:`finish`)."""
        return b"" if self._path is not None else b"".join(self._pieces)

    def finish(self) -> Spill | None:
        """Close the spill file; its reference for the journal record (None if never spilled)."""
        if self._path is None:
            return None
        self._close()
        if self.failed is not None:
            raise self.failed
        return Spill(self._path.name, self.size, self._crc)

    def discard(self) -> None:
        """Remove the spill file (the exchange is not recorded)."""
        self._close()
        if self._path is not None:
            self._path.unlink(missing_ok=True)

    def _spill(self) -> None:
        self._path = self.directory / f"{secrets.token_hex(8)}{SPILL_SUFFIX}"
        try:
            self._fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            self.failed = exc
        pieces, self._pieces = self._pieces, []
        for piece in pieces:
            self._write(piece)

    def _write(self, data: bytes) -> None:
        if self.failed is not None:
            return
        self._crc = zlib.crc32(data, self._crc)
        try:
            _write_all(self._fd, [data])
        except OSError as exc:
            self.failed = exc
            self._close()

    def _close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def spill_path(journal: str | os.PathLike[str], spill: Spill) -> Path:
    """Where a record's spill file is (next to its journal)."""
    return Path(journal).parent / spill.file


def read_spill(journal: str | os.PathLike[str], spill: Spill) -> bytes:
    """The spilled body, checked against its length and CRC (:class:`FormatError` if not)."""
    path = spill_path(journal, spill)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FormatError(f"the spill file {path.name} of journal {Path(journal).name} is missing") from None
    if len(data) != spill.length or zlib.crc32(data) != spill.crc:
        raise FormatError(f"the spill file {path.name} of journal {Path(journal).name} is damaged")
    return data


def _read_exact(f: IO[bytes], n: int) -> bytes | None:
    data = f.read(n)
    return data if len(data) == n else None


def read_journal(path: str | os.PathLike[str]) -> Iterator[JournalEntry]:
    """Every complete, intact record of a journal, in order; a torn tail is skipped.

    Reads record by record (a body is read once, never the whole file). A
    record of a newer format raises :class:`FormatTooNewError`.
    """
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below; a generator
    except FileNotFoundError:
        return
    with f:
        pos = 0
        while True:
            head = _read_exact(f, _HEAD.size)
            if head is None:
                return
            magic, hlen = _HEAD.unpack(head)
            if magic != MAGIC:
                return
            raw = _read_exact(f, hlen)
            if raw is None:
                return
            try:
                header = orjson.loads(raw)
                fmt = header["format"]
                rq, rs = header["request"], header["response"]
                req_len, resp_len = int(rq["body_len"]), int(rs["body_len"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return
            if isinstance(fmt, int) and fmt > JOURNAL_FORMAT:
                raise FormatTooNewError(f"journal {Path(path).name}", fmt, JOURNAL_FORMAT)
            req_body = _read_exact(f, req_len)
            resp_body = _read_exact(f, resp_len) if req_body is not None else None
            tail = _read_exact(f, _CRC.size) if resp_body is not None else None
            if req_body is None or resp_body is None or tail is None:
                return
            crc = zlib.crc32(head)
            for part in (raw, req_body, resp_body):
                crc = zlib.crc32(part, crc)
            if _CRC.unpack(tail)[0] != crc:
                return
            end = pos + _HEAD.size + hlen + req_len + resp_len + _CRC.size
            try:
                entry = _entry(header, req_body, resp_body, pos, end)
            except (KeyError, TypeError, ValueError):
                return
            yield entry
            pos = end


def _entry(header: dict[str, Any], req_body: bytes, resp_body: bytes, pos: int, end: int) -> JournalEntry:
    rq, rs = header["request"], header["response"]
    spill = None
    if rs.get("spill"):
        s = rs["spill"]
        spill = Spill(str(s["file"]), int(s["len"]), int(s["crc"]))
        if "/" in spill.file or not spill.file.endswith(SPILL_SUFFIX):
            raise ValueError("bad spill file name")
    exchange = Exchange(
        request=Request(rq["method"], rq["scheme"], rq["host"], rq["path"],
                        [(k, v) for k, v in rq["headers"]], req_body),
        response=Response(
            rs["status"], rs["reason"], [(k, v) for k, v in rs["headers"]], resp_body,
            [(float(t), int(n)) for t, n in rs["chunks"]],
            TransportError(rs["error"]) if rs["error"] else None, rs["error_detail"],
        ),
        started_at=header["started_at"],
        duration=header["duration"],
        span=header["span"],
        ttfb=header["ttfb"],
    )
    return JournalEntry(header["seq"], exchange, header["hint"], pos, spill, end)


def journal_path(journal_dir: Path, session_id: str, timeline: str) -> Path:
    return journal_dir / f"{session_id}.{timeline}.jnl"


def parse_journal_name(path: Path) -> tuple[str, str] | None:
    if path.suffix != ".jnl":
        return None
    sid, sep, timeline = path.stem.partition(".")
    return (sid, timeline) if sep else None
