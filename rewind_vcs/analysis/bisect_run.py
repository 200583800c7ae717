"""``rewind bisect run CMD``: test each candidate session with a command, as ``git bisect run`` does.

The loop is here, the process is not: :func:`run_bisect` takes a *runner*, a
callable given the command and the candidate session id that returns the exit
code. The CLI passes :func:`subprocess_runner` (the real command, with the
candidate in ``REWIND_BISECT_SESSION``); tests pass a function. Each test is
yielded as a :class:`Trial` for the caller to report.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rewind_vcs.analysis.history import BisectError, Outcome, OutcomeKind, Verdict, verdict_for_exit

if TYPE_CHECKING:
    from rewind_vcs.analysis.bisect_state import BisectRun

__all__ = ["Runner", "Trial", "run_bisect", "subprocess_runner", "SESSION_VARIABLE"]

#: the environment variable that tells the test command which session is the candidate
SESSION_VARIABLE = "REWIND_BISECT_SESSION"

#: ``runner(command, candidate_session_id) -> exit code`` (negative: killed by a signal)
Runner = Callable[[Sequence[str], str], int]


@dataclass(frozen=True)
class Trial:
    """One candidate tested: its exit code, the verdict that made, and where the bisect then stands."""

    candidate: str
    exit_code: int
    verdict: Verdict
    outcome: Outcome


def run_bisect(run: BisectRun, command: Sequence[str], runner: Runner) -> Iterator[Trial]:
    """Check out each candidate, run ``command`` on it, mark it by the exit code, until done.

    Exit 0 is good, 125 skip, 1-127 bad; 128 and above (or a signal) aborts with a
    :class:`BisectError`, the verdicts so far kept. The last trial's ``outcome`` is
    where the bisect ends (``FOUND``, or ``ONLY_SKIPPED``); no trial means it was
    already done.
    """
    shown = " ".join(command)
    outcome = run.outcome()
    while outcome.kind is OutcomeKind.NEXT:
        candidate = outcome.candidate
        if candidate is None:  # pragma: no cover - NEXT always names one
            raise BisectError("bisect has no candidate to test")
        run.checkout(candidate)
        code = runner(command, candidate)
        verdict = verdict_for_exit(code)
        if verdict is None:
            raise BisectError(f"bisect run stopped: '{shown}' exited with {code} on {candidate} "
                              "(128 or more, or a signal, aborts)",
                              hint="fix the command, then 'rewind bisect run' again; 'rewind bisect log' "
                                   "shows the verdicts so far")
        outcome = run.mark(candidate, verdict)
        yield Trial(candidate, code, verdict, outcome)


def subprocess_runner(environ: Mapping[str, str]) -> Runner:
    """A runner that starts the command as a process with ``environ`` plus the candidate's id
    (stdin closed, output inherited). A command that cannot start is a :class:`BisectError`."""

    def run(command: Sequence[str], candidate: str) -> int:
        env = {**environ, SESSION_VARIABLE: candidate}
        try:
            return subprocess.run(list(command), env=env, stdin=subprocess.DEVNULL).returncode
        except OSError as exc:
            raise BisectError(f"bisect run cannot start '{command[0]}': {exc.strerror or exc}",
                              hint="give a command that exists and is executable") from None

    return run
