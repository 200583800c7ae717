"""Remotes, the git way: ``remote add|remove|list``, ``push``, ``fetch``, ``pull``, ``clone``.

The library (rewind_vcs.transfer) does the work; this module reads the
credentials from the environment (``REWIND_GIT_TOKEN`` or ``GIT_TOKEN``,
``REWIND_GIT_USERNAME``, the ssh agent, default ssh keys, git's credential
helpers), draws progress bars when stderr is a terminal, and prints git's
kind of per-ref lines.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rewind_vcs.cli.common import err_console, info, open_repo, print_json
from rewind_vcs.cli.settings import current as settings

if TYPE_CHECKING:
    from rewind_vcs.transfer.gitnet import Credentials, Progress
    from rewind_vcs.transfer.refupdate import TransferResult

#: Per-ref lines shown before "... and N more" (a first clone of a big team remote has thousands).
MAX_LINES = 20
_SSH_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")


def register(app: typer.Typer) -> None:
    from rewind_vcs.cli.helpfmt import WrappingGroup

    group = typer.Typer(
        cls=WrappingGroup,
        help="Remotes: the git servers sessions are pushed to and fetched from (any git URL or path).",
        no_args_is_help=False,
        add_completion=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    group.callback(invoke_without_command=True)(remote)
    group.command("add")(remote_add)
    group.command("remove")(remote_remove)
    group.command("rm", help="Alias of 'remove'.")(remote_remove)
    group.command("list")(remote_list)
    app.add_typer(group, name="remote")
    app.command("push")(push)
    app.command("fetch")(fetch)
    app.command("pull")(pull)
    app.command("clone")(clone)


# -- remote add|remove|list ------------------------------------------------------------------


def remote(ctx: typer.Context) -> None:
    """List remotes (as 'rewind remote list'), or manage them with a subcommand."""
    if ctx.invoked_subcommand is None:
        remote_list(as_json=False)


def remote_add(
    name: str = typer.Argument(..., help="Remote name, e.g. origin."),
    url: str = typer.Argument(..., help="A path, file://, git://, ssh://, user@host:path or https:// URL."),
) -> None:
    """Add a remote (a bare repository on a git host, a shared path, a teammate's project)."""
    from rewind_vcs.transfer.remotes import add_remote

    added = add_remote(open_repo(), name, url)
    info(f"Added remote '{added.name}' ({added.url})")


def remote_remove(name: str = typer.Argument(..., help="Remote name.")) -> None:
    """Remove a remote (its sessions stay: they are this repository's too)."""
    from rewind_vcs.transfer.remotes import remove_remote

    remove_remote(open_repo(), name)
    info(f"Removed remote '{name}'")


def remote_list(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The configured remotes and their URLs."""
    from rewind_vcs.transfer.remotes import list_remotes

    remotes = list_remotes(open_repo())
    if as_json:
        print_json([r.to_json() for r in remotes])
        return
    lines = []
    for r in remotes:
        lines.append(f"{r.name}\t{r.url}\n")
        if r.push_url and r.push_url != r.url:
            lines.append(f"{r.name}\t{r.push_url} (push)\n")
    sys.stdout.write("".join(lines))
    sys.stdout.flush()


# -- push, fetch, pull, clone ---------------------------------------------------------------------


def push(
    remote: str = typer.Argument(None, help="Remote name or URL (default: origin)."),
    refs: list[str] = typer.Argument(None, help="Sessions to push (any ref: latest, a tag, an id). Default: all."),
    force: bool = typer.Option(False, "-f", "--force", help="Replace diverged timelines and moved tags."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Push sessions, timelines, tags, baselines and notes to a remote; the pre-push hook may veto."""
    from rewind_vcs.transfer.push import push as push_to
    from rewind_vcs.transfer.remotes import default_remote_name

    repo = open_repo()
    with _progress() as progress:
        result = push_to(repo, remote or default_remote_name(repo), refs or (), force=force,
                         credentials=credentials(), progress=progress)
    _report(result, "To", as_json, nothing="Everything up-to-date")


def fetch(
    remote: str = typer.Argument(None, help="Remote name or URL (default: origin)."),
    force: bool = typer.Option(False, "-f", "--force", help="Take diverged timelines and moved tags as the remote has them."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fetch the remote's sessions into this repository (fast-forward only unless --force)."""
    _fetch(remote, force, as_json, nothing=None)


def pull(
    remote: str = typer.Argument(None, help="Remote name or URL (default: origin)."),
    force: bool = typer.Option(False, "-f", "--force", help="Take diverged timelines and moved tags as the remote has them."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Fetch and you are done: there is no work tree to merge, sessions land in refs/sessions/ directly."""
    _fetch(remote, force, as_json, nothing="Already up to date.")


def clone(
    url: str = typer.Argument(..., help="A path, file://, git://, ssh://, user@host:path or https:// URL."),
    directory: str = typer.Argument(None, help="Where to make .rewind/ (default: named after the URL). "
                                    "It may exist, e.g. a checkout of the agent's code."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Make DIR/.rewind with 'origin' set to URL and fetch every session, as 'git clone' does."""
    from rewind_vcs.transfer.fetch import clone as clone_repo
    from rewind_vcs.transfer.remotes import default_clone_directory

    target = Path(directory or default_clone_directory(url))
    with _progress() as progress:
        done = clone_repo(url, target, credentials=credentials(), progress=progress)
    result = done.fetch
    if as_json:
        print_json({"path": str(done.repo.path), **result.to_json()})
    _warn_skipped(result)
    sessions = len(done.repo.session_ids())
    _say(f"Cloned {url} into {target / '.rewind'}: {sessions} sessions, {len(result.updates)} refs, "
         f"{_size(result.bytes)}")
    if not result.updates:
        _say("warning: you appear to have cloned an empty repository")
    _say(f"next: cd {target} && rewind log")
    result.check()


def _fetch(remote: str | None, force: bool, as_json: bool, nothing: str | None) -> None:
    from rewind_vcs.transfer.fetch import fetch as fetch_from
    from rewind_vcs.transfer.remotes import default_remote_name

    repo = open_repo()
    with _progress() as progress:
        result = fetch_from(repo, remote or default_remote_name(repo), force=force, credentials=credentials(),
                          progress=progress)
    _report(result, "From", as_json, nothing=nothing)


# -- what the CLI adds: credentials, progress, git's lines ---------------------------------------


def credentials() -> Credentials:
    """Credentials as git users expect them: a token in the environment, the ssh agent, default keys,
    git's credential helpers (which may prompt on a terminal, as git does)."""
    from rewind_vcs.transfer.gitnet import Credentials

    home = Path.home() / ".ssh"
    keys = tuple(home / k for k in _SSH_KEYS if (home / k).is_file() and (home / f"{k}.pub").is_file())
    env = settings()
    helper_env = dict(env.environ)
    if not sys.stdin.isatty():
        helper_env["GIT_TERMINAL_PROMPT"] = "0"
    return Credentials(
        token=env.git_token,
        username=env.git_username,
        ssh_agent=env.ssh_agent,
        ssh_keys=keys,
        credential_helper=shutil.which("git") is not None,
        helper_env=helper_env,
    )


_PHASE_TEXT = {
    "connecting": "connecting",
    "compressing": "compressing objects",
    "sending": "sending objects",
    "receiving": "receiving objects",
    "resolving": "resolving deltas",
}


@contextmanager
def _progress() -> Iterator[Callable[[Progress], None] | None]:
    """A rich progress bar on stderr, one line per phase; none when stderr is not a terminal.

    While libgit2 builds the pack nothing is reported, so "compressing" has no
    total: rich pulses the bar, which says "busy" without inventing a number.
    """
    con = err_console()
    if not con.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, SpinnerColumn, TaskID, TextColumn
    from rich.progress import (
        Progress as Bars,  # not the library's Progress, which update() receives
    )

    from rewind_vcs.transfer.incoming import visible

    bar = Bars(SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
               TextColumn("{task.fields[count]}"), console=con, transient=True)
    current: dict[str, TaskID] = {}
    phase: list[str] = []

    def update(p: Progress) -> None:
        text = _PHASE_TEXT.get(p.phase.value, p.phase.value)
        if p.message:  # the server's own words: never markup, never control characters
            text = visible(p.message.replace("\r", " ").strip(), 60) or text
        if p.phase.value not in phase[-1:]:
            if "task" in current:
                bar.update(current["task"], visible=False)
            phase.append(p.phase.value)
            current["task"] = bar.add_task(text, total=p.total, count="")
        count = f"{p.done}/{p.total}" if p.total else ""
        if p.bytes:
            count += f"  {_size(p.bytes)}"
        bar.update(current["task"], description=text, completed=p.done, total=p.total, count=count)

    with bar:
        yield update


def _report(result: TransferResult, word: str, as_json: bool, nothing: str | None) -> None:
    """git's per-ref lines on stderr (JSON on stdout with --json), then fail on any rejected ref."""
    if as_json:
        print_json(result.to_json())
    _warn_skipped(result)
    changed, rejected = result.changed, result.rejected
    if changed or len(rejected) > 1:  # a single rejection is the error line itself
        _say(f"{word} {result.url}")
        for u in changed[:MAX_LINES]:
            _say(u.line())
        if len(changed) > MAX_LINES:
            _say(f"   ... and {len(changed) - MAX_LINES} more")
        if len(rejected) > 1:
            for u in rejected:
                _say(u.line())
    elif nothing and not rejected:
        _say(nothing)
    behind = [u for u in result.updates if u.status.value == "behind"]
    if behind:
        _say(f"note: {len(behind)} refs on {result.url} are ahead of this repository; 'rewind fetch' takes them"
             if word == "To" else
             f"note: {len(behind)} refs here are ahead of {result.url}; 'rewind push' shares them")
    result.check()


def _warn_skipped(result: TransferResult) -> None:
    """One line per ref or session not taken (already made visible by the library), as git warns."""
    for skip in result.skipped[:MAX_LINES]:
        _say(f"warning: {skip.line()}")
    if len(result.skipped) > MAX_LINES:
        _say(f"warning: ... and {len(result.skipped) - MAX_LINES} more skipped (see --json)")


def _say(line: str) -> None:
    info(line)  # plain text, controls made visible: URLs and ref names come from the remote


def _size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} bytes"
