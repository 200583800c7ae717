"""A bisect over sessions on disk: the BISECT_* files, HEAD moves and restores, damaged state."""

from __future__ import annotations

import json

import pygit2
import pytest

from rewind_vcs.analysis.bisect_state import (
    FILES,
    STATE_FILE,
    BisectRun,
    is_active,
    read_log,
    reset,
)
from rewind_vcs.analysis.history import BisectError, OutcomeKind, Verdict
from rewind_vcs.errors import FormatError, FormatTooNewError
from rewind_vcs.store.refs import timeline_ref
from tests import factories


@pytest.fixture
def sessions(repo):
    return [factories.write_session(repo, 1, name=f"run-{i}") for i in range(8)]


def test_start_writes_gits_files_and_checks_out_each_candidate(repo, sessions, fsck):
    run = BisectRun.start(repo, sessions[0], sessions[-1])
    assert is_active(repo) and all((repo.path / f).exists() for f in FILES)
    assert (repo.path / "BISECT_TERMS").read_text() == "bad\ngood\n"
    state = json.loads((repo.path / STATE_FILE).read_text())
    assert state["format"] == 1 and state["bisection"]["history"] == sessions
    outcome = run.outcome()
    run.checkout(outcome.candidate)
    assert repo.resolve("HEAD").session_id == outcome.candidate
    again = BisectRun.load(repo)
    assert again.bisection == run.bisection and again.labels[sessions[3]] == "run-3"
    fsck(repo)  # the state files do not disturb git


def test_verdicts_are_saved_and_logged(repo, sessions):
    run = BisectRun.start(repo, sessions[0], sessions[-1], name="run-5")
    assert run.bisection.history == [sessions[0], sessions[5], sessions[-1]]
    outcome = run.mark(sessions[5], Verdict.GOOD)
    assert outcome.kind is OutcomeKind.FOUND and outcome.first_bad == sessions[-1]
    run.log_outcome(outcome)
    run.log_outcome(outcome)  # noted once
    log = read_log(repo)
    assert log.splitlines()[0] == f"rewind bisect start {sessions[0]} {sessions[-1]} --name run-5"
    assert f"rewind bisect good {sessions[5]}" in log
    assert log.count("# first bad session:") == 1 and BisectRun.load(repo).tests == 1


@pytest.mark.parametrize("where", ["timeline", "detached", "unborn"])
def test_reset_puts_head_back(repo, sessions, where):
    git = repo.git
    if where == "timeline":
        git.set_head(timeline_ref(sessions[2]))
    elif where == "detached":
        git.set_head(pygit2.Oid(hex=repo.resolve(f"{sessions[2]}@step-1").commit))
    before = (repo.path / "HEAD").read_text()
    run = BisectRun.start(repo, sessions[0], sessions[-1])
    run.checkout(run.outcome().candidate)
    assert (repo.path / "HEAD").read_text() != before
    assert reset(repo) is not None
    assert (repo.path / "HEAD").read_text() == before
    assert not any((repo.path / f).exists() for f in FILES)
    assert reset(repo) is None  # nothing left to reset


def test_mistakes_are_refused(repo, sessions):
    with pytest.raises(BisectError, match="no bisect in progress"):
        BisectRun.load(repo)
    with pytest.raises(BisectError, match="no bisect in progress"):
        read_log(repo)
    with pytest.raises(BisectError, match="recorded after bad session"):
        BisectRun.start(repo, sessions[5], sessions[1])
    assert not is_active(repo)  # a refused start leaves nothing behind
    BisectRun.start(repo, sessions[0], sessions[-1])
    with pytest.raises(BisectError, match="already in progress"):
        BisectRun.start(repo, sessions[0], sessions[-1])


def test_damaged_or_newer_state_is_a_clean_error(repo, sessions):
    BisectRun.start(repo, sessions[0], sessions[-1])
    path = repo.path / STATE_FILE
    path.write_text("{not json")
    with pytest.raises(FormatError, match="missing or damaged"):
        BisectRun.load(repo)
    path.write_text(json.dumps({"format": 1, "good_ref": "a", "bad_ref": "b", "bisection": {}}))
    with pytest.raises(FormatError, match="is damaged"):
        BisectRun.load(repo)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(FormatTooNewError, match="upgrade rewind"):
        BisectRun.load(repo)
    assert reset(repo) is not None  # a damaged bisect can still be ended
    assert not is_active(repo)
