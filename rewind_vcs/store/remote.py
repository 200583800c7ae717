"""Remotes: push, fetch and clone sessions through libgit2, to and from any git server.

A remote is any git repository: a local path, ``file://``, ``git://`` (git
daemon), ``ssh://`` / ``user@host:path`` and ``https://``. A bare repository on
a git host is a valid team remote; so is a teammate's ``.rewind`` (a path to
the project holding it is enough).

What travels is refs, and the objects they reach::

    refs/sessions/*    every timeline of every session
    refs/tags/*        names
    refs/baselines/*   reference runs
    refs/notes/*       evaluation scores

Everything else in ``.rewind/`` (the CA, config, hooks, journal, leases,
cache) is files, not refs, so it never travels.

Rules, per ref (see docs/REMOTES.md):

- a ref the other side lacks is created;
- sessions and notes move forward only: a fast-forward is taken, a diverged
  ref is **rejected** (``! [rejected] <ref> (non-fast-forward)``) unless
  ``force``; a ref whose source is *behind* the destination is left alone,
  even with ``force`` (rewinding history is never what a sync wants);
- tags and baselines are names: one that exists with another target is
  rejected (``already exists``) unless ``force``;
- diverged notes are merged on fetch (both sides' scores kept), so the next
  push fast-forwards.

Fetch writes ``refs/sessions/*`` directly (session ids are global: there is no
``refs/remotes/``), and never touches a session a local recorder is writing
(its lease is held). libgit2 does not raise when a server refuses a ref, so
every push reads the server's verdict per ref. Nothing here prints: progress
goes to a callback, results come back as :class:`TransferResult`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import CredentialType

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.refs import BASELINES, NOTES, SESSIONS, TAGS, parse_timeline_ref, read_refs
from rewind_vcs.store.repo import DIRNAME, Repo

#: The ref namespaces that travel; everything else in ``.rewind/`` stays home.
SHARED_PREFIXES: tuple[str, ...] = (SESSIONS, TAGS, BASELINES, NOTES)
#: The refspecs written into ``remote.<name>.fetch`` / ``.push`` (for the git CLI's sake;
#: rewind itself expands them per ref, because libgit2's push does not expand globs).
REFSPECS: tuple[str, ...] = tuple(f"{p}*:{p}*" for p in SHARED_PREFIXES)
ZERO_OID = "0" * 40
DEFAULT_REMOTE = "origin"

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^(?:[^@/:]+@)?[^/:]+:")  # user@host:path, as git reads it


# -- values ---------------------------------------------------------------------------


class Phase(StrEnum):
    """What a transfer is doing; ``total is None`` means no count is known (show a spinner)."""

    CONNECTING = "connecting"
    COMPRESSING = "compressing"
    SENDING = "sending"
    RECEIVING = "receiving"
    RESOLVING = "resolving"


@dataclass(frozen=True)
class Progress:
    phase: Phase
    done: int = 0
    total: int | None = None
    bytes: int = 0
    message: str = ""


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class Credentials:
    """How to authenticate, in the order tried; the CLI fills this from the environment.

    - ssh: the agent (``ssh_agent``), then each private key file in ``ssh_keys``
      (``<key>.pub`` beside it), unencrypted or with ``ssh_passphrase``;
    - https: ``token`` (as the password, with ``username``, the URL's user, or
      ``x-access-token``), then ``git credential fill`` when ``credential_helper``
      (run with ``helper_env``; approved on success, rejected on failure, as git does).
    """

    token: str | None = None
    username: str | None = None
    ssh_agent: bool = True
    ssh_keys: tuple[Path, ...] = ()
    ssh_passphrase: str = ""
    credential_helper: bool = False
    helper_env: Mapping[str, str] | None = None


class RefStatus(StrEnum):
    NEW = "new"
    FAST_FORWARD = "fast-forward"
    FORCED = "forced"
    UP_TO_DATE = "up-to-date"
    MERGED = "merged"  # notes: both sides' notes, in a merge commit (fetch only)
    BEHIND = "behind"  # the source side is behind the destination: nothing to copy
    REJECTED = "rejected"


_NEW_LABEL = {SESSIONS: "new timeline", TAGS: "new tag", BASELINES: "new baseline", NOTES: "new notes"}


@dataclass(frozen=True)
class RefUpdate:
    """One ref of a push or fetch: what it was on the destination, what it is now, and why."""

    ref: str
    old: str | None
    new: str
    status: RefStatus
    reason: str | None = None

    @property
    def changed(self) -> bool:
        return self.status in (RefStatus.NEW, RefStatus.FAST_FORWARD, RefStatus.FORCED, RefStatus.MERGED)

    def line(self) -> str:
        """One line in the style of ``git push`` / ``git fetch``."""
        if self.status is RefStatus.NEW:
            label = _NEW_LABEL.get(_prefix(self.ref), "new ref")
            parsed = parse_timeline_ref(self.ref)
            if parsed and parsed[1] == "main":
                label = "new session"
            return f" * [{label}]".ljust(20) + f" {self.ref}"
        if self.status is RefStatus.FAST_FORWARD:
            return f"   {_short(self.old)}..{_short(self.new)}".ljust(20) + f" {self.ref}"
        if self.status is RefStatus.FORCED:
            return f" + {_short(self.old)}...{_short(self.new)}".ljust(20) + f" {self.ref} (forced update)"
        if self.status is RefStatus.MERGED:
            return f"   {_short(self.old)}..{_short(self.new)}".ljust(20) + f" {self.ref} (merged)"
        if self.status is RefStatus.REJECTED:
            return " ! [rejected]".ljust(20) + f" {self.ref} ({self.reason})"
        if self.status is RefStatus.BEHIND:
            return " = [behind]".ljust(20) + f" {self.ref} ({self.reason})"
        return " = [up to date]".ljust(20) + f" {self.ref}"

    def to_json(self) -> dict[str, Any]:
        return {"ref": self.ref, "old": self.old, "new": self.new, "status": self.status.value,
                "reason": self.reason}


@dataclass
class TransferResult:
    """What a push or fetch did, per ref.

    A push or fetch goes on past a rejected ref (as git does): **check**
    :attr:`rejected` (or call :meth:`check`) before calling it a success.
    """

    remote: str  # the remote's name, or the URL when none was configured
    url: str
    updates: list[RefUpdate] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0

    @property
    def rejected(self) -> list[RefUpdate]:
        return [u for u in self.updates if u.status is RefStatus.REJECTED]

    @property
    def changed(self) -> list[RefUpdate]:
        return [u for u in self.updates if u.changed]

    @property
    def new_sessions(self) -> list[str]:
        out = []
        for u in self.updates:
            parsed = parse_timeline_ref(u.ref)
            if u.status is RefStatus.NEW and parsed and parsed[1] == "main":
                out.append(parsed[0])
        return out

    def check(self) -> None:
        """Raise :class:`RemoteError` naming the rejected refs, if any."""
        rejected = self.rejected
        if not rejected:
            return
        hint = _rejection_hint(rejected)
        if len(rejected) == 1:
            raise RemoteError(f"! [rejected] {rejected[0].ref} ({rejected[0].reason})", hint=hint)
        raise RemoteError(f"{len(rejected)} refs were rejected by {self.url} "
                          f"(first: {rejected[0].ref}, {rejected[0].reason})", hint=hint)

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "url": self.url, "objects": self.objects, "bytes": self.bytes,
                "updates": [u.to_json() for u in self.updates]}


def _rejection_hint(rejected: list[RefUpdate]) -> str:
    reasons = {u.reason for u in rejected}
    if reasons <= {"non-fast-forward", "already exists"}:
        return "fetch first or use --force"
    if "being recorded here" in reasons:
        return "wait for the recording to finish, then fetch again"
    return "see the reason the other side gave"


@dataclass(frozen=True)
class RemoteInfo:
    name: str
    url: str
    push_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "push_url": self.push_url}


@dataclass
class CloneResult:
    repo: Repo
    fetch: TransferResult


# -- configured remotes ----------------------------------------------------------------


def list_remotes(repo: Repo) -> list[RemoteInfo]:
    git = repo.git
    return sorted((RemoteInfo(r.name, r.url, r.push_url) for r in git.remotes if r.name), key=lambda r: r.name)


def get_remote(repo: Repo, name: str) -> RemoteInfo:
    for r in list_remotes(repo):
        if r.name == name:
            return r
    known = ", ".join(r.name for r in list_remotes(repo))
    raise RemoteError(f"unknown remote '{name}'" + (f" (remotes: {known})" if known else " (no remotes yet)"),
                      hint=f"add it: rewind remote add {name} URL")


def default_remote_name(repo: Repo) -> str:
    """``origin`` when it exists (or nothing is configured), else the only remote there is."""
    names = sorted(n for n in repo.git.remotes.names() if n)
    if DEFAULT_REMOTE in names or not names:
        return DEFAULT_REMOTE
    if len(names) == 1:
        return names[0]
    raise RemoteError(f"no remote named '{DEFAULT_REMOTE}' and several others ({', '.join(names)})",
                      hint="name the remote: rewind push NAME")


def add_remote(repo: Repo, name: str, url: str) -> RemoteInfo:
    """Configure a remote (``[remote "NAME"]`` in ``.rewind/config``, with rewind's refspecs).

    A plain relative path is stored absolute, so the remote works from any
    directory (git stores a clone's local origin the same way).
    """
    if not _NAME_RE.match(name) or name.endswith(".lock"):
        raise RemoteError(f"'{name}' is not a valid remote name", hint="use letters, digits, '.', '_' and '-'")
    url = url.strip()
    if not url:
        raise RemoteError("empty remote URL", hint="give a path, file://, git://, ssh:// or https:// URL")
    if _is_plain_path(url):
        url = os.path.abspath(Path(url).expanduser())
    git = repo.git
    if name in set(git.remotes.names()):
        raise RemoteError(f"remote '{name}' already exists ({git.remotes[name].url})",
                          hint=f"remove it first: rewind remote remove {name}")
    git.remotes.create(name, url, REFSPECS[0])
    for spec in REFSPECS[1:]:
        git.remotes.add_fetch(name, spec)
    for spec in REFSPECS:
        git.remotes.add_push(name, spec)
    git.config[f"remote.{name}.tagOpt"] = "--no-tags"  # tags travel by refspec, never auto-followed
    return RemoteInfo(name, url)


def remove_remote(repo: Repo, name: str) -> None:
    get_remote(repo, name)
    repo.git.remotes.delete(name)


def default_clone_directory(url: str) -> str:
    """The directory ``clone`` creates when none is given, as git names it (``host/team.git`` -> ``team``)."""
    tail = url.rstrip("/")
    if tail.endswith("/" + DIRNAME):
        tail = tail[: -len(DIRNAME) - 1]
    tail = re.split(r"[/:]", tail)[-1]
    for suffix in (".git", ".rewind"):
        if tail.endswith(suffix) and len(tail) > len(suffix):
            tail = tail[: -len(suffix)]
    if not tail or tail in (".", ".."):
        raise RemoteError(f"cannot name a directory after '{url}'", hint="give the directory: rewind clone URL DIR")
    return tail


# -- the operations --------------------------------------------------------------------


def push(
    repo: Repo,
    remote: str = DEFAULT_REMOTE,
    refs: Sequence[str] = (),
    *,
    force: bool = False,
    credentials: Credentials | None = None,
    progress: ProgressCallback | None = None,
    hook_timeout: float | None = None,
) -> TransferResult:
    """Send sessions to ``remote`` (a configured name, a URL or a path).

    Without ``refs`` every shared ref goes; with ``refs`` (anything
    :meth:`Repo.resolve` takes), each one's session: all its timelines and the
    tags and baselines pointing into it. The ``pre-push`` hook may veto
    (:class:`RemoteError`). Rejected refs do not raise: see
    :attr:`TransferResult.rejected`.
    """
    end = _endpoint(repo, remote, push=True)
    local = _local_refs(repo)
    selected = local if not refs else _session_refs(repo, local, refs)
    result = TransferResult(end.label, end.url)
    callbacks = _Callbacks(credentials, progress)
    with _network(end, callbacks):
        conn = repo.git.remotes.create_anonymous(end.url)
        _emit(progress, Progress(Phase.CONNECTING))
        conn.connect(callbacks=callbacks, direction=_direction("PUSH"))
        callbacks.connected = True
        theirs = _advertised(conn)
        _check_rewind_remote(end, theirs)
        # a remote tip never seen here may be ahead of ours (fine: skip it) or diverged (rejected,
        # or replaced with force): only its commits tell, so fetch them first (no local ref moves)
        _download_unknown(repo, end, selected, theirs, callbacks)
        updates = [_plan(repo, ref, source=oid, dest=theirs.get(ref), force=force, behind=_REMOTE_AHEAD)
                   for ref, oid in sorted(selected.items())]
        to_send = [u for u in updates if u.changed]
        if to_send:
            _run_pre_push(repo, end, to_send, hook_timeout)
            _emit(progress, Progress(Phase.COMPRESSING))
            specs = [f"{'+' if u.status is RefStatus.FORCED else ''}{u.new}:{u.ref}" for u in to_send]
            conn.push(specs, callbacks=callbacks, threads=0)
        callbacks.approve()
    verdicts = callbacks.server_verdicts
    for u in updates:
        if u.changed and verdicts.get(u.ref):
            u = RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, verdicts[u.ref])
        elif u.changed and u.ref not in verdicts:
            u = RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, "the server did not confirm the update")
        result.updates.append(u)
    result.objects, result.bytes = callbacks.sent_objects, callbacks.sent_bytes
    return result


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
    are left alone. Rejected refs do not raise: see :attr:`TransferResult.rejected`.
    """
    end = _endpoint(repo, remote, push=False)
    git = repo.git
    result = TransferResult(end.label, end.url)
    callbacks = _Callbacks(credentials, progress)
    with _network(end, callbacks), ExitStack() as leases:
        conn = git.remotes.create_anonymous(end.url)
        _emit(progress, Progress(Phase.CONNECTING))
        conn.connect(callbacks=callbacks, direction=_direction("FETCH"))
        callbacks.connected = True
        advertised = _advertised(conn)
        _check_rewind_remote(end, advertised)
        ours = _local_refs(repo)
        direct: list[RefUpdate] = []  # the new target is here already: just move the ref
        transfer: list[RefUpdate] = []  # objects to download first
        held: dict[str, bool] = {}
        for ref, oid in sorted(advertised.items()):
            if not ref.startswith(SHARED_PREFIXES):
                continue
            update = _plan(repo, ref, source=oid, dest=ours.get(ref), force=force, behind=_LOCAL_AHEAD)
            sid = _session_of(ref)
            if update.changed and update.old is not None and sid is not None:
                if sid not in held:  # a local recorder owns this session: leave it alone
                    held[sid] = leases.enter_context(repo.lease(sid))
                if not held[sid]:
                    update = RefUpdate(ref, update.old, oid, RefStatus.REJECTED, "being recorded here")
            (transfer if update.changed and oid not in git else direct).append(update)
        if transfer:
            conn.fetch(_fetch_specs(transfer, ours), callbacks=callbacks)
        updates = [_write_ref(repo, u) if u.changed else u for u in direct]
        updates += [_settle_transferred(repo, u) for u in transfer]
        updates = [_merge_notes(repo, u) if _diverged_notes(u) else u for u in updates]
        callbacks.approve()
    result.updates = sorted(updates, key=lambda u: u.ref)
    result.objects, result.bytes = callbacks.received_objects, callbacks.received_bytes
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


# -- planning ----------------------------------------------------------------------------


_REMOTE_AHEAD = "the remote has more; fetch to get it"
_LOCAL_AHEAD = "this side has more; push to share it"


def _plan(repo: Repo, ref: str, *, source: str, dest: str | None, force: bool, behind: str) -> RefUpdate:
    """The same rules both ways: copy ``source`` onto ``dest`` (None: absent)."""
    if dest is None:
        return RefUpdate(ref, None, source, RefStatus.NEW)
    if dest == source:
        return RefUpdate(ref, dest, source, RefStatus.UP_TO_DATE)
    if _prefix(ref) in (TAGS, BASELINES):
        if force:
            return RefUpdate(ref, dest, source, RefStatus.FORCED)
        return RefUpdate(ref, dest, source, RefStatus.REJECTED, "already exists")
    git = repo.git
    if source in git and dest in git:
        if _descends(repo, source, dest):
            return RefUpdate(ref, dest, source, RefStatus.FAST_FORWARD)
        if _descends(repo, dest, source):
            return RefUpdate(ref, dest, source, RefStatus.BEHIND, behind)
    elif dest in git:
        # fetch: the remote commit is not here yet; libgit2 takes it only if it fast-forwards
        return RefUpdate(ref, dest, source, RefStatus.FORCED if force else RefStatus.FAST_FORWARD)
    if force:
        return RefUpdate(ref, dest, source, RefStatus.FORCED)
    return RefUpdate(ref, dest, source, RefStatus.REJECTED, "non-fast-forward")


def _descends(repo: Repo, a: str, b: str) -> bool:
    try:
        return repo.git.descendant_of(pygit2.Oid(hex=a), pygit2.Oid(hex=b))
    except (pygit2.GitError, ValueError):  # not commits (a foreign tag object, say)
        return False


def _fetch_specs(transfer: list[RefUpdate], ours: dict[str, str]) -> list[str]:
    """Refspecs for the refs whose objects must be downloaded.

    A namespace with nothing local yet (a clone) goes as one glob: thousands
    of explicit refspecs would each be matched against every advertised ref.
    """
    specs: list[str] = []
    globbed: set[str] = set()
    for prefix in SHARED_PREFIXES:
        if not any(r.startswith(prefix) for r in ours) and any(u.ref.startswith(prefix) for u in transfer):
            specs.append(f"{prefix}*:{prefix}*")
            globbed.add(prefix)
    for u in transfer:
        if _prefix(u.ref) not in globbed:
            specs.append(f"{'+' if u.status is RefStatus.FORCED else ''}{u.ref}:{u.ref}")
    return specs


def _download_unknown(
    repo: Repo, end: _Endpoint, selected: Mapping[str, str], theirs: Mapping[str, str], callbacks: _Callbacks
) -> None:
    """Download the remote tips of ``selected`` history refs that are not here, without moving any local ref.

    They land under a scratch namespace that is deleted at once; the objects
    stay (unreachable, dropped by the next ``rewind gc``).
    """
    git = repo.git
    unknown = [r for r in selected if _prefix(r) in (SESSIONS, NOTES) and theirs.get(r) and theirs[r] not in git]
    if not unknown:
        return
    scratch = f"refs/rewind-scratch/{os.getpid()}/"
    conn = git.remotes.create_anonymous(end.url)
    try:
        conn.fetch([f"+{r}:{scratch}{r[len('refs/'):]}" for r in unknown], callbacks=callbacks)
    finally:
        for ref in list(git.references.iterator()):
            if ref.name.startswith(scratch):
                ref.delete()


def _settle_transferred(repo: Repo, u: RefUpdate) -> RefUpdate:
    """After the download: did the ref land? libgit2 skips a non-fast-forward silently."""
    now = repo.git.references.get(u.ref)
    got = str(now.target) if now is not None else None
    if got != u.new:
        return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, "non-fast-forward")
    if u.old is None:
        return u
    status = RefStatus.FAST_FORWARD if _descends(repo, u.new, u.old) else RefStatus.FORCED
    return RefUpdate(u.ref, u.old, u.new, status)


def _write_ref(repo: Repo, u: RefUpdate) -> RefUpdate:
    """Move a ref whose new target is already here (no download needed)."""
    git = repo.git
    try:
        if u.old is None:
            existing = git.references.get(u.ref)  # a glob download may have made it already
            if existing is not None and str(existing.target) == u.new:
                return u
        git.references.create(u.ref, pygit2.Oid(hex=u.new), force=u.old is not None)
    except (OSError, ValueError, pygit2.GitError) as exc:
        return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, f"could not update the local ref: {exc}")
    return u


def _diverged_notes(u: RefUpdate) -> bool:
    return u.ref.startswith(NOTES) and u.status is RefStatus.REJECTED and u.reason == "non-fast-forward"


def _merge_notes(repo: Repo, u: RefUpdate) -> RefUpdate:
    """Two people scored sessions: keep both sides' notes (ours win on the same object), as
    ``git notes merge -s ours`` would, in a merge commit both sides fast-forward to."""
    git = repo.git
    try:
        ours, theirs = git[u.old], git[u.new]
        merged = _flat_notes(theirs.tree)
        merged.update(_flat_notes(ours.tree))
        builder = git.TreeBuilder()
        for name, (oid, mode) in sorted(merged.items()):
            builder.insert(name, oid, mode)
        sig = repo.signature()
        commit = git.create_commit(u.ref, sig, sig, "Notes merged by 'rewind fetch'\n", builder.write(),
                                   [ours.id, theirs.id])  # compare-and-swap on our tip
    except (KeyError, ValueError, OSError, pygit2.GitError) as exc:
        return RefUpdate(u.ref, u.old, u.new, RefStatus.REJECTED, f"non-fast-forward; merging the notes failed: {exc}")
    return RefUpdate(u.ref, u.old, str(commit), RefStatus.MERGED)


def _flat_notes(tree: pygit2.Tree, prefix: str = "") -> dict[str, tuple[pygit2.Oid, int]]:
    """A notes tree as ``{annotated object hex: (note blob, mode)}``, fan-out directories (``ab/cdef...``) undone."""
    out: dict[str, tuple[pygit2.Oid, int]] = {}
    for entry in tree:
        if entry.type_str == "tree":
            out.update(_flat_notes(entry, prefix + entry.name))
        else:
            out[prefix + entry.name] = (entry.id, entry.filemode)
    return out


def _session_refs(repo: Repo, local: dict[str, str], specs: Sequence[str]) -> dict[str, str]:
    """The shared refs of the sessions ``specs`` name: their timelines, and the names pointing into them."""
    from rewind_vcs.store.index import session_tips

    tips = session_tips(repo)
    wanted: set[str] = {repo.resolve(spec).session_id for spec in specs}
    out: dict[str, str] = {}
    commits: set[str] = set()
    git = repo.git
    for sid in wanted:
        for timeline, tip in tips.get(sid, {}).items():
            out[f"{SESSIONS}{sid}/{timeline}"] = tip
            commits.update(str(c.id) for c in git.walk(tip))
    for ref, oid in local.items():
        if _prefix(ref) in (TAGS, BASELINES):
            target = _peel(repo, oid)
            if target in commits:
                out[ref] = oid
    return out


def _peel(repo: Repo, oid: str) -> str | None:
    try:
        return str(repo.git[oid].peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError):
        return None


def _local_refs(repo: Repo) -> dict[str, str]:
    return read_refs(repo.path, SHARED_PREFIXES)


def _prefix(ref: str) -> str | None:
    for p in SHARED_PREFIXES:
        if ref.startswith(p):
            return p
    return None


def _session_of(ref: str) -> str | None:
    parsed = parse_timeline_ref(ref)
    return parsed[0] if parsed else None


def _short(oid: str | None) -> str:
    return (oid or ZERO_OID)[:7]


# -- talking to the other side -----------------------------------------------------------


@dataclass(frozen=True)
class _Endpoint:
    name: str | None
    url: str  # what libgit2 is given

    @property
    def label(self) -> str:
        return self.name or self.url

    def describe(self) -> str:
        return f"remote '{self.name}' ({self.url})" if self.name else self.url


def _endpoint(repo: Repo, spec: str, *, push: bool) -> _Endpoint:
    """A configured remote's name, or a URL or path typed directly (as git accepts both)."""
    names = set(repo.git.remotes.names())
    if spec in names:
        r = repo.git.remotes[spec]
        url = (r.push_url or r.url) if push else r.url
        return _Endpoint(spec, _libgit2_url(url, spec))
    if _looks_like_url(spec):
        return _Endpoint(None, _libgit2_url(spec))
    return _Endpoint(get_remote(repo, spec).name, "")  # get_remote raises "unknown remote"


def _looks_like_url(spec: str) -> bool:
    return bool(_SCHEME_RE.match(spec) or _SCP_RE.match(spec)) or "/" in spec or Path(spec).exists()


def _is_plain_path(url: str) -> bool:
    return not _SCHEME_RE.match(url) and not (_SCP_RE.match(url) and not Path(url).exists())


def _libgit2_url(url: str, name: str | None = None) -> str:
    """Local paths: a project holding ``.rewind/`` means that ``.rewind``; a missing path fails clearly."""
    if url.startswith("file://"):
        path = Path(url[len("file://"):])
        if (path / DIRNAME).is_dir():
            return f"file://{path / DIRNAME}"
        if not path.exists():
            raise _no_such_directory(url, name)
        return url
    if not _is_plain_path(url):
        return url
    path = Path(os.path.abspath(Path(url).expanduser()))
    if (path / DIRNAME).is_dir():
        return str(path / DIRNAME)
    if not path.exists():
        raise _no_such_directory(url, name)
    return str(path)


def _no_such_directory(url: str, name: str | None) -> RemoteError:
    return RemoteError(f"cannot reach {_Endpoint(name, url).describe()}: no such directory",
                       hint="check the path" + (f" (rewind remote remove {name}, then add it again)" if name else ""))


def _direction(name: str) -> int:
    enum = getattr(pygit2.enums, "Direction", None)
    if enum is not None:
        return int(getattr(enum, name))
    return {"FETCH": 0, "PUSH": 1}[name]


def _advertised(conn: pygit2.Remote) -> dict[str, str]:
    """The refs the other side advertises (``HEAD`` and peeled ``^{}`` entries dropped)."""
    out: dict[str, str] = {}
    for head in conn.list_heads(connect=False):
        name = head.name or ""
        if name == "HEAD" or name.endswith("^{}"):
            continue
        out[name] = str(head.oid)
    return out


def _check_rewind_remote(end: _Endpoint, theirs: Mapping[str, str]) -> None:
    """An empty repository is fine; one with branches and no sessions is somebody's code."""
    foreign = sorted(r for r in theirs if not r.startswith(SHARED_PREFIXES))
    if foreign and not any(r.startswith(SESSIONS) for r in theirs):
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise RemoteError(
            f"{end.describe()} is not a rewind repository (it holds {foreign[0]}{more}, and no sessions)",
            hint="use an empty repository for sessions (e.g. git init --bare team-sessions.git)",
        )


def _emit(progress: ProgressCallback | None, p: Progress) -> None:
    if progress is not None:
        progress(p)


@contextmanager
def _network(end: _Endpoint, callbacks: _Callbacks) -> Iterator[None]:
    """Turn libgit2's failures into one line each: unreachable, authentication, anything else."""
    try:
        yield
    except RemoteError:
        callbacks.reject()
        raise
    except pygit2.AuthError as exc:
        callbacks.reject()
        raise _auth_error(end, str(exc)) from None
    except (pygit2.GitError, OSError) as exc:
        text = " ".join(str(exc).split())
        if re.search(r"authenticat|\b401\b|\b403\b|unauthori[sz]ed|permission denied \(publickey", text, re.I):
            callbacks.reject()
            raise _auth_error(end, text) from None
        if callbacks.connected:
            raise RemoteError(f"transfer with {end.describe()} failed: {text}",
                              hint="try again; 'rewind fsck' checks this repository") from None
        raise RemoteError(f"cannot reach {end.describe()}: {text}",
                          hint="check the URL, that the server is up, and the network") from None


def _auth_error(end: _Endpoint, detail: str) -> RemoteError:
    return RemoteError(
        f"authentication failed for {end.describe()} ({detail})",
        hint="set REWIND_GIT_TOKEN (https), load your key into ssh-agent (ssh), or configure a git credential helper",
    )


class _Callbacks(pygit2.RemoteCallbacks):
    """libgit2's callbacks: credentials, progress, and the server's verdict on each pushed ref."""

    def __init__(self, credentials: Credentials | None, progress: ProgressCallback | None) -> None:
        super().__init__()
        self.creds = credentials or Credentials()
        self.progress = progress
        self.tried: set[str] = set()
        self.helper_fill: dict[str, str] | None = None
        self.helper_url: str | None = None
        self.server_verdicts: dict[str, str | None] = {}
        self.sent_objects = self.sent_bytes = 0
        self.received_objects = self.received_bytes = 0
        self.connected = False

    # credentials: each way is tried once; running out is an authentication failure
    def credentials(self, url: str, username_from_url: str | None, allowed: CredentialType) -> Any:
        c = self.creds
        user = username_from_url or c.username
        if allowed & CredentialType.SSH_KEY:
            if c.ssh_agent and "agent" not in self.tried:
                self.tried.add("agent")
                return pygit2.KeypairFromAgent(user or "git")
            for key in c.ssh_keys:
                if f"key:{key}" not in self.tried:
                    self.tried.add(f"key:{key}")
                    return pygit2.Keypair(user or "git", str(key) + ".pub", str(key), c.ssh_passphrase)
        if allowed & CredentialType.USERPASS_PLAINTEXT:
            if c.token and "token" not in self.tried:
                self.tried.add("token")
                return pygit2.UserPass(user or "x-access-token", c.token)
            if c.credential_helper and "helper" not in self.tried:
                self.tried.add("helper")
                filled = _credential_helper("fill", url, user, c.helper_env)
                if filled and filled.get("password"):
                    self.helper_fill, self.helper_url = filled, url
                    return pygit2.UserPass(filled.get("username") or user or "", filled["password"])
        if allowed & CredentialType.USERNAME and "username" not in self.tried:
            self.tried.add("username")
            return pygit2.Username(user or "git")
        raise RemoteError(
            f"authentication failed for {url}" + (" (no credentials to offer)" if not self.tried else ""),
            hint="set REWIND_GIT_TOKEN (https), load your key into ssh-agent (ssh), "
            "or configure a git credential helper",
        )

    def approve(self) -> None:
        if self.helper_fill and self.helper_url:
            _credential_helper("approve", self.helper_url, None, self.creds.helper_env, self.helper_fill)

    def reject(self) -> None:
        if self.helper_fill and self.helper_url:
            _credential_helper("reject", self.helper_url, None, self.creds.helper_env, self.helper_fill)

    # progress
    def sideband_progress(self, text: str) -> None:
        if self.progress is not None:
            self.progress(Progress(Phase.COMPRESSING, message=text.strip()))

    def transfer_progress(self, stats: Any) -> None:
        self.received_objects, self.received_bytes = stats.received_objects, stats.received_bytes
        if self.progress is None:
            return
        if stats.received_objects < stats.total_objects or not stats.total_deltas:
            self.progress(Progress(Phase.RECEIVING, stats.received_objects, stats.total_objects,
                                   stats.received_bytes))
        else:
            self.progress(Progress(Phase.RESOLVING, stats.indexed_deltas, stats.total_deltas,
                                   stats.received_bytes))

    def push_transfer_progress(self, objects: int, total: int, nbytes: int) -> None:
        self.sent_objects, self.sent_bytes = objects, nbytes
        if self.progress is not None:
            self.progress(Progress(Phase.SENDING, objects, total, nbytes))

    # the server's verdict per ref: libgit2 does not raise on a refusal
    def push_update_reference(self, refname: str, message: str | None) -> None:
        self.server_verdicts[refname] = message


def _credential_helper(
    action: str, url: str, username: str | None, env: Mapping[str, str] | None,
    filled: Mapping[str, str] | None = None,
) -> dict[str, str] | None:
    """``git credential fill|approve|reject`` (the user's credential helpers, as git runs them)."""
    git_bin = shutil.which("git")
    if git_bin is None:
        return None
    lines = dict(filled) if filled else {"url": url}
    if username and "username" not in lines:
        lines["username"] = username
    text = "".join(f"{k}={v}\n" for k, v in lines.items()) + "\n"
    try:
        proc = subprocess.run([git_bin, "credential", action], input=text, capture_output=True, text=True,
                              env=dict(env) if env is not None else None, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if action != "fill" or proc.returncode != 0:
        return None
    out = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


# -- the pre-push hook -------------------------------------------------------------------


def _run_pre_push(repo: Repo, end: _Endpoint, updates: list[RefUpdate], timeout: float | None) -> None:
    """``.rewind/hooks/pre-push NAME URL`` with git's stdin lines; a non-zero exit vetoes the push.

    Lines are ``<local ref> <local oid> <remote ref> <remote oid>`` (the
    remote oid is 40 zeros for a ref the remote lacks). The hook runs in the
    directory holding ``.rewind/``; its output goes where rewind's does.
    """
    hook = repo.path / "hooks" / "pre-push"
    if not hook.is_file() or not os.access(hook, os.X_OK):
        return
    stdin = "".join(f"{u.ref} {u.new} {u.ref} {u.old or ZERO_OID}\n" for u in updates)
    try:
        proc = subprocess.run([str(hook), end.label, end.url], input=stdin.encode(), cwd=repo.workdir,
                              timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RemoteError(f"the pre-push hook {hook} failed to run: {exc}", hint="fix or remove it") from None
    if proc.returncode != 0:
        raise RemoteError(f"the pre-push hook refused the push to {end.describe()} (exit {proc.returncode})",
                          hint=f"nothing was pushed; see the hook's message, or remove {hook}")
