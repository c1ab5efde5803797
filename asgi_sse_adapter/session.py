"""One adapted response on the wire: what the middleware and the proxy share.

A ``StreamSession`` drives one ``StreamAdapter`` against an ASGI ``send``: it sends whole events
only, serialises heartbeats with the body under one lock, keeps the stream alive while it is
silent, ends it exactly once with ``more_body=False``, and reports the result (``on_complete`` and
one log line).

Heartbeats cost no task per stream: each session holds one ``loop.call_at`` timer, re-armed at
most once per interval while the stream is busy; only when the stream really is idle does a
short task send the keep-alive (sse-and-asgi.md §2.2: idle-based, at event boundaries, bounded).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from asgiref.sync import sync_to_async

from .adapter import StreamAdapter
from .parts import StreamError, Usage

__all__ = ["OnComplete", "StreamReport", "StreamSession"]

logger = logging.getLogger("asgi_sse_adapter")

Send = Callable[[dict[str, Any]], Awaitable[None]]

# A heartbeat to a client that stopped reading must not hang: bound each heartbeat send.
HEARTBEAT_SEND_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class StreamReport:
    """What ``on_complete`` receives once per adapted stream.

    Fields:
        upstream_format, client_format: the pair that was adapted.
        outcome: ``"complete"``, ``"truncated"``, ``"failed"`` or ``"disconnected"``.
        response: the final non-streamed response object in the client format, if collected.
        usage: token usage reported by the upstream, if any.
        error: the error the client was sent (failed or truncated streams).
        events: upstream events read; bytes_sent: body bytes sent to the client.
        time_to_first_event: seconds from the request to the first body bytes sent (``None`` if
            none were sent); duration: seconds from the request to the end of the stream.
    """

    upstream_format: str
    client_format: str
    outcome: Literal["complete", "truncated", "failed", "disconnected"]
    response: dict[str, Any] | None
    usage: Usage | None
    error: StreamError | None
    events: int
    bytes_sent: int
    time_to_first_event: float | None
    duration: float


OnComplete = Callable[[StreamReport], "Awaitable[None] | None"]


class StreamSession:
    """Send one adapted SSE response through ``send``."""

    # Slots: one per open stream, so its size counts (idle streams held by the thousand).
    __slots__ = (
        "_bytes",
        "_first_body",
        "_gone",
        "_heartbeat_task",
        "_interval",
        "_last_send",
        "_lock",
        "_loop",
        "_on_complete",
        "_reported",
        "_send",
        "_started_at",
        "_timer",
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
    ) -> None:
        self.adapter = adapter
        self._send = send
        self._interval = heartbeat_interval
        self._on_complete = on_complete
        self._started_at = time.monotonic() if started_at is None else started_at
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._last_send = self._started_at
        self._first_body: float | None = None
        self._bytes = 0
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.headers_sent = False
        self.finished = False
        """The final body message went out (or the client is gone): send nothing more."""
        self.disconnected = False
        self._gone: OSError | None = None  # what the server's send raised (ASGI 2.4)
        self._reported = False

    # -- sending ----------------------------------------------------------------------------

    async def start(
        self, status: int, headers: Iterable[tuple[bytes, bytes]], **extra: Any
    ) -> None:
        """Send ``http.response.start`` and begin the idle heartbeat."""
        message = {"type": "http.response.start", "status": status, "headers": list(headers)}
        message.update(extra)
        async with self._lock:
            await self._guarded(message)
            self.headers_sent = True
            self._last_send = time.monotonic()
        self._arm()

    async def push(self, data: bytes) -> None:
        """Feed upstream bytes; send the whole client events they complete (nothing if none).

        If the adapter ended the stream (an upstream error event, an oversized event), the tail
        goes out as the final message.
        """
        if self.finished:
            self._raise_if_gone()
            return
        out = self.adapter.feed(data)
        if self.adapter.ended:
            await self._final(out)
        elif out:
            await self._body(out, more=True)

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

    async def _body(self, data: bytes, *, more: bool) -> None:
        # The per-event hot path: the lock taken without ``async with`` and ``_guarded`` inlined
        # (each saves a coroutine per body message; same semantics).
        lock = self._lock
        await lock.acquire()
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
                self.mark_disconnected()
                raise
            if data:
                self._bytes += len(data)
                now = time.monotonic()
                self._last_send = now
                if self._first_body is None:
                    self._first_body = now
        finally:
            lock.release()

    async def _final(self, data: bytes) -> None:
        self._disarm()
        await self._body(data, more=False)

    async def _guarded(self, message: dict[str, Any]) -> None:
        try:
            await self._send(message)
        except OSError as exc:
            # ASGI 2.4: the client is gone. Stop everything and let the caller see it.
            self._gone = exc
            self.mark_disconnected()
            raise

    def _raise_if_gone(self) -> None:
        """After the server's send raised ``OSError`` (maybe in a heartbeat), raise it into
        the app's later sends too, so it stops producing (sse-and-asgi.md §3.4 rule 1)."""
        if self._gone is not None:
            raise self._gone

    def mark_disconnected(self) -> None:
        """The client went away: no more heartbeats or body."""
        self.disconnected = True
        self.finished = True
        self._disarm()

    # -- heartbeats -------------------------------------------------------------------------

    def _arm(self) -> None:
        if self._interval is None or self.finished or self._timer is not None:
            return
        self._timer = self._loop.call_at(self._loop.time() + self._interval, self._on_timer)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        if self.finished or self._interval is None:
            return
        idle = time.monotonic() - self._last_send
        if idle + 0.001 < self._interval or self._lock.locked():
            # Busy since the timer was set (or a send is in progress): wait out the rest.
            delay = max(self._interval - idle, 0.001)
            self._timer = self._loop.call_at(self._loop.time() + delay, self._on_timer)
            return
        self._heartbeat_task = self._loop.create_task(self._heartbeat())

    async def _heartbeat(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        timed_out = False

        def expire() -> None:
            nonlocal timed_out
            timed_out = True
            task.cancel()

        lock = self._lock
        try:
            await lock.acquire()
            try:
                if self.finished:
                    return
                data = self.adapter.heartbeat()
                if data:
                    # Bounded without wait_for, which would cost another task per heartbeat.
                    guard = self._loop.call_later(HEARTBEAT_SEND_TIMEOUT, expire)
                    try:
                        await self._send(
                            {"type": "http.response.body", "body": data, "more_body": True}
                        )
                    finally:
                        guard.cancel()
                    self._last_send = time.monotonic()
            finally:
                lock.release()
        except OSError as exc:
            self._gone = exc
            self.mark_disconnected()
        except asyncio.CancelledError:
            if not timed_out:
                raise
            logger.warning("heartbeat send timed out: client not reading; stream abandoned")
            self.mark_disconnected()
        finally:
            self._heartbeat_task = None
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
        result = self.adapter.result
        outcome: Any = (
            "disconnected" if self.disconnected and result.outcome is None else result.outcome
        )
        if outcome is None:
            outcome = "disconnected"
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
        logger.info(
            "sse stream %s -> %s: %s, %d events, %d bytes, first event %s, %.3fs",
            report.upstream_format,
            report.client_format,
            report.outcome,
            report.events,
            report.bytes_sent,
            "-" if report.time_to_first_event is None else f"{report.time_to_first_event:.3f}s",
            report.duration,
        )
        if self._on_complete is None:
            return
        try:
            hook = self._on_complete
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
