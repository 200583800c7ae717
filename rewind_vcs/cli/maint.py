"""Repository upkeep: ``init``, ``gc``, ``fsck``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rewind_vcs.cli.common import info, open_repo, out, print_json
from rewind_vcs.cli.safe import styled

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("gc")(gc)
    app.command("fsck")(fsck)


def init(path: Path = typer.Argument(Path("."), help="Directory to hold .rewind/ (default: here).")) -> None:
    """Create .rewind/ (a bare git repository), its pre-push hook and your local CA; running it again is harmless."""
    from rewind_vcs.proxy.tls import CertificateAuthority
    from rewind_vcs.store.repo import DIRNAME, Repo

    existed = (path / DIRNAME).exists()
    repo = Repo.init(path)
    ca = prepare_ca(repo)
    CertificateAuthority.load_or_create(ca)
    _install_pre_push(repo)
    verb = "Reinitialized existing" if existed else "Initialized empty"
    info(f"{verb} rewind repository in {repo.path}")


def user_ca_dir() -> Path:
    """Where your CA lives, outside every project: $REWIND_CA_DIR, else $XDG_DATA_HOME/rewind/ca."""
    from rewind_vcs.cli.settings import current

    environ = current().environ
    override = environ.get("REWIND_CA_DIR")
    if override:
        return Path(override).expanduser()
    data = environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "rewind" / "ca"


def prepare_ca(repo: Repo) -> Path:
    """The per-user CA directory for a proxy in ``repo``; an old in-repository key is moved out (said once)."""
    from rewind_vcs.proxy.tls import migrate_repository_ca
    from rewind_vcs.store.repo import ignore_everything

    target = user_ca_dir()
    if migrate_repository_ca(repo.path / "ca", target):
        info(f"rewind: moved the CA private key out of {repo.path / 'ca'} to {target} "
             "(a key never belongs in a project folder)")
    ignore_everything(repo.path)
    return target


def _install_pre_push(repo: Repo) -> None:
    """Install the sample pre-push hook (refuses pushes holding key shapes) unless one is there."""
    import stat
    from importlib import resources

    hook = repo.path / "hooks" / "pre-push"
    if hook.exists():
        return
    source = resources.files("rewind_vcs").joinpath("hooks/pre-push")
    hook.parent.mkdir(exist_ok=True)
    hook.write_bytes(source.read_bytes())
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def gc() -> None:
    """Pack every object into one delta-compressed pack and pack the refs."""
    from rewind_vcs.store.pack import gc as run_gc

    repo = open_repo()
    result = run_gc(repo)
    info(f"packed {result.objects} objects ({result.pack_bytes:,} bytes of packs), "
         f"removed {result.loose_removed} loose objects")


def fsck(as_json: bool = typer.Option(False, "--json", help="Print problems as JSON.")) -> None:
    """Check every session, timeline and step record (and git's own fsck when git is installed)."""
    from rewind_vcs.store.check import check_repository

    repo = open_repo()
    report = check_repository(repo)
    if as_json:
        print_json({"ok": report.ok, "sessions": report.sessions, "steps": report.steps,
                    "problems": report.problems})
    else:
        for p in report.problems:
            out(styled(("problem", "red"), " ", p))
        info(f"checked {report.sessions} sessions, {report.steps} steps: "
             + ("ok" if report.ok else f"{len(report.problems)} problems"))
    if not report.ok:
        raise typer.Exit(1)
