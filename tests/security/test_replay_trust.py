"""Other people's data never chooses what runs: replaying a foreign session's recorded command.

The crafted session is written with the store API in the attacker's own
repository, fetched into the victim's with real ``git`` (as a pull would) and
noted as ``imported``. Its recorded command would create ``PWNED``.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewind_vcs.errors import UntrustedCommandError
from rewind_vcs.proxy.run import replay_run
from rewind_vcs.store.arrivals import Origin, arrival_of, note_arrivals
from rewind_vcs.store.records import EndInfo, SessionInfo
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.writer import SessionWriter
from tests.e2e.conftest import offline_env

ESC_TITLE = "\x1b]0;owned\x07"


def _crafted(tmp_path: Path, victim: Path, origin: Origin | None = Origin.IMPORTED) -> str:
    """A session in ``victim``'s repository whose recorded command touches PWNED in ``victim``."""
    attacker = Repo.init(tmp_path / "attacker")
    info = SessionInfo(name="innocent", command=["sh", "-c", "touch PWNED", ESC_TITLE],
                       cwd=str(victim), started_at=4102444800.0)  # "the year 2100"
    writer = SessionWriter.create(attacker, info)
    writer.finish(EndInfo(exit_code=0))
    subprocess.run(["git", "--git-dir", str(victim / ".rewind"), "fetch", "-q", str(attacker.path),
                    "refs/sessions/*:refs/sessions/*"], check=True, capture_output=True)
    if origin is not None:
        note_arrivals(victim / ".rewind", [writer.id], origin, "evil.rw")
    return writer.id


@pytest.fixture
def victim(tmp_path) -> Path:
    path = tmp_path / "victim"
    path.mkdir()
    Repo.init(path)
    return path


def _rewind(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd, env=offline_env(),
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("origin", [Origin.IMPORTED, Origin.FETCHED, None])
def test_library_refuses_a_foreign_recorded_command(tmp_path, victim, origin):
    sid = _crafted(tmp_path, victim, origin)
    repo = Repo.open(victim)
    assert not arrival_of(repo.path, sid).trusted
    with pytest.raises(UntrustedCommandError) as caught:
        replay_run(repo, repo.resolve(sid), env=offline_env())
    assert caught.value.command[:3] == ["sh", "-c", "touch PWNED"] and caught.value.cwd == str(victim)
    assert "\n" not in str(caught.value)
    assert not (victim / "PWNED").exists()
    assert [t.name for t in repo.session(sid).timelines()] == ["main"]  # nothing was forked or written


def test_library_runs_it_when_allowed(tmp_path, victim):
    sid = _crafted(tmp_path, victim)
    repo = Repo.open(victim)
    result = replay_run(repo, repo.resolve(sid), env=offline_env(), allow_recorded_command=True)
    assert result.exit_code == 0 and (victim / "PWNED").exists()


def test_plain_replay_without_a_terminal_refuses_in_one_line(tmp_path, victim):
    sid = _crafted(tmp_path, victim)
    for args in (["replay"], ["replay", "latest"], ["replay", sid]):
        proc = _rewind(args, victim)
        assert proc.returncode != 0, proc.stderr
        assert not (victim / "PWNED").exists()
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "not recorded in this repository" in lines[0] and "--yes" in lines[0]
        assert "Traceback" not in proc.stderr and "\x1b" not in proc.stderr


def test_yes_or_an_explicit_command_is_the_users_decision(tmp_path, victim, fsck):
    sid = _crafted(tmp_path, victim)
    elsewhere = victim / "sub"
    elsewhere.mkdir()
    mine = _rewind(["replay", sid, "--", "sh", "-c", "touch MINE"], elsewhere)
    assert mine.returncode == 0, mine.stderr
    # the user's command ran, here, not in the directory the foreign session names
    assert (elsewhere / "MINE").exists() and not (victim / "MINE").exists()
    assert not (victim / "PWNED").exists()
    yes = _rewind(["replay", sid, "--yes"], victim)
    assert yes.returncode == 0, yes.stderr
    assert (victim / "PWNED").exists()
    fsck(Repo.open(victim))


def test_a_local_session_still_replays_without_asking(victim):
    repo = Repo.open(victim)
    writer = SessionWriter.create(repo, SessionInfo(name="own", command=["sh", "-c", "touch OWN"],
                                                    cwd=str(victim)))
    writer.finish(EndInfo(exit_code=0))
    proc = _rewind(["replay", "own"], victim)
    assert proc.returncode == 0, proc.stderr
    assert (victim / "OWN").exists()


def _on_a_terminal(args: list[str], cwd: Path, answer: bytes) -> tuple[int, str]:
    """Run rewind with a pty as its terminal; answer the prompt; returns (exit code, what it showed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd, env=offline_env(),
                            stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    shown = b""
    answered = False
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                shown += data
                if not answered and b"[y/N]" in shown:
                    os.write(master, answer)
                    answered = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
    assert answered, shown
    return code, shown.decode(errors="replace")


def test_on_a_terminal_it_shows_the_command_and_no_means_no(tmp_path, victim):
    sid = _crafted(tmp_path, victim)
    code, shown = _on_a_terminal(["replay", sid], victim, b"n\n")
    assert code != 0
    assert not (victim / "PWNED").exists()
    assert "sh -c 'touch PWNED'" in shown and str(victim) in shown
    assert "\x1b]0;owned" not in shown and "\\x1b]0;owned\\x07" in shown  # visible, not interpreted
    assert "not running the recorded command" in shown


def test_on_a_terminal_an_empty_answer_is_no(tmp_path, victim):
    _crafted(tmp_path, victim)
    code, _ = _on_a_terminal(["replay"], victim, b"\n")
    assert code != 0 and not (victim / "PWNED").exists()


def test_on_a_terminal_yes_runs_it(tmp_path, victim):
    sid = _crafted(tmp_path, victim)
    code, shown = _on_a_terminal(["replay", sid], victim, b"y\n")
    assert code == 0, shown
    assert (victim / "PWNED").exists()
