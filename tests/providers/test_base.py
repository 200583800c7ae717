from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rewind_vcs.providers.base import (
    IdMap,
    Message,
    Normalised,
    ToolCall,
    as_int,
    canonical_json,
    dump_arguments,
    first_token_ms,
    load_json,
    neutral_finish,
    one_line,
    parse_arguments,
)
from rewind_vcs.providers.synthesis import spread_chunks, text_pieces
from rewind_vcs.store.records import Response, StepKind, StepStatus, Usage


def test_load_json_never_raises() -> None:
    assert load_json(b'{"a": 1}') == {"a": 1}
    assert (
        load_json(b'{"big": 123456789012345678901234567890}') is not None
    )  # beyond 64 bits: a float
    assert load_json(b"NaN") != load_json(b"NaN")  # stdlib fallback reads NaN
    for junk in (b"", b"{", b"\xff\xfe\x00", b"<html>", "\ud800".encode("utf-8", "surrogatepass")):
        assert load_json(junk) is None


def test_canonical_json_ignores_key_order_and_handles_big_ints() -> None:
    assert canonical_json({"b": 1, "a": [1, {"y": 2, "x": 1}]}) == canonical_json(
        {"a": [1, {"x": 1, "y": 2}], "b": 1}
    )
    assert canonical_json({"n": 2**70}) != canonical_json({"n": 2**70 + 1})


def test_counts_and_arguments() -> None:
    assert [as_int(v) for v in (5, 5.0, "7", None, True, "x", float("nan"))] == [
        5,
        5,
        7,
        0,
        0,
        0,
        0,
    ]
    assert parse_arguments('{"q": "x"}') == {"q": "x"}
    assert parse_arguments('{"q": ') == '{"q": '  # truncated JSON stays a string
    assert parse_arguments({"already": "parsed"}) == {"already": "parsed"}
    assert dump_arguments({"q": "é"}) == '{"q": "é"}'
    assert dump_arguments('{"q":1}') == '{"q":1}'  # valid JSON strings pass through byte for byte
    assert dump_arguments("not json") == '"not json"'


def test_id_map_is_by_first_appearance() -> None:
    ids = IdMap("call")
    assert [ids("b"), ids("a"), ids("b"), ids(None), ids("")] == [
        "call-1",
        "call-2",
        "call-1",
        None,
        "",
    ]


@given(st.text(max_size=200), st.integers(min_value=1, max_value=40))
def test_text_pieces_join_back(text: str, size: int) -> None:
    pieces = text_pieces(text, size)
    assert "".join(pieces) == text
    assert all(pieces)


def test_spread_chunks() -> None:
    assert spread_chunks([10, 10, 10], 100.0, 300.0) == [(0.1, 10), (0.2, 10), (0.3, 10)]
    assert spread_chunks([5], 100.0, 300.0) == [(0.3, 5)]
    assert spread_chunks([], None, 0.0) == []


def test_first_token_falls_back_to_the_first_chunk() -> None:
    body = b"data: {}\n\ndata: {}\n\n"
    resp = Response(200, body=body, chunks=[(0.1, 10), (0.2, 10)])
    assert first_token_ms(resp, lambda e: False) == 100.0
    assert first_token_ms(resp, lambda e: True) == 100.0
    resp.chunks = [(0.1, 3), (0.2, 3)]  # does not add up to the body: no event alignment
    assert first_token_ms(resp, lambda e: True) == 100.0
    assert first_token_ms(Response(200, body=body), lambda e: True) is None


def test_summaries() -> None:
    n = Normalised(
        provider="openai", model="gpt-4o-mini", output_text="The capital\nof France is Paris."
    )
    assert n.summary() == 'gpt-4o-mini: "The capital\\nof France is Paris."'
    n.output_tool_calls = [ToolCall("search", {"query": "Paris"}), ToolCall("noop", None)]
    assert n.summary() == 'gpt-4o-mini: tool_calls: search(query="Paris"), noop()'
    n.output_text = "x" * 500
    n.output_tool_calls = []
    assert len(n.summary()) == 120 and n.summary().endswith("…")
    err = Normalised(
        provider="openai", status=StepStatus.ERROR, http_status=500, error_message="boom"
    )
    assert err.summary() == "500: boom"
    http = Normalised(
        provider="openai", kind=StepKind.HTTP, method="GET", path="/v1/models", http_status=200
    )
    assert http.summary() == "GET /v1/models 200"


def test_user_input_is_the_last_user_message() -> None:
    n = Normalised(
        provider="x",
        messages=[
            Message("user", "first"),
            Message("assistant", "a"),
            Message("user", "second"),
            Message("tool", "t"),
        ],
    )
    assert n.user_input == "second"
    assert Normalised(provider="x").user_input is None


def test_neutral_finish() -> None:
    def view(reason: str | None, calls: bool = False) -> Normalised:
        return Normalised(
            provider="x",
            finish_reason=reason,
            output_tool_calls=[ToolCall("f")] if calls else [],
            usage=Usage(),
        )

    assert [
        neutral_finish(view(r))
        for r in ("end_turn", "MAX_TOKENS", "tool_use", "SAFETY", None, "weird")
    ] == [
        "stop",
        "length",
        "tool_calls",
        "content_filter",
        "stop",
        "stop",
    ]
    assert neutral_finish(view("STOP", calls=True)) == "tool_calls"
    assert one_line("  a \n b  ") == "a b"
