"""``rewind demo`` as a library call: two recorded runs of the research agent, and a replay.

No API key and no network: a :class:`~rewind_vcs.testing.fake_llm.FakeLLM` on
loopback plays OpenAI and Anthropic, and the real proxy records the sample
agent (``research_agent.py``, standard library only) against it. The second
run searches a stale index, so it goes wrong only at a later step: the pair
is made for ``diff``, ``bisect`` and ``replay --from``. The replay at the end
runs with the fake provider already stopped: zero upstream calls.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rewind_vcs.proxy.run import ProxySettings, RecordResult, ReplayResult, record_run, replay_run
from rewind_vcs.testing.fake_llm import FakeLLM

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

AGENT = Path(__file__).resolve().parent / "research_agent.py"
QUERY = {"query": "How many electric cars were sold worldwide in 2024?"}
#: Variables that would send the demo somewhere else than its fake provider.
_STRIPPED = (
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_GEMINI_BASE_URL",
    "RESEARCH_AGENT_STALE",
    "SEARCH_URL",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "https_proxy",
    "http_proxy",
)


@dataclass
class DemoResult:
    good: RecordResult
    bad: RecordResult
    replay: ReplayResult


def demo_command(python: str, *, stale: bool) -> list[str]:
    cmd = [python, str(AGENT), "--input", json.dumps(QUERY)]
    return cmd + ["--stale"] if stale else cmd


def run_demo(
    repo: Repo,
    *,
    python: str,
    env: Mapping[str, str],
    out: IO[bytes] | None = None,
    chunk_delay: float = 0.005,
) -> DemoResult:
    """Record a good and a stale run of the sample agent, then replay the stale one offline."""
    clean = {
        k: v for k, v in env.items() if k not in _STRIPPED and not k.startswith("REWIND_UPSTREAM")
    }
    cwd = str(repo.workdir)
    with FakeLLM(chunk_delay=chunk_delay) as fake:
        settings = ProxySettings(
            upstreams={"openai": fake.url, "anthropic": fake.url, "gemini": fake.url}
        )
        good, bad = (
            record_run(
                repo,
                demo_command(python, stale=stale),
                env=clean,
                cwd=cwd,
                name=name,
                settings=settings,
                out=out,
            )
            for stale, name in ((False, "research-good"), (True, "research-stale"))
        )
    _tag(repo, "good", good.session_id)
    _tag(repo, "bad", bad.session_id)
    replay = replay_run(repo, repo.resolve(bad.session_id), env=clean, out=None)
    return DemoResult(good, bad, replay)


def _tag(repo: Repo, name: str, session_id: str) -> None:
    import pygit2

    target = repo.resolve(session_id)
    repo.git.references.create(f"refs/tags/{name}", pygit2.Oid(hex=target.commit), force=True)
