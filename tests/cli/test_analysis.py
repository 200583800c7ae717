"""`rewind diff`, `rewind bisect GOOD BAD` and git-style `rewind bisect start/good/bad/skip/run/log/reset`,
through the CLI on real repositories: in-process (the ``cli`` fixture) but for the demo and one
``bisect run``, which go through the real command (a subprocess)."""

from __future__ import annotations

import json
import math
import sys

import pytest

from rewind_vcs.store.repo import Repo
from tests.analysis import runs
from tests.cli.test_errors import assert_clean_failure

N_SESSIONS = 24
FIRST_BAD = 15  # from this one on, the nightly run's search tool reads the stale index

CHECK = """\
import os, sys
from rewind_vcs.store.repo import Repo
sid = os.environ["REWIND_BISECT_SESSION"]
repo = Repo.find(".")
if repo.resolve("HEAD").session_id != sid:
    sys.exit(128)  # the candidate is not checked out: abort the bisect
with open("tested.txt", "a") as f:
    f.write(sid + "\\n")
stale = b"2019" in repo.step(sid + "@step-3").request.body
sys.exit(1 if stale else 0)
"""


@pytest.fixture
def pair(tmp_path):
    repo = Repo.init(tmp_path)
    good = runs.record(repo, name="research")
    bad = runs.record(repo, name="research", tool_result=runs.STALE_FACT)
    return repo, good, bad


@pytest.fixture
def nightly(tmp_path):
    """24 nightly runs (bad from the 16th on) with ad-hoc runs in between that look bad too."""
    repo = Repo.init(tmp_path)
    ids = []
    for i in range(N_SESSIONS):
        stale = {"tool_result": runs.STALE_FACT} if i >= FIRST_BAD else {}
        ids.append(runs.record(repo, name="nightly", pack=False, **stale))
        if i % 6 == 3:
            runs.record(repo, name="adhoc", pack=False, tool_result=runs.STALE_FACT)
    (tmp_path / "check.py").write_text(CHECK)
    return repo, ids


def lines(proc) -> list[str]:
    return proc.stdout.splitlines()


# --- diff ----------------------------------------------------------------------------------------


def test_diff_human_json_and_exit_code(pair, cli):
    _, good, bad = pair
    proc = cli("diff", good, bad, check=True)
    out = proc.stdout
    assert "= steps 1-2: identical" in out and "~ step 3:" in out
    assert "messages[2].content: 'About 17 million" in out and "-> 'About 2.1 million" in out
    assert "2 equal, 2 changed, 0 added, 0 removed" in out
    data = json.loads(cli("diff", good, bad, "--json", check=True).stdout)
    assert data["identical"] is False and len(data["steps"]) == 4
    assert [s["status"] for s in data["steps"]] == ["equal", "equal", "changed", "changed"]
    change = data["steps"][2]["request"][0]
    assert change == {"field": "messages[2].content", "change": "changed",
                      "old": runs.FRESH_FACT, "new": runs.STALE_FACT}
    assert cli("diff", good, bad, "--exit-code").returncode == 1
    assert cli("diff", good, bad, "--exit-code", "--json").returncode == 1
    assert cli("diff", good, f"{bad}@step-2", "--exit-code").returncode == 1
    same = cli("diff", f"{good}@step-2", f"{bad}@step-2", "--exit-code", "--json", check=True)
    assert json.loads(same.stdout)["identical"] is True


def test_diff_of_two_recordings_of_one_run(tmp_path, cli):
    repo = Repo.init(tmp_path)
    a, b = runs.record(repo), runs.record(repo)
    proc = cli("diff", a, b, "--exit-code", check=True)
    assert "identical: 4 steps match" in proc.stdout


# --- bisect GOOD BAD ------------------------------------------------------------------------------


def test_two_session_bisect(pair, cli):
    repo, good, bad = pair
    data = json.loads(cli("bisect", good, bad, "--json", check=True).stdout)
    assert data["first_divergent_step"] == 3 and data["causes"] == ["tool_result"]
    assert data["evidence"][0]["field"] == "messages[2].content"
    out = cli("bisect", good, bad, check=True).stdout
    assert f"{bad} departs from {good} at step 3" in out
    assert "1. tool_result  messages[2].content (tool): 'About 17 million" in out
    again = runs.record(repo, name="research")
    data = json.loads(cli("bisect", good, again, "--json", check=True).stdout)
    assert data["first_divergent_step"] is None and data["causes"] == []


def test_bisect_good_bad_names_the_tags_unless_a_bisect_is_running(pair, cli):
    _, good, bad = pair
    cli("tag", "good", good, check=True)
    cli("tag", "bad", bad, check=True)
    data = json.loads(cli("bisect", "good", "bad", "--json", check=True).stdout)
    assert data["good"]["session"] == good and data["first_divergent_step"] == 3
    # with no such tags, 'bisect good X' is git's verdict, and there is no bisect to give it to
    assert_clean_failure(cli("bisect", "good", "nope"), "unknown ref 'nope'")


def test_the_demo_through_the_cli(tmp_path, cli):
    """The quickest way a user meets these commands: `rewind demo` then what it suggests."""
    cli("demo", check=True, timeout=120)
    data = json.loads(cli("bisect", "good", "bad", "--json", check=True).stdout)
    assert data["first_divergent_step"] == 3 and data["causes"][0] == "tool_result"
    assert cli("diff", "good", "bad", "--exit-code").returncode == 1


# --- git-style bisect over the history of runs ---------------------------------------------------------


def test_bisect_run_finds_the_first_bad_session_in_about_log2_n_tests(nightly, rewind, tmp_path):
    repo, ids = nightly
    start = rewind("bisect", "start", ids[0], ids[-1], "--name", "nightly", check=True)
    assert lines(start)[0].startswith("Bisecting: ")
    assert repo.resolve("HEAD").session_id == lines(start)[1][1:13]
    proc = rewind("bisect", "run", sys.executable, "check.py", check=True)
    out = proc.stdout
    assert f"{ids[FIRST_BAD]} (nightly) is the first bad session" in out
    assert f"last good session: {ids[FIRST_BAD - 1]} (nightly)" in out
    # then the two-session bisect between them: the step and the cause
    assert f"{ids[FIRST_BAD]} departs from {ids[FIRST_BAD - 1]} at step 3" in out
    assert "1. tool_result" in out
    tested = (tmp_path / "tested.txt").read_text().split()
    span = N_SESSIONS - 1  # sessions in (good, bad]
    assert math.floor(math.log2(span)) <= len(tested) <= math.ceil(math.log2(span))
    assert len(set(tested)) == len(tested) and set(tested) <= set(ids[1:-1])  # never an ad-hoc run
    log = rewind("bisect", "log", check=True).stdout
    assert log.count("rewind bisect good ") + log.count("rewind bisect bad ") == len(tested)
    assert f"# first bad session: [{ids[FIRST_BAD]}] nightly" in log
    assert repo.resolve("HEAD").session_id == ids[FIRST_BAD]
    rewind("bisect", "reset", check=True)
    assert repo.git.head_is_unborn and not (repo.path / "BISECT_START").exists()


def test_bisect_by_hand_with_a_skip(nightly, cli):
    repo, ids = nightly
    cli("checkout", ids[2], check=True)
    head_before = (repo.path / "HEAD").read_text()
    state = json.loads(cli("bisect", "start", "--good", ids[0], "--bad", ids[-1], "--name", "nightly",
                              "--json", check=True).stdout)
    skipped = None
    tests = 0
    while state["status"] == "next":
        candidate = state["candidate"]
        assert repo.resolve("HEAD").session_id == candidate
        if skipped is None:
            skipped = candidate
            state = json.loads(cli("bisect", "skip", "--json", check=True).stdout)
            continue
        tests += 1
        verdict = "bad" if ids.index(candidate) >= FIRST_BAD else "good"
        state = json.loads(cli("bisect", verdict, "--json", check=True).stdout)
    assert state["status"] == "found" and state["first_bad"] == ids[FIRST_BAD]
    assert state["divergence"]["first_divergent_step"] == 3
    assert state["divergence"]["causes"] == ["tool_result"]
    assert tests <= math.ceil(math.log2(N_SESSIONS - 1)) + 1
    assert f"rewind bisect skip {skipped}" in cli("bisect", "log", check=True).stdout
    cli("bisect", "reset", check=True)
    assert (repo.path / "HEAD").read_text() == head_before


def test_only_skipped_sessions_left(nightly, cli):
    repo, ids = nightly
    cli("bisect", "start", ids[FIRST_BAD - 1], ids[FIRST_BAD + 1], "--name", "nightly", check=True)
    proc = cli("bisect", "skip", ids[FIRST_BAD], check=True)
    assert "There are only 'skip'ped sessions left to test." in proc.stdout
    assert f"{ids[FIRST_BAD]} (nightly)" in proc.stdout and f"{ids[FIRST_BAD + 1]} (nightly)" in proc.stdout


@pytest.mark.parametrize("code", [128, 255])
def test_bisect_run_aborts_on_128_and_above(nightly, cli, tmp_path, code):
    _, ids = nightly
    cli("bisect", "start", ids[0], ids[-1], check=True)
    proc = cli("bisect", "run", sys.executable, "-c", f"import sys; sys.exit({code})")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    progress, error = proc.stderr.strip().splitlines()  # "running ..." then the one error line
    assert progress.startswith("running ") and error.startswith("rewind: bisect run stopped")
    assert f"exited with {code}" in error
    assert "rewind bisect good" not in cli("bisect", "log", check=True).stdout  # nothing marked


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """A small history, shared by the mistake tests (a refused command changes nothing)."""
    path = tmp_path_factory.mktemp("history")
    repo = Repo.init(path)
    return path, [runs.record(repo, name="nightly", pack=False) for _ in range(12)]


@pytest.fixture(scope="module")
def bisecting(tmp_path_factory):
    path = tmp_path_factory.mktemp("bisecting")
    repo = Repo.init(path)
    ids = [runs.record(repo, name="nightly", pack=False) for _ in range(12)]
    runs.record(repo, name="later", pack=False)
    from rewind_vcs.analysis.bisect_state import BisectRun

    BisectRun.start(repo, ids[0], ids[10])
    return path, ids


NOT_BISECTING = [
    (("bisect", "good"), "no bisect in progress"),
    (("bisect", "bad", "{3}"), "no bisect in progress"),
    (("bisect", "skip"), "no bisect in progress"),
    (("bisect", "log"), "no bisect in progress"),
    (("bisect", "run", "true"), "no bisect in progress"),
    (("bisect", "nope", "{0}"), "unknown ref 'nope'"),
    (("diff", "{0}", "nope"), "unknown ref 'nope'"),
    (("diff", "{0}@step-9", "{1}"), "step-9 is out of range"),
    (("bisect", "start"), "bisect start needs a good and a bad run"),
    (("bisect", "start", "{0}"), "bisect start needs a bad run"),
    (("bisect", "start", "{0}", "{1}", "{2}"), "too many refs"),
    (("bisect", "start", "nope", "{1}"), "unknown ref 'nope'"),
    (("bisect", "start", "{5}", "{1}"), "was recorded after bad session"),
    (("bisect", "start", "{1}", "{1}"), "same session"),
    (("bisect", "start", "{0}", "{5}", "--name", "weekly"), "no session is named 'weekly'"),
]

WHILE_BISECTING = [
    (("bisect", "start", "{0}", "{10}"), "a bisect is already in progress"),
    (("bisect", "good", "{11}"), "is not in the bisect history"),
    (("bisect", "good", "{10}"), "cannot be good"),
    (("bisect", "bad", "{0}"), "cannot be bad"),
    (("bisect", "skip", "{0}"), "already marked good"),
    (("bisect", "good", "nope"), "unknown ref 'nope'"),
    (("bisect", "run", "/nonexistent/check"), "bisect run cannot start '/nonexistent/check'"),
]


@pytest.mark.parametrize("args, needle", NOT_BISECTING)
def test_every_mistake_is_one_clean_line(history, cli, args, needle):
    path, ids = history
    assert_clean_failure(cli(*(a.format(*ids) for a in args), cwd=path), needle)
    assert not (path / ".rewind" / "BISECT_START").exists()


@pytest.mark.parametrize("args, needle", WHILE_BISECTING)
def test_every_mistake_while_bisecting_is_one_clean_line(bisecting, cli, args, needle):
    path, ids = bisecting
    before = (path / ".rewind" / "BISECT_STATE.json").read_text()
    assert_clean_failure(cli(*(a.format(*ids) for a in args), cwd=path), needle)
    assert (path / ".rewind" / "BISECT_STATE.json").read_text() == before  # nothing was recorded


def test_reset_without_a_bisect_is_harmless(history, cli):
    path, _ = history
    proc = cli("bisect", "reset", cwd=path, check=True)
    assert proc.stderr.strip() == "rewind: not bisecting; nothing to reset"
