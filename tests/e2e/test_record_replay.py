"""Record real SDK agents through the real proxy, then replay them with the upstream gone.

Tried as a new user would: the agents are unmodified; only `rewind record --`
stands in front of them.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import agent, offline_env, run_rewind, upstream_env

KEY = "sk-test-SECRET-never-stored-0123456789"


def record_then_replay(workdir, fake, *cmd: str, name: str = "run"):
    rec = run_rewind(["record", "--name", name, "--", *cmd], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    seen = fake.request_count
    fake.stop()  # the upstream is gone: replay must not need it
    rep = run_rewind(["replay", name, "--json"], workdir, offline_env())
    assert rep.returncode == 0, rep.stderr
    summary = json.loads(rep.stdout[rep.stdout.index("{\n"):])
    agent_out = rep.stdout[: rep.stdout.index("{\n")]
    return rec, agent_out, summary, seen


@pytest.mark.parametrize("provider, steps", [("openai", 18), ("anthropic", 4), ("gemini", 2)])
def test_sdk_agent_replays_identically_with_no_upstream(workdir, fake, provider, steps):
    rec, replay_out, summary, seen = record_then_replay(workdir, fake, sys.executable, agent("sdk_agent.py"),
                                                        provider, name=provider)
    assert seen == steps
    assert "stream:" in rec.stdout and "plain:" in rec.stdout
    assert replay_out == rec.stdout  # byte-identical agent output
    assert summary["output_identical"] is True
    assert summary["served"] == steps and summary["misses"] == 0
    session = Repo.open(workdir).timeline(provider)
    assert len(session.steps) == steps
    assert all(s.info.usage.total > 0 for s in session.steps if s.info.endpoint != "embeddings")
    assert all(s.info.model for s in session.steps)


def test_streams_pass_through_chunk_by_chunk_and_are_stored_with_timings(workdir, fake):
    fake.chunk_delay = 0.02
    rec = run_rewind(["record", "--name", "s", "--", sys.executable, agent("sdk_agent.py"), "anthropic"],
                     workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    step = Repo.open(workdir).timeline("s").step(2)
    assert step.info.stream
    chunks = step.response.chunks
    assert len(chunks) > 3
    assert sum(n for _, n in chunks) == len(step.response.body)
    assert chunks[-1][0] - chunks[0][0] >= 0.02 * (len(chunks) - 2)  # arrival times, not one buffered blob
    assert step.info.ttft_ms is not None and step.info.ttft_ms < step.info.latency_ms


def test_recorded_failures_replay_as_the_same_exceptions(workdir, fake):
    rec, replay_out, summary, _ = record_then_replay(workdir, fake, sys.executable, agent("sdk_agent.py"),
                                                     "errors", name="errors")
    assert "429 RateLimitError 429" in rec.stdout
    assert "500 InternalServerError 500" in rec.stdout
    assert "reset APIConnectionError None" in rec.stdout
    assert "anthropic 429 RateLimitError" in rec.stdout
    assert "still serving:" in rec.stdout
    assert replay_out == rec.stdout
    steps = Repo.open(workdir).timeline("errors").steps
    assert [s.info.status.value for s in steps] == ["error", "error", "error", "error", "ok"]
    assert steps[2].response.error.value == "connection_reset"


def test_the_api_keys_never_reach_the_store(workdir, fake):
    rec = run_rewind(["record", "--", sys.executable, agent("sdk_agent.py"), "openai"], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    assert any(KEY in r.headers.get("authorization", "") for r in fake.requests)  # the upstream did get it
    objects = subprocess.run(["git", "--git-dir", str(workdir / ".rewind"), "cat-file", "--batch-all-objects",
                              "--batch"], capture_output=True, check=True).stdout
    assert len(objects) > 10_000
    assert KEY.encode() not in objects
    assert b"SECRET" not in objects
    for path in (workdir / ".rewind").rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_miss_names_the_closest_step_and_the_differing_field(workdir, fake):
    rec = run_rewind(["record", "--name", "q", "--", sys.executable, agent("sdk_agent.py"), "anthropic",
                      "What is the capital of France?"], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    fake.stop()
    rep = run_rewind(["replay", "q", "--", sys.executable, agent("sdk_agent.py"), "anthropic",
                      "What is the capital of Peru?"], workdir, offline_env())
    assert rep.returncode != 0
    # the SDK raised a clear API error carrying rewind's message...
    assert "BadRequestError" in rep.stderr or "400" in rep.stderr
    # ...and rewind said the same on stderr: the closest step and the field
    line = next(ln for ln in rep.stderr.splitlines() if ln.startswith("rewind replay: no recorded step"))
    assert "closest is step 1" in line
    assert "messages[0].content" in line and "France" in line and "Peru" in line


def test_record_passes_stdin_exit_code_and_options_through(workdir, fake):
    script = workdir / "echo.py"
    script.write_text("import sys\nprint(sys.stdin.read().upper(), sys.argv[1:])\nsys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-m", "rewind_vcs", "record", sys.executable, str(script),
                           "--input", '{"query": "refund #8821"}'], cwd=workdir, env=upstream_env(fake),
                          input="hello", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stdout == "HELLO ['--input', '{\"query\": \"refund #8821\"}']\n"
    assert "recorded session" in proc.stderr
    s = Repo.open(workdir).sessions()[0]
    assert s.exit_code == 3 and s.status.value == "failed"
    info = Repo.open(workdir).session(s.id).info
    assert info.command[-2:] == ["--input", '{"query": "refund #8821"}'] and info.cwd == str(workdir)


def test_curl_through_https_proxy_interception(workdir, fake):
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi from curl"}]})
    cmd = ["curl", "-sS", "--fail-with-body", "https://api.openai.com/v1/chat/completions",
           "-H", "content-type: application/json", "-H", f"authorization: Bearer {KEY}", "-d", body]
    rec = run_rewind(["record", "--name", "curl", "--", *cmd], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    assert "hi from curl" in rec.stdout
    step = Repo.open(workdir).timeline("curl").step(1)
    assert step.request.scheme == "https" and step.request.host == "api.openai.com"
    assert step.info.provider == "openai" and step.info.model == "gpt-4o-mini"
    fake.stop()
    rep = run_rewind(["replay", "curl"], workdir, offline_env())
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout == rec.stdout


def test_node_openai_client(workdir, fake, node_openai):
    import shutil

    from tests.e2e.conftest import ROOT

    shutil.copy(ROOT / "examples" / "node_agent.mjs", workdir / "node_agent.mjs")
    (workdir / "node_modules").symlink_to(node_openai)
    rec = run_rewind(["record", "--name", "node", "--", "node", "node_agent.mjs"], workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    assert Repo.open(workdir).timeline("node").steps
    fake.stop()
    rep = run_rewind(["replay", "node"], workdir, offline_env())
    assert rep.returncode == 0, rep.stderr
    assert rep.stdout == rec.stdout


def test_latency_recorded_replays_at_the_recorded_pace(workdir, fake):
    """End to end, paced replay is never faster than the recording (a bound load cannot break).

    That pacing waits exactly the recorded gaps, and that no latency waits not at
    all, is shown with a fake clock in tests/proxy/test_clock.py.
    """
    import time

    fake.chunk_delay = 0.05
    rec = run_rewind(["record", "--name", "slow", "--", sys.executable, agent("sdk_agent.py"), "anthropic"],
                     workdir, upstream_env(fake))
    assert rec.returncode == 0, rec.stderr
    recorded = sum(s.info.latency_ms for s in Repo.open(workdir).timeline("slow").steps) / 1000
    assert recorded > 0.5
    fast = run_rewind(["replay", "slow"], workdir, offline_env())
    t0 = time.perf_counter()
    paced = run_rewind(["replay", "slow", "--latency", "recorded"], workdir, offline_env())
    t_paced = time.perf_counter() - t0
    assert fast.returncode == 0 and paced.returncode == 0, paced.stderr
    assert paced.stdout == fast.stdout == rec.stdout
    # the recorded inter-chunk timing was kept: paced, the replay cannot take less than the
    # recorded calls did (a bound that machine load can only make easier to meet)
    assert t_paced >= 0.9 * recorded
    bad = run_rewind(["replay", "slow", "--latency", "warp"], workdir, offline_env())
    assert bad.returncode != 0 and "bad --latency 'warp'" in bad.stderr and "Traceback" not in bad.stderr
