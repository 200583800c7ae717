"""Fork and partial replay: steps 1..N from the recording, the rest live on a new timeline."""

from __future__ import annotations

import json
import sys

import pytest

from rewind_vcs.demo.run import AGENT, QUERY
from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import run_rewind, upstream_env


def agent_cmd(*extra: str, query: dict | None = None) -> list[str]:
    return [sys.executable, str(AGENT), "--input", json.dumps(query or QUERY), *extra]


@pytest.fixture
def recorded(workdir, fake):
    rec = run_rewind(["record", "--name", "research", "--", *agent_cmd()], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    repo = Repo.open(workdir)
    sid = repo.resolve("research").session_id
    return repo, sid, fake.request_count


def _summary(proc) -> dict:
    return json.loads(proc.stdout[proc.stdout.index("{\n"):])


def test_checkout_step_then_replay_forks_a_timeline_with_the_right_parent(workdir, fake, recorded):
    repo, sid, recorded_calls = recorded
    assert run_rewind(["checkout", "research@step-2"], workdir, upstream_env(fake)).returncode == 0
    before = fake.request_count
    # the code changed: the search index is stale now; steps 3.. go live
    rep = run_rewind(["replay", "--json", "--", *agent_cmd("--stale")], workdir, upstream_env(fake))
    assert rep.returncode == 0, rep.stderr
    s = _summary(rep)
    assert s["served"] == 2 and s["fork_point"] == 2 and s["new_timeline"] == "fork-1"
    assert fake.request_count - before == recorded_calls - 2  # only the live tail reached the upstream
    main = repo.session(sid).timeline("main")
    fork = repo.session(sid).timeline("fork-1")
    assert fork.fork_point == 2
    assert fork.commits[:3] == main.commits[:3]  # root + steps 1-2 shared: forking copies nothing
    assert str(repo.git[fork.steps[2].commit_id].parent_ids[0]) == main.steps[1].commit_id
    assert [s.n for s in fork.steps] == [1, 2, 3, 4]
    assert b"2.1 million" in fork.steps[2].request.body  # the live step saw the new code's data
    # HEAD follows the new timeline; log, show and timelines see it
    status = json.loads(run_rewind(["status", "--json"], workdir, upstream_env(fake)).stdout)
    assert status["head"] == f"{sid}/fork-1"
    tls = json.loads(run_rewind(["timelines", sid, "--json"], workdir, upstream_env(fake)).stdout)
    assert [(t["name"], t["fork_point"]) for t in tls] == [("main", None), ("fork-1", 2)]
    steps = json.loads(run_rewind(["log", f"{sid}/fork-1", "--json"], workdir, upstream_env(fake)).stdout)
    assert len(steps) == 4
    shown = json.loads(run_rewind(["show", f"{sid}/fork-1", "--json"], workdir, upstream_env(fake)).stdout)
    assert shown["timeline"] == "fork-1" and shown["exit_code"] == 0


def test_replay_from_n_and_savings_match_the_recorded_usage(workdir, fake, recorded):
    repo, sid, _ = recorded
    rep = run_rewind(["replay", "research", "--from", "4", "--timeline", "writer-again", "--json"], workdir,
                     upstream_env(fake))
    assert rep.returncode == 0, rep.stderr
    s = _summary(rep)
    assert s["served"] == 3 and s["new_timeline"] == "writer-again" and s["new_steps"] == 1
    cached = repo.session(sid).main.steps[:3]
    assert s["saved"]["steps"] == 3
    assert s["saved"]["tokens"] == sum(st.info.usage.total for st in cached)
    assert s["saved"]["cost_usd"] == pytest.approx(sum(st.info.cost_usd or 0 for st in cached), abs=1e-6)
    assert s["saved"]["seconds"] == pytest.approx(sum(st.info.latency_ms for st in cached) / 1000, abs=2e-3)
    assert s["output_identical"] is True


def test_drifted_cached_requests_are_served_and_reported(workdir, fake, recorded):
    repo, sid, _ = recorded
    other = {"query": "How many electric cars were sold in Norway in 2024?"}
    rep = run_rewind(["replay", "research", "--from", "3", "--", *agent_cmd(query=other)], workdir,
                     upstream_env(fake))
    assert rep.returncode == 0, rep.stderr
    drift = [ln for ln in rep.stderr.splitlines() if "drifted" in ln]
    assert drift and "step 1" in drift[0] and "messages" in drift[0] and "Norway" in drift[0]


def test_several_timelines_on_one_session(workdir, fake, recorded):
    repo, sid, _ = recorded
    for _ in range(2):
        rep = run_rewind(["replay", "research", "--from", "2"], workdir, upstream_env(fake))
        assert rep.returncode == 0, rep.stderr
    names = [t.name for t in repo.session(sid).timelines()]
    assert names == ["main", "fork-1", "fork-2"]
    dup = run_rewind(["replay", "research", "--from", "2", "--timeline", "fork-1"], workdir, upstream_env(fake))
    assert dup.returncode != 0 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    assert len(repo.sessions(use_cache=False)) == 1  # forks are timelines, not new sessions


def test_on_miss_live_records_the_miss_on_a_new_timeline(workdir, fake, recorded):
    repo, sid, recorded_calls = recorded
    rep = run_rewind(["replay", "research", "--on-miss", "live", "--json", "--", *agent_cmd("--stale")], workdir,
                     upstream_env(fake))
    assert rep.returncode == 0, rep.stderr
    s = _summary(rep)
    assert s["misses"] == 0 and s["live"] == 2 and s["served"] == 2
    fork = repo.session(sid).timeline(s["new_timeline"])
    assert fork.fork_point == 2 and len(fork.steps) == 4
