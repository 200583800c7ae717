"""End-to-end fixtures: a real fake provider on loopback, a real repository, the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rewind_vcs.store.repo import Repo
from rewind_vcs.testing.fake_llm import FakeLLM

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / "agents"


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
