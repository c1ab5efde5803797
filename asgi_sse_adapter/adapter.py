"""``StreamAdapter``: one stream, bytes in and bytes out, no I/O.

Composes the pipeline (``SSEDecoder`` → reader → canonical parts → writer) and owns the stream's
policy: when the stream has ended and how (complete, truncated, failed), the error tail,
keep-alives, and the final response. No asyncio and no clock of its own: the caller says when
time passed by calling ``heartbeat()``. The ASGI middleware, the upstream proxy and any other
gateway drive it.

Identity (same format on both sides) decodes nothing: raw event blocks are re-framed by
``SSEFramer`` (or, when a read already is whole events, passed as they are: ``passes``), and how
the stream ended is read from its last events when it closes. A read that completes many text
deltas is translated as one ``TextRun`` where the reader and the writer know runs, read straight
from the raw blocks where the reader knows their exact lines; a read of exactly one such event is
read from its bytes (``Reader.read_text_block``, ``read_arguments_block``). Each gives the same
client bytes as one event at a time parsed as SSE.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from ._checks import check_count
from .content import Content
from .errors import EventTooLarge
from .formats import get_format
from .formats.base import Format, MalformedEvent, Reader, Unwritable, Writer, WriterOptions
from .parts import (
    ArgumentsRun,
    Done,
    Finish,
    Part,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    StreamError,
    TextRun,
    ToolCallDelta,
    ToolCallStart,
    Unrepresentable,
    Usage,
    text_delta,
)
from .sse import (
    DEFAULT_MAX_EVENT_SIZE,
    ServerSentEvent,
    SSEDecoder,
    SSEFramer,
    _Framing,
    encode_comment,
    tail_blocks,
)

__all__ = ["Outcome", "StreamAdapter", "StreamResult"]

logger = logging.getLogger("asgi_sse_adapter")

Outcome = Literal["complete", "truncated", "failed"]

MALFORMED_RESPONSE = "malformed_upstream_response"
"""The error code of a whole upstream answer that is not its format's response
(``StreamAdapter.feed_response``)."""

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
            collected, see ``collect_response``). After a failed or truncated stream it holds
            the content that arrived, with no finish reason (OpenAI's ``finish_reason: null``,
            which the SDKs' ``ChatCompletion``/``Completion`` models do not take; Anthropic's
            ``stop_reason: null``; Responses ``status: "failed"``).
        usage: the token usage reported by the upstream (``None`` if it reported none).
        error: the error the client was told about, if the stream failed or was truncated.
        events: number of upstream events read; ``None`` where none are counted (identity
            mode without ``collect_response`` re-frames raw event blocks and reads none).
    """

    outcome: Outcome | None
    response: dict[str, Any] | None
    usage: Usage | None
    error: StreamError | None
    events: int | None


class StreamAdapter:
    """Re-chunk and translate one SSE stream from ``upstream_format`` to ``client_format``
    (registered names, or a ``Format`` the registry does not name:
    ``formats.anthropic_text.FORMAT_2023_01_01`` for clients of that API version).

    ``feed(bytes) -> bytes`` returns only whole client events: everything the input completed, in
    one ``bytes``. ``close()`` ends the stream normally (or with the error tail when the upstream
    stopped before saying how the stream ends), ``fail(reason)`` ends it with the error tail, and
    ``heartbeat()`` returns a keep-alive that is safe at this point of the stream. After the stream
    ended every method returns ``b""``. Nothing is raised to the caller for bad upstream input.

    Options (keyword-only):
        include_usage: send the usage chunk to OpenAI clients (their ``stream_options``).
        reasoning: ``"emit"`` (default) or ``"drop"`` reasoning/thinking content.
        reasoning_field: the Chat delta field for reasoning (default ``"reasoning_content"``;
            ``"reasoning"`` for OpenRouter-style clients). A field the delta uses for something
            else (``content``, ``role``, ``refusal``, ``tool_calls``…) is a ``ValueError``.
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
        input_tokens_estimate: the prompt's size in tokens as the caller estimates it, stated
            in an Anthropic Messages client's ``message_start`` when the upstream has not said
            it by then (an OpenAI-family upstream says it at the end): clients read the prompt's
            size there (Claude Code's context meter). The upstream's count follows in
            ``message_delta``, as always.
        tool_names: the name the upstream calls a tool by → the client's name for it, where the
            request gave the upstream other names (``TranslatedRequest.tool_names``: names longer
            than OpenAI's limit); the client's calls carry the client's names.
    """

    # Slots: a shell builds one per stream (its construction is part of every stream's cost)
    # and an open stream holds it (idle streams are held by the thousand).
    __slots__ = (
        "_argument_runs",
        "_block_runs",
        "_collect",
        "_decoder",
        "_error",
        "_events",
        "_framer",
        "_framing",
        "_head",
        "_hot",
        "_ids_checked",
        "_last",
        "_one_blocks",
        "_options",
        "_outcome",
        "_passthrough",
        "_previous",
        "_reader",
        "_seen_id",
        "_special",
        "_text_runs",
        "_tool_names",
        "_visible_errors",
        "_writer",
        "_writes_runs",
        "client_format",
        "content",
        "ended",
        "identity",
        "upstream_format",
    )
    _framing: _Framing  # identity only: the framer's framing, driven directly on the hot path

    def __init__(
        self,
        *,
        upstream_format: str | Format,
        client_format: str | Format,
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
        input_tokens_estimate: int | None = None,
        tool_names: Mapping[str, str] | None = None,
    ) -> None:
        check_reasoning_options(reasoning, reasoning_field)
        if max_event_size is not DEFAULT_MAX_EVENT_SIZE:  # (per stream: the default is valid)
            check_count("max_event_size", max_event_size, minimum=1, optional=True)
        upstream = self.upstream_format = _format(upstream_format)
        client = self.client_format = _format(client_format)
        identity = self.identity = upstream is client
        self._visible_errors = visible_errors
        self._options = _writer_options(
            include_usage,
            reasoning_field,
            client.done_after_error if done_after_error is None else done_after_error,
            native_keepalive,
            clock,
            id_factory,
        )
        if input_tokens_estimate is not None:
            check_count("input_tokens_estimate", input_tokens_estimate, minimum=0)
            # (Per stream: not one of the shared options.)
            self._options = replace(self._options, input_tokens_estimate=input_tokens_estimate)
        self.content = Content()
        collect = self._collect = not identity if collect_response is None else collect_response
        # The part types ``_apply`` does not simply fold in and write.
        self._special = _SPECIAL | _REASONING if reasoning == "drop" else _SPECIAL
        self._tool_names = tool_names or None
        if self._tool_names is not None:
            self._special |= _RENAMED
        # What the reader and the writer can do beyond one event at a time (flags, not bound
        # methods: an open stream holds the adapter, and idle streams are held by the thousand).
        self._text_runs = self._argument_runs = self._block_runs = False
        self._one_blocks = self._writes_runs = False
        self._writer: Writer | None = None
        self._reader: Reader | None = None
        self._decoder: SSEDecoder | None = None
        self._framer: SSEFramer | None = None
        if identity:
            framer = self._framer = SSEFramer(max_event_size=max_event_size)
            # The identity hot path drives the framer's framing directly (see ``feed``).
            self._framing = framer._framing
            if collect:
                self._decoder = SSEDecoder(max_event_size=None)
                self._reader = upstream.reader()
            # Identity uses a writer only for an error tail or a final response: made on demand.
        else:
            self._decoder = SSEDecoder(max_event_size=max_event_size)
            reader = self._reader = upstream.reader()
            writer = self._writer = client.writer(self._options, self.content)
            kind = type(reader)
            # Text runs (``TextRun``), where the reader can recognise them and the writer can
            # write them whole: a read of many text events then costs one part, not one per event.
            self._text_runs = kind.read_text_run is not Reader.read_text_run
            # The same for runs of one call's argument fragments (``ArgumentsRun``).
            self._argument_runs = kind.read_arguments_run is not Reader.read_arguments_run
            # Runs read straight from the raw blocks a read starts with (``read_blocks``).
            self._block_runs = kind.read_blocks is not Reader.read_blocks
            # One-event reads taken straight from their bytes (``read_text_block``,
            # ``read_arguments_block``).
            self._one_blocks = (
                kind.read_text_block is not Reader.read_text_block
                or kind.read_arguments_block is not Reader.read_arguments_block
            )
            self._writes_runs = type(writer).write_run is not Writer.write_run

        self._outcome: Outcome | None = None
        self.ended = False
        """Whether the client stream has ended (nothing more will be emitted)."""
        self._error: StreamError | None = None
        self._events = 0
        self._seen_id = False
        # Identity keeps references (no copies) to the first and the last two event chunks it
        # passed through: how the stream ended, and whether it used ``id:``, is read from them
        # when it matters (close, fail, heartbeat) instead of scanning every byte.
        self._head: bytes = b""
        self._previous: bytes = b""
        self._last: bytes = b""
        self._ids_checked: bytes | None = None  # the last chunk already searched for ``id:``
        self._passthrough = identity and not collect
        self._hot = False  # ``_passthrough``, still running, and its first chunk seen

    def _end(self, outcome: Outcome) -> None:
        self._outcome = outcome
        self.ended = True
        self._hot = False

    def _get_writer(self) -> Writer:
        if self._writer is None:
            self._writer = self.client_format.writer(self._options, self.content)
        return self._writer

    # -- public API -------------------------------------------------------------------------

    @property
    def result(self) -> StreamResult:
        """The stream's outcome so far, its usage, and the final response if collected."""
        response = self._get_writer().response() if self._collect else None
        return StreamResult(
            outcome=self._outcome,
            response=response,
            usage=self.content.usage if self.content.usage_reported else None,
            error=self._error,
            events=None if self.identity and not self._collect else self._events,
        )

    def feed(self, data: bytes) -> bytes:
        """Add upstream bytes; return the whole client events they complete (maybe ``b""``)."""
        if self._hot:
            # Identity without collection, running, its first chunk seen: the hot path. Frame
            # and keep references, no more. This is ``SSEFramer.feed_joined`` with its call
            # level removed (a tenth of the cost of a 1460-byte read).
            framing = self._framing
            joined = framing._take(data)
            if joined.__class__ is not bytes or framing._overflow or len(joined) > framing._limit:
                try:
                    joined = self._framer._settle(joined)  # type: ignore[union-attr]
                except EventTooLarge as exc:
                    return self._identity_overflow(exc)
            if joined:
                self._previous = self._last
                self._last = joined
            return joined
        if self._outcome is not None or not data:
            return b""
        if self.identity:
            return self._feed_identity(data)
        decoder = self._decoder
        assert decoder is not None
        if self._one_blocks and decoder.idle_for(data):
            # One event per read, the usual read of a live stream: a text delta or an argument
            # fragment in the exact bytes the upstream sends, read without parsing it as SSE (the
            # reader takes only exactly one such block); text is folded in and written without
            # a part.
            reader = self._reader
            assert reader is not None
            delta = reader.read_text_block(data)
            if delta is not None:
                self._events += 1
                if not delta:
                    return b""
                self.content.add_text(delta)
                return self._writer.write_text(delta)  # type: ignore[union-attr]
            call = reader.read_arguments_block(data)
            if call is not None:
                self._events += 1
                written: list[bytes] = []
                self._apply((call,), written)
                return written[0] if len(written) == 1 else b"".join(written)
        out: list[bytes] = []
        # A read of many events may start with a run the reader takes straight from the raw
        # blocks (most reads of a stream at speed are one run); the rest is parsed as SSE. A
        # small read (a live stream's one event) is cheaper parsed as it is; its size tells
        # at the least cost.
        blocks = len(data) >= _BLOCK_READ and self._block_runs
        try:
            if blocks:
                text = decoder.feed_text(data)
            else:
                values, types = decoder.feed_fields(data)
        except EventTooLarge as exc:
            complete: list[ServerSentEvent] = exc.complete  # type: ignore[assignment]
            self._apply(self._parts([e.data for e in complete], [e.event for e in complete]), out)
            if self._outcome is None:
                self._end_with_error(
                    _error(
                        "upstream_event_too_large", f"upstream event larger than {exc.limit} bytes"
                    ),
                    "failed",
                    out,
                )
            return b"".join(out)
        if blocks:
            run, count, end = self._reader.read_blocks(text)  # type: ignore[union-attr]
            if end:
                self._events += count
                if run is not None:
                    self._apply((run,), out)
                    if self.ended:  # the writer refused it (``Unwritable``)
                        return b"".join(out)
                if end == len(text):
                    return b"".join(out)
                text = text[end:]
            values, types = decoder.fields(text)
        if len(values) == 1:
            # One event per read, the usual shape of a live stream: no generator for it.
            self._apply(self._read(values[0], None if types is None else types[0]), out)
        else:
            self._apply(self._parts(values, types), out)
        return b"".join(out)

    def feed_response(self, response: dict[str, Any]) -> bytes:
        """Take the upstream's whole non-streamed answer (the JSON object its API returns
        without ``stream``) instead of a stream, and return the client's complete event stream
        for it, written as a streamed answer would be; the stream has then ended.

        For an upstream that answered a streaming request with JSON, and for translating JSON
        answers: ``result.response`` is the client format's response object (collected here
        whatever ``collect_response`` says). An error the body holds, or a body that is not
        this format's response, ends it as ``"failed"`` with the error tail and
        ``result.error``: the caller may still answer with ``client_format.error_body`` instead,
        as nothing was sent. Only for a fresh adapter (``RuntimeError`` once bytes were fed).
        """
        if self._outcome is not None:
            return b""
        if self._fed():
            raise RuntimeError("feed_response() after feed(): one adapter reads one answer")
        read = self.upstream_format.response_parts
        assert read is not None  # every registered format reads its responses
        self._collect = True
        writer = self._get_writer()
        out: list[bytes] = []
        try:
            parts = read(response)
        except _INPUT_ERRORS as exc:
            logger.warning("malformed upstream response: %s", exc.__class__.__name__)
            parts = [_error(MALFORMED_RESPONSE, f"malformed upstream response: {_describe(exc)}")]
        content = self.content
        dropped = self._special & _REASONING
        try:
            for part in parts:
                kind = type(part)
                if kind is ToolCallStart:
                    part = self._named(part)  # type: ignore[arg-type]
                if kind is StreamError:
                    self._end_with_error(part, "failed", out)  # type: ignore[arg-type]
                    return b"".join(out)
                if kind is Done:
                    break
                if kind is Unrepresentable:
                    if self._unrepresentable(part, out):  # type: ignore[arg-type]
                        return b"".join(out)
                    continue
                if kind not in dropped:
                    content.add(part)
                    writer.write(part, out)
            # A whole answer is complete by definition: a choice without a finish reason ended
            # normally (as a stream's explicit end does, ``_done``).
            content.done = True
            for choice in list(content.choices) or [0]:
                if content.choice(choice).finish_reason is None:
                    finish = Finish("end_turn", choice=choice)
                    content.add(finish)
                    writer.write(finish, out)
        except Unwritable as exc:
            self._events -= exc.unread
            self._end_with_error(exc.error, "failed", out)
            return b"".join(out)
        writer.end(out)
        self._end("complete")
        return b"".join(out)

    def _fed(self) -> bool:
        """Whether any upstream bytes were fed (an event read, or part of one pending)."""
        if self._events or self._head:
            return True
        decoder = self._decoder
        framing = self._framing if self.identity else decoder._framing  # type: ignore[union-attr]
        return not framing._at_start or bool(framing._buf or framing._parts)

    def said_its_end(self) -> bool:
        """Whether the client was given the stream's normal end: a client that left after it
        got the whole answer. A translated stream ends itself at its terminal event; an
        identity stream only at ``close()``, so its last events are asked (the terminator
        passed, after no error)."""
        if self._outcome is not None or not self.identity:
            return self._outcome == "complete"
        _, done, error = self._identity_ending()
        return done and error is None

    def passes(self, data: bytes) -> bool:
        """Whether ``feed(data)`` would return ``data`` itself, with nothing else to do: identity
        mode without ``collect_response``, running, nothing pending, and ``data`` whole events
        within the size bound. If so, ``data`` is taken as fed and the caller sends it as it is
        (a shell can then forward the very message that carried it); if not, nothing happened
        and the caller uses ``feed``. Cheaper than ``feed`` for the read it answers yes to."""
        if not self._hot:
            return False
        framing = self._framing
        if (
            data[-2:] == b"\n\n"
            and framing._lf_only
            and not framing._buf
            and not framing._parts
            and len(data) <= framing._limit
        ):
            # Nothing pending and LF LF at the end: ``data`` is whole events, exactly what
            # framing it would hand out (see ``_Framing.__init__``).
            self._previous = self._last
            self._last = data
            return True
        return False

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
        if self.content.finished and self._reader.complete():
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
        if self.identity:
            return self._end_identity(error)
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
        if self.identity and not self._seen_id:
            self._seen_id = self._identity_used_ids()
        return _BARE_PING if self._seen_id else _PING

    # -- translation ------------------------------------------------------------------------

    def _parts(self, values: list[str], types: list[str | None] | None) -> Iterator[Part]:
        """The parts of events given as columns (``SSEDecoder.feed_fields``), read one event at a
        time as ``_apply`` takes them: once a part ended the stream (a malformed event's error
        among them), the events after it are never read."""
        if types is None:
            types = [None] * len(values)
        read = self._read
        reader = self._reader
        if not self._text_runs or reader is None:
            for data, type_ in zip(values, types, strict=True):
                yield from read(data, type_)
            return
        read_run = reader.read_text_run
        read_arguments = reader.read_arguments_run if self._argument_runs else None
        i, n = 0, len(values)
        while i < n:
            texts, end = read_run(values, types, i)
            if end > i:
                self._events += end - i
                if texts:
                    yield TextRun(texts)
                i = end
                if i == n:
                    return
            if read_arguments is not None:
                run, end = read_arguments(values, types, i)
                if end > i:
                    self._events += end - i
                    if run is not None:
                        yield run
                    i = end
                    continue
            yield from read(values[i], types[i])
            i += 1

    def _read(self, data: str, type_: str | None) -> Iterable[Part]:
        """The parts of one event; a malformed event is an error part (it ends the stream)."""
        self._events += 1
        try:
            return self._reader.read_data(data, type_)  # type: ignore[union-attr]
        except _INPUT_ERRORS as exc:
            logger.warning("malformed upstream event: %s", exc.__class__.__name__)
            return (
                _error("malformed_upstream_event", f"malformed upstream event: {_describe(exc)}"),
            )

    def _apply(self, parts: Iterable[Part], out: list[bytes]) -> None:
        """Fold ``parts`` into the content and write them, until one ends the stream."""
        writer = self._writer
        assert writer is not None
        content = self.content
        special = self._special
        try:
            for part in parts:
                kind = type(part)  # parts are final classes: ``is`` and ``in`` do for isinstance
                if kind in special:
                    if kind is TextRun or kind is ArgumentsRun:
                        self._apply_run(part, out)  # type: ignore[arg-type]
                        continue
                    if kind is StreamError:
                        self._end_with_error(part, "failed", out)  # type: ignore[arg-type]
                        return
                    if kind is Done:
                        self._done(out)
                        return
                    if kind is Unrepresentable:
                        if self._unrepresentable(part, out):  # type: ignore[arg-type]
                            return
                        continue
                    if kind is not ToolCallStart:
                        continue  # reasoning dropped
                    part = self._named(part)  # type: ignore[arg-type]
                content.add(part)
                writer.write(part, out)
        except Unwritable as exc:
            self._events -= exc.unread
            self._end_with_error(exc.error, "failed", out)

    def _named(self, part: ToolCallStart) -> ToolCallStart:
        """``part`` with its tool's name as the client knows it (``tool_names``)."""
        names = self._tool_names
        name = names.get(part.name) if names is not None else None
        return part if name is None else replace(part, name=name)

    def _unrepresentable(self, part: Unrepresentable, out: list[bytes]) -> bool:
        """End the stream for ``part`` (``True``), unless its choice is one the client does not
        get anyway."""
        client = self.client_format
        if part.choice != 0 and not client.choices:
            return False
        what = f"the upstream answered with {part.what}, which {client.name} clients cannot receive"
        self._end_with_error(_error("unsupported_upstream_output", what), "failed", out)
        return True

    def _apply_run(self, run: TextRun | ArgumentsRun, out: list[bytes]) -> None:
        """A run: whole, if the writer writes runs; else as its single parts."""
        writer = self._writer
        assert writer is not None
        if self._writes_runs:
            self.content.add(run)
            writer.write_run(run, out)
            return
        deltas: list[Part]
        if isinstance(run, TextRun):
            deltas = [text_delta(text, run.choice) for text in run.texts]
        else:
            deltas = [ToolCallDelta(run.index, f, run.choice) for f in run.fragments]
        for delta in deltas:
            self.content.add(delta)
            writer.write(delta, out)

    def _done(self, out: list[bytes]) -> None:
        """The upstream's explicit end of stream."""
        content = self.content
        content.done = True
        if not content.finished:
            # The upstream said it ended normally without a finish reason: end_turn.
            logger.info("upstream ended without a finish reason; treating it as end_turn")
            for choice in list(content.choices) or [0]:
                if content.choice(choice).finish_reason is None:
                    self._apply([Finish("end_turn", choice=choice)], out)
            if self.ended:  # the writer refused the finish (``Unwritable``)
                return
        self._finish_normally(out)

    def _finish_normally(self, out: list[bytes]) -> None:
        if not self.identity:
            self._writer.end(out)  # type: ignore[union-attr]
        self._end("complete")

    def _end_with_error(self, error: StreamError, outcome: Outcome, out: list[bytes]) -> None:
        writer = self._get_writer()
        self.content.error = error
        self._error = error
        if self._visible_errors and not self.identity:
            # Only the text is added: whatever the error interrupted stays unfinished, as without
            # it (the writer knows how its format shows text next to an open tool call).
            writer.error_text(f"\n\n[error: {error.message}]", out)
        writer.error(error, out)
        self._end(outcome)
        if outcome == "truncated":
            logger.warning("stream truncated: %s", error.message)
        else:
            logger.warning("stream failed: %s", error.message)

    # -- identity ---------------------------------------------------------------------------

    def _feed_identity(self, data: bytes) -> bytes:
        """Identity before its first chunk went out, or with ``collect_response`` (then it decodes
        only to build the response): frame and observe."""
        framer = self._framer
        assert framer is not None
        try:
            joined = framer.feed_joined(data)
        except EventTooLarge as exc:
            return self._identity_overflow(exc)
        if joined:
            if self._passthrough:  # its first chunk: from now on, ``feed``'s hot path
                self._head = self._last = joined
                self._hot = True
            else:
                self._observe_identity(joined)
        return joined

    def _identity_overflow(self, exc: EventTooLarge) -> bytes:
        """An upstream event over the size bound: what was whole goes out, then the tail."""
        head = exc.complete[0] if exc.complete else b""
        assert isinstance(head, bytes)
        if head:
            self._observe_identity(head)
        return head + self._end_identity(
            _error("upstream_event_too_large", f"upstream event larger than {exc.limit} bytes")
        )

    def _observe_identity(self, joined: bytes) -> None:
        if not self._head:
            self._head = joined
        self._previous = self._last
        self._last = joined
        if self._decoder is not None:
            # collect_response: decode only to build the final response.
            try:
                events = self._decoder.feed(joined)
                self._events += len(events)
                self._collect_identity(events)
            except _INPUT_ERRORS:
                self._decoder = None

    def _collect_identity(self, events: list[ServerSentEvent]) -> None:
        assert self._reader is not None
        for event in events:
            for part in self._reader.read(event):
                if isinstance(part, StreamError):
                    self.content.error = part
                elif isinstance(part, Done):
                    self.content.done = True
                else:
                    self.content.add(part)

    def _identity_used_ids(self) -> bool:
        # Servers that use ids put them on every event, or at least on the first one.
        if self._decoder is not None:
            return self._decoder.last_event_id not in (None, "")
        if self._last is self._ids_checked:
            return False  # nothing new since the last heartbeat looked
        self._ids_checked = self._last
        return any(b"id:" in chunk for chunk in (self._head, self._previous, self._last))

    def _identity_ending(self) -> tuple[bool, bool, StreamError | None]:
        """Whether the stream passed through finished, was terminated, or failed.

        Decodes only the last two event chunks with the format's own reader (whole events, so
        text that merely looks like a terminator never counts), unless everything was decoded.
        """
        if self._decoder is not None:
            content = self.content
            return content.finished or content.done, content.done, content.error
        # The usual case, settled without decoding: the last event is the terminator and the one
        # before it is no error event (OpenAI upstreams end errors with [DONE]). First in the
        # exact bytes the APIs send (a whole block: the chunk starts there or a LF LF ends the
        # block before), then, for other spellings, by its first line.
        chunk = self._last
        terminator = self.upstream_format.terminator
        if terminator and chunk.endswith(terminator):
            end = len(chunk) - len(terminator)
            if end == 0 or chunk.endswith(b"\n\n", 0, end):
                return self._terminated_after(end)
        last = tail_blocks(chunk, 1)
        for prefix in self.upstream_format.terminator_prefixes:
            if last.startswith(prefix) and last[len(prefix) : len(prefix) + 1] in (b"\n", b"\r"):
                return self._terminated_after(len(chunk) - len(last))
        return self._decoded_ending()

    def _decoded_ending(self) -> tuple[bool, bool, StreamError | None]:
        """``_identity_ending`` read from the last events decoded with the format's reader."""
        finished = done = False
        error: StreamError | None = None
        reader = self.upstream_format.reader()
        # How a stream ends is said by its last few events (finish, usage, terminator).
        tail = tail_blocks(self._last, 4)
        if tail is self._last and self._previous:  # fewer than 4 events in the last chunk
            tail = tail_blocks(self._previous + self._last, 4)
        for event in SSEDecoder(max_event_size=None).feed(tail):
            try:
                parts = reader.read(event)
            except _INPUT_ERRORS:
                continue
            for part in parts:
                if isinstance(part, StreamError):
                    error = part
                elif isinstance(part, Finish):
                    finished = True
                elif isinstance(part, Done):
                    done = True
        # With n > 1 a finish counts only if no choice seen in these events is still open.
        return done or (finished and reader.complete()), done, error

    def _terminated_after(self, end: int) -> tuple[bool, bool, StreamError | None]:
        """``_identity_ending`` for a stream whose last event is its terminator, starting at
        ``end`` in the last chunk: complete unless the event before it was an error event."""
        if end:
            # The block before, searched in place: from the LF LF before it, or the chunk's
            # start (maybe earlier, with CR line ends, which only makes the test stricter).
            chunk = self._last
            start = chunk.rfind(b"\n\n", 0, end - 1)
            begin = start + 2 if start >= 0 else 0
        else:
            chunk = tail_blocks(self._previous, 1)
            begin, end = 0, len(chunk)
        # A block that is no event (a keep-alive comment, a blank line, ``retry:`` or ``id:``
        # alone) between an error event and the terminator hides the error from this look:
        # the events are then read.
        unsure = chunk.find(b"error", begin, end) >= 0 or not chunk.startswith(
            (b"data:", b"event:"), begin
        )
        return self._decoded_ending() if unsure else (True, True, None)

    def _close_identity(self) -> bytes:
        framer = self._framer
        assert framer is not None
        framer.close()  # an unterminated tail is dropped: clients would discard it too
        return self._end_identity(None)

    def _end_identity(self, failure: StreamError | None) -> bytes:
        """End a passthrough stream: nothing more, its missing terminator, or the error tail."""
        finished, done, upstream_error = self._identity_ending()
        fmt = self.client_format
        if upstream_error is not None:
            # The upstream's own error event went through; add only what this client still needs.
            self._end("failed")
            self._error = self.content.error = upstream_error
            logger.warning("stream failed: upstream reported an error")
            return fmt.terminator if self._options.done_after_error and not done else b""
        if done or (finished and failure is None):
            # A clean close after the finish reason is complete (its missing terminator is
            # added); a failure counts as complete only once the terminator itself went out.
            self._end("complete")
            if not done:
                logger.info("upstream ended after its finish reason but without its terminator")
                return fmt.terminator
            return b""
        outcome: Outcome = "truncated" if failure is None else "failed"
        error = failure or _error(
            "stream_truncated", "upstream stream ended before it finished (truncated)"
        )
        if fmt.resume_error is not None:
            # The tail must continue the upstream's own stream (its ids and counters).
            self._error = self.content.error = error
            self._end(outcome)
            logger.warning("stream %s: %s", outcome, error.message)
            return fmt.resume_error(error, self._head, self._previous + self._last, self._options)
        out: list[bytes] = []
        self._end_with_error(error, outcome, out)
        return b"".join(out)


_SPECIAL: frozenset[type[Part]] = frozenset(
    {StreamError, Done, TextRun, ArgumentsRun, Unrepresentable}
)
_REASONING: frozenset[type[Part]] = frozenset(
    {ReasoningDelta, ReasoningSignature, RedactedReasoning}
)
# With ``tool_names``: the parts that carry a tool's name.
_RENAMED: frozenset[type[Part]] = frozenset({ToolCallStart})


# From this size on, a read is worth looking for a run at its start (``Reader.read_blocks``).
_BLOCK_READ = 512


_Settings = tuple[bool, str, bool, bool]
_SHARED_OPTIONS: dict[_Settings, WriterOptions] = {}
_SHARED_OPTIONS_KEPT = 64
# The options last built with an explicit clock or id factory: its settings, clock, id factory
# (compared by identity). A caller passing the same functions to every adapter shares one too;
# one entry, so no caller's functions are kept beyond the next adapter's.
_last_explicit: tuple[_Settings, object, object, WriterOptions] | None = None


def _format(fmt: str | Format) -> Format:
    """A format by its registered name, or one given as it is (a variant the registry does not
    name, such as ``anthropic_text.FORMAT_2023_01_01``)."""
    return fmt if isinstance(fmt, Format) else get_format(fmt)


def _writer_options(
    include_usage: bool,
    reasoning_field: str,
    done_after_error: bool,
    native_keepalive: bool,
    clock: Callable[[], float] | None,
    id_factory: Callable[[], str] | None,
) -> WriterOptions:
    """The ``WriterOptions`` for these settings: one shared by every adapter built with the same
    settings (a shell builds one per stream, an open stream holds it, and building the frozen
    dataclass costs as much as a third of an identity adapter's construction)."""
    global _last_explicit
    key = (include_usage, reasoning_field, done_after_error, native_keepalive)
    if clock is not None or id_factory is not None:
        last = _last_explicit
        if last is not None and last[1] is clock and last[2] is id_factory and last[0] == key:
            return last[3]
        options = WriterOptions(*key, clock if clock is not None else _now, id_factory)
        _last_explicit = (key, clock, id_factory, options)
        return options
    shared = _SHARED_OPTIONS.get(key)
    if shared is None:
        shared = WriterOptions(*key, _now, None)
        if len(_SHARED_OPTIONS) < _SHARED_OPTIONS_KEPT:
            _SHARED_OPTIONS[key] = shared
    return shared


# Chat delta fields with a meaning of their own (formats.md §2.1): reasoning text written into
# one would be read as the answer, the role, a refusal, or (the list- and object-valued ones) break
# the clients that read them.
_CHAT_DELTA_FIELDS = frozenset(
    {
        "role",
        "content",
        "refusal",
        "tool_calls",
        "function_call",
        "audio",
        "annotations",
        "reasoning_details",
        "thinking_blocks",
    }
)


def check_reasoning_options(reasoning: object, name: object) -> None:
    """Refuse a ``reasoning`` mode other than ``"emit"``/``"drop"`` and a ``reasoning_field`` that
    is no field name or one the Chat delta already uses (``ValueError``). The shells call it at
    construction, so a misconfiguration fails at startup rather than on each request."""
    if reasoning not in ("emit", "drop"):
        raise ValueError("reasoning must be 'emit' or 'drop'")
    if name == "reasoning_content":
        return  # the default (the usual case: no more to check)
    if not isinstance(name, str) or not name:
        raise ValueError(f"reasoning_field must be a non-empty string, not {name!r}")
    if name in _CHAT_DELTA_FIELDS:
        raise ValueError(
            f"reasoning_field {name!r} is a Chat delta field of its own; use a field the "
            "delta does not otherwise carry, such as 'reasoning_content' or 'reasoning'"
        )


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
