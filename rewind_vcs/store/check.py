"""``fsck``: read every session, timeline and record; run ``git fsck`` when git is installed."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rewind_vcs.errors import RewindError

if TYPE_CHECKING:
    from rewind_vcs.store.gitdir import GitDir as Repo
    from rewind_vcs.store.session import Session


@dataclass
class CheckReport:
    sessions: int = 0
    steps: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


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

    report = CheckReport()
    for sid in sorted(session_tips(repo)):
        report.sessions += 1
        try:
            report.steps += sum(read_session_fully(Session(repo, sid)).values())
        except (RewindError, KeyError, ValueError) as exc:
            report.problems.append(f"session {sid}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a damaged object store raises GitError and friends
            report.problems.append(f"session {sid}: {type(exc).__name__}: {exc}")
    for lock in repo.path.glob("refs/**/*.lock"):
        report.problems.append(f"stale lock file {lock.relative_to(repo.path)} (remove it if no rewind is running)")
    git = shutil.which("git")
    if run_git and git:
        proc = subprocess.run(
            [git, "--git-dir", str(repo.path), "fsck", "--strict", "--no-dangling"],
            capture_output=True,
            text=True,
        )
        for line in (proc.stdout + proc.stderr).splitlines():
            if line.startswith(("error", "fatal", "missing", "broken", "bad")):
                report.problems.append(f"git fsck: {line}")
        if proc.returncode != 0 and not report.problems:
            report.problems.append(f"git fsck exited {proc.returncode}")
    return report
