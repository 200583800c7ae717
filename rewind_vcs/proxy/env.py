"""The environment of a recorded (or replayed) child process.

Two ways route the child's LLM calls through the proxy, and both are set:
the providers' base-URL variables (plain HTTP to the proxy, honoured by the
official SDKs in every language) and the proxy variables plus a CA bundle
(for clients that only know the real hosts). Library code takes the base
environment as a parameter; only the CLI passes ``os.environ``.
"""

from __future__ import annotations

from collections.abc import Mapping

from rewind_vcs.errors import ConfigError
from rewind_vcs.proxy.routes import Upstream

#: The base-URL variable of each provider, and the path suffix the SDK expects in it.
BASE_URL_VARIABLES: dict[str, tuple[str, str]] = {
    "openai": ("OPENAI_BASE_URL", "/v1"),
    "anthropic": ("ANTHROPIC_BASE_URL", ""),
    "gemini": ("GOOGLE_GEMINI_BASE_URL", ""),
}

PROXY_VARIABLES = ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy")
CA_BUNDLE_VARIABLES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def _merge_no_proxy(*values: str | None) -> str:
    entries: list[str] = []
    for value in (*values, ",".join(LOOPBACK_NAMES)):
        for entry in (value or "").split(","):
            entry = entry.strip()
            if entry and entry not in entries:
                entries.append(entry)
    return ",".join(entries)


def child_environment(base_env: Mapping[str, str], port: int, bundle_path: str) -> dict[str, str]:
    """``base_env`` plus what sends the child's API calls through the proxy on ``port``.

    Base URLs point at the proxy's provider prefixes; ``HTTPS_PROXY`` and
    ``HTTP_PROXY`` (both cases) at the proxy; ``NO_PROXY`` keeps loopback
    direct (so base-URL calls are not proxied twice) and keeps the user's
    entries; the CA variables name ``bundle_path`` (system CAs plus rewind's).
    """
    env = dict(base_env)
    proxy = f"http://127.0.0.1:{port}"
    for provider, (variable, suffix) in BASE_URL_VARIABLES.items():
        env[variable] = f"{proxy}/{provider}{suffix}"
    for variable in PROXY_VARIABLES:
        env[variable] = proxy
    no_proxy = _merge_no_proxy(base_env.get("NO_PROXY"), base_env.get("no_proxy"))
    env["NO_PROXY"] = no_proxy
    env["no_proxy"] = no_proxy
    for variable in CA_BUNDLE_VARIABLES:
        env[variable] = bundle_path
    return env


def upstreams_from_environment(base_env: Mapping[str, str]) -> dict[str, str]:
    """Provider -> upstream for base URLs the user's environment already sets.

    A gateway or a local model server named by ``OPENAI_BASE_URL`` (and the
    like) stays the upstream, so the run keeps working and is recorded. The
    ``/v1`` the openai SDKs expect in their base URL is removed: the proxy
    keeps the request path, which already starts with ``/v1``.
    """
    upstreams: dict[str, str] = {}
    for provider, (variable, suffix) in BASE_URL_VARIABLES.items():
        value = (base_env.get(variable) or "").strip()
        if not value:
            continue
        url = value.rstrip("/")
        if suffix and url.endswith(suffix):
            url = url[: -len(suffix)]
        try:
            Upstream.parse(url)
        except ConfigError:
            raise ConfigError(
                f"{variable}={value!r} is not an http(s) URL",
                hint=f"fix or unset {variable}",
            ) from None
        upstreams[provider] = url
    return upstreams
