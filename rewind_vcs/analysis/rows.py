"""The rows ``rewind log``, ``show`` and ``timelines`` print, as plain dicts.

This is the schema of their ``--json`` output: the CLI only prints what these
functions return (as JSON, or as a table of some of the columns), so a UI, an
MCP server or a pytest plugin gets the same rows by calling them. A key may be
added; none is renamed or removed without a format note in docs/FORMAT.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.resolve import Target
    from rewind_vcs.store.session import Session, SessionSummary, Step, Timeline

__all__ = ["session_rows", "step_row", "step_rows", "timeline_rows", "repository_status"]


def session_rows(
    repo: Repo, limit: int | None = None, sessions: list[SessionSummary] | None = None
) -> list[dict[str, Any]]:
    """``rewind log --json``: one dict per session, newest (latest arrived) first."""
    if sessions is None:
        sessions = repo.sessions()
    if limit is not None:
        sessions = sessions[:limit]
    return [s.to_json() for s in sessions]


def step_row(step: Step) -> dict[str, Any]:
    """One step of ``rewind log REF --json`` (and of ``show --json``)."""
    info = step.info
    return {
        "n": info.n,
        "kind": info.kind.value,
        "provider": info.provider,
        "endpoint": info.endpoint,
        "model": info.model,
        "summary": info.summary,
        "latency_ms": round(info.latency_ms, 3),
        "ttft_ms": info.ttft_ms,
        "input_tokens": info.usage.input_tokens,
        "output_tokens": info.usage.output_tokens,
        "tokens": info.usage.total,
        "cost_usd": info.cost_usd,
        "status": info.status.value,
        "http_status": info.http_status,
        "error": info.error,
        "span": info.span,
        "started_at": info.started_at,
        "commit": step.commit_id,
    }


def target_timeline(repo: Repo, target: Target) -> Timeline:
    """The timeline a resolved ref names (``main`` when it names a session)."""
    return repo.session(target.session_id).timeline(target.timeline or "main")


def step_rows(repo: Repo, target: Target, limit: int | None = None) -> list[dict[str, Any]]:
    """``rewind log REF --json``: the steps of REF's timeline, up to REF's step when it names one."""
    steps = target_timeline(repo, target).steps
    if target.step is not None:
        steps = steps[: target.step]
    if limit is not None:
        steps = steps[:limit]
    return [step_row(s) for s in steps]


def timeline_rows(session: Session) -> list[dict[str, Any]]:
    """``rewind timelines --json``: each timeline with its fork point and end."""
    rows = []
    for t in session.timelines():
        end = t.end
        rows.append({
            "name": t.name,
            "ref": t.ref,
            "steps": len(t.steps),
            "fork_point": t.fork_point,
            "status": t.status.value,
            "exit_code": end.exit_code if end else None,
            "tip": t.tip,
        })
    return rows


def repository_status(repo: Repo) -> dict[str, Any]:
    """``rewind status --json``: where HEAD is and what the repository holds."""
    from rewind_vcs.errors import RefError

    sessions = repo.sessions()
    try:
        head = repo.resolve("HEAD")
    except RefError:
        head = None
    return {
        "repository": str(repo.path),
        "head": head.describe() if head else None,
        "detached": bool(head and head.step is not None),
        "sessions": len(sessions),
        "recording": [s.id for s in sessions if s.status.value == "recording"],
        "incomplete": [s.id for s in sessions if s.status.value == "incomplete"],
    }
