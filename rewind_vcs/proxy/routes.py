"""Where a request goes: provider prefixes, provider hosts, record hosts and their upstreams.

:func:`route_request` is the whole routing decision as a pure function: a
request's target (and the tunnel it came through, if any) in, a
:class:`RequestRoute` out. Two ways in, one answer (a :class:`Route`):

- base-URL mode: ``/openai/v1/chat/completions`` on the proxy itself; the first
  path segment names the provider and is removed;
- forward-proxy mode: a request for ``api.openai.com`` (absolute-form, or inside
  an intercepted CONNECT tunnel); the host names the provider, or a record host.

An upstream is ``scheme://host[:port][/prefix]``. Overriding a provider's
upstream replaces scheme, host and port and keeps the request path (after the
optional prefix, so a gateway at ``https://gw.example/openai`` works too).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from rewind_vcs.errors import ConfigError
from rewind_vcs.providers.hosts import (
    DEFAULT_PORTS,
    DEFAULT_UPSTREAMS,
    HOST_PROVIDERS,
    ProviderName,
)

# Provider hosts, names and default ports are defined once, in providers/hosts.py.
Provider = ProviderName
_DEFAULT_PORTS = DEFAULT_PORTS
#: Names of the proxy's own address in an absolute-form target.
SELF_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class UpstreamURL:
    """A parsed upstream base URL."""

    scheme: str  # "http" or "https"
    host: str  # no brackets, even for IPv6
    port: int
    prefix: str = ""  # path prefix without a trailing slash, "" for none

    @classmethod
    def parse(cls, url: str) -> UpstreamURL:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ConfigError(
                f"bad upstream URL {url!r}",
                hint="use http://host[:port][/prefix] or https://host[:port][/prefix]",
            )
        if parts.query or parts.fragment:
            raise ConfigError(f"bad upstream URL {url!r}: no query or fragment allowed")
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError as e:
            raise ConfigError(f"bad upstream URL {url!r}: {e}") from None
        return cls(scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def authority(self) -> str:
        """``host[:port]`` as a Host header says it (the default port left out)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port == _DEFAULT_PORTS[self.scheme]:
            return host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The canonical form, ``scheme://host:port/prefix``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}"


#: The old name of :class:`UpstreamURL` (proxy/env.py uses it): ``upstream.Upstream`` is the seam.
Upstream = UpstreamURL


@dataclass(frozen=True)
class Route:
    """Where one request goes."""

    provider: str | None  # "openai"/"anthropic"/"gemini", or None for a record host
    upstream: str  # upstream base URL, "scheme://host:port[/prefix]"
    path: str  # path and query to send (after the prefix of base-URL mode)
    host: str  # the API host the request is meant for, host[:port]


def _authority(host: str, port: int, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return shown if port == _DEFAULT_PORTS.get(scheme) else f"{shown}:{port}"


class Routes:
    """Provider -> upstream, and record host -> upstream.

    ``upstreams`` overrides the upstream of some providers (the rest keep the
    real API). ``record_hosts`` lists other hosts to intercept and record
    (HTTP tools such as a search API); as a mapping, a host's value overrides
    its upstream (None: the host itself).
    """

    def __init__(
        self,
        upstreams: Mapping[str, str] | None = None,
        record_hosts: Mapping[str, str | None] | Iterable[str] | None = None,
    ) -> None:
        self._providers: dict[str, UpstreamURL] = {
            p: UpstreamURL.parse(url) for p, url in DEFAULT_UPSTREAMS.items()
        }
        for provider, url in (upstreams or {}).items():
            if provider not in self._providers:
                raise ConfigError(
                    f"unknown provider {provider!r} in an upstream override",
                    hint="use one of: " + ", ".join(sorted(self._providers)),
                )
            self._providers[provider] = UpstreamURL.parse(url)
        if record_hosts is None:
            record_hosts = {}
        if not isinstance(record_hosts, Mapping):
            record_hosts = dict.fromkeys(record_hosts)
        self._record_hosts: dict[str, UpstreamURL | None] = {}
        for host, host_url in record_hosts.items():
            name = host.strip().lower()
            if not name or "/" in name:
                raise ConfigError(
                    f"bad record host {host!r}", hint="give a host name, e.g. api.search.example"
                )
            self._record_hosts[name] = UpstreamURL.parse(host_url) if host_url else None

    @property
    def providers(self) -> dict[str, str]:
        """Provider -> upstream URL in canonical form."""
        return {p: u.url for p, u in self._providers.items()}

    def upstream_of(self, provider: str) -> UpstreamURL:
        return self._providers[provider]

    def intercept_hosts(self) -> set[str]:
        """Hosts whose traffic goes through the handler: the real API hosts plus record hosts."""
        return set(HOST_PROVIDERS) | set(self._record_hosts)

    def for_prefix(self, target: str) -> Route | None:
        """Base-URL mode: ``/openai/v1/x?q`` -> openai, ``/v1/x?q``; None if no provider prefix."""
        if not target.startswith("/"):
            return None
        end = len(target)
        for sep in "/?":
            i = target.find(sep, 1)
            if i != -1:
                end = min(end, i)
        provider = target[1:end]
        upstream = self._providers.get(provider)
        if upstream is None:
            return None
        rest = target[end:]
        if not rest.startswith("/"):
            rest = "/" + rest
        host = _authority(upstream.host, upstream.port, upstream.scheme)
        return Route(provider, upstream.url, rest, host)

    def for_host(self, scheme: str, host: str, port: int, target: str) -> Route:
        """Forward-proxy mode: a request for ``host:port`` (``scheme`` as the client used it)."""
        name = host.lower()
        addressed = _authority(name, port, scheme)
        provider = HOST_PROVIDERS.get(name)
        if provider is not None:
            return Route(provider, self._providers[provider].url, target, addressed)
        override = self._record_hosts.get(name)
        if override is not None:
            return Route(None, override.url, target, addressed)
        shown = f"[{name}]" if ":" in name else name
        return Route(None, f"{scheme}://{shown}:{port}", target, addressed)


class Mode(enum.StrEnum):
    """How a request reached the proxy, which decides who answers it."""

    BASE_URL = "base_url"  # addressed to the proxy itself (/openai/...): the handler
    INTERCEPTED = "intercepted"  # for a host the proxy records: the handler
    PASSTHROUGH = "passthrough"  # for another host: forwarded unrecorded


class BadTarget(ValueError):
    """A request target no route can be made of (the client gets a 400)."""


@dataclass(frozen=True)
class RequestRoute:
    """The routing decision for one request head."""

    mode: Mode
    scheme: str  # "http" or "https", as the client used it
    route: Route | None  # None: base-URL mode without a provider prefix (a 404)
    # the host and port the client addressed (forward-proxy modes), else None/0
    target_host: str | None = None
    target_port: int = 0


def route_request(
    routes: Routes,
    target: str,
    *,
    tunnel: tuple[str, int] | None,
    self_port: int,
    intercept_hosts: set[str] | frozenset[str],
) -> RequestRoute:
    """Route one request: its ``target`` as sent, and the (host, port) of the tunnel it is in.

    ``self_port`` is the proxy's own port (an absolute-form request for the
    proxy itself is base-URL mode); ``intercept_hosts`` are the hosts whose
    requests go through the handler. Raises :class:`BadTarget`.
    """
    if tunnel is not None:
        host, port = tunnel
        return RequestRoute(
            Mode.INTERCEPTED, "https", routes.for_host("https", host, port, target), host, port
        )
    if not target[:8].lower().startswith(("http://", "https://")):
        return RequestRoute(Mode.BASE_URL, "http", routes.for_prefix(target))
    hostname: str | None = None
    port = 0
    try:  # urlsplit and .hostname raise ValueError on a broken IPv6 literal
        parts = urlsplit(target)
        scheme = parts.scheme.lower()
        hostname = parts.hostname
        port = parts.port or _DEFAULT_PORTS[scheme]
    except ValueError:
        hostname = None
    if not hostname or not port:
        raise BadTarget(f"bad request target {target!r}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    name = hostname.lower()
    if port == self_port and name in SELF_NAMES:
        # a client that proxies even loopback (NO_PROXY ignored): base-URL mode
        return RequestRoute(Mode.BASE_URL, scheme, routes.for_prefix(path))
    mode = Mode.INTERCEPTED if name in intercept_hosts else Mode.PASSTHROUGH
    return RequestRoute(mode, scheme, routes.for_host(scheme, name, port, path), name, port)
