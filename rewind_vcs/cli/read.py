"""Reading a repository: ``log`` (``list``), ``show`` (``inspect``), ``status``, ``timelines``.

The rows come from :mod:`rewind_vcs.analysis.rows` (the ``--json`` schema);
this module prints them. Every recorded string goes through
:mod:`rewind_vcs.cli.safe` on its way out, and ``show`` of a step prints a
bounded view of its bodies (``--full`` for all of them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from rewind_vcs.cli.common import (
    console,
    info,
    money,
    ms,
    open_repo,
    out,
    print_json,
    print_rows,
    when,
)
from rewind_vcs.cli.safe import safe_text, styled

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.text import Text

    from rewind_vcs.analysis.trace import TraceNode
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.resolve import Target

STATUS_STYLE = {"ok": "green", "failed": "red", "error": "red", "incomplete": "yellow", "recording": "cyan"}
#: ``show REF@step-N`` prints this much of each body (characters) unless ``--full``
BODY_LIMIT = 16 * 1024


def register(app: typer.Typer) -> None:
    app.command("log")(log)
    app.command("list", help="Alias of 'log' (for users of llm-rewind).")(log)
    app.command("show")(show)
    app.command("inspect", help="Alias of 'show' (for users of llm-rewind).")(show)
    app.command("status")(status)
    app.command("timelines")(timelines)


def _styled(status: str) -> tuple[str, str]:
    return status, STATUS_STYLE.get(status, "")


def log(
    ref: str = typer.Argument(None, help="A session or timeline: list its steps. Without it: list sessions."),
    n: int = typer.Option(None, "-n", "--max-count", help="Show at most N rows (N >= 1)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sessions, newest first; or, with REF, the steps of that timeline."""
    if n is not None and n < 1:
        from rewind_vcs.errors import ConfigError

        raise ConfigError(f"-n {n}: the number of rows to show must be 1 or more",
                          hint="omit -n to show them all")
    repo = open_repo()
    if ref is None:
        _log_sessions(repo, n, as_json)
    else:
        _log_steps(repo, ref, n, as_json)


def _log_sessions(repo: Repo, n: int | None, as_json: bool) -> None:
    from rewind_vcs.analysis.rows import session_rows

    listing = repo.session_listing()
    if listing.skipped:
        info(f"note: {len(listing.skipped)} session(s) could not be read and are not listed; "
             "run 'rewind fsck' for details")
    rows = session_rows(repo, n, listing.sessions)
    if as_json:
        print_json(rows)
        return
    if not rows:
        out("no sessions yet: record one with 'rewind record -- <command>' or try 'rewind demo'")
        return
    print_rows(
        ["id", "name", "started", "steps", "tokens", "cost", "status", "timelines"],
        [[r["id"], r["name"] or " ".join(r["command"]) or "-", when(r["started_at"]), str(r["steps"]),
          f"{r['tokens']:,}", money(r["cost_usd"]), r["status"], str(r["timelines"])] for r in rows],
        right={"steps", "tokens", "cost", "timelines"},
        styles={"status": STATUS_STYLE.get},
        max_width={"name": 32},
    )


def _log_steps(repo: Repo, ref: str, n: int | None, as_json: bool) -> None:
    from rewind_vcs.analysis.rows import step_rows, target_timeline

    target = repo.resolve(ref)
    rows = step_rows(repo, target, n)
    if as_json:
        print_json(rows)
        return
    timeline = target_timeline(repo, target)
    out(f"{timeline.session.id}/{timeline.name}", style="bold")
    print_rows(
        ["#", "kind", "provider", "model", "summary", "latency", "tokens", "status"],
        [[str(r["n"]), r["kind"], r["provider"], r["model"] or "-", " ".join((r["summary"] or "").split()),
          ms(r["latency_ms"]), f"{r['tokens']:,}", r["status"]] for r in rows],
        right={"#", "latency", "tokens"},
        styles={"status": STATUS_STYLE.get},
        max_width={"summary": 70, "model": 28},
    )


def show(
    ref: str = typer.Argument(..., help="A session, timeline (id/timeline) or step (ref@step-N)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    full: bool = typer.Option(False, "--full", help=f"Print whole bodies (a step shows the first "
                              f"{BODY_LIMIT // 1024} KB of each by default)."),
) -> None:
    """A session as a trace tree, or one step with its request and response decoded."""
    repo = open_repo()
    target = repo.resolve(ref)
    if target.step is not None:
        _show_step(repo, target, as_json, full)
    else:
        _show_session(repo, target, as_json)


def _show_session(repo: Repo, target: Target, as_json: bool) -> None:
    from rewind_vcs.analysis.rows import step_row, target_timeline
    from rewind_vcs.analysis.trace import build_trace

    timeline = target_timeline(repo, target)
    session = timeline.session
    tree = build_trace(timeline)
    end = timeline.end
    if as_json:
        from rewind_vcs.store.format import plain

        print_json({
            "id": session.id,
            "timeline": timeline.name,
            "session": plain(session.info),
            "status": timeline.status.value,
            "exit_code": end.exit_code if end else None,
            "steps": [step_row(s) for s in timeline.steps],
            "trace": tree.to_json(),
        })
        return
    from rich.tree import Tree

    info = session.info
    exit_text = "still recording or interrupted" if end is None else f"exit {end.exit_code}"
    root = Tree(styled(
        (f"{session.id}/{timeline.name}", "bold"), " ", info.name or "", " ",
        (f"{' '.join(info.command)} · {when(info.started_at)} · {exit_text} · "
         f"{tree.tokens:,} tok · {money(tree.cost_usd)}", "dim"), " ", _styled(timeline.status.value)))

    def add(parent: Tree, node: TraceNode) -> None:
        for child in node.children:
            add(parent.add(_node_label(child)), child)

    add(root, tree)
    console().print(root)


_ICONS = {"span": "agent", "llm": "llm", "tool": "tool", "http": "http", "tool_call": "-> tool"}


def _node_label(node: TraceNode) -> Text:
    parts: list[str | tuple[object, str]] = []
    if node.step is not None and node.kind != "tool_call":
        parts += [(f"#{node.step}", "bold"), " "]
    if icon := _ICONS.get(node.kind):
        parts += [(icon, "dim"), " "]
    parts.append((node.label, "bold cyan") if node.kind == "span" else node.label)
    if node.kind != "tool_call":
        if node.model:
            parts += [" ", (node.model, "magenta")]
        parts += [" ", (f"{node.tokens:,} tok, {ms(node.latency_ms)}, {money(node.cost_usd)}", "dim")]
    if node.status == "error":
        parts += [" ", (node.error or "error", "red")]
    return styled(*parts)


def _body_view(data: bytes, content_type: str | None) -> Any:
    from rewind_vcs.store.session import decode_json

    if not data:
        return ""
    parsed = decode_json(data)
    if parsed is not None:
        return parsed
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return f"<{len(data):,} bytes of binary data ({content_type or 'unknown type'})>"
    return text


def _size(n: int) -> str:
    return f"{n:,} bytes" if n < 1024 else f"{n / 1024:,.0f} KB" if n < 1024 * 1024 else f"{n / 2**20:,.1f} MB"


def _show_step(repo: Repo, target: Target, as_json: bool, full: bool) -> None:
    from rewind_vcs.analysis.rows import step_row
    from rewind_vcs.store.format import plain

    step = repo.step(target.spec)
    req, resp = step.request, step.response
    normalised = None
    try:
        from rewind_vcs.providers import normalise

        normalised = plain(normalise(step.exchange, hint=step.info.provider))
    except Exception:  # noqa: BLE001 - raw bytes still show
        normalised = None
    data: dict[str, Any] = {
        "session": target.session_id,
        "timeline": target.timeline,
        "step": step_row(step),
        "request": {"method": req.method, "url": f"{req.scheme}://{req.host}{req.path}",
                    "headers": req.headers, "body": _body_view(req.body, req.header("content-type"))},
        "response": {"status": resp.status, "headers": resp.headers, "error": resp.error.value if resp.error else None,
                     "chunks": len(resp.chunks),
                     "body": _body_view(resp.body, resp.header("content-type"))},
        "normalised": normalised,
    }
    if as_json:
        print_json(data)
        return
    row: dict[str, Any] = data["step"]
    out(styled((f"{target.session_id}/{target.timeline}@step-{row['n']}", "bold"), f"  {row['kind']} ",
               row["provider"] or "", " ", (row["model"] or "", "magenta"),
               f"  {ms(row['latency_ms'])}  {row['tokens']:,} tok  {money(row['cost_usd'])}  ",
               _styled(row["status"])))
    if row["error"]:
        out(styled(("error:", "red"), " ", row["error"]))
    hint = f"rewind show {target.describe()} --full"
    _panel(f"request  {req.method} {data['request']['url']}", data["request"]["body"], full, hint)
    if normalised and normalised.get("output_text") is not None and resp.is_stream:
        _panel(f"response {resp.status} (stream, {len(resp.chunks)} chunks; text reassembled)",
               normalised.get("output_text") or "", full, hint)
    else:
        _panel(f"response {resp.status}", data["response"]["body"], full, hint)


def _panel(title: str, value: Any, full: bool, hint: str) -> None:
    """One body in a titled box: JSON pretty-printed and highlighted, text as it is; at most
    :data:`BODY_LIMIT` characters of it unless ``full``, with a line saying what was cut."""
    from rich.panel import Panel
    from rich.text import Text

    is_json = isinstance(value, dict | list)
    if is_json:
        import orjson

        from rewind_vcs.cli.safe import safe_json_bytes

        text = safe_json_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2)).decode()
    else:
        text = value if isinstance(value, str) else repr(value)
    total = len(text)
    if not full and total > BODY_LIMIT:
        text = text[:BODY_LIMIT]
    text = safe_text(text, multiline=True)
    if full and total > BODY_LIMIT:  # a box and highlighting cost minutes on megabytes: plain text
        out(styled(("── " + title, "bold")))
        import sys

        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        return
    body: RenderableType
    if is_json:
        from rich.syntax import Syntax

        body = Syntax(text, "json", word_wrap=True)
    else:
        body = Text(text)
    console().print(Panel(body, title=styled(title), title_align="left"))
    if total > len(text) and not full:
        out(f"… {_size(total - BODY_LIMIT)} more of this body not shown ({_size(total)} in all): {hint}",
            style="dim")


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Where HEAD is, and what the repository holds."""
    from rewind_vcs.analysis.rows import repository_status

    repo = open_repo()
    st = repository_status(repo)
    if as_json:
        print_json(st)
        return
    out(f"repository {st['repository']}")
    head, recording, incomplete = st["head"], st["recording"], st["incomplete"]
    if head is None:
        out("HEAD is not checked out (rewind checkout <session>)")
    elif st["detached"]:
        out(f"HEAD detached at {head} (rewind replay forks a new timeline from here)")
    else:
        out(f"On timeline {head}")
    out(f"{st['sessions']} sessions" + (f", {len(recording)} recording" if recording else "")
        + (f", {len(incomplete)} incomplete" if incomplete else ""))


def timelines(
    ref: str = typer.Argument("latest", help="A session (default: latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The timelines of a session with their fork points."""
    from rewind_vcs.analysis.rows import timeline_rows

    repo = open_repo()
    target = repo.resolve(ref)
    session = repo.session(target.session_id)
    rows = timeline_rows(session)
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=styled(f"session {session.id}"), box=None, header_style="bold", title_justify="left")
    for col in ("timeline", "steps", "forked at", "status", "exit"):
        table.add_column(col)
    for r in rows:
        fork = "-" if r["fork_point"] is None else f"step-{r['fork_point']}"
        table.add_row(styled(r["name"]), str(r["steps"]), fork, styled(_styled(r["status"])),
                      "-" if r["exit_code"] is None else str(r["exit_code"]))
    console().print(table)
