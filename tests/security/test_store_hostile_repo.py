"""One bad or newer-format session, a hostile ref or a broken ``.rewind`` never breaks other sessions.

Each case builds a real repository with a real good session, then plants the
bad thing the way plain git (a push into the bare repository, a crafted
clone) would. In-process for the library; a few through the real CLI.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pygit2
import pytest

from rewind_vcs.errors import FormatError, NotARepositoryError, RefError
from rewind_vcs.store.check import check_repository
from rewind_vcs.store.repo import Repo
from tests import factories

SIG = pygit2.Signature("someone", "someone@example.com", 0, 0)


def _code_commit(repo: Repo) -> pygit2.Oid:
    git = repo.git
    tb = git.TreeBuilder()
    tb.insert("main.py", git.create_blob(b"print('hello')\n"), pygit2.enums.FileMode.BLOB)
    return git.create_commit(None, SIG, SIG, "add main.py\n", tb.write(), [])


def _newer_format_session(repo: Repo) -> pygit2.Oid:
    git = repo.git
    record = {"format": 99, "name": "from-the-future", "started_at": 1.0, "command": []}
    tb = git.TreeBuilder()
    tb.insert("session.json", git.create_blob(orjson.dumps(record)), pygit2.enums.FileMode.BLOB)
    return git.create_commit(None, SIG, SIG, "session: x\n\nRewind-Kind: session\n", tb.write(), [])


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Repo, str]:
    """A repository with one good session and every kind of bad one next to it."""
    repo = Repo.init(tmp_path)
    good = factories.write_session(repo, 2, name="good")
    git = repo.git
    git.references.create("refs/sessions/deadbeef0000/main", _code_commit(repo))
    git.references.create("refs/sessions/beefbeef0000/main", _newer_format_session(repo))
    git.references.create("refs/sessions/cafecafe0000/main", git.create_blob(b"a blob, not a commit"))
    git.references.create("refs/sessions/not-an-id/main", _code_commit(repo))
    (repo.path / "refs" / "sessions" / "feedfeed0000").mkdir()
    (repo.path / "refs" / "sessions" / "feedfeed0000" / "main").write_text("1" * 40 + "\n")  # missing object
    tags = os.path.join(os.fsencode(repo.path), b"refs", b"tags")
    os.makedirs(tags, exist_ok=True)
    with open(os.path.join(tags, b"bad\xff\xfe"), "w") as f:
        f.write(str(_code_commit(repo)) + "\n")
    with open(repo.path / "packed-refs", "ab") as f:
        f.write(b"# pack-refs with: peeled fully-peeled sorted \n")
        f.write(str(_code_commit(repo)).encode() + b" refs/tags/packed\xc3\x28name\n")
    return repo, good


BAD_IDS = {"deadbeef0000", "beefbeef0000", "cafecafe0000", "not-an-id", "feedfeed0000"}


def test_listing_skips_bad_sessions_with_one_warning(hostile: tuple[Repo, str],
                                                     caplog: pytest.LogCaptureFixture) -> None:
    repo, good = hostile
    with caplog.at_level(logging.WARNING, logger="rewind_vcs.store"):
        listing = repo.session_listing()
    assert [s.id for s in listing.sessions] == [good]
    assert {s.id for s in listing.skipped} == BAD_IDS
    skipped_warnings = [r for r in caplog.records if "unreadable session" in r.getMessage()]
    assert len(skipped_warnings) == 1 and "rewind fsck" in skipped_warnings[0].getMessage()
    assert all("\n" not in s.reason for s in listing.skipped)
    assert "format 99" in next(s.reason for s in listing.skipped if s.id == "beefbeef0000")


def test_other_sessions_resolve_and_read(hostile: tuple[Repo, str]) -> None:
    repo, good = hostile
    assert repo.resolve("latest").session_id == good
    assert repo.resolve("good@step-2").step == 2
    assert len(repo.session(good).main.steps) == 2
    assert repo.tags() == []  # the two tags with non-UTF-8 names are skipped, never decoded


def test_naming_a_bad_session_is_one_line(hostile: tuple[Repo, str]) -> None:
    repo, _ = hostile
    with pytest.raises(FormatError) as err:
        repo.resolve("deadbeef0000")
    assert "has no session.json" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FormatError, match="format 99"):
        repo.resolve("beef")
    with pytest.raises(FormatError, match="not a commit"):
        repo.resolve("cafecafe0000")


def test_fsck_lists_every_bad_thing_and_does_not_crash(hostile: tuple[Repo, str]) -> None:
    repo, _ = hostile
    report = check_repository(repo)
    text = "\n".join(report.problems)
    for sid in BAD_IDS:
        assert f"session {sid}" in text, sid
    assert "refs/tags/bad\\xff\\xfe" in text and "refs/tags/packed\\xc3(name" in text
    assert report.sessions == 6 and report.steps == 2
    assert all(p.isprintable() for p in report.problems)


def test_a_very_long_ref_is_one_line(repo: Repo) -> None:
    factories.write_session(repo, 1)
    with pytest.raises(RefError, match="100,000 characters long"):
        repo.resolve("a" * 100_000)
    with pytest.raises(RefError, match="not a valid tag name"):
        repo.create_tag("a" * 100_000, "latest")
    with pytest.raises(RefError, match="not found"):
        repo.delete_tag("a" * 100_000)


def test_a_rewind_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / ".rewind").write_text("not a directory\n")
    with pytest.raises(NotARepositoryError, match="it is a file"):
        Repo.find(tmp_path)
    with pytest.raises(NotARepositoryError, match="it is a file"):
        Repo.init(tmp_path)
    with pytest.raises(NotARepositoryError, match="characters long"):
        Repo.open("x" * 100_000)


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REWIND_DIR", "REWIND_DEBUG")}
    return subprocess.run([sys.executable, "-m", "rewind_vcs", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = [x for x in proc.stderr.splitlines() if x.startswith("rewind:")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr
    return lines[0]


def test_cli_commands_about_other_sessions_still_work(hostile: tuple[Repo, str], tmp_path: Path) -> None:
    repo, good = hostile
    log = _cli(tmp_path, "log")
    assert log.returncode == 0, log.stderr
    assert good in log.stdout and "deadbeef0000" not in log.stdout
    assert "5 session(s) could not be read" in log.stderr and "rewind fsck" in log.stderr
    assert "Traceback" not in log.stderr
    for args in (("status",), ("show", "good"), ("show", "latest@step-1"), ("tag",),
                 ("share", "good", "-o", str(tmp_path / "x.html"))):
        proc = _cli(tmp_path, *args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, (args, proc.stderr)
    fsck = _cli(tmp_path, "fsck")
    assert fsck.returncode == 1 and "Traceback" not in fsck.stderr + fsck.stdout
    assert "session deadbeef0000" in fsck.stdout and "\\xff" in fsck.stdout
    assert "no session.json" in _one_error_line(_cli(tmp_path, "show", "deadbeef0000"))


def test_cli_one_line_errors_for_hostile_input(tmp_path: Path) -> None:
    repo = Repo.init(tmp_path / "r")
    factories.write_session(repo, 1)
    line = _one_error_line(_cli(repo.workdir, "show", "x" * 100_000))
    assert "100,000 characters" in line and len(line) < 300
    line = _one_error_line(_cli(repo.workdir, "tag", "bad\u202ename", "latest"))
    assert "not a valid tag name" in line and "\u202e" not in line
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / ".rewind").write_text("a file\n")
    assert "it is a file" in _one_error_line(_cli(tmp_path / "f", "log"))
    assert "it is a file" in _one_error_line(_cli(tmp_path / "f", "init"))
