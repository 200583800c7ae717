"""What the CLI's printing helpers guarantee, tested directly (rewind_vcs.cli.common / main)."""

from __future__ import annotations

import json
import logging

from rewind_vcs.cli import common
from rewind_vcs.cli.main import _library_logging, clip_middle


def test_library_warnings_are_printed_inert_and_info_is_not(capsys):
    common.reset_consoles()
    with _library_logging():
        logging.getLogger("rewind_vcs.transfer.fetch").warning("skipped %s: \x1b[31mbad\x1b[0m [/INST]", "ref")
        logging.getLogger("rewind_vcs.store").info("not shown")
    err = capsys.readouterr().err
    assert err.splitlines()[0] == "rewind: skipped ref: \\x1b[31mbad\\x1b[0m [/INST]"
    assert "not shown" not in err and "\x1b" not in err


def test_info_and_out_never_parse_markup(capsys):
    common.reset_consoles()
    common.info("[/INST] [bold red]x[/bold red] :warning: \x07")
    common.out("[link=https://evil.example]y[/link]")
    got = capsys.readouterr()
    assert got.err == "[/INST] [bold red]x[/bold red] :warning: \\x07\n"
    assert got.out == "[link=https://evil.example]y[/link]\n"


def test_print_rows_and_json(capsys):
    common.print_rows(["a", "b"], [["x\x1b[2J", "line\nbreak"]])
    common.print_json({"k": "\u202e\x9b"})
    out = capsys.readouterr().out
    assert "x\\x1b[2J" in out and "line\\x0abreak" in out
    assert "\u202e" not in out and "\x9b" not in out
    assert json.loads(out[out.index("{"):]) == {"k": "\u202e\x9b"}


def test_clip_middle_keeps_both_ends():
    assert clip_middle("short") == "short"
    text = "rewind: unknown ref '" + "a" * 100_000 + "'; see 'rewind log'"
    clipped = clip_middle(text)
    assert len(clipped) < 1100 and clipped.startswith("rewind: unknown ref 'aaa")
    assert clipped.endswith("; see 'rewind log'") and "100,000" not in clipped and "characters cut" in clipped
