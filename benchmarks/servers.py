"""The servers a benchmark measures, each in its own process: fake LLM, rewind (record/forward/replay), mitmdump.

Also a bare asyncio byte splice (``splice``): the floor of what one more
Python hop costs on this machine, so rewind's figures can be read against it.

Each runs in a child process so that the client, the proxy and the upstream
do not share one GIL (as with ``rewind record``, where the agent is another
process). Driver side: :class:`Server` starts one and waits for its port.
Host side (``python benchmarks/servers.py KIND ...``): prints one JSON line
``{"port": N, ...}`` when it listens, serves until ``stop`` (or EOF) arrives
on stdin or ``--max-seconds`` pass, then cleans up and prints one JSON line
of figures (e.g. how many steps a recording committed, and how long that took).
A recording proxy told ``stop-nocommit`` only counts what it journalled.
``proxy --profile FILE`` writes a cProfile of the proxy's event-loop thread.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve()
MITM_VENV = Path(tempfile.gettempdir()) / "rewind-bench-mitm-venv"


class ServerError(RuntimeError):
    pass


def _readline(proc: subprocess.Popen, timeout: float) -> str:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        chunk = os.read(fd, 1)
        if not chunk:
            break
        if chunk == b"\n":
            return buf.decode()
        buf += chunk
    raise ServerError(f"no answer from {proc.args!r} within {timeout:.0f} s (got {buf[-200:]!r})")


class Server:
    """A benchmark server in a child process (driver side)."""

    def __init__(self, kind: str, *args: str, max_seconds: float = 900, start_timeout: float = 120) -> None:
        self.kind = kind
        cmd = [sys.executable, str(HERE), kind, "--max-seconds", str(max_seconds), *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=str(HERE.parents[1]))
        try:
            self.info = json.loads(_readline(self.proc, start_timeout))
        except BaseException:
            self.kill()
            raise
        self.port: int = self.info["port"]
        self.result: dict | None = None

    def stop(self, timeout: float = 120, *, commit: bool = True) -> dict:
        """Ask the server to finish; returns its final figures.

        A recording proxy commits its journal when ``commit`` (as ``rewind record`` does at the
        end of a run); without, it only counts what it journalled (quicker, for benchmarks that
        measure the relay).
        """
        if self.result is not None:
            return self.result
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"stop\n" if commit else b"stop-nocommit\n")
            self.proc.stdin.flush()
            self.result = json.loads(_readline(self.proc, timeout))
            self.proc.wait(10)
        except (ServerError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            self.kill()
            self.result = {"error": f"{type(e).__name__}: {e}"}
        return self.result

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_mitmproxy(timeout: float = 300) -> tuple[Path | None, str]:
    """mitmdump from its own virtualenv (installed on first use): (path or None, what happened)."""
    mitmdump = MITM_VENV / "bin" / "mitmdump"
    if mitmdump.exists():
        return mitmdump, "installed"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(MITM_VENV)], check=True, timeout=timeout,
                       capture_output=True)
        subprocess.run([str(MITM_VENV / "bin" / "pip"), "install", "-q", "mitmproxy"], check=True,
                       timeout=timeout, capture_output=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        detail = getattr(e, "stderr", b"") or b""
        last = detail.decode(errors="replace").strip().splitlines()[-1:] or [str(e)]
        shutil.rmtree(MITM_VENV, ignore_errors=True)
        return None, f"mitmproxy could not be installed: {last[0][:200]}"
    return (mitmdump, "installed now") if mitmdump.exists() else (None, "mitmproxy installed no mitmdump")


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the benchmark process dies (Linux), so nothing leaks."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Mitmdump:
    """``mitmdump -q --mode reverse:<upstream>`` on a free loopback port."""

    def __init__(self, mitmdump: Path, upstream_port: int, max_seconds: float = 900) -> None:
        self.port = free_port()
        self.confdir = tempfile.mkdtemp(prefix="rewind-bench-mitm-conf-")
        self.proc = subprocess.Popen(
            [str(mitmdump), "-q", "--mode", f"reverse:http://127.0.0.1:{upstream_port}",
             "--listen-host", "127.0.0.1", "--listen-port", str(self.port), "--set", f"confdir={self.confdir}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        self.deadline = threading.Timer(max_seconds, self.stop)  # bounded even if nobody stops it
        self.deadline.daemon = True
        self.deadline.start()
        if not wait_for_port(self.port, 60):
            self.stop()
            raise ServerError("mitmdump did not start listening within 60 s")

    def stop(self) -> None:
        self.deadline.cancel()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.confdir, ignore_errors=True)


# -- host side ---------------------------------------------------------------------------------

def _wait_for_stop(max_seconds: float) -> bool:
    """Block until ``stop`` (True), ``stop-nocommit`` or EOF on stdin, or ``max_seconds`` (False)."""
    end = time.monotonic() + max_seconds
    fd = sys.stdin.fileno()
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], min(1.0, max(0.0, end - time.monotonic())))
        if ready:
            line = os.read(fd, 64)
            if not line or b"stop-nocommit" in line:
                return False
            if b"stop" in line:
                return True
    return False


def _emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _host_fake(args: argparse.Namespace) -> None:
    from rewind_vcs.testing.fake_llm import FakeLLM

    fake = FakeLLM(chunk_delay=0.0, slow_delay=args.slow_delay).start()
    _emit({"port": fake.port})
    _wait_for_stop(args.max_seconds)
    requests = fake.request_count
    fake.stop()
    _emit({"requests": requests})


def _host_proxy(args: argparse.Namespace) -> None:
    """The proxy as ``rewind record`` runs it (record), or the same relay without a recorder (forward)."""
    from rewind_vcs.proxy.handler import ForwardHandler
    from rewind_vcs.proxy.recorder import Recorder
    from rewind_vcs.proxy.run import IdleFlusher, ProxySettings, RecordingHandler, start_proxy
    from rewind_vcs.store.records import EndInfo, SessionInfo
    from rewind_vcs.store.repo import Repo
    from rewind_vcs.store.writer import SessionWriter

    errors: list[str] = []
    lock = threading.Lock()

    def on_error(message: str) -> None:
        with lock:
            errors.append(message)

    profile = _profile_proxy_thread() if args.profile else None
    repo = Repo.init(args.repo)
    settings = ProxySettings(upstreams={"openai": args.upstream})
    routes = settings.routes({})
    flusher = recorder = None
    if args.mode == "record":
        info = SessionInfo(name="bench", command=["bench-client"], cwd=str(args.repo))
        writer = SessionWriter.create(repo, info)
        recorder = Recorder(repo, info, writer=writer)
        handler = RecordingHandler(recorder, settings.pool(), settings.timeout, on_error)
    else:
        handler = ForwardHandler(settings.pool(), None, settings.timeout, on_error=on_error)
    proxy = start_proxy(repo, handler, routes, on_error=on_error)
    if recorder is not None:
        flusher = IdleFlusher(recorder, handler).start()
    _emit({"port": proxy.port})
    commit = _wait_for_stop(args.max_seconds)
    out: dict = {}
    t0 = time.perf_counter()
    proxy.stop()
    if flusher is not None and recorder is not None:
        flusher.stop()
        pending = recorder.pending
        out["pending_at_stop"] = pending
        out["journalled"] = pending + sum(w.steps for w in recorder.writers())
        if commit:
            t1 = time.perf_counter()
            writers = recorder.finish(EndInfo(exit_code=0))
            out["finish_seconds"] = time.perf_counter() - t1
            out["steps"] = sum(w.steps for w in writers)
    out["stop_seconds"] = time.perf_counter() - t0
    out["errors"] = errors[:20]
    if profile is not None:
        profile.dump_stats(args.profile)
    _emit(out)
    if not commit:
        os._exit(0)  # leave the journal uncommitted: the repository is a scratch one, deleted next


def _host_splice(args: argparse.Namespace) -> None:
    """The floor of one more hop: a bare asyncio byte splice to the upstream, no HTTP parsing at all."""
    import asyncio

    upstream_port = int(args.upstream.rsplit(":", 1)[1].rstrip("/"))

    def nodelay(writer: asyncio.StreamWriter) -> None:
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        nodelay(writer)
        nodelay(up_writer)
        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    async def serve() -> None:
        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        _emit({"port": server.sockets[0].getsockname()[1]})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _wait_for_stop, args.max_seconds)
        server.close()
        _emit({})
        os._exit(0)  # connections may still be open in the pumps: nothing to wait for

    asyncio.run(serve())


def _profile_proxy_thread():
    """cProfile the proxy's event-loop thread (a diagnostic: ``--profile FILE``, read with pstats)."""
    import cProfile

    from rewind_vcs.proxy.server import ProxyServer

    profile = cProfile.Profile()
    serve = ProxyServer.serve

    async def profiled(self: ProxyServer) -> None:
        profile.enable()  # per thread: from here on, everything this loop's thread runs
        try:
            await serve(self)
        finally:
            profile.disable()

    ProxyServer.serve = profiled
    return profile


def _host_replay(args: argparse.Namespace) -> None:
    from rewind_vcs.proxy.replayer import ReplayHandler
    from rewind_vcs.proxy.run import ProxySettings, start_proxy
    from rewind_vcs.store.repo import Repo

    errors: list[str] = []
    repo = Repo.open(args.repo)
    t0 = time.perf_counter()
    steps = repo.session(args.session).timeline("main").steps
    handler = ReplayHandler(steps)
    load = time.perf_counter() - t0
    proxy = start_proxy(repo, handler, ProxySettings().routes({}), on_error=errors.append)
    _emit({"port": proxy.port, "load_seconds": load, "steps": len(steps)})
    _wait_for_stop(args.max_seconds)
    proxy.stop()
    _emit({"served": len(handler.stats.served), "misses": len(handler.stats.misses), "errors": errors[:20]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="kind", required=True)
    fake = sub.add_parser("fake")
    fake.add_argument("--slow-delay", type=float, default=0.01)
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--upstream", required=True)
    proxy.add_argument("--repo", required=True)
    proxy.add_argument("--mode", choices=["record", "forward"], default="record")
    proxy.add_argument("--profile", help="write a cProfile of the proxy thread here")
    splice = sub.add_parser("splice")
    splice.add_argument("--upstream", required=True)
    replay = sub.add_parser("replay")
    replay.add_argument("--repo", required=True)
    replay.add_argument("--session", required=True)
    for p in (fake, proxy, splice, replay):
        p.add_argument("--max-seconds", type=float, default=900)
    args = ap.parse_args()
    {"fake": _host_fake, "proxy": _host_proxy, "splice": _host_splice, "replay": _host_replay}[args.kind](args)


if __name__ == "__main__":
    main()
