from __future__ import annotations

from rewind_vcs.providers.generic import GenericProvider, canonical_path
from rewind_vcs.store.records import Request, StepKind, StepStatus, TransportError
from tests.providers.builders import exchange, response


def _get(path: str, body: bytes = b"", method: str = "GET") -> Request:
    return Request(method, "https", "api.search.example", path, [("x-request-id", "r1")], body)


def test_view_of_a_tool_call() -> None:
    p = GenericProvider()
    req = _get("/v1/search?q=paris&limit=3", b'{"q": "paris"}', "POST")
    n = p.normalise(exchange(req, response({"results": ["Paris, France"]})))
    assert (n.kind, n.provider, n.endpoint, n.model) == (StepKind.TOOL, "generic", "generic", None)
    assert n.user_input == '{"q": "paris"}'
    assert "Paris, France" in n.output_text
    assert n.status is StepStatus.OK
    assert n.summary() == "POST /v1/search?q=paris&limit=3 200"


def test_http_step_on_an_llm_host_is_labelled_with_its_provider() -> None:
    n = GenericProvider(StepKind.HTTP, "openai").normalise(
        exchange(_get("/v1/models"), response({"data": []}))
    )
    assert (n.kind, n.provider) == (StepKind.HTTP, "openai")


def test_errors_and_transport_failures() -> None:
    p = GenericProvider()
    n = p.normalise(exchange(_get("/v1/search"), response(b"oops", status=503)))
    assert n.status is StepStatus.ERROR and n.summary() == "GET /v1/search 503"
    dropped = response(b"", status=0, error=TransportError.CONNECTION_REFUSED)
    n = p.normalise(exchange(_get("/v1/search"), dropped))
    assert n.summary() == "GET /v1/search --- (connection_refused)"


def test_binary_bodies_are_not_text() -> None:
    p = GenericProvider()
    n = p.normalise(
        exchange(_get("/img", b"\x89PNG\r\n\x1a\n\x00\x00", "PUT"), response(b"\x00\x01\x02"))
    )
    assert n.messages == [] and n.output_text == ""


def test_match_key_method_path_and_body() -> None:
    p = GenericProvider()
    base = p.match_key(_get("/s?b=2&a=1", b'{"x": 1, "y": [1, 2]}', "POST"))
    assert p.match_key(_get("/s?a=1&b=2", b'{"y": [1, 2], "x": 1}', "post")) == base  # order, case
    assert p.match_key(_get("/s?a=1&b=3", b'{"x": 1, "y": [1, 2]}', "POST")) != base
    assert p.match_key(_get("/s?a=1&b=2", b'{"x": 2, "y": [1, 2]}', "POST")) != base
    assert p.match_key(_get("/s?a=1&b=2", b'{"x": 1, "y": [1, 2]}', "PUT")) != base
    raw_a, raw_b = _get("/u", b"\xff\x00raw", "POST"), _get("/u", b"\xff\x00raw2", "POST")
    assert p.canonical_request(raw_a)["body"]["sha256"]
    assert p.match_key(raw_a) != p.match_key(raw_b)


def test_canonical_path_sorts_query() -> None:
    assert canonical_path("/a?z=1&a=2&a=1") == "/a?a=1&a=2&z=1"
    assert canonical_path("/a") == "/a"


def test_synthesise_and_error_response() -> None:
    p = GenericProvider()
    n = p.normalise(exchange(_get("/s"), response({"ok": True})))
    out = p.synthesise(n, stream=False)
    assert (
        out.status == 200
        and out.body == b'{"ok": true}'
        and out.header("content-type") == "application/json"
    )
    err = p.error_response(404, "no recording", code="rewind_replay_miss")
    assert err.status == 404 and b"no recording" in err.body
