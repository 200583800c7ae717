"""The committed golden ``.rw`` (format 1) must keep importing, forever (issue M item 6).

``tests/golden/session-format-1.rw`` was written once by rewind's format-1
exporter (:func:`write_golden`, kept here to show how; never rerun it to
"fix" this test: a change that breaks it breaks every ``.rw`` file users
have attached to tickets). It holds one session ``golden`` of three steps, a
fork ``retry`` at step 1 with one different step, and a tag ``good`` on the
session's tip. A file of a newer format is refused with the upgrade message.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from rewind_vcs.errors import FormatError
from rewind_vcs.store.arrivals import Origin, read_arrivals
from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from rewind_vcs.transfer.rwexport import export_rw
from rewind_vcs.transfer.rwimport import import_rw
from rewind_vcs.transfer.rwread import read_rw
from tests import factories
from tests.conftest import git_fsck

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "session-format-1.rw"
SESSION = "ea85e55488a1"


def write_golden(path: Path, workdir: Path) -> str:
    """How the golden file was made (run once, by hand, with the format-1 exporter)."""
    repo = Repo.init(workdir)
    w = repo.create_session(name="golden", command=["python", "agent.py"], cwd="/work")
    for i in range(3):
        w.append(factories.exchange(f"question {i}"), factories.info(summary=f"step {i + 1}"))
    sid = w.id
    w.finish(EndInfo(exit_code=0))
    fork_at = repo.session(sid).main.step(1).commit_id
    f = SessionWriter.fork(repo, sid, fork_at, "retry")
    f.append(factories.exchange("a different question"), factories.info(summary="retried"))
    f.finish(EndInfo(exit_code=1))
    repo.git.references.create("refs/tags/good", repo.git.references[f"refs/sessions/{sid}/main"].target)
    export_rw(repo, [sid], output=path)
    return sid


def test_the_golden_file_still_imports(tmp_path):
    repo = Repo.init(tmp_path / "r")
    result = import_rw(repo, GOLDEN)
    assert not result.skipped and not result.conflicts
    assert repo.session_ids() == [SESSION]
    session = repo.session(SESSION)
    assert session.info.name == "golden" and session.info.command == ["python", "agent.py"]
    assert [t.name for t in session.timelines()] == ["main", "retry"]
    main, retry = session.timeline("main"), session.timeline("retry")
    assert len(main.steps) == 3 and len(retry.steps) == 2 and retry.fork_point == 1
    assert main.end is not None and main.end.exit_code == 0 and retry.end is not None and retry.end.exit_code == 1
    assert [s.info.summary for s in main.steps] == ["step 1", "step 2", "step 3"]
    assert b"question 2" in main.steps[2].request.body and b"echo: question 2" in main.steps[2].response.body
    assert b"a different question" in retry.steps[1].request.body
    assert repo.resolve("good").session_id == SESSION
    assert [s.id for s in repo.sessions()] == [SESSION]
    assert read_arrivals(repo.path)[SESSION].origin is Origin.IMPORTED
    assert git_fsck(repo.path).returncode == 0
    again = import_rw(repo, GOLDEN)
    assert not again.changed


def test_the_golden_file_reads_as_format_1():
    data = GOLDEN.read_bytes()
    assert data[:8] == b"\x89RWD\r\n\x1a\n" and struct.unpack(">H", data[8:10]) == (1,)
    rw = read_rw(GOLDEN)
    assert rw.manifest.counts.sessions == 1 and rw.manifest.counts.steps == 3
    assert set(rw.manifest.refs) == {f"refs/sessions/{SESSION}/main", f"refs/sessions/{SESSION}/retry",
                                     "refs/tags/good"}


def test_a_newer_format_file_is_refused_with_the_upgrade_message(tmp_path):
    data = bytearray(GOLDEN.read_bytes())
    data[8:10] = struct.pack(">H", 2)
    path = tmp_path / "from-the-future.rw"
    path.write_bytes(bytes(data))
    repo = Repo.init(tmp_path / "r")
    with pytest.raises(FormatError) as info:
        import_rw(repo, path)
    text = str(info.value)
    assert "written by a newer rewind (format 2)" in text and "upgrade rewind" in text and "\n" not in text
    assert repo.session_ids() == []
