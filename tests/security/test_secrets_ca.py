"""The CA private key never lands in a project, and `git add -A` in the project takes nothing of .rewind/."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

from rewind_vcs.proxy.tls import CertificateAuthority, migrate_repository_ca
from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import run_rewind, upstream_env

AGENT = "import urllib.request, json\nprint('ok')\n"


PEM_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/]")


def _private_keys(top: Path) -> list[Path]:
    return [p for p in top.rglob("*") if p.is_file() and PEM_KEY.search(p.read_bytes())]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_init_keeps_the_ca_key_per_user_and_git_add_takes_nothing_of_dot_rewind(tmp_path, fake):
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    (project / "agent.py").write_text(AGENT)
    user_ca = tmp_path / "home-data" / "ca"
    env = {**upstream_env(fake), "REWIND_CA_DIR": str(user_ca)}
    assert run_rewind(["init"], project, env).returncode == 0
    rec = run_rewind(["record", "--name", "s", "--", sys.executable, "agent.py"], project, env)
    assert rec.returncode == 0, rec.stderr
    assert _private_keys(project) == []
    key = user_ca / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(user_ca.stat().st_mode) == 0o700
    assert (project / ".rewind" / ".gitignore").read_text().splitlines()[-1] == "*"
    _git(project, "add", "-A")
    staged = _git(project, "diff", "--cached", "--name-only").split()
    assert staged == ["agent.py"]  # nothing of .rewind/: not the objects, not the bundle, not the ignore file


def test_the_same_user_ca_serves_every_project(tmp_path):
    user_ca = tmp_path / "ca"
    env = {**os.environ, "REWIND_CA_DIR": str(user_ca)}
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        assert run_rewind(["init"], tmp_path / name, env).returncode == 0
    assert len(list(user_ca.glob("ca.key"))) == 1 and _private_keys(tmp_path / "a") == []


def test_an_old_repository_key_moves_out_once_and_keeps_working(tmp_path, fake):
    repo = Repo.init(tmp_path)
    (repo.path / ".gitignore").unlink()  # as a repository made before the ignore file existed
    old = CertificateAuthority.create(repo.path / "ca")
    (tmp_path / "agent.py").write_text(AGENT)
    user_ca = tmp_path / "user" / "ca"
    env = {**upstream_env(fake), "REWIND_CA_DIR": str(user_ca)}
    first = run_rewind(["record", "--", sys.executable, "agent.py"], tmp_path, env)
    assert first.returncode == 0, first.stderr
    assert "moved the CA private key out of" in first.stderr
    assert CertificateAuthority.load(user_ca).fingerprint == old.fingerprint  # the CA clients trusted
    assert _private_keys(repo.path) == [] and (repo.path / ".gitignore").exists()
    second = run_rewind(["record", "--", sys.executable, "agent.py"], tmp_path, env)
    assert second.returncode == 0 and "moved the CA" not in second.stderr


def test_migration_when_the_user_already_has_a_ca_removes_the_project_copy(tmp_path):
    mine = CertificateAuthority.create(tmp_path / "user")
    CertificateAuthority.create(tmp_path / "repo-ca")
    assert migrate_repository_ca(tmp_path / "repo-ca", tmp_path / "user")
    assert not (tmp_path / "repo-ca" / "ca.key").exists()
    assert CertificateAuthority.load(tmp_path / "user").fingerprint == mine.fingerprint
    assert not migrate_repository_ca(tmp_path / "repo-ca", tmp_path / "user")  # said once


def test_library_callers_without_a_ca_dir_get_an_in_memory_ca(tmp_path, fake):
    from rewind_vcs.proxy.run import ProxySettings, record_run

    repo = Repo.init(tmp_path)
    (tmp_path / "agent.py").write_text(AGENT)
    settings = ProxySettings(upstreams={"openai": fake.url})
    record_run(repo, [sys.executable, "agent.py"], env=upstream_env(fake), cwd=str(tmp_path), settings=settings)
    assert _private_keys(tmp_path) == []
    assert list((repo.path / "ca").glob("*.pem")) == []  # its bundle is removed when the proxy stops
