"""The journal format-1 golden file: written once by the rewind of December 2026; must keep loading.

Never regenerate ``tests/golden/journal-format-1.jnl``: it stands for the
journals that crashed recorders of that version left behind. A change that
breaks this test breaks their recovery.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rewind_vcs.store.journal import read_journal
from rewind_vcs.store.records import TransportError

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "journal-format-1.jnl"


def test_the_format_1_journal_reads_whole():
    entries = list(read_journal(GOLDEN))
    assert [(e.seq, e.hint) for e in entries] == [(1, "openai"), (2, "anthropic"), (3, None)]
    chat, stream, reset = (e.exchange for e in entries)
    assert chat.request.host == "api.openai.com" and chat.request.path == "/v1/chat/completions"
    assert b"golden question" in chat.request.body and b"golden answer" in chat.response.body
    assert chat.response.status == 200 and chat.response.chunks == [(0.125, len(chat.response.body))]
    assert chat.started_at == 1767225600.0 and chat.duration == 0.25 and chat.ttfb == 0.1
    assert stream.span == "supervisor/writer" and len(stream.response.chunks) == 7
    assert sum(n for _, n in stream.response.chunks) == len(stream.response.body) == 811
    assert ("anthropic-version", "2023-06-01") in stream.request.headers
    assert reset.response.status == 0 and reset.response.error is TransportError.CONNECTION_RESET
    assert reset.response.error_detail == "the upstream reset the connection"


def test_a_format_1_journal_is_recovered_into_steps(repo, tmp_path):
    from rewind_vcs.proxy.recovery import recover_journals
    from rewind_vcs.store.journal import journal_path
    from rewind_vcs.store.records import SessionInfo
    from rewind_vcs.store.writer import SessionWriter

    writer = SessionWriter.create(repo, SessionInfo(name="crashed"))
    writer.close()  # the recorder died: its lease is free, its journal left behind
    shutil.copy(GOLDEN, journal_path(repo.dir("journal"), writer.id, "main"))
    (recovered,) = recover_journals(repo).recovered
    assert recovered.steps == 3
    steps = repo.timeline("crashed").steps
    assert [s.info.provider for s in steps] == ["openai", "anthropic", "openai"]
    assert steps[0].info.model == "gpt-4o-mini" and steps[0].info.usage.total == 14
    assert steps[1].info.stream and steps[2].response.error is TransportError.CONNECTION_RESET
