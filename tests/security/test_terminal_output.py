"""Recorded text never drives the terminal (issue K, "Terminal and proxy hygiene").

A session whose name, command, working directory, model, model output, tool
result, summary and error message hold ESC/CSI colour codes, an OSC 8
hyperlink, BEL, a C1 CSI, bidirectional overrides and isolates, and rich markup
(``[/INST]``, ``[link=...]``, ``[bold red]``) is shown by every reading command.
What they print, stdout and stderr, holds none of those characters raw, nothing
crashes, and the markup is printed as the text it is.
"""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from rewind_vcs.cli.safe import safe_json_bytes, safe_text
from rewind_vcs.providers import step_info
from rewind_vcs.store.records import EndInfo
from rewind_vcs.store.repo import Repo
from tests.analysis import runs
from tests.clirun import run_cli

OSC8 = "\x1b]8;;https://evil.example/\x07click me\x1b]8;;\x07"
HOSTILE = (f"\x1b[31mRED\x1b[0m {OSC8} \x07bell \x9b2J \u202eexe.txt\u202c \u2066iso\u2069 \u200fmark "
           "[/INST] [link=https://evil.example]fake link[/link] [bold red]loud[/bold red] :warning: \r fake")
#: what must never reach the terminal raw
FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def assert_inert(proc, *, code: int | None = 0) -> None:
    for stream in (proc.stdout, proc.stderr):
        bad = sorted({hex(ord(c)) for c in FORBIDDEN.findall(stream)})
        assert not bad, f"{proc.args[:3]}: raw {bad} in {stream[:600]!r}"
        assert "Traceback" not in stream and "internal error" not in stream, stream[-2000:]
    if code is not None:
        assert proc.returncode == code, (proc.args[:3], proc.stdout[-1000:], proc.stderr[-1000:])


def _hostile_session(repo: Repo, name: str) -> str:
    exs = runs.exchanges(runs.Script(question="How many? " + HOSTILE, tool_result=HOSTILE + " 2019"))
    w = repo.create_session(name=name, command=["sh", "-c", f"echo {HOSTILE}"], cwd=f"/tmp/{HOSTILE}")
    for i, ex in enumerate(exs):
        info = step_info(ex, 0, w.id, runs.hint_of(ex))
        if i == 1:
            info = dataclasses.replace(info, model=f"gpt-4o {HOSTILE}", summary=HOSTILE, error=HOSTILE)
        w.append(ex, info)
    w.finish(EndInfo(exit_code=0))
    return w.id


@pytest.fixture
def hostile(tmp_path):
    repo = Repo.init(tmp_path)
    good = runs.record(repo, name="good")
    bad = _hostile_session(repo, name=f"run {HOSTILE}")
    fork = repo.session(bad).timeline().steps[1].commit_id
    # names rewind would refuse to make, as a pulled or cloned repository may hold them
    repo.git.references.create(f"refs/sessions/{bad}/fork\u202egnp.exe", fork)
    repo.git.references.create("refs/tags/good\u202egpj.exe", repo.resolve(good).commit)
    return tmp_path, repo, good, bad


def cli(tmp_path, *args: str):
    return run_cli(*args, cwd=tmp_path)


@pytest.mark.parametrize("args", [
    ("log",), ("log", "{bad}"), ("log", "{bad}", "--json"), ("log", "--json"),
    ("show", "{bad}"), ("show", "{bad}", "--json"), ("show", "{bad}/fork\u202egnp.exe"),
    ("show", "{bad}@step-1"), ("show", "{bad}@step-2"), ("show", "{bad}@step-3"), ("show", "{bad}@step-4"),
    ("show", "{bad}@step-2", "--full"), ("show", "{bad}@step-3", "--json"),
    ("status",), ("status", "--json"), ("timelines", "{bad}"), ("timelines", "{bad}", "--json"),
    ("tag",), ("tag", "--json"),
    ("diff", "{good}", "{bad}"), ("diff", "{good}", "{bad}", "--json"),
    ("bisect", "{good}", "{bad}"), ("bisect", "{good}", "{bad}", "--json"),
    ("fsck",), ("fsck", "--json"),
], ids=lambda a: "-".join(x.strip("{}") for x in a)[:40])
def test_reading_commands_print_hostile_recordings_inert(hostile, args):
    tmp_path, repo, good, bad = hostile
    proc = cli(tmp_path, *(a.format(good=good, bad=bad) for a in args))
    # fsck reports the unsafe tag name as a problem (exit 1), shown escaped like everything else
    assert_inert(proc, code=1 if args[0] == "fsck" else 0)
    if "--json" in args:
        json.loads(proc.stdout)  # still valid JSON, same data
    elif args[0] in ("show", "log", "diff", "bisect") and len(args) > 1:
        text = proc.stdout
        assert "\\x1b" in text or "\\u202e" in text or "[/INST]" in text, text[:2000]


def test_markup_is_printed_as_text_not_obeyed(hostile):
    tmp_path, repo, good, bad = hostile
    shown = cli(tmp_path, "show", bad).stdout
    assert "[/INST]" in shown and "[link=https://evil.example]fake link[/link]" in shown
    assert "[bold red]loud[/bold red]" in shown and ":warning:" in shown
    step = cli(tmp_path, "show", f"{bad}@step-3").stdout
    assert "[/INST]" in step and "\\u001b]8;;https://evil.example/\\u0007click me" in step  # JSON escapes
    assert "\\u202eexe.txt\\u202c" in step and "\\u009b2J" in step
    tree = cli(tmp_path, "show", bad).stdout
    assert "\\x1b[31mRED\\x1b[0m" in tree and "\\x1b]8;;https://evil.example/\\x07click me" in tree


def test_share_and_its_line_are_inert(hostile):
    """The command's line, and the page: its static parts and its data hold no raw control or bidi
    character (the data is ASCII JSON; the script shows such characters as escapes too)."""
    tmp_path, repo, good, bad = hostile
    for extra in ((), ("--include-content",)):
        page = tmp_path / "page.html"
        proc = cli(tmp_path, "share", bad, "-o", str(page), *extra)
        assert_inert(proc)
        html = page.read_text(encoding="utf-8")
        assert not FORBIDDEN.search(html.replace("\n", "")), sorted({hex(ord(c)) for c in FORBIDDEN.findall(html)})
        assert "\\u202e" in html  # the bidi override of the name, shown as an escape
        assert "function visible(" in html


def test_export_and_import_lines_are_inert(hostile, tmp_path_factory):
    tmp_path, repo, good, bad = hostile
    repo.git.references.delete(f"refs/sessions/{bad}/fork\u202egnp.exe")  # import refuses such names
    rw = tmp_path / "hostile.rw"
    assert_inert(cli(tmp_path, "export", bad, "-o", str(rw)))
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert_inert(run_cli("import", str(rw), cwd=elsewhere))
    assert_inert(run_cli("log", cwd=elsewhere))
    assert_inert(run_cli("import", str(rw), "--dry-run", cwd=elsewhere))


def test_errors_that_quote_recorded_text_are_inert(hostile):
    tmp_path, repo, good, bad = hostile
    for ref in (HOSTILE, "[/INST]", f"{bad}/{HOSTILE}", f"{bad}/[bold]x@step-1"):
        proc = cli(tmp_path, "show", ref)
        assert_inert(proc, code=None)
        assert proc.returncode != 0 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_the_real_process_prints_inert_too(hostile, rewind):
    """One end-to-end run of the real command: what reaches the terminal's file descriptors."""
    tmp_path, repo, good, bad = hostile
    for args in (("show", bad), ("show", f"{bad}@step-2"), ("log",), ("diff", good, bad)):
        assert_inert(rewind(*args))


def test_safe_text_unit():
    assert safe_text("a\x1b[31mb") == "a\\x1b[31mb"
    assert safe_text("x\u202ey\u2066") == "x\\u202ey\\u2066"
    assert safe_text("\x07\x9b\x7f\r") == "\\x07\\x9b\\x7f\\x0d"
    assert safe_text("one\ntwo\tthree") == "one\\x0atwo\\x09three"
    assert safe_text("one\r\ntwo\tthree", multiline=True) == "one\ntwo\tthree"
    assert safe_text("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert safe_text("plain é ü 日本 👍🏽 ZWJ‍ok [/INST]") == "plain é ü 日本 👍🏽 ZWJ‍ok [/INST]"
    raw = json.dumps({"k": HOSTILE}, ensure_ascii=False).encode()
    safe = safe_json_bytes(raw)
    assert json.loads(safe) == json.loads(raw)
    assert FORBIDDEN.search(raw.decode()) and not FORBIDDEN.search(safe.decode())


def test_push_clone_pull_lines_are_inert(hostile, tmp_path_factory):
    """Ref names a remote supplies (a bidi override in a timeline or tag name) are shown inert."""
    import pygit2

    tmp_path, repo, good, bad = hostile
    remote = tmp_path_factory.mktemp("remote") / "team.git"
    pygit2.init_repository(str(remote), bare=True)
    for args in (("remote", "add", "origin", str(remote)), ("push", "origin"), ("remote", "list")):
        assert_inert(cli(tmp_path, *args), code=None)
    elsewhere = tmp_path_factory.mktemp("clone")
    assert_inert(run_cli("clone", str(remote), str(elsewhere / "c"), cwd=elsewhere), code=None)
    if (elsewhere / "c" / ".rewind").exists():
        for args in (("pull",), ("log",), ("tag",), ("fsck",)):
            assert_inert(run_cli(*args, cwd=elsewhere / "c"), code=None)
