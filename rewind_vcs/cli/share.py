"""Sharing: ``share`` writes a session as one self-contained HTML file."""

from __future__ import annotations

import sys

import typer

from rewind_vcs.cli.common import info, open_repo, print_json


def register(app: typer.Typer) -> None:
    app.command("share")(share)


def share(
    ref: str = typer.Argument("latest", help="A session, timeline (id/timeline) or step (ref@step-N)."),
    output: str = typer.Option(
        None, "-o", "--output", help="The HTML file to write ('-' for stdout; default rewind-<id>.html)."
    ),
    include_content: bool = typer.Option(
        False,
        "--include-content",
        help="Also include prompts, outputs, tool arguments and the command line (not safe to post publicly).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """One self-contained HTML file of a session: trace tree, steps, timelines, errors.

    Without --include-content the file holds no prompt, output, tool argument or
    command-line argument, so it is safe to post anywhere. It opens offline.
    """
    from rewind_vcs.share.html import build_page, write_page

    if output == "-" and sys.stdout.isatty():
        from rewind_vcs.errors import ConfigError

        raise ConfigError("not writing an HTML page to the terminal",
                          hint="redirect it ('rewind share -o - > page.html') or give -o FILE")
    repo = open_repo()
    page = build_page(repo, ref, include_content=include_content)
    if output == "-":
        sys.stdout.write(page.html)
        sys.stdout.flush()
        return
    path = write_page(page, output or f"rewind-{page.data.session_id}.html")
    if as_json:
        print_json(page.to_json(str(path)))
        return
    size = page.to_json()["bytes"]
    what = (
        "includes prompts and outputs: share it only with people allowed to see them"
        if include_content
        else "content-free: no prompts, outputs or arguments, safe to share"
    )
    info(f"wrote {path} ({size / 1024:.0f} KB; session {page.data.session_id}/{page.data.timeline}, "
         f"{page.data.steps} steps; {what})")
