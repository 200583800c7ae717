"""The pre-push hook `rewind init` installs refuses a push whose new objects hold a key shape."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader
from pathlib import Path
from types import ModuleType

import pygit2
import pytest

from rewind_vcs.store import secrets
from rewind_vcs.store.repo import Repo
from tests import factories
from tests.e2e.conftest import run_rewind
from tests.security.conftest import SAMPLES

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "rewind_vcs" / "hooks" / "pre-push"


def _hook_module() -> ModuleType:
    loader = SourceFileLoader("rewind_pre_push", str(HOOK))
    spec = spec_from_loader("rewind_pre_push", loader)
    assert spec is not None
    module = module_from_spec(spec)
    loader.exec_module(module)
    return module


def _shared_refs(git_dir: Path) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(git_dir), "for-each-ref", "--format=%(refname)"],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def _bare(path: Path) -> Path:
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    return path


def _leak(repo: Repo, sid: str, text: bytes) -> None:
    """Rewrite a session's last commit so one blob holds ``text`` (as an older rewind, or a hand edit, would)."""
    git = repo.git
    ref = f"refs/sessions/{sid}/main"
    tip = git[git.references[ref].target]
    tb = git.TreeBuilder(tip.tree)
    tb.insert("stdout", git.create_blob(text), pygit2.GIT_FILEMODE_BLOB)
    new = git.create_commit(None, tip.author, tip.committer, tip.message, tb.write(), tip.parent_ids)
    git.references[ref].set_target(new)


@pytest.fixture
def project(tmp_path) -> Path:
    top = tmp_path / "p"
    top.mkdir()
    proc = run_rewind(["init"], top, {**os.environ})
    assert proc.returncode == 0, proc.stderr
    return top


def test_init_installs_the_hook_executable_and_the_same_as_the_sample(project):
    installed = project / ".rewind" / "hooks" / "pre-push"
    assert os.access(installed, os.X_OK)
    assert installed.read_bytes() == HOOK.read_bytes() == (ROOT / "hooks" / "pre-push").read_bytes()


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_the_hook_knows_every_shape_the_scanner_knows(kind):
    hook = _hook_module()
    key = SAMPLES[kind].encode()
    assert hook.shapes_in(b'{"stdout": "' + key + b'"}'), kind
    assert hook.shapes_in(secrets.redact_bytes(b"x " + key + b" y")) == []  # what rewind stores passes


def test_the_hook_passes_what_rewind_stores_and_ordinary_prose():
    hook = _hook_module()
    for text in (b"Authorization: Bearer [REDACTED:bearer]", b"the bearer of bad news", b"task-force-2024-plans",
                 b"max_tokens=100", b'"api_key": "[REDACTED:field]"'):
        assert hook.shapes_in(text) == [], text
    assert hook.shapes_in(b"-----BEGIN EC PRIVATE KEY-----\nMHcC") == ["private-key"]


def test_a_push_holding_a_key_is_refused_and_a_clean_one_goes(project, tmp_path):
    repo = Repo.open(project)
    clean = factories.write_session(repo, 1, name="clean")
    remote = _bare(tmp_path / "team.git")
    ok = run_rewind(["push", str(remote)], project, {**os.environ})
    assert ok.returncode == 0, ok.stderr
    assert any(clean in r for r in _shared_refs(remote))

    leaky = factories.write_session(repo, 1, name="leaky")
    _leak(repo, leaky, b"my key is " + SAMPLES["anthropic"].encode() + b"\n")
    refused = run_rewind(["push", str(remote)], project, {**os.environ})
    assert refused.returncode == 1
    assert "holds a key shaped like openai/anthropic" in refused.stderr
    assert "rewind: the pre-push hook refused the push" in refused.stderr
    assert SAMPLES["anthropic"] not in refused.stderr  # the refusal names the object, never the key
    assert not any(leaky in r for r in _shared_refs(remote))


def test_without_git_the_hook_refuses_and_says_why(project, tmp_path):
    repo = Repo.open(project)
    factories.write_session(repo, 1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)  # python, but no git (and no rewind) on PATH
    remote = _bare(tmp_path / "r.git")
    proc = run_rewind(["push", str(remote)], project, {**os.environ, "PATH": str(bin_dir)})
    assert proc.returncode == 1
    assert "needs git on PATH" in proc.stderr
    assert _shared_refs(remote) == []
