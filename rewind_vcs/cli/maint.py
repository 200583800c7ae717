"""Repository upkeep: ``init``, ``gc``, ``fsck``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from rewind_vcs.cli.common import info, open_repo, out, print_json
from rewind_vcs.cli.safe import styled

if TYPE_CHECKING:
    from rewind_vcs.store.repo import Repo


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("gc")(gc)
    app.command("fsck")(fsck)


def init(path: Path = typer.Argument(Path("."), help="Directory to hold .rewind/ (default: here).")) -> None:
    """Create .rewind/ (a bare git repository) and its local CA; running it again is harmless."""
    from rewind_vcs.store.repo import DIRNAME, Repo

    existed = (path / DIRNAME).exists()
    repo = Repo.init(path)
    _ensure_ca(repo)
    verb = "Reinitialized existing" if existed else "Initialized empty"
    info(f"{verb} rewind repository in {repo.path}")


def _ensure_ca(repo: Repo) -> None:
    """The CA for HTTPS interception lives in .rewind/ca/ (never in git objects)."""
    try:
        from rewind_vcs.proxy.tls import CertificateAuthority
    except ModuleNotFoundError:
        return
    ca_dir = repo.path / "ca"
    if not (ca_dir / "ca.pem").exists():
        CertificateAuthority.create(ca_dir)


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
