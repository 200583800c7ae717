"""Providers: raw recorded HTTP exchanges to a normalised view and back.

The layers above read only :class:`Normalised` (via :func:`normalise` or
:func:`step_info`) and key replays with :func:`match_key`; which wire format an
exchange uses is decided here (:func:`detect`).
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from rewind_vcs.providers.base import Message, Normalised, ToolCall, WireFormat, one_line
from rewind_vcs.providers.generic import GenericProvider
from rewind_vcs.providers.hosts import ProviderName
from rewind_vcs.providers.matching import FieldDiff, closest, diff_fields
from rewind_vcs.providers.pricing import Price, PriceTable
from rewind_vcs.providers.registry import KNOWN_HOSTS, detect, host_provider, provider_named
from rewind_vcs.providers.synthesis import BodyShape
from rewind_vcs.store.records import Exchange, Request, StepInfo, StepKind

__all__ = [
    "KNOWN_HOSTS",
    "BodyShape",
    "FieldDiff",
    "Message",
    "Normalised",
    "Price",
    "PriceTable",
    "ProviderName",
    "ToolCall",
    "WireFormat",
    "closest",
    "detect",
    "diff_fields",
    "host_provider",
    "match_key",
    "normalise",
    "provider_named",
    "step_info",
]

log = logging.getLogger(__name__)


def normalise(
    exchange: Exchange, hint: str | None = None, *, prices: PriceTable | None = None
) -> Normalised:
    """The normalised view of ``exchange``, priced with ``prices`` (default: the packaged table).

    Never raises on what was recorded: should a provider fail on a body shape it
    has never seen, the exchange is read as a raw HTTP step of that provider.
    """
    provider = detect(exchange.request, hint)
    try:
        n = provider.normalise(exchange)
    except Exception as e:  # recording and reading must survive any body
        _fell_back("read", provider.name, exchange.request, e)
        n = GenericProvider(StepKind.HTTP, provider.name).normalise(exchange)
    if n.kind is StepKind.LLM:
        table = prices if prices is not None else PriceTable.default()
        n.cost_usd = table.cost(n.provider, n.model, n.usage)
    return n


def match_key(request: Request, hint: str | None = None) -> str:
    """The replay key of ``request``: equal exactly when the semantic requests are equal
    (volatile fields such as tool-call ids, ``user``, metadata and SDK headers aside)."""
    provider = detect(request, hint)
    try:
        return provider.match_key(request)
    except Exception as e:  # same fallback as normalise(): the request as raw HTTP
        _fell_back("key", provider.name, request, e)
        return GenericProvider(StepKind.HTTP, provider.name).match_key(request)


_log = logging.getLogger(__name__)


def _fell_back(what: str, provider: str, request: Request, error: Exception) -> None:
    """Log a provider that failed on a body: the step is kept as raw HTTP, never lost.

    Names the provider, the path (no query string, which may hold a key) and the
    error's class only: recorded bodies are untrusted and are not logged.
    """
    _log.warning(
        "the %s provider could not %s %s %s (%s); kept as a raw HTTP step",
        provider,
        what,
        request.method,
        urlsplit(request.path).path[:200],
        type(error).__name__,
    )


def step_info(
    exchange: Exchange,
    n: int,
    session: str,
    hint: str | None = None,
    prices: PriceTable | None = None,
) -> StepInfo:
    """Everything ``step.json`` keeps about an exchange, from its normalised view."""
    view = normalise(exchange, hint, prices=prices)
    extra = {"finish_reason": view.finish_reason} if view.finish_reason else {}
    return StepInfo(
        n=n,
        kind=view.kind,
        provider=view.provider,
        endpoint=view.endpoint,
        model=view.model,
        status=view.status,
        http_status=view.http_status,
        error=one_line(view.error_message, 300) if view.error_message else None,
        started_at=exchange.started_at,
        latency_ms=view.latency_ms,
        ttft_ms=view.ttft_ms,
        stream=view.stream,
        usage=view.usage,
        cost_usd=view.cost_usd,
        match_key=match_key(exchange.request, hint),
        summary=view.summary(),
        span=exchange.span,
        session=session,
        extra=extra,
    )
