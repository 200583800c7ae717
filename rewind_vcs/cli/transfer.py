"""``export`` and ``import``: sessions in one ``.rw`` file, to attach to a bug report."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rewind_vcs.cli.common import err_console, info, open_repo, print_json

if TYPE_CHECKING:
    from rewind_vcs.transfer.rwformat import ProgressFn


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.command("import")(import_)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n:,} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"


@contextmanager
def _progress() -> Iterator[ProgressFn | None]:
    """A rich progress bar per stage on a terminal (stderr); nothing otherwise."""
    console = err_console()
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskID,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from rewind_vcs.transfer.rwformat import Stage

    bars = Progress(TextColumn("{task.description:<20}", markup=False), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                    console=console, transient=True)
    tasks: dict[str, TaskID] = {}

    def update(stage: Stage, done: int, total: int) -> None:
        name = str(stage)
        if name not in tasks:
            tasks[name] = bars.add_task(name, total=total or None)
        bars.update(tasks[name], completed=done, total=total or None)

    with bars:
        yield update


def export(
    refs: list[str] = typer.Argument(None, help="Sessions to export: any ref (latest, a name, an id prefix, a tag)."),
    all_refs: bool = typer.Option(False, "--all", help="Export every session, tag, baseline and note."),
    output: Path = typer.Option(..., "-o", "--output", help="The file to write (e.g. incident.rw)."),
    as_json: bool = typer.Option(False, "--json", help="Print what was exported as JSON."),
) -> None:
    """Write sessions (all their timelines, and the tags pointing into them) to one .rw file."""
    from rewind_vcs.errors import ConfigError
    from rewind_vcs.transfer.rwexport import export_rw

    if refs and all_refs:
        raise ConfigError("give sessions to export or --all, not both")
    if not refs and not all_refs:
        raise ConfigError("nothing to export", hint="name sessions (e.g. 'rewind export latest -o run.rw') or use --all")
    repo = open_repo()
    with _progress() as progress:
        result = export_rw(repo, refs or [], output=output, all_refs=all_refs, progress=progress)
    m = result.manifest
    if as_json:
        print_json({"file": str(result.path), "file_bytes": result.file_bytes, "pack_bytes": result.pack_bytes,
                    **m.to_json()})
    c = m.counts
    info(f"Exported {c.sessions} session{'s' * (c.sessions != 1)} "
         f"({c.timelines} timeline{'s' * (c.timelines != 1)}, {c.steps} steps, "
         f"{c.refs} refs) to {result.path}: {_size(result.file_bytes)} "
         f"(the same objects as a git pack: {_size(result.pack_bytes)})")


def import_(
    file: Path = typer.Argument(..., help="A .rw file written by 'rewind export'."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Verify the file and say what would change; change nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Import the sessions of a .rw file (verified in full first; existing refs are never moved)."""
    from rich.markup import escape

    from rewind_vcs.errors import ConflictError, FormatError, NotARepositoryError
    from rewind_vcs.transfer.incoming import visible
    from rewind_vcs.transfer.rwimport import apply_rw, load_rw

    with _progress() as progress:
        rw = load_rw(file, progress)  # every check, before any repository is opened
        try:
            repo = open_repo(create=not dry_run)
        except NotARepositoryError:
            if not dry_run:
                raise
            c = rw.manifest.counts
            info(f"{file} is valid: {c.sessions} session{'s' * (c.sessions != 1)}, {c.refs} refs; "
                 "there is no repository here yet ('rewind import' would create one)")
            return
        result = apply_rw(repo, rw, dry_run=dry_run, progress=progress)
    if as_json:
        print_json(result.to_json())
    names = escape(", ".join(visible(s.name or s.id, 40) for s in rw.manifest.sessions))
    n = len(rw.manifest.sessions)
    what = f"{n} session{'s' * (n != 1)}" + (f" ({names})" if names else "")
    if dry_run:
        verb = "would add" if result.changed else "would change nothing:"
        info(f"{file} is valid: {what}; importing it {verb} "
             + (f"{result.objects_added} objects and {len(result.created)} refs" if result.changed
                else "everything is already here"))
    elif result.changed:
        info(f"Imported {what} from {file}: {result.objects_added} objects, {len(result.created)} refs created"
             + (f", {len(result.refs) - len(result.created) - len(result.conflicts)} already here"
                if len(result.refs) > len(result.created) + len(result.conflicts) else ""))
    elif result.skipped and not result.refs:
        info(f"Nothing imported from {file}: everything in it was skipped")
    else:
        info(f"Already imported: {file} changes nothing here ({what}, {len(result.refs)} refs already present)")
    for skip in result.skipped:
        info(f"warning: {skip.line()}", style="yellow")
    for conflict in result.conflicts:
        info(f"conflict: {visible(conflict.reason, 300)}; left as it is", style="yellow")
    if result.conflicts:
        raise ConflictError(
            f"{len(result.conflicts)} ref{'s' * (len(result.conflicts) != 1)} of {file} conflict with this "
            "repository and were not changed",
            hint="rename or delete the local refs (e.g. 'rewind tag -d NAME') and import again",
        )
    if result.skipped:
        raise FormatError(
            f"{len(result.skipped)} session{'s' * (len(result.skipped) != 1)} or refs of {file} were skipped "
            "(see the warnings above)",
            hint="the rest was imported" if result.changed else "nothing else was in the file",
        )
