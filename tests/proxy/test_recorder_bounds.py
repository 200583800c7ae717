"""The recorder's bounds: a full disk stops recording cleanly; big bodies spill instead of filling memory.

The fault seam is the journal's one write call (``journal.raw_write``): only
the ``write`` fails, everything else (git, the store, the recorder) is real.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
import textwrap
from dataclasses import replace

import pytest

from rewind_vcs.proxy import recorder as recorder_module
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.store import journal
from rewind_vcs.store.journal import read_journal
from rewind_vcs.store.records import EndInfo, SessionInfo, SessionStatus
from rewind_vcs.store.repo import Repo
from tests import factories


def _full_after(n: int):
    """A write that works ``n`` times, then fails as a full disk does."""
    calls = {"n": 0}

    def write(fd: int, data: memoryview) -> int:
        calls["n"] += 1
        if calls["n"] > n:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    return write


RECORD_WRITES = 5  # one writev-equivalent record is written as 5 pieces (head, header, bodies, crc)


def test_a_full_disk_stops_recording_once_and_keeps_the_steps(repo, fsck, monkeypatch, caplog):
    rec = Recorder(repo, SessionInfo(name="full"), hook=None)
    rec.record(factories.exchange("q0"))
    assert rec.flush() == 1
    monkeypatch.setattr(journal, "raw_write", _full_after(RECORD_WRITES + 2))  # q1 whole, q2 torn
    with caplog.at_level(logging.WARNING, logger="rewind_vcs"):
        for i in range(1, 5):
            rec.record(factories.exchange(f"q{i}"))  # never raises into the proxy
    assert rec.disk_full and rec.dropped == 3
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "the disk is full: recording stopped (1 steps kept" in errors[0].getMessage()
    assert "damaged" not in errors[0].getMessage()
    (jnl,) = (repo.path / "journal").glob("*.jnl")
    assert [e.seq for e in read_journal(jnl)] == [1, 2]
    assert jnl.stat().st_size == next(e.end for e in read_journal(jnl) if e.seq == 2)  # torn tail cut off
    writers = rec.finish(EndInfo(exit_code=0))
    assert writers[0].steps == 2  # q1 was journalled whole before the disk filled: it is committed too
    summary = repo.sessions(use_cache=False)[0]
    assert summary.status is SessionStatus.INCOMPLETE and summary.steps == 2
    assert not jnl.exists()  # nothing left to recover
    fsck(repo)


def test_a_full_disk_while_a_body_spills_drops_that_call_and_its_file(repo, monkeypatch):
    monkeypatch.setattr(recorder_module, "SPILL_BYTES", 1000)
    rec = Recorder(repo, SessionInfo(name="spill"), hook=None)
    spool = rec.spool()
    spool.write(b"x" * 800)
    monkeypatch.setattr(journal, "raw_write", _full_after(1))
    spool.write(b"y" * 800)  # spills: the first piece is written, the second fails
    spool.write(b"z" * 800)
    assert spool.failed is not None
    ex = factories.exchange("big")
    rec.record(replace(ex, response=replace(ex.response, body=spool.getvalue())), spool=spool)
    assert rec.disk_full and rec.dropped == 1
    assert list((repo.path / "journal").glob("*.spill")) == []
    rec.finish(EndInfo(exit_code=0))


def test_a_body_past_the_threshold_streams_to_a_spill_file_and_is_committed_from_it(repo, monkeypatch, fsck):
    monkeypatch.setattr(recorder_module, "SPILL_BYTES", 1 << 16)
    monkeypatch.setattr(recorder_module, "PARSE_BYTES", 1 << 18)
    rec = Recorder(repo, SessionInfo(name="big"), hook=None)
    bodies = []
    for size in (1 << 10, 1 << 17, 1 << 20):  # in memory; spilled, parsed; spilled, not parsed
        text = ("word " * (size // 5)).strip()
        ex = factories.exchange("big")
        whole = factories.chat_response(text).body
        spool = rec.spool()
        for i in range(0, len(whole), 4096):
            spool.write(whole[i : i + 4096])
        assert spool.spilled is (len(whole) > 1 << 16)
        assert spool.getvalue() == (b"" if spool.spilled else whole)
        rec.record(replace(ex, response=replace(ex.response, body=spool.getvalue())), "openai", spool=spool)
        bodies.append(whole)
    assert len(list((repo.path / "journal").glob("*.spill"))) == 2
    rec.finish(EndInfo(exit_code=0))
    assert list((repo.path / "journal").iterdir()) == []
    steps = repo.timeline("big").steps
    assert [s.response.body for s in steps] == bodies
    assert [s.info.model for s in steps] == ["gpt-4o-mini", "gpt-4o-mini", None]
    assert steps[2].info.extra["unparsed_body_bytes"] == len(bodies[2])
    fsck(repo)


def test_a_crash_with_a_spilled_body_is_recovered_from_the_spill_file(repo, monkeypatch):
    from rewind_vcs.proxy.recovery import recover_journals

    monkeypatch.setattr(recorder_module, "SPILL_BYTES", 1000)
    rec = Recorder(repo, SessionInfo(name="crash"), hook=None)
    whole = factories.chat_response("a long answer " * 200).body
    spool = rec.spool()
    spool.write(whole)
    ex = factories.exchange("q")
    rec.record(replace(ex, response=replace(ex.response, body=spool.getvalue())), "openai", spool=spool)
    rec.writers()[0].close()  # the recorder dies here: lease free, journal and spill file left behind
    done = recover_journals(repo)
    assert [r.steps for r in done.recovered] == [1] and done.quarantined == []
    assert repo.timeline("crash").step(1).response.body == whole
    assert list((repo.path / "journal").iterdir()) == []


SITE = """
import errno, os
from rewind_vcs.store import journal
calls = {{"n": 0}}
def write(fd, data):
    if os.readlink(f"/proc/self/fd/{{fd}}").endswith(".jnl"):
        calls["n"] += 1
        if calls["n"] > {limit}:
            raise OSError(errno.ENOSPC, "No space left on device")
    return os.write(fd, data)
journal.raw_write = write
"""

AGENT = """
from openai import OpenAI
c = OpenAI(api_key="sk-test-0123456789", max_retries=0)
for i in range(4):
    r = c.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": f"q{i}"}])
    print(r.choices[0].message.content, flush=True)
"""


def test_rewind_record_on_a_full_disk_says_so_in_one_line(tmp_path, fsck):
    from tests.e2e.conftest import FakeLLM, run_rewind, upstream_env

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITE.format(limit=2 * RECORD_WRITES))
    work = tmp_path / "work"
    work.mkdir()
    Repo.init(work)
    (work / "agent.py").write_text(textwrap.dedent(AGENT))
    with FakeLLM() as fake:
        env = {**upstream_env(fake), "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
        proc = run_rewind(["record", "--name", "full", "--", sys.executable, "agent.py"], work, env)
        assert fake.request_count == 4  # every call went through
    assert proc.returncode != 0
    assert proc.stdout.count("> q") == 4  # the agent ran to its end
    lines = [ln for ln in proc.stderr.splitlines() if "disk" in ln]
    assert len(lines) == 1, proc.stderr
    assert "recording stopped, the disk is full" in lines[0] and "keeps 2 steps" in lines[0]
    assert "2 later calls were not recorded" in lines[0]
    assert "damaged" not in proc.stderr and "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    repo = Repo.open(work)
    assert len(repo.timeline("full").steps) == 2
    fsck(repo)
    after = run_rewind(["log"], work, upstream_env(fake))
    assert after.returncode == 0 and "damaged" not in after.stderr


@pytest.mark.skipif(os.geteuid() != 0 or sys.platform != "linux", reason="needs root to mount a tmpfs")
def test_a_real_full_tmpfs_stops_recording_without_damage(tmp_path):
    mount = tmp_path / "tiny"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs is not permitted here")
    try:
        repo = Repo.init(mount)
        rec = Recorder(repo, SessionInfo(name="tiny"), hook=None)
        big = factories.exchange("filler " * 40_000)  # ~300 KB request bodies
        for _ in range(30):
            rec.record(big)
            rec.flush()
        assert rec.disk_full and rec.dropped > 0
        rec.finish(EndInfo(exit_code=0))
        (mount / "ballast").unlink(missing_ok=True)
        r = subprocess.run(["git", "--git-dir", str(repo.path), "fsck"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        subprocess.run(["umount", str(mount)], capture_output=True)
