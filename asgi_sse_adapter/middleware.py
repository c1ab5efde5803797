"""``SSEAdapterMiddleware``: the raw ASGI shell around an app that streams SSE.

It wraps ``send`` and acts only on a 2xx ``text/event-stream`` response: every body message it
sends holds whole client-format events, all the events one inbound message completes go out in
one outbound message, and a failed or truncated stream ends with the client format's error tail.
Everything else passes through byte for byte. The app runs in the calling task; per-request
state lives in a ``_Responder``, never on the middleware (sse-and-asgi.md §3).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, Literal

from asgiref.sync import markcoroutinefunction

from ._checks import check_count, check_seconds
from .adapter import StreamAdapter, check_reasoning_options
from .formats import get_format
from .requests import estimate_input_tokens
from .session import OnComplete, StreamSession, uncancel
from .sse import DEFAULT_MAX_EVENT_SIZE

__all__ = ["SSEAdapterMiddleware", "Selector"]

logger = logging.getLogger("asgi_sse_adapter")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# Loose on purpose: Django's handler (django-stubs) takes ``dict`` scopes and ``Mapping``
# messages, Starlette's apps ``MutableMapping`` ones; both must type-check (sse-and-asgi.md §3.11).
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]
Selector = Callable[[Scope], "tuple[str, str] | None"]

# Request bodies read for usage negotiation or early heartbeats: beyond this the body is passed on
# unread (and logged). Anthropic's Messages API takes requests up to 32 MB (images inline), so a
# streaming request that size must still be understood.
MAX_INSPECTED_REQUEST = 32 * 1024 * 1024
# Error bodies to translate: beyond this (decoded) the error is answered from its status alone.
MAX_INSPECTED_BODY = 1024 * 1024
_OPENAI_USAGE_CLIENTS = ("openai-chat", "openai-text")
_HOP_HEADERS = (b"content-length", b"content-encoding", b"transfer-encoding")
# An app's headers that an early committed head (``heartbeat_before_start``) makes moot.
_COMMITTED = frozenset({*_HOP_HEADERS, b"content-type", b"cache-control", b"x-accel-buffering"})
# 2xx statuses left alone: 204 and 205 carry no body, so an event stream (or an error tail)
# cannot be sent on them; 206's body is a byte range of a representation, which re-chunking or
# translating would corrupt.
_NOT_ADAPTED = (204, 205, 206)
_DECODABLE = (b"gzip", b"deflate", b"x-gzip")


class SSEAdapterMiddleware:
    """Re-chunk, translate and heartbeat the SSE responses of the wrapped ASGI app.

    Either a fixed pair (``upstream_format``: what the app streams, ``client_format``: what the
    client receives; the same value for plain re-chunking), or ``select(scope)`` returning a pair
    or ``None`` (leave this response alone) per request.

    Options:
        heartbeat_interval: seconds without a byte to the client before a keep-alive (``None``:
            off). Default 15.
        heartbeat_before_start: for requests that ask to stream, commit ``200 text/event-stream``
            at once and heartbeat until the app answers; an app error then arrives as the
            client format's error event.
        on_complete: called once per adapted stream with a ``StreamReport`` (sync or async).
        include_usage: force the usage chunk for OpenAI clients; by default it follows the
            request's ``stream_options.include_usage``.
        The remaining options are ``StreamAdapter``'s.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        upstream_format: str | None = None,
        client_format: str | None = None,
        select: Selector | None = None,
        heartbeat_interval: float | None = 15.0,
        heartbeat_before_start: bool = False,
        on_complete: OnComplete | None = None,
        include_usage: bool | None = None,
        reasoning: Literal["emit", "drop"] = "emit",
        reasoning_field: str = "reasoning_content",
        done_after_error: bool | None = None,
        visible_errors: bool = False,
        native_keepalive: bool = False,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        if select is None:
            if upstream_format is None or client_format is None:
                raise TypeError("give upstream_format and client_format, or select")
            get_format(upstream_format)
            get_format(client_format)
            pair = (upstream_format, client_format)

            def fixed(scope: Scope) -> tuple[str, str]:
                return pair

            select = fixed
        check_seconds("heartbeat_interval", heartbeat_interval, optional=True)
        check_reasoning_options(reasoning, reasoning_field)
        check_count("max_event_size", max_event_size, minimum=1, optional=True)
        self.app = app
        self.select = select
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_before_start = heartbeat_before_start
        self.on_complete = on_complete
        self.include_usage = include_usage
        self.adapter_options: dict[str, Any] = {
            "reasoning": reasoning,
            "reasoning_field": reasoning_field,
            "done_after_error": done_after_error,
            "visible_errors": visible_errors,
            "native_keepalive": native_keepalive,
            "max_event_size": max_event_size,
        }
        # The adapted streams ``end_streams`` may end: the task serving each. (The one state
        # shared by requests: which of them are open, never anything of theirs.)
        self._open: dict[asyncio.Task[Any], _Responder] = {}

    def end_streams(self, reason: str = "the server is shutting down") -> int:
        """End every adapted stream still open, now: the app is cancelled and the client gets
        its format's error tail with ``reason`` as its message; each stream is reported
        (outcome ``failed``). Call it, on the server's event loop, when the server's graceful
        shutdown is about to run out: the server's own cancellation cuts the body instead,
        which the client sees as a broken connection. Responses not adapted are left to the
        server, and so are streams whose end went out (the app's work after its last event is
        its own). Returns how many streams were ended."""
        ended = 0
        for task, responder in list(self._open.items()):
            session = responder.session
            if session is None or session.finished or session.adapter.ended or responder.cut:
                continue
            responder.cut = reason
            # What the app sends from now on (a ``finally`` ending its body, say) is dropped:
            # the stream's end is the error tail ``_finish`` sends.
            responder.mode = "done"
            task.cancel()
            ended += 1
        return ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            # (A HEAD response has no body: there is no stream to adapt or to end.)
            await self.app(scope, receive, send)
            return
        pair = self.select(scope)
        if pair is None:
            await self.app(scope, receive, send)
            return
        await _Responder(self, scope, receive, send, pair).run()


class _Responder:
    """One request's state: wraps ``receive`` (observing disconnects) and ``send``."""

    # Slots: one per open stream, so its size counts (idle streams held by the thousand).
    __slots__ = (
        "cancelled",
        "client",
        "cut",
        "disconnected",
        "early",
        "error_body",
        "error_headers",
        "error_sent",
        "error_size",
        "error_start",
        "error_status",
        "include_usage",
        "inflate",
        "input_estimate",
        "mode",
        "mw",
        "real_receive",
        "real_send",
        "replay",
        "scope",
        "session",
        "started_at",
        "trailers",
        "upstream",
        "wants_stream",
        "watcher",
    )

    def __init__(
        self,
        mw: SSEAdapterMiddleware,
        scope: Scope,
        receive: Receive,
        send: Send,
        pair: tuple[str, str],
    ) -> None:
        self.mw = mw
        self.scope = scope
        self.real_receive = receive
        self.real_send = send
        self.upstream, self.client = pair
        self.started_at = time.monotonic()
        # Made only when needed (``_inspect_request``, an error answer): an open stream holds
        # this object, and idle streams are held by the thousand.
        self.replay: list[Message] | None = None
        self.include_usage = bool(mw.include_usage)
        self.input_estimate: int | None = None  # an Anthropic client's prompt size (translated)
        self.wants_stream = False
        self.mode: Literal["pending", "passthrough", "adapt", "error", "done"] = "pending"
        self.session: StreamSession | None = None
        self.early = False  # headers committed before the app answered
        self.error_status = 0
        self.error_headers: list[tuple[bytes, bytes]] | None = None
        self.error_start: Message | None = None
        self.error_body: list[bytes] | None = None
        self.error_sent: list[bytes] | None = None  # the compressed body, as the app sent it
        self.error_size = 0
        self.trailers = False
        self.inflate: _Inflater | None = None
        self.disconnected = False
        self.cancelled = False
        self.cut: str | None = None  # why ``end_streams`` ended the stream
        self.watcher: asyncio.Task[Message] | None = None  # ``_watch``

    # -- receive ----------------------------------------------------------------------------

    async def receive(self) -> Message:
        replay = self.replay
        if replay:
            message = replay.pop(0)
            if not replay:
                self.replay = None
            return message
        watcher = self.watcher
        if watcher is not None:
            # (Shielded: an app cancelling its own wait must not cancel the watch.)
            message = await asyncio.shield(watcher)
            if message["type"] != "http.disconnect":
                self.watcher = None  # delivered once; the server's receive from here on
            return message
        message = await self.real_receive()
        if message["type"] == "http.disconnect":
            self.disconnected = True
            if self.session is not None:
                self.session.mark_disconnected()
        return message

    async def _inspect_request(self) -> None:
        """Read the request body (bounded) when usage negotiation, an Anthropic client's prompt
        estimate or early heartbeats need it; the app later receives exactly the same
        messages."""
        headers = _headers(self.scope)
        accept = headers.get(b"accept", b"").lower()
        self.wants_stream = b"text/event-stream" in accept
        # Identity forwards the upstream's own events: its usage chunk is not ours to add.
        need_usage = (
            self.mw.include_usage is None
            and self.client in _OPENAI_USAGE_CLIENTS
            and self.upstream != self.client
        )
        # An Anthropic client reads its prompt's size in ``message_start`` (Claude Code's context
        # meter), which an upstream of another format says only at the end: estimated here.
        need_estimate = self.client == "anthropic-messages" and self.upstream != self.client
        if not (need_usage or need_estimate or self.mw.heartbeat_before_start):
            return
        content_type = headers.get(b"content-type", b"").lower()
        if self.scope.get("method") != "POST" or b"json" not in content_type:
            return
        body: list[bytes] = []
        size = 0
        self.replay = replay = []
        while True:
            message = await self.real_receive()
            replay.append(message)
            if message["type"] != "http.request":
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > MAX_INSPECTED_REQUEST:
                # Too large to inspect: the app gets what was read, then the rest.
                logger.warning(
                    "request body over %d bytes not inspected: usage negotiation and early "
                    "heartbeats skipped (include_usage=True forces the usage chunk)",
                    MAX_INSPECTED_REQUEST,
                )
                return
            body.append(chunk)
            if not message.get("more_body", False):
                break
        try:
            # (RecursionError: the stdlib's answer to a hostile nesting depth.)
            payload = json.loads(b"".join(body))
        except (ValueError, RecursionError):
            return
        if not isinstance(payload, dict):
            return
        if payload.get("stream") is True:
            self.wants_stream = True
        options = payload.get("stream_options")
        if need_usage and isinstance(options, dict) and options.get("include_usage") is True:
            self.include_usage = True
        if need_estimate:
            self.input_estimate = estimate_input_tokens(payload)

    # -- the request ------------------------------------------------------------------------

    async def run(self) -> None:
        await self._inspect_request()
        if self.mw.heartbeat_before_start and self.wants_stream and not self.disconnected:
            self.session = self._new_session()
            await self.session.start(200, _sse_headers([]))
            self.mode = "adapt"
            self.early = True
            last = self.replay[-1] if self.replay else None
            if last is not None and last["type"] == "http.request" and not last.get("more_body"):
                # The body is read: the app may think for minutes before it answers or reads
                # again, while we keep the client alive; its leaving must stop that (and the
                # app's next send) at once.
                self.watcher = asyncio.get_running_loop().create_task(self._watch())
        try:
            await self.mw.app(self.scope, self.receive, self.send)
        except asyncio.CancelledError:
            if self.cut is None:
                # Server shutdown: no farewell send, which would hang on a client that stopped
                # reading (sse-and-asgi.md §3.4 rule 6); report and re-raise.
                self.cancelled = True
                raise
            # ``end_streams``' own cancellation: ``_finish`` ends the stream.
        except Exception as exc:
            session = self.session
            if self.cut is not None:
                # (The app's answer to the cancellation ``end_streams`` caused.)
                logger.debug("application raised as its stream was ended", exc_info=True)
            elif session is None or not session.headers_sent or self.mode == "passthrough":
                raise
            elif session.disconnected:
                # Typically the app reacting to the client's disconnect (Starlette raises
                # ClientDisconnect on an ASGI 2.4 OSError): routine, not an application error.
                logger.debug("application raised after the client disconnected", exc_info=True)
            elif session.finished or session.adapter.ended:
                logger.exception("application raised after its stream ended")
            else:
                # Headers are out: the server's 500 path cannot help. End the stream the way
                # the client's protocol expects and log the exception.
                logger.exception("application raised mid-stream; sending the error tail")
                reason = f"the application failed mid-stream ({_exception_name(exc)})"
                await session.bounded(session.fail(reason))
        finally:
            await self._finish()

    async def _watch(self) -> Message:
        """Early heartbeats: the server's next message, after the body only its disconnect."""
        message = await self.real_receive()
        session = self.session
        # (After the response's last message the server reports a disconnect too: that is no
        # client leaving.)
        if message["type"] == "http.disconnect" and session is not None and not session.finished:
            self.disconnected = True
            session.mark_disconnected(ConnectionResetError("client disconnected"))
        return message

    async def _finish(self) -> None:
        watcher = self.watcher
        if watcher is not None:
            if watcher.done():
                if not watcher.cancelled():
                    watcher.exception()  # (retrieved: the server's receive may have raised)
            else:
                watcher.cancel()
        session = self.session
        if session is None:
            return
        task = asyncio.current_task()
        assert task is not None
        self.mw._open.pop(task, None)
        if self.cut is not None:
            uncancel(task)  # (taken back whatever the app did with it)
            if not session.finished:
                logger.warning("stream ended before the application's: %s", self.cut)
                await session.cut(self.cut)
        elif self.disconnected or self.cancelled:
            session.mark_disconnected()
        elif not session.finished and self.mode != "passthrough":
            # The app returned without ending its body: close() reports truncation if the
            # stream had not said how it ends.
            await session.bounded(session.close())
        await session.report()

    def _new_session(self) -> StreamSession:
        adapter = StreamAdapter(
            upstream_format=self.upstream,
            client_format=self.client,
            include_usage=self.include_usage,
            input_tokens_estimate=self.input_estimate,
            collect_response=True if self.mw.on_complete is not None else None,
            **self.mw.adapter_options,
        )
        session = StreamSession(
            adapter,
            self.real_send,
            heartbeat_interval=self.mw.heartbeat_interval,
            on_complete=self.mw.on_complete,
            started_at=self.started_at,
            end_on_close=True,  # the app's response ends when the app ends it
        )
        task = asyncio.current_task()
        assert task is not None
        self.mw._open[task] = self  # (for ``end_streams``; left in ``_finish``)
        return session

    # -- send -------------------------------------------------------------------------------

    @markcoroutinefunction  # for introspection (asgiref's ``AsyncToSync`` warns otherwise)
    def send(self, message: Message) -> Awaitable[None]:
        """The app's ``send``: a plain function returning what the app awaits, so that on the
        hot paths (a body message of an adapted stream, any message of a response passed
        through) that is the session's or the server's own coroutine, with none of ours
        around it."""
        mode = self.mode
        if mode == "adapt" and self.inflate is None and message["type"] == "http.response.body":
            session = self.session
            assert session is not None
            if message.get("more_body", False):
                return session.push(message.get("body", b""), message)
            return self._last_body(session, message.get("body", b""))
        if mode == "passthrough":
            return self.real_send(message)
        return self._send(message)

    async def _last_body(self, session: StreamSession, body: bytes) -> None:
        if body:
            await session.push(body)
        await session.close()

    async def _send(self, message: Message) -> None:
        if self.cut is not None:
            return  # (``end_streams``)
        mode = self.mode
        if mode == "adapt" and self.session is not None and self.session.finished:
            mode = "done"  # (the hot path leaves the mode as it is)
        kind = message["type"]
        if kind == "http.response.start":
            await self._on_start(message)
        elif kind == "http.response.body":
            if mode == "adapt":
                await self._on_body(message)
            elif mode == "error":
                await self._on_error_body(message)
            elif mode != "done":
                await self.real_send(message)
        elif kind == "http.response.trailers":
            if self.trailers:
                await self.real_send(message)
            # Otherwise the response went out without ``trailers`` (translated into an error
            # answer, or committed by ``heartbeat_before_start``): they cannot follow.
        elif mode == "adapt" and self.session is not None and not self.early:
            # pathsend, zerocopysend, anything unknown after an SSE start: opaque from here on.
            logger.warning("%s on an adapted SSE response: forwarding it, adapting stops", kind)
            self.mode = "passthrough"
            await self.real_send(message)
        elif mode != "done":
            await self.real_send(message)

    async def _on_start(self, message: Message) -> None:
        status = int(message["status"])
        raw = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        headers = {k.lower(): v for k, v in raw}
        if self.early:
            _warn_committed(headers, bool(message.get("trailers", False)))
        encoding = headers.get(b"content-encoding", b"identity").strip().lower()
        if (
            200 <= status < 300
            and status not in _NOT_ADAPTED
            and _is_event_stream(headers.get(b"content-type"))
        ):
            if encoding != b"identity" and encoding not in _DECODABLE:
                if self.early:
                    # The client already has SSE headers: a second start is impossible.
                    self.mode = "done"
                    assert self.session is not None
                    await self.session.fail(
                        "the application's event stream has a Content-Encoding that cannot "
                        "be decoded"
                    )
                    return
                logger.warning(
                    "SSE response with Content-Encoding %r cannot be decoded; passed through",
                    encoding.decode("latin-1"),
                )
                await self._passthrough(message)
                return
            if encoding != b"identity":
                self.inflate = _Inflater()
            trailers = bool(message.get("trailers", False))
            if self.early:
                self.mode = "adapt"
                return
            self.trailers = trailers
            self.session = self._new_session()
            self.mode = "adapt"
            extra = {"trailers": True} if self.trailers else {}
            await self.session.start(status, _sse_headers(raw), **extra)
            return
        # Identity pairs: the app's error body already is in the client's format; passed on
        # untouched (re-serialising it would drop fields such as OpenAI's ``param``).
        if status >= 400 and (
            self.early
            or (
                self.upstream != self.client
                and (b"json" in headers.get(b"content-type", b"").lower() or not headers)
                and (encoding == b"identity" or encoding in _DECODABLE)
            )
        ):
            if encoding in _DECODABLE:
                self.inflate = _Inflater()
                if not self.early:
                    self.error_sent = []  # (an app's own error may go out as it is)
            elif encoding != b"identity":
                # Committed early (otherwise passed through above): a body that cannot be
                # decoded is answered from its status alone.
                self.error_size = MAX_INSPECTED_BODY + 1
            self.mode = "error"
            self.error_status = status
            self.error_headers = raw
            self.error_start = message
            self.error_body = []
            return
        if self.early:
            # Headers are committed as SSE; a 2xx that is not SSE cannot be delivered.
            self.mode = "done"
            assert self.session is not None
            await self.session.fail(f"the application answered {status} without an event stream")
            return
        await self._passthrough(message)

    async def _passthrough(self, message: Message) -> None:
        self.mode = "passthrough"
        await self.real_send(message)

    async def _on_body(self, message: Message) -> None:
        session = self.session
        assert session is not None
        body = message.get("body", b"")
        more = bool(message.get("more_body", False))
        if self.inflate is not None and body:
            try:
                for piece in self.inflate.pieces(body):
                    await session.push(piece)
            except zlib.error:
                self.mode = "done"
                await session.fail("the application's compressed event stream is corrupt")
                return
        elif body:
            await session.push(body)
        if not more:
            await session.close()
            self.mode = "done"
        elif session.finished:
            self.mode = "done"

    async def _on_error_body(self, message: Message) -> None:
        error_body, start, error_headers = self.error_body, self.error_start, self.error_headers
        # (All three are set with the error mode.)
        assert error_body is not None
        assert start is not None
        assert error_headers is not None
        body = message.get("body", b"")
        sent = self.error_sent
        if sent is not None and self.error_size <= MAX_INSPECTED_BODY:
            sent.append(body)
        if self.inflate is not None and body and self.error_size <= MAX_INSPECTED_BODY:
            try:
                # Bounded: what is beyond the limit is never decoded (a bomb stays small).
                body = b"".join(self.inflate.pieces(body, MAX_INSPECTED_BODY + 1 - self.error_size))
            except zlib.error:
                body = b""
                self.error_size = MAX_INSPECTED_BODY + 1  # unreadable: from the status alone
        self.error_size += len(body)
        if self.error_size <= MAX_INSPECTED_BODY:
            error_body.append(body)
        if message.get("more_body", False):
            return
        self.mode = "done"
        upstream = get_format(self.upstream)
        client = get_format(self.client)
        raw = b"".join(error_body)
        try:
            decoded: Any = json.loads(raw)
        except (ValueError, RecursionError):
            decoded = raw.decode("utf-8", "replace")
        if (
            not self.early
            and isinstance(decoded, dict)
            and "error" not in decoded
            and self.error_size <= MAX_INSPECTED_BODY
        ):
            # Not a provider error body but the app's own answer (FastAPI's 422
            # ``{"detail": …}``): translating it would turn it into a 500 "upstream error". It
            # goes out as the app sent it, still compressed if it was (the start says so).
            if sent is not None:
                raw = b"".join(sent)
            await self.real_send(start)
            await self.real_send({"type": "http.response.body", "body": raw, "more_body": False})
            return
        error = upstream.parse_error_body(self.error_status, decoded)
        if self.early:
            assert self.session is not None
            await self.session.fail(error)
            return
        status, payload = client.error_body(error)
        out = json.dumps(payload).encode()
        headers = [
            (k.lower(), v)
            for k, v in error_headers
            if k.lower() not in (b"content-type", *_HOP_HEADERS)
        ]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(out)).encode()),
        ]
        await self.real_send({"type": "http.response.start", "status": status, "headers": headers})
        await self.real_send({"type": "http.response.body", "body": out, "more_body": False})


# Decoded bytes per step: a small compressed body may expand a thousandfold, so it is decoded
# (and passed on) a piece at a time, never whole.
_INFLATE_PIECE = 1024 * 1024


class _Inflater:
    """gzip (multi-member, as Django's GZipMiddleware writes per chunk) or zlib/deflate bodies."""

    def __init__(self) -> None:
        self._z = zlib.decompressobj(wbits=47)  # 32 + 15: detect gzip or zlib headers

    def pieces(self, data: bytes, limit: int | None = None) -> Iterator[bytes]:
        """``data`` decoded, in pieces of at most ``_INFLATE_PIECE`` bytes; with ``limit``, stop
        once that many bytes came out (the rest is never decoded). Raises ``zlib.error``."""
        while True:
            step = _INFLATE_PIECE if limit is None else min(_INFLATE_PIECE, limit)
            out = self._z.decompress(data, step)
            if out:
                yield out
                if limit is not None:
                    limit -= len(out)
                    if limit <= 0:
                        return
            if self._z.eof:
                data = self._z.unused_data
                if not data:
                    return
                self._z = zlib.decompressobj(wbits=47)  # the next gzip member
                continue
            data = self._z.unconsumed_tail
            if not data and len(out) < step:
                return  # (a full piece may leave output pending in zlib: one more step)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {bytes(k).lower(): bytes(v) for k, v in scope.get("headers", [])}


def _is_event_stream(value: bytes | None) -> bool:
    if value is None:
        return False
    return value.split(b";", 1)[0].strip().lower() == b"text/event-stream"


def _warn_committed(headers: dict[bytes, bytes], trailers: bool) -> None:
    """Warn of what of the app's answer cannot follow a head ``heartbeat_before_start`` sent
    already: its headers (an inner CORS or session middleware's included) and trailers."""
    lost = sorted(k.decode("latin-1") for k in headers.keys() - _COMMITTED)
    if trailers:
        lost.append("(trailers)")
    if lost:
        logger.warning(
            "the stream was committed before the app answered; dropped: %s", ", ".join(lost)
        )


def _sse_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The app's headers, lowercased, minus length/encoding, plus the SSE anti-buffering pair."""
    out = [(k.lower(), v) for k, v in raw if k.lower() not in _HOP_HEADERS]
    names = {k for k, _ in out}
    if b"content-type" not in names:
        out.append((b"content-type", b"text/event-stream; charset=utf-8"))
    if b"cache-control" not in names:
        out.append((b"cache-control", b"no-cache"))
    if b"x-accel-buffering" not in names:
        out.append((b"x-accel-buffering", b"no"))
    return out


def _exception_name(exc: BaseException) -> str:
    """The failing exception's class, looking inside exception groups (anyio task groups in
    older Starlette wrap the app's error) without echoing any message."""
    while True:
        inner = getattr(exc, "exceptions", None)
        if not isinstance(inner, tuple) or not inner or not isinstance(inner[0], BaseException):
            return exc.__class__.__name__
        exc = inner[0]
