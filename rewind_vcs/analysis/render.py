"""Plain-text renderings of diffs and bisects for people (the CLI prints them; JSON is ``to_json``).

Values are shown short: strings quoted and clipped, and for two long strings
the window where they start to differ, so a changed paragraph reads as the
words that changed.
"""

from __future__ import annotations

import json
from typing import Any

from rewind_vcs.analysis.bisect import Divergence
from rewind_vcs.analysis.diff import Change, ChangeKind, PairStatus, SessionDiff, Side, StepDiff
from rewind_vcs.analysis.history import Outcome, OutcomeKind

WIDTH = 60
ABSENT = "<absent>"
ARROW = "->"


def clip(text: str, width: int = WIDTH) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def show(value: Any, width: int = WIDTH) -> str:
    if isinstance(value, str):
        return clip(repr(value), width)
    try:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, width)


def show_pair(old: Any, new: Any, width: int = WIDTH) -> tuple[str, str]:
    """Both values; two long strings from the point where they start to differ."""
    from rewind_vcs.providers.matching import difference_window

    start = difference_window(old, new)
    if start:
        return "…" + show(old[start:], width), "…" + show(new[start:], width)
    return show(old, width), show(new, width)


def change_line(change: Change) -> str:
    if change.kind is ChangeKind.ADDED:
        return f"{change.field}: added {show(change.new)}"
    if change.kind is ChangeKind.REMOVED:
        return f"{change.field}: removed {show(change.old)}"
    old, new = show_pair(change.old, change.new)
    return f"{change.field}: {old} {ARROW} {new}"


def side_line(mark: str, side: Side) -> str:
    """``--- good  5932a94a759a/main  research-good  (4 steps)``: the ref as typed, when it is
    not the id itself."""
    typed = "" if side.session_id.startswith(side.ref.split("@")[0]) else f"{side.ref}  "
    name = f"  {side.name}" if side.name else ""
    steps = "1 step" if len(side.views) == 1 else f"{len(side.views)} steps"
    return f"{mark} {typed}{side.describe()}{name}  ({steps})"


def _span(first: StepDiff, last: StepDiff) -> str:
    a0, a1, b0, b1 = first.a_n, last.a_n, first.b_n, last.b_n
    if a0 == a1 and b0 == b1:
        return f"step {b0}" if a0 == b0 else f"step {a0} ~ {b0}"
    if (a0, a1) == (b0, b1):
        return f"steps {a0}-{a1}"
    return f"steps {a0}-{a1} ~ {b0}-{b1}"


def diff_lines(diff: SessionDiff, *, max_changes: int = 12) -> list[str]:
    """``rewind diff`` for people: runs of equal steps collapsed, each change on a line."""
    lines = [side_line("---", diff.a), side_line("+++", diff.b)]
    rows = diff.steps
    i = 0
    while i < len(rows):
        row = rows[i]
        if row.status is PairStatus.EQUAL:
            j = i
            while j + 1 < len(rows) and rows[j + 1].status is PairStatus.EQUAL:
                j += 1
            lines.append(f"= {_span(row, rows[j])}: identical")
            i = j + 1
            continue
        if row.status is PairStatus.ADDED:
            lines.append(f"+ step {row.b_n} (only in {diff.b.ref}): {clip(row.b.label, 90)}")  # type: ignore[union-attr]
        elif row.status is PairStatus.REMOVED:
            lines.append(f"- step {row.a_n} (only in {diff.a.ref}): {clip(row.a.label, 90)}")  # type: ignore[union-attr]
        else:
            lines.append(f"~ {_span(row, row)}: {clip(row.b.label, 90)}")  # type: ignore[union-attr]
            for title, changes in (("request", row.request), ("response", row.response)):
                for k, change in enumerate(changes[:max_changes]):
                    lines.append(f"    {title if k == 0 else ' ' * len(title)}  {change_line(change)}")
                if len(changes) > max_changes:
                    lines.append(f"    {' ' * len(title)}  … {len(changes) - max_changes} more (--json)")
        i += 1
    counts = diff.counts()
    if diff.identical:
        lines.append(f"identical: {counts['equal']} steps match (ids, timestamps and latency ignored)")
    else:
        lines.append(", ".join(f"{v} {k}" for k, v in counts.items()))
    return lines


def divergence_lines(d: Divergence, *, max_evidence: int = 3) -> list[str]:
    """``rewind bisect GOOD BAD`` for people: the step, then the ranked causes with evidence."""
    if not d.diverged:
        return [f"no divergence: {d.bad.ref} follows {d.good.ref} step for step "
                f"({d.compared} steps compared; ids, timestamps and latency ignored)"]
    lines = [f"{d.bad.ref} departs from {d.good.ref} at step {d.first_divergent_step}"
             + (f" (its step {d.good_step})" if d.good_step not in (None, d.first_divergent_step) else "")]
    row = d.row
    if row is not None:
        if row.a is not None:
            lines.append(f"  good  {d.good.session_id}@step-{row.a_n}  {clip(row.a.label, 90)}")
        if row.b is not None:
            lines.append(f"  bad   {d.bad.session_id}@step-{row.b_n}  {clip(row.b.label, 90)}")
    if d.note:
        lines.append(f"  {d.note}")
    if not d.causes:
        return lines
    lines.append("likely cause" + ("s, most likely first:" if len(d.causes) > 1 else ":"))
    width = max(len(c.value) for c in d.causes)
    for rank, cause in enumerate(d.causes, 1):
        items = [e for e in d.evidence if e.cause is cause]
        for k, e in enumerate(items[:max_evidence]):
            head = f"  {rank}. {cause.value:<{width}}" if k == 0 else " " * (width + 5)
            field = e.field if e.side == "request" else f"response {e.field}"
            field += f" ({e.role})" if e.role else ""
            lines.append(f"{head}  {change_line(Change(field, _kind(e.old, e.new), e.old, e.new))}")
        if len(items) > max_evidence:
            lines.append(f"{' ' * (width + 5)}  … {len(items) - max_evidence} more (--json)")
    return lines


def _kind(old: Any, new: Any) -> ChangeKind:
    if old is None and new is not None:
        return ChangeKind.ADDED
    if new is None and old is not None:
        return ChangeKind.REMOVED
    return ChangeKind.CHANGED


def outcome_lines(outcome: Outcome, labels: dict[str, str]) -> list[str]:
    """git's wording for where a bisect over sessions stands."""
    def named(sid: str | None) -> str:
        return f"{sid} ({labels.get(sid or '', '-')})"

    if outcome.kind is OutcomeKind.NEXT:
        s = "" if outcome.left == 1 else "s"
        steps = "" if outcome.steps == 1 else "s"
        return [f"Bisecting: {outcome.left} session{s} left to test after this "
                f"(roughly {outcome.steps} step{steps})",
                f"[{outcome.candidate}] {labels.get(outcome.candidate or '', '-')}"]
    if outcome.kind is OutcomeKind.FOUND:
        return [f"{named(outcome.first_bad)} is the first bad session",
                f"last good session: {named(outcome.last_good)}"]
    return ["There are only 'skip'ped sessions left to test.",
            "The first bad session could be any of:",
            *(named(s) for s in outcome.suspects),
            "We cannot bisect more!"]
