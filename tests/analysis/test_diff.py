"""Structural, step-aligned diffs of recorded runs (written with the store writer, real wire bytes)."""

from __future__ import annotations

import pytest

from rewind_vcs.analysis.diff import (
    ChangeKind,
    PairStatus,
    deep_changes,
    diff_refs,
    view_changes,
)
from tests.analysis import runs


@pytest.fixture
def good(repo):
    return runs.record(repo, name="research")


def fields(rows, side="request"):
    return [c.field for r in rows for c in getattr(r, side)]


def test_two_recordings_of_one_deterministic_run_are_identical(repo, good):
    again = runs.record(repo, name="research")
    a, b = repo.session(good).main.steps, repo.session(again).main.steps
    # the bytes really differ: ids, timestamps and request-id headers are minted per run
    assert all(x.response.body != y.response.body for x, y in zip(a, b, strict=True))
    assert [x.response.header("x-request-id") for x in a] != [y.response.header("x-request-id") for y in b]
    d = diff_refs(repo, good, again)
    assert d.identical
    assert [s.status for s in d.steps] == [PairStatus.EQUAL] * 4
    out = d.to_json()
    assert out["identical"] is True and len(out["steps"]) == 4
    assert out["counts"] == {"equal": 4, "changed": 0, "added": 0, "removed": 0}


@pytest.mark.parametrize("cause", sorted(runs.CAUSES))
def test_every_cause_shows_as_the_field_that_changed(repo, good, cause):
    changes, step = runs.CAUSES[cause]
    bad = runs.record(repo, **changes)
    d = diff_refs(repo, good, bad)
    assert not d.identical
    first = next(r for r in d.steps if r.status is not PairStatus.EQUAL)
    assert first.b_n == step
    expected = {
        "model": ("request", "model"),
        "params": ("request", "params.temperature"),
        "system_prompt": ("request", "system"),
        "user_input": ("request", "messages[0].content"),
        "tools": ("request", "tools[0].description"),
        "tool_result": ("request", "messages[2].content"),  # the system prompt is apart
        "nondeterminism": ("response", "output_text"),
    }
    if cause == "upstream_error":  # an extra failed call, then the same call again (a retry)
        assert first.status is PairStatus.ADDED and first.b.info.http_status == 500
        assert [r.status for r in d.steps].count(PairStatus.EQUAL) == 4
        return
    side, field = expected[cause]
    changed = [c for c in getattr(first, side) if c.field == field]
    assert changed and changed[0].kind is ChangeKind.CHANGED, getattr(first, side)
    if cause == "tool_result":
        assert changed[0].old == runs.FRESH_FACT and changed[0].new == runs.STALE_FACT


def test_an_inserted_step_does_not_shift_the_later_ones(repo, good):
    retried = runs.record(repo, fail_step=3, fail="http429")
    d = diff_refs(repo, good, retried)
    assert [(r.status.value, r.a_n, r.b_n) for r in d.steps] == [
        ("equal", 1, 1), ("equal", 2, 2), ("added", None, 3), ("equal", 3, 4), ("equal", 4, 5)]
    back = diff_refs(repo, retried, good)
    assert [(r.status.value, r.a_n, r.b_n) for r in back.steps][2] == ("removed", 3, None)


def test_after_a_change_every_later_step_pairs_with_its_counterpart(repo, good):
    bad = runs.record(repo, tool_result=runs.STALE_FACT)
    d = diff_refs(repo, good, bad)
    assert [(r.status.value, r.a_n, r.b_n) for r in d.steps] == [
        ("equal", 1, 1), ("equal", 2, 2), ("changed", 3, 3), ("changed", 4, 4)]
    writer = d.steps[3]
    assert fields([writer]) == ["messages[0].content"]  # the notes it was given
    assert {"output_text", "usage.input_tokens"} <= set(fields([writer], "response"))
    # the streamed Anthropic answer was reassembled: the change is in its text, not in SSE bytes
    text = next(c for c in writer.response if c.field == "output_text")
    assert "About 2.1 million" in text.new and "data:" not in text.new


def test_a_different_provider_at_the_same_place_still_pairs(repo, good):
    exs = runs.exchanges(runs.Script())
    assert exs[-1].request.host == "api.anthropic.com"
    # the writer moved to OpenAI: other provider, endpoint and model, at the same span
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Write the answer."}]}
    exs[-1] = runs.openai_call(body, "An answer.", span="supervisor/writer")
    other = runs.write(repo, exs)
    d = diff_refs(repo, good, other)
    assert [(r.status.value, r.a_n, r.b_n) for r in d.steps][-1] == ("changed", 4, 4)
    assert {"provider", "endpoint", "model"} <= set(fields(d.steps[3:]))


def test_step_refs_compare_single_steps(repo, good):
    bad = runs.record(repo, tool_result=runs.STALE_FACT)
    d = diff_refs(repo, f"{good}@step-3", f"{bad}@step-3")
    assert [(r.status.value, r.a_n, r.b_n) for r in d.steps] == [("changed", 3, 3)]
    assert d.to_json()["a"]["step"] == 3
    same = diff_refs(repo, f"{good}@step-2", f"{bad}@step-2")
    assert same.identical


def test_conversation_changes_are_element_wise():
    msgs = [{"role": "user", "content": f"m{i}"} for i in range(50)]
    old = {"messages": msgs, "params": {"temperature": 0}}
    inserted = {"messages": msgs[:10] + [{"role": "user", "content": "new"}] + msgs[10:],
                "params": {"temperature": 0.0}}
    changes = view_changes(old, inserted)  # one insertion, not 40 shifted messages; 0 == 0.0
    assert [(c.field, c.kind) for c in changes] == [("messages[10]", ChangeKind.ADDED)]
    edited = {"messages": [*msgs[:5], {"role": "tool", "content": "m5"}, *msgs[6:]], "params": {}}
    changes = view_changes(old, edited)
    assert [(c.field, c.kind, c.old, c.new) for c in changes] == [
        ("messages[5].role", ChangeKind.CHANGED, "user", "tool"),
        ("params.temperature", ChangeKind.REMOVED, 0, None),
    ]


def test_deep_changes_batches_keep_each_pair_apart():
    out = deep_changes([({"a": 1}, {"a": 1}), ({"a": [1, 2]}, {"a": [1, 3], "b": "x"}),
                        ({"t": "text"}, {"t": {"k": 1}})])
    assert out[0] == []
    assert [(c.field, c.kind.value, c.old, c.new) for c in out[1]] == [
        ("a[1]", "changed", 2, 3), ("b", "added", None, "x")]
    assert [(c.field, c.kind.value) for c in out[2]] == [("t", "changed")]


def test_unknown_ref_is_a_clean_error(repo, good):
    from rewind_vcs.errors import RefError

    with pytest.raises(RefError, match="unknown ref 'nope'"):
        diff_refs(repo, good, "nope")
