"""``cli``: the rewind command run in-process (fast); ``rewind`` (tests/conftest.py) is the subprocess."""

from __future__ import annotations

import pytest

from tests.clirun import Ran, run_cli


@pytest.fixture
def cli(tmp_path):
    """Run ``rewind ARGS`` in-process in ``tmp_path``; same interface as the ``rewind`` fixture."""

    def run(*args: str, cwd=None, env=None, input=None, timeout=None, check=False) -> Ran:
        proc = run_cli(*args, cwd=cwd or tmp_path, env=env, input=input)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return run
