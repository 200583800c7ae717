"""The ``rewind`` command: a thin typer skin over the library.

Every command lives in a small module of this package and does three things:
parse its arguments, call the library, print. Errors the user can cause are
:class:`~rewind_vcs.errors.RewindError`; :func:`main` prints their one line on
stderr and exits with their code, never a traceback (``REWIND_DEBUG=1`` shows
one). Every message it prints, error lines and library log records included,
goes through :func:`rewind_vcs.cli.safe.safe_text`: an error that quotes
recorded data never writes a control character. Heavy modules are imported
inside the commands, so ``rewind --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer

from rewind_vcs.cli import maint, read, refs
from rewind_vcs.cli import settings as settings_mod
from rewind_vcs.cli.common import reset_consoles
from rewind_vcs.cli.helpfmt import WrappingGroup, short_help
from rewind_vcs.cli.safe import safe_text

#: ``rewind --help`` lists the commands in these groups, in this order (as ``git help`` does).
SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Start", ("init", "demo")),
    ("Record and replay", ("record", "replay", "proxy")),
    ("Look at runs", ("log", "show", "status", "timelines")),
    ("Move and name", ("checkout", "tag")),
    ("Compare", ("diff", "bisect")),
    ("Share", ("share", "export", "import", "remote", "push", "fetch", "pull", "clone")),
    ("Upkeep", ("gc", "fsck")),
)


class RewindGroup(WrappingGroup):
    """The top level: commands grouped as git groups them, their descriptions wrapped, never cut."""

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        commands = self.visible_commands(ctx)
        placed: set[str] = set()
        for title, names in SECTIONS:
            rows = [(n, short_help(commands[n])) for n in names if n in commands]
            placed.update(n for n, _ in rows)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [(n, short_help(c)) for n, c in commands.items() if n not in placed]
        if rest:
            with formatter.section("Other commands"):
                formatter.write_dl(rest)


def _version(value: bool) -> None:
    if value:
        from rewind_vcs import __version__
        from rewind_vcs.store.records import FORMAT_VERSION

        sys.stdout.write(f"rewind {__version__} (repository format {FORMAT_VERSION})\n")
        raise typer.Exit()


app = typer.Typer(
    name="rewind",
    cls=RewindGroup,
    help="A time-travel debugger for AI agents: record, replay, fork, diff and bisect agent runs, "
    "stored as a git repository in .rewind/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print rewind's version and exit."),
) -> None:
    """A time-travel debugger for AI agents: record, replay, fork, diff and bisect agent runs,
    stored as a git repository in .rewind/."""

maint.register(app)
read.register(app)
refs.register(app)


def _register_optional() -> None:
    """Command groups that arrive with later modules (record/replay, timelines, sharing)."""
    import importlib

    for name in ("record", "demo", "analysis", "remote", "transfer", "share"):
        try:
            module = importlib.import_module(f"rewind_vcs.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rewind_vcs.cli.{name}":
                raise
            continue
        module.register(app)


_register_optional()


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    from rewind_vcs.errors import RewindError

    debug = False
    try:
        debug = settings_mod.load().debug
        reset_consoles()
        argv = _split_trailing(list(sys.argv[1:] if argv is None else argv))
        with _library_logging():
            app(args=argv)  # click's standalone mode handles usage errors and --help itself
    except RewindError as exc:
        _fail(f"rewind: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        _fail("rewind: interrupted", 130)
    except SystemExit:
        sys.stdout.flush()
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if debug:
            raise
        _fail(_describe_unexpected(exc), 1)
    return 0


def _split_trailing(argv: list[str]) -> list[str]:
    """``rewind record|replay ... -- CMD ARGS``: keep CMD ARGS untouched, away from click."""
    rest: list[str] | None = None
    if "--" in argv and any(a in ("record", "replay") for a in argv[: argv.index("--")]):
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1 :]
    if rest is not None or "rewind_vcs.cli.record" in sys.modules:
        from rewind_vcs.cli import record

        record.trailing = rest  # reset too: in-process runs must not inherit the last one's
    return argv


class _SafeHandler(logging.Handler):
    """The library's warnings (``logging.getLogger(__name__)``) as ``rewind: ...`` lines on
    stderr, made safe: they often quote what a remote or a file supplied."""

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "reported_by_cli", False):
            return  # the command prints its own line for this one (log's note, the quarantine line)
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not end the command
            message = str(record.msg)
        from rewind_vcs.cli.common import info

        prefix = "" if message.startswith("rewind") else "rewind: "
        level = "" if record.levelno < logging.ERROR else "error: "
        for line in message.splitlines() or [""]:
            info(f"{prefix}{level}{line}", style="yellow" if record.levelno >= logging.WARNING else None)


class _library_logging:  # noqa: N801 - used as a context manager, reads like one
    """Route ``rewind_vcs.*`` log records of level WARNING and above to :class:`_SafeHandler`
    for the duration of one command (``REWIND_DEBUG=1``: DEBUG and above)."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("rewind_vcs")
        self.handler = _SafeHandler()
        self.saved = (self.logger.level, self.logger.propagate)
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG if settings_mod.current().debug else logging.WARNING)
        self.logger.propagate = False

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.saved[0])
        self.logger.propagate = self.saved[1]


def _describe_unexpected(exc: BaseException) -> str:
    kind = type(exc).__name__
    if kind == "GitError" or isinstance(exc, OSError):
        return f"rewind: {exc} (the repository may be damaged: run 'rewind fsck')"
    return f"rewind: internal error: {kind}: {exc} (set REWIND_DEBUG=1 for the traceback, and report it)"


#: an error line longer than this is shown as its start and end (a 100,000-character ref
#: typed by mistake is quoted in the message; the hint is at the end)
MAX_ERROR = 1000


def clip_middle(text: str, limit: int = MAX_ERROR) -> str:
    """``text``, or its first and last ``limit // 2`` characters around a note of what was cut."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}…({len(text) - 2 * half:,} characters cut)…{text[-half:]}"


def _fail(message: str, code: int) -> None:
    """The one error line: controls made visible (it may quote recorded data), never markup,
    never longer than :data:`MAX_ERROR` characters."""
    sys.stdout.flush()
    sys.stderr.write(clip_middle(safe_text(message)) + "\n")
    sys.stderr.flush()
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
