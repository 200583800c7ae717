"""End-to-end fixtures: a real fake provider on loopback, a real repository, the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rewind_vcs.demo.fake_llm import FakeLLM
from rewind_vcs.store.repo import Repo

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / "agents"
NODE_DIR = ROOT / "tests" / "node"


@pytest.fixture
def fake():
    with FakeLLM() as server:
        yield server


@pytest.fixture
def workdir(tmp_path) -> Path:
    Repo.init(tmp_path)
    return tmp_path


def upstream_env(fake: FakeLLM) -> dict[str, str]:
    """Point every provider at the fake, as an air-gapped user would with REWIND_UPSTREAM_*."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_")) and "PROXY" not in k.upper()}
    env.update({f"REWIND_UPSTREAM_{p}": fake.url for p in ("OPENAI", "ANTHROPIC", "GEMINI")})
    return env


def offline_env() -> dict[str, str]:
    """Every upstream unreachable: a replay that tried to call one would fail loudly."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANTHROPIC_", "GOOGLE_", "GEMINI_")) and "PROXY" not in k.upper()}
    env.update({f"REWIND_UPSTREAM_{p}": "http://127.0.0.1:9" for p in ("OPENAI", "ANTHROPIC", "GEMINI")})
    return env


def run_rewind(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd, env={**env, "COLUMNS": "200"},
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def agent(name: str) -> str:
    return str(AGENTS / name)


@pytest.fixture(scope="session")
def node_openai() -> Path:
    """The official openai npm package, installed by the tests themselves (npm ci)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node/npm are not installed on this machine")
    if not (NODE_DIR / "node_modules" / "openai" / "package.json").exists():
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=600)
        if proc.returncode != 0:
            pytest.fail(f"npm ci failed in {NODE_DIR}: {proc.stderr[-2000:]}")
    return NODE_DIR / "node_modules"
