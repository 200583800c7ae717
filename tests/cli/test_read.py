"""The read-side commands, driven as a user types them."""

from __future__ import annotations

import json

import pytest

from rewind_vcs.store.repo import Repo
from tests import factories


@pytest.fixture
def seeded(tmp_path):
    repo = Repo.init(tmp_path)
    ids = [factories.write_session(repo, 3, name="alpha"), factories.write_session(repo, 2, name="beta")]
    return repo, ids


def test_log_lists_sessions_newest_first_as_json(seeded, cli):
    repo, ids = seeded
    out = json.loads(cli("log", "--json", check=True).stdout)
    assert [r["id"] for r in out] == [ids[1], ids[0]]
    for row in out:
        assert {"id", "name", "started_at", "steps", "status"} <= set(row)
    assert out[0]["steps"] == 2 and out[0]["status"] == "ok" and out[0]["tokens"] == 30


def test_log_table_and_limit(seeded, cli):
    repo, ids = seeded
    out = cli("log", check=True).stdout
    assert ids[0] in out and ids[1] in out and "alpha" in out
    out = cli("list", "-n", "1", check=True).stdout
    assert ids[1] in out and ids[0] not in out


def test_log_of_a_ref_lists_its_steps(seeded, cli):
    repo, ids = seeded
    rows = json.loads(cli("log", "alpha", "--json", check=True).stdout)
    assert [r["n"] for r in rows] == [1, 2, 3]
    assert {"n", "kind", "provider", "model", "status"} <= set(rows[0])
    assert rows[0]["model"] == "gpt-4o-mini" and rows[0]["provider"] == "openai"
    assert "gpt-4o-mini" in cli("log", "alpha", check=True).stdout


def test_show_session_tree_and_step(seeded, cli):
    repo, ids = seeded
    data = json.loads(cli("show", "alpha", "--json", check=True).stdout)
    assert data["id"] == ids[0] and len(data["steps"]) == 3
    assert data["trace"]["tokens"] == 45
    assert "#1" in cli("inspect", "alpha", check=True).stdout
    step = json.loads(cli("show", "alpha@step-2", "--json", check=True).stdout)
    assert step["request"]["body"]["messages"][0]["content"] == "question 1"
    assert step["response"]["status"] == 200
    assert "question 1" in cli("show", "alpha@step-2", check=True).stdout


def test_checkout_status_and_step_n(seeded, cli):
    repo, ids = seeded
    cli("checkout", "alpha@step-2", check=True)
    st = json.loads(cli("status", "--json", check=True).stdout)
    assert st["head"] == f"{ids[0]}/main@step-2" and st["detached"]
    cli("checkout", "beta", check=True)
    # detached at the timeline's tip: git fsck wants a symbolic HEAD only under refs/heads/
    assert (repo.path / "HEAD").read_text().strip() == repo.resolve(ids[1]).commit
    st = json.loads(cli("status", "--json", check=True).stdout)
    assert st["head"] == f"{ids[1]}/main" and not st["detached"]
    assert json.loads(cli("show", "step-1", "--json", check=True).stdout)["session"] == ids[1]


def test_tags(seeded, cli):
    repo, ids = seeded
    cli("tag", "good", "alpha", check=True)
    cli("tag", "pivot", "beta@step-1", check=True)
    tags = {t["name"]: t["target"] for t in json.loads(cli("tag", "--json", check=True).stdout)}
    assert tags == {"good": f"{ids[0]}/main", "pivot": f"{ids[1]}/main@step-1"}
    assert json.loads(cli("log", "good", "--json", check=True).stdout)[0]["n"] == 1
    dup = cli("tag", "good", "beta")
    assert dup.returncode != 0 and "already exists" in dup.stderr
    cli("tag", "-d", "good", check=True)
    assert "good" not in cli("tag", check=True).stdout


def test_timelines_and_fsck_and_gc(seeded, cli):
    repo, ids = seeded
    rows = json.loads(cli("timelines", "alpha", "--json", check=True).stdout)
    assert rows == [{"name": "main", "ref": f"refs/sessions/{ids[0]}/main", "steps": 3, "fork_point": None,
                     "status": "ok", "exit_code": 0, "tip": rows[0]["tip"]}]
    cli("gc", check=True)
    fsck = json.loads(cli("fsck", "--json", check=True).stdout)
    assert fsck["ok"] and fsck["sessions"] == 2 and fsck["steps"] == 5
    assert [r["id"] for r in json.loads(cli("log", "--json", check=True).stdout)] == [ids[1], ids[0]]


def test_init_is_harmless_twice_and_rewind_dir_overrides(tmp_path, cli):
    r1 = cli("init", check=True)
    assert "Initialized empty" in r1.stderr
    r2 = cli("init", check=True)
    assert "Reinitialized" in r2.stderr
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    assert cli("log", "--json", cwd=sub, check=True).stdout.strip() == "[]"  # found by walking up
    other = tmp_path / "elsewhere"
    other.mkdir()
    Repo.init(other)
    factories.write_session(Repo.open(other), 1, name="far")
    out = json.loads(cli("log", "--json", env={"REWIND_DIR": str(other / ".rewind")}, check=True).stdout)
    assert out[0]["name"] == "far"


@pytest.fixture
def big_step(tmp_path):
    """A step whose response body is 20 MB (a model dumping a file, a huge tool result)."""
    from rewind_vcs.store.records import EndInfo

    repo = Repo.init(tmp_path)
    w = repo.create_session(name="big", command=["agent"], cwd="/tmp")
    ex = factories.exchange("hi")
    ex.response = factories.chat_response("word " * (4 * 1024 * 1024) + "THE-END")
    w.append(ex, factories.info())
    w.finish(EndInfo(exit_code=0))
    return w.id


def test_show_of_a_huge_step_is_bounded_and_full_prints_all(big_step, cli):
    import time

    from rewind_vcs.cli.read import BODY_LIMIT

    t0 = time.perf_counter()
    shown = cli("show", f"{big_step}@step-1", check=True)
    took = time.perf_counter() - t0
    assert len(shown.stdout) < 4 * BODY_LIMIT + 20_000, len(shown.stdout)  # the box adds its borders
    assert "THE-END" not in shown.stdout
    last = shown.stdout.strip().splitlines()[-1]
    assert "20.0 MB more of this body not shown" in last and f"rewind show {big_step}/main@step-1 --full" in last
    assert took < 30, took  # 59 s before, on an idle machine; seconds now even under load
    full = cli("show", f"{big_step}@step-1", "--full", check=True)
    assert len(full.stdout) > 20 * 1024 * 1024 and "THE-END" in full.stdout
    assert "not shown" not in full.stdout
    data = json.loads(cli("show", f"{big_step}@step-1", "--json", check=True).stdout)
    assert data["response"]["body"]["choices"][0]["message"]["content"].endswith("THE-END")
