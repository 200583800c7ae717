"""Replay: answer requests from a recorded timeline, byte for byte, with no upstream.

:class:`ReplayHandler` implements the proxy's one-method ``Handler`` seam.
Each request is matched by its provider's **match key** (volatile fields
such as tool-call ids, ``user``, request ids and key order do not count)
against the steps not yet served; identical requests take their recordings
in recorded order, and concurrent calls may arrive in any order.

What happens when nothing matches depends on the mode:

- a *fork* (``cached`` steps given, from ``checkout ...@step-N``): the next
  cached step is served anyway and the drift is reported (the agent's code
  changed); once the cache is used up, requests go live;
- otherwise, with a ``live`` handler (``--on-miss live``): forwarded and
  recorded;
- otherwise a miss: the client gets an error in its provider's format whose
  message names the closest recorded step and the fields that differ, so the
  SDK raises a clear API error.

A recorded failure replays as the same failure: the same status and body, or
the connection dropped the same way, so the SDK raises the same exception.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from rewind_vcs.providers import closest, match_key, provider_named
from rewind_vcs.providers.matching import FieldDiff, diff_fields
from rewind_vcs.proxy.clock import SYSTEM_CLOCK, Clock
from rewind_vcs.proxy.handler import (
    CloseConnection,
    Handler,
    ProxyRequest,
    ProxyResponse,
    client_headers,
)
from rewind_vcs.store.records import Request, Response, TransportError
from rewind_vcs.store.redact import redact_request
from rewind_vcs.store.session import Step

#: How long a replayed recorded timeout stalls at most before dropping the connection.
MAX_TIMEOUT_STALL = 5.0
#: A recorded client time-out is replayed by answering nothing for the recorded wait plus this
#: grace (the client's own timeout fires first), and never longer than MAX_CLIENT_WAIT.
CLIENT_GAVE_UP_GRACE = 30.0
MAX_CLIENT_WAIT = 600.0


class OnMiss(enum.StrEnum):
    ERROR = "error"
    LIVE = "live"


@dataclass(frozen=True)
class Latency:
    """``none`` (as fast as possible), ``recorded``, or recorded times a factor (``x0.5``)."""

    factor: float = 0.0

    @classmethod
    def parse(cls, text: str) -> Latency:
        from rewind_vcs.errors import ConfigError

        text = text.strip().lower()
        if text == "none":
            return cls(0.0)
        if text == "recorded":
            return cls(1.0)
        if text.startswith("x"):
            try:
                f = float(text[1:])
                if f >= 0:
                    return cls(f)
            except ValueError:
                pass
        raise ConfigError(f"bad --latency '{text}'", hint="use none, recorded, or xF such as x0.5")


@dataclass
class Miss:
    """A request no recording answered."""

    provider: str
    path: str
    closest_step: int | None
    diffs: list[FieldDiff]

    def message(self) -> str:
        if self.closest_step is None:
            return f"rewind replay: no recorded step matches {self.path} (the recording has none left)"
        shown = "; ".join(str(d) for d in self.diffs[:3]) or "identical, but already served"
        more = f" (+{len(self.diffs) - 3} more)" if len(self.diffs) > 3 else ""
        return (f"rewind replay: no recorded step matches this request to {self.path}; "
                f"closest is step {self.closest_step}, which differs in {shown}{more}")


@dataclass
class Drift:
    """A cached step served for a request that changed since it was recorded."""

    step: int
    diffs: list[FieldDiff]


@dataclass
class ReplayStats:
    served: list[int] = field(default_factory=list)  # step numbers, in serving order
    misses: list[Miss] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)
    live: int = 0


@dataclass
class _Slot:
    step: Step
    key: str
    request: Request
    used: bool = False


class ReplayHandler:
    """Serves recorded steps; see the module docstring for the matching rules."""

    def __init__(
        self,
        steps: list[Step],
        *,
        latency: Latency = Latency(),
        drift_ok: bool = False,
        live: Handler | None = None,
        on_event: Callable[[object], None] | None = None,
        redact: Sequence[str] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.clock = clock
        self.latency = latency
        self.redact = list(redact)  # extra secret names (rewind.redact), as the recorder used
        self.drift_ok = drift_ok
        self.live = live
        self.on_event = on_event
        self.stats = ReplayStats()
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []
        for step in steps:
            req = step.request
            self._slots.append(_Slot(step, match_key(req, step.info.provider), req))

    @property
    def remaining(self) -> int:
        return sum(not s.used for s in self._slots)

    def _take(self, request: Request, hint: str | None) -> tuple[_Slot | None, Miss | None, Drift | None]:
        key = match_key(request, hint)
        with self._lock:
            for slot in self._slots:
                if not slot.used and slot.key == key:
                    slot.used = True
                    return slot, None, None
            left = [s for s in self._slots if not s.used]
            if self.drift_ok and left:
                slot = left[0]
                slot.used = True
                return slot, None, Drift(slot.step.n, diff_fields(slot.request, request, hint))
        if self.live is not None:
            return None, None, None
        pool = left or self._slots
        best = closest(request, [(s.step.n, s.request) for s in pool], hint)
        provider = hint or (pool[0].step.info.provider if pool else "generic")
        miss = Miss(provider, request.path, best[0] if best else None, best[1] if best else [])
        return None, miss, None

    async def handle(self, request: ProxyRequest) -> ProxyResponse:
        req = Request(request.method, request.scheme, request.host, request.path, request.headers, request.body)
        # Match (and explain a miss) on the redacted request, as it was stored: a key in the URL
        # or body must neither make every request miss nor show up in the miss message.
        req = redact_request(req, self.redact)[0]
        slot, miss, drift = self._take(req, request.provider_hint)
        if drift is not None:
            self.stats.drifts.append(drift)
            self._emit(drift)
        if slot is not None:
            self.stats.served.append(slot.step.n)
            return await self._serve(slot.step, request)
        if miss is None and self.live is not None:
            self.stats.live += 1
            return await self.live.handle(request)
        assert miss is not None
        self.stats.misses.append(miss)
        self._emit(miss)
        return _miss_response(miss, request.provider_hint)

    def _emit(self, event: object) -> None:
        if self.on_event is not None:
            self.on_event(event)

    async def _serve(self, step: Step, request: ProxyRequest) -> ProxyResponse:
        resp = step.response
        factor = self.latency.factor
        clock = self.clock
        t0 = clock.monotonic()
        if resp.error in (TransportError.CONNECTION_REFUSED, TransportError.CONNECTION_RESET,
                          TransportError.UPSTREAM_TLS, TransportError.TIMEOUT) and resp.status == 0:
            if resp.error is TransportError.TIMEOUT:
                await clock.async_sleep(min(step.info.latency_ms / 1000 * factor, MAX_TIMEOUT_STALL))
            raise CloseConnection(f"replayed {resp.error.value} of step {step.n}")
        if resp.status == 0 and resp.error is TransportError.CLIENT_DISCONNECTED:
            # The client gave up before any answer (its own timeout): answer nothing
            # again, so its timeout fires again and the SDK raises the same timeout
            # error. The server cancels this wait the moment the client hangs up.
            await clock.async_sleep(min(step.info.latency_ms / 1000 + CLIENT_GAVE_UP_GRACE, MAX_CLIENT_WAIT))
            raise CloseConnection(f"step {step.n}: the client gave up before an answer when recorded")
        if resp.status == 0:  # a malformed upstream answer: the proxy had answered 502
            from rewind_vcs.proxy.handler import error_response

            return error_response(502, f"rewind proxy: {resp.error_detail}", "bad_response", "Bad Gateway")
        if factor and resp.chunks:
            await clock.async_sleep(max(0.0, resp.chunks[0][0] * factor - (clock.monotonic() - t0)))
        # An upstream that broke mid-body is replayed as the same cut; a client that
        # hung up is not (the replayed client hangs up itself, or reads a whole body).
        cut = resp.error is not None and resp.error is not TransportError.CLIENT_DISCONNECTED
        return ProxyResponse(resp.status, resp.reason, client_headers(resp.headers),
                             _chunks(resp, factor, t0, cut, clock))


async def _chunks(resp: Response, factor: float, t0: float, cut: bool, clock: Clock) -> AsyncIterator[bytes]:
    """The recorded pieces, as recorded (never re-split), optionally at the recorded pace."""
    body = resp.body
    pos = 0
    for t, n in resp.chunks:
        if factor:
            delay = t * factor - (clock.monotonic() - t0)
            if delay > 0:
                await clock.async_sleep(delay)
        piece = body[pos : pos + n]
        pos += n
        if piece:
            yield piece
    if pos < len(body):
        yield body[pos:]
    if cut:
        raise CloseConnection("the recorded response ended early")


def _miss_response(miss: Miss, hint: str | None) -> ProxyResponse:
    provider = provider_named(hint or miss.provider)
    resp = provider.error_response(400, miss.message(), code="rewind_replay_miss")
    headers = list(resp.headers)
    if not any(k.lower() == "x-should-retry" for k, _ in headers):
        headers.append(("x-should-retry", "false"))
    return ProxyResponse(resp.status or 400, resp.reason or "Bad Request", client_headers(headers),
                         _one(resp.body))


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
