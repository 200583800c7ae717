"""Recovery never deletes: what cannot be recovered goes to .rewind/quarantine/, and the CLI says so."""

from __future__ import annotations

import logging
import struct
import zlib

import orjson
import pytest

from rewind_vcs.errors import FormatTooNewError
from rewind_vcs.proxy.recorder import Recorder
from rewind_vcs.proxy.recovery import QUARANTINE, quarantined, recover_journals
from rewind_vcs.store.journal import JOURNAL_FORMAT, MAGIC, journal_path, read_journal
from rewind_vcs.store.records import SessionInfo
from rewind_vcs.store.writer import SessionWriter
from tests import factories


def _crashed(repo, n: int = 2):
    """A recorder that journalled ``n`` exchanges and died before committing them."""
    rec = Recorder(repo, SessionInfo(name="crashed"), hook=None)
    for i in range(n):
        rec.record(factories.exchange(f"q{i}"), "openai")
    (writer,) = rec.writers()
    writer.close()
    return writer, journal_path(repo.dir("journal"), writer.id, writer.timeline)


def _newer_record(seq: int) -> bytes:
    header = orjson.dumps({"format": JOURNAL_FORMAT + 1, "seq": seq, "request": {"body_len": 0},
                           "response": {"body_len": 0}, "future": "field"})
    payload = struct.pack(">4sI", MAGIC, len(header)) + header
    return payload + struct.pack(">I", zlib.crc32(payload))


def test_a_newer_journal_format_is_refused_with_the_upgrade_message(repo):
    _, path = _crashed(repo, 1)
    with open(path, "ab") as f:
        f.write(_newer_record(2))
    with pytest.raises(FormatTooNewError) as caught:
        list(read_journal(path))
    assert f"format {JOURNAL_FORMAT + 1}" in str(caught.value) and "pip install -U rewind-vcs" in str(caught.value)


def test_a_newer_journal_is_quarantined_not_deleted_or_half_applied(repo, caplog):
    writer, path = _crashed(repo, 1)
    with open(path, "ab") as f:
        f.write(_newer_record(2))
    data = path.read_bytes()
    with caplog.at_level(logging.WARNING, logger="rewind_vcs"):
        done = recover_journals(repo)
    assert done.recovered == [] and len(done.quarantined) == 1
    (moved,) = quarantined(repo)
    assert moved.parent == repo.path / QUARANTINE and moved.read_bytes() == data and not path.exists()
    assert "upgrade rewind" in done.quarantined[0].reason
    assert any("moved to" in r.getMessage() for r in caplog.records)
    assert repo.timeline("crashed").steps == []  # nothing applied from a journal it cannot read whole
    assert recover_journals(repo).quarantined == []  # said once


def test_a_journal_without_its_session_is_quarantined(repo):
    _, path = _crashed(repo, 2)
    ghost = journal_path(repo.dir("journal"), "0123456789ab", "main")
    path.rename(ghost)
    data = ghost.read_bytes()
    done = recover_journals(repo)
    assert [q.path.name for q in done.quarantined] == [ghost.name]
    assert "no session to recover into" in done.quarantined[0].reason
    assert quarantined(repo)[0].read_bytes() == data


def test_a_partly_readable_journal_commits_what_it_can_and_quarantines_the_file(repo, fsck):
    _, path = _crashed(repo, 3)
    data = bytearray(path.read_bytes())
    second = next(e for e in read_journal(path) if e.seq == 2)
    data[second.offset + 12] ^= 0xFF  # damage inside the second record's header: its CRC fails
    path.write_bytes(bytes(data))
    done = recover_journals(repo)
    assert [r.steps for r in done.recovered] == [1]
    assert len(done.quarantined) == 1 and "could not be read" in done.quarantined[0].reason
    assert quarantined(repo)[0].read_bytes() == bytes(data)  # all of it, for a human to look at
    assert len(repo.timeline("crashed").steps) == 1
    fsck(repo)


def test_the_next_command_says_a_journal_was_quarantined_in_one_line(workdir_repo, rewind):
    repo, workdir = workdir_repo
    _, path = _crashed(repo, 1)
    path.rename(journal_path(repo.dir("journal"), "0123456789ab", "main"))
    proc = rewind("log", cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "quarantine" in ln]
    assert len(lines) == 1 and "moved, not deleted" in lines[0] and "0123456789ab.main.jnl" in lines[0]
    again = rewind("log", cwd=workdir)
    assert "quarantine" not in again.stderr


@pytest.fixture
def workdir_repo(tmp_path):
    from rewind_vcs.store.repo import Repo

    return Repo.init(tmp_path), tmp_path


def test_a_provider_parse_failure_is_logged_and_falls_back_to_a_generic_step(repo, monkeypatch, caplog):
    from rewind_vcs.providers.openai import OpenAIProvider

    def broken(self, exchange):
        raise ValueError("a body shape never seen")

    monkeypatch.setattr(OpenAIProvider, "normalise", broken)
    writer = SessionWriter.create(repo, SessionInfo(name="odd"))
    rec = Recorder(repo, SessionInfo(name="odd"), writer=writer, hook=None)
    rec.record(factories.exchange("q"), "openai")
    with caplog.at_level(logging.WARNING, logger="rewind_vcs"):
        rec.flush()
    rec.finish()
    (step,) = repo.timeline("odd").steps
    assert step.info.kind.value == "http" and step.info.provider == "openai"
    # The warning names the provider and the error class, never the (untrusted) body or message.
    lines = [r.getMessage() for r in caplog.records]
    assert any("could not read" in m and "ValueError" in m for m in lines), lines
    assert not any("a body shape never seen" in m for m in lines)
