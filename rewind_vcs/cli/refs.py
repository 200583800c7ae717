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
    from rewind_vcs.errors import RefError
    from rewind_vcs.store.refs import TAGS, valid_tag_name

    repo = open_repo()
    git = repo.git
    if delete:
        ref_obj = git.references.get(TAGS + delete)
        if ref_obj is None:
            raise RefError(f"tag '{delete}' not found", hint="see 'rewind tag'")
        ref_obj.delete()
        info(f"Deleted tag '{delete}'")
        return
    if name is None:
        rows = []
        for r in sorted(git.references.iterator(), key=lambda r: r.name):
            if r.name.startswith(TAGS):
                try:
                    target = repo.resolve(r.name[len(TAGS):]).describe()
                except Exception:  # noqa: BLE001 - a foreign tag still lists
                    target = str(r.target)[:12]
                rows.append({"name": r.name[len(TAGS):], "target": target, "commit": str(r.peel().id)})
        if as_json:
            print_json(rows)
        else:
            import sys

            from rewind_vcs.cli.safe import safe_text

            sys.stdout.write("".join(f"{safe_text(r['name'])}\t{safe_text(r['target'])}\n" for r in rows))
            sys.stdout.flush()
        return
    if not valid_tag_name(name):
        raise RefError(f"'{name}' is not a valid tag name",
                       hint="use letters, digits, '.', '_' and '-', not 'step-N', 'HEAD' or 'latest'")
    target = repo.resolve(ref or "HEAD")
    if git.references.get(TAGS + name) is not None and not force:
        raise RefError(f"tag '{name}' already exists", hint="use -f to move it, or -d to delete it")
    import pygit2

    git.references.create(TAGS + name, pygit2.Oid(hex=target.commit), force=force)
    info(f"Tagged {target.describe()} as '{name}'")
