"""The ``--json`` rows of log/show/timelines/status come from the library (rewind_vcs.analysis.rows)."""

from __future__ import annotations

from rewind_vcs.analysis.rows import repository_status, session_rows, step_rows, timeline_rows
from tests import factories


def test_session_rows_newest_first_with_limit(repo):
    a = factories.write_session(repo, 3, name="alpha")
    b = factories.write_session(repo, 2, name="beta")
    rows = session_rows(repo)
    assert [r["id"] for r in rows] == [b, a]
    assert rows[0] == {**rows[0], "name": "beta", "steps": 2, "tokens": 30, "status": "ok",
                       "command": ["python", "agent.py"], "exit_code": 0}
    assert [r["id"] for r in session_rows(repo, 1)] == [b]


def test_step_rows_of_a_timeline_and_up_to_a_step(repo):
    sid = factories.write_session(repo, 3, name="alpha")
    rows = step_rows(repo, repo.resolve(sid))
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert rows[0]["model"] == "gpt-4o-mini" and rows[0]["kind"] == "llm" and rows[0]["tokens"] == 15
    assert rows[1]["commit"] == repo.resolve(f"{sid}@step-2").commit
    assert [r["n"] for r in step_rows(repo, repo.resolve(f"{sid}@step-2"))] == [1, 2]
    assert [r["n"] for r in step_rows(repo, repo.resolve(sid), 1)] == [1]


def test_timeline_rows_and_status(repo):
    sid = factories.write_session(repo, 2, name="alpha")
    [row] = timeline_rows(repo.session(sid))
    assert row["name"] == "main" and row["steps"] == 2 and row["fork_point"] is None and row["exit_code"] == 0
    st = repository_status(repo)
    assert st["head"] is None and st["sessions"] == 1 and not st["detached"]
    repo.set_head(repo.resolve(f"{sid}@step-1").commit)
    st = repository_status(repo)
    assert st["head"] == f"{sid}/main@step-1" and st["detached"]
