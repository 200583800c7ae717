"""Git packfiles in pure Python: read and check a pack, re-encode it, write its ``.idx``.

pygit2 has no binding for libgit2's indexer (``git_indexer_*``: pygit2 1.x
exposes packbuilding and reading packs already in an object database, but
not indexing a pack from bytes), so ``rewind import`` reads the packs inside
``.rw`` files itself: every entry inflated, every delta applied, every object
id recomputed, the pack's own SHA-1 checked, all before any repository is
touched, with bounded work (a delta may build at most :data:`MAX_OBJECT`,
all deltas together :data:`MAX_EXPANDED`). It also re-encodes a pack's
entries at another zlib level (level 0 inside a ``.rw`` so zstd compresses
across objects), which libgit2 cannot do. The format is gitformat-pack(5);
the tests check the output against ``git index-pack`` and ``git
verify-pack``. ``transfer/rwexport.py``, ``rwread.py`` and ``rwimport.py``
are its only users.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from rewind_vcs.errors import FormatError


class CorruptPack(Exception):
    """Why a pack is unreadable (callers turn it into a FormatError)."""


#: ``progress(done, total)`` while indexing; total counts each object twice (read, resolve).
IndexProgress = Callable[[int, int], None]


def _silent(done: int, total: int) -> None:
    """No progress reporting."""


_TYPE_NAMES = {1: b"commit", 2: b"tree", 3: b"blob", 4: b"tag"}
OFS_DELTA = 6
#: The most all of a pack's deltas may build together (a delta can copy 64 KiB per instruction byte).
MAX_EXPANDED = 64 << 30
#: The largest single object a delta may build.
MAX_OBJECT = 4 << 30
REF_DELTA = 7


@dataclass
class PackEntry:
    """One object of a pack, as stored: maybe a delta against another entry."""

    offset: int
    kind: int  # 1-4 (commit, tree, blob, tag), 6 (ofs-delta) or 7 (ref-delta)
    size: int  # inflated size of what is stored (the delta's size for a delta)
    data_start: int  # where its zlib stream starts
    end: int  # where its zlib stream ends (the next entry's offset)
    base: int | bytes | None = None  # a delta's base: its offset (6) or its object id (7)
    crc32: int = 0  # over the entry's bytes, header included (the .idx needs it)
    oid: bytes | None = None  # the object's id, once resolved
    obj_type: int | None = None  # the object's type (1-4), once resolved


@dataclass
class Pack:
    """A parsed and fully resolved git pack (version 2 or 3)."""

    data: bytes
    entries: list[PackEntry]
    checksum: bytes  # the pack's trailing SHA-1

    @property
    def oids(self) -> set[str]:
        return {e.oid.hex() for e in self.entries if e.oid is not None}


def _object_id(obj_type: int, data: bytes) -> bytes:
    h = hashlib.sha1(_TYPE_NAMES[obj_type] + b" " + str(len(data)).encode() + b"\0")
    h.update(data)
    return h.digest()


def _entry_header(buf: memoryview, pos: int, end: int) -> tuple[int, int, int]:
    if pos >= end:
        raise CorruptPack("the pack is truncated")
    c = buf[pos]
    pos += 1
    kind, size, shift = (c >> 4) & 7, c & 15, 4
    while c & 0x80:
        if pos >= end:
            raise CorruptPack("the pack is truncated inside an object header")
        if shift > 60:
            raise CorruptPack("an object header's size does not fit 64 bits")
        c = buf[pos]
        pos += 1
        size |= (c & 0x7F) << shift
        shift += 7
    return kind, size, pos


def _ofs_distance(buf: memoryview, pos: int, end: int) -> tuple[int, int]:
    if pos >= end:
        raise CorruptPack("the pack is truncated inside a delta header")
    c = buf[pos]
    pos += 1
    dist = c & 0x7F
    while c & 0x80:
        if pos >= end:
            raise CorruptPack("the pack is truncated inside a delta header")
        if dist > 1 << 56:
            raise CorruptPack("a delta's base offset does not fit 64 bits")
        c = buf[pos]
        pos += 1
        dist = ((dist + 1) << 7) | (c & 0x7F)
    return dist, pos


def _encode_entry_header(kind: int, size: int) -> bytes:
    out = bytearray()
    c = (kind << 4) | (size & 15)
    size >>= 4
    while size:
        out.append(c | 0x80)
        c = size & 0x7F
        size >>= 7
    out.append(c)
    return bytes(out)


def _encode_ofs_distance(dist: int) -> bytes:
    out = [dist & 0x7F]
    dist >>= 7
    while dist:
        dist -= 1
        out.append(0x80 | (dist & 0x7F))
        dist >>= 7
    return bytes(reversed(out))


def _inflate(buf: memoryview, start: int, end: int, size: int) -> tuple[bytes, int]:
    """Inflate the zlib stream at ``start``: exactly ``size`` bytes; returns them and where it ended."""
    # A zlib stream is never much longer than its content (stored blocks cost 5
    # bytes per 64 KiB): try a bounded window first, so that unused_data stays
    # small, and the rest of the pack only when the window was too short.
    if size > (end - start) * 1032 + 64:  # deflate never compresses better than ~1032:1
        raise CorruptPack("an object's size is impossible for its data")
    window = min(end, start + size + (size >> 12) + 64)
    for limit in (window, end) if window < end else (end,):
        d = zlib.decompressobj()
        try:
            out = d.decompress(buf[start:limit], size + 1)
        except zlib.error as exc:
            raise CorruptPack(f"an object's compressed data is damaged ({exc})") from None
        if len(out) > size:
            raise CorruptPack("an object is larger than its header says")
        if d.eof:
            if len(out) != size:
                raise CorruptPack("an object is smaller than its header says")
            return out, limit - len(d.unused_data)
    raise CorruptPack("the pack is truncated inside an object")


def _delta_varint(delta: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(delta):
            raise CorruptPack("a delta is truncated")
        if shift > 63:
            raise CorruptPack("a delta's size does not fit 64 bits")
        c = delta[pos]
        pos += 1
        value |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return value, pos


def _apply_delta(base: bytes, delta: bytes) -> bytes:
    """git's delta format: source size, target size, then copy and insert instructions."""
    src_size, pos = _delta_varint(delta, 0)
    if src_size != len(base):
        raise CorruptPack("a delta does not fit its base")
    dst_size, pos = _delta_varint(delta, pos)
    if dst_size > MAX_OBJECT:
        raise CorruptPack(f"a delta builds an object larger than {MAX_OBJECT >> 30} GiB")
    n = len(delta)
    out: list[bytes] = []
    total = 0
    while pos < n:
        c = delta[pos]
        pos += 1
        if c & 0x80:
            off = length = 0
            for i in range(4):
                if c & (1 << i):
                    if pos >= n:
                        raise CorruptPack("a delta is truncated")
                    off |= delta[pos] << (8 * i)
                    pos += 1
            for i in range(3):
                if c & (0x10 << i):
                    if pos >= n:
                        raise CorruptPack("a delta is truncated")
                    length |= delta[pos] << (8 * i)
                    pos += 1
            length = length or 0x10000
            if off + length > len(base):
                raise CorruptPack("a delta copies beyond its base")
            out.append(base[off:off + length])
        elif c:
            if pos + c > n:
                raise CorruptPack("a delta is truncated")
            length = c
            out.append(delta[pos:pos + c])
            pos += c
        else:
            raise CorruptPack("a delta holds the reserved instruction 0")
        total += length
        if total > dst_size:
            raise CorruptPack("a delta builds more than its declared size")
    if total != dst_size:
        raise CorruptPack("a delta builds less than its declared size")
    return b"".join(out)


def read_pack(data: bytes, progress: IndexProgress = _silent) -> Pack:
    """Read every entry, resolve every delta, recompute every id (as ``git index-pack`` does)."""
    buf = memoryview(data)
    n = len(buf)
    if n < 32 or bytes(buf[:4]) != b"PACK":
        raise CorruptPack("the payload is not a git pack")
    version, count = struct.unpack_from(">II", buf, 4)
    if version not in (2, 3):
        raise CorruptPack(f"the pack has version {version}; rewind reads versions 2 and 3")
    end = n - 20
    if count > (end - 12) // 2:
        raise CorruptPack("the pack claims more objects than it can hold")
    entries: list[PackEntry] = []
    pos = 12
    for _ in range(count):
        offset = pos
        kind, size, pos = _entry_header(buf, pos, end)
        base: int | bytes | None = None
        if kind == OFS_DELTA:
            dist, pos = _ofs_distance(buf, pos, end)
            if dist == 0 or dist > offset - 12:
                raise CorruptPack("a delta's base lies outside the pack")
            base = offset - dist
        elif kind == REF_DELTA:
            if pos + 20 > end:
                raise CorruptPack("the pack is truncated inside a delta header")
            base = bytes(buf[pos:pos + 20])
            pos += 20
        elif kind not in _TYPE_NAMES:
            raise CorruptPack(f"the pack holds an object of unknown type {kind}")
        start = pos
        content, pos = _inflate(buf, start, end, size)
        entry = PackEntry(offset, kind, size, start, pos, base, zlib.crc32(buf[offset:pos]))
        if kind in _TYPE_NAMES:
            entry.obj_type, entry.oid = kind, _object_id(kind, content)
        entries.append(entry)
        progress(len(entries), count * 2)
    if pos != end:
        raise CorruptPack("the pack has bytes after its last object")
    if hashlib.sha1(buf[:end]).digest() != bytes(buf[end:]):
        raise CorruptPack("the pack's own checksum does not match")
    _resolve_deltas(buf, entries, progress)
    return Pack(data, entries, bytes(buf[end:]))


def _resolve_deltas(buf: memoryview, entries: list[PackEntry], progress: IndexProgress) -> None:
    """Apply every delta to its base, depth first from each whole object (memory: one chain)."""
    starts = {e.offset for e in entries}
    by_offset: dict[int, list[PackEntry]] = {}
    by_oid: dict[bytes, list[PackEntry]] = {}
    for e in entries:
        if e.kind == OFS_DELTA:
            if not isinstance(e.base, int) or e.base not in starts:
                raise CorruptPack("a delta's base offset does not start an object")
            by_offset.setdefault(e.base, []).append(e)
        elif e.kind == REF_DELTA and isinstance(e.base, bytes):
            by_oid.setdefault(e.base, []).append(e)

    def children(e: PackEntry) -> list[PackEntry]:
        return by_offset.pop(e.offset, []) + (by_oid.pop(e.oid, []) if e.oid is not None else [])

    total, done = len(entries), sum(1 for e in entries if e.oid is not None)
    expanded = 0
    for root in [e for e in entries if e.oid is not None]:
        kids = children(root)
        if not kids:
            continue
        assert root.obj_type is not None
        stack = [(_inflate(buf, root.data_start, root.end, root.size)[0], root.obj_type, kids)]
        while stack:
            base, obj_type, kids = stack.pop()
            for kid in kids:
                content = _apply_delta(base, _inflate(buf, kid.data_start, kid.end, kid.size)[0])
                expanded += len(content)
                if expanded > MAX_EXPANDED:
                    raise CorruptPack(f"its deltas expand to more than {MAX_EXPANDED >> 30} GiB")
                kid.obj_type, kid.oid = obj_type, _object_id(obj_type, content)
                done += 1
                progress(total + done, total * 2)
                grandkids = children(kid)
                if grandkids:
                    stack.append((content, obj_type, grandkids))
    missing = sum(1 for e in entries if e.oid is None)
    if missing:
        raise CorruptPack(f"{missing} deltas in the pack have no base in it")
    if len({e.oid for e in entries}) != len(entries):
        raise CorruptPack("the pack holds an object twice")


def parse_pack(data: bytes, progress: IndexProgress | None = None) -> Pack:
    """Parse and verify a git pack; raises :class:`FormatError` naming the first problem."""
    try:
        return read_pack(data, progress or _silent)
    except CorruptPack as exc:
        raise FormatError(f"invalid git pack: {exc}") from None


def reencode_pack(pack: Pack, level: int) -> Pack:
    """The same objects and deltas with every entry deflated at zlib ``level`` (0 = stored)."""
    buf = memoryview(pack.data)
    out = bytearray(b"PACK" + struct.pack(">II", 2, len(pack.entries)))
    moved: dict[int, int] = {}
    entries: list[PackEntry] = []
    for e in pack.entries:
        raw = _inflate(buf, e.data_start, e.end, e.size)[0]
        offset = len(out)
        moved[e.offset] = offset
        header = _encode_entry_header(e.kind, e.size)
        base = e.base
        if e.kind == OFS_DELTA and isinstance(e.base, int):
            base = moved[e.base]
            header += _encode_ofs_distance(offset - base)
        elif e.kind == REF_DELTA and isinstance(e.base, bytes):
            header += e.base
        body = zlib.compress(raw, level)
        out += header
        out += body
        entries.append(replace(e, offset=offset, data_start=offset + len(header), end=len(out), base=base,
                               crc32=zlib.crc32(body, zlib.crc32(header))))
    checksum = hashlib.sha1(out).digest()
    out += checksum
    return Pack(bytes(out), entries, checksum)


def pack_index(pack: Pack) -> bytes:
    """The pack's ``.idx`` (version 2): fan-out, sorted ids, CRC-32s, offsets, checksums."""
    ids = [e.oid for e in pack.entries]
    if any(oid is None for oid in ids):
        raise CorruptPack("the pack has unresolved objects")
    order = sorted(pack.entries, key=lambda e: e.oid or b"")
    fanout = [0] * 256
    for e in order:
        fanout[(e.oid or b"\0")[0]] += 1
    for i in range(1, 256):
        fanout[i] += fanout[i - 1]
    out = bytearray(b"\xfftOc" + struct.pack(">I", 2))
    out += struct.pack(">256I", *fanout)
    for e in order:
        out += e.oid or b""
    out += struct.pack(f">{len(order)}I", *(e.crc32 & 0xFFFFFFFF for e in order))
    large: list[int] = []
    for e in order:
        if e.offset < 0x80000000:
            out += struct.pack(">I", e.offset)
        else:
            out += struct.pack(">I", 0x80000000 | len(large))
            large.append(e.offset)
    for off in large:
        out += struct.pack(">Q", off)
    out += pack.checksum
    out += hashlib.sha1(out).digest()
    return bytes(out)
