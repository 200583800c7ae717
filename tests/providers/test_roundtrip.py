"""Property: normalise(synthesise(view)) gives back the view's output, for every format."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.providers.registry import provider_named
from rewind_vcs.store.records import Request, Usage
from tests.providers.builders import exchange

ENDPOINTS = {
    ("openai", "chat.completions"): "/v1/chat/completions",
    ("openai", "responses"): "/v1/responses",
    ("anthropic", "messages"): "/v1/messages",
    ("gemini", "generateContent"): "/v1/models/{model}:generateContent",
    ("gemini", "streamGenerateContent"): "/v1/models/{model}:streamGenerateContent?alt=sse",
}

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=120)
arguments = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.none()
    | st.booleans()
    | st.integers(-(2**31), 2**31)
    | text
    | st.lists(st.integers(-(2**63), 2**63 - 1), max_size=3),  # int64: what JSON numbers keep exactly
    max_size=4,
)
calls = st.lists(
    st.builds(
        ToolCall,
        name=st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True),
        arguments=arguments,
        id=st.none(),
    ),
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    where=st.sampled_from(sorted(ENDPOINTS)),
    output=text,
    tool_calls=calls,
    usage=st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6)),
    stream=st.booleans(),
    model=st.sampled_from(["gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash"]),
)
def test_synthesise_then_normalise(where, output, tool_calls, usage, stream, model) -> None:
    provider_name, endpoint = where
    provider = provider_named(provider_name)
    n = Normalised(
        provider=provider_name,
        endpoint=endpoint,
        model=model,
        output_text=output,
        output_tool_calls=tool_calls,
        usage=usage,
    )
    synthesised = provider.synthesise(n, stream=stream)
    assert sum(size for _, size in synthesised.chunks) == len(synthesised.body)
    path = ENDPOINTS[where].format(model=model)  # Gemini's model is in the path
    request = Request(
        "POST", "https", "h", path, [], json.dumps({"model": model, "stream": stream}).encode()
    )
    back = provider.normalise(exchange(request, synthesised))
    assert back.output_text == output
    assert [(c.name, c.arguments) for c in back.output_tool_calls] == [
        (c.name, c.arguments) for c in tool_calls
    ]
    assert back.usage == usage
    assert back.status.value == "ok" and back.error_message is None
    assert back.model == model
