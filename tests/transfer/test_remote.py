"""Remotes through libgit2 against real git servers on loopback: git daemon, git http-backend, paths.

The fixtures here (``git_daemon``, ``git_http``, ``bare``) are imported by
tests/cli/test_remote.py too.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pygit2
import pytest

from rewind_vcs.errors import RemoteError
from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.refs import read_refs
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from rewind_vcs.transfer.fetch import LOCAL_TAG, _flat_notes
from rewind_vcs.transfer.fetch import clone as clone_
from rewind_vcs.transfer.fetch import fetch as fetch_
from rewind_vcs.transfer.gitnet import Credentials, Phase, Progress
from rewind_vcs.transfer.incoming import SHARED_PREFIXES
from rewind_vcs.transfer.push import push as push_
from rewind_vcs.transfer.refupdate import REFSPECS, RefStatus
from rewind_vcs.transfer.remotes import (
    RemoteInfo,
    add_remote,
    default_clone_directory,
    get_remote,
    list_remotes,
    remove_remote,
)
from tests import factories
from tests.conftest import git_fsck

# -- servers ------------------------------------------------------------------------------


def bare(path: Path) -> Path:
    """An empty bare repository, as `git init --bare` on a git host makes it."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True, timeout=30)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@dataclass
class GitDaemon:
    base: Path
    port: int

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}"

    def bare(self, name: str) -> str:
        bare(self.base / name)
        return self.url(name)


@pytest.fixture
def git_daemon(tmp_path) -> Iterator[GitDaemon]:
    """`git daemon` serving DIR on a free loopback port, with push enabled; stopped at the end."""
    base = tmp_path / "served"
    base.mkdir()
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", f"--base-path={base}", "--export-all", "--enable=receive-pack",
         f"--port={port}", "--listen=127.0.0.1", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield GitDaemon(base, port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _GitHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, user: str, token: str) -> None:
        super().__init__(("127.0.0.1", 0), _GitHTTPHandler)
        self.root = root
        self.expected = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.refused = 0


class _GitHTTPHandler(BaseHTTPRequestHandler):
    """Smart HTTP as a git host serves it: Basic auth in front of `git http-backend` (CGI)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        body = self._body() if self.command == "POST" else b""
        server: _GitHTTPServer = self.server  # type: ignore[assignment]
        if self.headers.get("Authorization") != server.expected:
            server.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(server.root),
               "GIT_HTTP_EXPORT_ALL": "1", "PATH_INFO": url.path, "QUERY_STRING": url.query,
               "REQUEST_METHOD": self.command, "CONTENT_TYPE": self.headers.get("Content-Type", ""),
               "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": "alice", "REMOTE_ADDR": "127.0.0.1"}
        proc = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60)
        head, _, payload = proc.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.split(b"\r\n"):
            key, _, value = line.decode().partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@dataclass
class GitHTTP:
    server: _GitHTTPServer
    user: str
    token: str

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


@pytest.fixture
def git_http(tmp_path) -> Iterator[GitHTTP]:
    """A git host over smart HTTP on loopback that wants user alice with a token."""
    root = tmp_path / "http-served"
    root.mkdir()
    server = _GitHTTPServer(root, "alice", "s3cret-token")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield GitHTTP(server, "alice", "s3cret-token")
    finally:
        server.shutdown()
        server.server_close()


# -- helpers ------------------------------------------------------------------------------


def shared_refs(git_dir: Path) -> dict[str, str]:
    return read_refs(git_dir, SHARED_PREFIXES)


def fork(repo: Repo, sid: str, name: str, text: str, at_step: int = 1) -> str:
    """A new timeline forked at ``at_step`` with one different step; returns its tip."""
    commit = repo.session(sid).main.step(at_step).commit_id
    w = SessionWriter.fork(repo, sid, commit, name)
    w.append(factories.exchange(text), factories.info(summary=text))
    return w.finish(EndInfo(exit_code=0))


def tag(repo: Repo, name: str, spec: str, prefix: str = "refs/tags/") -> None:
    repo.git.references.create(prefix + name, pygit2.Oid(hex=repo.resolve(spec).commit), force=True)


def assert_fsck(git_dir: Path) -> None:
    r = git_fsck(git_dir)
    assert r.returncode == 0 and "error" not in r.stderr.lower(), r.stdout + r.stderr


def seeded(path: Path) -> tuple[Repo, list[str]]:
    repo = Repo.init(path)
    ids = [factories.write_session(repo, 3, name="alpha"), factories.write_session(repo, 2, name="beta")]
    tag(repo, "good", ids[0])
    tag(repo, "ref-run", ids[1], "refs/baselines/")
    sig = repo.signature()
    repo.git.create_note('{"score": 0.9}', sig, sig, repo.resolve(ids[0]).commit, "refs/notes/evals")
    return repo, ids


# -- configuration --------------------------------------------------------------------------


def test_remote_add_list_remove_with_rewinds_refspecs(repo, tmp_path):
    info = add_remote(repo, "origin", "git://example.org/team.git")
    assert info == RemoteInfo("origin", "git://example.org/team.git")
    got = repo.git.remotes["origin"]
    assert got.fetch_refspecs == list(REFSPECS) and got.push_refspecs == list(REFSPECS)
    assert repo.git.config["remote.origin.tagOpt"] == "--no-tags"
    Repo.open(repo.path)  # still a rewind repository: its config parses with the remote in it
    # a plain path is stored absolute, so the remote works from any directory
    rel = os.path.relpath(tmp_path / "elsewhere.git")
    assert add_remote(repo, "mirror", rel).url == str((tmp_path / "elsewhere.git").absolute())
    assert [r.name for r in list_remotes(repo)] == ["mirror", "origin"]
    with pytest.raises(RemoteError, match="already exists"):
        add_remote(repo, "origin", "/x")
    with pytest.raises(RemoteError, match="not a valid remote name"):
        add_remote(repo, "bad name", "/x")
    remove_remote(repo, "mirror")
    assert [r.name for r in list_remotes(repo)] == ["origin"]
    with pytest.raises(RemoteError, match="unknown remote 'mirror'"):
        remove_remote(repo, "mirror")


def test_git_fetches_with_the_configured_refspecs(tmp_path):
    """The git CLI understands the remote rewind configured: `git fetch origin` brings sessions."""
    a, ids = seeded(tmp_path / "a")
    b = Repo.init(tmp_path / "b")
    add_remote(b, "origin", str(a.path))
    subprocess.run(["git", "--git-dir", str(b.path), "fetch", "-q", "origin"], check=True, timeout=60)
    assert shared_refs(b.path) == shared_refs(a.path)


@pytest.mark.parametrize("url, expected", [
    ("git://host:9418/team.git", "team"),
    ("https://github.com/org/sessions.git/", "sessions"),
    ("git@github.com:org/agent-runs.git", "agent-runs"),
    ("/srv/projects/alpha/.rewind", "alpha"),
    ("../beta", "beta"),
])
def test_default_clone_directory(url, expected):
    assert default_clone_directory(url) == expected


# -- push, clone, fetch over git daemon -------------------------------------------------------


def test_push_then_clone_over_git_daemon_carries_every_shared_ref(tmp_path, git_daemon):
    a, ids = seeded(tmp_path / "a")
    fork(a, ids[0], "try", "a different question")
    url = git_daemon.bare("team.git")
    add_remote(a, "origin", url)
    events: list[Progress] = []
    result = push_(a, "origin", progress=events.append)
    assert not result.rejected
    assert {u.status for u in result.updates} == {RefStatus.NEW}
    assert sorted(result.new_sessions) == sorted(ids)
    assert result.objects > 0 and result.bytes > 0
    phases = [e.phase for e in events]
    assert phases[0] is Phase.CONNECTING
    assert phases.index(Phase.COMPRESSING) < phases.index(Phase.SENDING)
    sent = [e for e in events if e.phase is Phase.SENDING]
    assert sent[-1].done == sent[-1].total > 0

    remote_dir = git_daemon.base / "team.git"
    assert shared_refs(remote_dir) == shared_refs(a.path)
    assert "refs/notes/evals" in shared_refs(remote_dir) and "refs/baselines/ref-run" in shared_refs(remote_dir)
    assert_fsck(remote_dir)

    events.clear()
    cloned = clone_(url, tmp_path / "b", progress=events.append)
    b = cloned.repo
    assert b.path == tmp_path / "b" / ".rewind" and b.config_get("rewind.format") == "1"
    for sub in ("hooks", "journal", "locks", "cache"):
        assert (b.path / sub).is_dir()
    assert get_remote(b, "origin").url == url
    assert shared_refs(b.path) == shared_refs(a.path)
    assert [e for e in events if e.phase is Phase.RECEIVING][-1].done > 0
    # The clone lists in its own arrival order (docs/FORMAT.md, arrivals): compare by id.
    def by_id(r):
        return sorted((s.to_json() for s in r.sessions()), key=lambda j: j["id"])

    assert by_id(b) == by_id(a)
    assert b.git.lookup_note(a.resolve(ids[0]).commit, "refs/notes/evals").message == '{"score": 0.9}'
    assert b.session(ids[0]).timeline("try").steps[-1].info.summary == "a different question"
    assert_fsck(b.path)

    # nothing new: a second push and fetch transfer nothing and change nothing
    again = push_(a, "origin")
    assert again.changed == [] and {u.status for u in again.updates} == {RefStatus.UP_TO_DATE}
    assert fetch_(b, "origin").changed == []


def test_local_state_never_travels(tmp_path):
    """The CA, config, hooks, journal, leases and cache are files, not refs: a push carries none of them."""
    a, ids = seeded(tmp_path / "a")
    secret = "CA-PRIVATE-KEY-0f1e2d3c"
    (a.path / "ca").mkdir()
    (a.path / "ca" / "ca.key").write_text(secret)
    (a.path / "journal" / "x.jnl").write_text(secret)
    (a.path / "cache" / "sessions.json").write_text("{}")
    (a.path / "hooks" / "pre-push").write_text("#!/bin/sh\n# " + secret + "\nexit 0\n")
    (a.path / "hooks" / "pre-push").chmod(0o755)
    a.git.config["rewind.redact"] = "x-" + secret
    remote_dir = bare(tmp_path / "team.git")
    push_(a, str(remote_dir)).check()

    objects = subprocess.run(["git", "--git-dir", str(remote_dir), "cat-file", "--batch-all-objects", "--batch"],
                             capture_output=True, timeout=60, check=True).stdout
    assert objects and secret.encode() not in objects
    assert secret not in (remote_dir / "config").read_text()
    assert not (remote_dir / "ca").exists() and not (remote_dir / "journal").exists()

    b = clone_(str(remote_dir), tmp_path / "b").repo
    assert not (b.path / "ca").exists()
    assert list((b.path / "journal").iterdir()) == [] and not (b.path / "hooks" / "pre-push").exists()
    assert b.config_get("rewind.redact") is None
    assert sorted(b.session_ids()) == sorted(ids)


def test_two_clones_pushing_different_sessions_both_survive(tmp_path, git_daemon):
    url = git_daemon.bare("team.git")
    b = clone_(url, tmp_path / "b").repo
    c = clone_(url, tmp_path / "c").repo
    sb = factories.write_session(b, 2, name="from-b")
    sc = factories.write_session(c, 3, name="from-c")
    push_(b, "origin").check()
    push_(c, "origin").check()  # no fetch needed: a new session is a new ref
    remote_refs = shared_refs(git_daemon.base / "team.git")
    assert set(remote_refs) == {f"refs/sessions/{sb}/main", f"refs/sessions/{sc}/main"}
    fetched = fetch_(b, "origin")
    assert fetched.new_sessions == [sc] and not fetched.rejected
    assert sorted(b.session_ids()) == sorted([sb, sc])
    assert_fsck(git_daemon.base / "team.git")


def test_diverged_timeline_is_refused_without_force_both_ways(tmp_path, git_daemon):
    url = git_daemon.bare("team.git")
    a = Repo.init(tmp_path / "a")
    sid = factories.write_session(a, 3, name="shared")
    add_remote(a, "origin", url)
    push_(a).check()
    b = clone_(url, tmp_path / "b").repo

    tip_a = fork(a, sid, "try", "alice's idea")
    tip_b = fork(b, sid, "try", "bob's idea")
    push_(a).check()
    ref = f"refs/sessions/{sid}/try"

    pushed = push_(b)  # the remote has a commit bob never saw
    [rejected] = pushed.rejected
    assert rejected.ref == ref and rejected.reason == "non-fast-forward"
    assert rejected.line().split() == ["!", "[rejected]", ref, "(non-fast-forward)"]
    with pytest.raises(RemoteError) as err:
        pushed.check()
    assert str(err.value) == f"! [rejected] {ref} (non-fast-forward); fetch first or use --force"
    assert shared_refs(git_daemon.base / "team.git")[ref] == tip_a

    fetched = fetch_(b)  # and fetch will not overwrite bob's timeline either
    assert [(u.ref, u.reason) for u in fetched.rejected] == [(ref, "non-fast-forward")]
    assert str(b.git.references[ref].target) == tip_b

    pushed = push_(b)  # now bob has alice's commit: the same refusal, decided locally
    assert [u.reason for u in pushed.rejected] == ["non-fast-forward"]

    forced = push_(b, force=True)
    assert [(u.ref, u.status) for u in forced.changed] == [(ref, RefStatus.FORCED)]
    assert shared_refs(git_daemon.base / "team.git")[ref] == tip_b
    assert "(forced update)" in forced.changed[0].line()

    assert [u.ref for u in fetch_(a).rejected] == [ref]
    taken = fetch_(a, force=True)
    assert [u.status for u in taken.changed] == [RefStatus.FORCED]
    assert str(a.git.references[ref].target) == tip_b

    # --force straight away, never having seen the remote's commit: it is downloaded to tell
    # a diverged ref (replaced) from one this side is merely behind on (never rewound)
    fork(a, sid, "again", "alice again")
    push_(a).check()
    mine = fork(b, sid, "again", "bob again")
    forced = push_(b, force=True)
    assert [(u.ref, u.status) for u in forced.changed] == [(f"refs/sessions/{sid}/again", RefStatus.FORCED)]
    assert shared_refs(git_daemon.base / "team.git")[f"refs/sessions/{sid}/again"] == mine
    assert set(shared_refs(b.path)) == set(shared_refs(git_daemon.base / "team.git"))  # no scratch refs left
    assert not [r for r in b.git.references if "scratch" in r]
    assert_fsck(git_daemon.base / "team.git")
    assert_fsck(b.path)


def test_fast_forward_and_behind(tmp_path):
    """A timeline that grew fast-forwards; a side that is behind is left alone, never rewound."""
    remote_dir = bare(tmp_path / "team.git")
    a = Repo.init(tmp_path / "a")
    w = a.create_session(name="long", command=["agent"])
    w.append(factories.exchange("one"), factories.info())
    push_(a, str(remote_dir)).check()  # pushed while still recording
    b = clone_(str(remote_dir), tmp_path / "b").repo
    w.append(factories.exchange("two"), factories.info())
    w.finish(EndInfo(exit_code=0))
    ref = f"refs/sessions/{w.id}/main"

    pushed = push_(a, str(remote_dir))
    assert [(u.ref, u.status) for u in pushed.changed] == [(ref, RefStatus.FAST_FORWARD)]
    behind = push_(b, "origin", force=True)  # bob's copy is older: nothing to send, even forced
    assert behind.changed == [] and not behind.rejected
    assert [u.status for u in behind.updates] == [RefStatus.BEHIND]
    assert shared_refs(remote_dir)[ref] == str(a.git.references[ref].target)

    fetched = fetch_(b)
    assert [(u.ref, u.status) for u in fetched.changed] == [(ref, RefStatus.FAST_FORWARD)]
    assert b.session(w.id).main.status.value == "ok" and len(b.session(w.id).main.steps) == 2

    fork(b, w.id, "more", "bob goes on")
    push_(b).check()
    ahead = fetch_(b)
    assert ahead.changed == [] and not ahead.rejected


def test_tags_and_baselines_are_names_not_history(tmp_path):
    remote_dir = bare(tmp_path / "team.git")
    a, ids = seeded(tmp_path / "a")
    push_(a, str(remote_dir)).check()
    b = clone_(str(remote_dir), tmp_path / "b").repo
    tag(b, "good", ids[1])  # bob points "good" elsewhere
    pushed = push_(b, "origin")
    assert [(u.ref, u.reason) for u in pushed.rejected] == [("refs/tags/good", "already exists")]
    fetched = fetch_(b)
    assert [(u.ref, u.reason) for u in fetched.rejected] == [("refs/tags/good", LOCAL_TAG)]
    assert b.resolve("good").session_id == ids[1]
    forced = fetch_(b, force=True)  # a pulled tag never replaces a local one, even with --force
    assert [(u.ref, u.reason) for u in forced.rejected] == [("refs/tags/good", LOCAL_TAG)]
    assert b.resolve("good").session_id == ids[1]


def test_push_one_session_by_any_ref(tmp_path):
    a, ids = seeded(tmp_path / "a")
    fork(a, ids[0], "try", "x")
    remote_dir = bare(tmp_path / "team.git")
    result = push_(a, str(remote_dir), ["good"])  # a tag naming the first session
    result.check()
    assert sorted(u.ref for u in result.updates) == sorted([
        f"refs/sessions/{ids[0]}/main", f"refs/sessions/{ids[0]}/try", "refs/tags/good"])
    assert set(shared_refs(remote_dir)) == {u.ref for u in result.updates}
    result = push_(a, str(remote_dir), [f"{ids[1][:6]}@step-1"])
    assert sorted(u.ref for u in result.changed) == ["refs/baselines/ref-run", f"refs/sessions/{ids[1]}/main"]
    assert_fsck(remote_dir)


def test_fetch_leaves_a_session_being_recorded_alone(tmp_path):
    remote_dir = bare(tmp_path / "team.git")
    a = Repo.init(tmp_path / "a")
    w = a.create_session(name="live", command=["agent"])
    w.append(factories.exchange("one"), factories.info())
    push_(a, str(remote_dir)).check()
    b = clone_(str(remote_dir), tmp_path / "b").repo
    w.append(factories.exchange("two"), factories.info())
    w.finish(EndInfo(exit_code=0))
    push_(a, str(remote_dir)).check()
    with b.lease(w.id) as got:  # a recorder in b holds this session
        assert got
        fetched = fetch_(b)
    assert [(u.ref, u.reason) for u in fetched.rejected] == [(f"refs/sessions/{w.id}/main", "being recorded here")]
    assert len(b.session(w.id).main.steps) == 1
    assert fetch_(b).changed[0].status is RefStatus.FAST_FORWARD


def test_server_side_refusal_is_reported_not_swallowed(tmp_path, git_daemon):
    """libgit2 does not raise when the server's hook declines a ref: the result must say so."""
    url = git_daemon.bare("team.git")
    hook = git_daemon.base / "team.git" / "hooks" / "update"
    hook.write_text('#!/bin/sh\ncase "$1" in refs/tags/*) echo "no tags here" >&2; exit 1;; esac\nexit 0\n')
    hook.chmod(0o755)
    a, ids = seeded(tmp_path / "a")
    result = push_(a, url)
    assert [(u.ref, u.status) for u in result.rejected] == [("refs/tags/good", RefStatus.REJECTED)]
    assert "hook declined" in result.rejected[0].reason
    assert f"refs/sessions/{ids[0]}/main" in shared_refs(git_daemon.base / "team.git")
    assert "refs/tags/good" not in shared_refs(git_daemon.base / "team.git")
    with pytest.raises(RemoteError, match="refs/tags/good"):
        result.check()


def test_pre_push_hook_gets_gits_arguments_and_stdin_and_can_veto(tmp_path, monkeypatch):
    a, ids = seeded(tmp_path / "a")
    remote_dir = bare(tmp_path / "team.git")
    add_remote(a, "team", str(remote_dir))
    log = tmp_path / "hook.log"
    hook = a.path / "hooks" / "pre-push"
    hook.write_text(f'#!/bin/sh\necho "$1 $2 $(pwd)" > {log}\ncat >> {log}\nexit "${{VETO:-0}}"\n')
    hook.chmod(0o755)
    monkeypatch.setenv("VETO", "3")
    with pytest.raises(RemoteError, match=r"pre-push hook refused the push .*\(exit 3\)"):
        push_(a, "team")
    monkeypatch.delenv("VETO")
    assert shared_refs(remote_dir) == {}
    first, *lines = log.read_text().splitlines()
    assert first == f"team {remote_dir} {a.workdir}"
    expected = {f"{ref} {oid} {ref} {'0' * 40}" for ref, oid in shared_refs(a.path).items()}
    assert set(lines) == expected and len(lines) == 5  # 2 sessions, tag, baseline, notes

    push_(a, "team").check()
    assert shared_refs(remote_dir) == shared_refs(a.path)
    fork(a, ids[0], "try", "x")
    try_tip = shared_refs(a.path)[f"refs/sessions/{ids[0]}/try"]
    push_(a, "team").check()
    _, *lines = log.read_text().splitlines()
    assert lines == [f"refs/sessions/{ids[0]}/try {try_tip} refs/sessions/{ids[0]}/try {'0' * 40}"]


# -- kinds of URL -----------------------------------------------------------------------------


def test_file_url_plain_path_and_a_teammates_project(tmp_path):
    a, ids = seeded(tmp_path / "a")
    remote_dir = bare(tmp_path / "team.git")
    push_(a, f"file://{remote_dir}").check()
    assert shared_refs(remote_dir) == shared_refs(a.path)
    b = clone_(f"file://{remote_dir}", tmp_path / "b").repo
    assert sorted(b.session_ids()) == sorted(ids)
    # a path to a project holding .rewind/ means that .rewind (a teammate's repository, say)
    c = clone_(str(tmp_path / "a"), tmp_path / "c").repo
    assert shared_refs(c.path) == shared_refs(a.path)
    sid = factories.write_session(c, 1, name="from-c")
    push_(c, "origin").check()
    assert sid in a.session_ids()
    assert_fsck(a.path)
    assert_fsck(remote_dir)


def test_token_over_https_style_auth(tmp_path, git_http):
    bare(git_http.server.root / "team.git")
    url = git_http.url("team.git")
    a, ids = seeded(tmp_path / "a")
    creds = Credentials(token=git_http.token, username="alice")
    push_(a, url, credentials=creds).check()
    b = clone_(url, tmp_path / "b", credentials=creds).repo
    assert sorted(b.session_ids()) == sorted(ids)
    with pytest.raises(RemoteError, match="authentication failed") as err:
        push_(a, url, credentials=Credentials(token="wrong", username="alice"))
    assert "REWIND_GIT_TOKEN" in str(err.value)
    with pytest.raises(RemoteError, match="authentication failed"):
        fetch_(b, "origin", credentials=Credentials(ssh_agent=False))
    assert_fsck(git_http.server.root / "team.git")


def test_credential_helper_is_asked_like_git_asks_it(tmp_path, git_http):
    bare(git_http.server.root / "team.git")
    url = git_http.url("team.git")
    a, ids = seeded(tmp_path / "a")
    helper = tmp_path / "helper.sh"
    asked = tmp_path / "asked"
    helper.write_text(f"#!/bin/sh\necho \"$1\" >> {asked}\n"
                      f"[ \"$1\" = get ] && printf 'username=alice\\npassword={git_http.token}\\n'\nexit 0\n")
    helper.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(f"[credential]\n\thelper = {helper}\n")
    env = {"HOME": str(home), "PATH": os.environ["PATH"], "GIT_TERMINAL_PROMPT": "0"}
    creds = Credentials(credential_helper=True, helper_env=env, ssh_agent=False)
    push_(a, url, credentials=creds).check()
    assert asked.read_text().split() == ["get", "store"]  # approved after it worked, as git does


# -- one clean error each ---------------------------------------------------------------------


def test_errors_unknown_unreachable_and_not_a_rewind_repository(tmp_path, repo, git_daemon):
    factories.write_session(repo, 1)
    with pytest.raises(RemoteError, match=r"unknown remote 'origin' \(no remotes yet\); add it"):
        push_(repo)
    add_remote(repo, "origin", git_daemon.url("team.git"))
    with pytest.raises(RemoteError, match=r"unknown remote 'upstream' \(remotes: origin\)"):
        fetch_(repo, "upstream")
    with pytest.raises(RemoteError, match="cannot reach remote 'origin'"):
        push_(repo)  # the daemon serves no team.git
    closed = f"git://127.0.0.1:{free_port()}/x.git"  # nothing listens there
    with pytest.raises(RemoteError, match=f"cannot reach {closed}: failed to connect"):
        fetch_(repo, closed)
    with pytest.raises(RemoteError, match="no such directory"):
        push_(repo, str(tmp_path / "missing.git"))

    code = tmp_path / "code.git"
    bare(code)
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(code), str(work)], check=True, timeout=30, capture_output=True)
    subprocess.run(["git", "-C", str(work), "-c", "user.name=x", "-c", "user.email=x@y", "commit", "-q",
                    "--allow-empty", "-m", "code"], check=True, timeout=30)
    subprocess.run(["git", "-C", str(work), "push", "-q", "origin", "HEAD:refs/heads/main"], check=True, timeout=30,
                   capture_output=True)
    with pytest.raises(RemoteError, match=r"is not a rewind repository \(it holds refs/heads/main"):
        push_(repo, str(code))
    assert "refs/heads/main" in subprocess.run(["git", "--git-dir", str(code), "show-ref"], capture_output=True,
                                               text=True, check=True).stdout
    with pytest.raises(RemoteError, match="is not a rewind repository"):
        clone_(str(code), tmp_path / "nope")
    assert not (tmp_path / "nope").exists()  # a failed clone leaves nothing behind


def test_clone_of_an_empty_repository_and_into_an_existing_directory(tmp_path, git_daemon):
    url = git_daemon.bare("empty.git")
    project = tmp_path / "project"
    project.mkdir()
    (project / "agent.py").write_text("print('hi')\n")
    result = clone_(url, project)
    assert result.fetch.updates == [] and result.repo.sessions() == []
    assert (project / "agent.py").exists()
    with pytest.raises(RemoteError, match="already exists"):
        clone_(url, project)
    with pytest.raises(RemoteError, match="cannot reach"):
        clone_(git_daemon.url("absent.git"), project / "sub")
    assert not (project / "sub").exists() and (project / ".rewind").is_dir()


def test_diverged_notes_are_merged_on_fetch_then_push_fast_forwards(tmp_path):
    """Two people scoring sessions is the normal case: their notes merge instead of conflicting."""
    remote_dir = bare(tmp_path / "team.git")
    a, ids = seeded(tmp_path / "a")  # a note on ids[0]
    push_(a, str(remote_dir)).check()
    b = clone_(str(remote_dir), tmp_path / "b").repo
    sig = a.signature()
    first, second = a.resolve(ids[0]).commit, a.resolve(ids[1]).commit
    a.git.create_note('{"score": 0.1}', sig, sig, second, "refs/notes/evals")
    push_(a, str(remote_dir)).check()
    b.git.create_note('{"score": 0.5}', sig, sig, first, "refs/notes/evals", True)  # b rescored the same one
    assert [u.reason for u in push_(b).rejected] == ["non-fast-forward"]

    fetched = fetch_(b)
    [merged] = fetched.changed
    assert merged.ref == "refs/notes/evals" and merged.status is RefStatus.MERGED and "(merged)" in merged.line()
    assert b.git.lookup_note(first, "refs/notes/evals").message == '{"score": 0.5}'  # ours win on one object
    assert b.git.lookup_note(second, "refs/notes/evals").message == '{"score": 0.1}'  # theirs kept
    assert [u.status for u in push_(b).changed] == [RefStatus.FAST_FORWARD]
    assert [u.status for u in fetch_(a, str(remote_dir)).changed] == [RefStatus.FAST_FORWARD]
    assert a.git.lookup_note(first, "refs/notes/evals").message == '{"score": 0.5}'
    out = subprocess.run(["git", "--git-dir", str(a.path), "notes", "--ref=evals", "show", second],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.strip() == '{"score": 0.1}'
    assert_fsck(remote_dir)
    assert_fsck(b.path)


def test_fanned_out_notes_trees_are_read_whole(repo):
    """git fans a big notes tree out into ab/cdef... directories; the merge reads it flat."""
    git = repo.git
    blob = git.create_blob(b"note")
    inner = git.TreeBuilder()
    inner.insert("cd" * 19, blob, pygit2.enums.FileMode.BLOB)
    outer = git.TreeBuilder()
    outer.insert("ab", inner.write(), pygit2.enums.FileMode.TREE)
    outer.insert("ef" * 20, blob, pygit2.enums.FileMode.BLOB)
    flat = _flat_notes(git[outer.write()])
    assert set(flat) == {"ab" + "cd" * 19, "ef" * 20} and {oid for oid, _ in flat.values()} == {blob}
