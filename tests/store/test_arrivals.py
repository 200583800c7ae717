"""The arrival order and origin of sessions (``.rewind/arrivals``)."""

from __future__ import annotations

from pathlib import Path

from rewind_vcs.store.arrivals import UNKNOWN, Origin, arrival_of, note_arrivals, read_arrivals


def test_first_arrival_wins_and_order_is_kept(tmp_path: Path) -> None:
    note_arrivals(tmp_path, ["aaa111", "bbb222"], Origin.IMPORTED, "in cident.rw\n")
    note_arrivals(tmp_path, ["bbb222", "ccc333"], Origin.FETCHED, "origin")
    got = read_arrivals(tmp_path)
    assert [(k, v.seq, v.origin) for k, v in got.items()] == [
        ("aaa111", 0, Origin.IMPORTED),
        ("bbb222", 1, Origin.IMPORTED),
        ("ccc333", 2, Origin.FETCHED),
    ]
    assert got["aaa111"].source == "in_cident.rw_"
    assert not got["aaa111"].trusted


def test_unknown_session_and_garbage_lines(tmp_path: Path) -> None:
    (tmp_path / "arrivals").write_bytes(b"junk\n\xff\xfe x y\nabc123 local -\nabc999 unknown -\n")
    assert arrival_of(tmp_path, "abc123").trusted
    assert arrival_of(tmp_path, "abc999") is UNKNOWN
    assert arrival_of(tmp_path, "nothere") is UNKNOWN


def test_recording_marks_the_session_local(repo) -> None:  # type: ignore[no-untyped-def]
    from tests.factories import write_session

    sid = write_session(repo)
    assert arrival_of(repo.path, sid).origin is Origin.LOCAL
