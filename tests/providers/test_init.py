"""The package's entry points: normalise, match_key, step_info."""

from __future__ import annotations

import pytest

import rewind_vcs.providers as providers
from rewind_vcs.providers import PriceTable, match_key, normalise, step_info
from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.store.records import StepKind, StepStatus
from tests.providers.builders import exchange, request, response
from tests.providers.test_openai import CHAT_COMPLETION, CHAT_REQUEST, TOOL_STREAM


def test_step_info_fills_every_field_from_the_view() -> None:
    ex = exchange(
        request("/v1/chat/completions", {**CHAT_REQUEST, "stream": True}),
        response(TOOL_STREAM, stream=True, chunk_times=[0.3, 0.41, 0.5, 0.6, 0.7, 0.8, 0.81, 0.82]),
        started_at=1_750_000_123.5,
        duration=0.82,
    )
    ex.span = "planner/search"
    info = step_info(ex, 3, "a1b2c3d")
    assert (info.n, info.session, info.span) == (3, "a1b2c3d", "planner/search")
    assert (info.kind, info.provider, info.endpoint, info.model) == (
        StepKind.LLM,
        "openai",
        "chat.completions",
        "gpt-4o-mini",
    )
    assert (info.status, info.http_status, info.error) == (StepStatus.OK, 200, None)
    assert (info.started_at, info.latency_ms, info.ttft_ms, info.stream) == (
        1_750_000_123.5,
        820.0,
        410.0,
        True,
    )
    assert (info.usage.input_tokens, info.usage.output_tokens) == (80, 31)
    assert info.cost_usd == pytest.approx((80 * 0.15 + 31 * 0.60) / 1e6)
    assert info.match_key == match_key(ex.request) == OpenAIProvider().match_key(ex.request)
    assert len(info.match_key) == 64
    assert info.summary.startswith("gpt-4o-mini: tool_calls: get_weather(")
    assert info.extra == {"finish_reason": "tool_calls"}


def test_step_info_prices_are_overridable() -> None:
    ex = exchange(request("/v1/chat/completions", CHAT_REQUEST), response(CHAT_COMPLETION))
    prices = PriceTable.load(
        overrides={"openai": {"gpt-4o-mini": {"input": 1_000_000, "output": 0}}}
    )
    assert step_info(ex, 1, "s", prices=prices).cost_usd == pytest.approx(14.0)
    assert (
        step_info(ex, 1, "s", prices=PriceTable()).cost_usd is None
    )  # an empty table prices nothing


def test_error_and_tool_steps() -> None:
    error = {
        "error": {
            "message": "Rate limit\nreached",
            "type": "requests",
            "code": "rate_limit_exceeded",
        }
    }
    info = step_info(
        exchange(request("/v1/chat/completions", CHAT_REQUEST), response(error, status=429)), 2, "s"
    )
    assert (info.status, info.http_status, info.error) == (
        StepStatus.ERROR,
        429,
        "Rate limit reached",
    )
    assert info.summary == "429 rate_limit_exceeded: Rate limit reached"
    tool = exchange(
        request("/search?q=x", b"", host="api.search.example", method="GET"), response({"hits": 1})
    )
    info = step_info(tool, 3, "s")
    assert (info.kind, info.provider, info.cost_usd, info.model) == (
        StepKind.TOOL,
        "generic",
        None,
        None,
    )
    assert info.summary == "GET /search?q=x 200"


def test_hint_routes_an_unrecognised_path_to_an_http_step() -> None:
    ex = exchange(
        request("/v1/models", b"", host="127.0.0.1:7777", method="GET"), response({"data": []})
    )
    assert normalise(ex).kind is StepKind.TOOL
    view = normalise(ex, "openai")
    assert (view.kind, view.provider) == (StepKind.HTTP, "openai")


def test_a_provider_failure_degrades_to_a_raw_view(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The safety net in normalise(): recording must survive a body shape no one foresaw,
    and says so in the log (without the body or the query string)."""

    def explode(self, response, n) -> None:
        raise RuntimeError("unforeseen shape")

    monkeypatch.setattr(OpenAIProvider, "read_response", explode)
    ex = exchange(request("/v1/chat/completions", CHAT_REQUEST), response(CHAT_COMPLETION))
    view = normalise(ex)
    assert (view.kind, view.provider, view.http_status) == (StepKind.HTTP, "openai", 200)
    assert "The capital of France is Paris." in view.output_text
    (record,) = [r for r in caplog.records if r.name == "rewind_vcs.providers"]
    assert record.levelname == "WARNING"
    assert record.getMessage() == (
        "the openai provider could not read POST /v1/chat/completions (RuntimeError);"
        " kept as a raw HTTP step"
    )
    assert "Paris" not in record.getMessage()


def test_public_names() -> None:
    for name in (
        "detect",
        "provider_named",
        "Normalised",
        "Message",
        "ToolCall",
        "WireFormat",
        "ProviderName",
        "BodyShape",
        "normalise",
        "match_key",
        "step_info",
        "diff_fields",
        "closest",
    ):
        assert hasattr(providers, name), name
