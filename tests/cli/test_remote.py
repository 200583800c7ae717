"""`rewind remote|push|fetch|pull|clone` driven as a user types them, against real git servers on loopback."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pygit2

from rewind_vcs.demo.run import run_demo
from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.fetch import clone as clone_
from rewind_vcs.transfer.push import push as push_
from rewind_vcs.transfer.remotes import add_remote
from tests import factories
from tests.e2e.conftest import offline_env, run_rewind
from tests.transfer import test_remote as store_tests
from tests.transfer.test_remote import assert_fsck, bare, fork, shared_refs

git_daemon = store_tests.git_daemon  # the loopback servers' fixtures, shared with the library's tests
git_http = store_tests.git_http

ROOT = Path(__file__).resolve().parents[2]


def error_line(proc) -> str:
    """The one line a failing command prints: no traceback, nothing else."""
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rewind: ")
    return lines[0]


def log_rows(rewind, cwd: Path) -> list[dict]:
    rows = json.loads(rewind("log", "--json", cwd=cwd, check=True).stdout)
    return [{k: r[k] for k in ("id", "name", "steps", "status", "tokens", "timelines")} for r in rows]


def test_demo_pushed_over_git_daemon_cloned_and_replayed_offline(tmp_path, git_daemon, rewind):
    a_dir = tmp_path / "a"
    a = Repo.init(a_dir)
    run_demo(a, python=sys.executable, env=os.environ)
    url = git_daemon.bare("team.git")
    add_remote(a, "origin", url)
    pushed = rewind("push", cwd=a_dir, check=True)
    assert f"To {url}" in pushed.stderr and pushed.stderr.count("[new session]") == 2
    assert "[new tag]" in pushed.stderr and "\x1b" not in pushed.stderr  # no progress bar off a terminal

    cloned = rewind("clone", url, "b", check=True)
    assert "2 sessions" in cloned.stderr and "receiving" not in cloned.stderr and "\x1b" not in cloned.stderr
    b_dir = tmp_path / "b"
    b = Repo.open(b_dir)
    assert b.config_get("rewind.format") == "1" and b.config_get("remote.origin.url") == url
    assert log_rows(rewind, b_dir) == log_rows(rewind, a_dir)
    steps_a = json.loads(rewind("log", "bad", "--json", cwd=a_dir, check=True).stdout)
    steps_b = json.loads(rewind("log", "bad", "--json", cwd=b_dir, check=True).stdout)
    assert steps_a == steps_b and len(steps_a) == 4

    # the clone replays with every upstream unreachable: everything it needs travelled
    replay_b = run_rewind(["replay", "bad", "--yes"], b_dir, offline_env())
    replay_a = run_rewind(["replay", "bad"], a_dir, offline_env())
    assert replay_b.returncode == 0, replay_b.stderr
    assert "output identical to the recording" in replay_b.stderr and "0 misses" in replay_b.stderr
    assert replay_b.stdout == replay_a.stdout and replay_b.stdout.strip()
    assert_fsck(git_daemon.base / "team.git")


def test_remote_add_list_remove(tmp_path, rewind):
    Repo.init(tmp_path)
    rewind("remote", "add", "origin", "git://example.org/team.git", check=True)
    assert "Added remote 'mirror'" in rewind("remote", "add", "mirror", "mirror.git", check=True).stderr
    assert rewind("remote", check=True).stdout.splitlines() == [  # bare 'remote' lists, as git's does
        f"mirror\t{tmp_path / 'mirror.git'}", "origin\tgit://example.org/team.git"]
    assert "Removed remote 'mirror'" in rewind("remote", "remove", "mirror", check=True).stderr
    assert json.loads(rewind("remote", "list", "--json", check=True).stdout) == [
        {"name": "origin", "url": "git://example.org/team.git", "push_url": None}]
    assert error_line(rewind("remote", "add", "origin", "x.git")) == (
        "rewind: remote 'origin' already exists (git://example.org/team.git); "
        "remove it first: rewind remote remove origin")
    assert error_line(rewind("remote", "rm", "nope")).startswith("rewind: unknown remote 'nope'")


def test_diverged_timeline_refused_with_gits_message_until_force(tmp_path, git_daemon, rewind):
    url = git_daemon.bare("team.git")
    a = Repo.init(tmp_path / "a")
    sid = factories.write_session(a, 3, name="shared")
    add_remote(a, "origin", url)
    push_(a).check()
    b = clone_(url, tmp_path / "b").repo
    fork(a, sid, "try", "alice's idea")
    mine = fork(b, sid, "try", "bob's idea")
    push_(a).check()

    expected = (f"rewind: ! [rejected] refs/sessions/{sid}/try (non-fast-forward); "
                "fetch first or use --force")
    assert error_line(rewind("push", cwd=b.workdir)) == expected
    assert error_line(rewind("fetch", cwd=b.workdir)) == expected
    assert str(b.git.references[f"refs/sessions/{sid}/try"].target) == mine

    forced = rewind("push", "--force", cwd=b.workdir, check=True)
    assert f"refs/sessions/{sid}/try (forced update)" in forced.stderr
    assert shared_refs(git_daemon.base / "team.git")[f"refs/sessions/{sid}/try"] == mine
    result = json.loads(rewind("fetch", "-f", "--json", cwd=a.workdir, check=True).stdout)
    assert [(u["ref"], u["status"]) for u in result["updates"] if u["status"] != "up-to-date"] == [
        (f"refs/sessions/{sid}/try", "forced")]
    assert_fsck(git_daemon.base / "team.git")


def test_two_clones_push_different_sessions_and_pull(tmp_path, git_daemon, rewind):
    url = git_daemon.bare("team.git")
    b = clone_(url, tmp_path / "b").repo
    c = clone_(url, tmp_path / "c").repo
    sb = factories.write_session(b, 2, name="bob")
    sc = factories.write_session(c, 2, name="carol")
    rewind("push", cwd=b.workdir, check=True)
    rewind("push", cwd=c.workdir, check=True)
    assert [r["id"] for r in log_rows(rewind, b.workdir)] == [sb]  # the listing cache is warm now
    pulled = rewind("pull", cwd=b.workdir, check=True)
    assert f"refs/sessions/{sc}/main" in pulled.stderr
    assert "Already up to date." in rewind("pull", cwd=b.workdir, check=True).stderr
    # nothing was invalidated: the cache is keyed by ref tips, so the pulled session just shows
    assert [r["id"] for r in log_rows(rewind, b.workdir)] == [sc, sb]
    assert_fsck(git_daemon.base / "team.git")


def test_push_one_session_by_ref_and_to_a_url(tmp_path, rewind):
    repo = Repo.init(tmp_path / "a")
    keep = factories.write_session(repo, 1, name="keep")
    factories.write_session(repo, 1, name="other")
    remote_dir = bare(tmp_path / "team.git")
    rewind("push", f"file://{remote_dir}", "keep", cwd=repo.workdir, check=True)
    assert set(shared_refs(remote_dir)) == {f"refs/sessions/{keep}/main"}
    rewind("clone", str(remote_dir), "b", check=True)
    assert [r["name"] for r in log_rows(rewind, tmp_path / "b")] == ["keep"]


def test_one_clean_error_line_each(tmp_path, git_daemon, git_http, rewind):
    repo = Repo.init(tmp_path / "a")
    factories.write_session(repo, 1)
    cwd = repo.workdir
    assert error_line(rewind("push", cwd=cwd)) == (
        "rewind: unknown remote 'origin' (no remotes yet); add it: rewind remote add origin URL")
    assert error_line(rewind("fetch", "latest", cwd=cwd)).startswith("rewind: unknown remote 'latest'")

    port = git_daemon.port
    git_daemon.base.joinpath("x").mkdir()  # a directory, but no repository: the daemon refuses it
    line = error_line(rewind("fetch", git_daemon.url("x"), cwd=cwd))
    assert line.startswith(f"rewind: cannot reach git://127.0.0.1:{port}/x: ")
    line = error_line(rewind("clone", "git://127.0.0.1:9/team.git", "b"))
    assert line.startswith("rewind: cannot reach remote 'origin' (git://127.0.0.1:9/team.git)")
    assert not (tmp_path / "b").exists()

    bare(git_http.server.root / "team.git")
    url = git_http.url("team.git")
    env = {"REWIND_GIT_TOKEN": "wrong", "REWIND_GIT_USERNAME": "alice", "GIT_TERMINAL_PROMPT": "0",
           "HOME": str(tmp_path)}
    line = error_line(rewind("push", url, cwd=cwd, env=env))
    assert line.startswith(f"rewind: authentication failed for {url}") and "REWIND_GIT_TOKEN" in line
    env["GIT_TOKEN"] = git_http.token
    del env["REWIND_GIT_TOKEN"]
    rewind("push", url, cwd=cwd, env=env, check=True)  # GIT_TOKEN works too

    code = pygit2.Repository(str(bare(tmp_path / "code.git")))  # somebody's code, not sessions
    sig = pygit2.Signature("someone", "someone@example.org", 1_700_000_000, 0)
    code.create_commit("refs/heads/main", sig, sig, "code", code.TreeBuilder().write(), [])
    line = error_line(rewind("push", code.path.rstrip("/"), cwd=cwd))
    assert line.startswith(f"rewind: {code.path.rstrip('/')} is not a rewind repository "
                           "(it holds refs/heads/main, and no sessions)")


def test_the_sample_pre_push_hook_vetoes_while_a_session_records(tmp_path, rewind):
    repo = Repo.init(tmp_path / "a")
    factories.write_session(repo, 1, name="done")
    live = factories.write_session(repo, 1, name="live", exit_code=None)
    hook = repo.path / "hooks" / "pre-push"
    shutil.copy(ROOT / "hooks" / "pre-push", hook)
    hook.chmod(0o755)
    remote_dir = bare(tmp_path / "team.git")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with repo.lease(live) as held:  # a recorder is writing "live"
        assert held
        proc = rewind("push", str(remote_dir), cwd=repo.workdir, env=env)
    assert proc.returncode == 1
    assert "pre-push: a session is still recording" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("rewind: the pre-push hook refused the push")
    assert shared_refs(remote_dir) == {}
    rewind("push", str(remote_dir), cwd=repo.workdir, env=env, check=True)
    assert len(shared_refs(remote_dir)) == 2


def test_a_push_that_is_behind_says_so_and_succeeds(tmp_path, rewind):
    from rewind_vcs.store.records import EndInfo

    remote_dir = bare(tmp_path / "team.git")
    a = Repo.init(tmp_path / "a")
    w = a.create_session(name="long", command=["agent"])
    w.append(factories.exchange("one"), factories.info())
    push_(a, str(remote_dir)).check()  # pushed while still recording
    b = clone_(str(remote_dir), tmp_path / "b").repo
    w.append(factories.exchange("two"), factories.info())
    w.finish(EndInfo(exit_code=0))
    push_(a, str(remote_dir)).check()
    out = rewind("push", cwd=b.workdir, check=True).stderr.splitlines()
    assert out == ["Everything up-to-date",
                   f"note: 1 refs on {remote_dir} are ahead of this repository; 'rewind fetch' takes them"]
