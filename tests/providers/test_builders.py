"""The test body builder (rewind_vcs.testing.builders) writes what the readers read back."""

from __future__ import annotations

import pytest

from rewind_vcs.providers import normalise
from rewind_vcs.store.records import Usage
from rewind_vcs.testing.builders import reply_response, tool_call
from tests.providers.builders import exchange, request

PATHS = {
    ("openai", False): "/v1/chat/completions",
    ("openai", True): "/v1/chat/completions",
    ("anthropic", False): "/v1/messages",
    ("anthropic", True): "/v1/messages",
    ("gemini", False): "/v1beta/models/gemini-2.5-flash:generateContent",
    ("gemini", True): "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
}


@pytest.mark.parametrize(("provider", "stream"), list(PATHS))
def test_a_built_reply_reads_back(provider: str, stream: bool) -> None:
    calls = [tool_call("search", {"q": "lyon"}, "call_1" if provider != "gemini" else None)]
    resp = reply_response(provider, "Looking.", tool_calls=calls, usage=(12, 3), stream=stream)
    req = request(PATHS[provider, stream], {"model": "m", "stream": stream, "messages": []})
    view = normalise(exchange(req, resp))
    assert view.output_text == "Looking."
    assert [(c.name, c.arguments) for c in view.output_tool_calls] == [("search", {"q": "lyon"})]
    assert view.usage == Usage(12, 3)
    assert view.stream is stream
