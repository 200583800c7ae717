"""Hostile bare remotes: real git repositories holding what no rewind writes (issue K, "pull verifies what
import verifies; one bad session breaks nothing else"). Clone and pull skip each bad ref or session with one
warning, the good sessions arrive, and ``git fsck`` stays clean."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pygit2

from rewind_vcs.store.arrivals import Origin, read_arrivals
from rewind_vcs.store.repo import Repo
from rewind_vcs.transfer.fetch import clone, fetch
from rewind_vcs.transfer.push import push
from tests import factories
from tests.conftest import git_fsck
from tests.e2e.conftest import offline_env, run_rewind
from tests.security import transfer_craft as craft
from tests.transfer.test_remote import git_daemon  # noqa: F401 - a fixture

BROKEN = ("refs/sessions/aaaaaaaaaaaa/ma..in", craft.ESC_TAG)


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True, timeout=60).stdout


def hostile_remote(tmp_path: Path, bare: Path | None = None) -> tuple[Path, str, dict[str, str]]:
    """A bare repository (``git init --bare``) with one good session, then everything a hostile teammate
    could push with plain git: a code commit under refs/sessions/x/main, a code commit posing as a session,
    a newer-format session, tags named HEAD, step-3 and latest, a bidi tag, and refs with broken names."""
    bare = bare or tmp_path / "team.git"
    _git("init", "-q", "--bare", str(bare))
    alice = Repo.init(tmp_path / "alice")
    good = factories.write_session(alice, 2, name="good")
    alice.git.references.create("refs/tags/fine", alice.git.references[f"refs/sessions/{good}/main"].target)
    push(alice, str(bare)).check()

    mallory = Repo.init(tmp_path / "mallory")
    code = craft.plain_code_commit(mallory)
    mallory.git.references.create("refs/sessions/x/main", pygit2.Oid(hex=code))
    bad = {"code": craft.code_commit_session(mallory), "newer": craft.newer_format_session(mallory)}
    tip = mallory.git.references[f"refs/sessions/{bad['code']}/main"].target
    remote_good_tip = pygit2.Repository(str(bare)).references[f"refs/sessions/{good}/main"].target
    _git("--git-dir", str(mallory.path), "fetch", "-q", str(bare), f"refs/sessions/{good}/main:refs/x/good")
    for name in ("HEAD", "step-3", "latest"):
        mallory.git.references.create(f"refs/tags/{name}", remote_good_tip)
    mallory.git.references.create(craft.BIDI_TAG, remote_good_tip)
    mallory.git.references.create("refs/tags/into-bad", tip)
    _git("--git-dir", str(mallory.path), "push", "-q", str(bare), "refs/sessions/*:refs/sessions/*",
         "refs/tags/*:refs/tags/*")
    # names no git command creates: written straight into packed-refs, as a broken server might hold them
    with open(bare / "packed-refs", "a") as f:
        for name in BROKEN:
            f.write(f"{remote_good_tip} {name}\n")
    return bare, good, bad


def _check_outcome(repo: Repo, lines: list[str], good: str, bad: dict[str, str]) -> None:
    assert repo.session_ids() == [good]
    names = {r.name for r in repo.git.references.iterator()}
    assert "refs/tags/fine" in names
    assert not {n for n in names if n.startswith("refs/tags/")} - {"refs/tags/fine"}, names
    assert any("refs/sessions/x/main" in line for line in lines)
    assert any(bad["code"] in line and "does not read as rewind records" in line for line in lines)
    assert any(bad["newer"] in line and "newer rewind" in line for line in lines)
    for name in ("HEAD", "step-3", "latest", "into-bad"):
        assert any(f"refs/tags/{name}:" in line for line in lines), (name, lines)
    assert all("\x1b" not in line and "\u202e" not in line for line in lines)
    assert git_fsck(repo.path).returncode == 0, git_fsck(repo.path).stdout
    repo.sessions()  # listing works


def test_clone_of_a_hostile_remote_takes_only_the_good_session(tmp_path):
    bare, good, bad = hostile_remote(tmp_path)
    done = clone(str(bare), tmp_path / "bob")
    lines = [s.line() for s in done.fetch.skipped]
    _check_outcome(done.repo, lines, good, bad)
    assert sum("is not a valid ref name" in line for line in lines) == len(BROKEN)  # local transport saw them
    arrival = read_arrivals(done.repo.path)[good]
    assert arrival.origin is Origin.FETCHED and arrival.source == "origin"
    again = fetch(done.repo)  # nothing new, the same warnings, nothing fails
    assert again.changed == [] and not again.rejected and len(again.skipped) == len(lines)


def test_pull_over_git_daemon_skips_with_warnings_and_exits_0(tmp_path, git_daemon):  # noqa: F811
    bare, good, bad = hostile_remote(tmp_path, git_daemon.base / "team.git")
    url = git_daemon.url("team.git")
    bob = Repo.init(tmp_path / "bob")
    env = {**offline_env(), "REWIND_DIR": str(bob.path)}
    proc = run_rewind(["pull", url], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    _check_outcome(bob, warnings, good, bad)


def test_pull_of_a_hostile_path_remote_from_the_cli(tmp_path):
    bare, good, bad = hostile_remote(tmp_path)
    bob = Repo.init(tmp_path / "bob")
    env = {**offline_env(), "REWIND_DIR": str(bob.path)}
    proc = run_rewind(["pull", str(bare)], cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: skipped")]
    _check_outcome(bob, warnings, good, bad)
    listed = run_rewind(["log", "--json"], cwd=tmp_path, env=env)
    assert [row["id"] for row in json.loads(listed.stdout)] == [good]


def test_a_pulled_session_id_that_exists_here_with_another_root_is_refused(tmp_path):
    bare = tmp_path / "team.git"
    _git("init", "-q", "--bare", str(bare))
    alice = Repo.init(tmp_path / "alice")
    theirs = factories.write_session(alice, 2, name="theirs")
    alice.git.references.create(f"refs/sessions/{theirs}/fork", alice.git.references[
        f"refs/sessions/{theirs}/main"].target)
    push(alice, str(bare)).check()
    bob = Repo.init(tmp_path / "bob")
    mine = factories.write_session(bob, 1, name="mine")
    bob.git.references.create(f"refs/sessions/{theirs}/main", bob.git.references[f"refs/sessions/{mine}/main"].target)
    result = fetch(bob, str(bare))
    assert any("a different session with id" in s.line() for s in result.skipped)
    assert bob.git.references.get(f"refs/sessions/{theirs}/fork") is None
    assert git_fsck(bob.path).returncode == 0
