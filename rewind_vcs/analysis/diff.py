"""``rewind diff``: two timelines (or two steps) compared step by step, structurally.

Steps are first aligned by content (:mod:`rewind_vcs.analysis.align`); each
aligned pair is then compared on its plain request and response views
(:mod:`rewind_vcs.analysis.views`) with deepdiff, so a change reads as a path
and two values (``messages[2].content: 'About 17 million…' -> 'About 2.1
million…'``) whatever the provider. Steps without a counterpart are added or
removed. Comparisons are lazy: a pair whose match keys and response bytes are
equal is equal without parsing anything; long conversations are compared
message by message, and deepdiff only sees the messages that differ.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewind_vcs.analysis.align import align
from rewind_vcs.analysis.views import StepView, load_views, same
from rewind_vcs.providers.base import canonical_json

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.resolve import Target


class ChangeKind(enum.StrEnum):
    CHANGED = "changed"
    ADDED = "added"  # present only in B
    REMOVED = "removed"  # present only in A


class PairStatus(enum.StrEnum):
    EQUAL = "equal"
    CHANGED = "changed"
    ADDED = "added"  # a step only B has
    REMOVED = "removed"  # a step only A has


@dataclass(frozen=True)
class Change:
    """One difference: a path into the plain view, and the value on each side (None when absent)."""

    field: str  # "model", "messages[2].content", "params.temperature", "output_text", ...
    kind: ChangeKind
    old: Any = None
    new: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"field": self.field, "change": self.kind.value, "old": self.old, "new": self.new}


@dataclass
class StepDiff:
    """One aligned row: a pair of steps and how they differ, or a step on one side only."""

    status: PairStatus
    a: StepView | None
    b: StepView | None
    request: list[Change] = field(default_factory=list)
    response: list[Change] = field(default_factory=list)

    @property
    def a_n(self) -> int | None:
        return self.a.n if self.a is not None else None

    @property
    def b_n(self) -> int | None:
        return self.b.n if self.b is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "a": self.a_n,
            "b": self.b_n,
            "a_summary": self.a.label if self.a is not None else None,
            "b_summary": self.b.label if self.b is not None else None,
            "request": [c.to_json() for c in self.request],
            "response": [c.to_json() for c in self.response],
        }


@dataclass
class Side:
    """What one side of a comparison is: a whole timeline, or a single step."""

    ref: str
    session_id: str
    timeline: str
    step: int | None  # set when the ref named one step
    name: str | None
    views: list[StepView]

    def to_json(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "session": self.session_id,
            "timeline": self.timeline,
            "step": self.step,
            "name": self.name,
            "steps": len(self.views),
        }

    def describe(self) -> str:
        where = f"{self.session_id}/{self.timeline}"
        return f"{where}@step-{self.step}" if self.step is not None else where


@dataclass
class SessionDiff:
    a: Side
    b: Side
    steps: list[StepDiff]

    @property
    def identical(self) -> bool:
        return all(s.status is PairStatus.EQUAL for s in self.steps)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in PairStatus}
        for s in self.steps:
            out[s.status.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a.to_json(),
            "b": self.b.to_json(),
            "identical": self.identical,
            "counts": self.counts(),
            "steps": [s.to_json() for s in self.steps],
        }


# --- structural differences of plain views ----------------------------------------------------


def _path(keys: list[Any]) -> str:
    out = ""
    for key in keys:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "value"


def _sort_key(path: str) -> list[Any]:
    """Paths in reading order: ``messages[2]`` before ``messages[10]``."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[\[\].]+", path) if p]


def _middle(old: list[Any], new: list[Any]) -> tuple[int, int, int]:
    """Where two lists differ: past their common prefix (``start``) and before their common
    suffix (``end_old``, ``end_new``), so one changed message in a long conversation is one
    change, not a shift of every later index."""
    ca = [canonical_json(x) for x in old]
    cb = [canonical_json(x) for x in new]
    start = 0
    while start < len(ca) and start < len(cb) and ca[start] == cb[start]:
        start += 1
    end_a, end_b = len(ca), len(cb)
    while end_a > start and end_b > start and ca[end_a - 1] == cb[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    return start, end_a, end_b


def _leaves(old: Any, new: Any, path: tuple[Any, ...], out_old: dict[tuple[Any, ...], Any],
            out_new: dict[tuple[Any, ...], Any]) -> None:
    """Walk two values down to where they differ, collecting ``{path: value}`` on each side:
    dict keys with equal values are skipped, lists are compared past their common prefix and
    suffix; a key or element only one side has is collected whole on that side."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                out_old[(*path, key)] = old[key]
            elif key not in old:
                out_new[(*path, key)] = new[key]
            elif not same(old[key], new[key]):
                _leaves(old[key], new[key], (*path, key), out_old, out_new)
    elif isinstance(old, list) and isinstance(new, list):
        start, end_a, end_b = _middle(old, new)
        for i in range(start, max(end_a, end_b)):
            if i < end_a and i < end_b:
                if not same(old[i], new[i]):
                    _leaves(old[i], new[i], (*path, i), out_old, out_new)
            elif i < end_a:
                out_old[(*path, i)] = old[i]
            else:
                out_new[(*path, i)] = new[i]
    else:
        out_old[path], out_new[path] = old, new


def trim(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the fields of two views that differ (the cheap first cut, before any walk)."""
    fields = list(old) + [k for k in new if k not in old]
    keep = [k for k in fields if k not in old or k not in new or not same(old[k], new[k])]
    return {k: old[k] for k in keep if k in old}, {k: new[k] for k in keep if k in new}


def deep_changes(items: list[tuple[Any, Any]]) -> list[list[Change]]:
    """The differences of each (old, new) pair of views, as paths and values.

    The values are walked here down to the parts that differ (deepdiff does not align lists
    without ``ignore_order``, and its cost grows with the depth of what it walks), then
    deepdiff compares those parts, for the whole batch in one call, and says what changed:
    a value, a type, an item added or removed.
    """
    out: list[list[Change]] = [[] for _ in items]
    flat_old: dict[tuple[Any, ...], Any] = {}
    flat_new: dict[tuple[Any, ...], Any] = {}
    for i, (old, new) in enumerate(items):
        if not same(old, new):
            _leaves(old, new, (i,), flat_old, flat_new)
    if not flat_old and not flat_new:
        return out
    from deepdiff import DeepDiff
    from deepdiff.helper import NotPresent

    paths = list(flat_old) + [k for k in flat_new if k not in flat_old]
    label = {path: str(n) for n, path in enumerate(paths)}  # short keys: deepdiff formats every key
    tree = DeepDiff({label[k]: v for k, v in flat_old.items()}, {label[k]: v for k, v in flat_new.items()},
                    view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    for levels in tree.values():
        for level in levels:
            if _same_number(level.t1, level.t2):  # 0 and 0.0 say the same (deepdiff's own option
                continue  # for this turns integer keys into strings)
            keys = level.path(output_format="list")
            where = paths[int(keys[0])]
            absent_old, absent_new = isinstance(level.t1, NotPresent), isinstance(level.t2, NotPresent)
            kind = ChangeKind.ADDED if absent_old else ChangeKind.REMOVED if absent_new else ChangeKind.CHANGED
            out[where[0]].append(Change(_path([*where[1:], *keys[1:]]), kind,
                                        None if absent_old else level.t1,
                                        None if absent_new else level.t2))
    for changes in out:
        changes.sort(key=lambda c: _sort_key(c.field))
    return out


def _same_number(x: Any, y: Any) -> bool:
    numbers = (int, float)
    return (isinstance(x, numbers) and isinstance(y, numbers) and not isinstance(x, bool)
            and not isinstance(y, bool) and x == y)


def view_changes(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """How view ``new`` differs from view ``old``, field by field."""
    return deep_changes([trim(old, new)])[0]


# --- step pairs -----------------------------------------------------------------------------


def requests_differ(a: StepView, b: StepView) -> bool:
    """Cheap: equal match keys mean the same semantic request (no body is parsed)."""
    return a.match_key != b.match_key or a.info.provider != b.info.provider


def responses_differ(a: StepView, b: StepView) -> bool:
    """Equal bytes are equal; otherwise the views decide (ids and timestamps always differ)."""
    if a.response_bytes == b.response_bytes and a.info.provider == b.info.provider:
        return False
    return not same(a.response_view, b.response_view)


def _key_only_changes(a: StepView, b: StepView) -> list[Change]:
    """The views agree but the match keys do not: a detail the views leave out (an image, a
    cache marker); the providers' own comparison names it."""
    from rewind_vcs.providers import diff_fields

    return [Change(d.field, ChangeKind.CHANGED, d.old, d.new)
            for d in diff_fields(a.step.request, b.step.request, a.info.provider)]


def compare_pairs(pairs: list[tuple[StepView, StepView]]) -> list[StepDiff]:
    """Each pair compared; only the pairs that differ go through deepdiff, all in one batch."""
    rows: list[StepDiff] = []
    batch: list[tuple[Any, Any]] = []
    where: list[int] = []
    for a, b in pairs:
        req, resp = requests_differ(a, b), responses_differ(a, b)
        rows.append(StepDiff(PairStatus.CHANGED if req or resp else PairStatus.EQUAL, a, b))
        if req or resp:
            ta, tb = trim(a.request_view, b.request_view) if req else ({}, {})
            ra, rb = trim(a.response_view, b.response_view) if resp else ({}, {})
            batch.append(({"request": ta, "response": ra}, {"request": tb, "response": rb}))
            where.append(len(rows) - 1)
    for i, changes in zip(where, deep_changes(batch), strict=True):
        row = rows[i]
        for change in changes:  # "request.messages[2].content" -> the request's "messages[2].content"
            side, _, rest = change.field.partition(".")
            target = row.request if side == "request" else row.response
            target.append(Change(rest, change.kind, change.old, change.new))
        if requests_differ(row.a, row.b) and not row.request:  # type: ignore[arg-type]
            row.request.extend(_key_only_changes(row.a, row.b))  # type: ignore[arg-type]
        if not row.request and not row.response:
            row.status = PairStatus.EQUAL
    return rows


def compare_pair(a: StepView, b: StepView) -> StepDiff:
    return compare_pairs([(a, b)])[0]


def diff_views(a: list[StepView], b: list[StepView]) -> list[StepDiff]:
    """Every aligned row, in order."""
    aligned = align(a, b)
    pairs = [(a[p.a], b[p.b]) for p in aligned if p.a is not None and p.b is not None]
    compared = iter(compare_pairs(pairs))
    rows: list[StepDiff] = []
    for p in aligned:
        if p.a is None:
            rows.append(StepDiff(PairStatus.ADDED, None, b[p.b]))  # type: ignore[index]
        elif p.b is None:
            rows.append(StepDiff(PairStatus.REMOVED, a[p.a], None))
        else:
            rows.append(next(compared))
    return rows


# --- refs -----------------------------------------------------------------------------------


def load_side(repo: Repo, spec: str, target: Target | None = None) -> Side:
    """What ``spec`` names: a timeline's steps, or one step when it names a step."""
    target = target or repo.resolve(spec)
    session = repo.session(target.session_id)
    timeline = session.timeline(target.timeline or "main")
    if target.step is not None:
        from rewind_vcs.store.session import load_step

        steps = [load_step(repo, target.commit)]
    else:
        steps = timeline.steps
    return Side(spec, session.id, timeline.name, target.step, session.info.name, load_views(steps))


def diff_sides(a: Side, b: Side) -> SessionDiff:
    return SessionDiff(a, b, diff_views(a.views, b.views))


def diff_refs(repo: Repo, a: str, b: str) -> SessionDiff:
    """``rewind diff A B`` as a library call."""
    return diff_sides(load_side(repo, a), load_side(repo, b))
