"""One adapted response on the wire: what the middleware and the proxy share.

A ``StreamSession`` drives one ``StreamAdapter`` against an ASGI ``send``: it sends whole events
only, serialises heartbeats with the body (one send at a time), keeps the stream alive while it is
silent, ends it exactly once with ``more_body=False``, and reports the result (``on_complete`` and
one log line).

A translated stream's response head may be held (``start(hold=True)``) until the stream shows
content: an upstream that answers 200 and then, before any content, an error event (an overload,
a rate limit) gets the client a real HTTP error in its format instead of a 200 and an error
event, so the SDKs pick their exception class and retry from the status (formats.md §9.4). The
format's preamble (``message_start``, ``response.created``) waits with the head; the first
content, the first keep-alive or the stream's end sends them, so the head waits at most one
heartbeat interval (without heartbeats nothing is held).

Heartbeats cost no task and no loop timer per stream: the idle deadlines of every stream on a
loop are kept by one ``_HeartbeatWheel``, coarsened into buckets (one loop timer per bucket), and
a stream is looked at only when its deadline comes; a busy stream is then re-filed for its new
deadline (at most once per interval). An idle stream's keep-alive is sent from a task of its own
(an outer middleware's ``send`` may need one), bounded only if the server's ``send`` actually
waits (sse-and-asgi.md §2.2: idle-based, at event boundaries, bounded).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import math
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from asgiref.sync import sync_to_async

from .adapter import StreamAdapter
from .parts import StreamError, Usage

__all__ = ["OnComplete", "StreamReport", "StreamSession"]

logger = logging.getLogger("asgi_sse_adapter")

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# A send of ours to a client that stopped reading must not hang: bound each heartbeat send, and
# the ending sent after the app or upstream is done (``StreamSession.bounded``).
HEARTBEAT_SEND_TIMEOUT = 10.0
# How long the end of a stream that ``end_streams`` cut may take to send (``StreamSession.cut``):
# a client that stopped reading must not hold the server's shutdown.
CUT_SEND_TIMEOUT = 1.0
# How late a heartbeat may go out, at most: deadlines are rounded up to buckets this wide (or an
# eighth of the interval, if that is shorter), so that streams share loop timers.
HEARTBEAT_SLACK = 0.1


@dataclass(frozen=True, slots=True)
class StreamReport:
    """What ``on_complete`` receives once per adapted stream (the proxy: once per upstream
    answer on a translated endpoint, streamed or not).

    Fields:
        upstream_format, client_format: the pair that was adapted.
        outcome: ``"complete"``, ``"truncated"``, ``"failed"`` or ``"disconnected"``.
        response: the final non-streamed response object in the client format, if collected.
        usage: token usage reported by the upstream, if any.
        error: the error the client was sent (failed or truncated streams).
        events: upstream events read (0 for a whole JSON answer; ``None``: not counted, in
            identity mode without ``on_complete``); bytes_sent: body bytes sent to the client.
        time_to_first_event: seconds from the request to the first body bytes sent (``None`` if
            none were sent); duration: seconds from the request to the end of the stream.
    """

    upstream_format: str
    client_format: str
    outcome: Literal["complete", "truncated", "failed", "disconnected"]
    response: dict[str, Any] | None
    usage: Usage | None
    error: StreamError | None
    events: int | None
    bytes_sent: int
    time_to_first_event: float | None
    duration: float


OnComplete = Callable[[StreamReport], "Awaitable[None] | None"]


class StreamSession:
    """Send one adapted SSE response through ``send``."""

    # Slots: one per open stream, so its size counts (idle streams held by the thousand).
    __slots__ = (
        "_busy",
        "_bytes",
        "_context",
        "_cut",
        "_due",
        "_end_on_close",
        "_first_body",
        "_gone",
        "_heartbeat_task",
        "_held",
        "_held_start",
        "_interval",
        "_last_send",
        "_loop",
        "_on_complete",
        "_passes",
        "_reported",
        "_send",
        "_started_at",
        "_turn",
        "_wheel",
        "_width",
        "adapter",
        "disconnected",
        "finished",
        "headers_sent",
    )

    def __init__(
        self,
        adapter: StreamAdapter,
        send: Send,
        *,
        heartbeat_interval: float | None,
        on_complete: OnComplete | None = None,
        started_at: float | None = None,
        end_on_close: bool = False,
    ) -> None:
        self.adapter = adapter
        # The middleware's app ends its response itself: when the adapter ends the stream first
        # (its terminal event, an error tail), that goes out at once but the final message waits
        # for ``close()``. Ended at once, the response is complete while the app still runs, the
        # server's ``receive`` says ``http.disconnect``, and the framework cancels the app
        # before the code after its last event (usage accounting, cleanup) has run.
        self._end_on_close = end_on_close
        # Whether app messages may go out as they are (``StreamAdapter.passes``): identity only.
        self._passes = adapter.identity
        self._send = send
        self._interval = heartbeat_interval
        self._on_complete = on_complete
        self._started_at = time.monotonic() if started_at is None else started_at
        # One send at a time: ``_busy`` while one is in progress, ``_turn`` for those waiting.
        self._busy = False
        self._turn: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._wheel = _HeartbeatWheel.of(self._loop)
        self._width = (
            HEARTBEAT_SLACK
            if heartbeat_interval is None
            else min(heartbeat_interval / 8, HEARTBEAT_SLACK)
        )
        self._due: float | None = None  # the wheel's bucket this stream is filed in
        # Keep-alives are sent from the wheel's timer: in this context, as the request's own sends.
        self._context = contextvars.copy_context()
        self._last_send = self._started_at
        self._first_body: float | None = None
        self._bytes = 0
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.headers_sent = False
        # ``start(hold=True)``: the start message and the client bytes held with it.
        self._held_start: dict[str, Any] | None = None
        self._held: list[bytes] = []
        self.finished = False
        """The final body message went out (or the client is gone): send nothing more."""
        self.disconnected = False
        self._gone: OSError | None = None  # what the server's send raised (ASGI 2.4)
        self._cut = False  # a body (or head) send raised: what was fed last may not be out
        self._reported = False

    # -- sending ----------------------------------------------------------------------------

    async def start(
        self,
        status: int,
        headers: Iterable[tuple[bytes, bytes]],
        *,
        hold: bool = False,
        **extra: Any,
    ) -> None:
        """Send ``http.response.start`` and begin the idle heartbeat. ``hold`` (translated
        streams with heartbeats only, which bound it): keep it until the stream shows content
        (see the module docstring)."""
        message = {"type": "http.response.start", "status": status, "headers": list(headers)}
        message.update(extra)
        if hold and not self.adapter.identity and self._interval is not None:
            self._held_start = message
            self._arm()
            return
        await self._start_now(message)
        self._arm()

    async def _start_now(self, message: dict[str, Any]) -> None:
        if self._busy:
            await self._wait_turn()
        self._busy = True
        try:
            await self._guarded(message)
            self.headers_sent = True
            self._last_send = time.monotonic()
        finally:
            self._end_turn()

    def _unhold(self) -> tuple[dict[str, Any], bytes]:
        """The held start message and the client bytes held with it, no longer held."""
        message = self._held_start
        assert message is not None
        self._held_start = None
        held = b"".join(self._held)
        self._held.clear()
        return message, held

    async def _release(self) -> bytes:
        """Send the held start; return the client bytes held with it."""
        message, held = self._unhold()
        await self._start_now(message)
        return held

    async def _answer_error(self, error: StreamError) -> None:
        """The stream failed before any content while its head was held: the client format's
        error JSON with its status, the held head's other headers kept."""
        message, _ = self._unhold()
        status, payload = self.adapter.client_format.error_body(error)
        body = json.dumps(payload).encode()
        headers = [(k, v) for k, v in message["headers"] if bytes(k).lower() not in _STREAM_ONLY]
        headers += [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self._start_now({"type": "http.response.start", "status": status, "headers": headers})
        await self._body(body, more=False)

    async def push(self, data: bytes, message: MutableMapping[str, Any] | None = None) -> None:
        """Feed upstream bytes; send the whole client events they complete (nothing if none).

        ``message``: the body message (``more_body`` set) that carried ``data``, sent as it is
        when the adapter passes ``data`` unchanged (``StreamAdapter.passes``: passthrough of
        whole events, the usual message of an app that streams SSE), which spares the framing
        and a message per event. If the adapter ended the stream (its terminal event, an
        upstream error event, an oversized event), the tail goes out as the final message, or,
        with ``end_on_close``, at once with the final message left to ``close()``.
        """
        if self.finished:
            self._raise_if_gone()
            return
        adapter = self.adapter
        if message is not None and self._passes and adapter.passes(data):
            out = data
        else:
            out = adapter.feed(data)
            if adapter.ended:
                if self._end_on_close and self._held_start is None:
                    self._disarm()
                    if out:
                        await self._body(out, more=True)
                else:
                    await self._final(out)
                return
            if not out:
                return
            if self._held_start is not None:
                if not adapter.content.choices:
                    self._held.append(out)  # the format's preamble: no content yet
                    return
                out = await self._release() + out
            message = {"type": "http.response.body", "body": out, "more_body": True}
        # ``_body(out, more=True)`` inlined: the per-event hot path, a coroutine fewer.
        if self._busy:  # rare: a keep-alive is waiting on the client
            await self._body(out, more=True)
            return
        self._busy = True
        try:
            await self._send(message)
        except OSError as exc:
            self._gone = exc
            self._cut = True
            self.mark_disconnected()
            raise
        finally:
            self._busy = False
            if self._turn is not None:
                self._end_turn()
        self._bytes += len(out)
        now = self._last_send = time.monotonic()
        if self._first_body is None:
            self._first_body = now

    async def close(self) -> None:
        """The upstream ended: terminal events (or the truncation error tail), final message."""
        if not self.finished:
            await self._final(self.adapter.close())
        else:
            self._raise_if_gone()

    async def fail(self, reason: str | StreamError) -> None:
        """The upstream broke: the error tail as the final message."""
        if not self.finished:
            await self._final(self.adapter.fail(reason))

    async def bounded(
        self,
        ending: Awaitable[None],
        what: str = "stream end not delivered",
        *,
        seconds: float | None = None,
    ) -> None:
        """Await ``ending``, a send of ours (a keep-alive; ``fail`` or ``close``: the ending sent
        after the app or upstream is done, with no one left to bound it), for at most
        ``seconds`` (default ``HEARTBEAT_SEND_TIMEOUT``): a client that stopped reading must not
        hold the request, and what it holds, open (sse-and-asgi.md §3.4 rule 6; sse-starlette's
        ``send_timeout`` raises in the app, and its error tail then waited on that client for
        good). Then the stream is abandoned, ``what`` logged."""
        if not await within(HEARTBEAT_SEND_TIMEOUT if seconds is None else seconds, ending):
            logger.warning("%s: client not reading; stream abandoned", what)
            # As if the server's send had raised (ASGI 2.4): the app's next send raises, so it
            # stops generating, and an upstream behind it with it.
            self.mark_disconnected(ConnectionAbortedError("client not reading"))

    async def cut(self, reason: str) -> None:
        """End the stream now for ``reason`` (the server shutting down: ``end_streams``) with
        the client format's error tail, or its 503 if nothing went out yet (the SDKs retry it),
        the send bounded by ``CUT_SEND_TIMEOUT``."""
        error = StreamError(type="api_error", message=reason, status=503)
        await self.bounded(self.fail(error), seconds=CUT_SEND_TIMEOUT)

    async def _body(self, data: bytes, *, more: bool) -> None:
        # The per-event hot path: one send at a time (a keep-alive may be waiting on the client),
        # taken as a flag rather than an ``asyncio.Lock`` (two coroutines fewer per message).
        if self._busy:
            await self._wait_turn()
        self._busy = True
        try:
            if self.finished:
                return
            if not more:
                self.finished = True
            try:
                await self._send({"type": "http.response.body", "body": data, "more_body": more})
            except OSError as exc:
                # As in ``_guarded``: the client is gone (ASGI 2.4).
                self._gone = exc
                self._cut = True
                self.mark_disconnected()
                raise
            if data:
                self._bytes += len(data)
                now = time.monotonic()
                self._last_send = now
                if self._first_body is None:
                    self._first_body = now
        finally:
            self._busy = False
            if self._turn is not None:
                self._end_turn()

    async def _wait_turn(self) -> None:
        """Wait until no send is in progress (rare: a keep-alive the server's send holds back)."""
        while self._busy:
            if self._turn is None:
                self._turn = self._loop.create_future()
            # Shielded: a waiter's cancellation must not cancel the turn the others wait for.
            await asyncio.shield(self._turn)

    def _end_turn(self) -> None:
        """The send in progress is over: wake whoever waits for a turn."""
        self._busy = False
        turn, self._turn = self._turn, None
        if turn is not None and not turn.done():
            turn.set_result(None)

    async def _final(self, data: bytes) -> None:
        self._disarm()
        if self._held_start is not None:
            error = self.adapter.result.error
            if error is not None and not self.adapter.content.choices:
                await self._answer_error(error)
                return
            data = await self._release() + data
        await self._body(data, more=False)

    async def _guarded(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except OSError as exc:
            # ASGI 2.4: the client is gone. Stop everything and let the caller see it.
            self._gone = exc
            self._cut = True
            self.mark_disconnected()
            raise

    def _raise_if_gone(self) -> None:
        """After the server's send raised ``OSError`` (maybe in a heartbeat), raise it into
        the app's later sends too, so it stops producing (sse-and-asgi.md §3.4 rule 1)."""
        if self._gone is not None:
            raise self._gone

    def mark_disconnected(self, gone: OSError | None = None) -> None:
        """The client went away: no more heartbeats or body. ``gone``: what the app's next
        send raises, as a server's send does after a disconnect (ASGI 2.4), so it stops."""
        if gone is not None and self._gone is None and not self.finished and not self.adapter.ended:
            self._gone = gone  # (after a complete stream the app's sends stay harmless)
        self.disconnected = True
        self.finished = True
        self._disarm()

    # -- heartbeats -------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._interval is None or self.finished or self._due is not None or self.adapter.ended:
            return
        self._due = self._wheel.add(self, self._last_send + self._interval, self._width)

    def _disarm(self) -> None:
        if self._due is not None:
            self._wheel.remove(self, self._due)
            self._due = None

    def _on_due(self) -> bool:
        """The wheel: this stream's idle deadline (as last filed) has come. Whether a keep-alive
        was started."""
        self._due = None
        interval = self._interval
        if self.finished or interval is None:
            return False
        now = time.monotonic()
        if self._busy:
            # A send is in progress (maybe to a client that stopped reading): no keep-alive is
            # due before it completes; look again an interval later.
            self._due = self._wheel.add(self, now + interval, self._width)
        elif now - self._last_send + 0.001 < interval:
            # Busy since it was filed: file it again for its new deadline.
            self._due = self._wheel.add(self, self._last_send + interval, self._width)
        else:
            self._context.run(self._start_heartbeat)
            return True
        return False

    def _start_heartbeat(self) -> None:
        """Start the keep-alive in a task of its own, in the request's context: an outer
        middleware's ``send`` may need to run in a task (a ``BaseHTTPMiddleware`` outside ours
        sends through anyio, which looks up the current task; so does ``asyncio.timeout``)."""
        self._heartbeat_task = self._loop.create_task(self._run_heartbeat())

    async def _run_heartbeat(self) -> None:
        """Send the keep-alive; only if the server's ``send`` waits is it bounded by
        ``HEARTBEAT_SEND_TIMEOUT`` (a timer for every keep-alive would cost a loop timer each)."""
        try:
            coro = self._heartbeat()
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
            await self.bounded(_Resumed(coro, waiting), "heartbeat send timed out")
        finally:
            self._heartbeat_task = None

    async def _heartbeat(self) -> None:
        if self.finished:
            return
        interval = self._interval
        assert interval is not None
        if self._busy or time.monotonic() - self._last_send + 0.001 < interval:
            # A body send started since the deadline came (the task ran a loop turn later): the
            # stream is not idle; file it again (``_on_due`` handles a send still in progress).
            self._arm()
            return
        self._busy = True
        try:
            data = self.adapter.heartbeat()
            if self._held_start is not None:
                # The stream stays silent: the client gets its head (and the preamble) now.
                start, held = self._unhold()
                await self._send(start)
                self.headers_sent = True
                if held:
                    self._bytes += len(held)  # (the keep-alive itself is not body)
                    if self._first_body is None:
                        self._first_body = time.monotonic()
                data = held + data
            if data:
                await self._send({"type": "http.response.body", "body": data, "more_body": True})
                self._last_send = time.monotonic()
        except OSError as exc:
            self._gone = exc
            self.mark_disconnected()
            return
        finally:
            self._end_turn()
        self._arm()

    # -- reporting --------------------------------------------------------------------------

    async def report(self) -> None:
        """Call ``on_complete`` and log the stream's one INFO line (once)."""
        if self._reported:
            return
        self._reported = True
        self._disarm()
        task = self._heartbeat_task
        if task is not None:
            task.cancel()
        if self._on_complete is None and not logger.isEnabledFor(logging.INFO):
            return  # nobody to tell: spare building the report
        result = self.adapter.result
        outcome: Any = result.outcome
        if outcome is None:
            # (A client that left after the end, as SDKs do at ``[DONE]``, got it all.)
            whole = self.adapter.said_its_end() and not self._cut
            outcome = "complete" if whole else "disconnected"
        now = time.monotonic()
        report = StreamReport(
            upstream_format=self.adapter.upstream_format.name,
            client_format=self.adapter.client_format.name,
            outcome=outcome,
            response=result.response,
            usage=result.usage,
            error=result.error,
            events=result.events,
            bytes_sent=self._bytes,
            time_to_first_event=None
            if self._first_body is None
            else self._first_body - self._started_at,
            duration=now - self._started_at,
        )
        await publish(report, self._on_complete)


async def within(seconds: float, awaitable: Awaitable[Any]) -> bool:
    """Await ``awaitable`` for at most ``seconds``: whether it finished in time. At the limit a
    timer cancels the current task and the cancellation is taken back (anyone else's is
    re-raised): no task of its own, and no window where the task's own cancellation is lost
    (``asyncio.wait_for`` before Python 3.12, python/cpython#86296)."""
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    guard = asyncio.get_running_loop().call_later(seconds, expire)
    try:
        await awaitable
    except asyncio.CancelledError:
        if not expired:
            raise
        uncancel(task)
        if getattr(task, "cancelling", lambda: 0)():
            raise  # (cancelled by someone else too)
        return False
    finally:
        guard.cancel()
    return True


def uncancel(task: asyncio.Task[Any]) -> None:
    """Take back a cancellation we caused and handled, so it does not leak into the caller's
    structured concurrency (``Task.uncancel`` exists from Python 3.11)."""
    undo = getattr(task, "uncancel", None)
    if undo is not None:
        undo()


async def publish(report: StreamReport, hook: OnComplete | None, what: str = "sse stream") -> None:
    """Log ``report``'s INFO line and hand it to ``hook``: awaited if async, else run in a thread
    (asgiref). A hook's exception is logged, never raised: the answer was already sent."""
    logger.info(
        "%s %s -> %s: %s, %s events, %d bytes, first event %s, %.3fs",
        what,
        report.upstream_format,
        report.client_format,
        report.outcome,
        "-" if report.events is None else report.events,
        report.bytes_sent,
        "-" if report.time_to_first_event is None else f"{report.time_to_first_event:.3f}s",
        report.duration,
    )
    if hook is None:
        return
    try:
        if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
            getattr(hook, "__call__", None)  # noqa: B004 - async callable objects
        ):
            await hook(report)  # type: ignore[misc]
        else:
            # Outside Django's thread-sensitive context every sync call would share one
            # thread (sse-and-asgi.md §3.10): run hooks on the default executor instead.
            returned = await sync_to_async(hook, thread_sensitive=False)(report)
            if inspect.isawaitable(returned):  # a sync callable returning an awaitable
                await returned
    except Exception:
        logger.exception("on_complete hook raised; the stream was not affected")


# Headers of a held stream's head that an error JSON answer does not keep.
_STREAM_ONLY = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"transfer-encoding",
        b"cache-control",
        b"x-accel-buffering",
    }
)


class _HeartbeatWheel:
    """The idle deadlines of every heartbeating stream on one event loop.

    Deadlines are rounded up to buckets (``HEARTBEAT_SLACK`` wide at most) and each bucket has one
    loop timer: 10 000 streams cost a few hundred timers instead of 10 000, and nothing per body
    message (a stream is re-filed only when its deadline comes and it turns out to have been busy).
    """

    __slots__ = ("_buckets",)

    # By loop, weakly (the wheel holds no reference to its loop, so both go together); a loop
    # that takes no weak references keeps its wheel for the process's life.
    _wheels: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HeartbeatWheel]] = (
        weakref.WeakKeyDictionary()
    )
    _kept: ClassVar[dict[asyncio.AbstractEventLoop, _HeartbeatWheel]] = {}

    def __init__(self) -> None:
        self._buckets: dict[float, dict[StreamSession, None]] = {}

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _HeartbeatWheel:
        """The loop's wheel (made on first use)."""
        wheel = cls._wheels.get(loop) or cls._kept.get(loop)
        if wheel is None:
            wheel = cls()
            try:
                cls._wheels[loop] = wheel
            except TypeError:
                cls._kept[loop] = wheel
        return wheel

    def add(self, session: StreamSession, deadline: float, width: float) -> float:
        """File ``session`` for ``deadline`` (``time.monotonic()`` seconds); return its bucket."""
        due = math.ceil(deadline / width) * width
        bucket = self._buckets.get(due)
        if bucket is None:
            bucket = self._buckets[due] = {}
            loop = session._loop
            loop.call_at(loop.time() + max(due - time.monotonic(), 0.0), self._fire, due)
        bucket[session] = None
        return due

    def remove(self, session: StreamSession, due: float) -> None:
        """Take ``session`` out of bucket ``due`` (its timer still fires, finding it gone)."""
        bucket = self._buckets.get(due)
        if bucket is not None:
            bucket.pop(session, None)

    def _fire(self, due: float) -> None:
        bucket = self._buckets.pop(due, None)
        if bucket:
            self._look_at(list(bucket), 0)

    def _look_at(self, sessions: list[StreamSession], start: int) -> None:
        """Look at ``sessions[start:]``, starting at most ``_KEEPALIVES_PER_TURN`` keep-alives in
        this loop turn and leaving the rest for the next: each keep-alive is a task, and 10 000
        streams due together would otherwise hold 10 000 tasks at once (the process's memory
        keeps that peak)."""
        started = 0
        for i in range(start, len(sessions)):
            try:
                started += sessions[i]._on_due()
            except Exception:  # one stream's failure must not starve the others of keep-alives
                logger.exception("heartbeat failed")
            if started == _KEEPALIVES_PER_TURN and i + 1 < len(sessions):
                sessions[i]._loop.call_soon(self._look_at, sessions, i + 1)
                return


# Keep-alive tasks started per loop turn by one bucket (``_HeartbeatWheel._look_at``): enough to
# cost nothing in lateness (10 000 streams take 160 turns), few enough to stay a small peak.
_KEEPALIVES_PER_TURN = 64


class _Resumed:
    """Await a coroutine that was already started and is waiting on ``waiting``: the rest of a
    keep-alive whose first step ran before its timeout guard was needed."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coro, waiting = self._coro, self._waiting
        while True:
            try:
                value = yield waiting
            except BaseException as exc:  # cancellation and the like: into the coroutine
                try:
                    waiting = coro.throw(exc)
                except StopIteration:
                    return
                continue
            try:
                waiting = coro.send(value)
            except StopIteration:
                return
