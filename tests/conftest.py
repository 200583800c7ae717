"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from rewind_vcs.store.repo import Repo

# CI runs the same examples every time (a red CI must be reproducible); locally
# hypothesis explores new ones. No deadline: this machine is shared and noisy.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def repo(tmp_path) -> Repo:
    """A fresh rewind repository in a temp directory."""
    return Repo.init(tmp_path)


def git_fsck(rewind_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", "--git-dir", str(rewind_dir), "fsck", "--strict"],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def fsck():
    """Call with a repo; asserts that `git fsck --strict` is clean."""

    def check(repo: Repo) -> None:
        r = git_fsck(repo.path)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "error" not in r.stderr.lower(), r.stderr

    return check


@pytest.fixture(scope="session", autouse=True)
def _user_ca_dir(tmp_path_factory):
    """The per-user CA of every rewind the tests start lives in a temporary folder, not in ~."""
    import os

    path = tmp_path_factory.mktemp("user-ca") / "ca"
    old = os.environ.get("REWIND_CA_DIR")
    os.environ["REWIND_CA_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("REWIND_CA_DIR", None)
    else:
        os.environ["REWIND_CA_DIR"] = old


@pytest.fixture
def rewind(tmp_path):
    """Run the real ``rewind`` command (a subprocess) in ``tmp_path``; returns CompletedProcess."""
    import os
    import sys

    def run(*args: str, cwd=None, env=None, input=None, timeout=60, check=False):
        full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
        full_env.pop("REWIND_DIR", None) if env is None or "REWIND_DIR" not in env else None
        proc = subprocess.run(
            [sys.executable, "-m", "rewind_vcs", *args],
            cwd=cwd or tmp_path,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return run


NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="session")
def node_openai() -> Path:
    """The official openai npm package, installed by the tests themselves (``npm ci`` in tests/node).

    Several xdist workers may ask at once: an ``flock`` makes one install and the others wait.
    """
    import fcntl
    import shutil

    node, npm = shutil.which("node"), shutil.which("npm")
    if (not node or not npm) and shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-q", "nodejs", "npm"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "nodejs", "npm"]):
            if subprocess.run(cmd, env=env, capture_output=True, timeout=900).returncode == 0 and "install" in cmd:
                break
        node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        if os.environ.get("CI"):
            pytest.fail("node and npm are needed for the Node client tests (apt-get install nodejs npm)")
        pytest.skip("node/npm are not installed on this machine")
    modules = NODE_DIR / "node_modules"
    with open(NODE_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (modules / "openai" / "package.json").exists():
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                                  text=True, timeout=600)
            if proc.returncode != 0:
                pytest.fail(f"npm ci failed in {NODE_DIR}: {proc.stderr[-2000:]}")
    return modules
