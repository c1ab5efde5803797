"""``SSEAdapterMiddleware`` end to end.

Two harnesses (sse-and-asgi.md §5): the ASGI callable driven directly with hand-made
``receive``/``send`` (message boundaries, ``more_body`` flags, failures at every byte, headers,
timing of keep-alives), and real uvicorn servers on loopback (``tests/servers.py``) with the
official ``openai`` and ``anthropic`` SDKs and streaming ``httpx2`` clients (Starlette, FastAPI
and the Django project in ``tests/django_project``; client disconnects).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gzip
import inspect
import itertools
import json
import logging
import threading
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import anthropic
import httpx2
import openai
import pytest
import uvicorn.config
from anthropic.types import MessageParam
from fastapi import FastAPI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from asgi_sse_adapter import ServerSentEvent, SSEDecoder, SSEFramer
from asgi_sse_adapter import session as session_module
from asgi_sse_adapter.middleware import SSEAdapterMiddleware
from asgi_sse_adapter.requests import estimate_input_tokens
from asgi_sse_adapter.session import StreamReport
from tests.reliability._support import http_scope
from tests.servers import LiveServer, ServerFactory, live_server, serve, server_pool

Message = MutableMapping[str, Any]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANTHROPIC = "anthropic-messages"
OPENAI = "openai-chat"
PAIRS = [(ANTHROPIC, OPENAI), (OPENAI, ANTHROPIC), (ANTHROPIC, ANTHROPIC), (OPENAI, OPENAI)]
PAIR_IDS = ["anthropic-to-openai", "openai-to-anthropic", "anthropic-identity", "openai-identity"]
SSE = (b"content-type", b"text/event-stream")
LOG = "asgi_sse_adapter"


@pytest.fixture(autouse=True)
def server_logs_reach_caplog() -> Iterator[None]:
    """Let uvicorn's records reach ``caplog`` during each test.

    A test elsewhere in the run may have applied uvicorn's logging config, which stops the
    ``uvicorn`` logger from propagating; assertions on "Exception in ASGI application" need it.
    """
    saved = []
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.propagate, logger.disabled, logger.level))
        logger.propagate = True
        logger.disabled = False
        if logger.level > logging.ERROR:
            logger.setLevel(logging.ERROR)
    yield
    for logger, propagate, disabled, level in saved:
        logger.propagate = propagate
        logger.disabled = disabled
        logger.setLevel(level)


# -- upstream streams ------------------------------------------------------------------------


def sse_event(
    data: dict[str, Any] | str, event: str | None = None, id_: str | None = None
) -> bytes:
    """One SSE event (``data`` as compact JSON unless it is a string)."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    head += f"id: {id_}\n" if id_ is not None else ""
    return f"{head}data: {text}\n\n".encode()


def anthropic_events(parts: Sequence[str] = ("Hello ", "world")) -> list[bytes]:
    """A complete Anthropic Messages stream answering ``"".join(parts)``, one item per event."""
    message: dict[str, Any] = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-test",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    }
    out = [
        sse_event({"type": "message_start", "message": message}, "message_start"),
        sse_event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        sse_event({"type": "ping"}, "ping"),
    ]
    for text in parts:
        delta = {"type": "text_delta", "text": text}
        out.append(
            sse_event(
                {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
            )
        )
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    out += [
        sse_event({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse_event(
            {"type": "message_delta", "delta": stop, "usage": {"output_tokens": 2}}, "message_delta"
        ),
        sse_event({"type": "message_stop"}, "message_stop"),
    ]
    return out


def openai_events(parts: Sequence[str] = ("Hello ", "world"), *, ids: bool = False) -> list[bytes]:
    """A complete OpenAI Chat stream answering ``"".join(parts)`` (usage chunk, ``[DONE]``).

    With ``ids`` every event carries an ``id:`` field, as some upstreams send.
    """

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-up",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-test",
            "choices": choices,
            **extra,
        }

    payloads: list[dict[str, Any] | str] = [
        chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    ]
    payloads += [
        chunk([{"index": 0, "delta": {"content": text}, "finish_reason": None}]) for text in parts
    ]
    usage = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    payloads += [
        chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        chunk([], usage=usage),
        "[DONE]",
    ]
    return [
        sse_event(data, id_=str(n) if ids else None) for n, data in enumerate(payloads, start=1)
    ]


def upstream_events(fmt: str, parts: Sequence[str] = ("Hello ", "world")) -> list[bytes]:
    """The complete upstream stream of ``fmt`` answering ``"".join(parts)``, one item per event."""
    return anthropic_events(parts) if fmt == ANTHROPIC else openai_events(parts)


def anthropic_error_body(kind: str = "overloaded_error", message: str = "Overloaded") -> bytes:
    """An Anthropic non-2xx error body."""
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def openai_error_body(kind: str, message: str, code: str | None = None) -> bytes:
    """An OpenAI non-2xx error body."""
    return json.dumps(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}
    ).encode()


# -- reading what the client got -------------------------------------------------------------


def decode(body: bytes) -> list[ServerSentEvent]:
    """Every event in ``body`` (a whole stream or one message's body)."""
    decoder = SSEDecoder(max_event_size=None)
    events = decoder.feed(body)
    decoder.close()
    return events


def assert_whole_events(body: bytes) -> None:
    """``body``, decoded on its own, holds whole events only: nothing is left over."""
    framer = SSEFramer(max_event_size=None)
    framer.feed(body)
    assert framer.close() == b"", body
    decoder = SSEDecoder(max_event_size=None)
    decoder.feed(body)
    decoder.close()
    assert not decoder.truncated, body


def payloads(events: Sequence[ServerSentEvent]) -> list[Any]:
    """The JSON payloads of ``events`` (``[DONE]`` as the string)."""
    return [e.data if e.data == "[DONE]" else json.loads(e.data) for e in events]


def text_of(events: Sequence[ServerSentEvent], fmt: str) -> str:
    """The answer text carried by a ``fmt`` stream's events."""
    out: list[str] = []
    for data in payloads(events):
        if not isinstance(data, dict):
            continue
        if fmt == OPENAI:
            for choice in data.get("choices") or []:
                out.append(choice.get("delta", {}).get("content") or "")
        elif data.get("type") == "content_block_delta":
            out.append(data["delta"].get("text", ""))
    return "".join(out)


def errors_of(events: Sequence[ServerSentEvent], fmt: str) -> list[int]:
    """Positions of the error events in a ``fmt`` client stream (formats.md §9.1)."""
    found: list[int] = []
    for n, event in enumerate(events):
        if fmt == ANTHROPIC:
            if event.event == "error":
                found.append(n)
        elif event.data.startswith("{") and "error" in json.loads(event.data):
            found.append(n)
    return found


def error_message(events: Sequence[ServerSentEvent], fmt: str) -> str:
    """The message of the (single) error event of a client stream."""
    (position,) = errors_of(events, fmt)
    data = json.loads(events[position].data)
    return str(data["error"]["message"])


# -- driving the ASGI callable directly ------------------------------------------------------


@dataclass
class Sent:
    """One message the middleware sent to the server."""

    message: Message
    at: float
    step: int
    """Index of the app's ``send`` call in progress (-1: outside any, e.g. a heartbeat)."""


@dataclass
class Exchange:
    """Everything the middleware sent for one request."""

    sent: list[Sent] = field(default_factory=list)

    @property
    def messages(self) -> list[Message]:
        """The messages, in order."""
        return [s.message for s in self.sent]

    @property
    def start(self) -> Message:
        """The single ``http.response.start``."""
        (start,) = [m for m in self.messages if m["type"] == "http.response.start"]
        return start

    @property
    def headers(self) -> dict[bytes, bytes]:
        """The response headers (names as sent)."""
        return {bytes(k): bytes(v) for k, v in self.start.get("headers", [])}

    @property
    def bodies(self) -> list[Sent]:
        """The ``http.response.body`` messages."""
        return [s for s in self.sent if s.message["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        """The response body."""
        return b"".join(s.message.get("body", b"") for s in self.bodies)

    @property
    def events(self) -> list[ServerSentEvent]:
        """The response body's events."""
        return decode(self.body)

    def assert_well_formed(self, *, bare_pings: bool = False) -> None:
        """One start first; every body message holds whole events (no empty one but the
        final); exactly one final message, and it is the last body message."""
        assert self.messages[0]["type"] == "http.response.start"
        bodies = self.bodies
        assert bodies, "no body message"
        finals = [s for s in bodies if not s.message.get("more_body", False)]
        assert len(finals) == 1, self.messages
        assert finals[0] is bodies[-1]
        assert self.sent[-1] is bodies[-1] or self.sent[-1].message["type"] == (
            "http.response.trailers"
        )
        for sent in bodies:
            body = sent.message.get("body", b"")
            assert isinstance(body, bytes)
            assert body or sent is finals[0], "an empty result was sent"
            if bare_pings and body == b": ping\n":
                continue
            assert_whole_events(body)


class ScriptedApp:
    """An ASGI app that reads the request, then answers with ``body`` message by message.

    ``final``: ``"empty"`` ends with an empty ``more_body=False`` message, ``"bare"`` with
    Django's bare ``{"type": "http.response.body"}``, ``"last"`` sets ``more_body=False`` on the
    last part, ``"none"`` sends no final message. ``raise_after``: raise ``RuntimeError`` after
    that many body parts. ``pauses``: seconds to sleep before the part with that index.
    """

    def __init__(
        self,
        body: Sequence[bytes],
        *,
        status: int = 200,
        headers: Sequence[tuple[bytes, bytes]] = (SSE,),
        final: Literal["empty", "bare", "last", "none"] = "empty",
        raise_after: int | None = None,
        raise_before_start: bool = False,
        pauses: dict[int, float] | None = None,
        start_delay: float = 0.0,
    ) -> None:
        self.body = list(body)
        self.status = status
        self.headers = [(k, v) for k, v in headers]
        self.final = final
        self.raise_after = raise_after
        self.raise_before_start = raise_before_start
        self.pauses = pauses or {}
        self.start_delay = start_delay
        self.step = -1
        self.received: list[Message] = []
        self.sent: list[Message] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read the request body, then send the scripted response."""
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if self.start_delay:
            await asyncio.sleep(self.start_delay)
        if self.raise_before_start:
            raise RuntimeError("app failed before start")
        await self._send(
            send, {"type": "http.response.start", "status": self.status, "headers": self.headers}
        )
        for n, part in enumerate(self.body):
            if n == self.raise_after:
                raise RuntimeError("app failed mid-stream")
            if n in self.pauses:
                await asyncio.sleep(self.pauses[n])
            last = self.final == "last" and n == len(self.body) - 1
            await self._send(
                send, {"type": "http.response.body", "body": part, "more_body": not last}
            )
        if self.raise_after is not None and self.raise_after >= len(self.body):
            raise RuntimeError("app failed after its body")
        if self.final == "empty":
            await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})
        elif self.final == "bare":
            await self._send(send, {"type": "http.response.body"})

    async def _send(self, send: Send, message: Message) -> None:
        self.step = len(self.sent)
        self.sent.append(message)
        await send(message)
        self.step = -1


async def drive(
    app: ASGIApp,
    *,
    request: Sequence[Message] | None = None,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: Sequence[tuple[bytes, bytes]] = ((b"content-type", b"application/json"),),
    scripted: ScriptedApp | None = None,
    disconnect: asyncio.Event | None = None,
    spec_version: str = "2.3",
    send_fails_after: int | None = None,
) -> Exchange:
    """Run one HTTP request through ``app`` with in-memory ``receive``/``send``.

    ``receive`` hands out ``request`` (default: one empty JSON body), then blocks until the
    response is complete (or ``disconnect`` is set) and returns ``http.disconnect``.
    ``send_fails_after``: after that many messages ``send`` raises ``OSError`` (ASGI 2.4: the
    client is gone).
    """
    exchange = Exchange()
    pending = list(request if request is not None else [request_message(b"{}")])
    complete = asyncio.Event()
    gone = disconnect if disconnect is not None else asyncio.Event()

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        waiters = [asyncio.ensure_future(complete.wait()), asyncio.ensure_future(gone.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if send_fails_after is not None and len(exchange.sent) >= send_fails_after:
            gone.set()
            raise OSError("client gone")
        step = scripted.step if scripted is not None else -1
        exchange.sent.append(Sent(message, time.monotonic(), step))
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete.set()

    await app(
        http_scope(path, method=method, headers=headers, spec_version=spec_version), receive, send
    )
    return exchange


def request_message(body: bytes, more: bool = False) -> Message:
    """An ``http.request`` message."""
    return {"type": "http.request", "body": body, "more_body": more}


def chat_request(**fields: Any) -> list[Message]:
    """The request an OpenAI client sends to stream a chat completion."""
    payload = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    payload.update(fields)
    return [request_message(json.dumps(payload).encode())]


def middleware(app: ASGIApp, upstream: str, client: str, **options: Any) -> SSEAdapterMiddleware:
    """``SSEAdapterMiddleware`` for a fixed pair; heartbeats off unless asked for."""
    options.setdefault("heartbeat_interval", None)
    return SSEAdapterMiddleware(app, upstream_format=upstream, client_format=client, **options)


def early_heartbeats(app: ASGIApp, reports: list[StreamReport]) -> SSEAdapterMiddleware:
    """Anthropic → OpenAI with ``heartbeat_before_start`` and 20 ms keep-alives, reporting."""
    return middleware(
        app,
        ANTHROPIC,
        OPENAI,
        heartbeat_interval=0.02,
        heartbeat_before_start=True,
        on_complete=reports.append,
    )


def event_ends(raw: bytes) -> list[int]:
    """Offsets just past each event's blank line in an LF-only stream."""
    ends: list[int] = []
    at = raw.find(b"\n\n")
    while at >= 0:
        ends.append(at + 2)
        at = raw.find(b"\n\n", at + 2)
    return ends


# -- event-boundary re-chunking --------------------------------------------------------------


def expected_identity_bodies(raw: bytes, cuts: Sequence[int]) -> list[tuple[int, bytes]]:
    """For body parts ending at ``cuts``: (part index, bytes of the events it completes)."""
    ends = event_ends(raw)
    out: list[tuple[int, bytes]] = []
    done = 0
    for n, cut in enumerate(cuts):
        complete = max([e for e in ends if e <= cut], default=0)
        if complete > done:
            out.append((n, raw[done:complete]))
            done = complete
    return out


def split_at(raw: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``raw`` cut at the given increasing offsets (the last part ends at ``len(raw)``)."""
    parts: list[bytes] = []
    start = 0
    for cut in cuts:
        parts.append(raw[start:cut])
        start = cut
    return parts


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", [ANTHROPIC, OPENAI])
async def test_identity_rechunks_every_two_way_split(fmt: str) -> None:
    """Split anywhere, the identity stream goes out in whole events, each inbound message's
    events in exactly one outbound message, nothing for a message that completes none, and one
    final empty message."""
    raw = b"".join(upstream_events(fmt))
    for cut in range(len(raw) + 1):
        cuts = [cut, len(raw)]
        app = ScriptedApp(split_at(raw, cuts))
        exchange = await drive(middleware(app, fmt, fmt), scripted=app)
        exchange.assert_well_formed()
        data = [(s.step, s.message["body"]) for s in exchange.bodies if s.message["body"]]
        assert data == [(step + 1, body) for step, body in expected_identity_bodies(raw, cuts)]
        assert exchange.body == raw


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", [ANTHROPIC, OPENAI])
@pytest.mark.parametrize("final", ["empty", "bare", "last"])
async def test_identity_rechunks_byte_by_byte(
    fmt: str, final: Literal["empty", "bare", "last"]
) -> None:
    """One byte per inbound message: an outbound message exactly where an event completes, and
    the response ends with ``more_body=False`` once, whatever the app's final message."""
    raw = b"".join(upstream_events(fmt))
    cuts = list(range(1, len(raw) + 1))
    app = ScriptedApp(split_at(raw, cuts), final=final)
    exchange = await drive(middleware(app, fmt, fmt), scripted=app)
    exchange.assert_well_formed()
    data = [(s.step, s.message["body"]) for s in exchange.bodies if s.message["body"]]
    assert data == [(step + 1, body) for step, body in expected_identity_bodies(raw, cuts)]


@pytest.mark.anyio
@pytest.mark.parametrize("client", [ANTHROPIC, OPENAI])
async def test_wsgi_app_through_asgiref(client: str) -> None:
    """A WSGI app streaming SSE under asgiref's ``WsgiToAsgi`` (which wraps the ``send`` it is
    given in ``AsyncToSync``) works through the middleware without a warning: the middleware's
    ``send``, a plain function returning an awaitable, is marked as a coroutine function."""
    from asgiref.wsgi import WsgiToAsgi

    events = upstream_events(ANTHROPIC)

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        return iter(events)

    app = WsgiToAsgi(wsgi_app)  # type: ignore[no-untyped-call]
    exchange = await drive(middleware(app, ANTHROPIC, client), request=chat_request())
    exchange.assert_well_formed()
    assert b"Hello " in exchange.body


@pytest.mark.anyio
@pytest.mark.parametrize("upstream", [ANTHROPIC, OPENAI])
@pytest.mark.parametrize("client", [ANTHROPIC, OPENAI])
async def test_whole_event_over_the_bound_in_its_own_message(upstream: str, client: str) -> None:
    """An event over ``max_event_size`` arriving whole in a message of its own, once the stream
    runs on whole-event messages (where identity forwards the app's message as it is and a
    translated text delta is read straight from its bytes): the events before it, then the error
    tail; neither the oversized event nor anything after it reaches the client."""
    app = ScriptedApp(upstream_events(upstream, ("Hello ", "x" * 3000, "world")))
    exchange = await drive(middleware(app, upstream, client, max_event_size=2000), scripted=app)
    exchange.assert_well_formed()
    assert b"x" * 100 not in exchange.body
    assert b"Hello " in exchange.body
    assert b"upstream event larger than 2000 bytes" in exchange.body
    assert b"world" not in exchange.body  # nothing after the tail


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "client"), PAIRS[:2], ids=PAIR_IDS[:2])
async def test_translation_rechunks_every_two_way_split(upstream: str, client: str) -> None:
    """Translating, every split gives whole client events, at most one outbound message per
    inbound message, none for a message that completes no event, and the same stream."""
    raw = b"".join(upstream_events(upstream))
    ends = event_ends(raw)
    reference: list[ServerSentEvent] | None = None
    for cut in range(len(raw) + 1):
        app = ScriptedApp(split_at(raw, [cut, len(raw)]))
        exchange = await drive(middleware(app, upstream, client), scripted=app)
        exchange.assert_well_formed()
        steps = [s.step for s in exchange.bodies if s.message["body"]]
        assert len(steps) == len(set(steps)), steps
        if not any(0 < e <= cut for e in ends):
            assert 1 not in steps  # the first part completed no event: nothing sent for it
        assert all(s.step >= 1 for s in exchange.bodies)
        events = exchange.events
        assert text_of(events, client) == "Hello world"
        assert errors_of(events, client) == []
        shape = [
            (e.event, sorted(json.loads(e.data)) if e.data != "[DONE]" else e.data) for e in events
        ]
        if reference is None:
            reference = events
        assert shape == [
            (e.event, sorted(json.loads(e.data)) if e.data != "[DONE]" else e.data)
            for e in reference
        ]


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "client"), PAIRS[:2], ids=PAIR_IDS[:2])
async def test_translation_byte_by_byte_batches_per_inbound_message(
    upstream: str, client: str
) -> None:
    """Fed one byte per message, the translated stream still sends each inbound message's events
    in one outbound message and ends once."""
    raw = b"".join(upstream_events(upstream))
    app = ScriptedApp(split_at(raw, list(range(1, len(raw) + 1))), final="bare")
    exchange = await drive(middleware(app, upstream, client), scripted=app)
    exchange.assert_well_formed()
    steps = [s.step for s in exchange.bodies if s.message["body"]]
    assert len(steps) == len(set(steps))
    # Part n (step n + 1) completes an event when byte n is an event's last byte.
    assert set(steps) <= set(event_ends(raw))
    assert text_of(exchange.events, client) == "Hello world"


@pytest.mark.anyio
async def test_all_events_of_one_message_go_out_together() -> None:
    """The whole stream in one inbound message leaves as one outbound message (plus nothing but
    the end), and empty inbound messages send nothing."""
    raw = b"".join(anthropic_events())
    app = ScriptedApp([b"", raw, b"", b""])
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    with_data = [s for s in exchange.bodies if s.message["body"]]
    assert len(with_data) == 1
    assert with_data[0].step == 2  # the part after the start and the first empty part
    assert len(exchange.bodies) <= 2


# -- failures --------------------------------------------------------------------------------


def complete_text(raw: bytes, cut: int, fmt: str) -> str:
    """The answer text of the upstream events wholly inside ``raw[:cut]``."""
    ends = [e for e in event_ends(raw) if e <= cut]
    return text_of(decode(raw[: max(ends, default=0)]), fmt)


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_app_failure_at_every_byte(
    upstream: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app raises after k bytes, for every k: the client gets the events completed before
    the cut, then exactly one error tail in its format, the response ends properly, the
    exception is logged and not re-raised."""
    raw = b"".join(upstream_events(upstream))
    # After OpenAI's finish chunk an identity stream has said how it ends: an adapter may
    # treat a failure from then on as the end of a complete stream (no error tail).
    finished = raw.index(b'"finish_reason":"stop"') if upstream == OPENAI else len(raw)
    caplog.set_level(logging.ERROR, LOG)
    for cut in range(len(raw)):
        caplog.clear()
        parts = [p for p in split_at(raw[:cut], [*range(40, cut, 40), cut]) if p]
        app = ScriptedApp(parts, raise_after=len(parts))
        exchange = await drive(middleware(app, upstream, client), scripted=app)
        exchange.assert_well_formed()
        events = exchange.events
        if upstream == client == OPENAI and cut > finished and not errors_of(events, client):
            continue
        assert len(errors_of(events, client)) == 1, (cut, exchange.body)
        assert "RuntimeError" in error_message(events, client)
        position = errors_of(events, client)[0]
        tail = events[position + 1 :]
        assert [e.data for e in tail] == (["[DONE]"] if client == OPENAI else [])
        assert text_of(events, client) == complete_text(raw, cut, upstream), cut
        if upstream == client:
            ends = [e for e in event_ends(raw) if e <= cut]
            assert exchange.body.startswith(raw[: max(ends, default=0)])
        logged = [r for r in caplog.records if r.exc_info and r.levelno == logging.ERROR]
        assert len(logged) == 1
        assert logged[0].exc_info is not None
        assert isinstance(logged[0].exc_info[1], RuntimeError)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("upstream", "client"),
    [
        *PAIRS[:2],
        (ANTHROPIC, ANTHROPIC),
        (OPENAI, OPENAI),
    ],
    ids=PAIR_IDS,
)
async def test_app_failure_after_complete_stream(
    upstream: str, client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The app raises after sending its whole stream, terminator included: the client's stream
    stays complete (no error tail), ends properly, and the exception is logged, not re-raised."""
    raw = b"".join(upstream_events(upstream))
    caplog.set_level(logging.ERROR, LOG)
    for parts in ([raw], small_chunks(raw, 50)):
        caplog.clear()
        app = ScriptedApp(parts, raise_after=len(parts))
        exchange = await drive(middleware(app, upstream, client), scripted=app)
        exchange.assert_well_formed()
        assert errors_of(exchange.events, client) == []
        assert text_of(exchange.events, client) == "Hello world"
        logged = [r for r in caplog.records if r.exc_info]
        assert len(logged) == 1
        assert logged[0].exc_info is not None
        assert isinstance(logged[0].exc_info[1], RuntimeError)


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_body_without_terminal_event_gets_truncation_tail(upstream: str, client: str) -> None:
    """A body that ends before the upstream's terminal event ends with the truncation error."""
    events = upstream_events(upstream)
    raw = b"".join(events[:-4])  # up to the first text delta, before any finish reason
    reports: list[StreamReport] = []
    app = ScriptedApp([raw], final="bare")
    mw = middleware(app, upstream, client, on_complete=reports.append)
    exchange = await drive(mw, scripted=app)
    exchange.assert_well_formed()
    got = exchange.events
    assert len(errors_of(got, client)) == 1
    assert "truncated" in error_message(got, client)
    assert (got[-1].data == "[DONE]") is (client == OPENAI)
    (report,) = reports
    assert report.outcome == "truncated"
    assert report.error is not None
    assert report.error.code == "stream_truncated"


@pytest.mark.anyio
async def test_app_returning_without_final_message_is_ended() -> None:
    """An app that returns without its final body message still gets a finished response."""
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw], final="none")
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    assert errors_of(exchange.events, OPENAI) == []
    assert exchange.events[-1].data == "[DONE]"


# Starlette relies on ``send`` raising ``OSError`` (ASGI 2.4) only in releases whose
# StreamingResponse checks ``spec_version``; older ones cancel the stream on ``http.disconnect``.
STARLETTE_USES_ASGI_24_SEND_ERRORS = "spec_version" in inspect.getsource(StreamingResponse.__call__)


@pytest.mark.anyio
@pytest.mark.parametrize("first", ["app", "heartbeat"])
async def test_send_oserror_is_a_disconnect(first: str, caplog: pytest.LogCaptureFixture) -> None:
    """ASGI 2.4: the server's ``send`` raises ``OSError`` once the client is gone. Whether the
    app's send or a heartbeat meets it first, the app's send raises it (Starlette then raises
    ``ClientDisconnect``), nothing more is sent, ``on_complete`` says ``disconnected``, and no
    error is logged or raised."""
    reports: list[StreamReport] = []
    events = anthropic_events(("tick ",) * 20)
    errors: list[int] = []
    attempts: list[Message] = []
    yielded: list[bytes] = []

    async def gen() -> AsyncIterator[bytes]:
        for n, event in enumerate(events):
            if n == 2 and first == "heartbeat":
                await asyncio.sleep(0.2)  # silent: the heartbeat meets the dead client
            yielded.append(event)
            yield event

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        async def spy(message: Message) -> None:
            attempts.append(message)
            try:
                await send(message)
            except OSError:
                errors.append(len(attempts))
                raise

        await StreamingResponse(gen(), media_type="text/event-stream")(scope, receive, spy)

    interval = 0.02 if first == "heartbeat" else None
    mw = middleware(app, ANTHROPIC, OPENAI, on_complete=reports.append, heartbeat_interval=interval)
    with caplog.at_level(logging.INFO):
        exchange = await drive(mw, spec_version="2.4", send_fails_after=3)
    assert len(exchange.sent) == 3
    if STARLETTE_USES_ASGI_24_SEND_ERRORS:
        assert errors == [len(attempts)]  # the app's send raised, and the app sent nothing more
    else:
        # Older Starlette listens for the disconnect itself and cancels the stream first.
        assert errors in ([], [len(attempts)])
    assert len(yielded) < len(events)
    assert [r.outcome for r in reports] == ["disconnected"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.anyio
async def test_cancellation_sends_nothing_more_and_propagates() -> None:
    """Server shutdown cancels the request: the middleware re-raises ``CancelledError``
    promptly, with no farewell send that could block on a client that stopped reading, and
    reports the stream once."""
    reports: list[StreamReport] = []
    events = anthropic_events()
    stalled = asyncio.Event()
    sent: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        stalled.set()
        await asyncio.sleep(30)

    async def receive() -> Message:
        await asyncio.sleep(30)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if stalled.is_set():
            await asyncio.sleep(30)  # the client stopped reading: sends block

    mw = middleware(app, ANTHROPIC, OPENAI, on_complete=reports.append)
    scope: Scope = {"type": "http", "method": "GET", "path": "/", "headers": []}
    task = asyncio.ensure_future(mw(scope, receive, send))
    await stalled.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=2)
    assert done, "the cancelled request hung"
    assert task.cancelled()
    assert len(sent) == 2
    assert [r.outcome for r in reports] == ["disconnected"]


@pytest.mark.anyio
async def test_app_raising_before_start_propagates() -> None:
    """Before the response started the exception is the server's to handle (its 500)."""
    app = ScriptedApp([], raise_before_start=True)
    with pytest.raises(RuntimeError, match="before start"):
        await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("upstream", "client", "status", "body", "want_status", "want"),
    [
        (
            ANTHROPIC,
            OPENAI,
            529,
            anthropic_error_body(),
            503,
            {"error": {"message": "Overloaded", "type": "overloaded_error", "code": "overloaded"}},
        ),
        (
            OPENAI,
            ANTHROPIC,
            429,
            openai_error_body("rate_limit_exceeded", "Slow down", "rate_limit_exceeded"),
            429,
            {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}},
        ),
    ],
    ids=["anthropic-529-to-openai", "openai-429-to-anthropic"],
)
async def test_error_status_translated(
    upstream: str,
    client: str,
    status: int,
    body: bytes,
    want_status: int,
    want: dict[str, Any],
) -> None:
    """A non-2xx JSON error from the app reaches the client in its own format and status
    (formats.md §9.4), sent in two parts to prove the body is collected first."""
    app = ScriptedApp(
        [body[:10], body[10:]],
        status=status,
        headers=[
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(body)),
            (b"x-request-id", b"r1"),
        ],
    )
    exchange = await drive(middleware(app, upstream, client), scripted=app)
    assert exchange.start["status"] == want_status
    headers = exchange.headers
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"x-request-id"] == b"r1"
    assert int(headers[b"content-length"]) == len(exchange.body)
    got = json.loads(exchange.body)
    for key, value in want.items():
        if isinstance(value, dict):
            assert {k: got[key].get(k) for k in value} == value
        else:
            assert got[key] == value
    assert [m.get("more_body", False) for m in exchange.messages[1:]] == [False]


FASTAPI_422 = json.dumps(
    {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]}
).encode()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("upstream", "client", "status", "body", "content_type"),
    [
        (ANTHROPIC, ANTHROPIC, 529, anthropic_error_body(), b"application/json"),
        (
            OPENAI,
            OPENAI,
            400,
            openai_error_body("invalid_request_error", "bad messages", None).replace(
                b'"param": null', b'"param": "messages"'
            ),
            b"application/json",
        ),
        (ANTHROPIC, OPENAI, 422, FASTAPI_422, b"application/json"),
        (OPENAI, ANTHROPIC, 422, FASTAPI_422, b"application/json"),
        (ANTHROPIC, OPENAI, 500, b"Internal Server Error", b"text/plain; charset=utf-8"),
    ],
    ids=[
        "anthropic-identity",
        "openai-identity",
        "fastapi-422-to-openai",
        "fastapi-422-to-anthropic",
        "text-500",
    ],
)
async def test_error_bodies_passed_through(
    upstream: str, client: str, status: int, body: bytes, content_type: bytes
) -> None:
    """Error answers that are not an upstream provider's error to translate pass through
    unchanged: identity pairs (already in the client's format; OpenAI's ``param`` survives),
    an app's own JSON errors (FastAPI's 422 ``detail`` must not become a 500), plain text."""
    headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body))]
    app = ScriptedApp([body[:10], body[10:]], status=status, headers=headers)
    exchange = await drive(middleware(app, upstream, client), scripted=app)
    assert exchange.start is app.sent[0]
    assert exchange.body == body
    assert [m.get("more_body", False) for m in exchange.messages][-1] is False


# -- heartbeats ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_heartbeat_spacing_and_placement() -> None:
    """With a stalled app, keep-alives arrive about every interval, only between events (a
    partly sent event is held back meanwhile), and none while the stream is busy."""
    events = anthropic_events(("Hello ", "world"))
    half = len(events[3]) // 2
    parts = [b"".join(events[:3]), events[3][:half], events[3][half:] + b"".join(events[4:])]
    app = ScriptedApp(parts, pauses={1: 0.55, 2: 0.35})
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_interval=0.1)
    exchange = await drive(mw, scripted=app)
    exchange.assert_well_formed()
    pings = [s for s in exchange.bodies if s.message["body"] == b": ping\n\n"]
    assert all(p.step == -1 for p in pings)  # sent by the timer, not inside an app send
    assert 4 <= len(pings) <= 10, [round(p.at, 3) for p in pings]
    data = [s for s in exchange.bodies if s.message["body"] and s not in pings]
    assert [s.step for s in data] == [1, 3]
    stalls = [(data[0].at, data[1].at)]
    for start, stop in stalls:
        inside = [p.at for p in pings if start < p.at < stop]
        gaps = [b - a for a, b in zip([start, *inside], [*inside, stop], strict=False)]
        assert all(0.07 <= gap <= 0.3 for gap in gaps[:-1]), gaps
    # The ping during the second stall came while half an event was held back, yet every
    # message decodes on its own and the client sees exactly the translated events.
    assert text_of(exchange.events, OPENAI) == "Hello world"
    assert all(e.data for e in exchange.events)


@pytest.mark.anyio
async def test_heartbeat_is_bare_comment_after_an_id_field() -> None:
    """Passing through a stream with ``id:`` fields, the keep-alive is ``: ping\\n`` alone, so
    no parser dispatches a phantom event (sse-and-asgi.md §2.1)."""
    events = openai_events(ids=True)
    app = ScriptedApp([b"".join(events[:2]), b"".join(events[2:])], pauses={1: 0.35})
    mw = middleware(app, OPENAI, OPENAI, heartbeat_interval=0.1)
    exchange = await drive(mw, scripted=app)
    exchange.assert_well_formed(bare_pings=True)
    bodies = [s.message["body"] for s in exchange.bodies]
    assert bodies.count(b": ping\n") >= 2
    assert b": ping\n\n" not in bodies
    assert [e.data for e in exchange.events if not e.data] == []


@pytest.mark.anyio
async def test_heartbeat_off_when_interval_none() -> None:
    """``heartbeat_interval=None`` sends no keep-alive however long the app stalls."""
    events = anthropic_events()
    app = ScriptedApp([events[0], b"".join(events[1:])], pauses={1: 0.3})
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    assert all(s.step >= 0 for s in exchange.bodies)


async def run_stalled_streams(
    n: int,
    *,
    stall: float,
    interval: float,
    send: Callable[[int, Message], Awaitable[None]],
    upstream: str = OPENAI,
    client: str = OPENAI,
    on_complete: Callable[[StreamReport], None] | None = None,
    during: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """``n`` concurrent requests through one middleware; each app sends its first event, stalls
    for ``stall`` seconds, then ends. ``send(i, message)`` receives request ``i``'s messages;
    ``during`` runs while the streams stall."""
    events = upstream_events(upstream)
    release = asyncio.Event()  # one shared wait: the stalled apps themselves hold no timers

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        await release.wait()
        await send({"type": "http.response.body", "body": b"".join(events[1:])})

    mw = middleware(app, upstream, client, heartbeat_interval=interval, on_complete=on_complete)
    asyncio.get_running_loop().call_later(stall, release.set)

    async def one(i: int) -> None:
        done = asyncio.Event()

        async def receive() -> Message:
            if i >= 0 and not done.is_set():
                done.set()
                return request_message(b"{}")
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send_one(message: Message) -> None:
            await send(i, message)

        await mw(http_scope("/v1/chat/completions"), receive, send_one)

    streams = [asyncio.create_task(one(i)) for i in range(n)]
    if during is not None:
        await during()
    await asyncio.gather(*streams)


@pytest.mark.anyio
async def test_idle_streams_share_loop_timers() -> None:
    """500 idle streams are kept alive by a handful of loop timers, not one each (issue 5: no
    per-stream cost for heartbeats), every stream still gets its keep-alives on time, and the
    streams due together do not hold a keep-alive task each at once (a bounded peak)."""
    sends: dict[int, list[tuple[float, bool]]] = {}
    timers: list[int] = []

    async def send(i: int, message: Message) -> None:
        if message.get("body"):
            ping = message["body"] == b": ping\n\n"
            sends.setdefault(i, []).append((time.monotonic(), ping))

    async def during() -> None:
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        # asyncio's own heap of timers (every loop.call_at/call_later not yet run).
        scheduled: list[asyncio.TimerHandle] = loop._scheduled  # type: ignore[attr-defined]
        timers.append(len([t for t in scheduled if not t.cancelled()]))

    # How late the loop itself runs a 5 ms timer meanwhile: what a busy shared machine costs
    # every timer, keep-alives included (it excuses that much lateness, no more).
    lags: list[float] = []

    async def probe() -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - start - 0.005)

    # Keep-alive tasks alive at once, sampled at every loop turn.
    peak = [0]
    sampling = [True]

    def sample() -> None:
        coros = [t.get_coro() for t in asyncio.all_tasks()]
        alive = [c for c in coros if "_run_heartbeat" in getattr(c, "__qualname__", "")]
        peak[0] = max(peak[0], len(alive))
        if sampling[0]:
            asyncio.get_running_loop().call_soon(sample)

    prober = asyncio.create_task(probe())
    asyncio.get_running_loop().call_soon(sample)
    await run_stalled_streams(500, stall=1.0, interval=0.2, send=send, during=during)
    sampling[0] = False
    prober.cancel()
    assert 0 < peak[0] <= 100, peak  # of 500 streams due together
    assert timers[0] <= 10, timers
    assert sorted(sends) == list(range(500))
    gaps: list[float] = []
    for stream in sends.values():
        # During the stall (after the first event, before the rest): only keep-alives.
        assert [ping for _, ping in stream[1:-1]] == [True] * (len(stream) - 2)
        assert len(stream) - 2 >= 3, stream
        gaps += [b - a for (a, _), (b, _) in itertools.pairwise(stream[:-1])]
    # Never before 0.2 s of silence (less the stamping order in ``send``), and nearly always
    # within the bucket's 25 ms (an eighth of the interval) plus the loop's own worst lateness;
    # the rest is this loop being busy with 500 streams, so it is bounded loosely.
    assert min(gaps) >= 0.195, min(gaps)
    late = sorted(g for g in gaps if g > 0.26 + max(lags))
    assert len(late) <= len(gaps) // 10, (max(lags), late[-10:])
    assert max(gaps) < 0.6, late[-10:]


@pytest.mark.anyio
async def test_heartbeats_run_in_their_requests_context() -> None:
    """A keep-alive is sent in the context of the request it belongs to, as the app's own sends
    are (tracing middleware below us reads its span from a ContextVar), although one timer
    serves many streams."""
    request_id: contextvars.ContextVar[int] = contextvars.ContextVar("request_id")
    seen: list[tuple[int, int]] = []
    mw = middleware(
        ScriptedApp([upstream_events(OPENAI)[0], b""], pauses={1: 0.3}),
        OPENAI,
        OPENAI,
        heartbeat_interval=0.1,
    )

    async def one(i: int) -> None:
        request_id.set(i)
        sent_request = False

        async def receive() -> Message:
            nonlocal sent_request
            if not sent_request:
                sent_request = True
                return request_message(b"{}")
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message.get("body") == b": ping\n\n":
                seen.append((i, request_id.get(-1)))

        await mw(http_scope("/v1/chat/completions"), receive, send)

    await asyncio.gather(*(asyncio.create_task(one(i)) for i in range(20)))
    assert len({i for i, _ in seen}) == 20
    assert all(i == context for i, context in seen), seen


@pytest.mark.anyio
async def test_heartbeat_send_that_never_completes_is_abandoned(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A keep-alive to a client that stopped reading (the server's ``send`` waits forever) is
    bounded: after ``HEARTBEAT_SEND_TIMEOUT`` the send is cancelled, the stream is reported
    disconnected, and nothing is left running."""
    monkeypatch.setattr(session_module, "HEARTBEAT_SEND_TIMEOUT", 0.2)
    cancelled: list[int] = []
    reports: list[StreamReport] = []

    async def send(i: int, message: Message) -> None:
        if message.get("body", b"").startswith(b":"):
            try:
                await asyncio.sleep(3600)  # the socket's buffer is full and stays full
            except asyncio.CancelledError:
                cancelled.append(i)
                raise

    before = len(asyncio.all_tasks())
    with caplog.at_level(logging.WARNING, logger="asgi_sse_adapter"):
        await run_stalled_streams(3, stall=0.6, interval=0.1, send=send, on_complete=reports.append)
    await asyncio.sleep(0.05)  # the sync hook runs in a thread; let the report land
    assert sorted(cancelled) == [0, 1, 2]
    assert [r.outcome for r in reports] == ["disconnected"] * 3
    assert caplog.text.count("heartbeat send timed out") == 3
    assert len(asyncio.all_tasks()) == before


@pytest.mark.anyio
async def test_an_abandoned_stream_raises_into_the_apps_next_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once a keep-alive to a client that stopped reading is abandoned, the app's next send
    raises ``OSError`` (as a server's does after a disconnect, ASGI 2.4), so the app stops
    generating, and an LLM upstream behind it with it, instead of its sends vanishing."""
    monkeypatch.setattr(session_module, "HEARTBEAT_SEND_TIMEOUT", 0.2)
    events = upstream_events(OPENAI)
    raised: list[BaseException] = []
    sent_after: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        await asyncio.sleep(0.5)  # thinking: the keep-alive is sent, and never completes
        try:
            for event in events[1:]:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                sent_after.append(event)
        except OSError as exc:
            raised.append(exc)
            raise

    async def receive() -> Message:
        return request_message(b"{}")

    async def send(message: Message) -> None:
        if message.get("body", b"").startswith(b":"):
            await asyncio.sleep(3600)  # the client's socket buffer is full and stays full

    mw = middleware(app, OPENAI, OPENAI, heartbeat_interval=0.1)
    await mw(http_scope("/v1/chat/completions"), receive, send)
    assert len(raised) == 1
    assert sent_after == []


@pytest.mark.anyio
@pytest.mark.parametrize("ending", ["raises", "returns"])
async def test_the_ending_to_a_client_that_stopped_reading_is_bounded(
    ending: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The app gives up on a client that stopped reading (sse-starlette's ``send_timeout``
    raises in it) or returns without its terminal event: the error tail the adapter then sends
    on its own is bounded like a keep-alive, so the request ends instead of waiting on that
    client for good (it held the request task, the connection and the app's state)."""
    monkeypatch.setattr(session_module, "HEARTBEAT_SEND_TIMEOUT", 0.2)
    events = upstream_events(ANTHROPIC)
    reports: list[StreamReport] = []
    sends = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        await send({"type": "http.response.body", "body": events[1], "more_body": True})
        if ending == "raises":
            raise TimeoutError("send timed out")  # the app's own write guard

    async def receive() -> Message:
        return request_message(b"{}")

    async def send(message: Message) -> None:
        nonlocal sends
        if message["type"] == "http.response.body":
            sends += 1
            if sends > 1:
                await asyncio.sleep(3600)  # the client's socket buffer is full and stays full

    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_interval=None, on_complete=reports.append)
    before = len(asyncio.all_tasks())
    with caplog.at_level(logging.WARNING, logger="asgi_sse_adapter"):
        await asyncio.wait_for(mw(http_scope("/v1/chat/completions"), receive, send), 5)
    await asyncio.sleep(0.05)  # the sync hook runs in a thread; let the report land
    assert "stream end not delivered: client not reading" in caplog.text
    # (What the stream was, though the client never got its ending.)
    assert [r.outcome for r in reports] == ["failed" if ending == "raises" else "truncated"]
    assert len(asyncio.all_tasks()) == before


@pytest.mark.anyio
async def test_blocked_body_send_does_not_spin_the_heartbeat(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a body send waits on a client that is slow to read, the heartbeat looks at the
    stream about once per interval, not in a busy loop (and sends nothing in between)."""
    looks = 0
    on_due = session_module.StreamSession._on_due

    def counted(self: session_module.StreamSession) -> None:
        nonlocal looks
        looks += 1
        on_due(self)

    monkeypatch.setattr(session_module.StreamSession, "_on_due", counted)
    pings = 0

    async def send(i: int, message: Message) -> None:
        nonlocal pings
        body = message.get("body", b"")
        if body.startswith(b":"):
            pings += 1
        elif (
            body.startswith(b"data: ") and b"[DONE]" not in body and b'"finish_reason":null' in body
        ):
            await asyncio.sleep(0.6)  # the client reads the first event slowly

    await run_stalled_streams(1, stall=0.0, interval=0.05, send=send)
    # 0.6 s blocked at a 0.05 s interval: about 12 looks (a 1 ms re-check would be ~600).
    assert looks <= 20, looks
    assert pings == 0


@pytest.mark.anyio
async def test_heartbeat_before_start_commits_early_and_replays_body() -> None:
    """With ``heartbeat_before_start`` a streaming request gets ``200 text/event-stream`` and
    keep-alives at once; the app's late answer then follows, and the app still receives the
    request body the middleware read."""
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw], start_delay=0.35)
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_interval=0.1, heartbeat_before_start=True)
    request = chat_request()
    started = time.monotonic()
    exchange = await drive(mw, request=request, scripted=app)
    exchange.assert_well_formed()
    assert exchange.sent[0].at - started < 0.2
    assert exchange.start["status"] == 200
    assert exchange.headers[b"content-type"].startswith(b"text/event-stream")
    pings = [s for s in exchange.bodies if s.message["body"] == b": ping\n\n"]
    assert len(pings) >= 2
    assert pings[0].at - started < 0.3
    assert text_of(exchange.events, OPENAI) == "Hello world"
    assert app.received == request


@pytest.mark.anyio
async def test_heartbeat_before_start_stops_when_the_client_leaves() -> None:
    """Committed early, the middleware keeps the client alive while the app thinks, so it must
    notice the client leaving by itself (the app reads nothing meanwhile): keep-alives stop at
    once, the app's next send raises (it stops generating), the report says disconnected, and
    the app still sees the disconnect when it asks."""
    events = anthropic_events()
    raised: list[BaseException] = []
    received: list[str] = []
    reports: list[StreamReport] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.sleep(0.4)  # thinking, not reading
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        try:
            for event in events:
                await send({"type": "http.response.body", "body": event, "more_body": True})
        except OSError as exc:
            raised.append(exc)
        received.append((await receive())["type"])

    request = chat_request()
    left = asyncio.Event()
    asyncio.get_running_loop().call_later(0.15, left.set)  # the client leaves

    async def receive() -> Message:
        if request:
            return request.pop(0)
        await left.wait()
        return {"type": "http.disconnect"}

    pings_after: list[float] = []

    async def send(message: Message) -> None:
        if left.is_set() and message.get("body", b"").startswith(b":"):
            pings_after.append(time.monotonic())

    mw = early_heartbeats(app, reports)
    before = len(asyncio.all_tasks())
    await mw(http_scope("/v1/chat/completions"), receive, send)
    await asyncio.sleep(0.05)  # the sync hook runs in a thread
    assert pings_after == []
    assert len(raised) == 1
    assert received == ["http.disconnect"]
    assert [r.outcome for r in reports] == ["disconnected"]
    assert len(asyncio.all_tasks()) == before


@pytest.mark.anyio
async def test_heartbeat_before_start_leaves_a_complete_stream_alone() -> None:
    """After the response's last message the server reports a disconnect as well (the
    exchange is over): that is no client leaving, and the app's own last sends after its
    complete stream must not raise (Starlette would skip its background tasks)."""
    events = anthropic_events()
    raised: list[BaseException] = []
    request = chat_request()
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await asyncio.sleep(0.05)  # the server has reported the end of the exchange by now
        try:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError as exc:
            raised.append(exc)

    async def receive() -> Message:
        if request:
            return request.pop(0)
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    reports: list[StreamReport] = []
    mw = early_heartbeats(app, reports)
    await mw(http_scope("/v1/chat/completions"), receive, send)
    await asyncio.sleep(0.05)
    assert raised == []
    assert [r.outcome for r in reports] == ["complete"]


def trailers_app(raw: bytes) -> ASGIApp:
    """An app that declares trailers, streams ``raw`` and ends with a trailers message."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await asyncio.sleep(0.05)
        headers = [SSE, (b"x-request-id", b"req-1")]
        await send(
            {"type": "http.response.start", "status": 200, "headers": headers, "trailers": True}
        )
        await send({"type": "http.response.body", "body": raw, "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-usage", b"7")]})

    return app


@pytest.mark.anyio
async def test_trailers_follow_an_adapted_stream() -> None:
    """An adapted response keeps the app's ``trailers`` declaration, and its trailers follow
    the final body message."""
    exchange = await drive(
        middleware(trailers_app(b"".join(anthropic_events())), ANTHROPIC, OPENAI)
    )
    exchange.assert_well_formed()
    assert exchange.start.get("trailers") is True
    assert exchange.messages[-1] == {
        "type": "http.response.trailers",
        "headers": [(b"x-usage", b"7")],
    }


@pytest.mark.anyio
async def test_heartbeat_before_start_drops_trailers(caplog: pytest.LogCaptureFixture) -> None:
    """Committed before the app answered, the response announced no trailers and has its
    head: the app's trailers and headers (an inner CORS or session middleware's too) are
    dropped, with a warning that names them, rather than sent where the server expects none."""
    mw = middleware(
        trailers_app(b"".join(anthropic_events())),
        ANTHROPIC,
        OPENAI,
        heartbeat_before_start=True,
    )
    with caplog.at_level(logging.WARNING, LOG):
        exchange = await drive(mw, request=chat_request())
    exchange.assert_well_formed()
    assert "trailers" not in exchange.start
    assert [m["type"] for m in exchange.messages].count("http.response.trailers") == 0
    assert text_of(exchange.events, OPENAI) == "Hello world"
    warnings = [r.getMessage() for r in caplog.records if "committed before" in r.getMessage()]
    assert warnings == [
        "the stream was committed before the app answered; dropped: x-request-id, (trailers)"
    ]
    assert (b"x-request-id", b"req-1") not in exchange.start["headers"]


@pytest.mark.parametrize("kind", ["async generator", "sync generator"])
def test_app_code_after_its_last_event_runs(kind: str) -> None:
    """The client gets the stream's end as soon as the app's terminal event is read, but the
    response ends when the app ends it: the code after the app's last event (usage accounting,
    a database write, the generator's ``finally``) runs. Ended at once, the response was
    complete while the app ran, uvicorn's ``receive`` said ``http.disconnect`` and Starlette
    cancelled the generator. What the app sends after the end is dropped, and no keep-alive
    follows the end while the app works."""
    log: list[str] = []
    events = anthropic_events()
    late = {"type": "text_delta", "text": " late"}
    stray = sse_event(
        {"type": "content_block_delta", "index": 0, "delta": late}, "content_block_delta"
    )

    async def agen() -> AsyncIterator[bytes]:
        try:
            for event in events:
                yield event
            await asyncio.sleep(0.3)  # (six heartbeat intervals)
            yield stray
            log.append("saved")
        finally:
            log.append("finally")

    def sgen() -> Iterator[bytes]:
        try:
            yield from events
            time.sleep(0.3)
            yield stray
            log.append("saved")
        finally:
            log.append("finally")

    async def endpoint(request: Request) -> StreamingResponse:
        content = agen() if kind == "async generator" else sgen()
        return StreamingResponse(content, media_type="text/event-stream")

    app = Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])
    app.add_middleware(
        SSEAdapterMiddleware,
        upstream_format=ANTHROPIC,
        client_format=OPENAI,
        heartbeat_interval=0.05,
    )
    with live_server(app) as server, httpx2.Client(timeout=10) as client:
        # (A client that reads the response to its end, as browsers do: the sync OpenAI SDK
        # closes the connection at ``[DONE]``, a disconnect with or without the middleware.)
        body = client.post(server.url + "/v1/chat/completions", json={}).content
    assert text_of(decode(body), OPENAI) == "Hello world"
    assert body.endswith(b"}\n\ndata: [DONE]\n\n")
    assert body.count(b"[DONE]") == 1
    assert b"\n:" not in body.split(b"finish_reason")[-1]  # (no keep-alive after the end)
    assert log == ["saved", "finally"]


def test_django_view_work_after_its_last_event_runs() -> None:
    """The same in Django, which cancels its view when ``receive`` says ``http.disconnect``."""
    from tests.django_project import views

    views.AFTER_STREAM.clear()
    with (
        live_server(django_app(), lifespan="off") as server,
        httpx2.Client(timeout=10) as client,
    ):
        body = client.post(server.url + "/v1/chat/completions", json={"model": "then-work"})
    assert text_of(decode(body.content), OPENAI) == "Hello"
    assert views.AFTER_STREAM == ["saved", "finally"]


@pytest.mark.anyio
async def test_heartbeat_before_start_error_becomes_error_event() -> None:
    """Headers committed early, an app that answers 529 overloaded_error gives an OpenAI client
    the translated error event and ``[DONE]``."""
    body = anthropic_error_body()
    app = ScriptedApp(
        [body], status=529, headers=[(b"content-type", b"application/json")], start_delay=0.25
    )
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_interval=0.1, heartbeat_before_start=True)
    exchange = await drive(mw, request=chat_request(), scripted=app)
    exchange.assert_well_formed()
    assert exchange.start["status"] == 200
    events = exchange.events
    assert error_message(events, OPENAI) == "Overloaded"
    assert events[-1].data == "[DONE]"


@pytest.mark.anyio
async def test_heartbeat_before_start_app_failure_becomes_error_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Headers committed early, an app raising before its start ends the stream with the error
    tail instead of propagating (the server could not send a 500 any more)."""
    app = ScriptedApp([], raise_before_start=True, start_delay=0.05)
    mw = middleware(app, ANTHROPIC, ANTHROPIC, heartbeat_before_start=True)
    with caplog.at_level(logging.ERROR, LOG):
        exchange = await drive(mw, request=chat_request(), path="/v1/messages", scripted=app)
    exchange.assert_well_formed()
    assert "RuntimeError" in error_message(exchange.events, ANTHROPIC)
    assert any(r.exc_info for r in caplog.records)


@pytest.mark.anyio
async def test_heartbeat_before_start_needs_a_streaming_request() -> None:
    """A request that does not ask to stream is not committed early: a JSON answer passes."""
    body = json.dumps({"id": "chatcmpl-1", "object": "chat.completion"}).encode()
    app = ScriptedApp([body], headers=[(b"content-type", b"application/json")], final="last")
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_before_start=True)
    request = [request_message(json.dumps({"model": "m", "stream": False}).encode())]
    exchange = await drive(mw, request=request, scripted=app)
    assert exchange.messages == app.sent


# -- an Anthropic client's prompt size --------------------------------------------------------


@pytest.mark.anyio
async def test_an_anthropic_client_gets_its_prompts_size_at_the_start() -> None:
    """Claude Code's context meter reads the prompt's size in ``message_start``; an OpenAI
    upstream says it only at the end (``message_delta`` carries it then). The middleware reads
    the request to estimate it, as the proxy does, and the app gets the same request."""
    request = {
        "model": "m",
        "max_tokens": 100,
        "stream": True,
        "system": "You are terse." * 50,
        "messages": [{"role": "user", "content": "Summarise this: " + "lorem ipsum " * 400}],
        "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
    }
    body = json.dumps(request).encode()
    app = ScriptedApp(openai_events())
    exchange = await drive(
        middleware(app, OPENAI, ANTHROPIC), request=[request_message(body)], scripted=app
    )
    start = json.loads(exchange.events[0].data)
    assert start["type"] == "message_start"
    assert start["message"]["usage"]["input_tokens"] == estimate_input_tokens(request) > 1000
    assert [m.get("body") for m in app.received] == [body]  # (replayed as it came)
    (last,) = [json.loads(e.data) for e in exchange.events if e.event == "message_delta"]
    assert last["usage"]["input_tokens"] == 5  # (the upstream's own count, at the end)


# -- end_streams: the server shutting down --------------------------------------------------


@pytest.mark.anyio
async def test_end_streams_ends_adapted_streams_and_leaves_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``end_streams`` cancels the app of each adapted stream still open and sends the client
    format's error tail with the reason; the request then returns normally (the cancellation,
    ours, taken back) and the stream is reported failed. A response not adapted (JSON) and a
    stream already finished are left alone, and an app that turns the cancellation into an
    exception of its own changes nothing (no "application raised" error)."""
    reports: list[StreamReport] = []
    events = anthropic_events()
    seen: list[str] = []
    waiting: list[str] = []
    all_waiting = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        kind = SSE if path != "/json" else (b"content-type", b"application/json")
        await send({"type": "http.response.start", "status": 200, "headers": [kind]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        try:
            if path == "/done":
                for event in events[1:]:
                    await send({"type": "http.response.body", "body": event, "more_body": True})
            waiting.append(path)
            if len(waiting) == 4:
                all_waiting.set()
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append(path)
            if path == "/converts":
                raise RuntimeError("the app's own answer to being cancelled") from None
            raise
        finally:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    mw = middleware(app, ANTHROPIC, OPENAI, on_complete=reports.append)
    paths = ["/stream", "/converts", "/json", "/done"]
    tasks = {p: asyncio.ensure_future(drive(mw, path=p, request=chat_request())) for p in paths}
    await asyncio.wait_for(all_waiting.wait(), 3)
    with caplog.at_level(logging.DEBUG, LOG):
        assert mw.end_streams("maintenance") == 2
        assert mw.end_streams("again") == 0  # (each is ended once)
        done, _ = await asyncio.wait([tasks["/stream"], tasks["/converts"]], timeout=3)
    assert len(done) == 2
    for path in ("/stream", "/converts"):
        task = tasks[path]
        assert not task.cancelled()
        assert getattr(task, "cancelling", lambda: 0)() == 0  # ours, taken back (3.11+)
        exchange = task.result()
        exchange.assert_well_formed()
        assert exchange.events[-1].data == "[DONE]"
        assert error_message(exchange.events, OPENAI) == "maintenance"
    assert sorted(seen) == ["/converts", "/stream"]
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)
    failed = [(r.outcome, r.error.message if r.error else None) for r in reports]
    assert failed == [("failed", "maintenance")] * 2
    # The others go on until the server ends them.
    for path in ("/json", "/done"):
        assert not tasks[path].done()
        tasks[path].cancel()
    await asyncio.wait([tasks["/json"], tasks["/done"]], timeout=3)
    assert [r.outcome for r in reports[2:]] == ["complete"]


@pytest.mark.anyio
async def test_end_streams_before_the_app_answers() -> None:
    """With ``heartbeat_before_start`` the stream is open before the app answers: ended then,
    the client gets the error tail after its keep-alives."""
    reports: list[StreamReport] = []
    app = ScriptedApp(anthropic_events(), start_delay=30)
    mw = early_heartbeats(app, reports)
    task = asyncio.ensure_future(drive(mw, request=chat_request(), scripted=app))
    await asyncio.sleep(0.1)
    assert mw.end_streams("maintenance") == 1
    exchange = await asyncio.wait_for(task, 3)
    exchange.assert_well_formed(bare_pings=True)
    assert exchange.body.startswith(b":")  # (its keep-alives first)
    assert error_message(exchange.events, OPENAI) == "maintenance"
    assert [r.outcome for r in reports] == ["failed"]


def test_end_streams_under_uvicorn_with_starlette_and_the_sdk() -> None:
    """On a real server, behind Starlette's ``StreamingResponse`` (whose task group sees the
    cancellation): the OpenAI SDK raises the API error with the reason, after the text that came
    before, and the generator is closed."""
    closed: list[str] = []

    async def agen() -> AsyncIterator[bytes]:
        events = anthropic_events()
        try:
            yield b"".join(events[:-3])  # up to the text, no end
            await asyncio.sleep(30)
        finally:
            closed.append("finally")

    async def endpoint(request: Request) -> StreamingResponse:
        return StreamingResponse(agen(), media_type="text/event-stream")

    inner = Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])
    mw = SSEAdapterMiddleware(inner, upstream_format=ANTHROPIC, client_format=OPENAI)

    async def end() -> int:
        return mw.end_streams("maintenance")

    with (
        live_server(mw) as server,
        openai.OpenAI(base_url=server.url + "/v1", api_key="k", max_retries=0) as client,
    ):
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        first = next(iter(stream))
        assert server.call(end) == 1
        with pytest.raises(openai.APIError) as raised:
            for _ in stream:
                pass
    assert first.choices[0].delta.role == "assistant"
    assert raised.value.message == "maintenance"
    assert closed == ["finally"]


# -- on_complete and logging -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async", "returns-awaitable"])
async def test_on_complete_hooks(kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """Sync and async hooks (and a sync callable returning an awaitable) run once per stream
    with the final response, usage, outcome and timing; one INFO line per stream."""
    reports: list[StreamReport] = []
    threads: list[str] = []

    def sync_hook(report: StreamReport) -> None:
        threads.append(threading.current_thread().name)
        reports.append(report)

    async def async_hook(report: StreamReport) -> None:
        await asyncio.sleep(0)
        reports.append(report)

    hooks: dict[str, Any] = {
        "sync": sync_hook,
        "async": async_hook,
        "returns-awaitable": lambda report: async_hook(report),
    }
    raw = b"".join(anthropic_events())
    caplog.set_level(logging.INFO, LOG)
    for _ in range(2):
        app = ScriptedApp([raw[:100], raw[100:]], pauses={1: 0.02})
        mw = middleware(app, ANTHROPIC, OPENAI, on_complete=hooks[kind])
        exchange = await drive(
            mw, request=chat_request(stream_options={"include_usage": True}), scripted=app
        )
        exchange.assert_well_formed()
    assert len(reports) == 2
    report = reports[0]
    assert report.outcome == "complete"
    assert (report.upstream_format, report.client_format) == (ANTHROPIC, OPENAI)
    assert report.response is not None
    assert report.response["object"] == "chat.completion"
    assert report.response["choices"][0]["message"]["content"] == "Hello world"
    assert report.usage is not None
    assert (report.usage.input_tokens, report.usage.output_tokens) == (5, 2)
    assert report.error is None
    assert report.bytes_sent == len(exchange.body)
    assert report.events == 8
    assert report.time_to_first_event is not None
    assert 0 <= report.time_to_first_event <= report.duration
    assert report.duration >= 0.02
    lines = [r for r in caplog.records if r.name == LOG and r.levelno == logging.INFO]
    assert len(lines) == 2
    assert "complete" in lines[0].getMessage()
    if kind == "sync":
        assert threads
        assert threads[0] != threading.current_thread().name


@pytest.mark.anyio
async def test_identity_stream_line_does_not_claim_zero_events(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Identity without ``on_complete`` re-frames raw blocks and reads no event: its INFO line
    says the count is unknown (it said 0); with a hook, the events are read and counted."""
    raw = b"".join(upstream_events(OPENAI))
    caplog.set_level(logging.INFO, LOG)
    reports: list[StreamReport] = []
    for hook in (None, reports.append):
        app = ScriptedApp([raw])
        exchange = await drive(middleware(app, OPENAI, OPENAI, on_complete=hook), scripted=app)
        exchange.assert_well_formed()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sse stream")]
    assert [line.split(", ")[1] for line in lines] == ["- events", f"{reports[0].events} events"]
    assert reports[0].events == len(upstream_events(OPENAI))


@pytest.mark.anyio
async def test_on_complete_failure_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    """A raising hook is logged; the stream it reports on is unaffected."""

    def hook(report: StreamReport) -> None:
        raise ValueError("hook broke")

    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw])
    with caplog.at_level(logging.INFO, LOG):
        exchange = await drive(middleware(app, ANTHROPIC, OPENAI, on_complete=hook), scripted=app)
    exchange.assert_well_formed()
    assert text_of(exchange.events, OPENAI) == "Hello world"
    assert errors_of(exchange.events, OPENAI) == []
    broken = [r for r in caplog.records if r.exc_info]
    assert len(broken) == 1
    assert broken[0].exc_info is not None
    assert isinstance(broken[0].exc_info[1], ValueError)
    assert len([r for r in caplog.records if r.getMessage().startswith("sse stream")]) == 1


@pytest.mark.anyio
async def test_on_complete_reports_failure_and_disconnect() -> None:
    """``on_complete`` says ``failed`` for an app that raised mid-stream and ``disconnected``
    for a client that went away (observed through the app's ``receive``)."""
    reports: list[StreamReport] = []
    events = anthropic_events()
    failing = ScriptedApp([events[0]], raise_after=1)
    await drive(
        middleware(failing, ANTHROPIC, OPENAI, on_complete=reports.append), scripted=failing
    )
    assert [r.outcome for r in reports] == ["failed"]
    assert reports[0].error is not None

    gone = asyncio.Event()
    saw: list[Message] = []

    async def listening(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        gone.set()
        saw.append(await receive())
        await send({"type": "http.response.body", "body": events[1], "more_body": True})

    exchange = await drive(
        middleware(listening, ANTHROPIC, OPENAI, on_complete=reports.append), disconnect=gone
    )
    assert saw == [{"type": "http.disconnect"}]
    assert [r.outcome for r in reports] == ["failed", "disconnected"]
    assert all(m.get("more_body", True) for m in exchange.messages[1:])  # nothing after it


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_a_client_leaving_after_the_end_got_a_complete_stream(
    upstream: str, client: str
) -> None:
    """A client that leaves once it has the stream's end (the sync OpenAI SDK closes at
    ``[DONE]``) while the app still works got the whole answer: ``complete``, the same whether
    the stream was translated or passed through (identity streams end only when the app's
    body does)."""
    reports: list[StreamReport] = []
    gone = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        for event in upstream_events(upstream):
            await send({"type": "http.response.body", "body": event, "more_body": True})
        gone.set()
        await receive()  # (the app's own disconnect listener, as Starlette's)

    await drive(middleware(app, upstream, client, on_complete=reports.append), disconnect=gone)
    assert [r.outcome for r in reports] == ["complete"]


@pytest.mark.anyio
async def test_a_terminator_whose_send_failed_is_no_complete_stream() -> None:
    """Identity: the server's ``send`` raised (ASGI 2.4) on the message carrying ``[DONE]``: the
    client never got it, so the stream is ``disconnected``, not ``complete``."""
    reports: list[StreamReport] = []
    events = upstream_events(OPENAI)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})

    mw = middleware(app, OPENAI, OPENAI, on_complete=reports.append)
    with contextlib.suppress(OSError):
        await drive(mw, spec_version="2.4", send_fails_after=len(events))  # (the start: 1)
    assert [r.outcome for r in reports] == ["disconnected"]


# -- leaving other traffic alone -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "headers", "parts"),
    [
        (
            200,
            [(b"content-type", b"application/json"), (b"content-length", b"11")],
            [b'{"ok":', b"true}"],
        ),
        (
            200,
            [(b"Content-Type", b"text/plain; charset=utf-8"), (b"Content-Length", b"5")],
            [b"he", b"llo"],
        ),
        (404, [(b"content-type", b"text/plain"), (b"content-length", b"9")], [b"not found"]),
        (200, [(b"content-type", b"text/event-streams")], [b"data: x\n\n"]),
        (204, [(b"content-type", b"text/event-stream")], [b""]),
        (302, [(b"location", b"/elsewhere"), (b"content-type", b"text/event-stream")], [b""]),
    ],
    ids=["json", "text", "404-text", "not-sse", "sse-204", "sse-302"],
)
async def test_non_sse_responses_untouched(
    status: int, headers: list[tuple[bytes, bytes]], parts: list[bytes]
) -> None:
    """Responses that are not a 2xx event stream pass through message for message, byte for
    byte (the very message objects the app sent)."""
    app = ScriptedApp(parts, status=status, headers=headers, final="last")
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    assert len(exchange.messages) == len(app.sent)
    assert all(a is b for a, b in zip(exchange.messages, app.sent, strict=True))


@pytest.mark.anyio
async def test_select_none_leaves_response_alone() -> None:
    """``select(scope)`` returning ``None`` leaves even an event stream untouched."""
    raw = b"".join(anthropic_events())
    calls: list[str] = []

    def select(scope: Scope) -> tuple[str, str] | None:
        calls.append(scope["path"])
        return (ANTHROPIC, OPENAI) if scope["path"] == "/v1/chat/completions" else None

    headers = [SSE, (b"content-length", b"%d" % len(raw))]
    app = ScriptedApp([raw[:7], raw[7:]], headers=headers)
    mw = SSEAdapterMiddleware(app, select=select)
    exchange = await drive(mw, path="/v1/messages", scripted=app)
    assert calls == ["/v1/messages"]
    assert len(exchange.messages) == len(app.sent)
    assert all(a is b for a, b in zip(exchange.messages, app.sent, strict=True))


@pytest.mark.anyio
async def test_lifespan_passes_through() -> None:
    """A lifespan scope reaches the app with the server's own ``receive`` and ``send``."""
    seen: list[tuple[Scope, Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((scope, receive, send))
        message = await receive()
        assert message == {"type": "lifespan.startup"}
        await send({"type": "lifespan.startup.complete"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    await middleware(app, ANTHROPIC, OPENAI)(scope, receive, send)
    assert seen == [(scope, receive, send)]
    assert sent == [{"type": "lifespan.startup.complete"}]


@pytest.mark.anyio
async def test_websocket_scope_passes_through() -> None:
    """A websocket scope reaches the app with the server's own ``receive`` and ``send``."""
    seen: list[tuple[Receive, Send]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append((receive, send))
        await send({"type": "websocket.accept"})

    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(app, ANTHROPIC, OPENAI)({"type": "websocket", "path": "/ws"}, receive, send)
    assert seen == [(receive, send)]
    assert sent == [{"type": "websocket.accept"}]


def test_websocket_route_through_uvicorn() -> None:
    """A Starlette websocket route behind the middleware works under uvicorn, frames intact
    (needs ``websockets``; the direct-drive test above covers the scope without it)."""
    client = pytest.importorskip("websockets.sync.client")
    # The sans-I/O implementation: older uvicorn's legacy one warns (warnings are errors here).
    ws_impl = "websockets-sansio" if "websockets-sansio" in uvicorn.config.WS_PROTOCOLS else "auto"

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(text)
        data = await websocket.receive_bytes()
        await websocket.send_bytes(data)
        await websocket.close()

    app = Starlette(routes=[WebSocketRoute("/ws", echo)])
    app.add_middleware(SSEAdapterMiddleware, upstream_format=ANTHROPIC, client_format=OPENAI)
    with serve(app, ws=ws_impl) as url:
        ws_url = url.replace("http", "ws", 1) + "/ws"
        with client.connect(ws_url) as ws:
            ws.send("data: not an event\n\n")
            assert ws.recv() == "data: not an event\n\n"
            ws.send(b"\x00\xff: ping\n\n")
            assert ws.recv() == b"\x00\xff: ping\n\n"


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", [b"gzip", b"x-gzip", b"deflate"])
async def test_compressed_event_stream_is_decoded(encoding: bytes) -> None:
    """An event stream compressed per chunk (Django's GZipMiddleware writes one gzip member per
    chunk), the members cut at odd places, is decoded, and ``Content-Encoding`` dropped."""
    events = anthropic_events()
    if encoding == b"deflate":
        compressor = zlib.compressobj()
        members = [compressor.compress(e) + compressor.flush(zlib.Z_SYNC_FLUSH) for e in events]
        members.append(compressor.flush())
    else:
        members = [gzip.compress(e) for e in events]
    compressed = b"".join(members)
    parts = split_at(compressed, [*range(17, len(compressed), 17), len(compressed)])
    headers = [SSE, (b"Content-Encoding", encoding), (b"vary", b"Accept-Encoding")]
    app = ScriptedApp(parts, headers=headers, final="bare")
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    assert b"content-encoding" not in {k.lower() for k in exchange.headers}
    assert exchange.headers[b"vary"] == b"Accept-Encoding"
    assert text_of(exchange.events, OPENAI) == "Hello world"
    assert errors_of(exchange.events, OPENAI) == []


@pytest.mark.anyio
async def test_corrupt_compressed_stream_ends_with_error() -> None:
    """A gzip stream that does not inflate ends with the error tail, not an exception."""
    good = gzip.compress(anthropic_events()[0])
    app = ScriptedApp(
        [good, b"\x1f\x8b\x08garbage-garbage"], headers=[SSE, (b"content-encoding", b"gzip")]
    )
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    assert "corrupt" in error_message(exchange.events, OPENAI)


@pytest.mark.anyio
async def test_unknown_encoding_passes_through_with_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An encoding the middleware cannot decode (br) is passed through untouched, with a
    warning."""
    parts = [b"\x8b\x02\x80data: opaque", b"brotli bytes"]
    app = ScriptedApp(parts, headers=[SSE, (b"content-encoding", b"br")])
    with caplog.at_level(logging.WARNING, LOG):
        exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    assert all(a is b for a, b in zip(exchange.messages, app.sent, strict=True))
    assert len(exchange.messages) == len(app.sent)
    assert any("br" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content_type",
    [
        b"Text/Event-Stream; charset=utf-8",
        b" text/event-stream ",
        b"TEXT/EVENT-STREAM;charset=UTF-8",
    ],
)
async def test_content_type_parsing(content_type: bytes) -> None:
    """The media type is compared case-insensitively, parameters and blanks ignored."""
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw], headers=[(b"content-type", content_type)])
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    assert json.loads(exchange.events[0].data)["object"] == "chat.completion.chunk"
    assert exchange.headers[b"cache-control"] == b"no-cache"


@pytest.mark.anyio
async def test_response_headers_rewritten() -> None:
    """Mixed-case names (Django) are found and lowercased; Content-Length is dropped;
    Cache-Control and X-Accel-Buffering are added; other headers are kept."""
    raw = b"".join(anthropic_events())
    headers = [
        (b"Content-Type", b"text/event-stream"),
        (b"Content-Length", b"%d" % len(raw)),
        (b"X-Request-Id", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    app = ScriptedApp([raw], headers=headers)
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    exchange.assert_well_formed()
    sent = [(bytes(k), bytes(v)) for k, v in exchange.start["headers"]]
    assert all(k == k.lower() for k, _ in sent)
    assert [v for k, v in sent if k == b"set-cookie"] == [b"a=1", b"b=2"]
    assert dict(sent) == {
        b"content-type": b"text/event-stream",
        b"x-request-id": b"abc",
        b"set-cookie": b"b=2",
        b"cache-control": b"no-cache",
        b"x-accel-buffering": b"no",
    }
    assert exchange.start["status"] == 200


@pytest.mark.anyio
async def test_app_anti_buffering_headers_kept() -> None:
    """Cache-Control and X-Accel-Buffering set by the app are kept, not duplicated."""
    raw = b"".join(anthropic_events())
    headers = [SSE, (b"Cache-Control", b"no-store"), (b"x-accel-buffering", b"yes")]
    app = ScriptedApp([raw], headers=headers)
    exchange = await drive(middleware(app, ANTHROPIC, ANTHROPIC), scripted=app)
    sent = [(bytes(k), bytes(v)) for k, v in exchange.start["headers"]]
    assert [v for k, v in sent if k == b"cache-control"] == [b"no-store"]
    assert [v for k, v in sent if k == b"x-accel-buffering"] == [b"yes"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "method", "content_type"),
    [
        (
            json.dumps(
                {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
            ).encode(),
            "POST",
            b"application/json",
        ),
        (b'{"model": "m", "str', "POST", b"application/json"),
        (b"x" * (1024 * 1024 + 10), "POST", b"application/json"),
        (b"a=b", "POST", b"application/x-www-form-urlencoded"),
        (b"", "GET", b"application/json"),
    ],
    ids=["json", "broken-json", "over-1mib", "form", "get"],
)
@pytest.mark.parametrize("early", [False, True])
async def test_request_body_replayed(
    body: bytes, method: str, content_type: bytes, early: bool
) -> None:
    """Whatever the middleware reads of the request (usage negotiation, early heartbeats), the
    app receives exactly the messages the server sent, in order, then the disconnect."""
    step = 65536
    request = [
        request_message(body[i : i + step], more=i + step < len(body))
        for i in range(0, max(len(body), 1), step)
    ]
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw])
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_before_start=early, heartbeat_interval=5.0)
    exchange = await drive(
        mw,
        request=list(request),
        method=method,
        headers=[(b"content-type", content_type)],
        scripted=app,
    )
    exchange.assert_well_formed()
    assert app.received == request


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("asked", "forced", "want"),
    [(True, None, True), (False, None, False), (None, None, False), (False, True, True)],
)
async def test_usage_chunk_follows_request(
    asked: bool | None, forced: bool | None, want: bool
) -> None:
    """OpenAI clients get the usage chunk when their request asked for it
    (``stream_options.include_usage``) or ``include_usage=True`` forces it."""
    fields: dict[str, Any] = {}
    if asked is not None:
        fields["stream_options"] = {"include_usage": asked}
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw])
    mw = middleware(app, ANTHROPIC, OPENAI, include_usage=forced)
    exchange = await drive(mw, request=chat_request(**fields), scripted=app)
    usage = [p for p in payloads(exchange.events) if isinstance(p, dict) and p.get("usage")]
    assert bool(usage) is want
    if want:
        assert usage[-1]["usage"]["prompt_tokens"] == 5


@pytest.mark.anyio
async def test_extension_message_after_start_stops_adapting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown message after an SSE start is forwarded as is (with a warning) and the rest
    of the response passes through untouched."""
    events = anthropic_events()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
        await send({"type": "http.response.body", "body": events[0], "more_body": True})
        await send({"type": "http.response.pathsend", "path": "/tmp/x"})
        await send({"type": "http.response.body", "body": b"raw", "more_body": False})

    with caplog.at_level(logging.WARNING, LOG):
        exchange = await drive(middleware(app, ANTHROPIC, OPENAI))
    kinds = [m["type"] for m in exchange.messages]
    assert kinds[-2:] == ["http.response.pathsend", "http.response.body"]
    assert exchange.messages[-1]["body"] == b"raw"
    assert any("pathsend" in r.getMessage() for r in caplog.records)


@pytest.mark.anyio
async def test_head_request_left_alone(caplog: pytest.LogCaptureFixture) -> None:
    """A HEAD response has no body: the app's start and empty body pass as they are, with no
    truncation tail, no warning and no report (a monitor's probe is not a failed stream)."""
    reports: list[StreamReport] = []
    app = ScriptedApp([], final="empty")
    mw = middleware(app, ANTHROPIC, OPENAI, on_complete=reports.append)
    with caplog.at_level(logging.WARNING, LOG):
        exchange = await drive(mw, method="HEAD", scripted=app)
    assert exchange.messages == app.sent
    assert reports == []
    assert [r for r in caplog.records if r.name == LOG] == []


@pytest.mark.anyio
async def test_partial_content_left_alone() -> None:
    """A 206 answer is a byte range of a representation: re-chunking it would corrupt it."""
    raw = b"".join(anthropic_events())
    app = ScriptedApp([raw[:50], raw[50:]], status=206, headers=[SSE, (b"content-range", b"x")])
    exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
    assert exchange.messages == app.sent


@pytest.mark.anyio
async def test_heartbeat_before_start_then_undecodable_encoding_ends_with_error() -> None:
    """Headers committed early, an SSE answer in an encoding the middleware cannot decode (br)
    cannot be passed through any more (a second start): the stream ends with the error tail."""
    app = ScriptedApp(
        [b"\x8b\x02\x80opaque"], headers=[SSE, (b"content-encoding", b"br")], start_delay=0.05
    )
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_before_start=True)
    exchange = await drive(mw, request=chat_request(), scripted=app)
    exchange.assert_well_formed()
    assert exchange.start["status"] == 200
    assert "Content-Encoding" in error_message(exchange.events, OPENAI)
    assert exchange.events[-1].data == "[DONE]"


@pytest.mark.anyio
@pytest.mark.parametrize("early", [False, True], ids=["answer", "committed-early"])
async def test_compressed_error_body_translated(early: bool) -> None:
    """A gzip-compressed provider error (Django's GZipMiddleware compresses error JSON too) is
    decoded before it is translated: the client reads the provider's message, not gzip."""
    body = anthropic_error_body()
    compressed = gzip.compress(body)
    app = ScriptedApp(
        [compressed[:7], compressed[7:]],
        status=529,
        headers=[(b"Content-Type", b"application/json"), (b"Content-Encoding", b"gzip")],
        start_delay=0.05 if early else 0.0,
    )
    mw = middleware(app, ANTHROPIC, OPENAI, heartbeat_before_start=early)
    exchange = await drive(mw, request=chat_request(), scripted=app)
    if early:
        exchange.assert_well_formed()
        assert error_message(exchange.events, OPENAI) == "Overloaded"
        return
    assert exchange.start["status"] == 503
    assert b"content-encoding" not in exchange.headers
    assert all(k == k.lower() for k in exchange.headers)
    assert json.loads(exchange.body)["error"]["message"] == "Overloaded"


@pytest.mark.anyio
async def test_compressed_error_body_is_decoded_bounded() -> None:
    """A compressed error body that inflates past the inspection bound is never inflated whole:
    the client gets an error answer from the status alone."""
    bomb = gzip.compress(b'{"error": {"message": "' + b"a" * (64 << 20) + b'"}}')
    app = ScriptedApp(
        [bomb],
        status=529,
        headers=[(b"content-type", b"application/json"), (b"content-encoding", b"gzip")],
    )
    tracemalloc.start()
    try:
        exchange = await drive(middleware(app, ANTHROPIC, OPENAI), scripted=app)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20
    assert exchange.start["status"] == 503
    message = json.loads(exchange.body)["error"]["message"]
    assert "aaaa" not in message
    assert "\ufffd" not in message  # (not the compressed bytes read as text either)


@pytest.mark.anyio
async def test_compressed_stream_expanding_far_is_passed_on_in_pieces() -> None:
    """A small compressed body that inflates to megabytes is decoded a piece at a time: every
    event arrives whole, and no outbound message holds much more than a piece."""
    delta = anthropic_events(["x" * 1000])[3]
    raw = b"".join([*anthropic_events()[:3], delta * 4000, *anthropic_events()[-3:]])
    app = ScriptedApp([gzip.compress(raw)], headers=[SSE, (b"content-encoding", b"gzip")])
    exchange = await drive(middleware(app, ANTHROPIC, ANTHROPIC), scripted=app)
    exchange.assert_well_formed()
    assert b"".join(s.message.get("body", b"") for s in exchange.bodies) == raw
    assert max(len(s.message.get("body", b"")) for s in exchange.bodies) < (1 << 20) + len(delta)


@pytest.mark.anyio
@pytest.mark.parametrize("size", [10, 2 << 20], ids=["small", "2-MiB"])
async def test_usage_negotiated_on_large_and_mixed_case_requests(size: int) -> None:
    """A request with a large body (inline images) and a mixed-case JSON media type still has
    its ``stream_options.include_usage`` honoured; the app receives the body unchanged."""
    request = chat_request(stream_options={"include_usage": True}, padding="p" * size)
    body = request[0]["body"]
    request = [request_message(body[:100], more=True), request_message(body[100:])]
    app = ScriptedApp([b"".join(anthropic_events())])
    mw = middleware(app, ANTHROPIC, OPENAI)
    exchange = await drive(
        mw,
        request=request,
        headers=[(b"content-type", b"Application/JSON; charset=utf-8")],
        scripted=app,
    )
    usage = [p for p in payloads(exchange.events) if isinstance(p, dict) and p.get("usage")]
    assert usage
    assert usage[-1]["usage"]["prompt_tokens"] == 5
    assert app.received == request


def test_constructor_validates_options() -> None:
    """A pair or ``select`` is required, formats must exist, the interval must be positive,
    the reasoning options must make sense (at construction, not on each request)."""
    with pytest.raises(TypeError):
        SSEAdapterMiddleware(ScriptedApp([]), upstream_format=ANTHROPIC)
    with pytest.raises(ValueError, match="unknown format"):
        SSEAdapterMiddleware(ScriptedApp([]), upstream_format="nope", client_format=OPENAI)
    with pytest.raises(ValueError, match="heartbeat_interval"):
        SSEAdapterMiddleware(
            ScriptedApp([]), upstream_format=OPENAI, client_format=OPENAI, heartbeat_interval=0
        )
    with pytest.raises(ValueError, match="reasoning_field"):
        SSEAdapterMiddleware(ScriptedApp([]), select=select_by_path, reasoning_field="content")
    with pytest.raises(ValueError, match="reasoning must be"):
        SSEAdapterMiddleware(ScriptedApp([]), select=select_by_path, reasoning="hide")  # type: ignore[arg-type]


def test_constructor_refuses_nonsense_numbers() -> None:
    """A heartbeat interval must be a positive finite number of seconds (NaN used to be taken and
    broke every stream in the heartbeat timer) and ``max_event_size`` a positive int, both or
    ``None``, checked at construction rather than on each stream."""
    refused: list[dict[str, Any]] = [
        *({"heartbeat_interval": v} for v in (0, -1, float("nan"), float("inf"), "15", True)),
        *({"max_event_size": v} for v in (0, -1, float("nan"), 1.5)),
    ]
    for options in refused:
        (name,) = options
        with pytest.raises(ValueError, match=f"{name} must be a positive"):
            SSEAdapterMiddleware(ScriptedApp([]), select=select_by_path, **options)
    SSEAdapterMiddleware(
        ScriptedApp([]), select=select_by_path, heartbeat_interval=None, max_event_size=None
    )
    SSEAdapterMiddleware(
        ScriptedApp([]), select=select_by_path, heartbeat_interval=0.05, max_event_size=1
    )


# -- real servers: Starlette, FastAPI, Django with the official SDKs -------------------------


def select_by_path(scope: Scope) -> tuple[str, str] | None:
    """The pair for a path: ``/openai/…`` streams OpenAI Chat, the rest Anthropic Messages."""
    path = str(scope.get("path", ""))
    upstream = OPENAI if path.startswith("/openai/") else ANTHROPIC
    if path.endswith("/v1/chat/completions"):
        return (upstream, OPENAI)
    if path.endswith("/v1/messages"):
        return (upstream, ANTHROPIC)
    return None


async def paced(
    parts: Sequence[bytes], pauses: dict[int, float] | None = None
) -> AsyncIterator[bytes]:
    """Yield ``parts``, sleeping before those listed in ``pauses`` (yielding control anyway)."""
    for n, part in enumerate(parts):
        await asyncio.sleep((pauses or {}).get(n, 0))
        yield part


async def failing(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    """Yield ``parts``, then raise."""
    for part in parts:
        await asyncio.sleep(0)
        yield part
    raise RuntimeError("generator failed mid-stream")


def small_chunks(raw: bytes, size: int = 13) -> list[bytes]:
    """``raw`` in ``size``-byte pieces."""
    return [raw[i : i + size] for i in range(0, len(raw), size)]


async def llm_endpoint(request: Request) -> Response:
    """A fake LLM endpoint; the request's ``model`` picks the behaviour.

    Default: a complete stream answering ``Hello <model>`` in 13-byte pieces (OpenAI Chat
    under ``/openai/``, Anthropic Messages otherwise). ``stall``/``stall-ids``: the same with two
    0.35 s silences, one of them mid-event (``-ids``: OpenAI events with ``id:`` fields).
    ``boom``: raises halfway through the second text delta. ``gzip``: one gzip member per
    event, with ``Content-Encoding: gzip``. ``overloaded``: the provider's non-2xx
    error (Anthropic 529 / OpenAI 429). ``slow-*``: sleep 0.6 s first.
    """
    payload = await request.json()
    model = str(payload.get("model", ""))
    upstream = OPENAI if request.url.path.startswith("/openai/") else ANTHROPIC
    if model.startswith("slow-"):
        await asyncio.sleep(0.6)
        model = model[len("slow-") :]
    if model == "overloaded":
        if upstream == ANTHROPIC:
            return Response(anthropic_error_body(), status_code=529, media_type="application/json")
        body = openai_error_body("rate_limit_exceeded", "Slow down", "rate_limit_exceeded")
        return Response(body, status_code=429, media_type="application/json")
    if model == "stall-ids":
        events = openai_events(("Hello ", "stall-ids"), ids=True)
    else:
        events = upstream_events(upstream, ("Hello ", model))
    if model == "gzip":
        members = [gzip.compress(event) for event in events]
        return StreamingResponse(
            paced(members), media_type="text/event-stream", headers={"content-encoding": "gzip"}
        )
    if model == "boom":
        half = len(events[4]) // 2
        return StreamingResponse(
            failing([*events[:4], events[4][:half]]), media_type="text/event-stream"
        )
    if model.startswith("stall"):
        half = len(events[3]) // 2
        parts = [b"".join(events[:3]), events[3][:half], events[3][half:] + b"".join(events[4:])]
        return StreamingResponse(paced(parts, {1: 0.35, 2: 0.35}), media_type="text/event-stream")
    return StreamingResponse(paced(small_chunks(b"".join(events))), media_type="text/event-stream")


async def json_endpoint(request: Request) -> Response:
    """A plain JSON response."""
    return JSONResponse({"ok": True})


async def boom_endpoint(request: Request) -> Response:
    """Fails before any response."""
    raise RuntimeError("endpoint failed before start")


LLM_PATHS = [
    "/v1/chat/completions",
    "/v1/messages",
    "/openai/v1/chat/completions",
    "/openai/v1/messages",
]


def starlette_app(**options: Any) -> Starlette:
    """The fake LLM under Starlette, with the middleware added by ``add_middleware``."""
    routes = [Route(path, llm_endpoint, methods=["POST"]) for path in LLM_PATHS]
    routes += [Route("/json", json_endpoint), Route("/boom", boom_endpoint, methods=["POST"])]
    app = Starlette(routes=routes)
    app.add_middleware(SSEAdapterMiddleware, select=select_by_path, **options)
    return app


class StrictChatBody(BaseModel):
    """A request model the OpenAI SDK's requests do not satisfy (FastAPI answers 422)."""

    model: str
    required_field: int


async def validated_endpoint(body: StrictChatBody) -> dict[str, str]:
    """Never reached by the tests: FastAPI rejects their bodies first."""
    return {"model": body.model}


def fastapi_app(**options: Any) -> FastAPI:
    """The fake LLM under FastAPI, with the middleware added by ``add_middleware``."""
    app = FastAPI()
    for path in LLM_PATHS:
        app.add_api_route(path, llm_endpoint, methods=["POST"])
    app.add_api_route("/json", json_endpoint)
    app.add_api_route("/validated/v1/chat/completions", validated_endpoint, methods=["POST"])
    app.add_middleware(SSEAdapterMiddleware, select=select_by_path, **options)
    return app


def django_app(**options: Any) -> SSEAdapterMiddleware:
    """The Django test project's ``asgi.py`` application built with ``options``.

    ``DJANGO_SETTINGS_MODULE`` is set only while ``asgi`` is first imported.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")
        from tests.django_project import asgi
    return asgi.build_application(**options)


@dataclass
class Served:
    """A framework's app under uvicorn and the reports its middleware made."""

    name: str
    server: LiveServer
    reports: list[StreamReport]

    @property
    def url(self) -> str:
        """The base URL."""
        return self.server.url


@pytest.fixture(scope="module", params=["starlette", "fastapi", "django"])
def framework(request: pytest.FixtureRequest) -> Iterator[Served]:
    """The fake LLM app of one framework, heartbeats every 0.1 s, under uvicorn."""
    reports: list[StreamReport] = []
    options = {"heartbeat_interval": 0.1, "on_complete": reports.append}
    name = str(request.param)
    builders: dict[str, Callable[..., Any]] = {
        "starlette": starlette_app,
        "fastapi": fastapi_app,
        "django": django_app,
    }
    app = builders[name](**options)
    with live_server(app, lifespan="off" if name == "django" else "auto") as server:
        yield Served(name, server, reports)


_open_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test made, so no pooled socket outlives its test."""
    yield
    while _open_clients:
        _open_clients.pop().close()


def openai_client(url: str) -> openai.OpenAI:
    """The official OpenAI client for ``url`` (no retries), closed after the test."""
    client = openai.OpenAI(api_key="test", base_url=url + "/v1", max_retries=0, timeout=10)
    _open_clients.append(client)
    return client


def anthropic_client(url: str) -> anthropic.Anthropic:
    """The official Anthropic client for ``url`` (no retries), closed after the test."""
    client = anthropic.Anthropic(api_key="test", base_url=url, max_retries=0, timeout=10)
    _open_clients.append(client)
    return client


def final_message(url: str, model: str) -> anthropic.types.Message:
    """``messages.stream()`` / ``get_final_message()`` against ``url`` with the Anthropic SDK."""
    with anthropic_client(url).messages.stream(
        model=model, max_tokens=50, messages=MESSAGES
    ) as stream:
        return stream.get_final_message()


CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
MESSAGES: list[MessageParam] = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("prefix", ["", "/openai"], ids=["anthropic-upstream", "openai-identity"])
def test_openai_sdk_create_stream(framework: Served, prefix: str) -> None:
    """``chat.completions.create(stream=True)`` parses the adapted stream: text, finish
    reason and the usage chunk it asked for."""
    client = openai_client(framework.url + prefix)
    stream = client.chat.completions.create(
        model="create",
        messages=CHAT,
        stream=True,
        stream_options={"include_usage": True},
    )
    text: list[str] = []
    finish: list[str] = []
    usage = None
    with stream:
        for chunk in stream:
            for choice in chunk.choices:
                text.append(choice.delta.content or "")
                if choice.finish_reason:
                    finish.append(choice.finish_reason)
            usage = chunk.usage or usage
    expected = "Hello from Django to create" if framework.name == "django" else "Hello create"
    assert "".join(text) == expected
    assert finish == ["stop"]
    assert usage is not None
    assert usage.prompt_tokens in (5, 7)


@pytest.mark.parametrize("prefix", ["", "/openai"], ids=["anthropic-upstream", "openai-identity"])
def test_openai_sdk_stream_helper(framework: Served, prefix: str) -> None:
    """``chat.completions.stream()`` / ``get_final_completion()`` build the full completion."""
    client = openai_client(framework.url + prefix)
    with client.chat.completions.stream(model="helper", messages=CHAT) as stream:
        final = stream.get_final_completion()
    expected = "Hello from Django to helper" if framework.name == "django" else "Hello helper"
    assert final.choices[0].message.content == expected
    assert final.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("prefix", ["", "/openai"], ids=["anthropic-identity", "openai-upstream"])
def test_anthropic_sdk_stream(framework: Served, prefix: str) -> None:
    """``messages.stream()`` / ``get_final_message()`` build the full message."""
    client = anthropic_client(framework.url + prefix)
    with client.messages.stream(model="msgs", max_tokens=50, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expected = "Hello from Django to msgs" if framework.name == "django" else "Hello msgs"
    assert text == expected
    assert [b.type for b in final.content] == ["text"]
    assert final.content[0].text == expected  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens >= 2


def test_framework_leaves_json_alone(framework: Served) -> None:
    """A JSON route behind the middleware answers exactly as without it."""
    response = httpx2.get(framework.url + "/json")
    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert "cache-control" not in response.headers
    assert response.headers["content-type"] == "application/json"


def test_framework_reports_each_stream_once(framework: Served) -> None:
    """Every stream served so far was reported exactly once, all complete."""
    before = len(framework.reports)
    client = openai_client(framework.url)
    with client.chat.completions.stream(model="count", messages=CHAT) as stream:
        stream.get_final_completion()
    deadline = time.monotonic() + 2
    while len(framework.reports) == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(framework.reports) == before + 1
    assert {r.outcome for r in framework.reports} == {"complete"}


@pytest.mark.parametrize("framework", ["fastapi"], indirect=True)
def test_fastapi_validation_error_reaches_openai_sdk(framework: Served) -> None:
    """FastAPI's own 422 on a translated route reaches the SDK as FastAPI wrote it."""
    client = openai_client(framework.url + "/validated")
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        client.chat.completions.create(model="m", messages=CHAT, stream=True)
    assert caught.value.status_code == 422
    assert caught.value.response.json()["detail"][0]["loc"] == ["body", "required_field"]


def test_compressed_app_error_passes_as_the_app_sent_it() -> None:
    """FastAPI's own 422 compressed by an inner ``GZipMiddleware`` is no provider error to
    translate: it reaches the client exactly as the app sent it, the compressed bytes under the
    app's ``Content-Encoding`` and ``Content-Length`` (its decoded bytes under those made uvicorn
    drop the connection), and the OpenAI SDK raises ``UnprocessableEntityError`` with FastAPI's
    detail."""
    app = FastAPI()
    app.add_api_route("/v1/chat/completions", validated_endpoint, methods=["POST"])
    app.add_middleware(GZipMiddleware, minimum_size=16)
    app.add_middleware(SSEAdapterMiddleware, upstream_format=ANTHROPIC, client_format=OPENAI)
    with serve(app) as url:
        body = {"model": "m", "messages": CHAT}
        with httpx2.stream(
            "POST", url + "/v1/chat/completions", json=body, headers={"accept-encoding": "gzip"}
        ) as response:
            raw = b"".join(response.iter_raw())
        assert response.status_code == 422
        assert response.headers["content-encoding"] == "gzip"
        assert int(response.headers["content-length"]) == len(raw)
        assert json.loads(gzip.decompress(raw))["detail"][0]["loc"] == ["body", "required_field"]
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            openai_client(url).chat.completions.create(model="m", messages=CHAT)
    assert caught.value.response.json()["detail"][0]["loc"] == ["body", "required_field"]


@pytest.mark.parametrize("framework", ["django"], indirect=True)
def test_django_gzip_stream_decoded(framework: Served) -> None:
    """Django's ``GZipMiddleware`` (one gzip member per chunk) under the middleware: the client
    gets the decoded, translated stream without ``Content-Encoding``."""
    assert framework.name == "django"
    url = framework.url + "/gzip/v1/chat/completions"
    body = {"model": "gz", "messages": CHAT, "stream": True}
    with httpx2.stream("POST", url, json=body, headers={"accept-encoding": "gzip"}) as response:
        raw = b"".join(response.iter_raw())
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert text_of(decode(raw), OPENAI) == "Hello from Django to gz"
    final = openai_client(framework.url + "/gzip").chat.completions.create(
        model="gz2",
        messages=CHAT,
        stream=True,
    )
    assert "".join(c.choices[0].delta.content or "" for c in final if c.choices) == (
        "Hello from Django to gz2"
    )


# -- real servers: heartbeats, errors and disconnects ----------------------------------------


@pytest.fixture(scope="module")
def starlette_server() -> Iterator[Served]:
    """The Starlette fake LLM, heartbeats every 0.1 s, under uvicorn."""
    reports: list[StreamReport] = []
    app = starlette_app(heartbeat_interval=0.1, on_complete=reports.append)
    with live_server(app) as server:
        yield Served("starlette", server, reports)


@pytest.fixture
def start_server() -> Iterator[ServerFactory]:
    """Start uvicorn servers for this test; all stopped at teardown."""
    with server_pool() as start:
        yield start


def read_timed(url: str, body: dict[str, Any]) -> list[tuple[float, bytes]]:
    """POST ``body`` and read the raw response chunks with their arrival times."""
    chunks: list[tuple[float, bytes]] = []
    with httpx2.stream("POST", url, json=body, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            chunks.append((time.monotonic(), chunk))
    return chunks


def test_heartbeats_parse_in_openai_sdk(starlette_server: Served) -> None:
    """Keep-alives during stalls (one of them mid-event) do not disturb the OpenAI SDK."""
    client = openai_client(starlette_server.url)
    stream = client.chat.completions.create(model="stall", messages=CHAT, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello stall"
    chunks = read_timed(
        starlette_server.url + "/v1/chat/completions", {"model": "stall", "stream": True}
    )
    raw = b"".join(c for _, c in chunks)
    assert raw.count(b": ping\n\n") >= 3
    assert text_of(decode(raw), OPENAI) == "Hello stall"


def test_heartbeats_parse_in_anthropic_sdk(starlette_server: Served) -> None:
    """Keep-alives during stalls do not disturb the Anthropic SDK (translated stream)."""
    client = anthropic_client(starlette_server.url + "/openai")
    with client.messages.stream(model="stall", max_tokens=5, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert final.content[0].text == "Hello stall"  # type: ignore[union-attr]


def test_heartbeats_after_id_fields_parse_in_openai_sdk(starlette_server: Served) -> None:
    """Identity passthrough of an upstream with ``id:`` fields: the keep-alive is the bare
    ``: ping\\n`` and openai-python parses the stream without a phantom event."""
    client = openai_client(starlette_server.url + "/openai")
    with client.chat.completions.stream(model="stall-ids", messages=CHAT) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello stall-ids"
    chunks = read_timed(
        starlette_server.url + "/openai/v1/chat/completions", {"model": "stall-ids", "stream": True}
    )
    raw = b"".join(c for _, c in chunks)
    assert raw.count(b": ping\n") >= 3
    assert b": ping\n\n" not in raw
    assert [e for e in decode(raw) if not e.data] == []


def test_heartbeat_timing_over_loopback(starlette_server: Served) -> None:
    """Over a real connection keep-alives arrive about every 0.1 s of silence."""
    chunks = read_timed(
        starlette_server.url + "/v1/chat/completions", {"model": "stall", "stream": True}
    )
    pings = [at for at, chunk in chunks if chunk == b": ping\n\n"]
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert sum(0.05 <= g <= 0.3 for g in gaps) >= len(gaps) - 1, gaps


def test_heartbeats_behind_base_http_middleware(start_server: ServerFactory) -> None:
    """A ``BaseHTTPMiddleware`` outside ours (FastAPI's ``@app.middleware("http")``) hands the
    app a ``send`` that needs a running task (anyio's memory stream): keep-alives still go out
    at the interval and the stream completes (sse-and-asgi.md §3.8)."""
    app = fastapi_app(heartbeat_interval=0.1)

    @app.middleware("http")
    async def outer(request: Request, call_next: Any) -> Any:
        return await call_next(request)

    server = start_server(app)
    chunks = read_timed(server.url + "/v1/chat/completions", {"model": "stall", "stream": True})
    pings = [at for at, chunk in chunks if chunk == b": ping\n\n"]
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert sum(0.05 <= g <= 0.3 for g in gaps) >= len(gaps) - 1, gaps
    raw = b"".join(c for _, c in chunks)
    assert text_of(decode(raw), OPENAI) == "Hello stall"


def test_heartbeats_on_uvloop(start_server: ServerFactory) -> None:
    """Under uvloop (uvicorn's default loop when installed) keep-alives keep their spacing and
    the stream completes: the heartbeat wheel works on its timers and clock too."""
    pytest.importorskip("uvloop")
    if not hasattr(asyncio, "Runner"):
        pytest.skip("a uvloop server in a thread needs asyncio.Runner (Python 3.11+)")
    server = start_server(starlette_app(heartbeat_interval=0.1), loop="uvloop")
    assert type(server.loop).__module__.startswith("uvloop")
    chunks = read_timed(server.url + "/v1/chat/completions", {"model": "stall", "stream": True})
    pings = [at for at, chunk in chunks if chunk == b": ping\n\n"]
    assert len(pings) >= 4
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert sum(0.05 <= g <= 0.3 for g in gaps) >= len(gaps) - 1, gaps
    assert b"[DONE]" in chunks[-1][1]


def test_heartbeat_before_start_over_loopback(start_server: ServerFactory) -> None:
    """With ``heartbeat_before_start`` the client has 200 ``text/event-stream`` headers and a
    keep-alive long before the slow app answers; an app answering 529 gives the OpenAI SDK
    an ``APIError`` carrying the message."""
    app = starlette_app(heartbeat_interval=0.1, heartbeat_before_start=True)
    url = start_server(app).url
    started = time.monotonic()
    body = {"model": "slow-fine", "stream": True, "messages": CHAT}
    with httpx2.stream("POST", url + "/v1/chat/completions", json=body, timeout=10) as response:
        headers_at = time.monotonic() - started
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = response.iter_raw()
        first = next(chunks)
        first_at = time.monotonic() - started
        raw = first + b"".join(chunks)
    assert headers_at < 0.45
    assert first.startswith(b": ping\n\n")
    assert first_at < 0.45
    assert text_of(decode(raw), OPENAI) == "Hello fine"

    client = openai_client(url)
    stream = client.chat.completions.create(model="slow-overloaded", messages=CHAT, stream=True)
    with pytest.raises(openai.APIError, match="Overloaded"):
        for _ in stream:
            pass
    with httpx2.stream(
        "POST", url + "/v1/chat/completions", json={**body, "model": "slow-overloaded"}
    ) as response:
        events = decode(response.read())
    assert response.status_code == 200
    assert error_message(events, OPENAI) == "Overloaded"
    assert events[-1].data == "[DONE]"


def test_error_status_reaches_sdks(starlette_server: Served) -> None:
    """An Anthropic 529 overloaded_error becomes OpenAI's 503 for the OpenAI SDK and stays 529
    for the Anthropic SDK; an OpenAI 429 becomes Anthropic's rate_limit_error."""
    with pytest.raises(openai.InternalServerError) as caught:
        openai_client(starlette_server.url).chat.completions.create(
            model="overloaded",
            messages=CHAT,
            stream=True,
        )
    assert caught.value.status_code == 503
    assert caught.value.response.json() == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded",
        }
    }
    with pytest.raises(anthropic.APIStatusError) as caught_a:
        final_message(starlette_server.url, "overloaded")
    assert caught_a.value.status_code == 529
    assert caught_a.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.RateLimitError, match="Slow down"):
        final_message(starlette_server.url + "/openai", "overloaded")


def test_mid_stream_failure_reaches_sdks(
    starlette_server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """A generator failing mid-stream: the OpenAI SDK raises ``APIError`` after the complete
    events, the Anthropic SDK ``APIStatusError``; the server logs no unhandled exception."""
    caplog.set_level(logging.INFO)
    client = openai_client(starlette_server.url)
    seen: list[str] = []

    def consume() -> None:
        stream = client.chat.completions.create(model="boom", messages=CHAT, stream=True)
        for chunk in stream:
            seen.extend(c.delta.content or "" for c in chunk.choices)

    with pytest.raises(openai.APIError, match="RuntimeError"):
        consume()
    assert "".join(seen) == "Hello "
    with pytest.raises(anthropic.APIStatusError, match="RuntimeError"):
        final_message(starlette_server.url, "boom")
    time.sleep(0.05)
    assert not [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    failures = [r for r in caplog.records if r.name == LOG and r.exc_info]
    assert len(failures) == 2


def test_starlette_gzip_stream_decoded(starlette_server: Served) -> None:
    """A Starlette endpoint gzipping each event: the SDK gets the decoded, translated stream
    and the response carries no ``Content-Encoding``."""
    stream = openai_client(starlette_server.url).chat.completions.create(
        model="gzip", messages=CHAT, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello gzip"
    assert "content-encoding" not in stream.response.headers


def test_failure_before_start_is_servers_500(
    starlette_server: Served, caplog: pytest.LogCaptureFixture
) -> None:
    """An endpoint failing before its response: the exception passes the middleware, so
    Starlette's ServerErrorMiddleware answers 500 and the server logs it."""
    caplog.set_level(logging.ERROR)
    response = httpx2.post(starlette_server.url + "/boom", json={})
    assert response.status_code == 500
    assert response.text == "Internal Server Error"

    def logged() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]

    assert wait_for(lambda: bool(logged()))
    exc_info = logged()[0].exc_info
    assert exc_info is not None
    assert isinstance(exc_info[1], RuntimeError)
    assert not [r for r in caplog.records if r.name == LOG]


class EndlessApp:
    """A raw ASGI app streaming Anthropic deltas until it receives ``http.disconnect``."""

    def __init__(self) -> None:
        self.disconnected = threading.Event()
        self.finished = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream while a watcher waits for the disconnect."""
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            events = anthropic_events(("tick ",) * 3)
            await send({"type": "http.response.start", "status": 200, "headers": [SSE]})
            await send(
                {"type": "http.response.body", "body": b"".join(events[:3]), "more_body": True}
            )
            while not gone.is_set():
                await send({"type": "http.response.body", "body": events[3], "more_body": True})
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(gone.wait(), 0.02)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            self.finished.set()


def wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.mark.parametrize("kind", ["raw-asgi", "starlette-streaming-response", "django"])
def test_client_disconnect_mid_stream(
    kind: str, start_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Closing a streaming client mid-stream: the app sees ``http.disconnect``, no task is left
    on the server's loop, nothing is logged as an unhandled exception, and ``on_complete``
    reports ``disconnected``."""
    caplog.set_level(logging.INFO)
    reports: list[StreamReport] = []
    options: dict[str, Any] = {"heartbeat_interval": 0.05, "on_complete": reports.append}
    endless = EndlessApp()
    app: Any
    if kind == "raw-asgi":
        app = middleware(endless, ANTHROPIC, OPENAI, **options)
    elif kind == "django":
        app = django_app(**options)
    else:

        async def forever(request: Request) -> Response:
            async def ticks() -> AsyncIterator[bytes]:
                events = anthropic_events(("tick ",))
                yield b"".join(events[:3])
                while True:
                    await asyncio.sleep(0.02)
                    yield events[3]

            return StreamingResponse(ticks(), media_type="text/event-stream")

        app = Starlette(routes=[Route("/v1/chat/completions", forever, methods=["POST"])])
        app.add_middleware(
            SSEAdapterMiddleware, upstream_format=ANTHROPIC, client_format=OPENAI, **options
        )
    server = start_server(app, lifespan="off")
    baseline = server.task_count()
    body = {"model": "forever", "stream": True, "messages": CHAT}
    url = server.url + "/v1/chat/completions"
    with httpx2.Client(timeout=10) as client, client.stream("POST", url, json=body) as response:
        assert response.status_code == 200
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"tick") >= 3:
                break
    assert wait_for(lambda: len(reports) == 1)
    assert reports[0].outcome == "disconnected"
    if kind == "raw-asgi":
        assert endless.disconnected.wait(3)
        assert endless.finished.wait(3)
    assert wait_for(lambda: server.task_count() == baseline), (server.task_count(), baseline)
    time.sleep(0.15)  # heartbeats would have fired by now if still armed
    assert server.task_count() == baseline
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert (
        len(
            [r for r in caplog.records if r.name == LOG and r.getMessage().startswith("sse stream")]
        )
        == 1
    )
