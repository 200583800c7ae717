"""Reading a ``.rw`` file with bounded work: header and checksums, then a size-capped stream decompression.

A ``.rw`` file is untrusted input, and zstd compresses zeros about 30,000:1:
a 32 KB file can claim a 1 GB pack, and a frame header can claim 1 TiB.
So, in this order, before anything large is allocated:

1. the header (magic, version, checksum, lengths) and the manifest are read
   and checked on their own (the payload is not read yet);
2. the pack length ``R`` the header declares must equal the zstd frame's
   content size and stay under :func:`size_cap` (an absolute
   :data:`MAX_PACK_BYTES`, and at most :data:`MAX_RATIO` times the payload,
   with a floor of :data:`MIN_CAP`);
3. the frame is decompressed as a stream, a few bytes of input at a time when
   the output budget is short, so no step can overshoot ``R`` by more than a
   couple of MiB; the first 12 bytes must be a git pack signature with the
   manifest's object count, checked before the rest is decompressed;
4. the pack is parsed (:mod:`rewind_vcs.transfer.packfile`, itself bounded).

Any failure is one :class:`FormatError` line.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from rewind_vcs.errors import FormatError, RewindError
from rewind_vcs.transfer.packfile import CorruptPack, Pack, read_pack
from rewind_vcs.transfer.rwformat import (
    DIGEST_SIZE,
    HEADER_SIZE,
    HINT_CORRUPT,
    MAX_MANIFEST,
    RW_FORMAT,
    Corrupt,
    Manifest,
    ProgressFn,
    Stage,
    check_head,
    corrupt,
    quiet,
)

#: The largest pack a ``.rw`` file may decompress to, whatever its header says.
MAX_PACK_BYTES = 16 << 30
#: A payload may claim at most this many times its own size (zstd on real sessions: 3-30x)...
MAX_RATIO = 1024
#: ...or this much, whichever is larger (small files of very repetitive recordings).
MIN_CAP = 64 << 20
#: zstd's largest expansion per input byte (a 4-byte RLE block makes 128 KiB).
_ZSTD_MAX_EXPANSION = 1 << 15


def size_cap(payload_bytes: int) -> int:
    """The most a payload of ``payload_bytes`` may decompress to."""
    return min(MAX_PACK_BYTES, max(MIN_CAP, MAX_RATIO * payload_bytes))


@dataclass
class RwFile:
    """A ``.rw`` file whose header, checksums, payload and pack all check out."""

    label: str
    version: int
    manifest: Manifest
    pack: Pack  # as carried (entries stored at zlib level 0 by rewind)
    file_bytes: int


def _read_file(path: Path) -> tuple[bytes, bytes, int]:
    """The head (fixed header, manifest and their digest, as far as the file has them), the payload, the size."""
    try:
        f: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise RewindError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise RewindError(f"{path} is a directory, not a .rw file") from None
    except OSError as exc:
        raise RewindError(f"cannot read {path} ({exc.strerror or exc})") from None
    with f:
        try:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise RewindError(f"{path} is not a regular file", hint="save the .rw file to disk, then import it")
            size = st.st_size
            head = f.read(HEADER_SIZE)
            if len(head) == HEADER_SIZE:
                m_len = struct.unpack_from(">I", head, 12)[0]
                if m_len <= min(MAX_MANIFEST, size):
                    head += f.read(m_len + DIGEST_SIZE)
            if len(head) < size:
                p_len = struct.unpack_from(">Q", head, 16)[0] if len(head) >= HEADER_SIZE else 0
                if p_len != size - len(head):  # let read_header name the problem; read nothing more
                    return head, b"", size
            payload = f.read(size - len(head))
            if f.read(1):
                raise RewindError(f"{path} grew while it was read", hint="import it once it is complete")
            return head, payload, size
        except IsADirectoryError:
            raise RewindError(f"{path} is a directory, not a .rw file") from None
        except OSError as exc:
            raise RewindError(f"cannot read {path} ({exc.strerror or exc})") from None


def read_rw(source: str | os.PathLike[str] | bytes, progress: ProgressFn | None = None) -> RwFile:
    """Read and check a ``.rw`` file: header, checksums, bounded decompression, and the whole pack.

    Touches no repository. Raises :class:`FormatError` (one line) on any problem.
    """
    progress = progress or quiet
    if isinstance(source, bytes | bytearray | memoryview):
        data, label = bytes(source), "the file"
        size = len(data)
        head_len = min(size, HEADER_SIZE)
        if size >= HEADER_SIZE:
            head_len = min(size, HEADER_SIZE + min(struct.unpack_from(">I", data, 12)[0], size) + DIGEST_SIZE)
        head, payload = data[:head_len], data[head_len:]
    else:
        path = Path(source)
        label = str(path)
        head, payload, size = _read_file(path)
    progress(Stage.READ, size, size)
    manifest, start, p_len, r_len, p_sha = check_head(head, size, label)
    if len(payload) != p_len:  # the file changed while it was read
        raise corrupt(label, f"the file is truncated ({start + len(payload):,} of {start + p_len:,} bytes)")
    if hashlib.sha256(payload).digest() != p_sha:
        raise corrupt(label, "the payload is corrupt (its checksum does not match)")
    progress(Stage.DECOMPRESS, 0, r_len)
    try:
        pack_data = decompress_pack(payload, r_len, manifest.counts.objects)
        progress(Stage.DECOMPRESS, r_len, r_len)
        pack = read_pack(pack_data, lambda done, total: progress(Stage.INDEX, done, total))
    except Corrupt as exc:
        raise corrupt(label, str(exc)) from None
    except CorruptPack as exc:
        raise corrupt(label, f"the pack inside is invalid: {exc}") from None
    if len(pack.entries) != manifest.counts.objects:
        raise corrupt(label, f"the manifest counts {manifest.counts.objects} objects, the pack holds "
                             f"{len(pack.entries)}")
    return RwFile(label, RW_FORMAT, manifest, pack, size)


def decompress_pack(payload: bytes, declared: int, objects: int) -> bytes:
    """Decompress the one zstd frame of ``payload`` to exactly ``declared`` bytes, with bounded memory.

    Raises ``Corrupt`` when the frame claims another size, more than
    :func:`size_cap` allows, does not start with a git pack signature holding
    ``objects`` objects, is damaged, or has bytes after it.
    """
    import zstandard

    cap = size_cap(len(payload))
    if declared > cap:
        raise Corrupt(f"its header claims a {declared:,}-byte pack from a {len(payload):,}-byte payload "
                      f"(at most {cap:,} here)")
    try:
        params = zstandard.get_frame_parameters(payload)
    except zstandard.ZstdError as exc:
        raise Corrupt(f"the payload does not decompress (it is not a zstd frame: {exc})") from None
    if params.content_size != declared:
        raise Corrupt("the payload's size does not match the header")
    if params.window_size > max(1 << 20, 2 * declared) or params.window_size > 1 << 31:
        raise Corrupt("the payload asks for a larger decompression window than its size needs")
    dobj = zstandard.ZstdDecompressor().decompressobj()
    out = bytearray()
    view = memoryview(payload)
    pos, n, checked = 0, len(payload), False
    try:
        while pos < n and not dobj.eof:
            budget = declared - len(out)
            step = max(64, min(1 << 20, budget // _ZSTD_MAX_EXPANSION)) if checked else 64
            out += dobj.decompress(view[pos:pos + step])
            pos += step
            if len(out) > declared:
                raise Corrupt("the payload decompresses to more than its header says")
            if not checked and len(out) >= 12:
                _check_signature(bytes(out[:12]), objects)
                checked = True
    except zstandard.ZstdError as exc:
        raise Corrupt(f"the payload does not decompress ({exc})") from None
    if not dobj.eof:
        raise Corrupt("the payload's zstd frame is truncated")
    if dobj.unused_data or pos < n:
        raise Corrupt("the payload has bytes after its zstd frame")
    if len(out) != declared:
        raise Corrupt("the payload's size does not match the header")
    if not checked:
        _check_signature(bytes(out[:12]), objects)
    data = bytes(out)
    del out
    return data


def _check_signature(head: bytes, objects: int) -> None:
    if len(head) < 12 or head[:4] != b"PACK":
        raise Corrupt("the payload is not a git pack")
    version, count = struct.unpack_from(">II", head, 4)
    if version not in (2, 3):
        raise Corrupt(f"the pack inside has version {version}; rewind reads versions 2 and 3")
    if count != objects:
        raise Corrupt(f"the manifest counts {objects} objects, the pack holds {count}")


__all__ = ["HINT_CORRUPT", "MAX_PACK_BYTES", "MAX_RATIO", "MIN_CAP", "RwFile", "decompress_pack", "read_rw",
           "size_cap", "FormatError"]
