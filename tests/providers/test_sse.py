from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rewind_vcs.providers.sse import SSEEvent, SSEParser, encode_sse, parse_sse


def test_basic_events_with_names_ids_and_retry() -> None:
    body = (
        b'event: message_start\ndata: {"a": 1}\n\n'
        b"id: 7\nretry: 1500\ndata: plain\n\n"
        b"data: [DONE]\n\n"
    )
    assert parse_sse(body) == [
        SSEEvent(event="message_start", data='{"a": 1}'),
        SSEEvent(data="plain", id="7", retry=1500),
        SSEEvent(data="[DONE]"),
    ]


def test_multiline_data_comments_and_space_rules() -> None:
    body = b": keep-alive\ndata:first\ndata:  second\ndata\n: another comment\n\n"
    (event,) = parse_sse(body)
    # one leading space is stripped, a second one stays; a bare "data" adds an empty line
    assert event.data == "first\n second\n"
    assert event.event is None


def test_line_endings_lf_crlf_cr_are_equivalent() -> None:
    lf = b"event: x\ndata: 1\n\ndata: 2\n\n"
    assert (
        parse_sse(lf)
        == parse_sse(lf.replace(b"\n", b"\r\n"))
        == parse_sse(lf.replace(b"\n", b"\r"))
    )


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    # the LF that completes the CRLF must not count as a blank line
    assert parser.feed(b"\ndata: b\r") == []
    assert parser.feed(b"\n\r\n") == [SSEEvent(data="a\nb")]


def test_utf8_split_inside_a_character() -> None:
    body = encode_sse('{"text": "héllo wörld ✓"}', "delta")
    cut = body.index("✓".encode()) + 1
    parser = SSEParser()
    events = parser.feed(body[:cut]) + parser.feed(body[cut:]) + parser.close()
    assert events == [SSEEvent(event="delta", data='{"text": "héllo wörld ✓"}')]


def test_comment_only_and_unknown_fields_dispatch_nothing() -> None:
    assert parse_sse(b": ping\n\nfoo: bar\n\n\n\n") == []


def test_bad_retry_and_nul_id_are_ignored() -> None:
    (event,) = parse_sse(b"retry: soon\nid: a\x00b\ndata: x\n\n")
    assert event.retry is None and event.id is None


def test_event_without_data_still_dispatches_like_the_sdks() -> None:
    assert parse_sse(b"event: ping\n\n") == [SSEEvent(event="ping")]


def test_leading_bom_is_stripped() -> None:
    assert parse_sse("\ufeffdata: x\n\n".encode()) == [SSEEvent(data="x")]


def test_close_dispatches_an_unterminated_last_event() -> None:
    parser = SSEParser()
    assert parser.feed(b'data: 1\n\ndata: {"partial"') == [SSEEvent(data="1")]
    assert parser.close() == [SSEEvent(data='{"partial"')]
    assert parser.close() == []


def test_json_helper_never_raises() -> None:
    assert SSEEvent(data='{"a": [1]}').json() == {"a": [1]}
    assert SSEEvent(data="[DONE]").json() is None
    assert SSEEvent(data="").json() is None


def test_encode_sse_round_trips_multiline_and_gemini_separator() -> None:
    wire = encode_sse("line1\nline2", "x", separator="\r\n")
    assert wire == b"event: x\r\ndata: line1\r\ndata: line2\r\n\r\n"
    assert parse_sse(wire) == [SSEEvent(event="x", data="line1\nline2")]


# --- property: any split of a valid stream yields the same events ---------------------

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"),
    max_size=30,
)
_event = st.builds(
    SSEEvent,
    event=st.none() | _text.filter(lambda s: s != ""),
    data=st.lists(_text, min_size=1, max_size=3).map("\n".join),
    id=st.none() | _text,
    retry=st.none() | st.integers(min_value=0, max_value=10**6),
)


def _wire(events: list[SSEEvent], eol: str, comments: bool) -> bytes:
    out = []
    for e in events:
        lines = [": comment"] if comments else []
        if e.event is not None:
            lines.append(f"event: {e.event}")
        if e.id is not None:
            lines.append(f"id: {e.id}")
        if e.retry is not None:
            lines.append(f"retry: {e.retry}")
        lines += [f"data: {d}" for d in e.data.split("\n")]
        out.append(eol.join(lines) + eol + eol)
    return "".join(out).encode("utf-8")


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(_event, max_size=6),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    comments=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunking_yields_the_same_events(
    events: list[SSEEvent], eol: str, comments: bool, cuts: list[int]
) -> None:
    body = _wire(events, eol, comments)
    assert parse_sse(body) == events
    points = sorted({c % (len(body) + 1) for c in cuts})
    parser = SSEParser()
    got: list[SSEEvent] = []
    start = 0
    for point in [*points, len(body)]:
        got += parser.feed(body[start:point])
        start = point
    got += parser.close()
    assert got == events


@settings(max_examples=200, deadline=None)
@given(body=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=300))
def test_arbitrary_bytes_never_raise_and_split_consistently(body: bytes, cut: int) -> None:
    whole = parse_sse(body)
    parser = SSEParser()
    cut = min(cut, len(body))
    # a split inside a multi-byte character must not change the decoded events either
    assert parser.feed(body[:cut]) + parser.feed(body[cut:]) + parser.close() == whole
