"""Tags as a Repo API, the arrival order of ``latest``, and tags that clash with sessions."""

from __future__ import annotations

import time

import pygit2
import pytest

from rewind_vcs.errors import AmbiguousRefError, RefError
from rewind_vcs.store.arrivals import Origin, note_arrivals
from rewind_vcs.store.refs import valid_tag_name
from rewind_vcs.store.repo import Repo
from tests import factories


def _foreign_session(repo: Repo, name: str, started_at: float) -> str:
    """A session that reached the repository without an arrival line (as plain git would push it)."""
    sid = factories.write_session(repo, 1, name=name, started_at=started_at)
    lines = (repo.path / "arrivals").read_text().splitlines()
    (repo.path / "arrivals").write_text("".join(f"{x}\n" for x in lines if not x.startswith(sid)))
    return sid


def test_latest_follows_arrival_not_started_at(repo: Repo) -> None:
    old = factories.write_session(repo, 1, name="mine")
    future = _foreign_session(repo, "crafted", started_at=4_102_444_800.0)  # says it started in 2100
    assert repo.resolve("latest").session_id == old
    assert [s.id for s in repo.sessions()] == [old, future]
    note_arrivals(repo.path, [future], Origin.IMPORTED, "x.rw")  # now it arrives: it is the newest
    assert repo.resolve("latest").session_id == future
    newer = factories.write_session(repo, 1, name="mine")
    assert [s.id for s in repo.sessions()] == [newer, future, old]


def test_unknown_arrivals_sort_below_known_by_started_at(repo: Repo) -> None:
    known = factories.write_session(repo, 1)
    a = _foreign_session(repo, "a", started_at=1000.0)
    b = _foreign_session(repo, "b", started_at=2000.0)
    assert [s.id for s in repo.sessions()] == [known, b, a]


def test_a_name_resolves_to_the_newest_arrival_of_that_name(repo: Repo) -> None:
    first = factories.write_session(repo, 1, name="same", started_at=4_102_444_800.0)
    second = factories.write_session(repo, 1, name="same", started_at=1000.0)
    assert repo.resolve("same").session_id == second
    assert repo.resolve("latest").session_id == second
    assert first != second


def test_tag_that_is_also_a_session_name_is_ambiguous(repo: Repo) -> None:
    sid = factories.write_session(repo, 2, name="deploy")
    other = factories.write_session(repo, 2, name="other")
    repo.create_tag("deploy", f"{other}@step-1")
    with pytest.raises(AmbiguousRefError) as err:
        repo.resolve("deploy")
    assert "tag deploy" in str(err.value) and f"session {sid}" in str(err.value)
    assert "refs/tags/deploy" in str(err.value) and "\n" not in str(err.value)
    assert repo.resolve("refs/tags/deploy").step == 1  # the tag alone
    assert repo.resolve(f"{sid}/main").session_id == sid  # the session alone


def test_tag_that_is_a_session_id_prefix_is_ambiguous(repo: Repo) -> None:
    sid = factories.write_session(repo, 1)
    other = factories.write_session(repo, 1)
    prefix = next(sid[:n] for n in range(4, 12) if not other.startswith(sid[:n]))
    repo.create_tag(prefix, other)
    with pytest.raises(AmbiguousRefError):
        repo.resolve(prefix)


def test_tags_api(repo: Repo) -> None:
    sid = factories.write_session(repo, 3, name="run")
    made = repo.create_tag("good", "run@step-2")
    assert (made.session_id, made.timeline, made.step, made.target) == (sid, "main", 2, f"{sid}/main@step-2")
    repo.create_tag("tip", "run")
    assert [(t.name, t.target) for t in repo.tags()] == [("good", f"{sid}/main@step-2"), ("tip", f"{sid}/main")]
    with pytest.raises(RefError, match="already exists"):
        repo.create_tag("good", "run")
    assert repo.create_tag("good", "run", force=True).step is None
    repo.delete_tag("good")
    assert [t.name for t in repo.tags()] == ["tip"]
    with pytest.raises(RefError, match="not found"):
        repo.delete_tag("good")
    for bad in ("HEAD", "latest", "step-2", "a\u202eb", "x\x1b[31m", "new\nline", "a" * 64, "../x", ""):
        with pytest.raises(RefError, match="not a valid tag name"):
            repo.create_tag(bad, "run")


def test_tag_on_a_fork_names_its_timeline(repo: Repo) -> None:
    from rewind_vcs.store.writer import SessionWriter

    sid = factories.write_session(repo, 3)
    at = repo.session(sid).main.steps[0].commit_id
    w = SessionWriter.fork(repo, sid, at, "try")
    w.append(factories.exchange("other"), factories.info())
    w.finish()
    repo.create_tag("forked", f"{sid}/try@step-2")
    repo.create_tag("shared", f"{sid}@step-1")
    tags = {t.name: t.target for t in repo.tags()}
    assert tags == {"forked": f"{sid}/try@step-2", "shared": f"{sid}/main@step-1"}


def test_a_foreign_tag_and_a_bad_tag_name_still_list(repo: Repo, caplog: pytest.LogCaptureFixture) -> None:
    factories.write_session(repo, 1)
    git = repo.git
    blob = git.create_blob(b"not a commit")
    tree = git.TreeBuilder().write()
    sig = pygit2.Signature("x", "x@x", 0, 0)
    plain = git.create_commit(None, sig, sig, "plain\n", tree, [])
    git.references.create("refs/tags/blob", blob)
    git.references.create("refs/tags/plain", plain)
    (repo.path / "refs" / "tags" / "step-9").write_text(str(plain) + "\n")
    tags = {t.name: t for t in repo.tags()}
    assert set(tags) == {"blob", "plain"}
    assert tags["plain"].session_id is None and tags["plain"].target == str(plain)[:12]
    assert "skipped 1 tag" in caplog.text


def test_valid_tag_name_refuses_control_and_bidi_characters() -> None:
    assert valid_tag_name("v1.2_rc-3")
    for bad in ("a\u202e", "\u2066x", "a\u200fb", "a\x00", "a\x7f", "ok\n", "\u00e9t\u00e9"):
        assert not valid_tag_name(bad), repr(bad)


def test_tag_listing_is_linear_in_tags(repo: Repo) -> None:
    sid = factories.write_session(repo, 20)
    git = repo.git
    steps = [s.commit_id for s in repo.session(sid).main.steps]

    def timed(n: int) -> float:
        for i in range(n):
            git.references.create(f"refs/tags/t{n}-{i}", pygit2.Oid(hex=steps[i % len(steps)]), force=True)
        t0 = time.perf_counter()
        got = repo.tags()
        took = time.perf_counter() - t0
        for i in range(n):
            git.references.delete(f"refs/tags/t{n}-{i}")
        assert len(got) == n and all(t.session_id == sid for t in got)
        return took

    small, big = timed(250), timed(2000)
    # 8x the tags: linear is ~8x; the old quadratic listing was ~64x. Allow noise on a loaded machine.
    assert big < small * 25 + 0.5, (small, big)
