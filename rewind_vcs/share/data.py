"""What a shared page shows, as plain JSON-able data.

``rewind share`` must be safe to post anywhere unless the user asks for
content. So the default, **content-free** payload is built only from fields
that are structure, not conversation:

- per step: kind, provider, endpoint, model, agent span, status, HTTP status,
  an error *label* (HTTP status, the provider's machine error code, the
  transport failure), tokens, latency, time to first token, cost, finish
  reason, and, for non-LLM steps, method, host and path without its query
  string. Labels are built here, never taken from ``StepInfo.summary`` or the
  commit message (both quote the model's output);
- the tool calls a model made, by name only, and only when the name is one the
  request declared (a tool list is the agent's code; a name the model made up
  is model output and shows as ``undeclared tool``); never their arguments;
- per session: id, name, tags, timeline names with fork points, status, exit
  code, times, rewind version, the agent's code commit, and the **program
  name** of the recorded command (its basename): the arguments after it can
  hold user input (the demo passes the user's question on its command line),
  and the full path can hold a user name, so neither is included. The working
  directory is left out for the same reason.

Session names, tags, timeline names and span names are identifiers someone
chose for the recording, and are included. Secrets are never in the store
(the proxy drops them before writing), so they cannot reach a page either.

With ``include_content`` each step also carries its decoded request and
response (system prompt, messages, tool calls with arguments, output text,
the full error message and summary), and the session its whole command line.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewind_vcs import __version__
from rewind_vcs.analysis.trace import TraceNode, build_trace
from rewind_vcs.providers import Normalised, ToolCall, normalise
from rewind_vcs.store.records import StepKind, StepStatus
from rewind_vcs.store.refs import MAIN, TAGS

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.session import Session, Step, Timeline

#: Version of the embedded JSON (bumped when the page's data changes shape).
SHARE_FORMAT = 1

#: Longest text kept per field with ``include_content`` (a safety valve for huge bodies).
MAX_TEXT = 200_000

#: What a provider's machine error code, or a finish reason, may look like to be shown
#: in a content-free page: one short identifier, never free text.
_CODE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.:-]{0,63}$")

UNDECLARED_TOOL = "undeclared tool"


@dataclass
class ShareData:
    """The page's payload and what the CLI reports about it."""

    session_id: str
    timeline: str
    step: int | None
    include_content: bool
    steps: int  # steps on the selected timeline
    payload: dict[str, Any] = field(default_factory=dict)


def share_data(
    repo: Repo,
    spec: str,
    *,
    include_content: bool = False,
    generated_at: float | None = None,
) -> ShareData:
    """The payload for ``spec`` (a session, timeline or step): every timeline of its session,
    the one ``spec`` names selected (and its step focused, for ``ref@step-N``)."""
    target = repo.resolve(spec)
    session = repo.session(target.session_id)
    timelines = session.timelines()
    selected = target.timeline if target.timeline in {t.name for t in timelines} else MAIN
    builder = _Builder(include_content)
    timeline_rows = [builder.timeline(t) for t in timelines]
    selected_row = next(row for row in timeline_rows if row["name"] == selected)
    payload = {
        "format": SHARE_FORMAT,
        "generator": f"rewind {__version__}",
        "generated_at": generated_at if generated_at is not None else time.time(),
        "include_content": include_content,
        "session": _session_row(repo, session, include_content),
        "selected": {"timeline": selected, "step": target.step},
        "timelines": timeline_rows,
        "steps": builder.steps,
    }
    return ShareData(
        session_id=session.id,
        timeline=selected,
        step=target.step,
        include_content=include_content,
        steps=len(selected_row["steps"]),
        payload=payload,
    )


# -- session ---------------------------------------------------------------------


def program_name(command: list[str]) -> str | None:
    """The basename of the program a session ran (``/usr/bin/python3`` -> ``python3``)."""
    if not command:
        return None
    return re.split(r"[\\/]", command[0])[-1] or None


def _session_row(repo: Repo, session: Session, include_content: bool) -> dict[str, Any]:
    info = session.info
    main = session.main
    end = main.end
    code = info.code_version or {}
    commit = code.get("commit")
    row: dict[str, Any] = {
        "id": session.id,
        "name": info.name,
        "program": program_name(info.command),
        "started_at": info.started_at,
        "ended_at": end.ended_at if end and end.ended_at else None,
        "exit_code": end.exit_code if end else None,
        "status": main.status.value,
        "rewind_version": info.rewind_version,
        "code_version": (
            {"commit": str(commit)[:12], "dirty": bool(code.get("dirty"))}
            if isinstance(commit, str) and re.fullmatch(r"[0-9a-f]{7,64}", commit)
            else None
        ),
        "tags": _tags(repo, session),
    }
    if include_content:
        row["command"] = list(info.command)
    return row


def _tags(repo: Repo, session: Session) -> list[str]:
    """Tags pointing at a commit of this session (any timeline)."""
    commits = {c for t in session.timelines() for c in t.commits}
    names = []
    for ref in repo.git.references.iterator():
        if ref.name.startswith(TAGS):
            try:
                target = str(ref.peel().id)
            except Exception:  # noqa: BLE001 - a tag on a foreign object is not ours to show
                continue
            if target in commits:
                names.append(ref.name[len(TAGS):])
    return sorted(names)


# -- timelines and steps ----------------------------------------------------------


class _Builder:
    """Builds step rows once per commit (timelines share the steps before their fork point)."""

    def __init__(self, include_content: bool) -> None:
        self.include_content = include_content
        self.steps: list[dict[str, Any]] = []
        self._index: dict[str, int] = {}

    def timeline(self, timeline: Timeline) -> dict[str, Any]:
        indices = [self._step(step) for step in timeline.steps]
        tree = build_trace(timeline, with_tool_calls=False)
        rows = [self.steps[i] for i in indices]
        end = timeline.end
        return {
            "name": timeline.name,
            "fork_point": timeline.fork_point,
            "status": timeline.status.value,
            "exit_code": end.exit_code if end else None,
            "ended_at": end.ended_at if end and end.ended_at else None,
            "steps": indices,
            "tree": self._tree(tree, rows, is_root=True, timeline=timeline),
        }

    def _step(self, step: Step) -> int:
        if step.commit_id not in self._index:
            self._index[step.commit_id] = len(self.steps)
            self.steps.append(step_row(step, include_content=self.include_content))
        return self._index[step.commit_id]

    def _tree(
        self, node: TraceNode, rows: list[dict[str, Any]], *, is_root: bool = False,
        timeline: Timeline | None = None,
    ) -> dict[str, Any]:
        """A trace node as data, its labels and errors replaced by the content-free ones."""
        label = node.label
        error = None
        row = rows[node.step - 1] if node.step is not None and node.kind != "tool_call" else None
        if is_root and timeline is not None:
            label = f"{timeline.session.id}/{timeline.name}"
        elif row is not None:
            label, error = row["label"], row["error"]
        out: dict[str, Any] = {
            "kind": node.kind,
            "label": label,
            "step": node.step,
            "model": node.model,
            "tokens": node.tokens,
            "input_tokens": node.input_tokens,
            "output_tokens": node.output_tokens,
            "latency_ms": round(node.latency_ms, 3),
            "cost_usd": round(node.cost_usd, 6),
            "status": node.status,
            "error": error,
            "children": [self._tree(child, rows) for child in node.children],
        }
        if row is not None:
            out["children"] += [
                {"kind": "tool_call", "label": call["label"], "step": node.step, "children": []}
                for call in row["tool_calls"]
            ]
        return out


def step_row(step: Step, *, include_content: bool = False) -> dict[str, Any]:
    """One step as the page shows it (see the module docstring for what is included)."""
    info = step.info
    request, response = step.request, step.response
    view = normalise(step.exchange, hint=info.provider)
    path = request.path.partition("?")[0]
    is_llm = info.kind is StepKind.LLM
    finish = info.extra.get("finish_reason") or view.finish_reason
    row: dict[str, Any] = {
        "n": info.n,
        "kind": info.kind.value,
        "provider": info.provider,
        "endpoint": info.endpoint,
        "model": info.model,
        "span": info.span,
        "status": info.status.value,
        "http_status": info.http_status,
        "transport_error": response.error.value if response.error else None,
        "error": None,
        "started_at": info.started_at,
        "latency_ms": round(info.latency_ms, 3),
        "ttft_ms": None if info.ttft_ms is None else round(info.ttft_ms, 3),
        "stream": info.stream,
        "input_tokens": info.usage.input_tokens,
        "output_tokens": info.usage.output_tokens,
        "tokens": info.usage.total,
        "cost_usd": info.cost_usd,
        "finish_reason": finish if isinstance(finish, str) and _CODE_RE.match(finish) else None,
        "method": None if is_llm else request.method,
        "host": None if is_llm else request.host,
        "path": None if is_llm else path,
        "label": _label(step, path),
        "tool_calls": [_tool_call(call, view, include_content) for call in view.output_tool_calls],
    }
    if info.status is StepStatus.ERROR:
        row["error"] = error_label(info.http_status, view.error_code, row["transport_error"])
    if include_content:
        row["label"] = info.summary or row["label"]
        row["error"] = (info.error or row["error"]) if row["error"] else None
        row["content"] = _content(view, request.path, info.summary)
    return row


def _label(step: Step, path: str) -> str:
    """A content-free one-line description of a step."""
    info = step.info
    if info.kind is StepKind.LLM:
        return " ".join(p for p in (info.provider, info.endpoint) if p)
    request = step.request
    return f"{request.method} {request.host}{path}"


def error_label(http_status: int, code: str | None, transport: str | None) -> str:
    """``HTTP 429 rate_limit_exceeded``, ``connection_reset``: what failed, with no free text."""
    parts = []
    if http_status and not 200 <= http_status < 400:
        parts.append(f"HTTP {http_status}")
    if code and _CODE_RE.match(code) and code not in parts:
        parts.append(code)
    if transport and transport not in parts:
        parts.append(transport)
    return " ".join(parts) or "error"


def _tool_call(call: ToolCall, view: Normalised, include_content: bool) -> dict[str, Any]:
    if include_content:
        return {"label": call.render(120), "name": call.name, "arguments": _arguments(call.arguments)}
    declared = {t.get("name") for t in view.tools if isinstance(t, dict)}
    return {"label": call.name if call.name in declared else UNDECLARED_TOOL}


# -- content (only with include_content) -------------------------------------------


def _clip(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"\n… ({len(text) - MAX_TEXT:,} more characters not included)"


def _arguments(value: Any) -> str:
    """Tool-call arguments as indented JSON text (a string the page shows as is)."""
    if isinstance(value, str):
        return _clip(value) or ""
    return _clip(json.dumps(value, indent=2, ensure_ascii=False, default=str)) or ""


def _content(view: Normalised, full_path: str, summary: str) -> dict[str, Any]:
    return {
        "summary": summary,
        "path": full_path,
        "system": _clip(view.system),
        "messages": [
            {
                "role": m.role,
                "name": m.name,
                "tool_call_id": m.tool_call_id,
                "content": _clip(m.content),
                "tool_calls": [
                    {"name": c.name, "arguments": _arguments(c.arguments)} for c in m.tool_calls
                ],
            }
            for m in view.messages
        ],
        "params": _clip(json.dumps(view.params, indent=2, ensure_ascii=False, default=str))
        if view.params
        else None,
        "tools": [str(t.get("name")) for t in view.tools if isinstance(t, dict)],
        "output_text": _clip(view.output_text),
        "output_tool_calls": [
            {"name": c.name, "arguments": _arguments(c.arguments)} for c in view.output_tool_calls
        ],
        "error_message": _clip(view.error_message),
    }
