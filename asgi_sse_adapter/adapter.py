"""``StreamAdapter``: one stream, bytes in and bytes out, no I/O.

Composes the pipeline (``SSEDecoder`` → reader → canonical parts → writer) and owns the stream's
policy: when the stream has ended and how (complete, truncated, failed), the error tail,
keep-alives, and the final response. No asyncio and no clock of its own: the caller says when
time passed by calling ``heartbeat()``. The ASGI middleware, the upstream proxy and any other
gateway drive it.

Identity (same format on both sides) decodes nothing: raw event blocks are re-framed by
``SSEFramer`` and the stream's end is recognised by a byte search for the format's markers.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .content import Content
from .errors import EventTooLarge
from .formats import get_format
from .formats.base import MalformedEvent, Reader, Writer, WriterOptions
from .parts import (
    Done,
    Finish,
    Part,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamError,
    TextDelta,
    Usage,
)
from .sse import DEFAULT_MAX_EVENT_SIZE, ServerSentEvent, SSEDecoder, SSEFramer, encode_comment

__all__ = ["Outcome", "StreamAdapter", "StreamResult"]

logger = logging.getLogger("asgi_sse_adapter")

Outcome = Literal["complete", "truncated", "failed"]

_PING = encode_comment("ping")
_BARE_PING = encode_comment("ping", blank_line=False)
# What reading an upstream event can raise because of the event's content, not our code:
# shapes we did not expect, and json's RecursionError on absurdly deep nesting.
_INPUT_ERRORS = (
    MalformedEvent,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
)


@dataclass(frozen=True, slots=True)
class StreamResult:
    """How a stream ended.

    Fields:
        outcome: ``"complete"``, ``"truncated"``, ``"failed"``, or ``None`` while still running.
        response: the non-streamed response body in the client format (``None`` when not
            collected, see ``collect_response``).
        usage: the token usage reported by the upstream (``None`` if it reported none).
        error: the error the client was told about, if the stream failed or was truncated.
        events: number of upstream events read (identity mode: raw event blocks).
    """

    outcome: Outcome | None
    response: dict[str, Any] | None
    usage: Usage | None
    error: StreamError | None
    events: int


class StreamAdapter:
    """Re-chunk and translate one SSE stream from ``upstream_format`` to ``client_format``.

    ``feed(bytes) -> bytes`` returns only whole client events: everything the input completed, in
    one ``bytes``. ``close()`` ends the stream normally (or with the error tail when the upstream
    stopped before saying how the stream ends), ``fail(reason)`` ends it with the error tail, and
    ``heartbeat()`` returns a keep-alive that is safe at this point of the stream. After the stream
    ended every method returns ``b""``. Nothing is raised to the caller for bad upstream input.

    Options (keyword-only):
        include_usage: send the usage chunk to OpenAI clients (their ``stream_options``).
        reasoning: ``"emit"`` (default) or ``"drop"`` reasoning/thinking content.
        reasoning_field: the Chat delta field for reasoning (default ``"reasoning_content"``).
        done_after_error: ``data: [DONE]`` after the error event (default: OpenAI-family clients).
        max_event_size: bound on one upstream event in bytes (``None``: unbounded).
        clock: seconds since the epoch, for ``created`` fields the upstream lacks (looked up at
            call time; default ``time.time``).
        id_factory: fresh unique tokens for ids the upstream lacks; writers add their prefix.
        visible_errors: also send the error message as a last content delta, for chat front ends
            that only render content.
        native_keepalive: use the format's own ping event where it has one (Anthropic ``ping``)
            instead of a comment.
        collect_response: build ``result.response`` (default: when translating; identity mode
            then decodes events only for that).
    """

    def __init__(
        self,
        *,
        upstream_format: str,
        client_format: str,
        include_usage: bool = False,
        reasoning: Literal["emit", "drop"] = "emit",
        reasoning_field: str = "reasoning_content",
        done_after_error: bool | None = None,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
        clock: Callable[[], float] | None = None,
        id_factory: Callable[[], str] | None = None,
        visible_errors: bool = False,
        native_keepalive: bool = False,
        collect_response: bool | None = None,
    ) -> None:
        if reasoning not in ("emit", "drop"):
            raise ValueError("reasoning must be 'emit' or 'drop'")
        self.upstream_format = get_format(upstream_format)
        self.client_format = get_format(client_format)
        self.identity = self.upstream_format is self.client_format
        self._drop_reasoning = reasoning == "drop"
        self._visible_errors = visible_errors
        self._max_event_size = max_event_size
        if done_after_error is None:
            done_after_error = self.client_format.done_after_error
        self._options = WriterOptions(
            include_usage=include_usage,
            reasoning_field=reasoning_field,
            done_after_error=done_after_error,
            native_keepalive=native_keepalive,
            clock=clock if clock is not None else _now,
            id_factory=id_factory,
        )
        self.content = Content()
        if collect_response is None:
            collect_response = not self.identity
        self._collect = collect_response

        self._decoder: SSEDecoder | None = None
        self._framer: SSEFramer | None = None
        self._reader: Reader | None = None
        self._writer: Writer | None = None
        if self.identity:
            self._framer = SSEFramer(max_event_size=max_event_size)
            if self._collect:
                self._decoder = SSEDecoder(max_event_size=None)
                self._reader = self.upstream_format.reader()
            # Only the writer's error envelope and final response are used in identity mode.
            self._writer = self.client_format.writer(self._options, self.content)
        else:
            self._decoder = SSEDecoder(max_event_size=max_event_size)
            self._reader = self.upstream_format.reader()
            self._writer = self.client_format.writer(self._options, self.content)

        self._outcome: Outcome | None = None
        self._error: StreamError | None = None
        self._events = 0
        self._seen_id = False
        self._identity_complete = False
        self._identity_failed = False
        self._identity_saw_done = False

    # -- public API -------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the client stream has ended (nothing more will be emitted)."""
        return self._outcome is not None

    @property
    def result(self) -> StreamResult:
        """The stream's outcome so far, its usage, and the final response if collected."""
        response = None
        if self._collect and self._writer is not None:
            response = self._writer.response()
        return StreamResult(
            outcome=self._outcome,
            response=response,
            usage=self.content.usage if self.content.usage_reported else None,
            error=self._error,
            events=self._events,
        )

    def feed(self, data: bytes) -> bytes:
        """Add upstream bytes; return the whole client events they complete (maybe ``b""``)."""
        if self._outcome is not None or not data:
            return b""
        if self.identity:
            return self._feed_identity(data)
        out: list[bytes] = []
        try:
            events = self._decoder.feed(data)  # type: ignore[union-attr]
        except EventTooLarge as exc:
            self._read_events(exc.complete, out)  # type: ignore[arg-type]
            if self._outcome is None:
                self._end_with_error(
                    _error(
                        "upstream_event_too_large", f"upstream event larger than {exc.limit} bytes"
                    ),
                    "failed",
                    out,
                )
            return b"".join(out)
        self._read_events(events, out)
        return b"".join(out)

    def close(self) -> bytes:
        """The upstream ended: flush, then the terminal events or, if it stopped before saying
        how the stream ends, the error tail (outcome ``"truncated"``)."""
        if self._outcome is not None:
            return b""
        out: list[bytes] = []
        if self.identity:
            return self._close_identity()
        assert self._decoder is not None
        assert self._reader is not None
        self._decoder.close()
        self._apply(self._reader.end(), out)
        if self.ended:  # the reader's end parts may have ended the stream
            return b"".join(out)
        if self.content.finished:
            logger.info("upstream ended after its finish reason but without its terminator")
            self._finish_normally(out)
        else:
            self._end_with_error(
                _error(
                    "stream_truncated",
                    "upstream stream ended before it finished (truncated)",
                ),
                "truncated",
                out,
            )
        return b"".join(out)

    def fail(self, reason: str | StreamError) -> bytes:
        """The upstream broke: return the error tail carrying ``reason`` (a message, or a typed
        error such as a translated upstream error body); then nothing more."""
        if self._outcome is not None:
            return b""
        out: list[bytes] = []
        error = reason if isinstance(reason, StreamError) else _error("upstream_error", reason)
        self._end_with_error(error, "failed", out)
        return b"".join(out)

    def heartbeat(self) -> bytes:
        """A keep-alive that no official SDK turns into an event, at this point of the stream."""
        if self._outcome is not None:
            return b""
        if not self.identity and self._options.native_keepalive:
            native = self._writer.keepalive()  # type: ignore[union-attr]
            if native is not None:
                return native
        # After an ``id:`` field a blank line would dispatch a phantom event in the Python SDKs
        # (sse-and-asgi.md §2.1): send the comment line alone.
        return _BARE_PING if self._seen_id else _PING

    # -- translation ------------------------------------------------------------------------

    def _read_events(self, events: list[ServerSentEvent], out: list[bytes]) -> None:
        reader = self._reader
        assert reader is not None
        for event in events:
            if self._outcome is not None:
                break
            self._events += 1
            try:
                parts = reader.read(event)
            except _INPUT_ERRORS as exc:
                logger.warning("malformed upstream event: %s", exc.__class__.__name__)
                self._end_with_error(
                    _error(
                        "malformed_upstream_event", f"malformed upstream event: {_describe(exc)}"
                    ),
                    "failed",
                    out,
                )
                break
            self._apply(parts, out)

    def _apply(self, parts: list[Part], out: list[bytes]) -> None:
        writer = self._writer
        assert writer is not None
        content = self.content
        for part in parts:
            if self._outcome is not None:
                return
            if isinstance(part, StreamError):
                self._end_with_error(part, "failed", out)
                return
            if isinstance(part, Done):
                content.done = True
                if not content.finished:
                    # The upstream said it ended normally without a finish reason: end_turn.
                    logger.info("upstream ended without a finish reason; treating it as end_turn")
                    for choice in list(content.choices) or [0]:
                        if content.choice(choice).finish_reason is None:
                            self._apply([Finish("end_turn", choice=choice)], out)
                self._finish_normally(out)
                return
            if self._drop_reasoning and isinstance(
                part, ReasoningDelta | ReasoningSignature | RedactedReasoning
            ):
                continue
            content.add(part)
            if not self.identity:
                writer.write(part, out)

    def _finish_normally(self, out: list[bytes]) -> None:
        if not self.identity:
            self._writer.end(out)  # type: ignore[union-attr]
        self._outcome = "complete"

    def _end_with_error(self, error: StreamError, outcome: Outcome, out: list[bytes]) -> None:
        writer = self._writer
        assert writer is not None
        self.content.error = error
        self._error = error
        if self._visible_errors and not self.identity:
            visible = TextDelta(f"\n\n[error: {error.message}]")
            self.content.add(visible)
            writer.write(visible, out)
        writer.error(error, out)
        self._outcome = outcome
        if outcome == "truncated":
            logger.warning("stream truncated: %s", error.message)
        else:
            logger.warning("stream failed: %s", error.message)

    # -- identity ---------------------------------------------------------------------------

    def _feed_identity(self, data: bytes) -> bytes:
        framer = self._framer
        assert framer is not None
        try:
            joined = framer.feed_joined(data)
        except EventTooLarge as exc:
            head = exc.complete[0] if exc.complete else b""
            assert isinstance(head, bytes)
            out = [self._observe_identity(head)] if head else []
            if self._outcome is None:
                self._end_with_error(
                    _error(
                        "upstream_event_too_large", f"upstream event larger than {exc.limit} bytes"
                    ),
                    "failed",
                    out,
                )
            return b"".join(out)
        if not joined:
            return b""
        return self._observe_identity(joined)

    def _observe_identity(self, joined: bytes) -> bytes:
        """Note what passthrough bytes say about the stream (by byte search) and return them."""
        self._events += joined.count(b"data")
        if not self._seen_id and b"id:" in joined:
            self._seen_id = True
        # The flags only ever turn on, so a search whose flag is already set is skipped.
        fmt = self.client_format
        if not self._identity_failed and _contains_any(joined, _marker_groups(fmt.error_markers)):
            self._identity_failed = True
        if not self._identity_complete and _contains_any(
            joined, _marker_groups(fmt.complete_markers)
        ):
            self._identity_complete = True
        if not self._identity_saw_done and b"[DONE]" in joined:
            self._identity_saw_done = True
        if self._decoder is not None:
            # collect_response: decode only to build the final response.
            try:
                self._collect_identity(self._decoder.feed(joined))
            except _INPUT_ERRORS:
                self._decoder = None
        return joined

    def _collect_identity(self, events: list[ServerSentEvent]) -> None:
        assert self._reader is not None
        for event in events:
            for part in self._reader.read(event):
                if isinstance(part, StreamError):
                    self.content.error = part
                elif not isinstance(part, Done):
                    self.content.add(part)

    def _close_identity(self) -> bytes:
        framer = self._framer
        assert framer is not None
        framer.close()  # an unterminated tail is dropped: clients would discard it too
        if self._identity_failed:
            # The upstream's own error event went through; add only what this client still needs.
            self._outcome = "failed"
            error = self.content.error or _error("upstream_error", "upstream reported an error")
            self._error = error
            logger.warning("stream failed: upstream reported an error")
            return b"data: [DONE]\n\n" if self._needs_done_after_error() else b""
        if self._identity_complete:
            self._outcome = "complete"
            return b""
        out: list[bytes] = []
        self._end_with_error(
            _error("stream_truncated", "upstream stream ended before it finished (truncated)"),
            "truncated",
            out,
        )
        return b"".join(out)

    def _needs_done_after_error(self) -> bool:
        return self._options.done_after_error and not self._identity_saw_done


_ANCHOR_MIN = 12
"""Shortest prefix worth sharing: shorter shared prefixes (``data:``) occur in every event."""

_MarkerGroups = tuple[tuple[bytes, tuple[bytes, ...]], ...]


@functools.cache
def _marker_groups(markers: tuple[bytes, ...]) -> _MarkerGroups:
    """``markers`` as (anchor, markers starting with it) pairs, for ``_contains_any``.

    A marker's anchor is the longest prefix it shares with another marker when that is at least
    ``_ANCHOR_MIN`` bytes long, else the marker itself. The ten ``"finish_reason":…`` markers of
    Chat then cost two searches instead of ten; the answer is the same.
    """
    groups: dict[bytes, list[bytes]] = {}
    for marker in markers:
        shared = max((_common_prefix(marker, o) for o in markers if o != marker), default=0)
        anchor = marker[:shared] if shared >= _ANCHOR_MIN else marker
        groups.setdefault(anchor, []).append(marker)
    return tuple((anchor, tuple(members)) for anchor, members in groups.items())


def _common_prefix(a: bytes, b: bytes) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _contains_any(hay: bytes, groups: _MarkerGroups) -> bool:
    """``any(m in hay for m in markers)``: every occurrence of a marker starts with its anchor."""
    for anchor, members in groups:
        pos = hay.find(anchor)
        while pos >= 0:
            if hay.startswith(members, pos):
                return True
            pos = hay.find(anchor, pos + 1)
    return False


def _now() -> float:
    # Looked up at call time so tests and users can patch ``time.time``.
    return time.time()


def _error(code: str, message: str) -> StreamError:
    return StreamError(type="api_error", message=message, code=code, status=502)


def _describe(exc: BaseException) -> str:
    """A short reason without echoing upstream content (or a stack trace) to the client."""
    if isinstance(exc, MalformedEvent):
        return str(exc)
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    if isinstance(exc, ValueError):
        return "invalid JSON" if "JSON" in type(exc).__name__ else "unexpected value"
    return f"unexpected {exc.__class__.__name__}"
