"""``rewind demo``: sample sessions to explore, with no API key and no network."""

from __future__ import annotations

import sys

import typer

from rewind_vcs.cli.common import info, open_repo
from rewind_vcs.cli.settings import current as settings


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo() -> None:
    """Record two runs of a sample multi-agent research agent against a built-in fake provider."""
    from rewind_vcs.demo.run import run_demo

    repo = open_repo(create=True)
    info("rewind demo: recording a research agent (supervisor, researcher with a search tool, writer) "
         "against a built-in fake provider; no API key, no network")
    result = run_demo(repo, python=sys.executable, env=settings().environ)
    r = result.replay
    good, bad = result.good, result.bad
    info(f"  good run   {good.session_id}  {good.steps} steps  (tag: good, name: research-good)")
    info(f"  stale run  {bad.session_id}  {bad.steps} steps  (tag: bad, name: research-stale): "
         "the search tool read a stale index, so the later steps differ")
    verdict = "output identical to the recording" if r.output_identical else "output DIFFERS"
    info(f"  replayed the stale run with the fake provider stopped: {len(r.stats.served)} steps served, "
         f"{len(r.stats.misses)} misses, {verdict}")
    info()
    info("Try next:")
    for line in _next_steps():
        info(f"  {line}")


def _next_steps() -> list[str]:
    steps = [
        "rewind log                       # the sessions, newest first",
        "rewind show latest               # the stale run as a trace tree: agents, LLM calls, tools",
        "rewind show bad@step-3           # one step, request and response decoded",
        "rewind replay bad                # zero API calls, identical output",
    ]
    from rewind_vcs.cli.main import app

    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    if "diff" in names:
        steps.append("rewind diff good bad             # step-aligned structural diff")
    if "bisect" in names:
        steps.append("rewind bisect good bad           # first divergent step and its likely cause")
    steps.append("rewind checkout bad@step-2 && rewind replay --upstream openai=http://127.0.0.1:8765 "
                 "--upstream anthropic=http://127.0.0.1:8765")
    steps.append("      # steps 1-2 cached, the rest live on a new timeline; start the fake provider first:")
    steps.append("      # python -m rewind_vcs.testing.fake_llm --port 8765")
    if "share" in names:
        steps.append("rewind share bad -o demo.html    # one self-contained HTML file")
    return steps
