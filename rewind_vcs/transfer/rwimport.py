"""``rewind import``: verify a ``.rw`` file completely, then copy its objects and create its refs.

Import verifies everything before it touches the repository: the header, both
checksums, the bounded decompression and the pack (:mod:`.rwread`), then, in a
throw-away repository, that every ref's whole history is there and nothing
else, and that every session passes :mod:`rewind_vcs.transfer.incoming` (as
fetch checks them). A session or ref that fails those per-session checks is
skipped with one warning line and the rest is imported; a file whose layout,
checksums or pack are wrong is refused whole. Only then are the objects
copied (a pack and its index, written under temporary names and renamed, the
index last) and the refs created, each only if absent: an existing ref with
another target is a conflict, reported and left untouched, and a session id
that exists here with another root commit is skipped. Importing the same
file twice changes nothing the second time. Sessions that arrive are noted in
``.rewind/arrivals`` as ``imported`` from the file's name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pygit2

from rewind_vcs.errors import FormatError, RewindError
from rewind_vcs.store.arrivals import Origin, note_arrivals
from rewind_vcs.store.index import session_tips
from rewind_vcs.store.refs import NOTES, SESSIONS, parse_timeline_ref
from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.incoming import (
    SessionRejected,
    Skipped,
    check_session,
    local_root,
    oldest_first,
    peeled_commit,
    ref_problem,
    root_of,
    skipped_ref,
    skipped_session,
    visible,
)
from rewind_vcs.transfer.packfile import CorruptPack, Pack, pack_index, reencode_pack
from rewind_vcs.transfer.rwformat import (
    STORE_ZLIB_LEVEL,
    Corrupt,
    Manifest,
    ProgressFn,
    Stage,
    corrupt,
    quiet,
)
from rewind_vcs.transfer.rwread import RwFile, read_rw


@dataclass
class Verified:
    """What :func:`verify_rw` found a file may bring: the refs it takes, what it skips, each session's root."""

    rw: RwFile
    refs: dict[str, str] = field(default_factory=dict)
    roots: dict[str, str] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)  # tag or baseline -> the session it points into
    skipped: list[Skipped] = field(default_factory=list)

    @property
    def manifest(self) -> Manifest:
        return self.rw.manifest

    @property
    def label(self) -> str:
        return self.rw.label


def verify_rw(rw: RwFile, progress: ProgressFn | None = None) -> Verified:
    """Check, in a temporary repository, that the refs' whole histories are in the file, that
    it holds nothing else, and which sessions pass the incoming checks.

    Raises :class:`FormatError` naming the first problem of the file itself,
    or when nothing in it can be imported.
    """
    progress = progress or quiet
    with tempfile.TemporaryDirectory(prefix="rewind-import-") as tmp:
        scratch = Repo.init(tmp)
        install_pack(scratch, rw.pack)
        try:
            verified = _verify(scratch, rw, progress)
        except CorruptPack as exc:
            raise corrupt(rw.label, str(exc)) from None
    if not verified.refs:
        first = verified.skipped[0].line() if verified.skipped else "it holds no refs"
        raise FormatError(f"nothing in {rw.label} can be imported ({first})",
                          hint="nothing was imported; ask for a file written by 'rewind export'")
    return verified


def _verify(scratch: Repo, rw: RwFile, progress: ProgressFn) -> Verified:
    git = scratch.git
    m = rw.manifest
    out = Verified(rw)
    reachable = _closure(git, m.refs)
    extra = len(rw.pack.entries) - len(reachable)
    if extra:
        raise Corrupt(f"the pack holds {extra} objects that no ref in the file reaches")
    good: dict[str, str] = {}
    for name, oid in sorted(m.refs.items()):
        why = ref_problem(name)
        if why:
            out.skipped.append(skipped_ref(name, why))
            continue
        good[name] = oid
        try:
            git.references.create(name, pygit2.Oid(hex=oid), force=True)
        except (pygit2.GitError, ValueError, OSError) as exc:  # e.g. refs/tags/a next to refs/tags/a/b
            raise Corrupt(f"its refs cannot all exist at once ({visible(name)}: {visible(str(exc))})") from None

    by_session: dict[str, dict[str, str]] = {}
    for name, oid in good.items():
        parsed = parse_timeline_ref(name)
        if parsed:
            by_session.setdefault(parsed[0], {})[parsed[1]] = oid
    listed = {s.id: s for s in m.sessions}
    if set(listed) != set(by_session):
        raise Corrupt("the manifest's sessions do not match its refs")
    if (m.counts.sessions != len(listed) or m.counts.refs != len(m.refs)
            or m.counts.timelines != sum(len(t) for t in by_session.values())):
        raise Corrupt("the manifest's counts do not match its contents")
    total_steps, rejected = 0, set()
    for i, (sid, tips) in enumerate(sorted(by_session.items())):
        entry = listed[sid]
        if sorted(entry.timelines) != sorted(tips):
            raise Corrupt(f"the manifest's timelines of session {sid} do not match its refs")
        try:
            steps = check_session(scratch, sid, tips)
        except SessionRejected as exc:
            out.skipped.append(skipped_session(sid, str(exc)))
            rejected.add(sid)
            continue
        if entry.steps != steps:
            raise Corrupt(f"the manifest counts {entry.steps} steps in session {sid}, it has {steps}")
        total_steps += steps
        out.roots[sid] = root_of(git, next(iter(tips.values())))
        out.refs.update({f"{SESSIONS}{sid}/{tl}": oid for tl, oid in tips.items()})
        progress(Stage.VERIFY, i + 1, len(by_session))
    if not rejected and m.counts.steps != total_steps:
        raise Corrupt("the manifest's step count does not match its sessions")
    for name, oid in good.items():
        if name.startswith(SESSIONS):
            continue
        reason, owner = _name_target(git, name, oid, out.roots)
        if reason:
            out.skipped.append(skipped_ref(name, reason))
        else:
            out.refs[name] = oid
            if owner:
                out.owners[name] = owner
    return out


def _name_target(git: pygit2.Repository, name: str, oid: str, roots: dict[str, str]) -> tuple[str | None, str | None]:
    """Why a tag, baseline or notes ref of the file is not taken (None: it is), and the session it points into."""
    target = peeled_commit(git, oid)
    if target is None:
        return "does not point at a commit", None
    if name.startswith(NOTES):
        return None, None
    try:
        root = root_of(git, target)
    except SessionRejected as exc:
        return str(exc), None
    if roots.get(root[:12]) != root:
        return "points into no session this file brings", None
    return None, root[:12]


def _closure(git: pygit2.Repository, refs: dict[str, str]) -> set[str]:
    """Every object reachable from ``refs`` (all parents, whole trees); raises if one is missing."""

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
                raise Corrupt(f"{visible(name)} needs object {oid}, which the file does not hold") from None
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
                            raise Corrupt(f"{visible(name)} needs object {eid}, which the file does not hold")
                        seen.add(eid)
            elif isinstance(obj, pygit2.Tag):
                stack.append(str(obj.target))
    return seen



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
    skipped: list[Skipped] = field(default_factory=list)

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
            "skipped": [s.to_json() for s in self.skipped],
        }



def load_rw(source: str | os.PathLike[str] | bytes, progress: ProgressFn | None = None) -> Verified:
    """Everything import checks before it may touch a repository: :func:`read_rw` then :func:`verify_rw`."""
    return verify_rw(read_rw(source, progress), progress)


def apply_rw(repo: Repo, verified: Verified, *, dry_run: bool = False,
             progress: ProgressFn | None = None) -> ImportResult:
    """Copy a verified file's objects into ``repo`` (objects first), then create its refs if absent."""
    progress = progress or quiet
    git = repo.git
    rw = verified.rw
    refs, skipped = _without_collisions(repo, verified)
    missing = sum(1 for e in rw.pack.entries if e.oid is not None and not git.odb.exists(pygit2.Oid(raw=e.oid)))
    result = ImportResult(rw.manifest, objects_added=missing, dry_run=dry_run, skipped=skipped)
    if missing and refs and not dry_run:
        progress(Stage.COPY, 0, len(rw.pack.entries))
        install_pack(repo, reencode_pack(rw.pack, STORE_ZLIB_LEVEL))
        absent = [e for e in rw.pack.entries if e.oid is not None and not git.odb.exists(pygit2.Oid(raw=e.oid))]
        if absent:
            raise RewindError(f"the imported pack was written, but {len(absent)} objects do not read back",
                              hint="run 'rewind fsck'")
        progress(Stage.COPY, len(rw.pack.entries), len(rw.pack.entries))
    elif not refs:
        result.objects_added = 0
    names = sorted(refs, key=lambda n: (not n.startswith(SESSIONS), n))
    for i, name in enumerate(names):
        result.refs.append(_import_ref(git, name, refs[name], dry_run))
        progress(Stage.REFS, i + 1, len(names))
    arrived = [p[0] for r in result.created if (p := parse_timeline_ref(r.name))]
    if arrived and not dry_run:
        source = Path(rw.label).name if rw.label != "the file" else ""
        note_arrivals(repo.path, oldest_first(repo, arrived), Origin.IMPORTED, source=source)
    return result


def _without_collisions(repo: Repo, verified: Verified) -> tuple[dict[str, str], list[Skipped]]:
    """The verified refs minus sessions whose id exists here with another root (and the names pointing into them)."""
    local = session_tips(repo)
    skipped = list(verified.skipped)
    refused: set[str] = set()
    for sid, root in sorted(verified.roots.items()):
        here = local_root(repo, sid, local[sid]) if sid in local else None
        if here is not None and here != root:
            skipped.append(skipped_session(sid, f"a different session with id {sid} exists here (root "
                                                f"{here[:12]}, the file's is {root[:12]}); not mixing their histories"))
            refused.add(sid)
    if not refused:
        return dict(verified.refs), skipped
    refs: dict[str, str] = {}
    for name, oid in verified.refs.items():
        parsed = parse_timeline_ref(name)
        owner = parsed[0] if parsed else verified.owners.get(name)
        if owner not in refused:
            refs[name] = oid
        elif not parsed:
            skipped.append(skipped_ref(name, "points into a session that was skipped"))
    return refs, skipped


def _import_ref(git: pygit2.Repository, name: str, oid: str, dry_run: bool) -> RefOutcome:
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


def install_pack(repo: Repo, pack: Pack) -> None:
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



__all__ = ["ImportResult", "RefAction", "RefOutcome", "Verified", "apply_rw", "import_rw", "install_pack", "load_rw",
           "verify_rw"]
