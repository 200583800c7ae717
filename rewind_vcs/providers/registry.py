"""Which provider reads an exchange: by the route's hint, by the real API host, or by the path."""

from __future__ import annotations

from rewind_vcs.errors import ConfigError
from rewind_vcs.providers.anthropic import AnthropicProvider
from rewind_vcs.providers.base import WireFormat
from rewind_vcs.providers.gemini import GeminiProvider
from rewind_vcs.providers.generic import GenericProvider
from rewind_vcs.providers.hosts import KNOWN_HOSTS, REGIONAL_SUFFIXES
from rewind_vcs.providers.openai import OpenAIProvider
from rewind_vcs.store.records import Request, StepKind

#: the LLM providers, most specific path patterns first
PROVIDERS: dict[str, WireFormat] = {
    p.name: p for p in (AnthropicProvider(), GeminiProvider(), OpenAIProvider())
}

__all__ = ["KNOWN_HOSTS", "PROVIDERS", "detect", "host_provider", "provider_named"]

_TOOL = GenericProvider(StepKind.TOOL)


def provider_named(name: str) -> WireFormat:
    """The provider called ``name`` ("openai", "anthropic", "gemini", "generic"), or serving
    the real API host ``name``."""
    key = name.strip().lower()
    if key in PROVIDERS:
        return PROVIDERS[key]
    if key == GenericProvider.name:
        return _TOOL
    served = host_provider(key)
    if served:
        return PROVIDERS[served]
    known = ", ".join([*PROVIDERS, GenericProvider.name])
    raise ConfigError(f"unknown provider {name!r}", hint=f"known providers: {known}")


def host_provider(host: str) -> str | None:
    """The provider of a real API host (``api.openai.com:443`` included), if it is one."""
    bare = host.strip().lower()
    if bare.startswith("["):  # [v6]:port
        bare = bare[1:].split("]", 1)[0]
    elif bare.count(":") == 1:
        bare = bare.split(":", 1)[0]
    if bare in KNOWN_HOSTS:
        return KNOWN_HOSTS[bare]
    for known, name in KNOWN_HOSTS.items():
        if bare.endswith("." + known):
            return name
    for suffix, name in REGIONAL_SUFFIXES.items():
        if bare.endswith(suffix):
            return name
    return None


def _hinted(hint: str | None) -> str | None:
    if not hint:
        return None
    key = hint.strip().lower()
    if key in PROVIDERS or key == GenericProvider.name:
        return key
    return host_provider(key)


def detect(request: Request, hint: str | None = None) -> WireFormat:
    """The provider for ``request``.

    ``hint`` is what the proxy route implies: a provider name (from the base-URL
    prefix) or the intercepted host. The hinted provider reads the request when
    it knows the path; otherwise any provider that knows the path does (an
    OpenAI-compatible server such as vLLM, Ollama or OpenRouter at
    ``/v1/chat/completions`` is ``openai``); anything else is generic: an HTTP
    step on an LLM host, a TOOL step elsewhere.
    """
    hinted = _hinted(hint)
    host_name = host_provider(request.host)
    if hinted == GenericProvider.name:
        return _TOOL
    for name in (hinted, host_name):
        if name and PROVIDERS[name].recognises(request.host, request.path):
            return PROVIDERS[name]
    for provider in PROVIDERS.values():
        if provider.recognises(request.host, request.path):
            return provider
    label = hinted or host_name
    if label:
        return GenericProvider(StepKind.HTTP, label)
    return _TOOL
