"""Every user mistake: one line on stderr naming the problem, a non-zero exit, no traceback."""

from __future__ import annotations

import pytest

from rewind_vcs.store.repo import Repo
from tests import factories


def assert_clean_failure(proc, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_not_in_a_repository(rewind, tmp_path):
    assert_clean_failure(rewind("log"), "not in a rewind repository", "rewind init")


def test_rewind_dir_that_is_not_a_repository(cli, tmp_path):
    bogus = tmp_path / "file.txt"
    bogus.write_text("hello")
    assert_clean_failure(cli("log", env={"REWIND_DIR": str(bogus)}), "is not a rewind repository")
    plain_git = tmp_path / "plain"
    import pygit2

    pygit2.init_repository(str(plain_git), bare=True)
    assert_clean_failure(cli("log", env={"REWIND_DIR": str(plain_git)}), "is not a rewind repository")


def test_init_over_a_foreign_directory(cli, tmp_path):
    (tmp_path / ".rewind").mkdir()
    (tmp_path / ".rewind" / "x").write_text("mine")
    assert_clean_failure(cli("init"), "is not a rewind repository")


@pytest.fixture
def seeded(tmp_path):
    repo = Repo.init(tmp_path)
    ids = []
    while True:  # two sessions whose ids share a first character, for an ambiguous prefix
        ids.append(factories.write_session(repo, 2, name="run"))
        firsts = [i[0] for i in ids]
        dup = next((c for c in firsts if firsts.count(c) > 1), None)
        if dup:
            return repo, ids, dup


@pytest.mark.parametrize(
    "args, needles",
    [
        (("show", "nope"), ("unknown ref 'nope'",)),
        (("show", "latest@step-99"), ("step-99 is out of range",)),
        (("log", "latest@stp-1"), ("cannot parse ref",)),
        (("show", "step-1"), ("HEAD is not checked out",)),
        (("checkout", "zzz"), ("unknown ref 'zzz'",)),
        (("tag", "-d", "missing"), ("tag 'missing' not found",)),
        (("tag", "step-3", "latest"), ("not a valid tag name",)),
        (("timelines", "run/nope"), ("has no timeline 'nope'",)),
        (("log", "-n", "-1"), ("-n -1", "1 or more")),
        (("log", "-n", "0"), ("-n 0", "1 or more")),
        (("log", "latest", "-n", "0"), ("-n 0",)),
    ],
)
def test_bad_refs(seeded, cli, args, needles):
    assert_clean_failure(cli(*args), *needles)


def test_ambiguous_prefix_lists_the_candidates(seeded, cli):
    repo, ids, first = seeded
    matching = [i for i in ids if i.startswith(first)]
    proc = cli("show", first)
    assert_clean_failure(proc, "is ambiguous", *matching)


def test_corrupt_record_is_a_clean_error(seeded, cli):
    import pygit2

    repo, ids, _ = seeded
    git = repo.git
    step = repo.timeline(ids[0]).steps[0]
    commit = git[step.commit_id]
    tb = git.TreeBuilder(commit.tree)
    tb.insert("step.json", git.create_blob(b"{broken"), pygit2.enums.FileMode.BLOB)
    sig = repo.signature()
    bad = git.create_commit(None, sig, sig, commit.message, tb.write(), list(commit.parent_ids))
    git.references.create("refs/tags/broken", bad)
    assert_clean_failure(cli("show", "broken"), "not valid JSON")


def test_usage_errors_do_not_trace(rewind, tmp_path):
    proc = rewind("log", "--no-such-flag")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_a_huge_ref_is_one_short_line(seeded, cli):
    proc = cli("show", "a" * 100_000)
    assert_clean_failure(proc)
    assert len(proc.stderr) < 2_000, len(proc.stderr)
    proc = cli("log", "x" * 100_000 + "@step-1")
    assert_clean_failure(proc)
    assert len(proc.stderr) < 2_000


def test_bad_upstream_timeout_is_a_clean_error_only_where_used(seeded, cli):
    assert cli("log", env={"REWIND_UPSTREAM_TIMEOUT": "soon"}).returncode == 0
    proc = cli("record", "--", "true", env={"REWIND_UPSTREAM_TIMEOUT": "soon"})
    assert_clean_failure(proc, "REWIND_UPSTREAM_TIMEOUT=soon is not a number of seconds")


def test_version(cli):
    from rewind_vcs import __version__

    proc = cli("--version", check=True)
    assert proc.stdout.startswith(f"rewind {__version__}") and proc.stdout.count("\n") == 1


def test_main_help_fits_80_columns_and_cuts_nothing(rewind):
    """The real command in an 80-column terminal: every command listed, no description cut."""
    proc = rewind("--help", env={"COLUMNS": "80"}, check=True)
    commands = proc.stdout[proc.stdout.index("Start:"):]
    assert "..." not in commands and "…" not in commands
    assert all(len(line) <= 80 for line in proc.stdout.splitlines()), proc.stdout
    for name in ("init", "record", "replay", "log", "show", "diff", "bisect", "share", "export", "import",
                 "push", "pull", "clone", "fsck"):
        assert f"\n  {name} " in proc.stdout, name
    flat = " ".join(proc.stdout.split())
    assert "your local CA; running it again is harmless." in flat and "like git's lightweight tags." in flat


def test_group_help_cuts_nothing_either(cli):
    proc = cli("bisect", "--help", env={"COLUMNS": "80"}, check=True)
    commands = proc.stdout[proc.stdout.index("Commands:"):]
    assert "..." not in commands and "(in recording order)." in " ".join(commands.split())
