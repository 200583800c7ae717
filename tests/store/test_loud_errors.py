"""Store code that works around a damaged file says so through logging; nothing is dropped silently."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rewind_vcs.errors import RewindError
from rewind_vcs.store.arrivals import Origin, note_arrivals, read_arrivals
from rewind_vcs.store.refs import read_refs
from rewind_vcs.store.repo import Repo
from tests import factories


def test_a_garbled_arrivals_line_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "arrivals").write_text("abc123 local -\nthis is not a line\nabc456 martian -\n")
    with caplog.at_level(logging.WARNING):
        got = read_arrivals(tmp_path)
    assert list(got) == ["abc123"]
    assert "skipped 2 line(s)" in caplog.text


def test_a_bad_session_id_arrival_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        note_arrivals(tmp_path, ["../../x"], Origin.IMPORTED, "a.rw")
    assert read_arrivals(tmp_path) == {} and "not a session id" in caplog.text


def test_a_ref_with_garbage_content_is_logged(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    sid = factories.write_session(repo, 1)
    broken = repo.path / "refs" / "sessions" / "aaaaaaaaaaaa"
    broken.mkdir(parents=True)
    (broken / "main").write_text("garbage\n")
    with caplog.at_level(logging.WARNING):
        refs = read_refs(repo.path)
    assert list(refs) == [f"refs/sessions/{sid}/main"]
    assert "not an object id" in caplog.text
    assert [s.id for s in repo.sessions()] == [sid]


def test_an_unwritable_cache_is_logged(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    sid = factories.write_session(repo, 1)
    cache = repo.path / "cache"
    for f in cache.iterdir():
        f.unlink()
    cache.rmdir()
    cache.write_text("a file where the cache directory should be\n")
    with caplog.at_level(logging.INFO, logger="rewind_vcs.store.index"):
        assert [s.id for s in repo.sessions()] == [sid]
    assert "cannot write the session cache" in caplog.text


def test_a_broken_config_is_its_own_error(repo: Repo) -> None:
    (repo.path / "config").write_text("[rewind\nformat = 1\n")
    with pytest.raises(RewindError, match="not a valid config file"):
        Repo.open(repo.path)
