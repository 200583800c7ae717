"""Every environment variable rewind reads, read once per command, in one place.

:func:`rewind_vcs.cli.main.main` calls :func:`load` as a command starts; the
commands ask :func:`current`. Nothing else in the package reads ``os.environ``
(tests/test_layers.py checks the library; this module is the CLI's one reader),
so the whole environment contract is the table below:

=========================  ===================================================
``REWIND_DIR``             the repository to use instead of searching upward
``REWIND_DEBUG``           show tracebacks of internal errors
``REWIND_UPSTREAM_OPENAI``, ``_ANTHROPIC``, ``_GEMINI``
                           where that provider's calls go (``--upstream`` wins)
``REWIND_UPSTREAM_TIMEOUT``  seconds an upstream call may take (default 600)
``REWIND_UPSTREAM_CA``     a CA bundle for upstream TLS
``REWIND_GIT_TOKEN``, ``GIT_TOKEN``, ``REWIND_GIT_USERNAME``, ``SSH_AUTH_SOCK``
                           credentials for remotes
``NO_COLOR``               no colours in tables (https://no-color.org)
=========================  ===================================================

The full environment is kept too (:attr:`Settings.environ`): the commands a
user runs (``record``, ``replay``, ``bisect run``) inherit it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["Settings", "load", "current", "PROVIDERS"]

#: providers whose upstream can be overridden by ``REWIND_UPSTREAM_<NAME>``
PROVIDERS = ("openai", "anthropic", "gemini")
DEFAULT_TIMEOUT = 600.0


@dataclass(frozen=True)
class Settings:
    """What the environment says, parsed."""

    rewind_dir: str | None = None
    debug: bool = False
    no_color: bool = False
    upstreams: dict[str, str] = field(default_factory=dict)
    timeout_text: str = ""
    upstream_ca: str | None = None
    git_token: str | None = None
    git_username: str | None = None
    ssh_agent: bool = False
    environ: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Settings:
        """Read ``env`` (values whose parsing can fail are parsed where they are used)."""
        return cls(
            rewind_dir=env.get("REWIND_DIR") or None,
            debug=bool(env.get("REWIND_DEBUG")),
            no_color=bool(env.get("NO_COLOR")),
            upstreams={p: v for p in PROVIDERS if (v := env.get(f"REWIND_UPSTREAM_{p.upper()}"))},
            timeout_text=env.get("REWIND_UPSTREAM_TIMEOUT") or "",
            upstream_ca=env.get("REWIND_UPSTREAM_CA") or None,
            git_token=env.get("REWIND_GIT_TOKEN") or env.get("GIT_TOKEN") or None,
            git_username=env.get("REWIND_GIT_USERNAME") or None,
            ssh_agent=bool(env.get("SSH_AUTH_SOCK")),
            environ=dict(env),
        )

    def upstream_timeout(self) -> float:
        """``REWIND_UPSTREAM_TIMEOUT`` in seconds; a malformed value is a one-line ConfigError
        (raised by the commands that use it, so a typo never breaks ``rewind log``)."""
        text = self.timeout_text.strip()
        if not text:
            return DEFAULT_TIMEOUT
        try:
            value = float(text)
        except ValueError:
            value = -1.0
        if not 0 < value < float("inf"):
            from rewind_vcs.cli.safe import safe_text
            from rewind_vcs.errors import ConfigError

            raise ConfigError(f"REWIND_UPSTREAM_TIMEOUT={safe_text(text[:40])} is not a number of seconds",
                              hint="set it to e.g. 600, or unset it")
        return value


_current: Settings | None = None


def load() -> Settings:
    """Read the environment now (each command, in-process tests included, starts with this)."""
    global _current
    _current = Settings.from_environ(os.environ)
    return _current


def current() -> Settings:
    """The settings of the running command (read on first use if :func:`load` was not called)."""
    return _current if _current is not None else load()
