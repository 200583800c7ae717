"""The read side: sessions, timelines and steps as typed objects over git commits.

Also the row of ``rewind log`` (:class:`SessionSummary`) as read from a
session's ``main`` tip alone; :mod:`rewind_vcs.store.index` lists and caches
those rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import orjson

from rewind_vcs.errors import FormatError, RefError
from rewind_vcs.store import format as fmt
from rewind_vcs.store.records import (
    EndInfo,
    Exchange,
    Request,
    Response,
    SessionInfo,
    SessionStatus,
    StepInfo,
)
from rewind_vcs.store.refs import (
    MAIN,
    SESSIONS,
    parse_timeline_ref,
    printable,
    read_refs,
    timeline_ref,
)
from rewind_vcs.store.trailers import parse_trailers, trailer_number

if TYPE_CHECKING:
    import pygit2

    from rewind_vcs.store.gitdir import GitDir as Repo


@dataclass(slots=True)
class SessionSummary:
    """One row of ``rewind log``."""

    id: str
    name: str | None
    started_at: float
    steps: int
    tokens: int
    cost_usd: float
    errors: int
    status: SessionStatus
    timelines: int
    command: list[str] = field(default_factory=list)
    exit_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "started_at": self.started_at,
            "steps": self.steps,
            "tokens": self.tokens,
            "cost_usd": round(self.cost_usd, 6),
            "errors": self.errors,
            "status": self.status._value_,  # not .value: enum's property costs 2 µs x 10,000 rows
            "timelines": self.timelines,
            "command": self.command,
            "exit_code": self.exit_code,
        }


def status_from_tip(repo: Repo, session_id: str, trailers: dict[str, str]) -> tuple[SessionStatus, int | None]:
    if trailers.get("Rewind-Kind") == "end":
        raw = trailers.get("Rewind-Exit", "none")
        code = None if raw == "none" else trailer_number(trailers, "Rewind-Exit", int)
        return (SessionStatus.OK if code in (0, None) else SessionStatus.FAILED), code
    if repo.is_leased(session_id):
        return SessionStatus.RECORDING, None
    return SessionStatus.INCOMPLETE, None


def tree_record(tree: pygit2.Tree, name: str, what: str, where: str) -> bytes:
    """The bytes of file ``name`` in a commit's tree; FormatError when it is missing or not a file."""
    try:
        entry = tree[name]
    except (KeyError, ValueError):
        raise FormatError(f"{where} has no {name}: it is not a rewind {what} commit",
                          hint="run 'rewind fsck'") from None
    data = getattr(entry, "data", None)
    if not isinstance(data, bytes):
        raise FormatError(f"{where}: {name} is not a file", hint="run 'rewind fsck'")
    return data


def row_from_tip(repo: Repo, sid: str, tip: str) -> dict[str, Any]:
    """The cacheable ``rewind log`` row of a session, from its ``main`` tip commit alone.

    Raises FormatError (never KeyError) when the tip is not a rewind commit.
    """
    import pygit2

    commit = repo.git.get(tip)
    if not isinstance(commit, pygit2.Commit):
        raise FormatError(f"session {sid}: its tip {tip[:12]} is not a commit in this repository",
                          hint="run 'rewind fsck'")
    trailers = parse_trailers(commit.message)
    data = tree_record(commit.tree, "session.json", "session", f"session {sid} (tip {tip[:12]})")
    info = fmt.session_from_record(fmt.loads(data, "session", f"of {sid}"))
    row: dict[str, Any] = {
        "tip": tip,
        "name": info.name,
        "started_at": info.started_at,
        "command": info.command,
        "steps": trailer_number(trailers, "Rewind-Step"),
        "tokens": trailer_number(trailers, "Rewind-Tokens"),
        "cost_usd": trailer_number(trailers, "Rewind-Cost", float),
        "errors": trailer_number(trailers, "Rewind-Errors"),
        "kind": trailers.get("Rewind-Kind", "session"),
        "exit": trailers.get("Rewind-Exit", "none"),
    }
    if row["kind"] == "end":  # a closed session's status never changes: compute it once, here
        status, code = status_from_tip(repo, sid, trailers)
        row["status"], row["exit_code"] = status.value, code
    return row


_STATUS = {s.value: s for s in SessionStatus}


def summary_from_row(repo: Repo, sid: str, row: dict[str, Any], timelines: int) -> SessionSummary:
    if "status" in row:
        status, code = _STATUS[row["status"]], row["exit_code"]
    else:  # still open: recording (a live lease) or incomplete
        status, code = status_from_tip(repo, sid, {"Rewind-Kind": row["kind"]})
    return SessionSummary(
        id=sid,
        name=row["name"],
        started_at=row["started_at"],
        steps=row["steps"],
        tokens=row["tokens"],
        cost_usd=row["cost_usd"],
        errors=row["errors"],
        status=status,
        timelines=timelines,
        command=row["command"],
        exit_code=code,
    )


def summarise(repo: Repo, sid: str, tips: dict[str, str]) -> SessionSummary:
    main = tips.get(MAIN) or next(iter(tips.values()))
    return summary_from_row(repo, sid, row_from_tip(repo, sid, main), len(tips))


class Step:
    """One recorded exchange: a commit whose tree holds ``step.json``, ``request/``, ``response/``."""

    def __init__(self, repo: Repo, commit_id: str) -> None:
        self.repo = repo
        self.commit_id = commit_id

    @cached_property
    def _commit(self) -> pygit2.Commit:
        return self.repo.commit(self.commit_id)

    @cached_property
    def info(self) -> StepInfo:
        tree = self._commit.tree
        if "step.json" not in tree:
            raise RefError(f"commit {self.commit_id[:12]} is not a step")
        where = f"in {self.commit_id[:12]}"
        return fmt.step_from_record(fmt.loads(tree_record(tree, "step.json", "step", where), "step", where))

    @property
    def n(self) -> int:
        return self.info.n

    @cached_property
    def request(self) -> Request:
        tree = self._commit.tree
        where = f"step {self.commit_id[:12]}"
        meta = fmt.loads(tree_record(tree, "request/meta.json", "step", where), "request", f"in {self.commit_id[:12]}")
        return fmt.request_from_record(meta, tree_record(tree, "request/body", "step", where))

    @cached_property
    def response(self) -> Response:
        tree = self._commit.tree
        where = f"step {self.commit_id[:12]}"
        meta = fmt.loads(tree_record(tree, "response/meta.json", "step", where), "response", f"in {self.commit_id[:12]}")
        return fmt.response_from_record(meta, tree_record(tree, "response/body", "step", where))

    @property
    def exchange(self) -> Exchange:
        info = self.info
        return Exchange(
            request=self.request,
            response=self.response,
            started_at=info.started_at,
            duration=info.latency_ms / 1000.0,
            span=info.span,
            ttfb=None if info.ttft_ms is None else info.ttft_ms / 1000.0,
        )

    def __repr__(self) -> str:
        return f"Step({self.commit_id[:12]}, n={self.n})"


def load_step(repo: Repo, commit_id: str) -> Step:
    step = Step(repo, commit_id)
    step.info  # noqa: B018 - raise now if the commit is not a step
    return step


class Timeline:
    """A branch of a session: ``refs/sessions/<id>/<name>``."""

    def __init__(self, session: Session, name: str, tip: str) -> None:
        self.session = session
        self.name = name
        self.tip = tip

    @property
    def repo(self) -> Repo:
        return self.session.repo

    @property
    def ref(self) -> str:
        return timeline_ref(self.session.id, self.name)

    @cached_property
    def commits(self) -> list[str]:
        """Commit ids from the root to the tip (first parents)."""
        out: list[str] = []
        commit = self.repo.commit(self.tip)
        while True:
            out.append(str(commit.id))
            if not commit.parent_ids:
                break
            commit = self.repo.commit(commit.parent_ids[0])
        out.reverse()
        return out

    @cached_property
    def _tip_trailers(self) -> dict[str, str]:
        return parse_trailers(self.repo.commit(self.tip).message)

    @property
    def finished(self) -> bool:
        return self._tip_trailers.get("Rewind-Kind") == "end"

    @cached_property
    def steps(self) -> list[Step]:
        ids = self.commits[1:]
        if self.finished:
            ids = ids[:-1]
        return [Step(self.repo, c) for c in ids]

    def step(self, n: int) -> Step:
        steps = self.steps
        if not 1 <= n <= len(steps):
            span = f"steps 1..{len(steps)}" if steps else "no steps"
            raise RefError(
                f"step-{n} is out of range: {self.session.id}/{self.name} has {span}",
                hint="see 'rewind log " + self.session.id + "'",
            )
        return steps[n - 1]

    @cached_property
    def end(self) -> EndInfo | None:
        if not self.finished:
            return None
        tree = self.repo.commit(self.tip).tree
        where = f"closing commit {self.tip[:12]}"
        stdout = tree_record(tree, "stdout", "closing", where) if "stdout" in tree else None
        record = fmt.loads(tree_record(tree, "end.json", "closing", where), "end", f"in {self.tip[:12]}")
        return fmt.end_from_record(record, stdout)

    @property
    def status(self) -> SessionStatus:
        return status_from_tip(self.repo, self.session.id, self._tip_trailers)[0]

    @cached_property
    def fork_point(self) -> int | None:
        """The step number this timeline forked from (None for ``main``)."""
        if self.name == MAIN:
            return None
        main = self.session.timeline(MAIN)
        main_ids = set(main.commits)
        shared = 0
        for cid in self.commits[1:]:
            if cid not in main_ids:
                break
            shared += 1
        return shared

    def __repr__(self) -> str:
        return f"Timeline({self.session.id}/{self.name})"


class Session:
    """A recorded run: a root commit and the timelines growing from it."""

    def __init__(self, repo: Repo, session_id: str) -> None:
        self.repo = repo
        self.id = session_id

    @cached_property
    def _tips(self) -> dict[str, str]:
        prefix = f"{SESSIONS}{self.id}/"
        tips: dict[str, str] = {}
        if self.id and "/" not in self.id:
            for name, oid in read_refs(self.repo.path, (prefix,)).items():
                parsed = parse_timeline_ref(name)
                if parsed and parsed[0] == self.id:
                    tips[parsed[1]] = oid
        if not tips:
            raise RefError(f"no session {printable(self.id, 40)}", hint="see 'rewind log'")
        return tips

    def timelines(self) -> list[Timeline]:
        names = sorted(self._tips, key=lambda n: (n != MAIN, n))
        return [Timeline(self, n, self._tips[n]) for n in names]

    def timeline(self, name: str = MAIN) -> Timeline:
        if name not in self._tips:
            known = ", ".join(sorted(self._tips))
            raise RefError(f"session {self.id} has no timeline '{name}' (it has: {known})")
        return Timeline(self, name, self._tips[name])

    @property
    def main(self) -> Timeline:
        return self.timeline(MAIN)

    @cached_property
    def root(self) -> str:
        return self.main.commits[0]

    @cached_property
    def info(self) -> SessionInfo:
        tree = self.repo.commit(self._tips.get(MAIN) or next(iter(self._tips.values()))).tree
        data = tree_record(tree, "session.json", "session", f"session {self.id}")
        return fmt.session_from_record(fmt.loads(data, "session", f"of {self.id}"))

    def summary(self) -> SessionSummary:
        return summarise(self.repo, self.id, self._tips)

    def __repr__(self) -> str:
        return f"Session({self.id})"


def decode_json(data: bytes) -> Any:
    """Body bytes as JSON, or None (used by ``show``)."""
    try:
        return orjson.loads(data)
    except (orjson.JSONDecodeError, TypeError):
        return None


__all__ = ["Session", "SessionSummary", "Step", "Timeline", "load_step", "FormatError"]
