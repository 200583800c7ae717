"""Running a command behind the proxy: ``record`` and ``replay`` as library calls (one import).

The pieces live in modules named for what they hold:

- :mod:`rewind_vcs.proxy.lifecycle`: :class:`ProxySession` (start, flush,
  stop: the one lifecycle of ``record``, ``replay`` and ``proxy``),
  :class:`ProxySettings`, :class:`RecordingHandler`, :class:`IdleFlusher`;
- :mod:`rewind_vcs.proxy.child`: running the command and teeing its stdout;
- :mod:`rewind_vcs.proxy.record_run`: :func:`record_run`;
- :mod:`rewind_vcs.proxy.replay_run`: :func:`replay_run`.
"""

from __future__ import annotations

from rewind_vcs.errors import RewindError
from rewind_vcs.proxy.child import ChildResult, code_version, run_child
from rewind_vcs.proxy.lifecycle import (
    IDLE_FLUSH_SECONDS,
    IdleFlusher,
    ProxySession,
    ProxySettings,
    RecordingHandler,
    RunningProxy,
    start_proxy,
)
from rewind_vcs.proxy.record_run import RecordResult, record_run
from rewind_vcs.proxy.replay_run import ReplayResult, Savings, replay_run, savings_of

__all__ = [
    "IDLE_FLUSH_SECONDS",
    "ChildResult",
    "IdleFlusher",
    "ProxySession",
    "ProxySettings",
    "RecordResult",
    "RecordingHandler",
    "ReplayResult",
    "RewindError",
    "RunningProxy",
    "Savings",
    "code_version",
    "record_run",
    "replay_run",
    "run_child",
    "savings_of",
    "start_proxy",
]
