from __future__ import annotations

import pytest

from rewind_vcs.errors import ConfigError
from rewind_vcs.providers.registry import KNOWN_HOSTS, detect, host_provider, provider_named
from rewind_vcs.store.records import Request, StepKind


def _req(host: str, path: str) -> Request:
    return Request("POST", "https", host, path, [], b"{}")


def test_known_hosts() -> None:
    assert KNOWN_HOSTS["api.openai.com"] == "openai"
    assert KNOWN_HOSTS["api.anthropic.com"] == "anthropic"
    assert KNOWN_HOSTS["generativelanguage.googleapis.com"] == "gemini"
    assert host_provider("api.openai.com:443") == "openai"
    assert host_provider("us-central1-aiplatform.googleapis.com") == "gemini"
    assert host_provider("127.0.0.1:8080") is None


def test_provider_named() -> None:
    assert provider_named("OpenAI").name == "openai"
    assert provider_named("generic").name == "generic"
    assert provider_named("api.anthropic.com:443").name == "anthropic"
    with pytest.raises(ConfigError, match="unknown provider 'mistral'"):
        provider_named("mistral")


@pytest.mark.parametrize(
    ("host", "path", "hint", "expected"),
    [
        ("api.openai.com", "/v1/chat/completions", None, "openai"),
        ("127.0.0.1:4000", "/v1/chat/completions", None, "openai"),  # vLLM, Ollama, ...
        ("openrouter.ai", "/api/v1/chat/completions", None, "openai"),
        ("127.0.0.1:4000", "/v1/messages", None, "anthropic"),
        ("127.0.0.1:4000", "/v1beta/models/gemini-2.5-flash:generateContent", None, "gemini"),
        ("127.0.0.1:4000", "/openai/v1/responses", "openai", "openai"),
        ("127.0.0.1:4000", "/v1/messages", "api.anthropic.com", "anthropic"),  # hint is a host
        ("127.0.0.1:4000", "/v1/messages", "openai", "anthropic"),  # path beats a wrong hint
    ],
)
def test_detect_llm_providers(host: str, path: str, hint: str | None, expected: str) -> None:
    provider = detect(_req(host, path), hint)
    assert provider.name == expected
    assert provider.normalise_request(_req(host, path)).kind is StepKind.LLM


def test_unknown_endpoint_of_an_llm_host_is_an_http_step() -> None:
    for request, hint in (
        (_req("api.openai.com", "/v1/models"), None),
        (_req("127.0.0.1:1", "/v1/files"), "openai"),
    ):
        view = detect(request, hint).normalise_request(request)
        assert (view.kind, view.provider, view.endpoint) == (StepKind.HTTP, "openai", "generic")


def test_anything_else_is_a_tool_step() -> None:
    request = _req("api.search.example", "/v1/chat/completions-like")
    view = detect(request).normalise_request(request)
    assert (view.kind, view.provider) == (StepKind.TOOL, "generic")
    forced = detect(_req("127.0.0.1:1", "/v1/chat/completions"), "generic")
    assert forced.name == "generic"
