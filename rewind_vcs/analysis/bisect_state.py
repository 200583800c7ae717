"""A bisect over runs, kept in ``.rewind/`` the way git keeps ``BISECT_*`` files in ``.git/``.

- ``BISECT_START``: where HEAD was before the bisect (a ref name, or a commit
  id when it was detached); its presence means a bisect is in progress.
- ``BISECT_TERMS``: the two words, ``bad`` then ``good``, one a line.
- ``BISECT_LOG``: what was done, as commands and ``#`` comments (``rewind
  bisect log`` prints it).
- ``BISECT_STATE.json``: the :class:`~rewind_vcs.analysis.history.Bisection`
  (history and verdicts) with the refs the user gave, as a versioned record.

None of these files are objects or refs, so they never travel with a push or
an export. Each candidate is checked out as HEAD (``refs/sessions/<id>/main``),
so ``rewind bisect good`` with no ref means "the session I just tested".
"""

from __future__ import annotations

import os
import shlex
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from rewind_vcs.analysis.history import (
    BisectError,
    Bisection,
    Outcome,
    OutcomeKind,
    Run,
    Verdict,
    history_between,
)
from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store.records import FORMAT_VERSION
from rewind_vcs.store.refs import timeline_ref

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

START_FILE = "BISECT_START"
TERMS_FILE = "BISECT_TERMS"
LOG_FILE = "BISECT_LOG"
STATE_FILE = "BISECT_STATE.json"
FILES = (START_FILE, TERMS_FILE, LOG_FILE, STATE_FILE)

NOT_BISECTING = "no bisect in progress"
START_HINT = "start one with 'rewind bisect start GOOD BAD'"


def is_active(repo: Repo) -> bool:
    return (repo.path / START_FILE).exists()


def _write(path: Path, data: bytes) -> None:
    """Replace a file atomically (a crash never leaves half a state)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _label(run: Any) -> str:
    return run.name or " ".join(run.command) or "-"


@dataclass
class BisectRun:
    """An on-disk bisect over sessions, loaded; every change is saved at once."""

    repo: Repo
    bisection: Bisection
    good_ref: str
    bad_ref: str
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    tests: int = 0  # verdicts given after the start

    # -- starting, loading, saving ------------------------------------------------------------

    @classmethod
    def start(cls, repo: Repo, good_ref: str, bad_ref: str, name: str | None = None) -> BisectRun:
        if is_active(repo):
            raise BisectError("a bisect is already in progress",
                              hint="see 'rewind bisect log', or end it with 'rewind bisect reset'")
        good, bad = repo.resolve(good_ref).session_id, repo.resolve(bad_ref).session_id
        summaries = repo.sessions()
        runs = [Run(s.id, s.started_at, s.name) for s in summaries]
        history = history_between(runs, good, bad, name)
        by_id = {s.id: s for s in summaries}
        run = cls(repo, Bisection.start(history), good_ref, bad_ref, name,
                  {sid: _label(by_id[sid]) for sid in history})
        _write(repo.path / START_FILE, (_current_head(repo) + "\n").encode())
        _write(repo.path / TERMS_FILE, b"bad\ngood\n")
        args = " ".join(shlex.quote(a) for a in (good_ref, bad_ref))
        lines = [f"rewind bisect start {args}" + (f" --name {shlex.quote(name)}" if name else ""),
                 f"# good: [{good}] {run.labels[good]}", f"# bad: [{bad}] {run.labels[bad]}",
                 f"# history: {len(history)} sessions"]
        _write(repo.path / LOG_FILE, ("\n".join(lines) + "\n").encode())
        run.save()
        return run

    @classmethod
    def load(cls, repo: Repo) -> BisectRun:
        if not is_active(repo):
            raise BisectError(NOT_BISECTING, hint=START_HINT)
        path = repo.path / STATE_FILE
        try:
            data = orjson.loads(path.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            raise FormatError(f"{path} is missing or damaged",
                              hint="end the bisect with 'rewind bisect reset'") from None
        version = data.get("format") if isinstance(data, dict) else None
        if isinstance(version, int) and version > FORMAT_VERSION:
            raise FormatTooNewError(str(path), version, FORMAT_VERSION)
        try:
            return cls(repo, Bisection.from_json(data["bisection"]), str(data["good_ref"]),
                       str(data["bad_ref"]), data.get("name"), dict(data.get("labels") or {}),
                       int(data.get("tests", 0)))
        except (KeyError, TypeError, ValueError):
            raise FormatError(f"{path} is damaged", hint="end the bisect with 'rewind bisect reset'") from None

    def save(self) -> None:
        record = {
            "format": FORMAT_VERSION,
            "good_ref": self.good_ref,
            "bad_ref": self.bad_ref,
            "name": self.name,
            "labels": self.labels,
            "tests": self.tests,
            "bisection": self.bisection.to_json(),
        }
        _write(self.repo.path / STATE_FILE,
               orjson.dumps(record, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")

    # -- verdicts ------------------------------------------------------------------------------

    def session_of(self, ref: str) -> str:
        """The session a ref names (``HEAD`` is the candidate just checked out)."""
        return self.repo.resolve(ref).session_id

    def mark(self, session_id: str, verdict: Verdict) -> Outcome:
        self.bisection.mark(session_id, verdict)
        self.tests += 1
        self.log(f"# {verdict.value}: [{session_id}] {self.label(session_id)}",
                 f"rewind bisect {verdict.value} {session_id}")
        self.save()
        return self.outcome()

    def outcome(self) -> Outcome:
        return self.bisection.outcome()

    def label(self, session_id: str) -> str:
        return self.labels.get(session_id, "-")

    def log(self, *lines: str) -> None:
        with open(self.repo.path / LOG_FILE, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))

    def log_outcome(self, outcome: Outcome) -> None:
        """Note the end in the log once, as git notes ``# first bad commit``."""
        if outcome.kind is OutcomeKind.FOUND:
            line = f"# first bad session: [{outcome.first_bad}] {self.label(outcome.first_bad or '')}"
        elif outcome.kind is OutcomeKind.ONLY_SKIPPED:
            line = "# only skipped sessions left to test; the first bad one is one of: " + " ".join(
                outcome.suspects)
        else:
            return
        if line not in read_log(self.repo).splitlines():
            self.log(line)

    # -- HEAD ------------------------------------------------------------------------------------

    def checkout(self, session_id: str) -> None:
        """Move HEAD onto the session's recorded timeline (what a test command looks at)."""
        self.repo.set_head(timeline_ref(session_id))


def read_log(repo: Repo) -> str:
    if not is_active(repo):
        raise BisectError(NOT_BISECTING, hint=START_HINT)
    try:
        return (repo.path / LOG_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def _current_head(repo: Repo) -> str:
    """HEAD as BISECT_START keeps it: the ref it points to, or the commit id when detached."""
    git = repo.git
    head = git.references.get("HEAD")
    if head is None:
        return ""
    target = head.target
    return target if isinstance(target, str) else str(target)


def reset(repo: Repo) -> str | None:
    """End the bisect: HEAD back where it was, the files removed. Returns the restored HEAD
    (a ref name or commit id), or None when no bisect was in progress."""
    path = repo.path / START_FILE
    if not path.exists():
        return None
    original = path.read_text(encoding="utf-8").strip()
    git = repo.git
    if original.startswith("refs/"):
        git.references.create("HEAD", original, force=True)
    elif original:
        import pygit2

        try:
            git.set_head(pygit2.Oid(hex=original))
        except (ValueError, KeyError, pygit2.GitError):
            raise BisectError(f"cannot restore HEAD to {original}: that commit is gone",
                              hint="remove .rewind/BISECT_START and check out a session") from None
    for name in FILES:
        (repo.path / name).unlink(missing_ok=True)
    return original
