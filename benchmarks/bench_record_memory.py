"""Peak memory of recording one huge response, and of an endless stream.

Run: python benchmarks/bench_record_memory.py [--mb 200] [--endless-mb 400]

Three processes, as under ``rewind record``: an upstream that answers any
POST with one JSON body of ``--mb`` MB (or, with ``--endless``, a chunked
stream that never ends), the real ``rewind record`` CLI, and its child, a
small client that reads the body and throws it away. The figure is the peak
RSS of the ``rewind record`` process (``wait4``'s ``ru_maxrss``) minus the
peak of the same command recording a tiny body, divided by the body's size:
what recording the body costs, start-up aside. The endless run samples the
recorder's RSS while the client reads ``--endless-mb`` MB, then hangs up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

UPSTREAM = textwrap.dedent(
    """
    import socket, sys, threading
    size, endless = int(sys.argv[1]), sys.argv[2] == "endless"
    head_json = b'{"id":"chatcmpl-big","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"'
    tail_json = b'"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1}}'
    words = b"the quick brown fox jumps over the lazy dog while rewind records every byte of it "
    piece = (words * (65536 // len(words) + 1))[:65536]
    def serve(conn):
        data = b""
        while b"\\r\\n\\r\\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\\r\\n\\r\\n")
        n = 0
        for line in head.split(b"\\r\\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(body) < n:
            body += conn.recv(65536)
        try:
            if endless:
                conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: text/event-stream\\r\\ntransfer-encoding: chunked\\r\\n\\r\\n")
                event = b"data: " + piece[:4000] + b"\\n\\n"
                frame = b"%x\\r\\n" % len(event) + event + b"\\r\\n"
                while True:
                    conn.sendall(frame * 16)
            body_len = size - len(head_json) - len(tail_json)
            conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: %d\\r\\n\\r\\n" % size + head_json)
            left = body_len
            while left > 0:
                conn.sendall(piece[: min(left, len(piece))])
                left -= len(piece)
            conn.sendall(tail_json)
        except OSError:
            pass
        finally:
            conn.close()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    print(srv.getsockname()[1], flush=True)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
    """
)

CLIENT = textwrap.dedent(
    """
    import http.client, json, os, sys, urllib.parse
    limit = int(sys.argv[1])
    url = urllib.parse.urlsplit(os.environ["OPENAI_BASE_URL"])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "big"}]})
    conn.request("POST", url.path + "/chat/completions", body, {"content-type": "application/json"})
    resp = conn.getresponse()
    n = 0
    while limit <= 0 or n < limit:
        data = resp.read(1 << 20)
        if not data:
            break
        n += len(data)
    print(n, flush=True)
    conn.close()
    """
)


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def record(workdir: Path, size: int, *, endless_limit: int = 0) -> tuple[int, int, list[int], str]:
    """Record one call; returns (peak RSS KB of rewind, bytes the client read, RSS samples taken
    while the client was reading, stderr)."""
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(size), "endless" if endless_limit else "once"],
                                stdout=subprocess.PIPE, text=True)
    try:
        port = int(upstream.stdout.readline())
        (workdir / "client.py").write_text(CLIENT)
        env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper() and not k.startswith("OPENAI_")}
        env["REWIND_UPSTREAM_OPENAI"] = f"http://127.0.0.1:{port}"
        env["PYTHONPATH"] = str(ROOT)
        proc = subprocess.Popen([sys.executable, "-m", "rewind_vcs", "record", "--", sys.executable, "client.py",
                                 str(endless_limit)], cwd=workdir, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                samples.append(_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        first = proc.stdout.readline()  # the client's byte count: printed when it is done reading
        streamed = len(samples)
        out = first + proc.stdout.read()
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"rewind record failed ({proc.returncode}): {err.decode(errors='replace')}")
        return usage.ru_maxrss, int(out.split()[-1]), samples[:streamed], err.decode(errors="replace")
    finally:
        upstream.kill()
        upstream.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--endless-mb", type=int, default=0, help="also record an endless stream, read this far")
    args = ap.parse_args()
    size = args.mb * 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        base_dir, big_dir = Path(tmp) / "base", Path(tmp) / "big"
        base_dir.mkdir()
        big_dir.mkdir()
        base_peak, _, _, _ = record(base_dir, 10_000)
        t0 = time.perf_counter()
        big_peak, got, _, _ = record(big_dir, size)
        seconds = time.perf_counter() - t0
        assert got == size, (got, size)
        ratio = (big_peak - base_peak) * 1024 / size
        print(f"body {size / 1e6:.0f} MB: rewind record peak RSS {big_peak / 1024:.0f} MB, "
              f"tiny body {base_peak / 1024:.0f} MB; recording cost {ratio:.2f}x the body ({seconds:.1f} s)")
        if args.endless_mb:
            end_dir = Path(tmp) / "endless"
            end_dir.mkdir()
            limit = args.endless_mb * 1_000_000
            peak, got, samples, _ = record(end_dir, 0, endless_limit=limit)
            live = [s for s in samples if s]
            print(f"endless stream, {got / 1e6:.0f} MB read: recorder RSS while streaming at most "
                  f"{max(live) / 1024:.0f} MB ({len(live)} samples, the last {live[-1] / 1024:.0f} MB); "
                  f"peak including commit and pack {peak / 1024:.0f} MB")
        print(f"ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
