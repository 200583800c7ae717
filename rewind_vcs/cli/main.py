"""The ``rewind`` command: a thin typer skin over the library.

Every command lives in a small module of this package and does three things:
parse its arguments, call the library, print. Errors the user can cause are
:class:`~rewind_vcs.errors.RewindError`; :func:`main` prints their one line on
stderr and exits with their code, never a traceback (``REWIND_DEBUG=1`` shows
one). Heavy modules are imported inside the commands, so ``rewind --help``
stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from rewind_vcs.cli import maint, read, refs

app = typer.Typer(
    name="rewind",
    help="A time-travel debugger for AI agents: record, replay, fork, diff and bisect agent runs, "
    "stored as a git repository in .rewind/.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

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

    argv = _split_trailing(list(sys.argv[1:] if argv is None else argv))
    try:
        app(args=argv)  # click's standalone mode handles usage errors and --help itself
    except RewindError as exc:
        _fail(f"rewind: {exc}", exc.exit_code)
    except KeyboardInterrupt:
        _fail("rewind: interrupted", 130)
    except SystemExit:
        sys.stdout.flush()
        raise
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("REWIND_DEBUG"):
            raise
        _fail(_describe_unexpected(exc), 1)
    return 0


def _split_trailing(argv: list[str]) -> list[str]:
    """``rewind record|replay ... -- CMD ARGS``: keep CMD ARGS untouched, away from click."""
    if "--" in argv and any(a in ("record", "replay") for a in argv[: argv.index("--")]):
        from rewind_vcs.cli import record

        i = argv.index("--")
        record.trailing = argv[i + 1 :]
        return argv[:i]
    return argv


def _describe_unexpected(exc: Exception) -> str:
    kind = type(exc).__name__
    if kind == "GitError" or isinstance(exc, OSError):
        return f"rewind: {exc} (the repository may be damaged: run 'rewind fsck')"
    return f"rewind: internal error: {kind}: {exc} (set REWIND_DEBUG=1 for the traceback, and report it)"


def _fail(message: str, code: int) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr)
    raise SystemExit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
