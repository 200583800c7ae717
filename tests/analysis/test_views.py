"""The plain views diff and bisect compare: what counts as "the same call", what never counts."""

from __future__ import annotations

from rewind_vcs.analysis.views import StepView, normalise_response, request_view, response_view
from rewind_vcs.providers import normalise
from tests.analysis import runs


def views(repo, sid):
    return [StepView(s) for s in repo.session(sid).main.steps]


def test_volatile_data_is_not_in_any_view(repo):
    a, b = views(repo, runs.record(repo)), views(repo, runs.record(repo))
    for x, y in zip(a, b, strict=True):
        assert x.step.response.body != y.step.response.body  # ids, created, fingerprints differ
        assert x.signature == y.signature
        assert x.request_view == y.request_view
        assert x.response_view == y.response_view
    # the tool-call ids the API minted are mapped to their order of appearance
    messages = a[2].request_view["messages"]
    assert messages[1]["tool_calls"][0]["id"] == messages[2]["tool_call_id"] == "call-1"


def test_the_response_alone_reads_like_the_full_normalised_view(repo):
    for view in views(repo, runs.record(repo, fail_step=2)):
        step = view.step
        full = normalise(step.exchange, step.info.provider)
        alone = normalise_response(step.request, step.response, step.info.provider)
        assert response_view(alone, step.response.body) == response_view(full, step.response.body)
        assert view.response_view and "request_normalised" not in view.__dict__  # body not parsed
        assert request_view(full, step.request.body)["model"] == step.info.model


def test_errors_and_transient_errors(repo):
    v = views(repo, runs.record(repo, fail_step=2, fail="http500"))
    assert [x.is_error for x in v] == [False, True, False, False, False]
    assert v[1].is_transient_error and not v[0].is_transient_error
    reset = views(repo, runs.record(repo, fail_step=1, fail="reset"))
    assert reset[0].is_transient_error and reset[0].response_view["http_status"] == 0


def test_a_step_json_without_a_match_key_still_aligns(repo):
    """Written by an older or foreign writer: the key is computed from the request."""
    from rewind_vcs.store.records import StepInfo

    ex = runs.exchanges(runs.Script())[0]
    w = repo.create_session(name="bare", command=["x"])
    w.append(ex, StepInfo(n=0, provider="openai", endpoint="chat.completions"))
    w.finish()
    (bare,) = views(repo, w.id)
    (full,) = views(repo, runs.write(repo, [ex]))
    assert bare.info.match_key == "" and bare.match_key == full.match_key
