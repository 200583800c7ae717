"""Fixtures for the fault suite: a repository, the real CLI, fake upstreams, agents on the official SDKs.

Everything runs on loopback: the agents reach the upstreams only through the
proxy that ``rewind record`` / ``rewind replay`` starts for them.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rewind_vcs.store.repo import Repo
from tests.e2e.conftest import offline_env, run_rewind, upstream_env

AGENTS = Path(__file__).resolve().parent / "agents"

__all__ = ["LineReader", "LiveProxy", "agent", "kill_quietly", "offline_env", "popen_rewind", "replay_summary", "run_rewind",
           "upstream_env", "wait_gone"]


def agent(name: str) -> str:
    return str(AGENTS / name)


@pytest.fixture
def workdir(tmp_path) -> Path:
    Repo.init(tmp_path)
    return tmp_path


def replay_summary(stdout: str) -> tuple[str, dict]:
    """Split ``rewind replay --json`` output into the agent's own output and rewind's summary."""
    at = stdout.rindex('{\n  "session"')
    return stdout[:at], json.loads(stdout[at:])


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """True once ``pid`` no longer runs (a zombie waiting for its reaper counts as gone)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def kill_quietly(pid: int, command_marker: str) -> None:
    """SIGKILL ``pid`` if it still runs and its command line holds ``command_marker`` (never a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return
    if command_marker.encode() not in cmdline:
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class LineReader:
    """Lines of a text pipe, read by a thread, so that waiting for one can time out."""

    def __init__(self, pipe) -> None:
        self.lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, args=(pipe,), daemon=True)
        self._thread.start()

    def _run(self, pipe) -> None:
        try:
            for line in pipe:
                self.lines.put(line.rstrip("\n"))
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def until(self, predicate, timeout: float) -> list[str]:
        """Lines up to and including the first ``predicate`` accepts; fails on EOF or timeout."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"timed out after {timeout} s; lines so far: {seen}") from None
            if line is None:
                raise AssertionError(f"the output ended early; lines so far: {seen}")
            seen.append(line)
            if predicate(line):
                return seen


def popen_rewind(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    """The real CLI in the background; stdout (the agent's, teed) and stderr piped as text."""
    return subprocess.Popen([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd,
                            env={**env, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


class LiveProxy:
    """The recording proxy of ``rewind record`` run in this process: real server, handler, recorder, store.

    Only the child process is left out, so a test can talk to the proxy with
    raw sockets and still see what reaches the repository.
    """

    def __init__(self, repo: Repo, upstreams: dict[str, str], timeout: float) -> None:
        from rewind_vcs.proxy.recorder import Recorder
        from rewind_vcs.proxy.run import ProxySettings, RecordingHandler, start_proxy
        from rewind_vcs.store.records import SessionInfo

        self.repo = repo
        self.errors: list[str] = []
        settings = ProxySettings(upstreams=upstreams, timeout=timeout)
        self.recorder = Recorder(repo, SessionInfo(name="live", command=["test"]))
        self.handler = RecordingHandler(self.recorder, settings.pool(), settings.timeout, self.errors.append)
        self.running = start_proxy(repo, self.handler, settings.routes({}), on_error=self.errors.append)
        self.finished = False

    @property
    def port(self) -> int:
        return self.running.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.running.port}"

    @property
    def bundle(self) -> str:
        return str(self.running.bundle)

    def journalled(self, settle: float = 0.1) -> int:
        """Exchanges recorded so far (each is reported just after its last byte, hence the settle)."""
        time.sleep(settle)
        return self.recorder.pending

    def crashes(self) -> list[str]:
        """Reports of the server's catch-all: an exception nobody handled on purpose."""
        return [e for e in self.errors if e.startswith(("proxy connection failed", "Task exception",
                                                        "Exception in callback", "stopping the proxy failed"))]

    def finish(self) -> int:
        """Stop, commit, close the session; returns the number of steps it holds."""
        from rewind_vcs.store.records import EndInfo

        self.running.stop()
        self.finished = True
        (writer,) = self.recorder.finish(EndInfo(exit_code=0))
        return writer.steps

    def close(self) -> None:
        if not self.finished:
            self.running.stop()
            self.recorder.abandon()


@pytest.fixture
def live_proxy(repo):
    """``live_proxy({"openai": url})`` -> a :class:`LiveProxy` recording into ``repo``; stopped after the test."""
    started: list[LiveProxy] = []

    def start(upstreams: dict[str, str] | None = None, timeout: float = 5.0) -> LiveProxy:
        proxy = LiveProxy(repo, upstreams or {}, timeout)
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.close()
