"""Headless Chromium for the share tests: find it, install it if missing, render pages.

The tests install the browser themselves: ``chromium``, ``chromium-browser`` or
``google-chrome`` on PATH, else ``apt-get install -y chromium`` (as root,
non-interactive, ``apt-get update`` first when the package lists are missing),
all within a time budget. Without it, the tests fail with a clear message when
``CI`` is set, and are skipped on a developer machine without apt.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL_BUDGET_S = 600.0
RENDER_TIMEOUT_S = 30.0
_LOCK = Path(tempfile.gettempdir()) / "rewind-tests-chromium-install.lock"

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


@dataclass
class Unavailable:
    """Why there is no browser, and whether that may be skipped (not in CI, no apt)."""

    reason: str
    skippable: bool


def find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def _run(cmd: list[str], deadline: float, env: dict[str, str]) -> subprocess.CompletedProcess:
    left = deadline - time.monotonic()
    if left <= 0:
        raise subprocess.TimeoutExpired(cmd, 0)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=left, stdin=subprocess.DEVNULL)


def ensure(in_ci: bool) -> str | Unavailable:
    """The path of a Chromium binary, installing it with apt when needed."""
    found = find()
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        return Unavailable("no chromium on PATH and no apt-get to install it", skippable=not in_ci)
    if os.geteuid() != 0:
        return Unavailable("no chromium on PATH, and installing it needs root (apt-get)", skippable=not in_ci)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    deadline = time.monotonic() + INSTALL_BUDGET_S
    install = [apt, "install", "-y", "chromium"]
    _LOCK.touch(exist_ok=True)
    with _LOCK.open() as lock:  # pytest-xdist workers: one apt at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = find()
        if found:
            return found
        try:
            proc = _run(install, deadline, env)
            if proc.returncode != 0:  # most often: no package lists yet
                update = _run([apt, "update"], deadline, env)
                if update.returncode != 0:
                    return Unavailable(f"apt-get update failed: {update.stderr.strip()[-500:]}", skippable=False)
                proc = _run(install, deadline, env)
        except subprocess.TimeoutExpired:
            return Unavailable(f"installing chromium took over {INSTALL_BUDGET_S:.0f} s", skippable=False)
        if proc.returncode != 0:
            return Unavailable(f"apt-get install chromium failed: {proc.stderr.strip()[-500:]}", skippable=False)
    found = find()
    return found or Unavailable("apt-get installed chromium but no binary is on PATH", skippable=False)


@dataclass
class Browser:
    binary: str

    def _command(self, page: Path, profile: str, *extra: str) -> list[str]:
        return [self.binary, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]

    def _run(self, page: Path, *extra: str) -> tuple[int, str, str]:
        """Run Chromium in its own process group, killed whole if it outlives the timeout."""
        with tempfile.TemporaryDirectory(prefix="rewind-chromium-") as profile:
            proc = subprocess.Popen(
                self._command(page, profile, *extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL, text=True, start_new_session=True,
            )
            try:
                out, err = proc.communicate(timeout=RENDER_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise AssertionError(
                    f"chromium did not finish {page.name} in {RENDER_TIMEOUT_S:.0f} s: a page script hung "
                    "or opened a dialog (did an injected alert() run?)"
                ) from None
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        return proc.returncode, out, err

    def dump_dom(self, page: Path) -> str:
        """The DOM after the page's scripts ran, serialised."""
        code, out, err = self._run(page, "--dump-dom")
        assert code == 0, f"chromium --dump-dom failed ({code}): {err[-2000:]}"
        return out

    def screenshot(self, page: Path, out: Path, width: int = 1280, height: int = 1700) -> Path:
        code, _, err = self._run(page, f"--screenshot={out}", f"--window-size={width},{height}")
        assert code == 0 and out.exists(), f"chromium --screenshot failed ({code}): {err[-2000:]}"
        return out
