"""Comparing runs: ``diff``, and ``bisect`` (two sessions, or git-style over the history of runs).

``rewind bisect GOOD BAD`` finds the first step at which BAD departs from
GOOD; ``rewind bisect start GOOD BAD`` then ``good`` / ``bad`` / ``skip`` /
``run`` / ``log`` / ``reset`` bisect the sessions recorded between them, as git
bisects commits. The logic lives in ``rewind_vcs.analysis`` (the ``bisect run``
loop in :mod:`rewind_vcs.analysis.bisect_run`); this module parses and prints,
every line made safe by :func:`rewind_vcs.cli.common.write_lines` (the lines
quote recorded prompts and outputs).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import typer

from rewind_vcs.cli.common import info, open_repo, print_json
from rewind_vcs.cli.common import write_lines as _write
from rewind_vcs.cli.helpfmt import WrappingGroup
from rewind_vcs.cli.safe import safe_text
from rewind_vcs.cli.settings import current as settings

if TYPE_CHECKING:
    from rewind_vcs.analysis.bisect_state import BisectRun
    from rewind_vcs.analysis.history import Outcome
    from rewind_vcs.store.repo import Repo

#: the hidden command behind ``rewind bisect GOOD BAD``
_COMPARE = "compare"
_MARKS = ("good", "bad", "skip")


def register(app: typer.Typer) -> None:
    app.command("diff")(diff)
    app.add_typer(bisect_app, name="bisect")


# --- diff ------------------------------------------------------------------------------------------


def diff(
    a: str = typer.Argument(..., metavar="A", help="A session, timeline (id/timeline) or step "
                            "(ref@step-N; a step ref compares that one step)."),
    b: str = typer.Argument(..., metavar="B", help="What to compare it with."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (identical, counts, steps)."),
    exit_code: bool = typer.Option(False, "--exit-code", help="Exit 1 when they differ, like git diff."),
) -> None:
    """Step-aligned structural diff of two runs: requests and responses, volatile data ignored."""
    from rewind_vcs.analysis.diff import diff_refs

    result = diff_refs(open_repo(), a, b)
    if as_json:
        print_json(result.to_json())
    else:
        from rewind_vcs.analysis.render import diff_lines

        _write(diff_lines(result))
    if exit_code and not result.identical:
        raise typer.Exit(1)


# --- bisect: the group -------------------------------------------------------------------------------


def _local_repo() -> Repo | None:
    """The repository here, or None (the command itself will then say what is wrong)."""
    from rewind_vcs.errors import RewindError
    from rewind_vcs.store.repo import Repo

    try:
        override = settings().rewind_dir
        return Repo.open(override) if override else Repo.find(".")
    except RewindError:
        return None


def _two_session_form(word: str) -> bool:
    """``rewind bisect good bad``: with no bisect in progress and ``good`` naming a run, the
    words are two refs (as in the demo's tags), not a verdict."""
    from rewind_vcs.analysis.bisect_state import is_active
    from rewind_vcs.errors import RewindError

    repo = _local_repo()
    if repo is None or is_active(repo):
        return False
    try:
        repo.resolve(word)
    except RewindError:
        return False
    return True


class BisectGroup(WrappingGroup):
    """``rewind bisect GOOD BAD`` beside the subcommands: two refs that are not a subcommand (or
    ``good bad`` when no bisect is in progress, the demo's tags) mean the two-session bisect."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        words = [a for a in args if not a.startswith("-")]
        if words and args[0] not in ctx.help_option_names:
            first = words[0]
            if first not in self.commands or (
                first in _MARKS and len(words) == 2 and _two_session_form(first)
            ):
                args = [_COMPARE, *args]
        return super().parse_args(ctx, args)


bisect_app = typer.Typer(
    cls=BisectGroup,
    subcommand_metavar="GOOD BAD | COMMAND [ARGS]...",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Find where a run went wrong: the first step at which one run departs from another, or the "
    "first bad session in a history of runs.\n\n"
    "'rewind bisect GOOD BAD [--json]' finds the first step at which BAD "
    "departs from GOOD and its likely cause (model, params, system_prompt, user_input, tools, "
    "tool_result, upstream_error, nondeterminism). 'rewind bisect start GOOD BAD' bisects the "
    "sessions recorded between them, as git bisects commits.",
)


@bisect_app.command(_COMPARE, hidden=True)
def compare(
    good: str = typer.Argument(..., metavar="GOOD", help="The run that went right."),
    bad: str = typer.Argument(..., metavar="BAD", help="The run that went wrong."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (first_divergent_step, causes, evidence)."),
) -> None:
    """The first step at which BAD departs from GOOD, and its likely cause."""
    from rewind_vcs.analysis.bisect import bisect_refs

    result = bisect_refs(open_repo(), good, bad)
    if as_json:
        print_json(result.to_json())
        return
    from rewind_vcs.analysis.render import divergence_lines

    _write(divergence_lines(result))


# --- bisect over sessions ------------------------------------------------------------------------------


def _report(run: BisectRun, outcome: Outcome, *, as_json: bool = False, announce: bool = True) -> None:
    """Say where the bisect stands; check out the next candidate, or explain the first bad session."""
    from rewind_vcs.analysis.history import OutcomeKind
    from rewind_vcs.analysis.render import divergence_lines, outcome_lines

    if outcome.kind is OutcomeKind.NEXT:
        run.checkout(outcome.candidate)  # type: ignore[arg-type]
    run.log_outcome(outcome)
    divergence = None
    if outcome.kind is OutcomeKind.FOUND:
        from rewind_vcs.analysis.bisect import bisect_refs

        run.checkout(outcome.first_bad)  # type: ignore[arg-type]
        divergence = bisect_refs(run.repo, outcome.last_good, outcome.first_bad)  # type: ignore[arg-type]
    if as_json:
        print_json({
            "status": outcome.kind.value,
            "candidate": outcome.candidate,
            "first_bad": outcome.first_bad,
            "last_good": outcome.last_good,
            "left": outcome.left,
            "steps": outcome.steps,
            "suspects": list(outcome.suspects),
            "tests": run.tests,
            "divergence": divergence.to_json() if divergence else None,
        })
        return
    _write(outcome_lines(outcome, run.labels))
    if divergence is not None:
        _write(divergence_lines(divergence))
    elif outcome.kind is OutcomeKind.NEXT and announce:
        info(f"HEAD is now on {outcome.candidate}/main: test it, then 'rewind bisect good' or "
             "'rewind bisect bad' (or 'rewind bisect skip')")


@bisect_app.command("start")
def start(
    refs: list[str] = typer.Argument(None, metavar="GOOD BAD", help="An older run that went right, then "
                                     "a newer one that went wrong."),
    good: str = typer.Option(None, "--good", help="The good run (instead of the first argument)."),
    bad: str = typer.Option(None, "--bad", help="The bad run (instead of the second argument)."),
    name: str = typer.Option(None, "--name", help="Only bisect sessions with this name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Start bisecting the sessions recorded from GOOD to BAD (in recording order)."""
    from rewind_vcs.analysis.bisect_state import BisectRun
    from rewind_vcs.analysis.history import BisectError

    rest = list(refs or [])
    good_ref: str | None = good or (rest.pop(0) if rest else None)
    bad_ref: str | None = bad or (rest.pop(0) if rest else None)
    if rest:
        raise BisectError(f"too many refs: {' '.join(rest)}", hint="rewind bisect start GOOD BAD")
    if good_ref is None or bad_ref is None:
        missing = "a good and a bad run" if good_ref is None and bad_ref is None else (
            "a good run" if good_ref is None else "a bad run")
        raise BisectError(f"bisect start needs {missing}", hint="rewind bisect start GOOD BAD")
    run = BisectRun.start(open_repo(), good_ref, bad_ref, name)
    info(f"rewind: bisecting {len(run.bisection.history)} sessions from {run.bisection.history[0]} (good) "
         f"to {run.bisection.history[-1]} (bad)")
    _report(run, run.outcome(), as_json=as_json)


def _mark(verdict_name: str, refs: list[str] | None, as_json: bool) -> None:
    from rewind_vcs.analysis.bisect_state import BisectRun
    from rewind_vcs.analysis.history import Verdict

    run = BisectRun.load(open_repo())
    verdict = Verdict(verdict_name)
    outcome = run.outcome()
    for ref in refs or ["HEAD"]:
        outcome = run.mark(run.session_of(ref), verdict)
    _report(run, outcome, as_json=as_json)


_REF_HELP = "Sessions to mark (default: HEAD, the candidate checked out)."
_REF_META = "[REF]..."


@bisect_app.command("good")
def good_cmd(refs: list[str] = typer.Argument(None, metavar=_REF_META, help=_REF_HELP),
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Mark a session good (it behaves like the good run)."""
    _mark("good", refs, as_json)


@bisect_app.command("bad")
def bad_cmd(refs: list[str] = typer.Argument(None, metavar=_REF_META, help=_REF_HELP),
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Mark a session bad (it shows the problem)."""
    _mark("bad", refs, as_json)


@bisect_app.command("skip")
def skip_cmd(refs: list[str] = typer.Argument(None, metavar=_REF_META, help=_REF_HELP),
             as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Skip a session that cannot be tested."""
    _mark("skip", refs, as_json)


@bisect_app.command("run", context_settings={"allow_interspersed_args": False,
                                             "ignore_unknown_options": True})
def run_cmd(command: list[str] = typer.Argument(..., metavar="CMD [ARGS]...", help="Exit 0 = good, "
                                                "125 = skip, 1-127 = bad, 128+ stops the bisect.")) -> None:
    """Test each candidate with a command, as 'git bisect run' does.

    The candidate is checked out as HEAD and its id is in REWIND_BISECT_SESSION.
    """
    import shutil

    from rewind_vcs.analysis.bisect_run import run_bisect, subprocess_runner
    from rewind_vcs.analysis.bisect_state import BisectRun
    from rewind_vcs.analysis.history import BisectError, OutcomeKind
    from rewind_vcs.analysis.render import outcome_lines

    run = BisectRun.load(open_repo())
    outcome = run.outcome()
    shown = " ".join(command)
    if shutil.which(command[0]) is None:
        raise BisectError(f"bisect run cannot start '{command[0]}': no such executable",
                          hint="give a command that exists and is executable")
    start_process = subprocess_runner(settings().environ)

    def announced(cmd: Sequence[str], candidate: str) -> int:
        info(f"running '{shown}' on {candidate}")
        return start_process(cmd, candidate)

    for trial in run_bisect(run, command, announced):
        info(f"{trial.candidate}: exit {trial.exit_code} -> {trial.verdict.value}")
        outcome = trial.outcome
        if outcome.kind is OutcomeKind.NEXT:
            _write(outcome_lines(outcome, run.labels))
    _report(run, outcome, announce=False)
    if outcome.kind is OutcomeKind.ONLY_SKIPPED:
        raise BisectError("bisect run cannot go further: only skipped sessions are left",
                          hint="test one of them by hand, or 'rewind bisect reset'")
    info("bisect run success")


@bisect_app.command("log")
def log_cmd() -> None:
    """What this bisect did so far (verdicts as replayable commands)."""
    from rewind_vcs.analysis.bisect_state import read_log

    sys.stdout.write(safe_text(read_log(open_repo()), multiline=True))
    sys.stdout.flush()


@bisect_app.command("reset")
def reset_cmd() -> None:
    """End the bisect: HEAD goes back to where it was before 'bisect start'."""
    from rewind_vcs.analysis.bisect_state import reset

    restored = reset(open_repo())
    if restored is None:
        info("rewind: not bisecting; nothing to reset")
        return
    if restored.startswith("refs/sessions/"):
        where = f"on {restored.removeprefix('refs/sessions/')}"
    elif restored and not restored.startswith("refs/"):
        where = f"detached at {restored[:12]}"
    else:
        where = "not checked out, as before"
    info(f"rewind: bisect ended; HEAD is {where}")
