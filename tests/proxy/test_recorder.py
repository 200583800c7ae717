"""The recorder: journal first, commits later; crash recovery; the pre-step hook."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from rewind_vcs.proxy.hooks import StepHook
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.recovery import recover_journals
from rewind_vcs.store.journal import read_journal
from rewind_vcs.store.records import EndInfo, SessionInfo, SessionStatus
from tests import factories


def test_record_journals_without_committing_until_flush(repo):
    rec = Recorder(repo, SessionInfo(name="j"), hook=None)
    for i in range(3):
        rec.record(factories.exchange(f"q{i}"), hint="openai")
    (writer,) = rec.writers()
    assert writer.steps == 0 and rec.pending == 3
    journal = next((repo.path / "journal").glob("*.jnl"))
    assert [e.seq for e in read_journal(journal)] == [1, 2, 3]
    assert factories.API_KEY.encode() not in journal.read_bytes()  # scrubbed before the disk
    assert rec.flush() == 3
    rec.finish(EndInfo(exit_code=0))
    steps = repo.timeline("j").steps
    assert [s.info.model for s in steps] == ["gpt-4o-mini"] * 3
    assert steps[0].info.provider == "openai" and steps[0].info.usage.total == 15
    assert not journal.exists()


def test_session_tags_make_separate_sessions(repo):
    rec = Recorder(repo, SessionInfo(command=["rewind", "proxy"]), hook=None)
    rec.record(factories.exchange("a"), session_tag="alice")
    rec.record(factories.exchange("b"), session_tag="bob")
    rec.record(factories.exchange("c"), session_tag="alice")
    rec.finish()
    by_name = {s.name: s for s in repo.sessions()}
    assert by_name["alice"].steps == 2 and by_name["bob"].steps == 1


def test_torn_journal_tail_is_ignored(repo, tmp_path):
    rec = Recorder(repo, SessionInfo(), hook=None)
    rec.record(factories.exchange("whole"))
    rec.record(factories.exchange("torn"))
    journal = next((repo.path / "journal").glob("*.jnl"))
    data = journal.read_bytes()
    journal.write_bytes(data[:-7])  # a crash in the middle of the second write
    assert [e.exchange.request.body for e in read_journal(journal)] == [
        factories.exchange("whole").request.body
    ]


CRASHING_RECORDER = """
import sys, time
sys.path.insert(0, {root!r})
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.store.records import SessionInfo
from rewind_vcs.store.repo import Repo
from tests import factories
repo = Repo.open({path!r})
rec = Recorder(repo, SessionInfo(name="crashy"), hook=None)
for i in range(5):
    rec.record(factories.exchange(f"q{{i}}"), hint="openai")
rec.flush()                       # steps 1-5 committed
for i in range(5, 8):
    rec.record(factories.exchange(f"q{{i}}"), hint="openai")   # 6-8 only journalled
print("ready", flush=True)
time.sleep(60)
"""


def test_kill_9_loses_nothing_that_was_journalled(repo, fsck, tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(
        CRASHING_RECORDER.format(root=str(Path(__file__).resolve().parents[2]), path=str(repo.path))
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert repo.sessions(use_cache=False)[0].status is SessionStatus.RECORDING
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    recovered = recover_journals(repo)
    assert [(r.steps) for r in recovered.recovered] == [3] and recovered.quarantined == []
    summary = repo.sessions(use_cache=False)[0]
    assert summary.steps == 8 and summary.status is SessionStatus.INCOMPLETE
    assert [s.n for s in repo.timeline("crashy").steps] == list(range(1, 9))
    assert recover_journals(repo).recovered == []  # idempotent: the journal is gone
    fsck(repo)


def _hook(repo, body: str) -> StepHook:
    path = repo.path / "hooks" / "pre-step"
    path.write_text("#!" + sys.executable + "\n" + textwrap.dedent(body))
    path.chmod(0o755)
    hook = StepHook.from_repo(repo)
    assert hook is not None
    return hook


def test_pre_step_hook_rewrites_and_vetoes(repo):
    _hook(
        repo,
        """
        import json, sys
        doc = json.load(sys.stdin)
        if "veto" in doc["request"]["body"]:
            sys.exit(1)
        doc["request"]["body"] = doc["request"]["body"].replace("alice@example.com", "<email>")
        doc["step"]["summary"] = "rewritten by hook"
        json.dump(doc, sys.stdout)
    """,
    )
    rec = Recorder(repo, SessionInfo(name="hooked"))
    rec.record(factories.exchange("mail alice@example.com"))
    rec.record(factories.exchange("please veto this"))
    rec.record(factories.exchange("plain"))
    rec.finish(EndInfo(exit_code=0))
    assert rec.vetoed == 1
    steps = repo.timeline("hooked").steps
    assert len(steps) == 2
    assert b"alice@example.com" not in steps[0].request.body and b"<email>" in steps[0].request.body
    assert steps[0].info.summary == "rewritten by hook"


def test_the_sample_hook_in_the_project_redacts_emails(repo):
    sample = Path(__file__).resolve().parents[2] / "hooks" / "pre-step"
    target = repo.path / "hooks" / "pre-step"
    target.write_bytes(sample.read_bytes())
    target.chmod(0o755)
    rec = Recorder(repo, SessionInfo(name="sample"))
    rec.record(factories.exchange("write to bob@example.org now"))
    rec.finish(EndInfo(exit_code=0))
    body = repo.timeline("sample").steps[0].request.body
    assert b"bob@example.org" not in body and b"<email redacted>" in body


def test_flush_stops_when_asked_and_keeps_the_rest_in_order(repo):
    rec = Recorder(repo, SessionInfo(name="partial"), hook=None)
    for i in range(5):
        rec.record(factories.exchange(f"q{i}"))
    calls = iter([False, False, True])
    assert rec.flush(should_stop=lambda: next(calls, True)) == 2
    assert rec.pending == 3
    rec.record(factories.exchange("q5"))
    assert rec.flush() == 4
    rec.finish(EndInfo(exit_code=0))
    bodies = [s.request.body for s in repo.timeline("partial").steps]
    assert bodies == [factories.exchange(f"q{i}").request.body for i in range(6)]
