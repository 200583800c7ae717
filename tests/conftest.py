"""Fixtures shared by the whole suite."""

from __future__ import annotations

import subprocess

import pytest

from rewind_vcs.store.repo import Repo


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
