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
