"""The environment is read once, in one place (rewind_vcs.cli.settings)."""

from __future__ import annotations

import pytest

from rewind_vcs.cli.settings import DEFAULT_TIMEOUT, Settings
from rewind_vcs.errors import ConfigError


def test_every_variable_is_parsed():
    s = Settings.from_environ({
        "REWIND_DIR": "/r/.rewind", "REWIND_DEBUG": "1", "NO_COLOR": "1",
        "REWIND_UPSTREAM_OPENAI": "http://127.0.0.1:1", "REWIND_UPSTREAM_GEMINI": "http://g",
        "REWIND_UPSTREAM_TIMEOUT": "2.5", "REWIND_UPSTREAM_CA": "/ca.pem",
        "GIT_TOKEN": "t1", "REWIND_GIT_USERNAME": "me", "SSH_AUTH_SOCK": "/sock", "OTHER": "x",
    })
    assert s.rewind_dir == "/r/.rewind" and s.debug and s.no_color
    assert s.upstreams == {"openai": "http://127.0.0.1:1", "gemini": "http://g"}
    assert s.upstream_timeout() == 2.5 and s.upstream_ca == "/ca.pem"
    assert s.git_token == "t1" and s.git_username == "me" and s.ssh_agent
    assert s.environ["OTHER"] == "x"  # what the user's commands inherit
    assert Settings.from_environ({"REWIND_GIT_TOKEN": "a", "GIT_TOKEN": "b"}).git_token == "a"


def test_defaults_and_empty_values():
    s = Settings.from_environ({"REWIND_DIR": "", "NO_COLOR": "", "REWIND_UPSTREAM_TIMEOUT": " "})
    assert s.rewind_dir is None and not s.no_color and not s.debug and s.upstreams == {}
    assert s.upstream_timeout() == DEFAULT_TIMEOUT and s.git_token is None and not s.ssh_agent


@pytest.mark.parametrize("bad", ["soon", "-1", "0", "inf", "nan"])
def test_a_bad_timeout_is_a_one_line_config_error(bad):
    s = Settings.from_environ({"REWIND_UPSTREAM_TIMEOUT": bad})
    with pytest.raises(ConfigError, match="REWIND_UPSTREAM_TIMEOUT") as info:
        s.upstream_timeout()
    assert "\n" not in str(info.value)


def test_only_settings_reads_the_environment_in_the_cli():
    """grep: no other CLI module touches os.environ / os.getenv."""
    from pathlib import Path

    import rewind_vcs.cli as cli_pkg

    offenders = []
    for path in Path(cli_pkg.__file__).parent.glob("*.py"):
        if path.name == "settings.py":
            continue
        text = path.read_text()
        if "os.environ" in text or "os.getenv" in text or "getenv(" in text:
            offenders.append(path.name)
    assert offenders == []
