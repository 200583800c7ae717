"""``rewind export``: write sessions to one ``.rw`` file (``docs/RWFILE.md``).

Why the pack inside is stored with zlib level 0: libgit2's packbuilder does
the delta search (a growing conversation becomes small deltas), but it deflates
every object on its own, so zstd would see noise. Re-encoding the pack's
entries as stored zlib streams lets one zstd frame compress across all
objects: on a 200-step growing session the file is about 0.45x the size of
the same objects' ordinary pack. On import the entries are deflated again
before the pack goes into ``.rewind/objects/pack``.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pygit2

from rewind_vcs.errors import RewindError
from rewind_vcs.store.refs import BASELINES, MAIN, TAGS, parse_timeline_ref
from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.packfile import CorruptPack, Pack, read_pack, reencode_pack
from rewind_vcs.transfer.rwformat import (
    EXPORTED_PREFIXES,
    ZSTD_LEVEL,
    Counts,
    Manifest,
    ProgressFn,
    SessionEntry,
    Stage,
    assemble,
    quiet,
)


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

    progress = progress or quiet
    output = _output_path(output)
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
    data = assemble(manifest.dumps(), payload, len(stored.data))
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


def _output_path(output: str | os.PathLike[str]) -> Path:
    """Where the file goes; a directory or a missing directory is a one-line error before any work."""
    path = Path(output)
    if path.is_dir() or str(output).endswith(("/", os.sep)) or not path.name:
        raise RewindError(f"{output} is a directory", hint="give a file name, e.g. -o incident.rw")
    if not path.parent.is_dir():
        raise RewindError(f"cannot write {path}: the directory {path.parent} does not exist",
                          hint="create it first, or write somewhere else")
    return path


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


