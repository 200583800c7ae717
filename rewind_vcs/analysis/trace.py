"""A timeline as a trace tree: agent spans, LLM calls, tool calls.

Spans come from the ``X-Rewind-Span`` header the agent sent (``supervisor/writer``
nests ``writer`` under ``supervisor``); each step sits under its span, and the
tool calls a model asked for sit under that LLM call. ``rewind show`` and
``rewind share`` both draw this tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rewind_vcs.store.records import StepKind, StepStatus
from rewind_vcs.store.session import Step, Timeline


@dataclass
class TraceNode:
    kind: str  # "session", "span", "llm", "tool", "http", "tool_call"
    label: str
    step: int | None = None
    model: str | None = None
    provider: str | None = None
    tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    status: str = "ok"
    error: str | None = None
    started_at: float = 0.0
    children: list[TraceNode] = field(default_factory=list)

    def add_totals(self, other: TraceNode) -> None:
        self.tokens += other.tokens
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cost_usd += other.cost_usd
        self.latency_ms += other.latency_ms
        if other.status == "error":
            self.status = "error"

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "children"}
        out["cost_usd"] = round(self.cost_usd, 6)
        out["children"] = [c.to_json() for c in self.children]
        return out


def _tool_calls(step: Step) -> list[TraceNode]:
    """The tool calls a model asked for in this step's response."""
    from rewind_vcs.providers import normalise

    try:
        view = normalise(step.exchange, hint=step.info.provider)
    except Exception:  # noqa: BLE001 - a body we cannot parse still shows as a step
        return []
    nodes = []
    for call in view.output_tool_calls:
        args = call.arguments
        if isinstance(args, dict):
            text = ", ".join(f"{k}={v!r}" for k, v in list(args.items())[:3])
        else:
            text = str(args)
        nodes.append(TraceNode(kind="tool_call", label=f"{call.name}({text[:80]})", step=step.n))
    return nodes


def step_node(step: Step, *, with_tool_calls: bool = True) -> TraceNode:
    info = step.info
    kind = {StepKind.LLM: "llm", StepKind.TOOL: "tool"}.get(info.kind, "http")
    label = info.summary or info.endpoint or step.request.path
    node = TraceNode(
        kind=kind,
        label=label,
        step=info.n,
        model=info.model,
        provider=info.provider,
        tokens=info.usage.total,
        input_tokens=info.usage.input_tokens,
        output_tokens=info.usage.output_tokens,
        latency_ms=info.latency_ms,
        cost_usd=info.cost_usd or 0.0,
        status="error" if info.status == StepStatus.ERROR else "ok",
        error=info.error,
        started_at=info.started_at,
    )
    if with_tool_calls and kind == "llm":
        node.children = _tool_calls(step)
    return node


def build_trace(timeline: Timeline, *, with_tool_calls: bool = True) -> TraceNode:
    """The tree of one timeline, totals summed up the spans."""
    session = timeline.session
    label = session.info.name or " ".join(session.info.command) or session.id
    root = TraceNode(kind="session", label=f"{session.id}/{timeline.name} {label}",
                     started_at=session.info.started_at)
    spans: dict[tuple[str, ...], TraceNode] = {(): root}
    for step in timeline.steps:
        node = step_node(step, with_tool_calls=with_tool_calls)
        path = tuple(p for p in (step.info.span or "").split("/") if p)
        parent = root
        for depth in range(1, len(path) + 1):
            key = path[:depth]
            if key not in spans:
                span = TraceNode(kind="span", label=key[-1], started_at=node.started_at)
                spans[key[:-1]].children.append(span)
                spans[key] = span
            parent = spans[key]
        parent.children.append(node)
        for depth in range(len(path), -1, -1):
            spans[path[:depth]].add_totals(node)
    return root
