"""Run the ``rewind`` command in-process, as a user types it, and capture what it prints.

``run_cli`` calls :func:`rewind_vcs.cli.main.main` (so the one-line error
printer, the ``--`` split and the settings load are exercised) inside typer's
``CliRunner`` isolation: stdin, stdout and stderr are buffers, the environment
is overridden for the call, the working directory is ``cwd``. It returns the
same shape as ``subprocess.CompletedProcess`` (``returncode``, ``stdout``,
``stderr``), so a test can switch between it and the real subprocess fixture.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Ran:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str, cwd: Path | str, env: Mapping[str, str | None] | None = None,
            input: str | None = None) -> Ran:
    from typer.testing import CliRunner

    from rewind_vcs.cli.main import main

    overrides: dict[str, str | None] = {"COLUMNS": "200", "REWIND_DIR": None, "NO_COLOR": None}
    overrides.update(env or {})
    runner = CliRunner()
    old = os.getcwd()
    code = 0
    with runner.isolation(input=input, env=overrides) as (out, err, _mixed):
        os.chdir(cwd)
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            os.chdir(old)
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
    return Ran(args, code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"))
