"""The ``bisect run`` loop with a fake runner: no process, no CLI (rewind_vcs.analysis.bisect_run)."""

from __future__ import annotations

import math
import sys

import pytest

from rewind_vcs.analysis.bisect_run import SESSION_VARIABLE, run_bisect, subprocess_runner
from rewind_vcs.analysis.bisect_state import BisectRun, read_log
from rewind_vcs.analysis.history import BisectError, OutcomeKind, Verdict
from tests import factories

FIRST_BAD = 11


@pytest.fixture
def history(repo):
    return [factories.write_session(repo, 1, name="nightly") for _ in range(20)]


def fake(ids, *, skip=(), abort_on=None):
    """A runner that judges by position in the history, and records what it was asked."""
    calls: list[tuple[list[str], str]] = []

    def runner(command, candidate):
        calls.append((list(command), candidate))
        if candidate == abort_on:
            return 128
        if candidate in skip:
            return 125
        return 1 if ids.index(candidate) >= FIRST_BAD else 0

    return runner, calls


def test_finds_the_first_bad_session_with_log2_tests(repo, history):
    run = BisectRun.start(repo, history[0], history[-1])
    runner, calls = fake(history)
    trials = list(run_bisect(run, ["check", "--fast"], runner))
    assert trials[-1].outcome.kind is OutcomeKind.FOUND
    assert trials[-1].outcome.first_bad == history[FIRST_BAD]
    assert trials[-1].outcome.last_good == history[FIRST_BAD - 1]
    assert len(calls) == len(trials) <= math.ceil(math.log2(len(history) - 1))
    assert all(cmd == ["check", "--fast"] for cmd, _ in calls)
    for trial, (_, candidate) in zip(trials, calls, strict=True):
        assert trial.candidate == candidate
        assert trial.verdict is (Verdict.BAD if history.index(candidate) >= FIRST_BAD else Verdict.GOOD)
    log = read_log(repo)  # the verdicts are kept as git keeps them
    assert log.count("rewind bisect good ") + log.count("rewind bisect bad ") == len(calls)


def test_each_candidate_is_checked_out_before_it_runs(repo, history):
    run = BisectRun.start(repo, history[0], history[-1])
    seen = []

    def runner(command, candidate):
        seen.append(repo.resolve("HEAD").session_id == candidate)
        return 0

    list(run_bisect(run, ["true"], runner))
    assert seen and all(seen)


def test_exit_125_skips(repo, history):
    run = BisectRun.start(repo, history[0], history[-1])
    first = run.outcome().candidate
    runner, calls = fake(history, skip={first})
    trials = list(run_bisect(run, ["t"], runner))
    assert trials[0].candidate == first and trials[0].verdict is Verdict.SKIP
    assert trials[-1].outcome.first_bad == history[FIRST_BAD]
    assert [c for _, c in calls].count(first) == 1


def test_only_skipped_left_ends_the_loop(repo, history):
    run = BisectRun.start(repo, history[FIRST_BAD - 1], history[FIRST_BAD + 1])
    runner, _ = fake(history, skip={history[FIRST_BAD]})
    trials = list(run_bisect(run, ["t"], runner))
    assert len(trials) == 1 and trials[0].outcome.kind is OutcomeKind.ONLY_SKIPPED


def test_128_aborts_and_keeps_the_verdicts_so_far(repo, history):
    run = BisectRun.start(repo, history[0], history[-1])
    first = run.outcome().candidate
    runner, calls = fake(history)
    loop = run_bisect(run, ["t"], runner)
    next(loop)  # one verdict, then the next candidate aborts
    second = BisectRun.load(repo).outcome().candidate
    with pytest.raises(BisectError, match=f"exited with 128 on {second}"):
        runner_abort, _ = fake(history, abort_on=second)
        list(run_bisect(BisectRun.load(repo), ["t"], runner_abort))
    assert f" {first}" in read_log(repo) and f" {second}" not in read_log(repo)


def test_a_finished_bisect_runs_nothing(repo, history):
    run = BisectRun.start(repo, history[0], history[-1])
    runner, _ = fake(history)
    list(run_bisect(run, ["t"], runner))
    runner, calls = fake(history)
    assert list(run_bisect(BisectRun.load(repo), ["t"], runner)) == [] and calls == []


def test_subprocess_runner_passes_the_candidate_and_the_exit_code(tmp_path):
    runner = subprocess_runner({"PATH": "/usr/bin:/bin", "KEEP": "yes"})
    script = ("import os, sys; sys.exit(0 if os.environ['KEEP'] == 'yes' and "
              f"os.environ['{SESSION_VARIABLE}'] == 'abc123' else 3)")
    assert runner([sys.executable, "-c", script], "abc123") == 0
    assert runner([sys.executable, "-c", "import sys; sys.exit(7)"], "x") == 7
    with pytest.raises(BisectError, match="cannot start"):
        runner([str(tmp_path / "missing")], "x")
