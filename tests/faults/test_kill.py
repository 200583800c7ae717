"""``kill -9`` of a real ``rewind record`` process while its agent is in the middle of a stream.

The recorder's promise: every exchange that finished before the kill is in
the journal (one ``write`` each), the git store is never left corrupt, and
the next ``rewind`` command turns the journal into steps and shows the
session as ``incomplete``.
"""

from __future__ import annotations

import json
import re
import signal
import sys

import pygit2

from rewind_vcs.store.refs import read_refs, timeline_ref
from rewind_vcs.testing.fake_llm import FakeLLM
from tests.conftest import git_fsck
from tests.faults.conftest import (
    LineReader,
    agent,
    kill_quietly,
    offline_env,
    popen_rewind,
    run_rewind,
    upstream_env,
    wait_gone,
)

AGENT = "slow_stream_agent.py"


def _fsck_clean(rewind_dir) -> None:
    r = git_fsck(rewind_dir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "error" not in r.stderr.lower(), r.stderr


def test_sigkill_of_rewind_record_mid_stream_loses_no_finished_step(workdir):
    with FakeLLM(slow_delay=0.3) as fake:
        proc = popen_rewind(["record", "--name", "killed", "--", sys.executable, agent(AGENT)],
                            workdir, upstream_env(fake))
        agent_pid = None
        try:
            lines = LineReader(proc.stdout).until(lambda ln: ln.startswith("piece"), timeout=20)
            agent_pid = int(next(ln for ln in lines if ln.startswith("agent pid")).split()[-1])
            assert [ln.split()[1] for ln in lines if ln.startswith("finished")] == ["0", "1", "2"]
            # The stream is under way: its head and first pieces went through, the rest is still coming.
            assert fake.request_count == 4
            proc.send_signal(signal.SIGKILL)  # the rewind process itself, not just the agent
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if agent_pid is not None:
                kill_quietly(agent_pid, AGENT)  # orphaned by the kill: it would otherwise run on
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL
        assert agent_pid is not None and wait_gone(agent_pid)

    rewind_dir = workdir / ".rewind"
    _fsck_clean(rewind_dir)  # a kill at any moment leaves a valid git repository
    sessions = [name for name in read_refs(rewind_dir) if name.endswith("/main")]
    assert len(sessions) == 1
    sid = sessions[0].split("/")[2]
    committed_before = sum(1 for c in pygit2.Repository(str(rewind_dir)).walk(
        read_refs(rewind_dir)[timeline_ref(sid)]) if "Rewind-Kind: step" in c.message)
    journals = list((rewind_dir / "journal").glob("*.jnl"))
    assert committed_before == 3 or journals, "finished steps neither committed nor journalled"

    log = run_rewind(["log", "--json"], workdir, offline_env())
    assert log.returncode == 0, log.stderr
    (row,) = json.loads(log.stdout)
    assert row["id"] == sid and row["name"] == "killed"
    assert row["status"] == "incomplete"
    assert row["steps"] == 3  # every finished call; the stream that was cut by the kill never finished
    recovered = re.search(r"recovered (\d+) steps of interrupted session (\w+)/main", log.stderr)
    if committed_before < 3:
        assert recovered and int(recovered.group(1)) == 3 - committed_before and recovered.group(2) == sid
    else:
        assert recovered is None
    assert not list((rewind_dir / "journal").glob("*.jnl"))  # recovery consumed the journal
    _fsck_clean(rewind_dir)

    steps = json.loads(run_rewind(["log", sid, "--json"], workdir, offline_env()).stdout)
    assert [s["n"] for s in steps] == [1, 2, 3]
    assert all(s["status"] == "ok" and s["http_status"] == 200 for s in steps)
    show = run_rewind(["show", sid, "--json"], workdir, offline_env())
    assert show.returncode == 0, show.stderr
    shown = json.loads(show.stdout)
    assert shown["status"] == "incomplete" and shown["exit_code"] is None
    assert len(shown["steps"]) == 3
    text = run_rewind(["show", sid], workdir, offline_env())
    assert text.returncode == 0 and "interrupted" in text.stdout, text.stdout + text.stderr
    step = run_rewind(["show", f"{sid}@step-3", "--json"], workdir, offline_env())
    assert step.returncode == 0, step.stderr
    assert "finished call 2" in json.dumps(json.loads(step.stdout)["normalised"])
    again = run_rewind(["log", "--json"], workdir, offline_env())
    assert "recovered" not in again.stderr and json.loads(again.stdout)[0]["steps"] == 3  # idempotent
