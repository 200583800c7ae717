"""The ref resolver: every form a user types, and property tests for prefixes."""

from __future__ import annotations

import pygit2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewind_vcs.errors import AmbiguousRefError, RefError
from rewind_vcs.store.refs import timeline_ref
from rewind_vcs.store.repo import Repo
from rewind_vcs.store.resolve import Resolver
from tests import factories


@pytest.fixture
def three(repo):
    ids = [factories.write_session(repo, 3, name=n) for n in ("alpha", "beta", "alpha")]
    return repo, ids


def test_latest_is_the_newest_session(three):
    repo, ids = three
    t = repo.resolve("latest")
    assert (t.session_id, t.timeline, t.step) == (ids[2], "main", None)


def test_name_resolves_to_the_newest_session_of_that_name(three):
    repo, ids = three
    assert repo.resolve("alpha").session_id == ids[2]
    assert repo.resolve("beta").session_id == ids[1]


def test_full_id_and_step_suffix(three):
    repo, ids = three
    t = repo.resolve(f"{ids[0]}@step-2")
    assert t.step == 2 and t.session_id == ids[0]
    assert t.commit == repo.session(ids[0]).main.steps[1].commit_id


def test_step_out_of_range_names_the_range(three):
    repo, ids = three
    with pytest.raises(RefError, match=r"step-4 is out of range: .* has steps 1\.\.3"):
        repo.resolve("latest@step-4")
    with pytest.raises(RefError, match="out of range"):
        repo.resolve("latest@step-0")


def test_session_slash_timeline(three):
    repo, ids = three
    assert repo.resolve(f"{ids[0]}/main").timeline == "main"
    with pytest.raises(RefError, match="has no timeline 'nope'"):
        repo.resolve(f"{ids[0]}/nope")


def test_head_symbolic_and_detached_and_step_n(three):
    repo, ids = three
    with pytest.raises(RefError, match="HEAD is not checked out"):
        repo.resolve("HEAD")
    repo.git.set_head(timeline_ref(ids[1]))
    assert repo.resolve("HEAD").session_id == ids[1]
    assert repo.resolve("step-3").step == 3
    step2 = repo.resolve(f"{ids[0]}@step-2")
    repo.git.set_head(pygit2.Oid(hex=step2.commit))
    head = repo.resolve("HEAD")
    assert (head.session_id, head.timeline, head.step) == (ids[0], "main", 2)
    assert repo.resolve("step-1").commit == repo.session(ids[0]).main.steps[0].commit_id


def test_tags_on_sessions_and_steps(three):
    repo, ids = three
    repo.git.references.create("refs/tags/good", pygit2.Oid(hex=repo.resolve(ids[0]).commit))
    repo.git.references.create("refs/tags/pivot", pygit2.Oid(hex=repo.resolve(f"{ids[1]}@step-2").commit))
    good = repo.resolve("good")
    assert (good.session_id, good.timeline, good.step) == (ids[0], "main", None)
    pivot = repo.resolve("pivot")
    assert (pivot.session_id, pivot.step) == (ids[1], 2)
    assert repo.resolve("good@step-3").step == 3


def test_unknown_ref_suggests_the_closest_name(three):
    repo, _ = three
    with pytest.raises(RefError, match="did you mean alpha"):
        repo.resolve("alpah")


def test_garbage_specs_are_clear_errors(three):
    repo, _ = three
    for spec in ("", "latest@", "latest@step-x", "@step-1"):
        with pytest.raises(RefError):
            repo.resolve(spec)


# -- property tests: prefixes and ambiguity ---------------------------------------------


def _resolver_for(ids: list[str]) -> Resolver:
    from rewind_vcs.store.records import SessionStatus
    from rewind_vcs.store.session import SessionSummary

    r = Resolver(Repo("/nonexistent/.rewind"))
    r._summaries = [SessionSummary(i, None, float(n), 0, 0, 0.0, 0, SessionStatus.OK, 1)
                    for n, i in enumerate(ids)]
    return r


hex_ids = st.lists(st.text("0123456789abcdef", min_size=12, max_size=12), min_size=1, max_size=30, unique=True)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(ids=hex_ids, data=st.data())
def test_a_prefix_resolves_iff_it_is_unique(ids, data):
    r = _resolver_for(ids)
    target = data.draw(st.sampled_from(ids))
    k = data.draw(st.integers(1, 12))
    prefix = target[:k]
    matching = [i for i in ids if i.startswith(prefix)]
    if len(matching) == 1:
        assert r._session_id(prefix) == target
    else:
        with pytest.raises(AmbiguousRefError) as exc:
            r._session_id(prefix)
        assert set(exc.value.candidates) == set(matching)
        assert all(m in str(exc.value) for m in matching[:10])


@settings(max_examples=100)
@given(ids=hex_ids, junk=st.text("ghijklmnopqrstuvwxyz", min_size=1, max_size=8))
def test_non_matching_text_is_an_unknown_ref(ids, junk):
    r = _resolver_for(ids)
    with pytest.raises(RefError, match="unknown ref"):
        r._session_id(junk)


@settings(max_examples=100)
@given(ids=hex_ids)
def test_full_ids_always_resolve_to_themselves(ids):
    r = _resolver_for(ids)
    for i in ids:
        assert r._session_id(i) == i
