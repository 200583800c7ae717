"""Writing sessions: a root commit, one commit per step, a closing commit.

Every append is one commit plus an atomic compare-and-swap of the timeline
ref (``create_commit`` with the expected tip as first parent): if anything
else moved the ref, the append fails with :class:`ConflictError` and no step
is lost silently. A writer holds its session's lease (an ``flock``) for its
whole life, so two processes never write one timeline by accident, and the
holder may clear a stale ``<ref>.lock`` left by a killed writer.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from rewind_vcs.errors import ConflictError, RefError, RewindError
from rewind_vcs.store import format as fmt
from rewind_vcs.store import lease as _lease
from rewind_vcs.store.arrivals import Origin, note_arrivals
from rewind_vcs.store.records import EndInfo, Exchange, SessionInfo, StepInfo, StepStatus
from rewind_vcs.store.redact import (
    redact_argv,
    redact_body,
    redact_exchange,
    redact_message,
    redact_output,
)
from rewind_vcs.store.refs import (
    ID_LENGTH,
    MAIN,
    parse_timeline_ref,
    timeline_ref,
    valid_timeline_name,
)
from rewind_vcs.store.trailers import message_with_trailers, parse_trailers, trailer_number

if TYPE_CHECKING:
    import pygit2

    from rewind_vcs.store.gitdir import GitDir as Repo

_LOCK_RETRY_SECONDS = 5.0
BLOB = 0o100644
TREE = 0o040000


class Lease:
    """The per-session writer lease held while writing (:mod:`rewind_vcs.store.lease`), or ConflictError."""

    def __init__(self, repo: Repo, session_id: str) -> None:
        held = _lease.Lease.acquire(repo.path, session_id)
        if held is None:
            raise ConflictError(
                f"session {session_id} is being written by another rewind process",
                hint="wait for it to finish, or record a new session",
            )
        self._held = held

    def release(self) -> None:
        self._held.release()


_R = TypeVar("_R")


def _retry_locked(fn: Callable[..., _R], *args: Any) -> _R:
    """Call ``fn``; retry while libgit2 reports a ref lock held by another process."""
    deadline = time.monotonic() + _LOCK_RETRY_SECONDS
    delay = 0.002
    while True:
        try:
            return fn(*args)
        except OSError as exc:
            if "lock" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


class SessionWriter:
    """Appends steps to one timeline of one session."""

    def __init__(
        self,
        repo: Repo,
        session_id: str,
        timeline: str,
        tip: str,
        session_blob: pygit2.Oid,
        steps: int,
        totals: tuple[int, float, int],
        lease: Lease,
    ) -> None:
        self.repo = repo
        self.id = session_id
        self.timeline = timeline
        self.tip = tip
        self.steps = steps
        self._session_blob = session_blob
        self._tokens, self._cost, self._errors = totals
        self._lease = lease
        self._redact = repo.config_get_all("rewind.redact")
        self.finished = False

    @property
    def ref(self) -> str:
        return timeline_ref(self.id, self.timeline)

    # -- opening ---------------------------------------------------------------

    @classmethod
    def create(cls, repo: Repo, info: SessionInfo) -> SessionWriter:
        """Write a session's root commit and its ``main`` ref (create-if-absent)."""
        from rewind_vcs import __version__

        git = repo.git
        if not info.started_at:
            info = replace(info, started_at=time.time())
        if not info.rewind_version:
            info = replace(info, rewind_version=__version__)
        if not info.nonce:
            info = replace(info, nonce=secrets.token_hex(8))
        extra = repo.config_get_all("rewind.redact")
        info = replace(info, command=redact_argv(info.command), cwd=redact_message(info.cwd, extra),
                       name=redact_message(info.name, extra) if info.name else info.name)
        blob = git.create_blob(redact_body(fmt.dumps(fmt.session_to_record(info)), extra)[0])
        tb = git.TreeBuilder()
        tb.insert("session.json", blob, BLOB)
        tree = tb.write()
        label = info.name or " ".join(info.command)[:60] or "session"
        msg = message_with_trailers(f"session: {redact_message(label, extra)}", {"Rewind-Kind": "session"})
        sig = repo.signature(info.started_at)
        root = git.create_commit(None, sig, sig, msg, tree, [])
        sid = str(root)[:ID_LENGTH]
        lease = Lease(repo, sid)
        try:
            _retry_locked(git.references.create, timeline_ref(sid), root)
        except (ValueError, OSError) as exc:
            lease.release()
            raise ConflictError(f"could not create session {sid}: {exc}") from None
        note_arrivals(repo.path, [sid], Origin.LOCAL)
        return cls(repo, sid, MAIN, str(root), blob, 0, (0, 0.0, 0), lease)

    @classmethod
    def resume(cls, repo: Repo, session_id: str, timeline: str = MAIN) -> SessionWriter:
        """Continue writing an existing timeline (recovery of a crashed recording)."""
        lease = Lease(repo, session_id)
        try:
            ref = timeline_ref(session_id, timeline)
            _clear_stale_lock(repo, ref)
            tip = repo.git.references.get(ref)
            if tip is None:
                raise RefError(f"no timeline {session_id}/{timeline}")
            commit = repo.commit(tip.target)
            return cls._from_commit(repo, session_id, timeline, commit, lease)
        except BaseException:
            lease.release()
            raise

    @classmethod
    def fork(cls, repo: Repo, session_id: str, at_commit: str, timeline: str | None = None) -> SessionWriter:
        """Start a new timeline whose first new commit's parent is ``at_commit``.

        Nothing is copied: the timeline ref points at the fork point until the
        first live step lands. ``timeline`` defaults to the next free ``fork-N``.
        """
        lease = Lease(repo, session_id)
        try:
            git = repo.git
            commit = repo.commit(at_commit)
            existing = {
                parsed[1]
                for n in git.references
                if (parsed := parse_timeline_ref(n)) is not None and parsed[0] == session_id
            }
            if timeline is None:
                k = 1
                while f"fork-{k}" in existing:
                    k += 1
                timeline = f"fork-{k}"
            elif not valid_timeline_name(timeline):
                raise RefError(
                    f"'{timeline}' is not a valid timeline name",
                    hint="use letters, digits, '.', '_' and '-'",
                )
            elif timeline in existing:
                raise RefError(
                    f"timeline {session_id}/{timeline} already exists",
                    hint="choose another --timeline name",
                )
            try:
                _retry_locked(git.references.create, timeline_ref(session_id, timeline), commit.id)
            except ValueError:
                raise ConflictError(f"timeline {session_id}/{timeline} was just created by someone else") from None
            return cls._from_commit(repo, session_id, timeline, commit, lease)
        except BaseException:
            lease.release()
            raise

    @classmethod
    def _from_commit(
        cls, repo: Repo, sid: str, timeline: str, commit: pygit2.Commit, lease: Lease
    ) -> SessionWriter:
        tree = commit.tree
        trailers = parse_trailers(commit.message)
        if trailers.get("Rewind-Kind") == "end":
            raise RefError(
                f"timeline {sid}/{timeline} is already finished",
                hint="fork it instead (rewind checkout ...@step-N, then rewind replay)",
            )
        steps = trailer_number(trailers, "Rewind-Step")
        totals = (
            trailer_number(trailers, "Rewind-Tokens"),
            trailer_number(trailers, "Rewind-Cost", float),
            trailer_number(trailers, "Rewind-Errors"),
        )
        return cls(repo, sid, timeline, str(commit.id), tree["session.json"].id, steps, totals, lease)

    # -- writing -----------------------------------------------------------------

    def append(self, exchange: Exchange, info: StepInfo, *, response_body_file: os.PathLike[str] | None = None) -> str:
        """Commit one exchange as the next step; returns the commit id (hex).

        ``info.n`` and ``info.session`` are set here (steps are numbered in the
        order they are appended, i.e. the order calls complete).
        ``response_body_file``, when given, is the response body (streamed from
        that file into git, never loaded; ``exchange.response.body`` is ignored).
        """
        self._check_open()
        git = self.repo.git
        n = self.steps + 1
        info = replace(info, n=n, session=self.id)
        raw_path = exchange.request.path
        exchange = redact_exchange(exchange, self._redact)  # again: a pre-step hook may have edited it
        req, resp = exchange.request, exchange.response
        if req.path != raw_path and raw_path in info.summary:  # a summary quoting the raw URL
            info = replace(info, summary=info.summary.replace(raw_path, req.path))
        info = replace(info, summary=redact_message(info.summary, self._redact))
        rq = fmt.request_meta(req.method, req.scheme, req.host, req.path, req.headers)
        rs = fmt.response_meta(resp.status, resp.reason, resp.headers, resp.chunks, resp.error, resp.error_detail)
        req_tree = self._subtree({"meta.json": fmt.dumps(rq), "body": req.body})
        resp_body = git.create_blob_fromdisk(os.fspath(response_body_file)) if response_body_file else resp.body
        resp_tree = self._subtree({"meta.json": fmt.dumps(rs), "body": resp_body})
        tb = git.TreeBuilder()
        tb.insert("session.json", self._session_blob, BLOB)
        step_record = redact_body(fmt.dumps(fmt.step_to_record(info)), self._redact)[0]
        tb.insert("step.json", git.create_blob(step_record), BLOB)
        tb.insert("request", req_tree, TREE)
        tb.insert("response", resp_tree, TREE)
        tree = tb.write()
        tokens = self._tokens + info.usage.total
        cost = self._cost + (info.cost_usd or 0.0)
        errors = self._errors + (info.status == StepStatus.ERROR)
        subject = f"step {n}: {info.summary or info.endpoint or req.path}"[:200].replace("\n", " ")
        msg = message_with_trailers(
            subject,
            {
                "Rewind-Kind": "step",
                "Rewind-Session": self.id,
                "Rewind-Step": n,
                "Rewind-Tokens": tokens,
                "Rewind-Cost": f"{cost:.6f}",
                "Rewind-Errors": errors,
            },
        )
        sig = self.repo.signature(info.started_at or exchange.started_at)
        oid = self._commit(msg, sig, tree)
        self.steps, self._tokens, self._cost, self._errors = n, tokens, cost, errors
        return oid

    def finish(self, end: EndInfo | None = None, *, pack: bool = True) -> str:
        """Write the closing commit (exit code, output digest), release the lease, pack."""
        self._check_open()
        git = self.repo.git
        end = end or EndInfo()
        code = None if end.exit_code is None else int(end.exit_code)
        end = replace(end, exit_code=code, steps=self.steps, ended_at=end.ended_at or time.time())
        tb = git.TreeBuilder()
        tb.insert("session.json", self._session_blob, BLOB)
        tb.insert("end.json", git.create_blob(redact_body(fmt.dumps(fmt.end_to_record(end)), self._redact)[0]), BLOB)
        if end.stdout is not None:
            tb.insert("stdout", git.create_blob(redact_output(end.stdout, self._redact)), BLOB)
        exit_text = "none" if end.exit_code is None else str(end.exit_code)
        msg = message_with_trailers(
            f"end: exit {exit_text} after {self.steps} steps",
            {
                "Rewind-Kind": "end",
                "Rewind-Session": self.id,
                "Rewind-Step": self.steps,
                "Rewind-Tokens": self._tokens,
                "Rewind-Cost": f"{self._cost:.6f}",
                "Rewind-Errors": self._errors,
                "Rewind-Exit": exit_text,
            },
        )
        oid = self._commit(msg, self.repo.signature(end.ended_at), tb.write())
        self.finished = True
        self.close()
        if pack:
            from rewind_vcs.store.pack import pack_timeline

            pack_timeline(self.repo, self.id, self.timeline)
        return oid

    def close(self) -> None:
        """Release the lease without a closing commit (the session reads as incomplete)."""
        self._lease.release()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers -------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.finished:
            raise RewindError(f"session {self.id}/{self.timeline} is already finished")

    def _subtree(self, files: dict[str, bytes | pygit2.Oid]) -> pygit2.Oid:
        git = self.repo.git
        tb = git.TreeBuilder()
        for name, data in files.items():
            oid = data if not isinstance(data, bytes | bytearray | memoryview) else git.create_blob(bytes(data))
            tb.insert(name, oid, BLOB)
        return tb.write()

    def _commit(self, msg: str, sig: pygit2.Signature, tree: pygit2.Oid) -> str:
        git = self.repo.git
        try:
            oid = _retry_locked(git.create_commit, self.ref, sig, sig, msg, tree, [self.tip])
        except Exception as exc:  # libgit2 reports a moved ref as GitError/ValueError
            if isinstance(exc, OSError) and "lock" in str(exc):
                raise ConflictError(f"timeline {self.id}/{self.timeline} stayed locked: {exc}") from None
            ref = git.references.get(self.ref)
            now = str(ref.target) if ref is not None else None
            if now != self.tip:
                raise ConflictError(
                    f"timeline {self.id}/{self.timeline} moved under this writer "
                    f"(expected {self.tip[:12]}, found {(now or 'nothing')[:12]}); the step was not written",
                    hint="record it on a new timeline",
                ) from None
            raise
        self.tip = str(oid)
        return self.tip


def _clear_stale_lock(repo: Repo, ref: str) -> None:
    """Remove ``<ref>.lock`` left by a killed writer: only called while holding the lease."""
    lock = repo.path / f"{ref}.lock"
    try:
        lock.unlink()
    except FileNotFoundError:
        pass
