"""``rewind push``: send sessions to a remote, after the ``pre-push`` hook agrees.

Without refs every shared ref goes (``refs/sessions``, ``refs/tags``,
``refs/baselines``, ``refs/notes``); with refs, each one's session. libgit2
does not raise when a server refuses a ref, so the server's verdict is read
per ref (``push_update_reference``).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence

import pygit2

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.refs import BASELINES, NOTES, SESSIONS, TAGS, read_refs
from rewind_vcs.store.repo import Repo
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
from rewind_vcs.transfer.incoming import SHARED_PREFIXES
from rewind_vcs.transfer.refupdate import (
    REMOTE_AHEAD,
    ZERO_OID,
    RefStatus,
    RefUpdate,
    TransferResult,
    plan,
    prefix,
)
from rewind_vcs.transfer.remotes import DEFAULT_REMOTE, Endpoint, endpoint


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
    end = endpoint(repo, remote, push=True)
    local = _local_refs(repo)
    selected = local if not refs else _session_refs(repo, local, refs)
    result = TransferResult(end.label, end.url)
    callbacks = Callbacks(credentials, progress)
    with network(end, callbacks):
        conn = repo.git.remotes.create_anonymous(end.url)
        emit(progress, Progress(Phase.CONNECTING))
        conn.connect(callbacks=callbacks, direction=direction("PUSH"))
        callbacks.connected = True
        theirs = advertised(conn)
        check_rewind_remote(end, theirs)
        # a remote tip never seen here may be ahead of ours (fine: skip it) or diverged (rejected,
        # or replaced with force): only its commits tell, so fetch them first (no local ref moves)
        _download_unknown(repo, end, selected, theirs, callbacks)
        updates = [plan(repo, ref, source=oid, dest=theirs.get(ref), force=force, behind=REMOTE_AHEAD)
                   for ref, oid in sorted(selected.items())]
        to_send = [u for u in updates if u.changed]
        if to_send:
            _run_pre_push(repo, end, to_send, hook_timeout)
            emit(progress, Progress(Phase.COMPRESSING))
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



def _download_unknown(
    repo: Repo, end: Endpoint, selected: Mapping[str, str], theirs: Mapping[str, str], callbacks: Callbacks
) -> None:
    """Download the remote tips of ``selected`` history refs that are not here, without moving any local ref.

    They land under a scratch namespace that is deleted at once; the objects
    stay (unreachable, dropped by the next ``rewind gc``).
    """
    git = repo.git
    unknown = [r for r in selected if prefix(r) in (SESSIONS, NOTES) and theirs.get(r) and theirs[r] not in git]
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
        if prefix(ref) in (TAGS, BASELINES):
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



def _run_pre_push(repo: Repo, end: Endpoint, updates: list[RefUpdate], timeout: float | None) -> None:
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
