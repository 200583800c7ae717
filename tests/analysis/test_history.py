"""The bisect state machine over the history of runs: halving, skips, contradictions, storage."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewind_vcs.analysis.history import (
    BisectError,
    Bisection,
    OutcomeKind,
    Run,
    Verdict,
    estimate_steps,
    history_between,
    verdict_for_exit,
)

IDS = [f"{i:012x}" for i in range(1, 200)]


def drive(history: list[str], first_bad: int, skips: frozenset[int] = frozenset()):
    """Answer every candidate truthfully (bad from ``first_bad`` on, ``skips`` untestable)."""
    b = Bisection.start(history)
    tested = []
    outcome = b.outcome()
    while outcome.kind is OutcomeKind.NEXT:
        i = history.index(outcome.candidate)
        tested.append(i)
        verdict = Verdict.SKIP if i in skips else Verdict.BAD if i >= first_bad else Verdict.GOOD
        b.mark(outcome.candidate, verdict)
        outcome = b.outcome()
    return outcome, tested


@pytest.mark.parametrize("n", [2, 3, 4, 5, 20, 21, 64, 100])
def test_every_first_bad_position_is_found_in_about_log2_n_tests(n):
    history = IDS[:n]
    for first_bad in range(1, n):
        outcome, tested = drive(history, first_bad)
        assert outcome.kind is OutcomeKind.FOUND
        assert outcome.first_bad == history[first_bad]
        assert outcome.last_good == history[first_bad - 1]
        assert len(tested) <= math.ceil(math.log2(n - 1)) if n > 2 else not tested
        assert len(set(tested)) == len(tested)  # never the same session twice


def test_the_first_candidate_halves_the_range_as_git_does():
    b = Bisection.start(IDS[:21])  # range (0, 20]: 20 sessions, the middle is index 10
    outcome = b.outcome()
    assert outcome.candidate == IDS[10]
    assert (outcome.left, outcome.steps) == (9, 3)  # git: "9 revisions left ... (roughly 3 steps)"
    b = Bisection.start(IDS[:20])  # range (0, 19]: a tie between 9 and 10; git takes the older
    assert b.outcome().candidate == IDS[9]


def test_estimate_steps_matches_git():
    # git's estimate_bisect_steps() (bisect.c) for 1..20 candidates
    expected = [0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3]
    assert [estimate_steps(n) for n in range(1, 21)] == expected


def _git(cwd, *args: str) -> str:
    proc = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=30, check=True)
    return proc.stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
@pytest.mark.parametrize("n, positions", [(3, None), (8, None), (20, (1, 6, 9, 10, 19)), (33, (17, 30))])
def test_candidates_are_the_ones_git_bisect_picks(tmp_path, n, positions):
    """The same linear history bisected by real git, answering the same way at each step."""
    _git(tmp_path, "init", "-q")
    for i in range(n):
        _git(tmp_path, "commit", "-q", "--allow-empty", "-m", IDS[i])
    shas = _git(tmp_path, "rev-list", "--reverse", "HEAD").split()
    subject = dict(zip(shas, IDS[:n], strict=True))
    for first_bad in positions or range(1, n):
        b = Bisection.start(IDS[:n])
        text = _git(tmp_path, "bisect", "start", shas[-1], shas[0])
        while True:
            ours = b.outcome()
            if "is the first bad commit" in text:
                assert ours.kind is OutcomeKind.FOUND
                assert subject[text.split()[0]] == ours.first_bad == IDS[first_bad]
                break
            m = re.search(r"Bisecting: (\d+) revisions? left.*roughly (\d+) steps?\)\n\[(\w+)\]", text)
            assert m, text
            assert ours.kind is OutcomeKind.NEXT
            assert (ours.candidate, ours.left, ours.steps) == (subject[m[3]], int(m[1]), int(m[2]))
            verdict = "bad" if IDS.index(ours.candidate) >= first_bad else "good"
            b.mark(ours.candidate, Verdict(verdict))
            text = _git(tmp_path, "bisect", verdict)
        _git(tmp_path, "bisect", "reset")


def test_skipped_sessions_are_never_proposed_and_the_nearest_testable_one_is():
    history = IDS[:11]
    b = Bisection.start(history)
    first = b.outcome().candidate
    b.mark(first, Verdict.SKIP)
    nxt = b.outcome().candidate
    assert nxt != first and abs(history.index(nxt) - history.index(first)) == 1


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 60), data=st.data())
def test_with_skips_the_answer_is_the_first_bad_or_a_set_that_holds_it(n, data):
    first_bad = data.draw(st.integers(1, n - 1))
    skips = frozenset(data.draw(st.sets(st.integers(1, n - 2), max_size=n // 2))) if n > 2 else frozenset()
    history = IDS[:n]
    outcome, tested = drive(history, first_bad, skips)
    if outcome.kind is OutcomeKind.FOUND:
        assert outcome.first_bad == history[first_bad]
    else:
        assert outcome.kind is OutcomeKind.ONLY_SKIPPED
        assert history[first_bad] in outcome.suspects
        assert all(history.index(s) in skips for s in outcome.suspects[:-1])
        assert outcome.suspects[-1] == outcome.first_bad  # the bad end is a suspect too
    assert not skips.intersection(i for i in tested if i not in skips) and len(tested) <= n


def test_contradictions_and_strangers_are_refused():
    history = IDS[:10]
    b = Bisection.start(history)
    b.mark(IDS[6], Verdict.BAD)
    with pytest.raises(BisectError, match="cannot be good: it was recorded after"):
        b.mark(IDS[8], Verdict.GOOD)
    b.mark(IDS[2], Verdict.GOOD)
    with pytest.raises(BisectError, match="cannot be bad: it was recorded before"):
        b.mark(IDS[1], Verdict.BAD)
    with pytest.raises(BisectError, match="already marked good"):
        b.mark(IDS[2], Verdict.SKIP)
    with pytest.raises(BisectError, match="not in the bisect history"):
        b.mark("ffffffffffff", Verdict.GOOD)
    with pytest.raises(BisectError, match="same session"):
        Bisection.start([IDS[0]])
    assert b.bounds() == (2, 6)  # nothing refused was recorded


def test_state_round_trips_through_json():
    b = Bisection.start(IDS[:12])
    b.mark(IDS[6], Verdict.SKIP)
    b.mark(IDS[5], Verdict.GOOD)
    again = Bisection.from_json(b.to_json())
    assert again == b and again.outcome() == b.outcome()
    assert list(again.verdicts) == list(b.verdicts)  # the order of the verdicts is kept


@pytest.mark.parametrize("code, verdict", [(0, Verdict.GOOD), (1, Verdict.BAD), (2, Verdict.BAD),
                                           (124, Verdict.BAD), (125, Verdict.SKIP), (126, Verdict.BAD),
                                           (127, Verdict.BAD), (128, None), (255, None), (-9, None)])
def test_exit_codes_follow_git_bisect_run(code, verdict):
    assert verdict_for_exit(code) is verdict


def test_history_is_recording_order_between_good_and_bad_with_an_optional_name():
    runs = [Run(IDS[i], 1000.0 + (i * 7) % 10 + i / 100, "nightly" if i % 2 else "adhoc") for i in range(10)]
    ordered = [r.id for r in sorted(runs, key=lambda r: r.started_at)]
    good, bad = ordered[1], ordered[8]
    assert history_between(runs, good, bad) == ordered[1:9]
    named = history_between(runs, good, bad, name="nightly")
    assert named[0] == good and named[-1] == bad
    assert all(next(r for r in runs if r.id == s).name == "nightly" for s in named[1:-1])
    with pytest.raises(BisectError, match="was recorded after bad session"):
        history_between(runs, bad, good)
    with pytest.raises(BisectError, match="same session"):
        history_between(runs, good, good)
    with pytest.raises(BisectError, match="no session is named 'nope'"):
        history_between(runs, good, bad, name="nope")
