"""The page's data: structure always, content only when asked for."""

from __future__ import annotations

import json

import pytest

from rewind_vcs.demo.run import QUERY
from rewind_vcs.errors import RefError
from rewind_vcs.providers import normalise
from rewind_vcs.share.data import UNDECLARED_TOOL, program_name, share_data
from tests.share.conftest import HOSTILE_NAME, HOSTILE_SPAN, MARKER, SECRETS


def _dump(payload) -> str:
    return json.dumps(payload, ensure_ascii=False)


def test_content_free_steps_carry_model_tokens_latency_cost_status(shared_repo):
    repo = shared_repo.repo
    data = share_data(repo, shared_repo.good)
    payload = data.payload
    assert data.session_id == shared_repo.good and data.timeline == "main" and data.steps == 4
    main = next(t for t in payload["timelines"] if t["name"] == "main")
    rows = [payload["steps"][i] for i in main["steps"]]
    for row, step in zip(rows, repo.session(shared_repo.good).main.steps, strict=True):
        info = step.info
        assert row["n"] == info.n and row["model"] == info.model and row["status"] == info.status.value
        assert (row["input_tokens"], row["output_tokens"]) == (info.usage.input_tokens, info.usage.output_tokens)
        assert row["latency_ms"] == pytest.approx(info.latency_ms, abs=1e-3)
        assert row["cost_usd"] == info.cost_usd and row["span"] == info.span
        assert "content" not in row
    assert [r["model"] for r in rows] == ["gpt-4o-mini"] * 3 + ["claude-haiku-4-5"]
    assert rows[0]["label"] == "openai chat.completions" and rows[3]["label"] == "anthropic messages"
    assert rows[1]["tool_calls"] == [{"label": "search"}]  # declared by the request: a name, no arguments
    session = payload["session"]
    assert session["name"] == "research-good" and session["tags"] == ["good"]
    assert session["program"] == program_name([__import__("sys").executable]) and "command" not in session
    assert session["exit_code"] == 0 and session["status"] == "ok"


def test_content_free_payload_holds_no_prompt_output_summary_or_argument(shared_repo):
    repo = shared_repo.repo
    for sid in (shared_repo.good, shared_repo.stale, shared_repo.failed):
        text = _dump(share_data(repo, sid).payload)
        assert QUERY["query"] not in text  # the user's question: in argv and in the messages
        assert "research_agent.py" not in text and "--input" not in text  # argv beyond the program
        assert str(repo.workdir) not in text  # the cwd
        for timeline in repo.session(sid).timelines():
            for step in timeline.steps:
                view = normalise(step.exchange, hint=step.info.provider)
                assert step.info.summary not in text
                if view.output_text:
                    assert view.output_text[:40] not in text
                for message in view.messages:
                    if message.content:
                        assert message.content[:40] not in text
                for call in view.output_tool_calls:
                    assert json.dumps(call.arguments)[:30] not in text


def test_hostile_session_without_content_keeps_only_identifiers(shared_repo):
    data = share_data(shared_repo.repo, shared_repo.hostile)
    text = _dump(data.payload)
    assert MARKER not in text  # no message, output, tool argument, error text, argv or query string
    for secret in SECRETS:
        assert secret not in text
    steps = data.payload["steps"]
    assert data.payload["session"]["name"] == HOSTILE_NAME and data.payload["session"]["program"] == "python"
    assert steps[0]["span"] == HOSTILE_SPAN
    assert steps[0]["tool_calls"] == [{"label": "search"}, {"label": UNDECLARED_TOOL}]
    assert steps[2]["status"] == "error" and steps[2]["error"] == "HTTP 429 rate_limit_exceeded"
    tool = steps[3]
    assert (tool["kind"], tool["method"], tool["host"], tool["path"]) == ("tool", "GET", "search.example.com",
                                                                         "/v1/search")
    assert tool["label"] == "GET search.example.com/v1/search"


def test_include_content_carries_messages_tool_calls_output_and_command(shared_repo):
    data = share_data(shared_repo.repo, shared_repo.hostile, include_content=True)
    steps = data.payload["steps"]
    first = steps[0]["content"]
    assert first["system"].startswith(f"{MARKER} system")
    assert first["messages"][0]["role"] == "user" and first["messages"][0]["content"].startswith(MARKER)
    assert [c["name"] for c in first["output_tool_calls"]] == ["search", f"{MARKER}_made_up"]
    assert json.loads(first["output_tool_calls"][0]["arguments"])["q"].startswith(MARKER)
    assert first["tools"] == ["search"] and json.loads(first["params"]) == {"temperature": 0.2}
    assert steps[1]["content"]["output_text"].startswith(f"{MARKER} answer")
    assert steps[2]["error"].startswith(f"{MARKER} rate limited") or MARKER in steps[2]["error"]
    assert steps[3]["content"]["path"].startswith(f"/v1/search?q={MARKER}")
    assert "key=abc" not in _dump(data.payload)  # the proxy's redaction holds in content mode too
    assert data.payload["session"]["command"][-1] == f"{MARKER} <script>alert(1)</script>"
    for secret in SECRETS:
        assert secret not in _dump(data.payload)


def test_timelines_have_fork_points_and_share_their_first_steps(shared_repo):
    data = share_data(shared_repo.repo, f"{shared_repo.good}/stale-retry")
    payload = data.payload
    assert payload["selected"] == {"timeline": "stale-retry", "step": None} and data.timeline == "stale-retry"
    main, fork = payload["timelines"]
    assert (main["name"], main["fork_point"]) == ("main", None)
    assert (fork["name"], fork["fork_point"]) == ("stale-retry", 2)
    assert fork["steps"][:2] == main["steps"][:2]  # the same commits: one row each in the page
    assert fork["steps"][2:] != main["steps"][2:] and len(payload["steps"]) == 6
    assert shared_repo.good in fork["tree"]["label"] and fork["tree"]["label"].endswith("/stale-retry")


def test_a_step_ref_selects_its_timeline_and_focuses_the_step(shared_repo):
    data = share_data(shared_repo.repo, "good@step-3")
    assert data.payload["selected"] == {"timeline": "main", "step": 3} and data.step == 3


def test_trace_tree_nests_spans_and_uses_content_free_labels(shared_repo):
    payload = share_data(shared_repo.repo, shared_repo.good).payload
    tree = payload["timelines"][0]["tree"]
    assert tree["kind"] == "session" and tree["tokens"] == sum(s["tokens"] for s in payload["steps"][:4])
    (supervisor,) = tree["children"]
    assert (supervisor["kind"], supervisor["label"]) == ("span", "supervisor")
    kinds = [(c["kind"], c["label"]) for c in supervisor["children"]]
    assert kinds == [("llm", "openai chat.completions"), ("span", "researcher"), ("span", "writer")]
    researcher = supervisor["children"][1]
    call = researcher["children"][0]
    assert call["step"] == 2 and call["children"] == [{"kind": "tool_call", "label": "search", "step": 2,
                                                      "children": []}]
    writer = supervisor["children"][2]["children"][0]
    assert (writer["step"], writer["model"], writer["label"]) == (4, "claude-haiku-4-5", "anthropic messages")
    failed = share_data(shared_repo.repo, "research-500").payload["timelines"][0]["tree"]
    assert failed["status"] == "error"  # an error shows on every span above the failed call
    researcher = failed["children"][0]["children"][1]
    assert researcher["status"] == "error" and researcher["children"][-1]["error"].startswith("HTTP 500")


def test_a_failed_call_is_an_error_step_with_a_content_free_label(shared_repo):
    data = share_data(shared_repo.repo, "research-500")
    payload = data.payload
    rows = [payload["steps"][i] for i in payload["timelines"][0]["steps"]]
    assert [r["status"] for r in rows] == ["ok", "ok", "error"]
    assert rows[2]["http_status"] == 500 and rows[2]["error"].startswith("HTTP 500")
    assert payload["session"]["status"] == "failed" and payload["session"]["exit_code"] != 0


def test_unknown_ref_is_a_ref_error(shared_repo):
    with pytest.raises(RefError):
        share_data(shared_repo.repo, "no-such-session")


def test_program_name_is_the_basename_only():
    assert program_name(["/home/alice/.venv/bin/python3", "agent.py", "secret"]) == "python3"
    assert program_name(["C:\\Users\\bob\\agent.exe"]) == "agent.exe"
    assert program_name([]) is None
