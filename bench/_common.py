"""Benchmark scaffolding shared by the scripts in ``bench/``; nothing here is measured itself.

What the scripts have in common: the PASS/FAIL words and the closing summary with its JSON report,
the machine and package-version lines every run starts with, the argument parser, nearest-rank
percentiles and interleaved rounds, reading a process's CPU time and memory from ``/proc``, and the
uvicorn child processes on 127.0.0.1 (the child's side: a listening socket, serving, a stats
endpoint; the parent's side: starting, waiting for, asking and stopping them).

The scripts are run by path (``python bench/middleware.py``), so this directory is first on
``sys.path`` and they, and the server children they start the same way, import this module as
``_common``. It imports nothing from this package, uvicorn or orjson at import time: the
translation benchmark chooses its JSON backend before ``asgi_sse_adapter`` is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal, TypeVar

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

T = TypeVar("T")
C = TypeVar("C", bound="Child")

STATS_PATH = "/_bench/stats"

# --------------------------------------------------------------------------------------------
# Verdicts, the summary and the report


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_line(failures: Sequence[str], passed: str = "PASS: all targets met") -> str:
    """The run's last line: every missed target, or ``passed``."""
    return ("FAIL: " + "; ".join(failures)) if failures else passed


def write_report(path: str, report: object, indent: int | None = 1) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=indent)


def finish(report: dict[str, Any], failures: list[str], started: float, path: str | None) -> int:
    """End a run that started at ``started`` (``time.monotonic()``): complete ``report`` and write
    it to ``path`` (if any), print the time taken and the summary; return the exit status."""
    report["failures"] = failures
    report["load_average_end"] = os.getloadavg()
    report["seconds"] = time.monotonic() - started
    if path:
        write_report(path, report)
    print(f"({time.monotonic() - started:.0f} s)")
    print(summary_line(failures))
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# The machine, the versions, the command line


def nproc() -> int:
    return os.cpu_count() or 1


def machine_line(load_average: bool = True) -> str:
    """Python, the machine, its CPUs and (optionally) its load average now."""
    line = (
        f"python {platform.python_version()} ({platform.python_implementation()}, "
        f"{platform.machine()}), nproc {nproc()}"
    )
    if load_average:
        line += f", load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    return line


def dist_version(dist: str, missing: str = "?") -> str:
    """The installed version of distribution ``dist``, or ``missing``."""
    try:
        return version(dist)
    except PackageNotFoundError:
        return missing


def versions_line(*dists: str, missing: str = "?") -> str:
    """``name version`` of each distribution, comma-separated."""
    return ", ".join(f"{dist} {dist_version(dist, missing)}" for dist in dists)


def arg_parser(
    doc: str | None, quick: str | None = "fewer rounds (smoke run)", report: bool = False
) -> argparse.ArgumentParser:
    """A parser described by the first line of the script's docstring, with ``--quick`` (its
    help ``quick``; left out if ``None``) and, if ``report``, ``--report FILE``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if report:
        parser.add_argument("--report", help="write the figures as JSON to this file")
    return parser


def print_header(header: str) -> None:
    """A table's header line, underlined."""
    print(header)
    print("-" * len(header))


# --------------------------------------------------------------------------------------------
# Statistics and scheduling


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def interleaved(items: Iterable[T], rounds: int, seed: int) -> Iterator[T]:
    """``items``, ``rounds`` times over, each round in a new shuffled order (the previous round's
    order shuffled again by ``random.Random(seed)``): contenders measured close in time, so that
    the machine's load changing during a run weighs on all of them alike."""
    order = list(items)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        yield from order


def split(stream: bytes, size: int) -> list[bytes]:
    """The stream as consecutive reads of ``size`` bytes."""
    return [stream[i : i + size] for i in range(0, len(stream), size)]


# --------------------------------------------------------------------------------------------
# Processes: /proc (Linux)


def proc_status(
    pid: int | str = "self", names: Sequence[str] = ("VmRSS", "VmHWM")
) -> dict[str, int]:
    """The ``names`` lines of ``/proc/<pid>/status`` (memory figures), in KiB."""
    out: dict[str, int] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            name, _, value = line.partition(":")
            if name in names:
                out[name] = int(value.split()[0])
                if len(out) == len(names):
                    break
    return out


def rss_kib(pid: int | str = "self") -> int:
    """A process's resident memory (``VmRSS``), in KiB."""
    return proc_status(pid, ("VmRSS",))["VmRSS"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (``/proc/<pid>/stat``, in clock ticks)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------------------------
# Server children: the child's side


def listen_socket() -> socket.socket:
    """A TCP socket bound to a free port on 127.0.0.1, for a child to serve on."""
    # proto=IPPROTO_TCP as uvicorn's own bind gets it from getaddrinfo: asyncio sets TCP_NODELAY
    # only on sockets whose proto says TCP (with proto 0, Nagle holds back every small event
    # behind the client's 40 ms delayed ACK).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def announce(sock: socket.socket) -> None:
    """Tell the parent (``Child.start``) the port: the child's first line on stdout."""
    print(sock.getsockname()[1], flush=True)


def run_uvicorn(
    app: Any,
    sock: socket.socket,
    *,
    lifespan: Literal["on", "off"],
    timeout_keep_alive: int,
    backlog: int = 2048,
) -> None:
    """Serve ``app`` on ``sock`` with uvicorn (``http="httptools"``, ``loop="asyncio"``, no
    logs below warnings, no access log) until terminated; announce the port first. ``backlog``
    defaults to uvicorn's own default."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http="httptools",
        loop="asyncio",
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        backlog=backlog,
        timeout_keep_alive=timeout_keep_alive,
    )
    announce(sock)
    uvicorn.Server(config).run(sockets=[sock])


class StatsEndpoint:
    """``GET /_bench/stats``: ``snapshot(scope)`` as JSON (with ``json_headers``, sent with
    ``content-type`` and ``content-length``). Everything else goes to the app with the server's
    own ``send`` (no per-message cost)."""

    def __init__(
        self,
        app: ASGIApp,
        snapshot: Callable[[Scope], dict[str, Any]],
        json_headers: bool = False,
    ) -> None:
        self.app = app
        self.snapshot = snapshot
        self.json_headers = json_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STATS_PATH:
            await self.app(scope, receive, send)
            return
        body = json.dumps(self.snapshot(scope)).encode()
        headers: list[tuple[bytes, bytes]] = []
        if self.json_headers:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})


# --------------------------------------------------------------------------------------------
# Server children: the parent's side


def _accepts(child: Child) -> None:
    with socket.create_connection(("127.0.0.1", child.port), timeout=1):
        pass


@dataclass
class Child:
    """A server child process: this script run again with ``--serve KIND``, on 127.0.0.1."""

    kind: str
    proc: subprocess.Popen[str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    def start(
        cls: type[C],
        script: str,
        kind: str,
        *args: str,
        ready: Callable[[C], object] = _accepts,
        timeout: float = 20.0,
    ) -> C:
        """Run ``script --serve kind *args`` (its child announces the port), then wait until
        ``ready(child)`` stops raising ``OSError`` (by default: it accepts a connection), for at
        most ``timeout`` seconds."""
        cmd = [sys.executable, os.path.abspath(script), "--serve", kind, *args]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            proc.wait()
            raise RuntimeError(f"server {kind} did not start (exit {proc.returncode})")
        child = cls(kind, proc, int(line))
        deadline = time.monotonic() + timeout
        while True:
            try:
                ready(child)
                return child
            except OSError:
                if time.monotonic() > deadline:
                    child.stop()
                    raise
                time.sleep(0.05)

    def stats(self, query: str = "") -> dict[str, Any]:
        """What the child's ``StatsEndpoint`` says (``query``: its query string)."""
        url = self.url + STATS_PATH + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=30) as resp:
            result: dict[str, Any] = json.load(resp)
        return result

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stop_all(children: Iterable[Child]) -> None:
    for child in children:
        child.stop()
