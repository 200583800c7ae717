"""Aligning the steps of two timelines by content, as a text diff aligns lines.

Position alone is wrong as soon as one run makes an extra call (a retry after
a 429, one more tool round): every later step would be compared with the wrong
one. So steps are aligned like lines in ``diff``:

1. a longest-matching-blocks pass (:class:`difflib.SequenceMatcher`) over
   per-step signatures ``(provider, endpoint, model, span, match key, status)``:
   steps with equal signatures asked the same thing at the same place (and a
   failed call is not the same as its successful retry);
2. inside each run that did not match, a second pass over coarser shapes
   ``(provider, endpoint, span)`` pairs "the same kind of call at the same
   place" whose content changed (a new temperature, a different tool result);
3. what is left in a run is paired by similarity (a small ordered alignment
   maximising a score over provider, endpoint, span, model and kind), and the
   rest is reported as added or removed steps.

Every pass keeps order, so the pairs never cross.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from rewind_vcs.analysis.views import StepView

#: Beyond this many cells a leftover run is paired by position, not by the quadratic alignment.
_MAX_SIMILARITY_CELLS = 2_500
#: The least similarity for two leftover steps to be paired: at least the same span and kind of call.
_MIN_SIMILARITY = 3


@dataclass(frozen=True)
class Pair:
    """One row of the alignment: indexes into the two step lists (None on the side that lacks it).

    ``exact`` is True when the signatures matched (same request at the same place).
    """

    a: int | None
    b: int | None
    exact: bool = False


def align(a: Sequence[StepView], b: Sequence[StepView]) -> list[Pair]:
    """Pairs covering every step of both sides once, in order."""
    out: list[Pair] = []
    matcher = difflib.SequenceMatcher(None, [s.signature for s in a], [s.signature for s in b],
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            out.extend(Pair(i1 + k, j1 + k, True) for k in range(i2 - i1))
        else:
            out.extend(_align_shapes(a, b, i1, i2, j1, j2))
    return out


def _blocks(x: list[Hashable], y: list[Hashable]) -> list[tuple[str, int, int, int, int]]:
    return difflib.SequenceMatcher(None, x, y, autojunk=False).get_opcodes()


def _align_shapes(a: Sequence[StepView], b: Sequence[StepView], i1: int, i2: int, j1: int,
                  j2: int) -> list[Pair]:
    if i1 == i2:
        return [Pair(None, j) for j in range(j1, j2)]
    if j1 == j2:
        return [Pair(i, None) for i in range(i1, i2)]
    out: list[Pair] = []
    ops = _blocks([s.shape for s in a[i1:i2]], [s.shape for s in b[j1:j2]])
    for tag, x1, x2, y1, y2 in ops:
        if tag == "equal":
            out.extend(Pair(i1 + x1 + k, j1 + y1 + k) for k in range(x2 - x1))
        else:
            out.extend(_by_similarity(a, b, i1 + x1, i1 + x2, j1 + y1, j1 + y2))
    return out


def similarity(x: StepView, y: StepView) -> int:
    ix, iy = x.info, y.info
    score = 0
    score += 2 * (ix.provider == iy.provider)
    score += 2 * (ix.endpoint == iy.endpoint)
    score += 2 * ((ix.span or "") == (iy.span or ""))
    score += ix.model == iy.model
    score += ix.kind == iy.kind
    return score


def _by_similarity(a: Sequence[StepView], b: Sequence[StepView], i1: int, i2: int, j1: int,
                   j2: int) -> list[Pair]:
    """An ordered pairing of a[i1:i2] with b[j1:j2] maximising total similarity."""
    m, n = i2 - i1, j2 - j1
    if m == 0 or n == 0:
        return [Pair(i, None) for i in range(i1, i2)] + [Pair(None, j) for j in range(j1, j2)]
    if m * n > _MAX_SIMILARITY_CELLS:
        k = min(m, n)
        return ([Pair(i1 + t, j1 + t) for t in range(k)] + [Pair(i, None) for i in range(i1 + k, i2)]
                + [Pair(None, j) for j in range(j1 + k, j2)])
    sim = [[similarity(a[i1 + x], b[j1 + y]) for y in range(n)] for x in range(m)]
    # best[x][y]: the best total for a[x:] against b[y:]
    best = [[0] * (n + 1) for _ in range(m + 1)]
    for x in range(m - 1, -1, -1):
        for y in range(n - 1, -1, -1):
            take = sim[x][y] + best[x + 1][y + 1] if sim[x][y] >= _MIN_SIMILARITY else -1
            best[x][y] = max(take, best[x + 1][y], best[x][y + 1])
    out: list[Pair] = []
    x = y = 0
    while x < m and y < n:
        if sim[x][y] >= _MIN_SIMILARITY and best[x][y] == sim[x][y] + best[x + 1][y + 1]:
            out.append(Pair(i1 + x, j1 + y))
            x, y = x + 1, y + 1
        elif best[x][y] == best[x + 1][y]:
            out.append(Pair(i1 + x, None))
            x += 1
        else:
            out.append(Pair(None, j1 + y))
            y += 1
    out.extend(Pair(i1 + t, None) for t in range(x, m))
    out.extend(Pair(None, j1 + t) for t in range(y, n))
    return out
