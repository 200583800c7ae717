"""Recording: finished exchanges -> journal (at once) -> commits (in batches, off the hot path).

The proxy calls :meth:`Recorder.record` on its event loop after the last byte
reached the client. That does two cheap things: drop secrets and append the
exchange to the timeline's journal with one ``write``. Turning journal
entries into commits (parsing with the provider, pricing, the ``pre-step``
hook, the pygit2 commit) happens in :meth:`Recorder.flush`, which the caller
runs when the proxy is idle and at the end of the run. A crash leaves a
journal that :func:`recover_journals` commits on the next ``rewind`` command.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from rewind_vcs.errors import ConflictError
from rewind_vcs.proxy.hooks import StepHook
from rewind_vcs.store.journal import (
    Journal,
    JournalEntry,
    journal_path,
    parse_journal_name,
    read_journal,
)
from rewind_vcs.store.records import EndInfo, Exchange, SessionInfo
from rewind_vcs.store.redact import redact_exchange
from rewind_vcs.store.writer import SessionWriter

if TYPE_CHECKING:
    from rewind_vcs.providers.pricing import PriceTable
    from rewind_vcs.store.repo import Repo


def scrub(exchange: Exchange, extra: list[str]) -> Exchange:
    """The exchange without secrets (see :mod:`rewind_vcs.store.redact`), before it touches the disk."""
    return redact_exchange(exchange, extra)


@dataclass
class _Track:
    """One timeline being recorded: its writer, journal and entries not yet committed."""

    writer: SessionWriter
    journal: Journal
    pending: list[JournalEntry] = field(default_factory=list)


class Recorder:
    """Records exchanges into sessions: one per distinct ``X-Rewind-Session`` tag.

    ``session`` describes the session(s) to create; ``writer`` (optional) is an
    already opened writer for untagged exchanges (``rewind record`` opens it
    before the child starts, so the session id is known from the start), or
    ``writer_factory`` makes it on the first exchange (a fork made only when
    something goes live). With ``split_by_tag=False`` every exchange goes to the
    untagged session.
    """

    def __init__(
        self,
        repo: Repo,
        session: SessionInfo | None = None,
        *,
        writer: SessionWriter | None = None,
        writer_factory: Callable[[], SessionWriter] | None = None,
        split_by_tag: bool = True,
        prices: PriceTable | None = None,
        hook: StepHook | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.repo = repo
        self.session = session or SessionInfo()
        self.prices = prices
        self.hook = hook if hook is not None else StepHook.from_repo(repo)
        self.on_error = on_error
        self._redact = repo.config_get_all("rewind.redact")
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._tracks: dict[str | None, _Track] = {}
        self.vetoed = 0
        self._factory = writer_factory
        self._split = split_by_tag
        if writer is not None:
            self._tracks[None] = self._track_for(writer)

    # -- the hot path (proxy event loop) -------------------------------------------------

    def record(self, exchange: Exchange, hint: str | None = None, session_tag: str | None = None) -> None:
        """Journal one finished exchange. Cheap: no parsing, no git."""
        exchange = scrub(exchange, self._redact)
        if not self._split:
            session_tag = None
        with self._lock:
            track = self._tracks.get(session_tag) or self._new_track(session_tag)
            seq = track.journal.append(exchange, hint)
            track.pending.append(JournalEntry(seq, exchange, hint, -1))

    def _new_track(self, session_tag: str | None) -> _Track:
        if session_tag is None and self._factory is not None:
            writer = self._factory()
        else:
            info = self.session if session_tag is None else replace(self.session, name=session_tag)
            writer = SessionWriter.create(self.repo, info)
        track = self._tracks[session_tag] = self._track_for(writer)
        return track

    def ensure_writer(self) -> SessionWriter:
        """The untagged session's writer, made now if it does not exist yet."""
        with self._lock:
            track = self._tracks.get(None) or self._new_track(None)
            return track.writer

    def _track_for(self, writer: SessionWriter) -> _Track:
        path = journal_path(self.repo.dir("journal"), writer.id, writer.timeline)
        return _Track(writer, Journal(path))

    # -- commits (off the hot path) ---------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._lock:
            return sum(len(t.pending) for t in self._tracks.values())

    def flush(self, should_stop: Callable[[], bool] | None = None) -> int:
        """Commit journalled exchanges; returns how many steps were written.

        ``should_stop`` is asked between steps (the idle flusher stops as soon as
        a request arrives, so a long backlog never holds the GIL through a
        burst of calls); what is left stays pending, in order.
        """
        written = 0
        with self._commit_lock:
            with self._lock:
                batches = [(t, t.pending) for t in self._tracks.values()]
                for t in self._tracks.values():
                    t.pending = []
            for i, (track, entries) in enumerate(batches):
                for j, entry in enumerate(entries):
                    if should_stop is not None and should_stop():
                        with self._lock:
                            track.pending[:0] = entries[j:]
                            for later, rest in batches[i + 1:]:
                                later.pending[:0] = rest
                        return written
                    written += self._commit(track.writer, entry)
        return written

    def _commit(self, writer: SessionWriter, entry: JournalEntry) -> int:
        return commit_entry(writer, entry, self.prices, self.hook, self._veto)

    def _veto(self) -> None:
        self.vetoed += 1

    def writers(self) -> list[SessionWriter]:
        with self._lock:
            return [t.writer for t in self._tracks.values()]

    def finish(self, end: EndInfo | None = None, *, pack: bool = True) -> list[SessionWriter]:
        """Commit what is left, close every session (with ``end`` on the untagged one) and pack."""
        self.flush()
        with self._lock:
            tracks = list(self._tracks.items())
        for tag, track in tracks:
            track.writer.finish(end if tag is None else EndInfo(), pack=pack)
            track.journal.remove()
        return [t.writer for _, t in tracks]

    def abandon(self) -> None:
        """Commit what is journalled and release the sessions without closing them (incomplete)."""
        self.flush()
        with self._lock:
            for track in self._tracks.values():
                track.writer.close()
                track.journal.remove()


def commit_entry(
    writer: SessionWriter,
    entry: JournalEntry,
    prices: PriceTable | None,
    hook: StepHook | None,
    on_veto: Callable[[], None] | None = None,
) -> int:
    """Parse, price, hook and commit one journal entry as the writer's next step (0 if vetoed)."""
    from rewind_vcs.providers import step_info

    exchange = entry.exchange
    info = step_info(exchange, writer.steps + 1, writer.id, hint=entry.hint, prices=prices)
    info.extra = {**info.extra, "journal_seq": entry.seq}
    if hook is not None:
        result = hook.run(exchange, info)
        if result is None:
            if on_veto:
                on_veto()
            return 0
        exchange, info = result
    writer.append(exchange, info)
    return 1


def _last_journal_seq(writer: SessionWriter) -> int:
    from rewind_vcs.store.session import Step
    from rewind_vcs.store.trailers import parse_trailers

    commit = writer.repo.git[writer.tip]
    if parse_trailers(commit.message).get("Rewind-Kind") != "step":
        return 0
    return int(Step(writer.repo, writer.tip).info.extra.get("journal_seq", 0))


@dataclass
class Recovered:
    session_id: str
    timeline: str
    steps: int


def recover_journals(repo: Repo, prices: PriceTable | None = None) -> list[Recovered]:
    """Commit the journals that crashed recorders left behind; the sessions stay ``incomplete``.

    A journal whose session lease is still held belongs to a live recorder and
    is left alone. Entries already committed (by ``journal_seq``) are skipped,
    so recovery is idempotent.
    """
    from rewind_vcs.store.pack import pack_timeline

    out: list[Recovered] = []
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
            writer = SessionWriter.resume(repo, sid, timeline)
        except ConflictError:
            continue  # a live recorder owns it
        except Exception:  # noqa: BLE001 - a journal for a session that never got its ref
            path.unlink(missing_ok=True)
            continue
        try:
            last = _last_journal_seq(writer)
            n = 0
            for entry in read_journal(path):
                if entry.seq > last:
                    n += commit_entry(writer, entry, prices, hook)
        finally:
            writer.close()
        pack_timeline(repo, sid, timeline)
        path.unlink(missing_ok=True)
        out.append(Recovered(sid, timeline, n))
    return out
