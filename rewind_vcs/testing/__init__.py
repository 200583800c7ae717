"""Test and demo infrastructure shipped with rewind: a fake LLM server, and what it answers.

Like mitmproxy's test helpers, these live in the package so that rewind's own
tests, its benchmarks, ``rewind demo`` and users' tests share one
implementation:

- :mod:`~rewind_vcs.testing.fake_llm`: :class:`FakeLLM`, a real HTTP/1.1
  server on loopback speaking the OpenAI, Anthropic and Gemini wire formats;
- :mod:`~rewind_vcs.testing.bodies`: its responses, written by the providers'
  own ``synthesise`` and ``error_response`` (no second wire-format writer);
- :mod:`~rewind_vcs.testing.scripts`: what it answers, decided from the
  providers' normalised view of each request (no second request parser);
- :mod:`~rewind_vcs.testing.faults`: the faults it injects per request.

It sits beside ``demo/`` in the layering: it may import ``providers`` and
below, and ``demo`` and ``cli`` may import it.
"""

from __future__ import annotations

from rewind_vcs.providers.hosts import ProviderName
from rewind_vcs.testing.fake_llm import FakeLLM, ReceivedRequest
from rewind_vcs.testing.faults import FAULT_HEADER, Fault
from rewind_vcs.testing.scripts import Endpoint, Reply, ReplyScript, ToolCall

__all__ = [
    "FAULT_HEADER",
    "Endpoint",
    "FakeLLM",
    "Fault",
    "ProviderName",
    "ReceivedRequest",
    "Reply",
    "ReplyScript",
    "ToolCall",
]
