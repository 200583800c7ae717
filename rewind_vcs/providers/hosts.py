"""The real API hosts of each provider, and the default ports: defined once, here.

The providers recognise exchanges by these hosts, the proxy intercepts and
forwards to them (its default upstreams are :data:`PROVIDER_HOSTS`), and the
fake LLM server names its providers with :class:`ProviderName`.
"""

from __future__ import annotations

import enum


class ProviderName(enum.StrEnum):
    """The LLM providers rewind speaks, by the name routes and recordings use."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


OPENAI_HOSTS: tuple[str, ...] = ("api.openai.com",)
ANTHROPIC_HOSTS: tuple[str, ...] = ("api.anthropic.com",)
GEMINI_HOSTS: tuple[str, ...] = ("generativelanguage.googleapis.com", "aiplatform.googleapis.com")

#: every real API host (without port) of each provider, its main host first
HOSTS: dict[str, tuple[str, ...]] = {
    ProviderName.OPENAI.value: OPENAI_HOSTS,
    ProviderName.ANTHROPIC.value: ANTHROPIC_HOSTS,
    ProviderName.GEMINI.value: GEMINI_HOSTS,
}

#: the main API host of each provider: where requests go when nothing overrides it
PROVIDER_HOSTS: dict[str, str] = {name: hosts[0] for name, hosts in HOSTS.items()}

#: the provider of each main API host (the inverse of :data:`PROVIDER_HOSTS`)
HOST_PROVIDERS: dict[str, str] = {host: name for name, host in PROVIDER_HOSTS.items()}

#: the provider of every known API host
KNOWN_HOSTS: dict[str, str] = {host: name for name, hosts in HOSTS.items() for host in hosts}

#: regional endpoints named ``<region>-<host>`` (Vertex AI: us-central1-aiplatform.googleapis.com)
REGIONAL_SUFFIXES: dict[str, str] = {"-aiplatform.googleapis.com": ProviderName.GEMINI.value}

#: the port a URL means when it names none
DEFAULT_PORTS: dict[str, int] = {"http": 80, "https": 443}

#: each provider's real API as an upstream base URL
DEFAULT_UPSTREAMS: dict[str, str] = {
    name: f"https://{host}" for name, host in PROVIDER_HOSTS.items()
}
