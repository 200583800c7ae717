"""Writing sessions: byte-exact round trips, CAS appends, concurrency, secrets."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewind_vcs.errors import ConflictError
from rewind_vcs.store.records import (
    EndInfo,
    Exchange,
    Request,
    Response,
    SessionStatus,
    TransportError,
)
from rewind_vcs.store.repo import Repo
from tests import factories


def _raw_exchange(req_body: bytes, resp_body: bytes, chunks=None) -> Exchange:
    return Exchange(
        request=Request("POST", "https", "api.example.com", "/upload?key=SECRETKEY&x=1",
                        [("content-type", "application/octet-stream"), ("x-api-key", "SECRETKEY")], req_body),
        response=Response(200, "OK", [("content-type", "application/octet-stream")], resp_body,
                          chunks or [(0.001, len(resp_body))]),
        started_at=time.time(),
        duration=0.01,
    )


@pytest.mark.parametrize(
    "req_body, resp_body",
    [
        (b"", b""),
        (bytes(range(256)) * 4, b"\x00\xff\x00binary\r\n\r\n"),
        (b"not json at all {", "unicode \u00e9\u4e2d".encode()),
    ],
    ids=["empty", "binary", "non-json"],
)
def test_bodies_round_trip_byte_exact(repo, fsck, req_body, resp_body):
    w = repo.create_session(command=["x"])
    w.append(_raw_exchange(req_body, resp_body), factories.info())
    w.finish(EndInfo(exit_code=0))
    step = repo.timeline("latest").step(1)
    assert step.request.body == req_body
    assert step.response.body == resp_body
    fsck(repo)


def test_fifty_megabyte_body_round_trips(repo, fsck):
    big = os.urandom(1024) * (50 * 1024)  # 50 MiB, cheap to make, deltas well
    w = repo.create_session(command=["x"])
    w.append(_raw_exchange(big, big[:1000]), factories.info())
    w.finish(EndInfo(exit_code=0))
    assert repo.timeline("latest").step(1).request.body == big
    fsck(repo)


def test_stream_chunks_and_transport_errors_round_trip(repo):
    body = b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"
    ex = _raw_exchange(b"{}", body, chunks=[(0.0105, 15), (0.2, len(body) - 15)])
    ex.response.error = TransportError.CLIENT_DISCONNECTED
    ex.response.error_detail = "client hung up"
    w = repo.create_session(command=["x"])
    w.append(ex, factories.info())
    w.close()
    resp = repo.timeline("latest").step(1).response
    assert resp.chunks == [(0.0105, 15), (0.2, len(body) - 15)]
    assert resp.error is TransportError.CLIENT_DISCONNECTED
    assert resp.error_detail == "client hung up"


def test_secrets_are_dropped_before_commit(repo):
    w = repo.create_session(command=["x"])
    w.append(factories.exchange("hi"), factories.info())
    w.append(_raw_exchange(b"{}", b"{}"), factories.info(summary="POST /upload?key=SECRETKEY&x=1 200"))
    w.finish(EndInfo(exit_code=0), pack=False)
    steps = repo.timeline("latest").steps
    assert steps[0].request.header("authorization") is None
    assert steps[0].response.header("set-cookie") is None
    assert steps[1].request.header("x-api-key") is None
    assert steps[1].request.path == "/upload?x=1"
    # and no object anywhere holds them
    for oid in _all_objects(repo):
        assert b"SECRET" not in repo.git[oid].read_raw()


def _all_objects(repo: Repo) -> list:
    return list(repo.git.odb)


def test_extra_redaction_names_from_config(repo):
    repo.git.config["rewind.redact"] = "x-custom-token"
    ex = factories.exchange("hi")
    ex.request.headers.append(("X-Custom-Token", "SECRET-CUSTOM"))
    w = repo.create_session(command=["x"])
    w.append(ex, factories.info())
    w.close()
    assert repo.timeline("latest").step(1).request.header("x-custom-token") is None


def test_session_is_a_real_git_repo(repo, fsck):
    sid = factories.write_session(repo, 3, name="run")
    fsck(repo)
    log = subprocess.run(["git", "--git-dir", str(repo.path), "log", "--all", "--format=%s"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert log[0] == "end: exit 0 after 3 steps"
    assert log[-1] == "session: run"
    assert len(log) == 5
    root = subprocess.run(["git", "--git-dir", str(repo.path), "rev-list", "--max-parents=0",
                           f"refs/sessions/{sid}/main"], capture_output=True, text=True, check=True).stdout
    assert root.startswith(sid)


def test_unfinished_session_reads_incomplete_once_its_writer_is_gone(repo):
    w = repo.create_session(command=["x"])
    w.append(factories.exchange("a"), factories.info())
    assert repo.sessions()[0].status is SessionStatus.RECORDING
    w.close()
    assert repo.sessions()[0].status is SessionStatus.INCOMPLETE


def test_failed_exit_code_is_failed_status(repo):
    factories.write_session(repo, 1, exit_code=3)
    s = repo.sessions()[0]
    assert s.status is SessionStatus.FAILED and s.exit_code == 3


def test_append_after_ref_moved_is_a_conflict_not_a_lost_step(repo):
    w = repo.create_session(command=["x"])
    w.append(factories.exchange("a"), factories.info())
    # someone else moves the timeline behind the writer's back
    root = repo.git.references[w.ref].peel().parents[0].id
    repo.git.references[w.ref].set_target(root)
    with pytest.raises(ConflictError, match="moved under this writer"):
        w.append(factories.exchange("b"), factories.info())
    w.close()


def test_second_writer_of_a_session_is_refused(repo):
    from rewind_vcs.store.writer import SessionWriter

    w = repo.create_session(command=["x"])
    with pytest.raises(ConflictError, match="being written by another"):
        SessionWriter.resume(repo, w.id)
    w.close()
    again = SessionWriter.resume(repo, w.id)
    again.append(factories.exchange("b"), factories.info())
    again.finish(EndInfo(exit_code=0))
    assert len(repo.timeline(w.id).steps) == 1


def test_resume_clears_a_stale_ref_lock(repo, fsck):
    from rewind_vcs.store.writer import SessionWriter

    w = repo.create_session(command=["x"])
    w.append(factories.exchange("a"), factories.info())
    w.close()
    lock = repo.path / f"{w.ref}.lock"
    lock.write_text("stale")  # what a kill -9 mid ref update leaves
    again = SessionWriter.resume(repo, w.id)
    again.append(factories.exchange("b"), factories.info())
    again.finish(EndInfo(exit_code=0))
    assert not lock.exists()
    assert [s.n for s in repo.timeline(w.id).steps] == [1, 2]
    fsck(repo)


WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.records import EndInfo
from tests import factories
repo = Repo.open({path!r})
w = repo.create_session(name=sys.argv[1], command=["x"])
for i in range(int(sys.argv[2])):
    w.append(factories.exchange(f"{{sys.argv[1]}} {{i}}"), factories.info())
w.finish(EndInfo(exit_code=0))
print(w.id)
"""


def test_two_writer_processes_at_once_both_end_whole(repo, fsck, tmp_path):
    root = str(Path(__file__).resolve().parents[2])
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=root, path=str(repo.path)))
    procs = [subprocess.Popen([sys.executable, str(script), name, "40"], stdout=subprocess.PIPE, text=True)
             for name in ("alpha", "beta")]
    ids = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    sessions = {s.id: s for s in repo.sessions(use_cache=False)}
    assert set(ids) == set(sessions)
    for sid in ids:
        assert sessions[sid].steps == 40
        assert [s.n for s in repo.timeline(sid).steps] == list(range(1, 41))
    fsck(repo)
