"""Explaining a replay miss: which semantic fields of two requests differ.

``diff_fields`` compares the normalised request views (model, system,
messages, params, tools, endpoint) so the answer reads the same for every
provider, e.g. ``messages[2].content: 'a' vs 'b'``; when the views agree but
the match keys do not (a detail the view leaves out, such as an image or a
cache marker), it names the first differing path of the canonical requests.
``closest`` picks the recorded request a missed one most likely meant.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rewind_vcs.providers.base import Message, Normalised, ToolCall, WireFormat, canonical_json
from rewind_vcs.providers.registry import detect
from rewind_vcs.store.records import Request

_ABSENT = "<absent>"
_MISSING: Any = object()  # a value that is not there (distinct from any JSON value)
_WIDTH = 60


@dataclass(frozen=True)
class FieldDiff:
    """One differing field: ``old`` is the first (recorded) request's value, ``new`` the second's."""

    field: str  # "model", "system", "messages[2].content", "params.temperature", "tools", ...
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.field}: {self.old} vs {self.new}"


@dataclass
class _Side:
    request: Request
    provider: WireFormat
    view: Normalised
    canonical: dict[str, Any]


def _side(request: Request, hint: str | None) -> _Side:
    provider = detect(request, hint)
    return _Side(
        request, provider, provider.normalise_request(request), provider.canonical_request(request)
    )


def diff_fields(a: Request, b: Request, hint: str | None = None) -> list[FieldDiff]:
    """The semantic fields in which request ``b`` differs from ``a`` (empty when they match)."""
    return _compare(_side(a, hint), _side(b, hint))[0]


def closest(
    request: Request, candidates: list[tuple[int, Request]], hint: str | None = None
) -> tuple[int, list[FieldDiff]] | None:
    """The candidate ``(n, recorded request)`` nearest to ``request``, with how it differs.

    Nearest means: same provider and endpoint first, then the same model, then
    the fewest differing fields, then the longest shared conversation prefix,
    then the smallest differing values; ties go to the earliest candidate.
    """
    if not candidates:
        return None
    incoming = _side(request, hint)
    best: tuple[tuple[Any, ...], int, list[FieldDiff]] | None = None
    for n, candidate in candidates:
        diffs, shared = _compare(_side(candidate, hint), incoming)
        fields = {d.field for d in diffs}
        score = (
            bool(fields & {"provider", "endpoint"}),
            "model" in fields,
            len(diffs),
            -shared,
            sum(len(d.old) + len(d.new) for d in diffs),
        )
        if best is None or score < best[0]:
            best = (score, n, diffs)
    assert best is not None
    return best[1], best[2]


def _compare(a: _Side, b: _Side) -> tuple[list[FieldDiff], int]:
    """Differences, and how many leading messages the two requests share."""
    if a.provider.name != b.provider.name:
        return [FieldDiff("provider", a.provider.name, b.provider.name)], 0
    va, vb = a.view, b.view
    diffs: list[FieldDiff] = []
    for name in ("endpoint", "model", "system"):
        old, new = getattr(va, name), getattr(vb, name)
        if old != new:
            diffs.append(_pair(name, old, new))
    shared, message_diff = _messages(va.messages, vb.messages)
    if message_diff:
        diffs.append(message_diff)
    for key in sorted(set(va.params) | set(vb.params)):
        old, new = va.params.get(key, _MISSING), vb.params.get(key, _MISSING)
        if old is _MISSING or new is _MISSING or canonical_json(old) != canonical_json(new):
            diffs.append(_pair(f"params.{key}", old, new))
    tool_diff = _tools(va.tools, vb.tools)
    if tool_diff:
        diffs.append(tool_diff)
    if va.stream != vb.stream:
        diffs.append(_pair("stream", va.stream, vb.stream))
    if not diffs and canonical_json(a.canonical) != canonical_json(b.canonical):
        path, old, new = _first_difference(a.canonical, b.canonical, "")
        diffs.append(_pair(path or "request", old, new))
    return diffs, shared


def _call_key(call: ToolCall) -> tuple[str, bytes]:
    return call.name, canonical_json(call.arguments)


def _messages(old: list[Message], new: list[Message]) -> tuple[int, FieldDiff | None]:
    for i in range(max(len(old), len(new))):
        if i >= len(old) or i >= len(new):
            present = old[i] if i < len(old) else new[i]
            body = _show(present.content) if present.content else _calls(present.tool_calls)
            shown = _clip(f"{present.role}: {body}")
            return i, FieldDiff(
                f"messages[{i}]",
                shown if i < len(old) else _ABSENT,
                shown if i < len(new) else _ABSENT,
            )
        x, y = old[i], new[i]
        if x.role != y.role:
            return i, _pair(f"messages[{i}].role", x.role, y.role)
        if x.content != y.content:
            return i, _pair(f"messages[{i}].content", x.content, y.content)
        if [_call_key(c) for c in x.tool_calls] != [_call_key(c) for c in y.tool_calls]:
            return i, FieldDiff(
                f"messages[{i}].tool_calls", _calls(x.tool_calls), _calls(y.tool_calls)
            )
        if x.name != y.name:
            return i, _pair(f"messages[{i}].name", x.name, y.name)
    return len(old), None


def _calls(calls: list[ToolCall]) -> str:
    return _clip(", ".join(call.render(_WIDTH) for call in calls) or "[]")


def _tools(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> FieldDiff | None:
    if canonical_json(old) == canonical_json(new):
        return None
    names_old = [str(t.get("name")) for t in old]
    names_new = [str(t.get("name")) for t in new]
    if names_old != names_new:
        return FieldDiff(
            "tools", _clip(f"[{', '.join(names_old)}]"), _clip(f"[{', '.join(names_new)}]")
        )
    for x, y in zip(old, new, strict=True):
        if canonical_json(x) != canonical_json(y):
            path, a, b = _first_difference(x, y, "")
            return _pair(f"tools[{x.get('name')}]{path}", a, b)
    return None


def _first_difference(a: Any, b: Any, path: str) -> tuple[str, Any, Any]:
    """The first JSON path (``.key`` / ``[i]``) at which two values differ, with both values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}", a.get(key, _MISSING), b.get(key, _MISSING)
            if canonical_json(a[key]) != canonical_json(b[key]):
                return _first_difference(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            if i >= len(a) or i >= len(b):
                return (
                    f"{path}[{i}]",
                    a[i] if i < len(a) else _MISSING,
                    b[i] if i < len(b) else _MISSING,
                )
            if canonical_json(a[i]) != canonical_json(b[i]):
                return _first_difference(a[i], b[i], f"{path}[{i}]")
    return path.lstrip("."), a, b


def difference_window(old: Any, new: Any) -> int:
    """Where to start showing two long strings so their first difference is in view (0: from the start)."""
    if not (isinstance(old, str) and isinstance(new, str)):
        return 0
    prefix = 0
    for x, y in zip(old, new, strict=False):
        if x != y:
            break
        prefix += 1
    return prefix - 10 if prefix > 20 else 0


def _pair(name: str, old: Any, new: Any) -> FieldDiff:
    """Short renderings; for two long strings, the window where they start to differ."""
    start = difference_window(old, new)
    if start:
        return FieldDiff(name, "…" + _show(old[start:]), "…" + _show(new[start:]))
    return FieldDiff(name, _show(old), _show(new))


def _show(value: Any) -> str:
    if value is _MISSING:
        return _ABSENT
    if isinstance(value, str):
        return _clip(repr(value))
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return _clip(text)


def _clip(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _WIDTH else flat[: _WIDTH - 1] + "…"
