"""Moving and naming: ``checkout`` and ``tag``."""

from __future__ import annotations

import typer

from rewind_vcs.cli.common import info, open_repo, print_json


def register(app: typer.Typer) -> None:
    app.command("checkout")(checkout)
    app.command("tag")(tag)


def checkout(ref: str = typer.Argument(..., help="A session, timeline or step (ref@step-N, step-N).")) -> None:
    """Move HEAD: onto a timeline, or detached at a step (where 'rewind replay' forks)."""
    from rewind_vcs.store.refs import timeline_ref

    repo = open_repo()
    target = repo.resolve(ref)
    if target.step is None and target.timeline is not None:
        repo.set_head(timeline_ref(target.session_id, target.timeline))
        info(f"HEAD is now on timeline {target.session_id}/{target.timeline}")
    else:
        repo.set_head(target.commit)
        info(f"HEAD is now detached at {target.describe()}; "
             "'rewind replay' serves steps up to here and records the rest as a new timeline")


def tag(
    name: str = typer.Argument(None, help="Tag name (omit to list tags)."),
    ref: str = typer.Argument(None, help="What to tag (default: HEAD)."),
    delete: str = typer.Option(None, "-d", "--delete", help="Delete this tag."),
    force: bool = typer.Option(False, "-f", "--force", help="Replace an existing tag."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON when listing."),
) -> None:
    """List, create or delete tags (refs/tags/NAME), like git's lightweight tags."""
    repo = open_repo()
    if delete:
        repo.delete_tag(delete)
        info(f"Deleted tag '{delete}'")
        return
    if name is None:
        tags = repo.tags()
        if as_json:
            print_json([t.to_json() for t in tags])
        else:
            import sys

            from rewind_vcs.cli.safe import safe_text

            sys.stdout.write("".join(f"{safe_text(t.name)}\t{safe_text(t.target)}\n" for t in tags))
            sys.stdout.flush()
        return
    made = repo.create_tag(name, ref or "HEAD", force=force)
    info(f"Tagged {made.target} as '{made.name}'")
