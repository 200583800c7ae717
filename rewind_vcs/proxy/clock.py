"""The clock seam: what the proxy reads the time from and waits on.

Replay pacing (``--latency recorded``), the idle flusher's quiet period and
the timestamps a run writes (``started_at``, ``ended_at``) ask a
:class:`Clock` instead of :mod:`time`, so tests drive them with a
:class:`FakeClock` and never depend on how fast a loaded machine is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Three readings and two ways to wait."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, deadlines)."""
        ...

    def time(self) -> float:
        """Unix time in seconds (what is written down)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def async_sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the running event loop (cancellable)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time`, :func:`asyncio.sleep`."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def async_sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that moves only when told to (:meth:`advance`) or when something sleeps on it.

    Sleeping returns at once after moving the clock forward by the time
    asked; :attr:`sleeps` lists every wait, in order. Thread-safe.
    """

    def __init__(self, start: float = 1_000.0, unix: float = 1_767_225_600.0) -> None:
        self._now = start
        self._unix_offset = unix - start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._now

    def time(self) -> float:
        with self._lock:
            return self._now + self._unix_offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += max(seconds, 0.0)

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still a point where the task can be cancelled


__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]
