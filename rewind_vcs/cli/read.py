"""Reading a repository: ``log`` (``list``), ``show`` (``inspect``), ``status``, ``timelines``."""

from __future__ import annotations

from typing import Any

import typer

from rewind_vcs.cli.common import console, money, ms, open_repo, print_json, when

STATUS_STYLE = {"ok": "green", "failed": "red", "error": "red", "incomplete": "yellow", "recording": "cyan"}


def register(app: typer.Typer) -> None:
    app.command("log")(log)
    app.command("list", help="Alias of 'log' (for users of llm-rewind).")(log)
    app.command("show")(show)
    app.command("inspect", help="Alias of 'show' (for users of llm-rewind).")(show)
    app.command("status")(status)
    app.command("timelines")(timelines)


def _styled(status: str) -> str:
    style = STATUS_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def log(
    ref: str = typer.Argument(None, help="A session or timeline: list its steps. Without it: list sessions."),
    n: int = typer.Option(None, "-n", "--max-count", help="Show at most N rows."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sessions, newest first; or, with REF, the steps of that timeline."""
    repo = open_repo()
    if ref is None:
        _log_sessions(repo, n, as_json)
    else:
        _log_steps(repo, ref, n, as_json)


def _log_sessions(repo, n: int | None, as_json: bool) -> None:
    listing = repo.session_listing()
    sessions = listing.sessions
    if listing.skipped:
        from rewind_vcs.cli.common import info

        info(f"note: {len(listing.skipped)} session(s) could not be read and are not listed; "
             "run 'rewind fsck' for details")
    if n is not None:
        sessions = sessions[:n]
    if as_json:
        print_json([s.to_json() for s in sessions])
        return
    if not sessions:
        console().print("no sessions yet: record one with 'rewind record -- <command>' or try 'rewind demo'",
                        soft_wrap=True)
        return
    from rewind_vcs.cli.common import print_rows

    print_rows(
        ["id", "name", "started", "steps", "tokens", "cost", "status", "timelines"],
        [[s.id, s.name or " ".join(s.command) or "-", when(s.started_at), str(s.steps), f"{s.tokens:,}",
          money(s.cost_usd), s.status.value, str(s.timelines)] for s in sessions],
        right={"steps", "tokens", "cost", "timelines"},
        styles={"status": STATUS_STYLE.get},
        max_width={"name": 32},
    )


def step_row(step) -> dict[str, Any]:
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


def _log_steps(repo, ref: str, n: int | None, as_json: bool) -> None:
    target = repo.resolve(ref)
    timeline = repo.session(target.session_id).timeline(target.timeline or "main")
    steps = timeline.steps
    if target.step is not None:
        steps = steps[: target.step]
    if n is not None:
        steps = steps[:n]
    rows = [step_row(s) for s in steps]
    if as_json:
        print_json(rows)
        return
    from rewind_vcs.cli.common import print_rows

    console().print(f"[bold]{timeline.session.id}/{timeline.name}[/bold]")
    print_rows(
        ["#", "kind", "provider", "model", "summary", "latency", "tokens", "status"],
        [[str(r["n"]), r["kind"], r["provider"], r["model"] or "-", (r["summary"] or "").replace("\n", " "),
          ms(r["latency_ms"]), f"{r['tokens']:,}", r["status"]] for r in rows],
        right={"#", "latency", "tokens"},
        styles={"status": STATUS_STYLE.get},
        max_width={"summary": 70, "model": 28},
    )


def show(
    ref: str = typer.Argument(..., help="A session, timeline (id/timeline) or step (ref@step-N)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A session as a trace tree, or one step with its request and response decoded."""
    repo = open_repo()
    target = repo.resolve(ref)
    if target.step is not None:
        _show_step(repo, target, as_json)
    else:
        _show_session(repo, target, as_json)


def _show_session(repo, target, as_json: bool) -> None:
    from rewind_vcs.analysis.trace import build_trace

    session = repo.session(target.session_id)
    timeline = session.timeline(target.timeline or "main")
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

    def label(node) -> str:
        bits = []
        if node.step is not None and node.kind != "tool_call":
            bits.append(f"[bold]#{node.step}[/bold]")
        icon = {"span": "agent", "llm": "llm", "tool": "tool", "http": "http", "tool_call": "-> tool"}.get(node.kind)
        if icon:
            bits.append(f"[dim]{icon}[/dim]")
        bits.append(node.label if node.kind != "span" else f"[bold cyan]{node.label}[/bold cyan]")
        if node.kind != "tool_call":
            if node.model:
                bits.append(f"[magenta]{node.model}[/magenta]")
            bits.append(f"[dim]{node.tokens:,} tok, {ms(node.latency_ms)}, {money(node.cost_usd)}[/dim]")
        if node.status == "error":
            bits.append(f"[red]{node.error or 'error'}[/red]")
        return " ".join(bits)

    info = session.info
    exit_text = "still recording or interrupted" if end is None else f"exit {end.exit_code}"
    root = Tree(f"[bold]{session.id}/{timeline.name}[/bold] {info.name or ''} "
                f"[dim]{' '.join(info.command)} · {when(info.started_at)} · {exit_text} · "
                f"{tree.tokens:,} tok · {money(tree.cost_usd)}[/dim] {_styled(timeline.status.value)}")

    def add(parent, node) -> None:
        for child in node.children:
            add(parent.add(label(child)), child)

    add(root, tree)
    console().print(root)


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


def _show_step(repo, target, as_json: bool) -> None:
    from rewind_vcs.store.format import plain

    step = repo.step(target.spec)
    req, resp = step.request, step.response
    normalised = None
    try:
        from rewind_vcs.providers import normalise

        normalised = plain(normalise(step.exchange, hint=step.info.provider))
    except Exception:  # noqa: BLE001 - raw bytes still show
        normalised = None
    data = {
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
    from rich.panel import Panel
    from rich.pretty import Pretty
    from rich.syntax import Syntax

    row = data["step"]
    c = console()
    c.print(f"[bold]{target.session_id}/{target.timeline}@step-{row['n']}[/bold]  {row['kind']} "
            f"{row['provider']} [magenta]{row['model'] or ''}[/magenta]  {ms(row['latency_ms'])}  "
            f"{row['tokens']:,} tok  {money(row['cost_usd'])}  {_styled(row['status'])}")
    if row["error"]:
        c.print(f"[red]error:[/red] {row['error']}")

    def body(value: Any):
        if isinstance(value, dict | list):
            import orjson

            return Syntax(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode(), "json", word_wrap=True)
        return Pretty(value) if not isinstance(value, str) else value

    c.print(Panel(body(data["request"]["body"]), title=f"request  {req.method} {data['request']['url']}",
                  title_align="left"))
    if normalised and normalised.get("output_text") is not None and resp.is_stream:
        c.print(Panel(normalised.get("output_text") or "", title=f"response {resp.status} (stream, "
                      f"{len(resp.chunks)} chunks; text reassembled)", title_align="left"))
    else:
        c.print(Panel(body(data["response"]["body"]), title=f"response {resp.status}", title_align="left"))


def status(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Where HEAD is, and what the repository holds."""
    from rewind_vcs.errors import RefError

    repo = open_repo()
    sessions = repo.sessions()
    try:
        head = repo.resolve("HEAD")
        head_text = head.describe()
    except RefError:
        head, head_text = None, None
    recording = [s.id for s in sessions if s.status.value == "recording"]
    incomplete = [s.id for s in sessions if s.status.value == "incomplete"]
    if as_json:
        print_json({
            "repository": str(repo.path),
            "head": head_text,
            "detached": bool(head and head.step is not None),
            "sessions": len(sessions),
            "recording": recording,
            "incomplete": incomplete,
        })
        return
    c = console()
    c.print(f"repository {repo.path}")
    if head is None:
        c.print("HEAD is not checked out (rewind checkout <session>)")
    elif head.step is not None:
        c.print(f"HEAD detached at {head_text} (rewind replay forks a new timeline from here)", soft_wrap=True)
    else:
        c.print(f"On timeline {head_text}")
    c.print(f"{len(sessions)} sessions" + (f", {len(recording)} recording" if recording else "")
            + (f", {len(incomplete)} incomplete" if incomplete else ""))


def timelines(
    ref: str = typer.Argument("latest", help="A session (default: latest)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The timelines of a session with their fork points."""
    repo = open_repo()
    target = repo.resolve(ref)
    session = repo.session(target.session_id)
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
    if as_json:
        print_json(rows)
        return
    from rich.table import Table

    table = Table(title=f"session {session.id}", box=None, header_style="bold", title_justify="left")
    for col in ("timeline", "steps", "forked at", "status", "exit"):
        table.add_column(col)
    for r in rows:
        fork = "-" if r["fork_point"] is None else f"step-{r['fork_point']}"
        table.add_row(r["name"], str(r["steps"]), fork, _styled(r["status"]),
                      "-" if r["exit_code"] is None else str(r["exit_code"]))
    console().print(table)
