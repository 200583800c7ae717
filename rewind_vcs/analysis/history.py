"""git's bisect over the history of runs, as a pure state machine.

The history is a list of session ids in recording order, from a good run to a
bad one. Verdicts (good, bad, skip) narrow the range ``(last good, first
bad]``; the next session to test halves it the way git halves a linear
history (:func:`_git_midpoint`: the session whose "reach", how many sessions
of the range it would settle, is about half); skipped sessions count in the
reach but are never chosen: the testable session nearest to half is. Nothing
here touches files, refs or processes: :mod:`rewind_vcs.analysis.bisect_state`
stores a :class:`Bisection`, and the CLI runs the test commands.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewind_vcs.errors import RewindError

#: git's exit code convention for ``bisect run``: 0 good, 125 skip, 1..127 bad, 128+ abort
EXIT_SKIP = 125
EXIT_ABORT_FROM = 128


class BisectError(RewindError):
    """A bisect command that cannot apply to the current state (one line, with what to do)."""


class Verdict(enum.StrEnum):
    GOOD = "good"
    BAD = "bad"
    SKIP = "skip"


class OutcomeKind(enum.StrEnum):
    NEXT = "next"  # test ``candidate`` next
    FOUND = "found"  # ``first_bad`` is the first bad session
    ONLY_SKIPPED = "only_skipped"  # the first bad one is among ``suspects``, all skipped but the bad


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    candidate: str | None = None
    first_bad: str | None = None
    last_good: str | None = None
    left: int = 0  # sessions left to test after this one (git's "revisions left")
    steps: int = 0  # roughly this many more tests
    suspects: tuple[str, ...] = ()

    @property
    def done(self) -> bool:
        return self.kind is not OutcomeKind.NEXT


def verdict_for_exit(code: int) -> Verdict | None:
    """git's ``bisect run`` convention; None means abort (128 and above, or killed by a signal)."""
    if code == 0:
        return Verdict.GOOD
    if code == EXIT_SKIP:
        return Verdict.SKIP
    if 0 < code < EXIT_ABORT_FROM:
        return Verdict.BAD
    return None


def estimate_steps(count: int) -> int:
    """How many more tests a range of ``count`` sessions needs, as git estimates it."""
    if count < 3:
        return 0
    n = count.bit_length() - 1
    extra = count - (1 << n)
    return n if (1 << n) < 3 * extra else n - 1


def _git_midpoint(lo: int, hi: int) -> int:
    """The session git's ``find_bisection`` picks in the linear range ``(lo, hi]``.

    Each session's weight is how many sessions of the range it reaches (itself
    included): 1 for the oldest, ``hi - lo`` for the bad one. git fills the weights
    oldest first and stops at the first one "halfway" (``2 * weight - total`` in
    -1..1, or within 0.1% on a long range), the oldest session excepted (its weight is
    set before the check); failing that, the largest ``min(weight, total - weight)``,
    the newest on a tie.
    """
    total = hi - lo
    for weight in range(2, total + 1):
        diff = 2 * weight - total
        if -1 <= diff <= 1 or abs(diff) < total // 1024:
            return lo + weight
    return max(range(lo + 1, hi + 1), key=lambda i: (min(i - lo, total - (i - lo)), i))


@dataclass
class Bisection:
    """The state of one bisect: the history and the verdicts given so far (in order)."""

    history: list[str]
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @classmethod
    def start(cls, history: Sequence[str]) -> Bisection:
        """Begin with the first session good and the last one bad."""
        if len(history) < 2:
            raise BisectError("a bisect needs a good and a bad session, and they are the same session",
                              hint="give an older good session and a newer bad one")
        if len(set(history)) != len(history):
            raise BisectError("the bisect history lists a session twice")
        b = cls(list(history))
        b.verdicts[history[0]] = Verdict.GOOD
        b.verdicts[history[-1]] = Verdict.BAD
        return b

    # -- verdicts -------------------------------------------------------------------------

    def index(self, session_id: str) -> int:
        try:
            return self.history.index(session_id)
        except ValueError:
            raise BisectError(
                f"session {session_id} is not in the bisect history "
                f"({self.history[0]} .. {self.history[-1]}, {len(self.history)} sessions)",
                hint="see 'rewind bisect log'",
            ) from None

    def bounds(self) -> tuple[int, int]:
        """(index of the newest good session, index of the oldest bad session)."""
        good = [i for i, s in enumerate(self.history) if self.verdicts.get(s) is Verdict.GOOD]
        bad = [i for i, s in enumerate(self.history) if self.verdicts.get(s) is Verdict.BAD]
        return max(good), min(bad)

    def mark(self, session_id: str, verdict: Verdict) -> None:
        """Record a verdict; refuses one that contradicts the others (a good run after a bad one)."""
        i = self.index(session_id)
        lo, hi = self.bounds()
        given = self.verdicts.get(session_id)
        if verdict is Verdict.SKIP and given in (Verdict.GOOD, Verdict.BAD):
            raise BisectError(f"session {session_id} is already marked {given.value}; it cannot be skipped",
                              hint="see 'rewind bisect log'")
        if verdict is Verdict.GOOD and i >= hi:
            raise BisectError(
                f"session {session_id} cannot be good: it was recorded after (or is) bad session "
                f"{self.history[hi]}",
                hint="a bisect looks for the first bad run after a good one; "
                     "'rewind bisect reset' and start again if a verdict was wrong",
            )
        if verdict is Verdict.BAD and i <= lo:
            raise BisectError(
                f"session {session_id} cannot be bad: it was recorded before (or is) good session "
                f"{self.history[lo]}",
                hint="'rewind bisect reset' and start again if a verdict was wrong",
            )
        self.verdicts.pop(session_id, None)
        self.verdicts[session_id] = verdict

    # -- the next step ----------------------------------------------------------------------

    def outcome(self) -> Outcome:
        lo, hi = self.bounds()
        last_good, bad = self.history[lo], self.history[hi]
        between = range(lo + 1, hi)
        candidates = [i for i in between if self.verdicts.get(self.history[i]) is not Verdict.SKIP]
        if not between:
            return Outcome(OutcomeKind.FOUND, first_bad=bad, last_good=last_good)
        if not candidates:
            return Outcome(OutcomeKind.ONLY_SKIPPED, first_bad=bad, last_good=last_good,
                           suspects=tuple(self.history[lo + 1 : hi + 1]))
        total = hi - lo  # the range (last good, first bad], as git counts it
        best = _git_midpoint(lo, hi)
        if self.verdicts.get(self.history[best]) is Verdict.SKIP or best == hi:
            # git then draws among the others; we take the one nearest to half, older on a tie
            best = max(candidates, key=lambda i: (min(i - lo, total - (i - lo)), -abs(i - best), -i))
        reach = best - lo
        return Outcome(OutcomeKind.NEXT, candidate=self.history[best], last_good=last_good,
                       first_bad=None, left=total - reach - 1, steps=estimate_steps(total))

    # -- storage ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"history": self.history, "verdicts": [[s, v.value] for s, v in self.verdicts.items()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Bisection:
        history = [str(s) for s in data["history"]]
        verdicts = {str(s): Verdict(v) for s, v in data["verdicts"]}
        b = cls(history, verdicts)
        b.bounds()  # raises on a state without a good and a bad verdict
        return b


@dataclass(frozen=True)
class Run:
    """What the history needs to know of a recorded session."""

    id: str
    started_at: float
    name: str | None = None


def history_between(runs: Sequence[Run], good: str, bad: str, name: str | None = None) -> list[str]:
    """Session ids from ``good`` to ``bad`` in recording order (both included).

    With ``name``, only the sessions of that name lie between them (the two
    ends are kept whatever their names).
    """
    ordered = sorted(runs, key=lambda r: (r.started_at, r.id))
    ids = [r.id for r in ordered]
    for sid in (good, bad):
        if sid not in ids:
            raise BisectError(f"session {sid} is not in this repository", hint="see 'rewind log'")
    gi, bi = ids.index(good), ids.index(bad)
    if gi == bi:
        raise BisectError(f"the good and the bad session are the same session ({good})",
                          hint="give an older good session and a newer bad one")
    if gi > bi:
        raise BisectError(
            f"good session {good} was recorded after bad session {bad}",
            hint="give the older, good session first: rewind bisect start GOOD BAD",
        )
    between = ordered[gi + 1 : bi]
    if name is not None:
        if not any(r.name == name for r in ordered):
            raise BisectError(f"no session is named '{name}'", hint="see 'rewind log' for session names")
        between = [r for r in between if r.name == name]
    return [good, *(r.id for r in between), bad]
