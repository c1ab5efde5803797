"""Middleware benchmark: ``SSEAdapterMiddleware`` on uvicorn and driven in-process.

Run ``python bench/middleware.py`` (``--quick`` for a shorter smoke run). It prints each part's
table, one PASS/FAIL line per target, and exits with status 1 when a target is missed. It ends by
itself in a few minutes: every server it starts is a child process on 127.0.0.1 that it stops.

The app everywhere is ``example_app.fake_upstream.FakeUpstream`` (the shared fake LLM), asked for
``scenario=long`` with ``deltas`` text deltas: it writes one small event per ``http.response.body``
message. "mw" is the same fake wrapped in ``SSEAdapterMiddleware`` with default options (15 s
heartbeats) and a ``select`` by path: ``/v1/chat/completions`` is passthrough (openai-chat →
openai-chat), ``/v1/messages`` is translated (anthropic-messages → openai-chat).

1. Throughput on uvicorn (``http="httptools"``, ``loop="asyncio"``, one server process per
   contender: the bare fake and the wrapped fake). A load client in this process (raw asyncio
   sockets, HTTP/1.1 keep-alive, ``CONNECTIONS`` concurrent streams, each connection streaming
   ``STREAMS_PER_CONNECTION`` responses one after another) measures upstream events delivered per
   second of wall time; the contenders are interleaved in a shuffled order each round. The ratio
   to the bare app is the median of the per-round ratios (robust to the machine's load changing
   during the run); the ratio of the medians and the servers' CPU per event (read from the server
   process itself) are printed beside it. Targets: passthrough ≥ 0.95x the bare app, translation
   ≥ 0.8x. Beside them, information only: the fake under a no-op pure ASGI wrapper (the least any
   middleware costs on the server), and passthrough with the fake cutting its bytes into 4 KiB
   body messages.
2. Per-message cost in-process: an app sending ``MESSAGES`` one-event body messages is called
   directly with a hand-made ``receive`` and a ``send`` that does nothing, bare, under a no-op
   pure ASGI wrapper (wraps ``send`` and forwards), and under the middleware. Overhead = time per
   message minus the bare app's. CPU time, interleaved, medians. Target: the middleware's
   passthrough overhead ≤ 2x the no-op wrapper's.
3. Memory per idle heartbeating stream on uvicorn: a fresh server process per measurement, a few
   warm-up streams, then ``IDLE_STREAMS`` streams that stall after their head and first event
   (fake knob ``stall=1``) and stay open while the middleware heartbeats them (interval
   ``MEMORY_HEARTBEAT``); process RSS (``/proc``) before and after, after ``gc.collect()``, per
   stream; one more round per contender with ``tracemalloc`` on in the server (printed beside).
   Target: the middleware's RSS per stream ≤ 1.2x the bare app's (passthrough and translated).
4. Heartbeat CPU in-process: ``HEARTBEAT_STREAMS`` concurrent middleware calls whose app stalls
   after its first event, a ``send`` that discards, heartbeats every ``HEARTBEAT_INTERVAL`` s (15 s
   scaled down by 10); process CPU time over a window with heartbeats on and off (alternated);
   CPU per heartbeat = difference / heartbeats sent. Target: 10,000 streams heartbeating every
   15 s use ≤ 1 % of a core (per-heartbeat CPU x 10,000 / 15). The full run checks it once more
   without scaling (10,000 streams, 15 s, one 15 s window on and off); both must pass.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from _common import (
    ASGIApp,
    Child,
    Message,
    Receive,
    Scope,
    Send,
    StatsEndpoint,
    arg_parser,
    dist_version,
    finish,
    interleaved,
    listen_socket,
    machine_line,
    print_header,
    rss_kib,
    run_uvicorn,
    stop_all,
    verdict,
    versions_line,
)

# Targets (docs/performance.md).
TARGET_PASSTHROUGH = 0.95
TARGET_TRANSLATE = 0.8
TARGET_PER_MESSAGE = 2.0
TARGET_MEMORY = 1.2
TARGET_HEARTBEAT_CORE = 0.01

# Part 1
DELTAS = 256
CONNECTIONS = 16
STREAMS_PER_CONNECTION = 2
# Part 2
MESSAGES = 1000
SAMPLE_SECONDS = 0.02
# Part 3
IDLE_STREAMS = 1000
MEMORY_HEARTBEAT = 0.5
MEMORY_HOLD = 1.3
# Part 4
HEARTBEAT_STREAMS = 10_000
PRODUCTION_INTERVAL = 15.0
HEARTBEAT_INTERVAL = 1.5

PATHS = {"passthrough": "/v1/chat/completions", "translate": "/v1/messages"}
REQUEST_BODY = json.dumps(
    {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}
).encode()


# --------------------------------------------------------------------------------------------
# Servers (child processes)


def _select(scope: Scope) -> tuple[str, str] | None:
    path = scope.get("path")
    if path == PATHS["passthrough"]:
        return ("openai-chat", "openai-chat")
    if path == PATHS["translate"]:
        return ("anthropic-messages", "openai-chat")
    return None


def _snapshot(scope: Scope) -> dict[str, Any]:
    """``GET /_bench/stats[?gc=1]``: this process's CPU time, RSS and traced memory."""
    if b"gc=1" in scope.get("query_string", b""):
        gc.collect()
    traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else None
    return {
        "cpu": time.process_time(),
        "rss_kib": rss_kib(),
        "traced": traced,
        "tasks": len(asyncio.all_tasks()),
    }


def _with_stats(app: ASGIApp) -> StatsEndpoint:
    return StatsEndpoint(app, _snapshot, json_headers=True)


def build_app(kind: str, heartbeat: float | None) -> ASGIApp:
    from asgi_sse_adapter import SSEAdapterMiddleware
    from example_app.fake_upstream import FakeUpstream

    fake = FakeUpstream(log_size=1)
    if kind == "bare":
        return _with_stats(fake)
    if kind == "mw":
        return _with_stats(SSEAdapterMiddleware(fake, select=_select, heartbeat_interval=heartbeat))
    if kind == "noop":
        return _with_stats(noop_wrapper(fake))
    raise ValueError(kind)


def serve(kind: str, heartbeat: float | None, trace: bool) -> None:
    """Child process: serve one contender with uvicorn + httptools; print the port."""
    if trace:
        tracemalloc.start(1)
    sock = listen_socket()
    app = build_app(kind, heartbeat)
    run_uvicorn(app, sock, lifespan="off", backlog=4096, timeout_keep_alive=120)


def start_server(kind: str, heartbeat: float | None = 15.0, trace: bool = False) -> Child:
    """A server child serving ``kind``, once it answers ``/_bench/stats``."""
    args = ["--heartbeat", "off" if heartbeat is None else str(heartbeat)]
    if trace:
        args.append("--tracemalloc")
    return Child.start(__file__, kind, *args, ready=Child.stats)


# --------------------------------------------------------------------------------------------
# Load client: raw asyncio sockets, HTTP/1.1 keep-alive, chunked responses


def raw_request(port: int, path: str, query: str) -> bytes:
    head = (
        f"POST {path}?{query} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n"
        "content-type: application/json\r\naccept: text/event-stream\r\n"
        f"content-length: {len(REQUEST_BODY)}\r\n\r\n"
    )
    return head.encode() + REQUEST_BODY


_END = b"\r\n0\r\n\r\n"


class Conn(asyncio.Protocol):
    """One client connection; a response is over at the chunked body's last chunk."""

    def __init__(self, keep: bool = False) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] | None = None
        self.first: asyncio.Future[None] | None = None
        self.keep: list[bytes] | None = [] if keep else None
        self.tail = b""
        self.reads = 0
        self.nbytes = 0
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.reads += 1
        self.nbytes += len(data)
        if self.keep is not None:
            self.keep.append(data)
        tail = data[-16:] if len(data) >= 16 else (self.tail + data)[-16:]
        self.tail = tail
        first = self.first
        if first is not None and not first.done() and (b"\n\n" in data or b"\n\n" in tail):
            first.set_result(None)
        done = self.done
        if done is not None and not done.done() and tail.endswith(_END):
            done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        for fut in (self.done, self.first):
            if fut is not None and not fut.done():
                fut.set_exception(ConnectionError("server closed the connection"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def stream(self, request: bytes) -> None:
        assert self.transport is not None
        self.done = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.transport.write(request)
        await self.done

    async def open_idle(self, request: bytes) -> None:
        """Send ``request`` and return once the first event arrived (the response stays open)."""
        assert self.transport is not None
        self.first = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        await self.first

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, keep: bool = False) -> Conn:
    loop = asyncio.get_running_loop()
    _, conn = await loop.create_connection(lambda: Conn(keep), "127.0.0.1", port)
    return conn


def dechunk(raw: bytes) -> tuple[int, bytes]:
    """Status and de-chunked body of one whole chunked HTTP/1.1 response."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    body: list[bytes] = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return status, b"".join(body)
        body.append(rest[:size])
        rest = rest[size + 2 :]


# --------------------------------------------------------------------------------------------
# Part 1: throughput on uvicorn


# mode: (path, extra fake knobs, target or None for information only)
MODES: dict[str, tuple[str, str, float | None]] = {
    "passthrough": (PATHS["passthrough"], "", TARGET_PASSTHROUGH),
    "translate": (PATHS["translate"], "", TARGET_TRANSLATE),
    # The fake cuts its bytes into 4 KiB body messages (about 14 events each).
    "passthrough 4KiB": (PATHS["passthrough"], "&chunk=4096", None),
}


def upstream_events(path: str, deltas: int) -> int:
    from example_app.fake_upstream import Knobs, render_stream

    knobs = Knobs(scenario="long", deltas=deltas)
    return len(render_stream(path, {"stream": True}, knobs))


async def check_stream(port: int, mode: str, kind: str, deltas: int) -> None:
    """One whole response, de-chunked: 200, the expected client events, ``[DONE]`` last."""
    path, knobs, _ = MODES[mode]
    conn = await connect(port, keep=True)
    try:
        await conn.stream(raw_request(port, path, f"scenario=long&deltas={deltas}{knobs}"))
        assert conn.keep is not None
        status, body = dechunk(b"".join(conn.keep))
    finally:
        conn.close()
    assert status == 200, (kind, mode, status)
    events = body.count(b"\n\n")
    translated = path == PATHS["translate"]
    last = b"data: [DONE]\n\n" if kind == "mw" or not translated else b'"message_stop"}'
    assert last in body[-40:], (kind, mode, body[-80:])
    if translated and kind == "mw":
        assert b"event:" not in body, (kind, mode)
        assert b"chat.completion.chunk" in body, (kind, mode)
        assert events == deltas + 3, (kind, mode, events)
    elif translated:
        assert b"event: content_block_delta" in body, (kind, mode)
    else:
        assert events == deltas + 3, (kind, mode, events)


@dataclass
class Contender:
    name: str
    server: Child
    mode: str
    conns: list[Conn] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)


async def throughput(quick: bool, rounds: int) -> tuple[list[dict[str, Any]], list[str]]:
    servers = {kind: start_server(kind) for kind in ("bare", "noop", "mw")}
    try:
        return await _throughput(servers, quick, rounds)
    finally:
        stop_all(servers.values())


async def _throughput(
    servers: dict[str, Child], quick: bool, rounds: int
) -> tuple[list[dict[str, Any]], list[str]]:
    deltas = DELTAS // 2 if quick else DELTAS
    contenders = [
        Contender(f"{kind} {mode}", servers[kind], mode)
        for mode in MODES
        for kind in ("bare", "noop", "mw")
    ]
    for c in contenders:
        await check_stream(c.server.port, c.mode, c.server.kind, deltas)
        c.conns = [await connect(c.server.port) for _ in range(CONNECTIONS)]
    events = {mode: upstream_events(path, deltas) for mode, (path, _, _) in MODES.items()}
    per_sample = CONNECTIONS * STREAMS_PER_CONNECTION

    async def sample(c: Contender) -> None:
        path, knobs, _ = MODES[c.mode]
        request = raw_request(c.server.port, path, f"scenario=long&deltas={deltas}{knobs}")

        async def worker(conn: Conn) -> None:
            for _ in range(STREAMS_PER_CONNECTION):
                await conn.stream(request)

        cpu0 = c.server.stats()["cpu"]
        t0 = time.perf_counter()
        own0 = time.process_time()
        await asyncio.gather(*(worker(conn) for conn in c.conns))
        c.wall.append(time.perf_counter() - t0)
        c.client.append(time.process_time() - own0)
        c.cpu.append(c.server.stats()["cpu"] - cpu0)

    for c in contenders:  # warm-up
        await sample(c)
        c.wall.clear()
        c.cpu.clear()
        c.client.clear()
    for c in interleaved(contenders, rounds, seed=1):
        await sample(c)
    for c in contenders:
        for conn in c.conns:
            conn.close()

    print(
        f"Throughput on uvicorn {dist_version('uvicorn')} + httptools {dist_version('httptools')} "
        f"(asyncio loop): {CONNECTIONS} concurrent streams, {STREAMS_PER_CONNECTION} streams per "
        f"connection per sample, {deltas} deltas per stream ({events['passthrough']} Chat / "
        f"{events['translate']} Messages upstream events), {rounds} interleaved rounds; "
        "events/s = upstream events delivered per second of wall time (median); x bare = median "
        "of the per-round ratios (the verdict), then the ratio of the medians"
    )
    header = (
        f"{'contender':<21} {'events/s':>9} {'x bare':>7} {'(medians)':>9} "
        f"{'server CPU µs/ev':>17} {'x bare':>7} {'client CPU µs/ev':>17}"
    )
    print_header(header)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    by_name = {c.name: c for c in contenders}
    for mode, (_, _, target) in MODES.items():
        n = events[mode] * per_sample
        bare, noop, mw = (by_name[f"{kind} {mode}"] for kind in ("bare", "noop", "mw"))
        f_bare, f_noop, f_mw = (_figures(c, bare, n) for c in (bare, noop, mw))
        paired = f_mw["ratio"]
        print(_line(bare, f_bare))
        print(_line(noop, f_noop) + "  (information: a no-op ASGI wrapper)")
        ok = target is None or paired >= target
        print(
            _line(mw, f_mw)
            + (f"  ≥ {target}  {verdict(ok)}" if target is not None else "  (information)")
        )
        rows.append(
            {
                "mode": mode,
                "target": target,
                "bare_events_s": f_bare["events_s"],
                "mw_events_s": f_mw["events_s"],
                "noop_events_s": f_noop["events_s"],
                "ratio": paired,
                "ratio_of_medians": f_mw["ratio_of_medians"],
                "noop_ratio": f_noop["ratio"],
                "bare_cpu_us": f_bare["cpu_us"],
                "mw_cpu_us": f_mw["cpu_us"],
                "noop_cpu_us": f_noop["cpu_us"],
                "cpu_ratio": f_mw["cpu_ratio"],
                "bare_client_cpu_us": f_bare["client_cpu_us"],
                "mw_client_cpu_us": f_mw["client_cpu_us"],
                "ok": ok,
            }
        )
        if not ok:
            failures.append(f"throughput {mode}: {paired:.2f}x < {target}x")
    print()
    return rows, failures


def _figures(c: Contender, bare: Contender, n: int) -> dict[str, float]:
    """A contender's throughput figures for ``n`` events per sample, against the bare app's."""
    rate = n / statistics.median(c.wall)
    cpu = statistics.median(c.cpu) / n * 1e6
    return {
        "events_s": rate,
        "ratio": statistics.median(b / m for b, m in zip(bare.wall, c.wall, strict=True)),
        "ratio_of_medians": statistics.median(bare.wall) / statistics.median(c.wall),
        "cpu_us": cpu,
        "cpu_ratio": cpu / (statistics.median(bare.cpu) / n * 1e6),
        "client_cpu_us": statistics.median(c.client) / n * 1e6,
    }


def _line(c: Contender, f: dict[str, float]) -> str:
    return (
        f"{c.name:<21} {f['events_s']:>9,.0f} {f['ratio']:>7.2f} {f['ratio_of_medians']:>9.2f} "
        f"{f['cpu_us']:>17.2f} {f['cpu_ratio']:>7.2f} {f['client_cpu_us']:>17.2f}"
    )


# --------------------------------------------------------------------------------------------
# Part 2: per-message cost, in-process


CHAT_EVENT = (
    b'data: {"id":"chatcmpl-fake0001","object":"chat.completion.chunk","created":1700000000,'
    b'"model":"gpt-4o-mini","service_tier":"default","system_fingerprint":"fp_fake","choices":'
    b'[{"index":0,"delta":{"content":"alpha0 "},"logprobs":null,"finish_reason":null}]}\n\n'
)
MESSAGES_EVENT = (
    b"event: content_block_delta\n"
    b'data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta",'
    b'"text":"alpha0 "}}\n\n'
)


def in_process_app(head: Sequence[bytes], event: bytes, tail: Sequence[bytes], n: int) -> ASGIApp:
    """Sends the head events, ``n`` times ``event``, the tail events: one per body message."""
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
    }

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(start)
        for data in head:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        for _ in range(n):
            await send({"type": "http.response.body", "body": event, "more_body": True})
        for data in tail:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def noop_wrapper(app: ASGIApp) -> ASGIApp:
    """The least a pure ASGI middleware that wraps ``send`` can cost."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_send(message: Message) -> None:
            await send(message)

        await app(scope, receive, wrapped_send)

    return wrapper


def boundary_wrapper(app: ASGIApp) -> ASGIApp:
    """A lower bound for any wrapper that keeps whole events per message and heartbeats idle
    streams: it only checks that each body ends at an event boundary (the case where nothing
    is held back) and notes when it sent. It frames nothing split across messages, sends no
    heartbeat and orders nothing against one: information, not a usable middleware."""

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        last = [0.0]

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                body = message.get("body", b"")
                if body and not body.endswith(b"\n\n"):
                    raise AssertionError("the benchmark's app sends whole events")
                last[0] = time.monotonic()
            await send(message)

        await app(scope, receive, wrapped_send)

    return wrapper


def _scope() -> Scope:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/v1/chat/completions",
        "query_string": b"",
        "headers": [
            (b"content-type", b"application/json"),
            (b"accept", b"text/event-stream"),
        ],
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": REQUEST_BODY, "more_body": False}


async def _discard(message: Message) -> None:
    return None


def per_message(rounds: int) -> tuple[list[dict[str, Any]], list[str]]:
    from asgi_sse_adapter import SSEAdapterMiddleware
    from example_app.fake_upstream import Knobs, render_stream

    def split(path: str) -> tuple[list[bytes], list[bytes]]:
        events = render_stream(path, {"stream": True}, Knobs(scenario="long", deltas=1))
        i = next(i for i, e in enumerate(events) if b"alpha0" in e)
        return events[:i], events[i + 1 :]

    chat_head, chat_tail = split(PATHS["passthrough"])
    msg_head, msg_tail = split(PATHS["translate"])
    chat = in_process_app(chat_head, CHAT_EVENT, chat_tail, MESSAGES)
    msg = in_process_app(msg_head, MESSAGES_EVENT, msg_tail, MESSAGES)
    apps: dict[str, ASGIApp] = {
        "bare": chat,
        "no-op wrapper": noop_wrapper(chat),
        "boundary check": boundary_wrapper(chat),
        "mw passthrough": SSEAdapterMiddleware(
            chat, upstream_format="openai-chat", client_format="openai-chat"
        ),
        "bare (Messages)": msg,
        "mw translate": SSEAdapterMiddleware(
            msg, upstream_format="anthropic-messages", client_format="openai-chat"
        ),
    }
    n_messages = MESSAGES + len(chat_head) + len(chat_tail) + 2

    async def measure() -> dict[str, float]:
        async def once(app: ASGIApp) -> None:
            await app(_scope(), _receive, _discard)

        loops: dict[str, int] = {}
        for name, app in apps.items():
            await once(app)
            t0 = time.process_time()
            await once(app)
            loops[name] = max(1, round(SAMPLE_SECONDS / max(time.process_time() - t0, 1e-6)))
        times: dict[str, list[float]] = {name: [] for name in apps}
        for name in interleaved(apps, rounds, seed=2):
            app, n = apps[name], loops[name]
            t0 = time.process_time()
            for _ in range(n):
                await once(app)
            times[name].append((time.process_time() - t0) / n / n_messages)
        return {name: statistics.median(ts) * 1e6 for name, ts in times.items()}

    med = asyncio.run(measure())
    bare = med["bare"]
    noop = med["no-op wrapper"] - bare
    mw = med["mw passthrough"] - bare
    translate = med["mw translate"] - med["bare (Messages)"]
    ratio = mw / noop
    ok = ratio <= TARGET_PER_MESSAGE
    print(
        f"Per body message, in-process (app sends {n_messages} messages, one event each; send "
        f"discards), {rounds} interleaved rounds, CPU medians"
    )
    header = f"{'contender':<18} {'µs/message':>11} {'overhead µs':>12} {'x no-op overhead':>17}"
    print_header(header)
    print(f"{'bare':<18} {bare:>11.3f} {0:>12.3f}")
    print(f"{'no-op wrapper':<18} {med['no-op wrapper']:>11.3f} {noop:>12.3f} {1:>17.2f}")
    boundary = med["boundary check"] - bare
    print(
        f"{'boundary check':<18} {med['boundary check']:>11.3f} {boundary:>12.3f} "
        f"{boundary / noop:>17.2f}  (information: the least a whole-events wrapper does)"
    )
    print(
        f"{'mw passthrough':<18} {med['mw passthrough']:>11.3f} {mw:>12.3f} {ratio:>17.2f}  "
        f"≤ {TARGET_PER_MESSAGE}  {verdict(ok)}"
    )
    print(f"{'bare (Messages)':<18} {med['bare (Messages)']:>11.3f} {0:>12.3f}")
    print(
        f"{'mw translate':<18} {med['mw translate']:>11.3f} {translate:>12.3f} "
        f"{translate / noop:>17.2f}  (information)"
    )
    print(
        f"(whole cost per message, middleware over no-op wrapper: "
        f"{med['mw passthrough'] / med['no-op wrapper']:.2f}x)\n"
    )
    row = {
        "bare_us": bare,
        "noop_us": med["no-op wrapper"],
        "mw_us": med["mw passthrough"],
        "noop_overhead_us": noop,
        "mw_overhead_us": mw,
        "boundary_overhead_us": boundary,
        "ratio": ratio,
        "translate_overhead_us": translate,
        "whole_ratio": med["mw passthrough"] / med["no-op wrapper"],
        "ok": ok,
    }
    failures = [] if ok else [f"per-message overhead {ratio:.1f}x no-op wrapper > 2x"]
    return [row], failures


# --------------------------------------------------------------------------------------------
# Part 3: memory per idle heartbeating stream


async def open_idle(server: Child, mode: str, n: int) -> list[Conn]:
    request = raw_request(server.port, PATHS[mode], "scenario=long&deltas=4&stall=1")
    limit = asyncio.Semaphore(64)

    async def one() -> Conn:
        async with limit:
            conn = await connect(server.port)
            await conn.open_idle(request)
            return conn

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def close_all(conns: Sequence[Conn]) -> None:
    for conn in conns:
        conn.close()
    await asyncio.gather(*(c.closed for c in conns))


async def memory_once(kind: str, mode: str, n: int, trace: bool) -> dict[str, float]:
    server = start_server(kind, heartbeat=MEMORY_HEARTBEAT, trace=trace)
    try:
        # Warm-up: code paths, imports and caches, with a handful of streams.
        for _ in range(2):
            conns = await open_idle(server, mode, 16)
            await asyncio.sleep(MEMORY_HEARTBEAT * 1.5)
            await close_all(conns)
            await asyncio.sleep(0.2)
        before = server.stats("gc=1")
        rss0 = server.rss_kib()
        conns = await open_idle(server, mode, n)
        reads0 = sum(c.reads for c in conns)
        await asyncio.sleep(MEMORY_HOLD)
        reads = sum(c.reads for c in conns) - reads0
        after = server.stats("gc=1")
        rss1 = server.rss_kib()
        tasks = after["tasks"] - before["tasks"]
        await close_all(conns)
    finally:
        server.stop()
    result = {
        "rss_per_stream": (rss1 - rss0) * 1024 / n,
        "tasks_per_stream": tasks / n,
        "reads_per_stream": reads / n,
    }
    if trace:
        result["traced_per_stream"] = (after["traced"] - before["traced"]) / n
    return result


def memory(rounds: int, n: int) -> tuple[list[dict[str, Any]], list[str]]:
    cases = [(kind, mode) for mode in PATHS for kind in ("bare", "mw")]
    rss: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
    extra: dict[tuple[str, str], dict[str, float]] = {}
    rng = random.Random(3)
    for _ in range(rounds):
        order = list(cases)
        rng.shuffle(order)
        for kind, mode in order:
            result = asyncio.run(memory_once(kind, mode, n, trace=False))
            rss[(kind, mode)].append(result["rss_per_stream"])
            extra[(kind, mode)] = result
    traced: dict[tuple[str, str], float] = {}
    for kind, mode in cases:
        traced[(kind, mode)] = asyncio.run(memory_once(kind, mode, n, trace=True))[
            "traced_per_stream"
        ]
    print(
        f"Memory per idle stream on uvicorn: {n} streams stalled after their first event, "
        f"heartbeats every {MEMORY_HEARTBEAT} s (mw), held {MEMORY_HOLD} s; a fresh server per "
        f"measurement; RSS median of {rounds}, tracemalloc one run"
    )
    header = (
        f"{'contender':<18} {'RSS B/stream':>13} {'x bare':>7} {'traced B/stream':>16} "
        f"{'x bare':>7} {'tasks/stream':>13} {'reads/stream':>13}"
    )
    print_header(header)
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for mode in PATHS:
        bare_rss = statistics.median(rss[("bare", mode)])
        bare_tr = traced[("bare", mode)]
        for kind in ("bare", "mw"):
            value = statistics.median(rss[(kind, mode)])
            ratio = value / bare_rss
            tr = traced[(kind, mode)]
            info = extra[(kind, mode)]
            line = (
                f"{kind + ' ' + mode:<18} {value:>13,.0f} {ratio:>7.2f} {tr:>16,.0f} "
                f"{tr / bare_tr:>7.2f} {info['tasks_per_stream']:>13.2f} "
                f"{info['reads_per_stream']:>13.2f}"
            )
            if kind == "mw":
                ok = ratio <= TARGET_MEMORY
                line += f"  ≤ {TARGET_MEMORY}  {verdict(ok)}"
                rows.append(
                    {
                        "mode": mode,
                        "bare_rss": bare_rss,
                        "mw_rss": value,
                        "ratio": ratio,
                        "bare_traced": bare_tr,
                        "mw_traced": tr,
                        "traced_ratio": tr / bare_tr,
                        "rss_samples": {k: rss[(k, mode)] for k in ("bare", "mw")},
                        "ok": ok,
                    }
                )
                if not ok:
                    failures.append(f"memory {mode}: {ratio:.2f}x > {TARGET_MEMORY}x")
            print(line)
    print()
    return rows, failures


# --------------------------------------------------------------------------------------------
# Part 4: heartbeat CPU for many idle streams, in-process


async def heartbeat_window(
    interval: float | None, n: int, window: float
) -> tuple[float, int, float]:
    """CPU seconds over ``window`` with ``n`` idle streams, heartbeats sent, RSS MiB."""
    from asgi_sse_adapter import SSEAdapterMiddleware
    from example_app.fake_upstream import Knobs, render_stream

    first = render_stream(PATHS["passthrough"], {"stream": True}, Knobs())[0]
    release = asyncio.Event()
    beats = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": first, "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})

    async def send(message: Message) -> None:
        nonlocal beats
        if message.get("body", b"")[:1] == b":":
            beats += 1

    async def receive() -> Message:
        return {"type": "http.request", "body": REQUEST_BODY, "more_body": False}

    mw = SSEAdapterMiddleware(
        app, upstream_format="openai-chat", client_format="openai-chat", heartbeat_interval=interval
    )
    tasks = [asyncio.create_task(mw(_scope(), receive, send)) for _ in range(n)]
    # Settle: every stream started, and its first timer (armed before the first event, so it
    # re-arms once) has fired.
    await asyncio.sleep((interval or HEARTBEAT_INTERVAL) * 1.2)
    gc.collect()
    beats0 = beats
    cpu0 = time.process_time()
    await asyncio.sleep(window)
    cpu = time.process_time() - cpu0
    sent = beats - beats0
    rss = rss_kib() / 1024
    release.set()
    await asyncio.gather(*tasks)
    return cpu, sent, rss


def heartbeats(rounds: int, n: int, direct: bool) -> tuple[list[dict[str, Any]], list[str]]:
    window = HEARTBEAT_INTERVAL * 2
    on: list[tuple[float, int, float]] = []
    off: list[tuple[float, int, float]] = []
    for r in range(rounds):
        for interval in (HEARTBEAT_INTERVAL, None) if r % 2 == 0 else (None, HEARTBEAT_INTERVAL):
            gc.collect()
            result = asyncio.run(heartbeat_window(interval, n, window))
            (on if interval is not None else off).append(result)
    cpu_on = statistics.median(x[0] for x in on)
    cpu_off = statistics.median(x[0] for x in off)
    beats = statistics.median(x[1] for x in on)
    per_beat = max(cpu_on - cpu_off, 0.0) / beats
    fraction = per_beat * HEARTBEAT_STREAMS / PRODUCTION_INTERVAL
    ok = fraction <= TARGET_HEARTBEAT_CORE
    print(
        f"Heartbeats in-process: {n} idle streams, interval {HEARTBEAT_INTERVAL} s, window "
        f"{window} s, {rounds} rounds each on/off (alternated), medians"
    )
    header = (
        f"{'heartbeats':<14} {'CPU s/window':>13} {'heartbeats/window':>18} {'core %':>7} "
        f"{'RSS MiB':>8}"
    )
    print_header(header)
    for label, xs in (("on", on), ("off", off)):
        cpu = statistics.median(x[0] for x in xs)
        print(
            f"{label:<14} {cpu:>13.3f} {statistics.median(x[1] for x in xs):>18,.0f} "
            f"{cpu / window * 100:>7.2f} {statistics.median(x[2] for x in xs):>8.1f}"
        )
    print(
        f"CPU per heartbeat {per_beat * 1e6:.2f} µs → {HEARTBEAT_STREAMS:,} streams every "
        f"{PRODUCTION_INTERVAL:g} s: {fraction * 100:.3f} % of a core (≤ "
        f"{TARGET_HEARTBEAT_CORE * 100:g} %)  {verdict(ok)}"
    )
    row: dict[str, Any] = {
        "cpu_on": cpu_on,
        "cpu_off": cpu_off,
        "beats": beats,
        "per_beat_us": per_beat * 1e6,
        "fraction": fraction,
        "samples_on": on,
        "samples_off": off,
        "ok": ok,
    }
    failures = [] if ok else [f"heartbeats (scaled): {fraction * 100:.2f} % of a core > 1 %"]
    if direct:
        # The same at the real interval, without scaling: one window of PRODUCTION_INTERVAL.
        gc.collect()
        real_on = asyncio.run(heartbeat_window(PRODUCTION_INTERVAL, HEARTBEAT_STREAMS, 15.0))
        gc.collect()
        real_off = asyncio.run(heartbeat_window(None, HEARTBEAT_STREAMS, 15.0))
        real = max(real_on[0] - real_off[0], 0.0) / 15.0
        ok_real = real <= TARGET_HEARTBEAT_CORE
        print(
            f"{'on, 15 s':<14} {real_on[0]:>13.3f} {real_on[1]:>18,} "
            f"{real_on[0] / 15 * 100:>7.2f} {real_on[2]:>8.1f}"
        )
        print(
            f"{'off, 15 s':<14} {real_off[0]:>13.3f} {real_off[1]:>18,} "
            f"{real_off[0] / 15 * 100:>7.2f} {real_off[2]:>8.1f}"
        )
        print(
            f"Check at the real interval ({HEARTBEAT_STREAMS:,} streams, "
            f"{PRODUCTION_INTERVAL:g} s, one 15 s window): {real * 100:.3f} % of a core, "
            f"{max(real_on[0] - real_off[0], 0.0) / max(real_on[1], 1) * 1e6:.2f} µs per "
            f"heartbeat  {verdict(ok_real)}"
        )
        row["real_interval"] = {"on": real_on, "off": real_off, "fraction": real, "ok": ok_real}
        if not ok_real:
            failures.append(f"heartbeats (15 s): {real * 100:.2f} % of a core > 1 %")
    print()
    return [row], failures


# --------------------------------------------------------------------------------------------
# Main


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__, report=True)
    parser.add_argument(
        "--only", choices=("throughput", "per-message", "memory", "heartbeats"), action="append"
    )
    parser.add_argument("--serve", choices=("bare", "noop", "mw"), help=argparse.SUPPRESS)
    parser.add_argument("--heartbeat", default="15", help=argparse.SUPPRESS)
    parser.add_argument("--tracemalloc", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(
            args.serve, None if args.heartbeat == "off" else float(args.heartbeat), args.tracemalloc
        )
        return 0

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * IDLE_STREAMS:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * IDLE_STREAMS + 256), hard))
    parts = args.only or ["throughput", "per-message", "memory", "heartbeats"]
    quick = args.quick
    print(machine_line())
    print(versions_line("uvicorn", "httptools", "asgi-sse-adapter") + "\n")
    report: dict[str, Any] = {}
    failures: list[str] = []
    started = time.monotonic()
    if "throughput" in parts:
        rows, failed = asyncio.run(throughput(quick, 5 if quick else 15))
        report["throughput"] = rows
        failures += failed
    if "per-message" in parts:
        rows, failed = per_message(5 if quick else 21)
        report["per_message"] = rows
        failures += failed
    if "memory" in parts:
        rows, failed = memory(1 if quick else 3, IDLE_STREAMS // 4 if quick else IDLE_STREAMS)
        report["memory"] = rows
        failures += failed
    if "heartbeats" in parts:
        n = HEARTBEAT_STREAMS // 5 if quick else HEARTBEAT_STREAMS
        rows, failed = heartbeats(2 if quick else 3, n, direct=not quick)
        report["heartbeats"] = rows
        failures += failed
    return finish(report, failures, started, args.report)


if __name__ == "__main__":
    sys.exit(main())
