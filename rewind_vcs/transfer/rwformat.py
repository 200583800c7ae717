"""The ``.rw`` file's layout: header, manifest, and their checks (``docs/RWFILE.md`` is the specification).

A ``.rw`` file carries sessions from one repository to another in one
attachment: a fixed header (magic bytes, format version, sizes, a SHA-256 of
the payload), a JSON manifest (refs -> oids, sessions, counts, rewind version,
creation time), a SHA-256 over all of that, then the payload: one zstd frame
holding a git pack of exactly the objects reachable from the exported refs.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson

from rewind_vcs.errors import FormatError
from rewind_vcs.transfer.incoming import HINT_NEWER, SHARED_PREFIXES, visible
from rewind_vcs.transfer.packfile import CorruptPack

#: The first eight bytes of every ``.rw`` file. Like PNG's signature: the
#: high first byte catches 7-bit transfers, ``\r\n`` and ``\n`` catch line-ending
#: conversion, ``\x1a`` stops ``type`` on DOS.
MAGIC = b"\x89RWD\r\n\x1a\n"
#: The version of the file layout this rewind writes and the newest it reads.
RW_FORMAT = 1
SUFFIX = ".rw"
#: magic, version, flags, manifest length, payload length, pack length, payload SHA-256.
FIXED = struct.Struct(">8sHHIQQ32s")
HEADER_SIZE = FIXED.size  # 64
DIGEST_SIZE = 32
MAX_MANIFEST = 64 << 20
#: zstd level for the payload: 10 is within 3% of 19 here at a tenth of the time.
ZSTD_LEVEL = 10
#: zlib level of the pack written into the repository on import (zlib's default, as git's).
STORE_ZLIB_LEVEL = 6
#: Ref namespaces a ``.rw`` file may carry (``--all`` exports every ref under them).
EXPORTED_PREFIXES = SHARED_PREFIXES

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_SESSION_ID = re.compile(r"^[0-9a-f]{12}$")
HINT_CORRUPT = "nothing was imported; get a fresh copy of the file (or export it again)"


class Stage(StrEnum):
    """What a progress callback is being told about."""

    COUNT = "counting objects"
    PACK = "packing"
    COMPRESS = "compressing"
    WRITE = "writing"
    READ = "reading"
    DECOMPRESS = "decompressing"
    INDEX = "indexing objects"
    VERIFY = "verifying sessions"
    COPY = "copying objects"
    REFS = "updating refs"


#: ``progress(stage, done, total)``; ``total`` is 0 when it is not known.
ProgressFn = Callable[[Stage, int, int], None]


def quiet(stage: Stage, done: int, total: int) -> None:
    """The default progress callback: says nothing."""


# -- the manifest -------------------------------------------------------------------


@dataclass(frozen=True)
class SessionEntry:
    id: str
    name: str | None
    timelines: list[str]
    steps: int  # steps on its main timeline (0 when it has none)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "timelines": self.timelines, "steps": self.steps}


@dataclass(frozen=True)
class Counts:
    sessions: int
    timelines: int
    steps: int
    refs: int
    objects: int

    def to_json(self) -> dict[str, int]:
        return {"sessions": self.sessions, "timelines": self.timelines, "steps": self.steps,
                "refs": self.refs, "objects": self.objects}


@dataclass(frozen=True)
class Manifest:
    """What a ``.rw`` file holds, readable without unpacking it."""

    refs: dict[str, str]
    sessions: list[SessionEntry]
    counts: Counts
    rewind_version: str
    created_at: float
    format: int = RW_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "rewind_version": self.rewind_version,
            "created_at": self.created_at,
            "object_format": "sha1",
            "refs": dict(sorted(self.refs.items())),
            "sessions": [s.to_json() for s in self.sessions],
            "counts": self.counts.to_json(),
        }

    def dumps(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Validate a parsed manifest; raises ``_Corrupt`` with the first problem found."""
        if not isinstance(data, dict):
            raise Corrupt("the manifest is not a JSON object")
        version = data.get("format")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise Corrupt("the manifest has no valid 'format'")
        if version > RW_FORMAT:
            raise Newer(version)
        if data.get("object_format", "sha1") != "sha1":
            raise Corrupt(f"the manifest names object format {data.get('object_format')!r}; rewind reads sha1")
        refs = data.get("refs")
        if not isinstance(refs, dict) or not refs:
            raise Corrupt("the manifest lists no refs")
        for name, oid in refs.items():
            if not isinstance(oid, str) or not _HEX40.fullmatch(oid):
                raise Corrupt(f"the manifest gives {visible(str(name))} a bad object id")
            # names are checked per ref on import (a bad one is skipped with a warning, not the whole file)
        sessions = []
        raw_sessions = data.get("sessions")
        if not isinstance(raw_sessions, list):
            raise Corrupt("the manifest has no session list")
        for s in raw_sessions:
            if not isinstance(s, dict):
                raise Corrupt("a manifest session is not an object")
            sid, name, tls, steps = s.get("id"), s.get("name"), s.get("timelines"), s.get("steps")
            if (not isinstance(sid, str) or not _SESSION_ID.fullmatch(sid) or not (name is None or isinstance(name, str))
                    or not isinstance(tls, list) or not all(isinstance(t, str) for t in tls)
                    or not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
                raise Corrupt(f"the manifest's session entry {str(sid)[:20]!r} is malformed")
            sessions.append(SessionEntry(sid, name, list(tls), steps))
        c = data.get("counts")
        keys = ("sessions", "timelines", "steps", "refs", "objects")
        if not isinstance(c, dict) or not all(isinstance(c.get(k), int) and not isinstance(c.get(k), bool)
                                              and c[k] >= 0 for k in keys):
            raise Corrupt("the manifest's counts are malformed")
        rv, created = data.get("rewind_version"), data.get("created_at")
        if not isinstance(rv, str) or not isinstance(created, int | float) or isinstance(created, bool):
            raise Corrupt("the manifest lacks rewind_version or created_at")
        return cls(dict(refs), sessions, Counts(*(int(c[k]) for k in keys)), rv, float(created), version)


# -- errors ---------------------------------------------------------------------------


class Corrupt(CorruptPack):
    """Internal: why a file is unreadable. Public functions turn it into FormatError."""

    hint = HINT_CORRUPT


class NotRw(Corrupt):
    hint = "'rewind import' reads the files 'rewind export' writes"


class Newer(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


def corrupt(label: str, reason: str, hint: str = HINT_CORRUPT) -> FormatError:
    return FormatError(f"cannot import {label}: {reason}", hint=hint)


def newer(label: str, version: int) -> FormatError:
    return FormatError(f"{label} was written by a newer rewind (format {version})",
                       hint=f"{HINT_NEWER} (this one reads .rw format {RW_FORMAT})")



def assemble(manifest: bytes, payload: bytes, pack_len: int) -> bytes:
    fixed = FIXED.pack(MAGIC, RW_FORMAT, 0, len(manifest), len(payload), pack_len,
                        hashlib.sha256(payload).digest())
    head = fixed + manifest
    return head + hashlib.sha256(head).digest() + payload



def read_header(data: bytes, label: str = "the file") -> tuple[Manifest, int, int, int]:
    """Check a whole ``.rw`` file's header; returns (manifest, payload offset, payload length, pack length).

    Raises :class:`FormatError` with one line: empty, not a .rw file,
    truncated, written by a newer rewind, or which checksum failed.
    """
    manifest, start, p_len, r_len, p_sha = check_head(data, len(data), label)
    if hashlib.sha256(data[start:]).digest() != p_sha:
        raise corrupt(label, "the payload is corrupt (its checksum does not match)")
    return manifest, start, p_len, r_len


def check_head(head: bytes, size: int, label: str = "the file") -> tuple[Manifest, int, int, int, bytes]:
    """Check the header of a file of ``size`` bytes from its first bytes ``head`` (up to the payload).

    Returns (manifest, payload offset, payload length, pack length, payload SHA-256);
    the payload itself is not needed, so nothing large is read before the header checks out.
    """
    try:
        return _check_head(head, size)
    except Newer as exc:
        raise newer(label, exc.version) from None
    except CorruptPack as exc:
        raise corrupt(label, str(exc), getattr(exc, "hint", HINT_CORRUPT)) from None


def _check_head(data: bytes, n: int) -> tuple[Manifest, int, int, int, bytes]:
    if n == 0:
        raise Corrupt("the file is empty")
    if n < len(MAGIC) and MAGIC.startswith(data):
        raise Corrupt(f"the file is truncated ({n} bytes; the header alone is {HEADER_SIZE})")
    if data[:len(MAGIC)] != MAGIC:
        if data[:4] == MAGIC[:4]:
            raise Corrupt("its signature is damaged (was it transferred as text?)")
        raise NotRw("it is not a rewind export (.rw) file")
    if n < HEADER_SIZE:
        raise Corrupt(f"the file is truncated ({n} bytes; the header alone is {HEADER_SIZE})")
    _magic, version, flags, m_len, p_len, r_len, p_sha = FIXED.unpack_from(data)
    if version > RW_FORMAT:
        raise Newer(version)
    if version < 1:
        raise Corrupt(f"its header names format {version}, which no rewind writes")
    head_end = HEADER_SIZE + m_len
    if m_len > MAX_MANIFEST:
        raise Corrupt("the header is corrupt (impossible manifest size)")
    if head_end + DIGEST_SIZE > n or head_end + DIGEST_SIZE > len(data):
        raise Corrupt(f"the file is truncated or its header is corrupt ({n:,} bytes, "
                      f"the header says more than {head_end + DIGEST_SIZE:,})")
    if hashlib.sha256(data[:head_end]).digest() != data[head_end:head_end + DIGEST_SIZE]:
        raise Corrupt("the header is corrupt (its checksum does not match)")
    if flags:
        raise Corrupt(f"its header sets flags 0x{flags:04x} that this rewind does not know")
    start = head_end + DIGEST_SIZE
    if n < start + p_len:
        raise Corrupt(f"the file is truncated ({n:,} of {start + p_len:,} bytes)")
    if n > start + p_len:
        raise Corrupt(f"the file has {n - start - p_len:,} unexpected bytes after its payload")
    try:
        raw = orjson.loads(data[HEADER_SIZE:head_end])
    except orjson.JSONDecodeError:
        raise Corrupt("the manifest is not valid JSON") from None
    return Manifest.from_json(raw), start, p_len, r_len, p_sha
