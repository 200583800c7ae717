"""Recording: finished exchanges -> journal (at once) -> commits (in batches, off the hot path).

The proxy calls :meth:`Recorder.record` on its event loop after the last byte
reached the client. That does two cheap things: drop secrets and append the
exchange to the timeline's journal with one ``writev``. Turning journal
entries into commits (parsing with the provider, pricing, the ``pre-step``
hook, the pygit2 commit) happens in :meth:`Recorder.flush`, which the caller
runs when the proxy is idle and at the end of the run. A crash leaves a
journal that :func:`~rewind_vcs.proxy.recovery.recover_journals` commits on
the next ``rewind`` command.

Memory stays bounded by the body sizes, never a multiple of them: a response
body past :data:`SPILL_BYTES` streams to a spill file (:meth:`Recorder.spool`)
instead of memory, and is committed from that file; a body past
:data:`PARSE_BYTES` is stored but not parsed (the step is a generic one, and
that is logged).

A full disk stops recording, once, with one logged line: the steps committed
so far are kept, the session stays ``incomplete``, and later calls are still
relayed but not recorded (:attr:`Recorder.disk_full`, :attr:`Recorder.dropped`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from rewind_vcs.proxy.hooks import StepHook
from rewind_vcs.store.journal import (
    BodySpool,
    Journal,
    JournalEntry,
    disk_full,
    journal_path,
    read_spill,
    spill_path,
)
from rewind_vcs.store.records import EndInfo, Exchange, SessionInfo
from rewind_vcs.store.redact import redact_exchange
from rewind_vcs.store.writer import SessionWriter

if TYPE_CHECKING:
    from pathlib import Path

    from rewind_vcs.providers.pricing import PriceTable
    from rewind_vcs.store.repo import Repo

log = logging.getLogger(__name__)

#: A response body larger than this streams to a spill file instead of memory.
SPILL_BYTES = 4 << 20
#: A body larger than this is stored but not parsed by its provider (a generic step).
PARSE_BYTES = 32 << 20


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
    ) -> None:
        self.repo = repo
        self.session = session or SessionInfo()
        self.prices = prices
        self.hook = hook if hook is not None else StepHook.from_repo(repo)
        self._redact = repo.config_get_all("rewind.redact")
        self._lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._tracks: dict[str | None, _Track] = {}
        self.vetoed = 0
        self.disk_full = False
        self.dropped = 0  # exchanges not recorded because the disk was full
        self._commits_blocked = False  # a commit failed on a full disk: the journal keeps the rest
        self._factory = writer_factory
        self._split = split_by_tag
        self._journal_dir: Path = repo.dir("journal")
        if writer is not None:
            self._tracks[None] = self._track_for(writer)

    # -- the hot path (proxy event loop) -------------------------------------------------

    def spool(self) -> BodySpool:
        """A body sink for one response: in memory up to :data:`SPILL_BYTES`, then a spill file."""
        return BodySpool(self._journal_dir, SPILL_BYTES)

    def record(self, exchange: Exchange, hint: str | None = None, session_tag: str | None = None,
               spool: BodySpool | None = None) -> None:
        """Journal one finished exchange. Cheap: no parsing, no git.

        ``spool`` is the sink its response body streamed into (when it spilled,
        ``exchange.response.body`` is empty and the record names the spill file).
        """
        if self.disk_full:
            self._drop(spool)
            return
        try:
            spill = spool.finish() if spool is not None else None
        except OSError as exc:
            self._stop_on(exc, spool)
            return
        exchange = scrub(exchange, self._redact)
        if not self._split:
            session_tag = None
        with self._lock:
            track = self._tracks.get(session_tag) or self._new_track(session_tag)
            try:
                seq = track.journal.append(exchange, hint, spill)
            except OSError as exc:
                self._stop_on(exc, spool)
                return
            track.pending.append(JournalEntry(seq, exchange, hint, -1, spill))

    def _drop(self, spool: BodySpool | None) -> None:
        self.dropped += 1
        if spool is not None:
            spool.discard()

    def _stop_on(self, exc: OSError, spool: BodySpool | None) -> None:
        if not disk_full(exc):
            if spool is not None:
                spool.discard()
            raise exc
        self._drop(spool)
        self._disk_is_full()

    def _disk_is_full(self) -> None:
        if self.disk_full:
            return
        self.disk_full = True
        kept = sum(t.writer.steps for t in self._tracks.values())
        log.error("the disk is full: recording stopped (%d steps kept; later calls go through but are "
                  "not recorded); free space, then any rewind command commits what the journal holds", kept,
                  extra={"disk_full": True})

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
        path = journal_path(self._journal_dir, writer.id, writer.timeline)
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
        burst of calls); what is left stays pending, in order. A full disk
        stops committing: what is left stays in the journal.
        """
        written = 0
        if self._commits_blocked:
            return written
        with self._commit_lock:
            with self._lock:
                batches = [(t, t.pending) for t in self._tracks.values()]
                for t in self._tracks.values():
                    t.pending = []
            for i, (track, entries) in enumerate(batches):
                for j, entry in enumerate(entries):
                    stop = should_stop is not None and should_stop()
                    if not stop:
                        try:
                            written += self._commit(track, entry)
                            continue
                        except Exception as exc:
                            if not disk_full(exc):
                                self._put_back(track, entries[j:], batches[i + 1:])
                                raise
                            self._commits_blocked = True
                            self._disk_is_full()
                    self._put_back(track, entries[j:], batches[i + 1:])
                    return written
        return written

    def _put_back(self, track: _Track, rest: list[JournalEntry],
                  later: list[tuple[_Track, list[JournalEntry]]]) -> None:
        with self._lock:
            track.pending[:0] = rest
            for other, entries in later:
                other.pending[:0] = entries

    def _commit(self, track: _Track, entry: JournalEntry) -> int:
        n = commit_entry(track.writer, entry, self.prices, self.hook, self._veto, track.journal.path)
        if entry.spill is not None:
            spill_path(track.journal.path, entry.spill).unlink(missing_ok=True)
        return n

    def _veto(self) -> None:
        self.vetoed += 1

    def writers(self) -> list[SessionWriter]:
        with self._lock:
            return [t.writer for t in self._tracks.values()]

    def finish(self, end: EndInfo | None = None, *, pack: bool = True) -> list[SessionWriter]:
        """Commit what is left, close every session (with ``end`` on the untagged one) and pack.

        After a full disk the sessions are released unfinished (``incomplete``)
        and journals still holding uncommitted exchanges are kept for recovery.
        """
        self.flush()
        with self._lock:
            tracks = list(self._tracks.items())
        for tag, track in tracks:
            if not self.disk_full:
                try:
                    track.writer.finish(end if tag is None else EndInfo(), pack=pack)
                except Exception as exc:
                    if not disk_full(exc):
                        raise
                    self._disk_is_full()
            self._release(track)
        return [t.writer for _, t in tracks]

    def abandon(self) -> None:
        """Commit what is journalled and release the sessions without closing them (incomplete)."""
        try:
            self.flush()
        finally:
            with self._lock:
                for track in self._tracks.values():
                    self._release(track)

    def _release(self, track: _Track) -> None:
        if not track.writer.finished:
            track.writer.close()
        if track.pending:
            track.journal.close()  # kept: the next rewind command commits it
        else:
            track.journal.remove()


def commit_entry(
    writer: SessionWriter,
    entry: JournalEntry,
    prices: PriceTable | None,
    hook: StepHook | None,
    on_veto: Callable[[], None] | None = None,
    journal: Path | None = None,
) -> int:
    """Parse, price, hook and commit one journal entry as the writer's next step (0 if vetoed).

    A spilled body (``entry.spill``, found next to ``journal``) is read back
    when it is small enough to parse or a hook must see it; a larger one is
    committed straight from its file and its step is not parsed.
    """
    from rewind_vcs.providers import step_info

    exchange = entry.exchange
    body_file: Path | None = None
    unparsed = 0
    if entry.spill is not None:
        assert journal is not None, "a spilled entry needs its journal's path"
        if entry.spill.length <= PARSE_BYTES or hook is not None:
            body = read_spill(journal, entry.spill)
            exchange = replace(exchange, response=replace(exchange.response, body=body))
        else:
            body_file = spill_path(journal, entry.spill)
            if not body_file.is_file():
                read_spill(journal, entry.spill)  # raises the FormatError naming it
            unparsed = entry.spill.length
    if len(exchange.request.body) > PARSE_BYTES or len(exchange.response.body) > PARSE_BYTES:
        unparsed = max(len(exchange.request.body), len(exchange.response.body))
    if unparsed:
        log.warning("step %d of session %s: a body of %d bytes is stored but too large to parse "
                    "(over %d bytes); recorded as a generic step", writer.steps + 1, writer.id,
                    unparsed, PARSE_BYTES)
        light = replace(exchange, request=replace(exchange.request, body=b""),
                        response=replace(exchange.response, body=b""))
        info = step_info(light, writer.steps + 1, writer.id, hint=entry.hint, prices=prices)
        info.extra = {**info.extra, "unparsed_body_bytes": unparsed}
    else:
        info = step_info(exchange, writer.steps + 1, writer.id, hint=entry.hint, prices=prices)
    info.extra = {**info.extra, "journal_seq": entry.seq}
    if hook is not None:
        result = hook.run(exchange, info)
        if result is None:
            if on_veto:
                on_veto()
            return 0
        exchange, info = result
    writer.append(exchange, info, response_body_file=body_file)
    return 1
