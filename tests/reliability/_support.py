"""Shared helpers of the reliability suite: upstream sources, deterministic adapters, an
in-process ASGI driver, cut-point sampling, client-stream checks and process probes.

Upstream streams come from the fake LLM (``example_app.fake_upstream.render_stream``): every
format, several scenarios, byte-exact and deterministic. Adapters created inside the middleware
and the proxy are made deterministic (fixed clock, counting ids) by ``DeterministicAdapters``, so
a client stream can be compared byte for byte with a reference ``StreamAdapter`` fed only the
upstream events that were complete before a fault.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import random
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import anyio
import httpx
import pytest

from asgi_sse_adapter import ServerSentEvent, SSEDecoder, StreamAdapter
from asgi_sse_adapter import middleware as middleware_module
from asgi_sse_adapter import proxy as proxy_module
from asgi_sse_adapter.formats import FORMATS, get_format
from asgi_sse_adapter.formats.base import Format
from example_app.fake_upstream import Knobs, render_stream

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PAIRS = [(u, c) for u in FORMATS for c in FORMATS]
PAIR_IDS = [f"{u}->{c}" for u, c in PAIRS]
SCENARIOS = ("text", "thinking", "tools")
OPENAI_FAMILY = ("openai-chat", "openai-text")
SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8")]
LOGGER = "asgi_sse_adapter"
CLOCK = 1_700_000_500.0
#: Bound on one in-process case: "never a hang".
CASE_TIMEOUT = 5.0


def endpoint(fmt: str) -> str:
    """The endpoint path of a format (``/v1/messages``…)."""
    return get_format(fmt).endpoint


# -- upstream sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One upstream stream as the fake LLM writes it.

    Fields:
        fmt, scenario: the upstream format and the fake's scenario.
        events: the encoded events, one ``bytes`` each.
        raw: the whole stream.
        ends: offset just past each event (its blank line), ascending.
    """

    fmt: str
    scenario: str
    events: tuple[bytes, ...]
    raw: bytes
    ends: tuple[int, ...]

    def complete_prefix(self, cut: int) -> int:
        """Offset of the last event boundary at or before ``cut``."""
        done = 0
        for end in self.ends:
            if end > cut:
                break
            done = end
        return done

    def boundary_count(self, cut: int) -> int:
        """How many whole events ``raw[:cut]`` holds."""
        return sum(1 for end in self.ends if end <= cut)

    @property
    def finished_at(self) -> int:
        """Offset just past the event that says how the stream ends (a finish reason, a
        ``stop_reason``, ``response.completed``): a clean end from there on is complete, before
        it a truncation. Read from the events themselves, independently of the adapter."""
        for end, event in zip(self.ends, decode(self.raw), strict=True):
            if event.data == "[DONE]":
                continue
            payload = json.loads(event.data)
            if self.fmt in OPENAI_FAMILY:
                if any(c.get("finish_reason") for c in payload.get("choices", [])):
                    return end
            elif self.fmt == "openai-responses":
                if payload["type"] in ("response.completed", "response.incomplete"):
                    return end
            elif self.fmt == "anthropic-messages":
                if payload["type"] == "message_delta" and payload["delta"].get("stop_reason"):
                    return end
            elif payload.get("stop_reason"):
                return end
        raise AssertionError(f"{self.fmt} {self.scenario}: no finishing event")

    @property
    def terminated_at(self) -> int | None:
        """Offset from which the stream holds its format's terminal event (``[DONE]``,
        ``message_stop``, ``response.completed``); ``None`` for formats without one (Anthropic
        Text Completions 2023-06-01 ends with its last ``completion`` event)."""
        last = self.events[-1]
        terminal = (b"data: [DONE]", b"event: message_stop", b"event: response.completed")
        return self.ends[-1] if last.startswith(terminal) else None


def upstream_request(fmt: str) -> dict[str, Any]:
    """The request the fake renders for: the model clients ask for (``client_request``), usage
    requested where the format has it."""
    body: dict[str, Any] = {"model": "m", "stream": True}
    if fmt in OPENAI_FAMILY:
        body["stream_options"] = {"include_usage": True}
    return body


@cache
def source(fmt: str, scenario: str = "text", deltas: int = 64) -> Source:
    """The fake's stream of ``scenario`` in upstream format ``fmt``."""
    events = tuple(
        render_stream(endpoint(fmt), upstream_request(fmt), Knobs(scenario=scenario, deltas=deltas))
    )
    return Source(
        fmt, scenario, events, b"".join(events), tuple(itertools.accumulate(map(len, events)))
    )


def cut_points(src: Source, *, limit: int = 2500, sample: int = 600, seed: int = 0) -> list[int]:
    """Fault offsets for ``src``: every offset ``0..len`` when the stream is at most ``limit``
    bytes, else every event boundary and its neighbours, a point inside each multi-byte UTF-8
    character, and ``sample`` more offsets drawn with a fixed seed."""
    raw = src.raw
    if len(raw) <= limit:
        return list(range(len(raw) + 1))
    points = {0, len(raw)}
    for end in src.ends:
        points.update((end - 2, end - 1, end, end + 1))
    points.update(i + 1 for i, byte in enumerate(raw) if byte >= 0xC0)  # inside a character
    rng = random.Random(seed * 1_000_003 + len(raw))
    points.update(rng.sample(range(len(raw) + 1), min(sample, len(raw) + 1)))
    return sorted(p for p in points if 0 <= p <= len(raw))


# -- client requests -------------------------------------------------------------------------


def client_request(fmt: str, *, stream: bool = True) -> dict[str, Any]:
    """A minimal valid request body in client format ``fmt`` (usage asked for where possible)."""
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
    if stream:
        body["stream"] = True
        if fmt in OPENAI_FAMILY:
            body["stream_options"] = {"include_usage": True}
    return body


# -- deterministic adapters ------------------------------------------------------------------


class DeterministicAdapters:
    """Make every ``StreamAdapter`` the middleware and the proxy create deterministic (fixed
    clock, ids counting from 1 per adapter) and remember the options each was made with, so a
    reference adapter with the same options produces the same bytes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.made: list[dict[str, Any]] = []
        monkeypatch.setattr(middleware_module, "StreamAdapter", self._make)
        monkeypatch.setattr(proxy_module, "StreamAdapter", self._make)

    def _make(self, **options: Any) -> StreamAdapter:
        for key in ("upstream_format", "client_format"):
            fmt = options[key]
            if isinstance(fmt, Format) and get_format(fmt.name) is fmt:
                options[key] = fmt.name  # (a registered format: by name, as the tests say them)
        self.made.append(options)
        return reference_adapter(options)

    def last(self) -> dict[str, Any]:
        """The options of the adapter made last."""
        assert self.made, "no adapter was made"
        return self.made[-1]


def reference_adapter(options: dict[str, Any]) -> StreamAdapter:
    """A deterministic ``StreamAdapter`` with ``options``."""
    counter = itertools.count(1)
    return StreamAdapter(
        **options, clock=lambda: CLOCK, id_factory=lambda: f"rel{next(counter):08d}"
    )


# -- client streams --------------------------------------------------------------------------


def decode(body: bytes) -> list[ServerSentEvent]:
    """The events of a client body (whole events only)."""
    decoder = SSEDecoder(max_event_size=None)
    events = decoder.feed(body)
    decoder.close()
    assert not decoder.truncated, body[-200:]
    return events


def is_error_event(event: ServerSentEvent) -> bool:
    """Whether a client event is an error event, in any format."""
    if event.event == "error":
        return True
    if event.data.startswith("{"):
        try:
            payload = json.loads(event.data)
        except ValueError:
            return False
        return isinstance(payload, dict) and (
            payload.get("type") == "error" or payload.get("error") not in (None, {})
        )
    return False


_CALL_CLOSES = ("response.function_call_arguments.done", "response.output_item.done")


def check_error_tail(
    client: str, tail: bytes, message: str | None, *, opening: bool = False
) -> None:
    """``tail`` is exactly one error tail in format ``client`` (formats.md §9.1): the error
    event carrying ``message`` (when given), ``[DONE]`` after it for OpenAI Chat/Completions
    clients, ``response.failed`` after it for Responses clients, and nothing else.

    ``opening``: nothing reached the client before, so a Responses tail may first open the
    response (``response.created``, ``response.in_progress``). A Responses tail may also first
    close a function call whose end was read: its item closes only when what follows shows how
    it ended (``ResponsesWriter``), here the failure.
    """
    events = decode(tail)
    if opening and client == "openai-responses":
        while events and events[0].event in ("response.created", "response.in_progress"):
            events.pop(0)
    if client == "openai-responses":
        while events and events[0].event in _CALL_CLOSES:
            closed = json.loads(events.pop(0).data)
            if "item" in closed:
                assert closed["item"]["type"] == "function_call", closed
                assert closed["item"]["status"] == "completed", closed
    assert events, "no error tail"
    first = events[0]
    payload = json.loads(first.data)
    if client in OPENAI_FAMILY:
        assert first.event is None
        assert set(payload) == {"error"}
        error = payload["error"]
        assert set(error) >= {"message", "type", "param", "code"}
        assert [e.data for e in events[1:]] == ["[DONE]"], tail
    elif client == "openai-responses":
        assert first.event == "error"
        assert payload["type"] == "error"
        error = payload["error"]
        assert payload["message"] == error["message"]
        assert len(events) == 2, tail
        failed = json.loads(events[1].data)
        assert events[1].event == failed["type"] == "response.failed"
        assert failed["response"]["status"] == "failed"
        assert failed["sequence_number"] == payload["sequence_number"] + 1
    else:
        assert first.event == "error"
        assert payload["type"] == "error"
        error = payload["error"]
        assert set(error) >= {"type", "message"}
        assert len(events) == 1, tail
    if message is not None:
        assert error["message"] == message, (error, message)
    assert "Traceback" not in error["message"]


def text_deltas(client: str, events: Sequence[ServerSentEvent]) -> list[str]:
    """The answer-text deltas of a client stream, in order, in any client format."""
    out: list[str] = []
    for event in events:
        if not event.data.startswith("{"):
            continue
        payload = json.loads(event.data)
        if client == "openai-chat":
            for choice in payload.get("choices", []):
                if choice["delta"].get("content"):
                    out.append(choice["delta"]["content"])
        elif client == "openai-text":
            out.extend(c["text"] for c in payload.get("choices", []) if c["text"])
        elif client == "openai-responses":
            if payload["type"] == "response.output_text.delta":
                out.append(payload["delta"])
        elif client == "anthropic-messages":
            if payload["type"] == "content_block_delta" and payload["delta"]["type"] == (
                "text_delta"
            ):
                out.append(payload["delta"]["text"])
        elif payload.get("completion"):
            out.append(payload["completion"])
    return out


def check_long_answer(client: str, body: bytes, deltas: int) -> None:
    """A complete client stream of the fake's ``long`` scenario: its text deltas number the
    words ``0 … deltas-1`` exactly once each and in order (nothing lost, duplicated or
    reordered), no error event, and the format's proper ending."""
    events = decode(body)
    assert not [e for e in events if is_error_event(e)], body[-300:]
    words = "".join(text_deltas(client, events)).split()
    assert [int(re.sub(r"\D", "", word)) for word in words] == list(range(deltas))
    last = events[-1]
    if client in OPENAI_FAMILY:
        assert last.data == "[DONE]"
    elif client == "openai-responses":
        assert last.event == "response.completed"
    elif client == "anthropic-messages":
        assert last.event == "message_stop"
    else:
        assert json.loads(last.data)["stop_reason"]


def check_responses_lifecycle(body: bytes) -> None:
    """A Responses client stream (formats.md §13): ``event:`` equal to ``type`` on every event,
    ``sequence_number`` 0, 1, 2… without a gap, one response id in every lifecycle event."""
    ids: set[str] = set()
    for n, event in enumerate(decode(body)):
        payload = json.loads(event.data)
        assert event.event == payload["type"], event
        assert payload["sequence_number"] == n, (n, event)
        response = payload.get("response")
        if isinstance(response, dict):
            ids.add(response["id"])
    assert len(ids) <= 1, ids


# -- in-process ASGI driver ------------------------------------------------------------------


@dataclass
class Exchange:
    """What an ASGI app sent for one request."""

    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        """The single ``http.response.start``."""
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return start

    @property
    def status(self) -> int:
        """The response status."""
        return int(self.start["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        """Response headers (lower-cased names)."""
        return {bytes(k).lower(): bytes(v) for k, v in self.start.get("headers", [])}

    @property
    def bodies(self) -> list[Message]:
        """The ``http.response.body`` messages."""
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        """The whole response body."""
        return b"".join(m.get("body", b"") for m in self.bodies)

    def assert_well_formed(self) -> None:
        """One start, first; body messages of whole events; exactly one final message, last."""
        assert self.messages, "nothing was sent"
        assert self.messages[0]["type"] == "http.response.start"
        bodies = self.bodies
        assert bodies, "no body message"
        finals = [m for m in bodies if not m.get("more_body", False)]
        assert len(finals) == 1, "not exactly one final body message"
        assert finals[0] is self.messages[-1]
        for message in bodies:
            data = message.get("body", b"")
            if data:
                decoder = SSEDecoder(max_event_size=None)
                decoder.feed(data)
                decoder.close()
                assert not decoder.truncated, "a body message split an event"


def http_scope(
    path: str,
    *,
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
    spec_version: str = "2.3",
) -> Scope:
    """An HTTP scope for an in-process request."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": spec_version},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def drive(
    app: ASGIApp,
    scope: Scope,
    body: bytes = b"{}",
    *,
    limit: float = CASE_TIMEOUT,
) -> Exchange:
    """Run one request through ``app`` in-process, bounded by ``limit`` seconds.

    ``receive`` hands out the body, then waits until the response is complete and returns
    ``http.disconnect`` (as uvicorn does once a response is over).
    """
    exchange = Exchange()
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    complete = asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop()
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        assert not complete.is_set(), f"sent after the response was complete: {message}"
        exchange.messages.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete.set()

    with anyio.fail_after(limit):
        await app(scope, receive, send)
    return exchange


class CutApp:
    """An app that streams ``data`` as SSE in ``pieces`` messages, then fails (``fail``),
    returns without a final message (``"return"``) or ends normally (``"end"``)."""

    def __init__(self, data: bytes, *, pieces: int = 2, ending: str = "fail") -> None:
        self.data = data
        self.pieces = pieces
        self.ending = ending

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the request, stream, then end as configured."""
        while (await receive()).get("more_body", False):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        data = self.data
        step = max(1, -(-len(data) // self.pieces)) if data else 1
        for start in range(0, len(data), step):
            chunk = data[start : start + step]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if self.ending == "fail":
            raise RuntimeError("scripted failure")
        if self.ending == "end":
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class CutStream(httpx.AsyncByteStream):
    """An upstream body for ``httpx.MockTransport``: ``data`` in ``pieces`` reads, then
    ``httpx.ReadError`` (``fail``) or a clean end."""

    def __init__(self, data: bytes, *, pieces: int = 2, fail: bool = True) -> None:
        self.data = data
        self.pieces = pieces
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        data = self.data
        step = max(1, -(-len(data) // self.pieces)) if data else 1
        for start in range(0, len(data), step):
            yield data[start : start + step]
        if self.fail:
            raise httpx.ReadError("connection reset by peer")


def mock_upstream(
    respond: Callable[[httpx.Request], httpx.Response],
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request is answered by ``respond`` (no sockets)."""

    async def handler(request: httpx.Request) -> httpx.Response:
        return respond(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


# -- process probes --------------------------------------------------------------------------


def socket_fds() -> int:
    """How many of this process's file descriptors are sockets."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                count += 1
        except OSError:
            continue  # closed while listing (the directory's own descriptor, say)
    return count


def rss_bytes() -> int:
    """The process's resident set size."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """The process's peak resident set size (``VmHWM``)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def settle() -> None:
    """Collect garbage twice (cycles first, then what they kept alive)."""
    gc.collect()
    gc.collect()


def raw_http(port: int, request: bytes, *, timeout: float = 5.0) -> bytes:
    """Send raw bytes to ``127.0.0.1:port`` and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks: list[bytes] = []
        while True:
            try:
                data = sock.recv(65536)
            except TimeoutError:
                break
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks)


def port_of(url: str) -> int:
    """The port of ``http://127.0.0.1:PORT``."""
    return int(url.rsplit(":", 1)[1])


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def http_client(**options: Any) -> Any:
    """A blocking ``httpx2.Client`` with Nagle off (it writes a request's head and body
    separately, which otherwise waits out the server's delayed ACK)."""
    import httpx2

    return httpx2.Client(transport=httpx2.HTTPTransport(socket_options=NODELAY), **options)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.001) -> bool:
    """Poll ``predicate`` from this thread until it holds (``False`` after ``timeout``)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(step)
    return True
