"""Aligning two timelines' steps by content (the same pure function diff and bisect use)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rewind_vcs.analysis.align import align
from rewind_vcs.store.records import StepInfo, StepKind, StepStatus


@dataclass
class Call:
    """What align reads of a step: its signature, its shape and its step.json (no bodies)."""

    key: str
    span: str = "agent"
    provider: str = "openai"
    endpoint: str = "chat.completions"
    model: str = "gpt-4o-mini"
    status: StepStatus = StepStatus.OK
    info: StepInfo = field(init=False)

    def __post_init__(self) -> None:
        self.info = StepInfo(n=0, kind=StepKind.LLM, provider=self.provider, endpoint=self.endpoint,
                             model=self.model, span=self.span, match_key=self.key, status=self.status)

    @property
    def signature(self):
        return (self.provider, self.endpoint, self.model, self.span, self.key, self.status.value)

    @property
    def shape(self):
        return (self.provider, self.endpoint, self.span)


def rows(a, b):
    return [(p.a, p.b) for p in align(a, b)]


def test_identical_runs_pair_one_to_one():
    a = [Call(k) for k in "abcd"]
    assert rows(a, [Call(k) for k in "abcd"]) == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert all(p.exact for p in align(a, a))


def test_an_inserted_or_removed_step_does_not_shift_the_rest():
    a = [Call(k) for k in "abcdef"]
    b = [Call(k) for k in "abXcdef"]
    assert rows(a, b) == [(0, 0), (1, 1), (None, 2), (2, 3), (3, 4), (4, 5), (5, 6)]
    assert rows(b, a) == [(0, 0), (1, 1), (2, None), (3, 2), (4, 3), (5, 4), (6, 5)]


def test_a_failed_call_and_its_retry():
    a = [Call("a"), Call("b"), Call("c")]
    b = [Call("a"), Call("b", status=StepStatus.ERROR), Call("b"), Call("c")]
    assert rows(a, b) == [(0, 0), (None, 1), (1, 2), (2, 3)]


def test_changed_content_pairs_by_place_after_a_divergence():
    a = [Call(k) for k in "abcdef"]
    b = [Call(k) for k in "ab"] + [Call(k + "'") for k in "cdef"]
    assert rows(a, b) == [(i, i) for i in range(6)]
    assert [p.exact for p in align(a, b)] == [True, True, False, False, False, False]


def test_leftovers_pair_by_similarity_in_order():
    a = [Call("p", span="plan"), Call("s", span="search", provider="anthropic", endpoint="messages"),
         Call("w", span="write")]
    b = [Call("p", span="plan"), Call("w2", span="write"), Call("x", span="critic", provider="gemini",
                                                                  endpoint="generateContent")]
    # "write" pairs with "write" though it moved; the search has no counterpart, nor the critic
    assert rows(a, b) == [(0, 0), (1, None), (2, 1), (None, 2)]


def test_a_long_unmatched_run_pairs_by_position():
    a = [Call(f"a{i}", span="old") for i in range(70)]
    b = [Call(f"b{i}", span="new") for i in range(60)]
    out = rows(a, b)
    assert out[:60] == [(i, i) for i in range(60)] and out[60:] == [(i, None) for i in range(60, 70)]
