"""``rewind fetch`` / ``pull`` / ``clone``: take a remote's sessions, checked as ``rewind import`` checks.

The objects come first, into a quarantine namespace
(``refs/rewind-incoming/<pid>/``, deleted at once), so no local ref moves
before every incoming session has passed :mod:`rewind_vcs.transfer.incoming`
(ref names, tag names, records, trailers, step records, no second root for a
known id). What fails is skipped with one warning line each (as git skips a
ref with a broken name) and the rest arrives. Then each ref is moved by the
rules of :func:`rewind_vcs.transfer.refupdate.plan`: fast-forward only
unless ``force``, never a local tag (a pulled tag never replaces one of the
same name), never a session a local recorder is writing (its lease is held).
Diverged notes are merged (both sides' scores kept). Sessions that arrive
are noted in ``.rewind/arrivals`` as ``fetched`` from the remote's name.

Fetch writes ``refs/sessions/*`` directly: session ids are hashes of root
commits, global by construction, so there is no ``refs/remotes/<name>/``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pygit2

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.arrivals import Origin, note_arrivals
from rewind_vcs.store.index import session_tips
from rewind_vcs.store.refs import NOTES, SESSIONS, TAGS, parse_timeline_ref, read_refs
from rewind_vcs.store.repo import DIRNAME, Repo
from rewind_vcs.transfer.gitnet import (
    Callbacks,
    Credentials,
    Phase,
    Progress,
    ProgressCallback,
    advertised,
    check_rewind_remote,
    direction,
    emit,
    network,
)
from rewind_vcs.transfer.incoming import (
    SHARED_PREFIXES,
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
    valid_git_name,
    visible,
)
from rewind_vcs.transfer.refupdate import (
    LOCAL_AHEAD,
    RefStatus,
    RefUpdate,
    TransferResult,
    plan,
    prefix,
    session_of,
)
from rewind_vcs.transfer.remotes import DEFAULT_REMOTE, add_remote, endpoint

#: The reason a pulled tag is refused when a local one has the name (never replaced, even with --force).
LOCAL_TAG = "a local tag of that name exists"


@dataclass
class CloneResult:
    repo: Repo
    fetch: TransferResult


def fetch(
    repo: Repo,
    remote: str = DEFAULT_REMOTE,
    *,
    force: bool = False,
    credentials: Credentials | None = None,
    progress: ProgressCallback | None = None,
) -> TransferResult:
    """Take the sessions of ``remote`` into ``refs/sessions/*`` (and its tags, baselines, notes).

    Fast-forward only unless ``force``; sessions a local recorder is writing
    are left alone; what does not pass the incoming checks is in
    :attr:`TransferResult.skipped`. Rejected refs do not raise: see
    :attr:`TransferResult.rejected`.
    """
    end = endpoint(repo, remote, push=False)
    git = repo.git
    result = TransferResult(end.label, end.url)
    callbacks = Callbacks(credentials, progress)
    quarantine = f"refs/rewind-incoming/{os.getpid()}/"
    with network(end, callbacks), ExitStack() as stack:
        url = stack.enter_context(_readable(end.url, result.skipped))
        conn = git.remotes.create_anonymous(url)
        emit(progress, Progress(Phase.CONNECTING))
        conn.connect(callbacks=callbacks, direction=direction("FETCH"))
        callbacks.connected = True
        theirs = advertised(conn)
        check_rewind_remote(end, theirs)
        wanted: dict[str, str] = {}
        for ref, oid in sorted(theirs.items()):
            if not ref.startswith(SHARED_PREFIXES):
                continue
            why = ref_problem(ref)
            if why:
                result.skipped.append(skipped_ref(ref, why))
            else:
                wanted[ref] = oid
        ours = read_refs(repo.path, SHARED_PREFIXES)
        missing = {r: o for r, o in wanted.items() if o not in git}
        try:
            if missing:
                conn.fetch(_quarantine_specs(missing, ours, quarantine), callbacks=callbacks)
            accepted = _screen(repo, wanted, ours, result.skipped)
        finally:
            _drop_namespace(git, quarantine)
        updates: list[RefUpdate] = []
        held: dict[str, bool] = {}
        for ref, oid in sorted(accepted.items()):
            u = plan(repo, ref, source=oid, dest=ours.get(ref), force=force and prefix(ref) != TAGS,
                     behind=LOCAL_AHEAD)
            if prefix(ref) == TAGS and u.status is RefStatus.REJECTED:
                u = RefUpdate(ref, u.old, u.new, RefStatus.REJECTED, LOCAL_TAG)
            sid = session_of(ref)
            if u.changed and u.old is not None and sid is not None:
                if sid not in held:  # a local recorder owns this session: leave it alone
                    held[sid] = stack.enter_context(repo.lease(sid))
                if not held[sid]:
                    u = RefUpdate(ref, u.old, oid, RefStatus.REJECTED, "being recorded here")
            if u.changed:
                u = _write_ref(repo, u)
            elif _diverged_notes(u):
                u = _merge_notes(repo, u)
            updates.append(u)
        callbacks.approve()
    result.updates = updates
    result.objects, result.bytes = callbacks.received_objects, callbacks.received_bytes
    arrived = [s for u in updates if u.status is RefStatus.NEW and (s := session_of(u.ref))]
    if arrived:
        note_arrivals(repo.path, oldest_first(repo, arrived), Origin.FETCHED, source=end.label)
    return result


def clone(
    url: str,
    directory: str | os.PathLike[str],
    *,
    remote_name: str = DEFAULT_REMOTE,
    credentials: Credentials | None = None,
    progress: ProgressCallback | None = None,
) -> CloneResult:
    """Make ``DIRECTORY/.rewind`` (a rewind repository) with ``remote_name`` set to ``url``, and fetch.

    ``DIRECTORY`` may already exist (a checkout of the agent's code, say); a
    ``.rewind`` in it may not. On failure nothing is left behind.
    """
    top = Path(directory).expanduser().absolute()
    rdir = top / DIRNAME
    if rdir.exists():
        raise RemoteError(f"{rdir} already exists", hint="clone into another directory, or use 'rewind fetch' there")
    created = not top.exists()
    try:
        repo = Repo.init(top)
        add_remote(repo, remote_name, url)
        result = fetch(repo, remote_name, credentials=credentials, progress=progress)
    except BaseException:
        shutil.rmtree(top if created else rdir, ignore_errors=True)
        raise
    return CloneResult(repo, result)


# -- checking what came in ------------------------------------------------------------------


def _screen(repo: Repo, wanted: Mapping[str, str], ours: Mapping[str, str], skipped: list[Skipped]) -> dict[str, str]:
    """The refs of ``wanted`` that pass the incoming checks (their objects are here now)."""
    git = repo.git
    incoming: dict[str, dict[str, str]] = {}
    for ref, oid in wanted.items():
        parsed = parse_timeline_ref(ref)
        if parsed:
            incoming.setdefault(parsed[0], {})[parsed[1]] = oid
    local = session_tips(repo)
    accepted: dict[str, str] = {}
    roots: dict[str, str] = {}  # accepted session id -> its root commit
    for sid, tips in sorted(incoming.items()):
        refs = {f"{SESSIONS}{sid}/{tl}": oid for tl, oid in tips.items()}
        if all(ours.get(r) == o for r, o in refs.items()):
            accepted.update(refs)  # nothing new: up to date
            continue
        try:
            check_session(repo, sid, tips)
            root = root_of(git, next(iter(tips.values())))
            here = local_root(repo, sid, local.get(sid, {}))
            if here is not None and here != root:
                raise SessionRejected(f"a different session with id {sid} exists here "
                                      f"(root {here[:12]}, the remote's is {root[:12]}); not mixing their histories")
        except SessionRejected as exc:
            skipped.append(skipped_session(sid, str(exc)))
            continue
        roots[sid] = root
        accepted.update(refs)
    for ref, oid in wanted.items():
        if ref.startswith(SESSIONS) or ours.get(ref) == oid:
            if ours.get(ref) == oid:
                accepted[ref] = oid
            continue
        target = peeled_commit(git, oid)
        if target is None:
            skipped.append(skipped_ref(ref, "does not point at a commit"))
        elif ref.startswith(NOTES) or _in_a_session(repo, target, roots, local):
            accepted[ref] = oid
        else:
            skipped.append(skipped_ref(ref, "points at no session this repository has or takes"))
    return accepted


def _in_a_session(repo: Repo, commit: str, roots: Mapping[str, str], local: Mapping[str, dict[str, str]]) -> bool:
    try:
        root = root_of(repo.git, commit)
    except SessionRejected:
        return False
    sid = root[:12]
    if sid in roots:
        return roots[sid] == root
    return sid in local and local_root(repo, sid, local[sid]) == root


# -- the download ------------------------------------------------------------------------------


def _quarantine_specs(missing: Mapping[str, str], ours: Mapping[str, str], quarantine: str) -> list[str]:
    """Refspecs that download ``missing`` into ``quarantine`` (no real ref moves).

    A namespace with nothing local yet (a clone) goes as one glob: thousands
    of explicit refspecs would each be matched against every advertised ref.
    """
    specs: list[str] = []
    globbed: set[str] = set()
    for p in SHARED_PREFIXES:
        if not any(r.startswith(p) for r in ours) and any(r.startswith(p) for r in missing):
            specs.append(f"+{p}*:{quarantine}{p[len('refs/'):]}*")
            globbed.add(p)
    for ref in missing:
        if prefix(ref) not in globbed:
            specs.append(f"+{ref}:{quarantine}{ref[len('refs/'):]}")
    return specs


def _drop_namespace(git: pygit2.Repository, namespace: str) -> None:
    for ref in list(git.references.iterator()):
        if ref.name.startswith(namespace):
            ref.delete()


@contextmanager
def _readable(url: str, skipped: list[Skipped]) -> Iterator[str]:
    """The URL to fetch from: for a local repository holding refs with broken names (which
    libgit2's local transport refuses outright), a view of it without them.

    The view is a temporary directory whose objects are the remote's (git's
    ``alternates``) and whose refs are the remote's valid ones, as git's own
    ``upload-pack`` would advertise them.
    """
    path = Path(url[len("file://"):] if url.startswith("file://") else url)
    if "://" in url and not url.startswith("file://") or not (path / "objects").is_dir():
        yield url
        return
    try:
        refs = read_refs(path, ("refs/",))
    except (OSError, UnicodeError):  # let libgit2 say what is wrong with it
        yield url
        return
    broken = sorted(r for r in refs if not valid_git_name(r))
    if not broken:
        yield url
        return
    for ref in broken:
        skipped.append(skipped_ref(ref, "is not a valid ref name"))
    with tempfile.TemporaryDirectory(prefix="rewind-remote-view-") as tmp:
        view = Path(tmp)
        (view / "objects" / "info").mkdir(parents=True)
        (view / "refs").mkdir()
        (view / "objects" / "info" / "alternates").write_text(f"{(path / 'objects').resolve()}\n")
        (view / "HEAD").write_text("ref: refs/heads/main\n")
        (view / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
        good = sorted((r, o) for r, o in refs.items() if r not in set(broken))
        (view / "packed-refs").write_text("# pack-refs with: sorted\n" + "".join(f"{o} {r}\n" for r, o in good))
        yield str(view)


# -- moving refs ---------------------------------------------------------------------------------


def _write_ref(repo: Repo, u: RefUpdate) -> RefUpdate:
    """Move a ref whose new target is here (compare-and-swap on what it was)."""
    git = repo.git
    try:
        if u.old is None:
            git.references.create(u.ref, pygit2.Oid(hex=u.new), force=False)
        else:
            ref = git.references.get(u.ref)
            if ref is None or str(ref.target) != u.old:
                return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, "it moved here during the fetch")
            ref.set_target(pygit2.Oid(hex=u.new), f"rewind fetch: {u.status.value}")
    except (OSError, ValueError, pygit2.GitError, pygit2.AlreadyExistsError) as exc:
        return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, f"could not update the local ref: {exc}")
    return u


def _diverged_notes(u: RefUpdate) -> bool:
    return u.ref.startswith(NOTES) and u.status is RefStatus.REJECTED and u.reason == "non-fast-forward"


def _merge_notes(repo: Repo, u: RefUpdate) -> RefUpdate:
    """Two people scored sessions: keep both sides' notes (ours win on the same object), as
    ``git notes merge -s ours`` would, in a merge commit both sides fast-forward to."""
    git = repo.git
    try:
        if u.old is None:
            raise ValueError("there is no local notes commit")
        ours, theirs = git[u.old].peel(pygit2.Commit), git[u.new].peel(pygit2.Commit)
        merged = _flat_notes(theirs.tree)
        merged.update(_flat_notes(ours.tree))
        builder = git.TreeBuilder()
        for name, (oid, mode) in sorted(merged.items()):
            builder.insert(name, oid, mode)
        sig = repo.signature()
        commit = git.create_commit(u.ref, sig, sig, "Notes merged by 'rewind fetch'\n", builder.write(),
                                   [ours.id, theirs.id])  # compare-and-swap on our tip
    except (KeyError, ValueError, OSError, RecursionError, pygit2.GitError, pygit2.InvalidSpecError) as exc:
        return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED,
                         f"non-fast-forward; merging the notes failed: {visible(str(exc), 120)}")
    return RefUpdate(u.ref, u.old, str(commit), RefStatus.MERGED)


def _flat_notes(tree: pygit2.Tree, path: str = "", depth: int = 0) -> dict[str, tuple[pygit2.Oid, int]]:
    """A notes tree as ``{annotated object hex: (note blob, mode)}``, fan-out directories (``ab/cdef...``) undone."""
    if depth > 40:  # git's fan-out is at most 19 levels deep (40 hex digits, two per level)
        raise ValueError("the notes tree is nested too deeply")
    out: dict[str, tuple[pygit2.Oid, int]] = {}
    for entry in tree:
        name = entry.name or ""
        if entry.type_str == "tree":
            out.update(_flat_notes(entry, path + name, depth + 1))  # type: ignore[arg-type]
        else:
            out[path + name] = (entry.id, entry.filemode)
    return out

