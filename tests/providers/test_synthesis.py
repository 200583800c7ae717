"""The body shapes synthesise can be asked for, read back by the providers' own readers."""

from __future__ import annotations

import json

from rewind_vcs.providers.anthropic import AnthropicProvider
from rewind_vcs.providers.base import Normalised, ToolCall
from rewind_vcs.providers.gemini import GeminiProvider
from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.providers.sse import parse_sse
from rewind_vcs.providers.synthesis import BodyShape, body_pieces, json_array_response
from rewind_vcs.store.records import Usage

TEXT = "one two three four five six seven eight"


def _view(endpoint: str, provider: str = "openai", **fields: object) -> Normalised:
    n = Normalised(
        provider=provider,
        endpoint=endpoint,
        model="m",
        output_text=TEXT,
        usage=Usage(5, 9),
        started_at=1_767_225_600.0,
    )
    for key, value in fields.items():
        setattr(n, key, value)
    return n


def _read(provider: object, n: Normalised, body: bytes, stream: bool) -> Normalised:
    from rewind_vcs.store.records import Response

    out = Normalised(provider=n.provider, endpoint=n.endpoint)
    kind = "text/event-stream" if stream else "application/json"
    provider.read_response(Response(200, "", [("content-type", kind)], body), out)  # type: ignore[attr-defined]
    return out


def test_usage_chunk_ends_an_openai_stream_with_a_chunk_without_choices() -> None:
    n = _view("chat.completions")
    with_chunk = OpenAIProvider().synthesise(n, stream=True, shape=BodyShape(usage_chunk=True))
    chunks = [e.json() for e in parse_sse(with_chunk.body) if e.data != "[DONE]"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 14
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    plain = OpenAIProvider().synthesise(n, stream=True)
    last = [e.json() for e in parse_sse(plain.body) if e.data != "[DONE]"][-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["usage"]["total_tokens"] == 14
    back = _read(OpenAIProvider(), n, with_chunk.body, True)
    assert (back.output_text, back.usage) == (TEXT, Usage(5, 9))


def test_piece_chars_cuts_one_word_a_delta_and_the_pieces_join_back() -> None:
    n = _view("messages", "anthropic")
    fine = AnthropicProvider().synthesise(n, stream=True, shape=BodyShape(piece_chars=1))
    coarse = AnthropicProvider().synthesise(n, stream=True)
    deltas = [
        e.json()["delta"]["text"] for e in parse_sse(fine.body) if e.event == "content_block_delta"
    ]
    assert len(deltas) == len(TEXT.split()) and "".join(deltas) == TEXT
    assert len(parse_sse(coarse.body)) < len(parse_sse(fine.body))
    assert body_pieces(fine) == [b for b in body_pieces(fine) if b]  # one piece per event
    assert b"".join(body_pieces(fine)) == fine.body


def test_id_seed_decides_the_ids_instead_of_the_output() -> None:
    n = _view("chat.completions", output_text="", output_tool_calls=[ToolCall("f", {"a": 1})])
    ids = {
        json.loads(OpenAIProvider().synthesise(n, stream=False, shape=BodyShape(id_seed=s)).body)[
            "id"
        ]
        for s in ("a", "b", "a")
    }
    assert len(ids) == 2
    assert all(i.startswith("chatcmpl-") for i in ids)


def test_gemini_stream_as_one_json_array_reads_back() -> None:
    n = _view("streamGenerateContent", "gemini")
    array = GeminiProvider().synthesise(n, stream=True, shape=BodyShape(sse=False, piece_chars=1))
    items = json.loads(array.body)
    assert isinstance(items, list) and len(items) == len(TEXT.split())
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"
    assert (array.header("content-type") or "").startswith("application/json")
    assert len(body_pieces(array)) == len(items) + 1  # each element, then the closing bracket
    back = _read(GeminiProvider(), n, array.body, False)
    assert (back.output_text, back.usage) == (TEXT, Usage(5, 9))
    assert json_array_response([]).body == b"[]"
