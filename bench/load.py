"""Load benchmark: N concurrent streams through ``UpstreamProxy`` to the fake LLM, each checked.

Run ``python bench/load.py`` (1 000 streams; ``--streams 200`` or ``--quick`` for a smaller run).
It prints a table of figures and a PASS/FAIL line, and exits with status 1 when any stream lost,
duplicated or reordered an event, failed, or ended wrongly. Everything runs on 127.0.0.1 and is
bounded in count and time (``--deadline``, default 120 s).

Processes: the fake LLM (``example_app.fake_upstream.FakeUpstream``) and the proxy each run under
uvicorn (``http="httptools"``, asyncio loop) in a child process of their own, so the proxy's
memory is measured alone; the proxy child serves one ``UpstreamProxy`` per upstream format, each
under the path prefix ``/<format>`` (``root_path``, as a Starlette ``Mount`` would). The clients
run in this process: one ``httpx.AsyncClient``, all streams started at once.

Streams: the 25 directed format pairs in turn (stream k uses pair k mod 25); the fake's ``long``
scenario with ``--deltas`` text deltas (default 32) ``--pace`` seconds apart (default 0.05), so
the streams overlap for their whole length. Check per stream: the text deltas, concatenated,
number the words 0, 1, …, deltas-1 exactly once and in order (nothing lost, duplicated or
reordered), no error event, and the stream ends the way its client format ends.

Figures: streams checked; the most streams open at once (as the clients saw it); time to first
event (request sent → first body bytes; the proxy sends whole events only) p50, p99 and max;
wall time; upstream events through the proxy per second; the proxy child's resident memory
before, at its peak during the run (``VmHWM`` after resetting it through ``clear_refs``), after,
and the peak per open stream. The same streams straight to the fake (``--direct``, default on)
give the baseline time to first event under the same client load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from _common import (
    Child,
    Receive,
    Scope,
    Send,
    arg_parser,
    cpu_seconds,
    listen_socket,
    percentile,
    proc_status,
    run_uvicorn,
    versions_line,
)

from asgi_sse_adapter.formats import FORMATS

PAIRS = [(u, c) for u in FORMATS for c in FORMATS]
ENDPOINTS = {
    "openai-chat": "/v1/chat/completions",
    "openai-text": "/v1/completions",
    "openai-responses": "/v1/responses",
    "anthropic-messages": "/v1/messages",
    "anthropic-text": "/v1/complete",
}


# --------------------------------------------------------------------------------------------
# Servers (child processes)


class Router:
    """One ``UpstreamProxy`` per upstream format, each under ``/<format>``."""

    def __init__(self, upstream_url: str) -> None:
        from asgi_sse_adapter import UpstreamProxy

        self.proxies = {fmt: UpstreamProxy(upstream_url, upstream_format=fmt) for fmt in FORMATS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    for proxy in self.proxies.values():
                        await proxy.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        prefix = "/" + scope["path"].split("/")[1]
        target = self.proxies.get(prefix[1:])
        if target is None or scope["type"] != "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await target(dict(scope, root_path=scope.get("root_path", "") + prefix), receive, send)


def serve(role: str, upstream_url: str | None) -> None:
    """Child process: serve the fake or the proxy router on a free port; print the port."""
    app: Any
    if role == "fake":
        from example_app.fake_upstream import FakeUpstream

        app = FakeUpstream(log_size=1)
    else:
        assert upstream_url is not None
        app = Router(upstream_url)
    sock = listen_socket()
    run_uvicorn(
        app, sock, lifespan="on" if role == "proxy" else "off", backlog=8192, timeout_keep_alive=30
    )


def start_child(role: str, upstream_url: str | None = None) -> Child:
    """A server child serving ``role``, once it accepts connections."""
    args = ["--upstream-url", upstream_url] if upstream_url else []
    return Child.start(__file__, role, *args, timeout=10)


def memory_bytes(pid: int) -> dict[str, int]:
    """``VmRSS`` and ``VmHWM`` of a process, in bytes."""
    return {name: kib * 1024 for name, kib in proc_status(pid).items()}


def upstream_events(deltas: int, streams: int) -> int:
    """How many events the fake sends for ``streams`` streams of the pairs in turn."""
    from example_app.fake_upstream import Knobs, render_stream

    per_format = {
        fmt: len(render_stream(ENDPOINTS[fmt], request_body(fmt), Knobs("long", deltas)))
        for fmt in FORMATS
    }
    return sum(per_format[PAIRS[n % len(PAIRS)][0]] for n in range(streams))


def reset_peak(pid: int) -> bool:
    """Reset a process's ``VmHWM`` to its current RSS (Linux ``clear_refs`` 5)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Clients


def request_body(fmt: str) -> dict[str, Any]:
    """A streaming request in client format ``fmt`` (usage asked for where it exists)."""
    body: dict[str, Any]
    if fmt == "openai-chat":
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    elif fmt == "openai-text":
        body = {"model": "m", "prompt": "hi"}
    elif fmt == "openai-responses":
        body = {"model": "m", "input": "hi"}
    elif fmt == "anthropic-messages":
        body = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    else:
        body = {"model": "m", "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 100}
    body["stream"] = True
    if fmt in ("openai-chat", "openai-text"):
        body["stream_options"] = {"include_usage": True}
    return body


def events_of(body: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each event of an LF-framed client stream."""
    out: list[tuple[str | None, str]] = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        name = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        if data:
            out.append((name, "\n".join(data)))
    return out


def check_stream(client: str, body: bytes, deltas: int) -> str | None:
    """Why a client stream of the ``long`` scenario is wrong, or ``None``."""
    texts: list[str] = []
    last: tuple[str | None, str] | None = None
    for name, data in events_of(body):
        last = (name, data)
        if data == "[DONE]":
            continue
        payload = json.loads(data)
        if name == "error" or (isinstance(payload, dict) and payload.get("error")):
            return f"error event: {data[:200]}"
        if client == "openai-chat":
            texts += [c["delta"].get("content") or "" for c in payload.get("choices", [])]
        elif client == "openai-text":
            texts += [c["text"] for c in payload.get("choices", [])]
        elif client == "openai-responses":
            if payload["type"] == "response.output_text.delta":
                texts.append(payload["delta"])
        elif client == "anthropic-messages":
            if payload["type"] == "content_block_delta":
                texts.append(payload["delta"].get("text", ""))
        else:
            texts.append(payload.get("completion", ""))
    numbers = [int(re.sub(r"\D", "", word)) for word in "".join(texts).split()]
    if numbers != list(range(deltas)):
        missing = sorted(set(range(deltas)) - set(numbers))
        return f"words {numbers[:8]}… ({len(numbers)}; missing {missing[:8]})"
    if last is None:
        return "empty stream"
    name, data = last
    ending = {
        "openai-chat": data == "[DONE]",
        "openai-text": data == "[DONE]",
        "openai-responses": name == "response.completed",
        "anthropic-messages": name == "message_stop",
        "anthropic-text": name == "completion" and bool(json.loads(data).get("stop_reason")),
    }[client]
    return None if ending else f"ends with {name} {data[:80]}"


@dataclass
class Run:
    """What one batch of concurrent streams measured (``max_open``: connections open at once,
    as the clients count them)."""

    label: str
    ttfe: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    max_open: int = 0
    events: int = 0


async def fetch(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, float, bytes]:
    """POST ``body`` over a fresh connection with a minimal HTTP/1.1 client (much lighter than
    a full client library, so the figures are the servers' rather than the client's); return
    (status, seconds to the first body bytes, the de-chunked body)."""
    host, _, port = url.removeprefix("http://").partition("/")[0].partition(":")
    path = "/" + url.removeprefix("http://").partition("/")[2]
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = f"POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        writer.write(head.encode() + body)
        response = await reader.readuntil(b"\r\n\r\n")
        status = int(response.split(b" ", 2)[1])
        if b"transfer-encoding: chunked" not in response.lower():
            return status, time.perf_counter() - started, await reader.read()
        chunks: list[bytes] = []
        first = 0.0
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()
                break
            data = await reader.readexactly(size + 2)
            if not chunks:
                first = time.perf_counter() - started
            chunks.append(data[:-2])
        return status, first, b"".join(chunks)
    finally:
        writer.close()


async def run_streams(
    label: str,
    target: Callable[[str, str], tuple[str, str]],
    streams: int,
    deltas: int,
    pace: float,
    deadline: float,
) -> Run:
    run = Run(label)
    knobs = {"x-fake-scenario": "long", "x-fake-deltas": str(deltas), "x-fake-pace": str(pace)}
    open_now = 0

    async def one(n: int) -> None:
        nonlocal open_now
        upstream, wanted = PAIRS[n % len(PAIRS)]
        url, client = target(upstream, wanted)
        open_now += 1
        run.max_open = max(run.max_open, open_now)
        try:
            status, first, body = await fetch(url, json.dumps(request_body(client)).encode(), knobs)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            run.failures.append(f"{upstream}->{client}: {exc.__class__.__name__} {exc}")
            return
        finally:
            open_now -= 1
        if status != 200:
            run.failures.append(f"{upstream}->{client}: HTTP {status}")
            return
        run.ttfe.append(first)
        problem = check_stream(client, body, deltas)
        if problem is not None:
            run.failures.append(f"{upstream}->{client}: {problem}")

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(streams))), timeout=deadline)
    run.elapsed = time.perf_counter() - started
    return run


# --------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__, quick=None)
    parser.add_argument("--streams", type=int, default=1000, help="concurrent streams")
    parser.add_argument("--deltas", type=int, default=32, help="text deltas per stream")
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between deltas")
    parser.add_argument("--deadline", type=float, default=120.0, help="bound on each run (s)")
    parser.add_argument("--no-direct", action="store_true", help="skip the baseline run")
    parser.add_argument("--quick", action="store_true", help="200 streams (smoke run)")
    parser.add_argument("--serve", choices=("fake", "proxy"), help=argparse.SUPPRESS)
    parser.add_argument("--upstream-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.upstream_url)
        return 0
    streams = 200 if args.quick else args.streams

    fake = start_child("fake")
    proxy = start_child("proxy", fake.url)
    try:
        # Warm up: every pair once, so imports and first-use costs are not in the figures.
        asyncio.run(
            run_streams(
                "warm-up",
                lambda u, c: (f"{proxy.url}/{u}{ENDPOINTS[c]}", c),
                len(PAIRS),
                4,
                0.0,
                args.deadline,
            )
        )
        time.sleep(0.5)
        before = memory_bytes(proxy.pid)
        peak_reset = reset_peak(proxy.pid)
        cpu_before = cpu_seconds(proxy.pid)
        fake_before = cpu_seconds(fake.pid)
        client_before = time.process_time()
        through = asyncio.run(
            run_streams(
                "through the proxy",
                lambda u, c: (f"{proxy.url}/{u}{ENDPOINTS[c]}", c),
                streams,
                args.deltas,
                args.pace,
                args.deadline,
            )
        )
        during = memory_bytes(proxy.pid)
        cpu = cpu_seconds(proxy.pid) - cpu_before
        fake_cpu = cpu_seconds(fake.pid) - fake_before
        client_cpu = time.process_time() - client_before
        time.sleep(1.0)
        after = memory_bytes(proxy.pid)
        direct: Run | None = None
        if not args.no_direct:
            direct = asyncio.run(
                run_streams(
                    "straight to the fake",
                    lambda u, c: (f"{fake.url}{ENDPOINTS[u]}", u),
                    streams,
                    args.deltas,
                    args.pace,
                    args.deadline,
                )
            )
    finally:
        proxy.stop()
        fake.stop()

    def ms(value: float) -> str:
        return f"{value * 1000:.1f} ms"

    mb = 1024 * 1024
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs; "
        + versions_line("httpx", "uvicorn", "orjson", missing="-")
    )
    print(
        f"{streams} concurrent streams, 25 format pairs, {args.deltas} deltas "
        f"{args.pace:g} s apart\n"
    )
    print("| figure | through the proxy | straight to the fake |")
    print("|---|---:|---:|")
    runs = [through, direct]

    def row(name: str, value: Callable[[Run], str]) -> None:
        cells = [value(r) if r is not None else "-" for r in runs]
        print(f"| {name} | {' | '.join(cells)} |")

    row("streams checked OK", lambda r: f"{streams - len(r.failures)} / {streams}")
    row("most streams open at once", lambda r: str(r.max_open))
    row("time to first event p50", lambda r: ms(statistics.median(r.ttfe)) if r.ttfe else "-")
    row("time to first event p99", lambda r: ms(percentile(r.ttfe, 99)) if r.ttfe else "-")
    row("time to first event max", lambda r: ms(max(r.ttfe)) if r.ttfe else "-")
    row("wall time", lambda r: f"{r.elapsed:.2f} s")
    events = upstream_events(args.deltas, streams)
    row("upstream events", lambda r: f"{events:,}")
    print()
    print(
        f"CPU during the run through the proxy: proxy {cpu:.2f} s ({cpu / events * 1e6:.0f} µs"
        f" per upstream event, {cpu / streams * 1e3:.1f} ms per stream), fake {fake_cpu:.2f} s,"
        f" clients {client_cpu:.2f} s; wall {through.elapsed:.2f} s on {os.cpu_count()} CPUs"
    )
    peak = during["VmHWM"]
    print()
    print("| proxy process memory | MB |")
    print("|---|---:|")
    print(f"| RSS before the run | {before['VmRSS'] / mb:.1f} |")
    label = "peak RSS during the run" if peak_reset else "peak RSS since start"
    print(f"| {label} | {peak / mb:.1f} |")
    print(f"| RSS 1 s after the run | {after['VmRSS'] / mb:.1f} |")
    print(f"| peak minus before, per stream | {(peak - before['VmRSS']) / streams / 1024:.1f} KB |")
    failures = through.failures + (direct.failures if direct else [])
    for failure in failures[:20]:
        print("FAILURE:", failure)
    ok = not failures and len(through.ttfe) == streams
    print(f"\n{'PASS' if ok else 'FAIL'}: every stream complete, in order, exactly once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
