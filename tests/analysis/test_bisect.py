"""Two-session bisect: the first step at which BAD departs from GOOD, and its likely cause."""

from __future__ import annotations

import json
import os
import sys

import pytest

from rewind_vcs.analysis.bisect import Cause, bisect_refs, classify
from rewind_vcs.analysis.diff import load_side
from rewind_vcs.analysis.render import divergence_lines
from tests.analysis import runs


@pytest.fixture
def good(repo):
    return runs.record(repo, name="research")


def test_two_recordings_of_one_deterministic_run_do_not_diverge(repo, good):
    again = runs.record(repo, name="research")
    d = bisect_refs(repo, good, again)
    assert d.first_divergent_step is None and d.causes == [] and not d.diverged
    out = d.to_json()
    assert out["first_divergent_step"] is None and out["causes"] == []
    assert "no divergence" in divergence_lines(d)[0]


@pytest.mark.parametrize("cause", sorted(runs.CAUSES))
def test_each_cause_is_found_at_its_step(repo, good, cause):
    changes, step = runs.CAUSES[cause]
    bad = runs.record(repo, **changes)
    d = bisect_refs(repo, good, bad)
    assert d.first_divergent_step == step
    assert d.causes[0] is Cause(cause), d.evidence
    assert d.to_json()["causes"][0] == cause
    assert all(e.cause in d.causes for e in d.evidence) and d.evidence[0].cause is Cause(cause)
    text = "\n".join(divergence_lines(d))
    assert f"at step {step}" in text and f"1. {cause}" in text


def test_evidence_names_the_field_and_both_values(repo, good):
    bad = runs.record(repo, tool_result=runs.STALE_FACT)
    d = bisect_refs(repo, good, bad)
    (e,) = d.evidence
    assert (e.cause, e.field, e.role, e.old, e.new) == (
        Cause.TOOL_RESULT, "messages[2].content", "tool", runs.FRESH_FACT, runs.STALE_FACT)
    assert d.good_step == 3 and d.row.a.n == 3 and d.row.b.n == 3


def test_several_causes_are_ranked(repo, good):
    bad = runs.record(repo, temperature=0.3, question="How many EVs were sold in 2024?")
    d = bisect_refs(repo, good, bad)
    assert d.first_divergent_step == 1
    assert d.causes == [Cause.PARAMS, Cause.USER_INPUT]


def test_a_transient_upstream_failure_ranks_first(repo):
    """A 429 is not caused by what was asked, even when the request changed too."""
    good = runs.write(repo, runs.exchanges(runs.Script()))
    first = runs.exchanges(runs.Script(temperature=0.2))[0]
    exs = [runs.openai_failure(json.loads(first.request.body), "http429", "supervisor")]
    bad = runs.write(repo, exs)
    d = bisect_refs(repo, good, bad)
    assert d.first_divergent_step == 1
    assert d.causes == [Cause.UPSTREAM_ERROR, Cause.PARAMS]


def test_good_with_the_failure_and_bad_without_still_names_it(repo, good):
    flaky = runs.record(repo, fail_step=2, fail="reset")
    d = bisect_refs(repo, flaky, good)
    assert d.first_divergent_step == 2 and d.causes == [Cause.UPSTREAM_ERROR]


def test_a_run_that_stops_early_or_calls_more(repo, good):
    exs = runs.exchanges(runs.Script())
    short = runs.write(repo, exs[:2])
    d = bisect_refs(repo, good, short)
    assert (d.first_divergent_step, d.good_step, d.causes) == (3, 3, [])
    assert "never makes GOOD's step 3" in d.note
    longer = runs.write(repo, [*exs, runs.openai_call(
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "one more thing"}]}, "ok",
        span="supervisor/critic")])
    d = bisect_refs(repo, good, longer)
    assert (d.first_divergent_step, d.good_step, d.causes) == (5, None, [])
    assert "makes a call GOOD never made" in d.note


def test_tool_host_steps_that_answer_differently_are_tool_results(repo):
    """A recorded tool host (--record-host): same query, other data."""
    from tests.providers.builders import exchange, request, response

    def run(answer: str) -> str:
        ex = exchange(request("/v1/search?q=ev+sales", b"", host="search.example.com", method="GET"),
                      response({"results": [answer], "took_ms": 12}))
        return runs.write(repo, [ex])

    a, b = run("17 million"), run("2.1 million")
    d = bisect_refs(repo, a, b)
    assert d.first_divergent_step == 1 and d.causes == [Cause.TOOL_RESULT]
    assert d.evidence[0].field == "output.results[0]"


def test_classify_reads_system_messages_inside_the_conversation(repo, good):
    side = load_side(repo, good)
    step = side.views[1]
    from rewind_vcs.analysis.diff import Change, ChangeKind

    change = Change("messages[0]", ChangeKind.ADDED, None, {"role": "developer", "content": "be brief"})
    causes, evidence = classify(step, step, [change], [])
    assert causes == [Cause.SYSTEM_PROMPT] and evidence[0].role == "developer"


def test_the_demo_recorded_through_the_proxy_departs_at_step_3_on_a_tool_result(repo):
    """The demo's good and stale runs, recorded by the real proxy from a real agent process."""
    from rewind_vcs.demo.run import run_demo

    result = run_demo(repo, python=sys.executable, env=dict(os.environ))
    d = bisect_refs(repo, "good", "bad")
    assert d.first_divergent_step == 3
    assert d.causes[0] is Cause.TOOL_RESULT
    assert (d.good.session_id, d.bad.session_id) == (result.good.session_id, result.bad.session_id)
    evidence = d.evidence[0]
    assert evidence.role == "tool" and "17 million" in evidence.old and "2.1 million" in evidence.new
