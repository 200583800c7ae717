"""``rewind bisect GOOD BAD``: the first step at which BAD departs from GOOD, and why.

The two timelines are aligned by content (as ``rewind diff`` does) and walked
in BAD's order; the first aligned row that is not equal is the divergence.
Its differences are then read as causes, from a fixed vocabulary
(:class:`Cause`):

- a request field that changed names its cause: ``model`` (or the provider /
  endpoint), ``params``, ``system_prompt`` (the system prompt, or a system
  message), ``tools`` (tool definitions), ``tool_result`` (a tool message fed
  back into the conversation), ``user_input`` (any other message content);
- when the requests are the same, the responses differ: ``upstream_error`` if
  either side is an error (HTTP >= 400, or no complete response), else
  ``tool_result`` for a recorded tool host (``--record-host``: same query,
  different data) and ``nondeterminism`` for anything else (same request,
  different answer).

Causes are ranked in that order (the order of the vocabulary), except that a
transient upstream failure (429, 5xx, a reset or timeout) comes first: it
happens whatever was asked. Volatile data never counts (see
:mod:`rewind_vcs.analysis.views`), so two recordings of one deterministic run
report no divergence.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewind_vcs.analysis.align import Pair, align
from rewind_vcs.analysis.diff import (
    Change,
    PairStatus,
    Side,
    StepDiff,
    compare_pair,
    load_side,
)
from rewind_vcs.analysis.views import StepView
from rewind_vcs.store.records import StepKind

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo


class Cause(enum.StrEnum):
    """Why BAD departed from GOOD, in ranking order (most likely first on a tie)."""

    MODEL = "model"
    PARAMS = "params"
    SYSTEM_PROMPT = "system_prompt"
    USER_INPUT = "user_input"
    TOOLS = "tools"
    TOOL_RESULT = "tool_result"  # an earlier tool output fed back in the conversation changed
    UPSTREAM_ERROR = "upstream_error"
    NONDETERMINISM = "nondeterminism"  # same request, different response


_RANK = {cause: i for i, cause in enumerate(Cause)}
_SYSTEM_ROLES = {"system", "developer"}
_STATUS_FIELDS = ("status", "http_status", "error")


@dataclass(frozen=True)
class Evidence:
    """A difference that supports a cause: the field, GOOD's value and BAD's value."""

    cause: Cause
    field: str
    old: Any
    new: Any
    side: str = "request"  # "request" or "response"
    role: str | None = None  # for a message: whose it is ("tool", "user", "system", "assistant")

    def to_json(self) -> dict[str, Any]:
        return {"cause": self.cause.value, "side": self.side, "field": self.field, "role": self.role,
                "old": self.old, "new": self.new}


@dataclass
class Divergence:
    """The answer of a two-session bisect."""

    good: Side
    bad: Side
    first_divergent_step: int | None  # 1-based, in BAD's numbering; None when BAD never departs
    good_step: int | None  # the step of GOOD it was compared with (None if GOOD has none)
    row: StepDiff | None
    causes: list[Cause] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    note: str = ""  # one line for the cases the vocabulary does not cover (a step only one side has)
    compared: int = 0  # aligned rows walked before the divergence

    @property
    def diverged(self) -> bool:
        return self.first_divergent_step is not None

    def to_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "good": self.good.to_json(),
            "bad": self.bad.to_json(),
            "diverged": self.diverged,
            "first_divergent_step": self.first_divergent_step,
            "good_step": self.good_step,
            "causes": [c.value for c in self.causes],
            "evidence": [e.to_json() for e in self.evidence],
            "note": self.note or None,
            "good_summary": row.a.label if row is not None and row.a is not None else None,
            "bad_summary": row.b.label if row is not None and row.b is not None else None,
            "steps_equal_before": self.compared,
        }


# --- causes -----------------------------------------------------------------------------------


def _message_role(view: dict[str, Any], index: int) -> str | None:
    messages = view.get("messages")
    if isinstance(messages, list) and 0 <= index < len(messages) and isinstance(messages[index], dict):
        role = messages[index].get("role")
        return role if isinstance(role, str) else None
    return None


def _head(path: str) -> tuple[str, int | None]:
    """``messages[2].content`` -> ("messages", 2); ``params.temperature`` -> ("params", None)."""
    name = path.split(".", 1)[0]
    if "[" in name:
        name, _, rest = name.partition("[")
        index = rest.split("]", 1)[0]
        return name, int(index) if index.isdigit() else None
    return name, None


def _role_of(change: Change, a: StepView, b: StepView) -> str | None:
    """The role of the message a request change is in (None outside ``messages``)."""
    head, index = _head(change.field)
    if head != "messages" or index is None:
        return None
    value = change.new if change.new is not None else change.old
    if change.field == f"messages[{index}]" and isinstance(value, dict):
        role = value.get("role")
        if isinstance(role, str):
            return role
    return _message_role(b.request_view, index) or _message_role(a.request_view, index)


def request_cause(change: Change, role: str | None) -> Cause:
    """The cause a changed request field points at (``role``: of the message it is in)."""
    head, _ = _head(change.field)
    if head in ("model", "provider", "endpoint"):
        return Cause.MODEL
    if head in ("params", "stream"):
        return Cause.PARAMS
    if head == "system" or role in _SYSTEM_ROLES:
        return Cause.SYSTEM_PROMPT
    if head == "tools":
        return Cause.TOOLS
    if role == "tool":
        return Cause.TOOL_RESULT
    return Cause.USER_INPUT


def _errors_differ(a: StepView, b: StepView) -> bool:
    """One side failed and the other did not, or they failed differently."""
    if a.is_error != b.is_error:
        return True
    ra, rb = a.response_view, b.response_view
    return a.is_error and (ra["http_status"] != rb["http_status"] or ra["error"] != rb["error"])


def classify(a: StepView, b: StepView, request: list[Change],
             response: list[Change]) -> tuple[list[Cause], list[Evidence]]:
    """Ranked causes and their evidence for a pair of steps that differ."""
    evidence = []
    for c in request:
        role = _role_of(c, a, b)
        evidence.append(Evidence(request_cause(c, role), c.field, c.old, c.new, "request", role))
    upstream = bool(response) and _errors_differ(a, b)
    if upstream:
        status = [c for c in response if c.field.split(".", 1)[0] in _STATUS_FIELDS] or response[:1]
        evidence += [Evidence(Cause.UPSTREAM_ERROR, c.field, c.old, c.new, "response") for c in status]
    elif response and not request:
        cause = Cause.TOOL_RESULT if b.info.kind is StepKind.TOOL else Cause.NONDETERMINISM
        evidence += [Evidence(cause, c.field, c.old, c.new, "response") for c in response]
    transient = upstream and (b.is_transient_error or a.is_transient_error)

    def rank(cause: Cause) -> int:
        return -1 if transient and cause is Cause.UPSTREAM_ERROR else _RANK[cause]

    causes = sorted({e.cause for e in evidence}, key=rank)
    evidence.sort(key=lambda e: rank(e.cause))  # stable: field order kept within a cause
    return causes, evidence


# --- the walk -----------------------------------------------------------------------------------


def _counterpart(pairs: list[Pair], at: int) -> int | None:
    """For a step only one side has, the index (in ``pairs``) of a step only the other side has
    in the same run of unmatched steps, if any."""
    want_a = pairs[at].a is None
    for direction in (1, -1):
        k = at + direction
        while 0 <= k < len(pairs) and (pairs[k].a is None or pairs[k].b is None):
            if (pairs[k].a is not None) == want_a:
                return k
            k += direction
    return None


def _twin(pairs: list[Pair], at: int, a: list[StepView], b: list[StepView]) -> int | None:
    """For a step only one side has, the nearest step of the other side that asked the same
    thing (a retry after an upstream failure is the usual case); its index into that side."""
    pair = pairs[at]
    mine = (b[pair.b] if pair.b is not None else a[pair.a]).signature[:-1]  # type: ignore[index]
    order = [*range(at + 1, len(pairs)), *range(at - 1, -1, -1)]
    for k in order:
        other = pairs[k].a if pair.b is not None else pairs[k].b
        views = a if pair.b is not None else b
        if other is not None and views[other].signature[:-1] == mine:  # the status aside
            return other
    return None


def find_divergence(good: Side, bad: Side) -> Divergence:
    """Walk the aligned steps in order and explain the first that differs."""
    a, b = good.views, bad.views
    pairs = align(a, b)
    last_b = 0
    for at, pair in enumerate(pairs):
        if pair.a is not None and pair.b is not None:
            row = compare_pair(a[pair.a], b[pair.b])
            if row.status is PairStatus.EQUAL:
                last_b = b[pair.b].n
                continue
            causes, evidence = classify(row.a, row.b, row.request, row.response)  # type: ignore[arg-type]
            return Divergence(good, bad, row.b_n, row.a_n, row, causes, evidence, compared=at)
        other = _counterpart(pairs, at)
        twin = _twin(pairs, at, a, b) if other is None else None
        if other is not None or twin is not None:
            # a step replaced by a dissimilar one, or an extra call that repeats a request the
            # other side made once (a retry): compare the two anyway
            if other is not None:
                ia = pair.a if pair.a is not None else pairs[other].a
                ib = pair.b if pair.b is not None else pairs[other].b
            else:
                ia = pair.a if pair.a is not None else twin
                ib = pair.b if pair.b is not None else twin
            row = compare_pair(a[ia], b[ib])  # type: ignore[index]
            causes, evidence = classify(row.a, row.b, row.request, row.response)  # type: ignore[arg-type]
            note = ""
            if row.status is PairStatus.EQUAL:
                note = (f"BAD makes GOOD's step {row.a_n} once more" if pair.a is None
                        else f"BAD makes GOOD's step {row.a_n} only once (GOOD made it twice)")
            # every row before this one was an equal pair, so BAD departs right after them
            return Divergence(good, bad, last_b + 1, row.a_n, row, causes, evidence, note=note,
                              compared=at)
        if pair.b is not None:
            extra = b[pair.b]
            row = StepDiff(PairStatus.ADDED, None, extra)
            return Divergence(good, bad, extra.n, None, row, compared=at,
                              note=f"BAD makes a call GOOD never made: {extra.label}")
        missing = a[pair.a]  # type: ignore[index]
        row = StepDiff(PairStatus.REMOVED, missing, None)
        where = f"after step {last_b}" if last_b else "first"
        return Divergence(good, bad, last_b + 1, missing.n, row, compared=at,
                          note=f"BAD never makes GOOD's step {missing.n} ({where}): {missing.label}")
    return Divergence(good, bad, None, None, None, compared=len(pairs))


def bisect_refs(repo: Repo, good: str, bad: str) -> Divergence:
    """``rewind bisect GOOD BAD`` as a library call."""
    return find_divergence(load_side(repo, good), load_side(repo, bad))
