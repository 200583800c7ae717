"""``fsck``: read every session, timeline and record; run ``git fsck`` when git is installed.

It lists every problem it finds (a foreign commit under ``refs/sessions/``, a
newer-format record, a ref whose name is not UTF-8, a tag ``rewind tag``
would refuse, a stale lock) and never stops at the first: one damaged
session is one line of the report. Problem lines are printable text (ref
names and messages from the repository are escaped).
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewind_vcs.errors import RewindError
from rewind_vcs.store.refs import (
    SESSIONS,
    TAGS,
    is_session_id,
    printable,
    refs_with_unreadable_names,
)

if TYPE_CHECKING:
    from rewind_vcs.store.gitdir import GitDir as Repo
    from rewind_vcs.store.session import Session

log = logging.getLogger(__name__)
#: ``git fsck`` gets this long before fsck reports it as a problem instead of waiting.
GIT_FSCK_TIMEOUT = 600


@dataclass
class CheckReport:
    sessions: int = 0
    steps: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: str) -> None:
        self.problems.append(printable(problem, 400))


def read_session_fully(session: Session) -> dict[str, int]:
    """Parse every record and trailer of a session, as every reader will; returns steps per timeline.

    Raises what a reader would (FormatError and friends): ``fsck`` and the
    ``.rw`` import both use it, so what they accept every command can read.
    """
    session.info  # noqa: B018 - parse session.json
    session.summary()  # the listing's trailers
    steps: dict[str, int] = {}
    for timeline in session.timelines():
        for step in timeline.steps:
            step.info  # noqa: B018 - parse every record
            step.request  # noqa: B018
            step.response  # noqa: B018
        timeline.end  # noqa: B018
        timeline.status  # noqa: B018 - the tip's trailers
        steps[timeline.name] = len(timeline.steps)
    return steps


def check_repository(repo: Repo, *, run_git: bool = True) -> CheckReport:
    from rewind_vcs.store.index import session_tips
    from rewind_vcs.store.session import Session
    from rewind_vcs.store.tags import invalid_tag_names

    report = CheckReport()
    for name in refs_with_unreadable_names(repo.path, (SESSIONS, TAGS)):
        report.add(f"ref {name}: its name is not valid UTF-8 (remove it with git update-ref -d)")
    try:
        sids = sorted(session_tips(repo))
    except OSError as exc:
        report.add(f"cannot read the refs: {exc}")
        sids = []
    for sid in sids:
        report.sessions += 1
        if not is_session_id(sid):
            report.add(f"session {sid}: its name is not a rewind session id (12 hex digits)")
            continue
        try:
            report.steps += sum(read_session_fully(Session(repo, sid)).values())
        except RewindError as exc:
            report.add(f"session {sid}: {exc.message}")
        except (KeyError, ValueError) as exc:
            report.add(f"session {sid}: {type(exc).__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a damaged object store raises GitError and friends
            log.debug("fsck: session %s", sid, exc_info=True)
            report.add(f"session {sid}: {type(exc).__name__}: {exc}")
    try:
        for tag in invalid_tag_names(repo):
            report.add(f"tag {tag}: a name rewind does not accept (HEAD, latest, step-N or unsafe characters)")
    except Exception as exc:  # noqa: BLE001 - listing tags must not end the check
        report.add(f"cannot list tags: {type(exc).__name__}: {exc}")
    for lock in repo.path.glob("refs/**/*.lock"):
        report.add(f"stale lock file {lock.relative_to(repo.path)} (remove it if no rewind is running)")
    git = shutil.which("git")
    if run_git and git:
        _git_fsck(git, repo, report)
    return report


def _git_fsck(git: str, repo: Repo, report: CheckReport) -> None:
    try:
        proc = subprocess.run(
            [git, "--git-dir", str(repo.path), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            timeout=GIT_FSCK_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        report.add(f"git fsck could not run: {exc}")
        return
    out = (proc.stdout + proc.stderr).decode("utf-8", "replace")
    before = len(report.problems)
    for line in out.splitlines():
        if line.startswith(("error", "fatal", "missing", "broken", "bad")):
            report.add(f"git fsck: {line}")
    if proc.returncode != 0 and len(report.problems) == before:
        report.add(f"git fsck exited {proc.returncode}")
