"""Concurrency under a real ``rewind record``: 100 streams at once in one agent, two recorders in one repo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rewind_vcs.providers import match_key, normalise
from rewind_vcs.store.records import SessionStatus, StepStatus
from rewind_vcs.store.repo import Repo
from rewind_vcs.testing.fake_llm import FakeLLM
from tests.conftest import git_fsck
from tests.faults.conftest import (
    agent,
    offline_env,
    popen_rewind,
    replay_summary,
    run_rewind,
    upstream_env,
)

N = 100
ROOT = Path(__file__).resolve().parents[2]


def answer(question: str) -> str:
    """The fake's deterministic reply to a one-message chat (rewind_vcs.testing.scripts.answer_text)."""
    return f"gpt-4o-mini answers, from what you gave me:\n> {question}"


def test_100_concurrent_streams_are_100_whole_steps_and_replay_identically(workdir):
    with FakeLLM(chunk_delay=0.05) as fake:
        rec = run_rewind(["record", "--name", "many", "--", sys.executable, agent("many_streams_agent.py"), str(N)],
                         workdir, upstream_env(fake), timeout=90)
        assert rec.returncode == 0, rec.stderr
        assert fake.request_count == N
    lines = rec.stdout.splitlines()
    assert lines == [f"{i} " + answer(f"concurrent question number {i}").replace("\n", " | ") for i in range(N)]

    steps = Repo.open(workdir).timeline("many").steps
    assert [s.n for s in steps] == list(range(1, N + 1))
    asked = set()
    for step in steps:
        # Each step is one exchange, whole: its output answers its own request, no bytes from another stream.
        question = json.loads(step.request.body)["messages"][0]["content"]
        view = normalise(step.exchange, hint=step.info.provider)
        assert view.output_text == answer(question), step.n
        assert step.info.status is StepStatus.OK and step.response.error is None
        assert step.info.stream and step.info.usage.output_tokens > 0
        body = step.response.body
        assert body.endswith(b"data: [DONE]\n\n") and body.count(b"data: [DONE]") == 1
        assert sum(n for _, n in step.response.chunks) == len(body)
        assert step.info.match_key == match_key(step.request, step.info.provider)
        asked.add(int(question.rsplit(" ", 1)[1]))
    assert asked == set(range(N))
    assert len({s.info.match_key for s in steps}) == N
    # They really overlapped: many streams had started before the first one ended.
    first_end = min(s.info.started_at + s.info.latency_ms / 1000 for s in steps)
    assert sum(s.info.started_at < first_end for s in steps) >= 20

    rep = run_rewind(["replay", "many", "--json"], workdir, offline_env(), timeout=90)
    assert rep.returncode == 0, rep.stderr
    out, summary = replay_summary(rep.stdout)
    assert out == rec.stdout
    assert summary["served"] == N and summary["misses"] == 0 and summary["output_identical"] is True


def test_two_rewind_record_processes_into_one_repository_both_end_whole(workdir):
    calls = 8
    # `rewind init` first, as the README says: it makes the CA. Without it both runs race to make
    # one, and one of them fails (test_two_processes_creating_the_ca_at_once_both_get_it).
    assert run_rewind(["init"], workdir, offline_env()).returncode == 0
    with FakeLLM() as fake:
        env = upstream_env(fake)
        procs = {name: popen_rewind(["record", "--name", name, "--", sys.executable,
                                     agent("sequential_agent.py"), str(calls)], workdir, env)
                 for name in ("left", "right")}
        try:
            done = {name: proc.communicate(timeout=90) for name, proc in procs.items()}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    for name, proc in procs.items():
        assert proc.returncode == 0, done[name][1]
    assert done["left"][0] == done["right"][0]  # the same calls, the same answers

    repo = Repo.open(workdir)
    sessions = {s.name: s for s in repo.sessions(use_cache=False)}
    assert set(sessions) == {"left", "right"}
    spans = {}
    for name, summary in sessions.items():
        assert summary.status is SessionStatus.OK and summary.steps == calls
        steps = repo.timeline(name).steps
        assert [s.n for s in steps] == list(range(1, calls + 1))
        for step in steps:
            assert json.loads(step.request.body)["messages"][0]["content"] == f"shared question {step.n - 1}"
            assert normalise(step.exchange, hint="openai").output_text == answer(f"shared question {step.n - 1}")
        spans[name] = (steps[0].info.started_at, steps[-1].info.started_at)
    (a0, a1), (b0, b1) = spans.values()
    assert a0 < b1 and b0 < a1, "the two recordings did not overlap in time"
    assert not list((workdir / ".rewind" / "journal").glob("*.jnl"))
    assert not list((workdir / ".rewind" / "refs").rglob("*.lock"))
    fsck = git_fsck(workdir / ".rewind")
    assert fsck.returncode == 0 and "error" not in fsck.stderr.lower(), fsck.stdout + fsck.stderr


CA_CHILD = """
import sys, time
from pathlib import Path
from rewind_vcs.proxy.tls import CertificateAuthority
go = Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.0005)
try:
    print("ok", CertificateAuthority.load_or_create(sys.argv[1]).fingerprint, flush=True)
except Exception as exc:
    print("error", type(exc).__name__, exc, flush=True)
"""


def test_two_processes_creating_the_ca_at_once_both_get_it(tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CA_CHILD, str(tmp_path / "ca"), str(go)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(6)]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        go.touch()  # all six look for the CA within a millisecond or so
        outcomes = [proc.communicate(timeout=30)[0].strip() for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(o.startswith("ok ") for o in outcomes), outcomes
    assert len({o.split()[1] for o in outcomes}) == 1  # one CA, the same for everyone
