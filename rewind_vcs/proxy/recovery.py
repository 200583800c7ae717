"""Recovery: journals left by a recorder that died become steps; what cannot, goes to quarantine.

Every ``rewind`` command first runs :func:`recover_journals` (from the CLI's
``open_repo``). A journal whose session lease is free belongs to a crashed
recorder: its entries not yet committed (by the ``journal_seq`` kept in each
step's ``extra``) become steps and the session stays ``incomplete``. A
journal that cannot be recovered, wholly or in part (no session ref, a
newer format, bytes after the last whole record, a damaged spill file) is
never deleted: it is moved with its spill files to ``.rewind/quarantine/``,
logged, and reported in :attr:`Recovery.quarantined` so the command says so.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from rewind_vcs.errors import ConflictError, FormatError, FormatTooNewError, RefError, RewindError
from rewind_vcs.proxy.hooks import StepHook
from rewind_vcs.proxy.recorder import commit_entry
from rewind_vcs.store.journal import JournalEntry, parse_journal_name, read_journal, spill_path

if TYPE_CHECKING:
    from rewind_vcs.providers.pricing import PriceTable
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.writer import SessionWriter

log = logging.getLogger(__name__)

QUARANTINE = "quarantine"


@dataclass
class Recovered:
    session_id: str
    timeline: str
    steps: int


@dataclass
class Quarantined:
    """A journal moved aside, and why."""

    path: Path  # where it is now, under .rewind/quarantine/
    reason: str


@dataclass
class Recovery:
    recovered: list[Recovered] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)


def quarantined(repo: Repo) -> list[Path]:
    """The journals (and spill files) in ``.rewind/quarantine/``, oldest first."""
    qdir = repo.path / QUARANTINE
    try:
        files = [p for p in qdir.iterdir() if p.is_file() and not p.name.endswith(".reason")]
    except FileNotFoundError:
        return []
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def _quarantine(repo: Repo, path: Path, reason: str, entries: list[JournalEntry]) -> Quarantined:
    qdir = repo.path / QUARANTINE
    qdir.mkdir(exist_ok=True)
    target = qdir / path.name
    k = 1
    while target.exists():
        target = qdir / f"{path.name}.{k}"
        k += 1
    os.replace(path, target)
    for entry in entries:
        if entry.spill is not None and spill_path(path, entry.spill).exists():
            os.replace(spill_path(path, entry.spill), qdir / entry.spill.file)
    target.with_name(target.name + ".reason").write_text(reason + "\n")
    log.warning("journal %s could not be recovered (%s); moved to %s, nothing deleted",
                path.name, reason, target, extra={"reported_by_cli": True})
    return Quarantined(target, reason)


def _last_journal_seq(writer: SessionWriter) -> int:
    from rewind_vcs.store.session import Step
    from rewind_vcs.store.trailers import parse_trailers

    commit = writer.repo.git[writer.tip]
    message: str = commit.message  # type: ignore[attr-defined]
    if parse_trailers(message).get("Rewind-Kind") != "step":
        return 0
    return int(Step(writer.repo, writer.tip).info.extra.get("journal_seq", 0))


def recover_journals(repo: Repo, prices: PriceTable | None = None) -> Recovery:
    """Commit the journals that crashed recorders left behind; the sessions stay ``incomplete``.

    A journal whose session lease is still held belongs to a live recorder and
    is left alone. Entries already committed (by ``journal_seq``) are skipped,
    so recovery is idempotent. A hook that fails leaves the journal where it
    is (fix the hook; the next command retries).
    """
    from rewind_vcs.store.pack import pack_timeline
    from rewind_vcs.store.writer import SessionWriter

    out = Recovery()
    jdir = repo.path / "journal"
    if not jdir.is_dir():
        return out
    hook = StepHook.from_repo(repo)
    for path in sorted(Path(jdir).glob("*.jnl")):
        parsed = parse_journal_name(path)
        if parsed is None:
            continue
        sid, timeline = parsed
        try:
            entries = list(read_journal(path))
        except FormatTooNewError as exc:
            out.quarantined.append(_quarantine(repo, path, str(exc), []))
            continue
        except OSError as exc:
            out.quarantined.append(_quarantine(repo, path, f"unreadable: {exc}", []))
            continue
        try:
            writer = SessionWriter.resume(repo, sid, timeline)
        except ConflictError:
            continue  # a live recorder owns it
        except (RefError, FormatError) as exc:
            out.quarantined.append(_quarantine(repo, path, f"no session to recover into: {exc}", entries))
            continue
        n = 0
        problem = None
        try:
            last = _last_journal_seq(writer)
            for entry in entries:
                if entry.seq > last:
                    n += commit_entry(writer, entry, prices, hook, journal=path)
        except FormatError as exc:
            problem = str(exc)
        except RewindError as exc:  # the pre-step hook failed: keep the journal, retry next time
            log.warning("recovering journal %s stopped: %s", path.name, exc)
            continue
        finally:
            writer.close()
        pack_timeline(repo, sid, timeline)
        size = path.stat().st_size
        end = entries[-1].end if entries else 0
        if problem is None and end < size:
            problem = f"{size - end} bytes after the last whole record could not be read"
        if problem is not None:
            out.quarantined.append(_quarantine(repo, path, problem, entries))
        else:
            for entry in entries:
                if entry.spill is not None:
                    spill_path(path, entry.spill).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
        out.recovered.append(Recovered(sid, timeline, n))
    return out
