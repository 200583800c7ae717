"""The single-file export: ``rewind export ... -o incident.rw`` and ``rewind import incident.rw``.

A ``.rw`` file carries sessions from one repository to another in one
attachment: a fixed header (magic bytes, format version, sizes, a SHA-256 of
the payload), a JSON manifest (refs -> oids, sessions, counts, rewind version,
creation time), a SHA-256 over all of that, then the payload: one zstd frame
holding a git pack of exactly the objects reachable from the exported refs.
``docs/RWFILE.md`` is the byte-level specification.

Why the pack inside is stored with zlib level 0: libgit2's packbuilder does
the delta search (a growing conversation becomes small deltas), but it deflates
every object on its own, so zstd would see noise. Re-encoding the pack's
entries as stored zlib streams lets one zstd frame compress across all
objects: on a 200-step growing session the file is about 0.45x the size of
the same objects' ordinary pack. On import the entries are deflated again
before the pack goes into ``.rewind/objects/pack``.

Import verifies everything before it touches the repository: the header, both
checksums, the decompression, the pack (every object inflated, every delta
applied, every object id recomputed, the pack's own SHA-1), then, in a
throw-away repository, that every ref's whole history is there and that every
session reads as rewind records. Only then are the objects copied (a pack and
its index, written under temporary names and renamed, the index last) and the
refs created, each only if absent: an existing ref with another target is a
conflict, reported and left untouched. Importing the same file twice changes
nothing the second time.

The pack reader and the ``.idx`` writer are ours (pygit2 has no binding for
libgit2's indexer); they follow gitformat-pack(5) and are checked against
libgit2 (which reads the result) and ``git verify-pack`` in the tests.
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from rewind_vcs.errors import FormatError, FormatTooNewError, RewindError
from rewind_vcs.store.packfile import (
    CorruptPack,
    Pack,
    PackEntry,
    pack_index,
    parse_pack,
    read_pack,
    reencode_pack,
)
from rewind_vcs.store.refs import (
    BASELINES,
    MAIN,
    NOTES,
    SESSIONS,
    TAGS,
    parse_timeline_ref,
    valid_timeline_name,
)

if TYPE_CHECKING:
    import pygit2

    from rewind_vcs.store.repo import Repo

#: The first eight bytes of every ``.rw`` file. Like PNG's signature: the
#: high first byte catches 7-bit transfers, ``\r\n`` and ``\n`` catch line-ending
#: conversion, ``\x1a`` stops ``type`` on DOS.
MAGIC = b"\x89RWD\r\n\x1a\n"
#: The version of the file layout this rewind writes and the newest it reads.
RW_FORMAT = 1
SUFFIX = ".rw"
#: magic, version, flags, manifest length, payload length, pack length, payload SHA-256.
_FIXED = struct.Struct(">8sHHIQQ32s")
HEADER_SIZE = _FIXED.size  # 64
DIGEST_SIZE = 32
MAX_MANIFEST = 64 << 20
#: zstd level for the payload: 10 is within 3% of 19 here at a tenth of the time.
ZSTD_LEVEL = 10
#: zlib level of the pack written into the repository on import (zlib's default, as git's).
STORE_ZLIB_LEVEL = 6
#: Ref namespaces a ``.rw`` file may carry (``--all`` exports every ref under them).
EXPORTED_PREFIXES = (SESSIONS, TAGS, BASELINES, NOTES)

_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_SESSION_ID = re.compile(r"^[0-9a-f]{12}$")
_HINT_CORRUPT = "nothing was imported; get a fresh copy of the file (or export it again)"
_HINT_NEWER = "upgrade rewind: pip install -U rewind-vcs"


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


def _quiet(stage: Stage, done: int, total: int) -> None:
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
            raise _Corrupt("the manifest is not a JSON object")
        version = data.get("format")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise _Corrupt("the manifest has no valid 'format'")
        if version > RW_FORMAT:
            raise _Newer(version)
        if data.get("object_format", "sha1") != "sha1":
            raise _Corrupt(f"the manifest names object format {data.get('object_format')!r}; rewind reads sha1")
        refs = data.get("refs")
        if not isinstance(refs, dict) or not refs:
            raise _Corrupt("the manifest lists no refs")
        for name, oid in refs.items():
            if not isinstance(oid, str) or not _HEX40.match(oid):
                raise _Corrupt(f"the manifest gives {name} a bad object id")
            why = ref_name_problem(name)
            if why:
                raise _Corrupt(f"the manifest lists ref {name!r}, which {why}")
        sessions = []
        raw_sessions = data.get("sessions")
        if not isinstance(raw_sessions, list):
            raise _Corrupt("the manifest has no session list")
        for s in raw_sessions:
            if not isinstance(s, dict):
                raise _Corrupt("a manifest session is not an object")
            sid, name, tls, steps = s.get("id"), s.get("name"), s.get("timelines"), s.get("steps")
            if (not isinstance(sid, str) or not _SESSION_ID.match(sid) or not (name is None or isinstance(name, str))
                    or not isinstance(tls, list) or not all(isinstance(t, str) for t in tls)
                    or not isinstance(steps, int) or isinstance(steps, bool) or steps < 0):
                raise _Corrupt(f"the manifest's session entry {str(sid)[:20]!r} is malformed")
            sessions.append(SessionEntry(sid, name, list(tls), steps))
        c = data.get("counts")
        keys = ("sessions", "timelines", "steps", "refs", "objects")
        if not isinstance(c, dict) or not all(isinstance(c.get(k), int) and c.get(k) >= 0 for k in keys):
            raise _Corrupt("the manifest's counts are malformed")
        rv, created = data.get("rewind_version"), data.get("created_at")
        if not isinstance(rv, str) or not isinstance(created, int | float) or isinstance(created, bool):
            raise _Corrupt("the manifest lacks rewind_version or created_at")
        return cls(dict(refs), sessions, Counts(*(int(c[k]) for k in keys)), rv, float(created), version)


def ref_name_problem(name: str) -> str | None:
    """Why ``name`` may not travel in a ``.rw`` file, or None when it may."""
    import pygit2

    if not isinstance(name, str) or not name.startswith(EXPORTED_PREFIXES):
        return "is outside refs/sessions, refs/tags, refs/baselines and refs/notes"
    if not pygit2.reference_is_valid_name(name):
        return "is not a valid ref name"
    if name.startswith(SESSIONS):
        parsed = parse_timeline_ref(name)
        if parsed is None or not _SESSION_ID.match(parsed[0]) or not valid_timeline_name(parsed[1]):
            return "is not refs/sessions/<12-hex id>/<timeline>"
    return None


# -- errors ---------------------------------------------------------------------------


class _Corrupt(CorruptPack):
    """Internal: why a file is unreadable. Public functions turn it into FormatError."""

    hint = _HINT_CORRUPT


class _NotRw(_Corrupt):
    hint = "'rewind import' reads the files 'rewind export' writes"


class _Newer(Exception):
    def __init__(self, version: int) -> None:
        super().__init__(version)
        self.version = version


def _corrupt(label: str, reason: str, hint: str = _HINT_CORRUPT) -> FormatError:
    return FormatError(f"cannot import {label}: {reason}", hint=hint)


def _newer(label: str, version: int) -> FormatError:
    return FormatError(f"{label} was written by a newer rewind (format {version})",
                       hint=f"{_HINT_NEWER} (this one reads .rw format {RW_FORMAT})")


# -- export ---------------------------------------------------------------------------


@dataclass
class ExportResult:
    path: Path
    manifest: Manifest
    file_bytes: int
    pack_bytes: int  # the same objects as an ordinary git pack (what they cost in .rewind/)


def select_refs(repo: Repo, specs: Sequence[str] = (), *, all_refs: bool = False) -> dict[str, str]:
    """The refs an export carries: ``{name: oid}``.

    With ``all_refs``, every ref under refs/sessions, refs/tags, refs/baselines
    and refs/notes. Otherwise each spec is resolved (any ref a user types) to
    its session, and the export carries every timeline of those sessions plus
    the tags and baselines pointing into them.
    """
    import pygit2

    git = repo.git
    refs: dict[str, str] = {}
    for r in git.references.iterator():
        if r.name.startswith(EXPORTED_PREFIXES) and r.type == pygit2.enums.ReferenceType.DIRECT:
            refs[r.name] = str(r.target)
    if all_refs:
        if not refs:
            raise RewindError("there is nothing to export: this repository has no sessions yet",
                              hint="record one with 'rewind record -- <command>'")
        return dict(sorted(refs.items()))
    if not specs:
        raise RewindError("nothing to export", hint="name sessions (any ref: latest, a name, an id, a tag) or --all")
    sids = {repo.resolve(spec).session_id for spec in specs}
    chosen = {n: o for n, o in refs.items() if (p := parse_timeline_ref(n)) and p[0] in sids}
    commits = _reachable_commits(git, chosen.values())
    for name, oid in refs.items():
        if name.startswith((TAGS, BASELINES)):
            try:
                commit = str(git[oid].peel(pygit2.Commit).id)
            except (pygit2.InvalidSpecError, ValueError, KeyError):
                continue  # a tag of a tree or a blob points into no session
            if commit in commits:
                chosen[name] = oid
    return dict(sorted(chosen.items()))


def _reachable_commits(git: pygit2.Repository, tips: Iterable[str]) -> set[str]:
    import pygit2

    walker = git.walk(None, pygit2.enums.SortMode.NONE)
    for tip in set(tips):
        walker.push(pygit2.Oid(hex=tip))
    return {str(c.id) for c in walker}


def _describe_sessions(repo: Repo, refs: dict[str, str]) -> list[SessionEntry]:
    from rewind_vcs.store.session import Session

    by_session: dict[str, list[str]] = {}
    for name in refs:
        parsed = parse_timeline_ref(name)
        if parsed:
            by_session.setdefault(parsed[0], []).append(parsed[1])
    out = []
    for sid, timelines in sorted(by_session.items()):
        session = Session(repo, sid)
        steps = len(session.timeline(MAIN).steps) if MAIN in timelines else 0
        out.append(SessionEntry(sid, session.info.name, sorted(timelines, key=lambda t: (t != MAIN, t)), steps))
    return out


def build_pack(repo: Repo, refs: dict[str, str], directory: Path) -> Path:
    """Write a libgit2 pack of exactly the objects reachable from ``refs`` into ``directory``."""
    import pygit2

    git = repo.git

    def delegate(pb: pygit2.PackBuilder) -> None:
        # add_recur inserts one commit with its tree (blobs named by path, which
        # libgit2's delta search groups on), not its parents: walk the history.
        walker = git.walk(None, pygit2.enums.SortMode.TOPOLOGICAL | pygit2.enums.SortMode.REVERSE)
        pushed = False
        for oid in sorted(set(refs.values())):
            obj = git[oid]
            while isinstance(obj, pygit2.Tag):
                pb.add(obj.id)
                obj = git[obj.target]
            if isinstance(obj, pygit2.Commit):
                walker.push(obj.id)
                pushed = True
            else:
                pb.add_recur(obj.id)
        if pushed:
            for commit in walker:
                pb.add_recur(commit.id)

    git.pack(str(directory), delegate)
    packs = list(directory.glob("pack-*.pack"))
    if len(packs) != 1:
        raise RewindError(f"libgit2 wrote {len(packs)} packs for one export", hint="run 'rewind fsck'")
    return packs[0]


def export_rw(
    repo: Repo,
    specs: Sequence[str] = (),
    *,
    output: str | os.PathLike[str],
    all_refs: bool = False,
    progress: ProgressFn | None = None,
    level: int = ZSTD_LEVEL,
    created_at: float | None = None,
) -> ExportResult:
    """Write the sessions named by ``specs`` (or everything) to one ``.rw`` file at ``output``."""
    from rewind_vcs import __version__

    progress = progress or _quiet
    output = Path(output)
    refs = select_refs(repo, specs, all_refs=all_refs)
    progress(Stage.COUNT, 0, 0)
    sessions = _describe_sessions(repo, refs)
    progress(Stage.PACK, 0, 0)
    with tempfile.TemporaryDirectory(prefix="rewind-export-") as tmp:
        git_pack = build_pack(repo, refs, Path(tmp)).read_bytes()
    parsed = _parse_pack_or_fail(git_pack, "the pack libgit2 wrote")
    progress(Stage.PACK, 1, 1)
    stored = reencode_pack(parsed, 0)
    manifest = Manifest(
        refs=refs,
        sessions=sessions,
        counts=Counts(len(sessions), sum(len(s.timelines) for s in sessions), sum(s.steps for s in sessions),
                      len(refs), len(parsed.entries)),
        rewind_version=__version__,
        created_at=time.time() if created_at is None else created_at,
    )
    payload = _compress(stored.data, level, progress)
    data = _assemble(manifest.dumps(), payload, len(stored.data))
    _write_atomically(output, data, progress)
    return ExportResult(output, manifest, len(data), len(git_pack))


def _parse_pack_or_fail(data: bytes, what: str) -> Pack:
    try:
        return read_pack(data)
    except CorruptPack as exc:
        raise RewindError(f"{what} does not read back ({exc})", hint="run 'rewind fsck'") from None


def _compress(data: bytes, level: int, progress: ProgressFn) -> bytes:
    import zstandard

    cobj = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=True).compressobj(
        size=len(data))
    parts = []
    step = 4 << 20
    for i in range(0, len(data), step):
        parts.append(cobj.compress(data[i:i + step]))
        progress(Stage.COMPRESS, min(i + step, len(data)), len(data))
    parts.append(cobj.flush())
    return b"".join(parts)


def _assemble(manifest: bytes, payload: bytes, pack_len: int) -> bytes:
    fixed = _FIXED.pack(MAGIC, RW_FORMAT, 0, len(manifest), len(payload), pack_len,
                        hashlib.sha256(payload).digest())
    head = fixed + manifest
    return head + hashlib.sha256(head).digest() + payload


def _write_atomically(path: Path, data: bytes, progress: ProgressFn) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            step = 4 << 20
            for i in range(0, len(data), step):
                f.write(data[i:i + step])
                progress(Stage.WRITE, min(i + step, len(data)), len(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise RewindError(f"cannot write {path} ({exc.strerror or exc})",
                          hint="check the directory exists and is writable") from None


# -- reading a file ---------------------------------------------------------------------


@dataclass
class RwFile:
    """A ``.rw`` file whose header, checksums, payload and pack all check out."""

    label: str
    version: int
    manifest: Manifest
    pack: Pack  # as carried (entries stored at zlib level 0 by rewind)
    file_bytes: int


def read_header(data: bytes, label: str = "the file") -> tuple[Manifest, int, int, int]:
    """Check a ``.rw`` file's header; returns (manifest, payload offset, payload length, pack length).

    Raises :class:`FormatError` with one line: empty, not a .rw file,
    truncated, written by a newer rewind, or which checksum failed.
    """
    try:
        return _read_header(data)
    except _Newer as exc:
        raise _newer(label, exc.version) from None
    except CorruptPack as exc:
        raise _corrupt(label, str(exc), getattr(exc, "hint", _HINT_CORRUPT)) from None


def _read_header(data: bytes) -> tuple[Manifest, int, int, int]:
    n = len(data)
    if n == 0:
        raise _Corrupt("the file is empty")
    if n < len(MAGIC) and MAGIC.startswith(data):
        raise _Corrupt(f"the file is truncated ({n} bytes; the header alone is {HEADER_SIZE})")
    if data[:len(MAGIC)] != MAGIC:
        if data[:4] == MAGIC[:4]:
            raise _Corrupt("its signature is damaged (was it transferred as text?)")
        raise _NotRw("it is not a rewind export (.rw) file")
    if n < HEADER_SIZE:
        raise _Corrupt(f"the file is truncated ({n} bytes; the header alone is {HEADER_SIZE})")
    _magic, version, flags, m_len, p_len, r_len, p_sha = _FIXED.unpack_from(data)
    if version > RW_FORMAT:
        raise _Newer(version)
    if version < 1:
        raise _Corrupt(f"its header names format {version}, which no rewind writes")
    head_end = HEADER_SIZE + m_len
    if m_len > MAX_MANIFEST:
        raise _Corrupt("the header is corrupt (impossible manifest size)")
    if head_end + DIGEST_SIZE > n:
        raise _Corrupt(f"the file is truncated or its header is corrupt ({n:,} bytes, "
                       f"the header says more than {head_end + DIGEST_SIZE:,})")
    if hashlib.sha256(data[:head_end]).digest() != data[head_end:head_end + DIGEST_SIZE]:
        raise _Corrupt("the header is corrupt (its checksum does not match)")
    if flags:
        raise _Corrupt(f"its header sets flags 0x{flags:04x} that this rewind does not know")
    start = head_end + DIGEST_SIZE
    if n < start + p_len:
        raise _Corrupt(f"the file is truncated ({n:,} of {start + p_len:,} bytes)")
    if n > start + p_len:
        raise _Corrupt(f"the file has {n - start - p_len:,} unexpected bytes after its payload")
    if hashlib.sha256(data[start:]).digest() != p_sha:
        raise _Corrupt("the payload is corrupt (its checksum does not match)")
    try:
        raw = orjson.loads(data[HEADER_SIZE:head_end])
    except orjson.JSONDecodeError:
        raise _Corrupt("the manifest is not valid JSON") from None
    return Manifest.from_json(raw), start, p_len, r_len


def read_rw(source: str | os.PathLike[str] | bytes, progress: ProgressFn | None = None) -> RwFile:
    """Read and check a ``.rw`` file: header, checksums, decompression, and the whole pack.

    Touches no repository. Raises :class:`FormatError` (one line) on any problem.
    """
    import zstandard

    progress = progress or _quiet
    if isinstance(source, bytes | bytearray | memoryview):
        data, label = bytes(source), "the file"
    else:
        path = Path(source)
        label = str(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise RewindError(f"no such file: {path}") from None
        except IsADirectoryError:
            raise RewindError(f"{path} is a directory, not a .rw file") from None
        except OSError as exc:
            raise RewindError(f"cannot read {path} ({exc.strerror or exc})") from None
    progress(Stage.READ, len(data), len(data))
    manifest, start, p_len, r_len = read_header(data, label)
    payload = data[start:]
    progress(Stage.DECOMPRESS, 0, r_len)
    try:
        params = zstandard.get_frame_parameters(payload)
        if params.content_size != r_len:
            raise _Corrupt("the payload's size does not match the header")
        pack_data = zstandard.ZstdDecompressor().decompress(payload, allow_extra_data=False)
        if len(pack_data) != r_len:
            raise _Corrupt("the payload's size does not match the header")
    except zstandard.ZstdError as exc:
        raise _corrupt(label, f"the payload does not decompress ({exc})") from None
    except CorruptPack as exc:
        raise _corrupt(label, str(exc)) from None
    progress(Stage.DECOMPRESS, r_len, r_len)
    try:
        pack = read_pack(pack_data, lambda done, total: progress(Stage.INDEX, done, total))
    except CorruptPack as exc:
        raise _corrupt(label, f"the pack inside is invalid: {exc}") from None
    if len(pack.entries) != manifest.counts.objects:
        raise _corrupt(label, f"the manifest counts {manifest.counts.objects} objects, the pack holds "
                              f"{len(pack.entries)}")
    return RwFile(label, RW_FORMAT, manifest, pack, len(data))


# -- verifying the contents in a throw-away repository ------------------------------------


def verify_rw(rw: RwFile, progress: ProgressFn | None = None) -> None:
    """Check, in a temporary repository, that the refs' whole histories are in the file, that
    it holds nothing else, and that every session reads as rewind records.

    Raises :class:`FormatError` naming the first problem.
    """
    from rewind_vcs.store.repo import Repo

    progress = progress or _quiet
    with tempfile.TemporaryDirectory(prefix="rewind-import-") as tmp:
        scratch = Repo.init(tmp)
        _install_pack(scratch, rw.pack)
        try:
            _verify(scratch, rw, progress)
        except CorruptPack as exc:
            raise _corrupt(rw.label, str(exc)) from None
        except FormatTooNewError as exc:
            raise FormatError(f"{rw.label} holds records written by a newer rewind ({exc.message})",
                              hint=_HINT_NEWER) from None


def _verify(scratch: Repo, rw: RwFile, progress: ProgressFn) -> None:
    import pygit2

    from rewind_vcs.store.check import read_session_fully
    from rewind_vcs.store.session import Session
    from rewind_vcs.store.writer import ID_LENGTH, parse_trailers

    git = scratch.git
    m = rw.manifest
    reachable = _closure(git, m.refs)
    extra = len(rw.pack.entries) - len(reachable)
    if extra:
        raise _Corrupt(f"the pack holds {extra} objects that no ref in the file reaches")
    for name, oid in m.refs.items():
        try:
            git.references.create(name, pygit2.Oid(hex=oid), force=True)
        except (pygit2.GitError, ValueError, OSError) as exc:  # e.g. refs/tags/a next to refs/tags/a/b
            raise _Corrupt(f"its refs cannot all exist at once ({name}: {exc})") from None

    by_session: dict[str, list[str]] = {}
    for name in m.refs:
        parsed = parse_timeline_ref(name)
        if parsed:
            by_session.setdefault(parsed[0], []).append(parsed[1])
    listed = {s.id: s for s in m.sessions}
    if set(listed) != set(by_session):
        raise _Corrupt("the manifest's sessions do not match its refs")
    if (m.counts.sessions != len(listed) or m.counts.refs != len(m.refs)
            or m.counts.timelines != sum(len(t) for t in by_session.values())):
        raise _Corrupt("the manifest's counts do not match its contents")
    total_steps = 0
    for i, (sid, timelines) in enumerate(sorted(by_session.items())):
        entry = listed[sid]
        if sorted(entry.timelines) != sorted(timelines):
            raise _Corrupt(f"the manifest's timelines of session {sid} do not match its refs")
        try:
            session = Session(scratch, sid)
            for timeline in session.timelines():
                root = git[timeline.commits[0]]
                if str(root.id)[:ID_LENGTH] != sid or parse_trailers(root.message).get("Rewind-Kind") != "session":
                    raise _Corrupt(f"session {sid}/{timeline.name} does not start at the session's root commit")
            main_steps = read_session_fully(session).get(MAIN, 0)
        except (CorruptPack, FormatTooNewError):
            raise
        except (RewindError, KeyError, ValueError, TypeError, AttributeError, pygit2.GitError) as exc:
            raise _Corrupt(f"session {sid} does not read as rewind records ({exc})") from None
        if entry.steps != main_steps:
            raise _Corrupt(f"the manifest counts {entry.steps} steps in session {sid}, it has {main_steps}")
        total_steps += main_steps
        progress(Stage.VERIFY, i + 1, len(by_session))
    if m.counts.steps != total_steps:
        raise _Corrupt("the manifest's step count does not match its sessions")


def _closure(git: pygit2.Repository, refs: dict[str, str]) -> set[str]:
    """Every object reachable from ``refs`` (all parents, whole trees); raises if one is missing."""
    import pygit2

    seen: set[str] = set()
    odb = git.odb
    for name, tip in sorted(refs.items()):
        stack = [tip]
        while stack:
            oid = stack.pop()
            if oid in seen:
                continue
            try:
                obj = git[oid]
            except (KeyError, ValueError, pygit2.GitError):
                raise _Corrupt(f"{name} needs object {oid}, which the file does not hold") from None
            seen.add(oid)
            if isinstance(obj, pygit2.Commit):
                stack.append(str(obj.tree_id))
                stack.extend(str(p) for p in obj.parent_ids)
            elif isinstance(obj, pygit2.Tree):
                for entry in obj:
                    eid = str(entry.id)
                    if entry.type_str == "tree":
                        stack.append(eid)
                    elif entry.type_str == "blob" and eid not in seen:
                        if not odb.exists(entry.id):
                            raise _Corrupt(f"{name} needs object {eid}, which the file does not hold")
                        seen.add(eid)
            elif isinstance(obj, pygit2.Tag):
                stack.append(str(obj.target))
    return seen


# -- importing ---------------------------------------------------------------------------


class RefAction(StrEnum):
    CREATED = "created"
    UNCHANGED = "unchanged"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class RefOutcome:
    name: str
    action: RefAction
    target: str  # the oid in the file
    existing: str | None = None  # what the repository had (a conflict's other side)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.name, "action": self.action.value, "target": self.target,
                "existing": self.existing, "reason": self.reason}


@dataclass
class ImportResult:
    manifest: Manifest
    refs: list[RefOutcome] = field(default_factory=list)
    objects_added: int = 0
    dry_run: bool = False

    @property
    def created(self) -> list[RefOutcome]:
        return [r for r in self.refs if r.action is RefAction.CREATED]

    @property
    def conflicts(self) -> list[RefOutcome]:
        return [r for r in self.refs if r.action is RefAction.CONFLICT]

    @property
    def changed(self) -> bool:
        """Whether the import added anything (False on a second import of the same file)."""
        return bool(self.objects_added or self.created)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "changed": self.changed,
            "objects_added": self.objects_added,
            "sessions": [s.to_json() for s in self.manifest.sessions],
            "refs": [r.to_json() for r in self.refs],
            "conflicts": len(self.conflicts),
        }


def load_rw(source: str | os.PathLike[str] | bytes, progress: ProgressFn | None = None) -> RwFile:
    """Everything import checks before it may touch a repository: :func:`read_rw` then :func:`verify_rw`."""
    rw = read_rw(source, progress)
    verify_rw(rw, progress)
    return rw


def apply_rw(repo: Repo, rw: RwFile, *, dry_run: bool = False, progress: ProgressFn | None = None) -> ImportResult:
    """Copy a verified file's objects into ``repo`` (objects first), then create its refs if absent."""
    import pygit2

    progress = progress or _quiet
    git = repo.git
    missing = sum(1 for e in rw.pack.entries if not git.odb.exists(pygit2.Oid(raw=e.oid)))
    result = ImportResult(rw.manifest, objects_added=missing, dry_run=dry_run)
    if missing and not dry_run:
        progress(Stage.COPY, 0, len(rw.pack.entries))
        _install_pack(repo, reencode_pack(rw.pack, STORE_ZLIB_LEVEL))
        absent = [e for e in rw.pack.entries if not git.odb.exists(pygit2.Oid(raw=e.oid))]
        if absent:
            raise RewindError(f"the imported pack was written, but {len(absent)} objects do not read back",
                              hint="run 'rewind fsck'")
        progress(Stage.COPY, len(rw.pack.entries), len(rw.pack.entries))
    names = sorted(rw.manifest.refs, key=lambda n: (not n.startswith(SESSIONS), n))
    for i, name in enumerate(names):
        result.refs.append(_import_ref(git, name, rw.manifest.refs[name], dry_run))
        progress(Stage.REFS, i + 1, len(names))
    return result


def _import_ref(git: pygit2.Repository, name: str, oid: str, dry_run: bool) -> RefOutcome:
    import pygit2

    def compare(ref: pygit2.Reference) -> RefOutcome:
        if ref.type == pygit2.enums.ReferenceType.DIRECT and str(ref.target) == oid:
            return RefOutcome(name, RefAction.UNCHANGED, oid, oid)
        here = str(ref.target)
        return RefOutcome(name, RefAction.CONFLICT, oid, here,
                          f"{name} points at {here[:12]} here and at {oid[:12]} in the file")

    existing = git.references.get(name)
    if existing is not None:
        return compare(existing)
    if dry_run:
        return RefOutcome(name, RefAction.CREATED, oid)
    try:
        git.references.create(name, pygit2.Oid(hex=oid), force=False)
    except (pygit2.GitError, ValueError, OSError) as exc:  # a race, or a ref in the way (refs/tags/a vs a/b)
        now = git.references.get(name)
        if now is not None:
            return compare(now)
        return RefOutcome(name, RefAction.CONFLICT, oid, None, f"{name} cannot be created here ({exc})")
    return RefOutcome(name, RefAction.CREATED, oid)


def import_rw(repo: Repo, source: str | os.PathLike[str] | bytes, *, dry_run: bool = False,
              progress: ProgressFn | None = None) -> ImportResult:
    """Verify a ``.rw`` file completely, then import it into ``repo`` (see the module docstring)."""
    return apply_rw(repo, load_rw(source, progress), dry_run=dry_run, progress=progress)


def _install_pack(repo: Repo, pack: Pack) -> None:
    """Put a pack and its index into ``objects/pack``: each under a temporary name, then renamed,
    the index last (git and libgit2 find packs by their index)."""
    pack_dir = repo.path / "objects" / "pack"
    pack_dir.mkdir(parents=True, exist_ok=True)
    stem = f"pack-{pack.checksum.hex()}"
    if (pack_dir / f"{stem}.pack").exists() and (pack_dir / f"{stem}.idx").exists():
        return
    index = pack_index(pack)
    for suffix, content in ((".pack", pack.data), (".idx", index)):
        final = pack_dir / f"{stem}{suffix}"
        tmp = pack_dir / f"tmp_rw_{os.getpid()}_{stem[5:17]}{suffix}"
        try:
            with open(tmp, "wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        except OSError:
            try:
                tmp.unlink()
            except OSError:
                pass
            raise


__all__ = [
    "MAGIC",
    "RW_FORMAT",
    "Counts",
    "ExportResult",
    "ImportResult",
    "Manifest",
    "Pack",
    "PackEntry",
    "RefAction",
    "RefOutcome",
    "RwFile",
    "SessionEntry",
    "Stage",
    "apply_rw",
    "build_pack",
    "export_rw",
    "import_rw",
    "load_rw",
    "pack_index",
    "parse_pack",
    "read_header",
    "read_rw",
    "reencode_pack",
    "select_refs",
    "verify_rw",
]
