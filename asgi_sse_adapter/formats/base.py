"""What a format module provides, and the helpers every format shares.

A format is one module that knows everything about its wire shape: a ``Reader`` (upstream events
→ canonical parts), a ``Writer`` (parts → client events, strict), the final-response renderer,
and the error envelopes (in-band and before the stream). It registers a ``Format`` in
``formats/__init__.py``; nothing else needs to change to add one.
"""

from __future__ import annotations

import logging
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from .._json import decode_strings, dump_strings, dumps_lenient, loads, loads_fallback
from ..content import Content
from ..parts import (
    ArgumentsRun,
    Done,
    Part,
    StreamError,
    TextDelta,
    TextRun,
    ToolCallDelta,
    text_delta,
)
from ..sse import ServerSentEvent

__all__ = [
    "ERROR_STATUS",
    "CallQueue",
    "Format",
    "JSONReader",
    "MalformedEvent",
    "Reader",
    "Unwritable",
    "Writer",
    "WriterOptions",
    "as_dict",
    "as_int",
    "as_str",
    "as_timestamp",
    "block_strings",
    "check_response",
    "detail_message",
    "frame",
    "frame_strings",
    "string_bodies",
    "strip_prefix",
    "text_message",
]

logger = logging.getLogger("asgi_sse_adapter")


class MalformedEvent(ValueError):
    """An upstream event that cannot be read (bad JSON, a payload of the wrong shape)."""


def check_response(response: dict[str, Any], key: str, kind: type, what: str) -> dict[str, Any]:
    """For ``response_parts``: ``response`` to read, if it has its format's ``key`` of type
    ``kind`` or is an error body (a bare ``{"error": "text"}`` given the object form every
    reader knows); else ``MalformedEvent``. A 2xx answer of another shape (an upstream path
    that names another endpoint) must not read as an empty, complete answer."""
    if isinstance(response.get(key), kind):
        return response
    error = response.get("error")
    if isinstance(error, str) and error:
        return {"error": {"type": "api_error", "message": error}}
    if isinstance(error, dict) or response.get("type") == "error":
        return response
    raise MalformedEvent(f"not {what} (no {key})")


class Unwritable(Exception):
    """A writer's refusal of a part its client would fail on (tool arguments that can no
    longer become JSON, for a client that parses every prefix): the adapter ends the stream
    with ``error``'s tail, the events written before it sent. ``unread``: the events of a run
    after the refused one, which a read event by event would never have read."""

    def __init__(self, error: StreamError, unread: int = 0) -> None:
        super().__init__(error.message)
        self.error = error
        self.unread = unread


@dataclass(frozen=True, slots=True)
class WriterOptions:
    """Per-stream settings a writer needs. Built by ``StreamAdapter`` from its options
    (immutable: adapters built with the same settings share one)."""

    include_usage: bool = False
    reasoning_field: str = "reasoning_content"
    done_after_error: bool = True
    native_keepalive: bool = False
    clock: Callable[[], float] = field(default=time.time)
    id_factory: Callable[[], str] | None = None
    input_tokens_estimate: int | None = None

    def new_id(self) -> str:
        """A fresh unique token (without prefix) from ``id_factory``, or a random one."""
        if self.id_factory is not None:
            return self.id_factory()
        import uuid

        return uuid.uuid4().hex[:24]

    def now(self) -> int:
        """Seconds since the epoch, from ``clock``, as an integer."""
        return int(self.clock())


class Reader(ABC):
    """Turns one format's upstream events into canonical parts. Lenient: skips what it does not
    know (logging at debug), turns in-band errors into ``StreamError``, never a normal stop."""

    def read(self, event: ServerSentEvent) -> list[Part]:
        """Parts for one upstream event; raise ``MalformedEvent`` for unreadable input."""
        return self.read_data(event.data, event.event)

    @abstractmethod
    def read_data(self, data: str, event: str | None) -> list[Part]:
        """``read`` for an event given by its ``data`` and ``event`` fields alone (the
        translation path decodes events as columns, without a ``ServerSentEvent`` each)."""

    def end(self) -> list[Part]:
        """Parts owed at upstream end of stream (most formats owe none): at its close, or
        before the ``Done`` of its terminator (``JSONReader``)."""
        return []

    def read_text_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[list[str], int]:
        """The texts of the plain text deltas among the events (``data`` and type columns, as
        ``SSEDecoder.feed_fields`` gives them) from ``start`` on, up to the first other event, and
        the index after them.

        For readers that recognise a text delta without reading it whole (the adapter then
        hands on one ``TextRun`` for them). Every event it counts must be one ``read_data``
        turns into ``[TextDelta(text)]`` or, for an empty text, ``[]``; the texts leave out
        the empty ones. The adapter calls it only on readers that override it."""
        return [], start

    def read_arguments_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[ArgumentsRun | None, int]:
        """The argument fragments of one started call among the events from ``start`` on, up to
        the first other event, as one run (``None`` if all were empty), and the index after
        them: ``read_text_run`` for tool calls. Every event it counts must be one ``read_data``
        turns into ``[ToolCallDelta(run.index, fragment)]`` or, for an empty fragment, ``[]``.
        The adapter calls it only on readers that override it."""
        return None, start

    def read_blocks(self, text: str) -> tuple[TextRun | ArgumentsRun | None, int, int]:
        """``read_text_run`` or ``read_arguments_run`` for the events of the raw blocks ``text``
        (complete SSE blocks, decoded, LF line ends: ``SSEDecoder.feed_text``) starts with,
        without parsing them as SSE first: the run (``None`` if all were empty), how many events
        it read, and where in ``text`` they end (``0``: none; the adapter parses the rest).

        For readers that know the exact lines their upstream sends for those events: every block
        it takes must parse as one event that ``read_text_run`` or ``read_arguments_run`` would
        take in the same way. The adapter calls it only on readers that override it."""
        return None, 0, 0

    def read_text_block(self, block: bytes) -> str | None:
        """The text of a read (undecoded bytes, nothing pending before it:
        ``SSEDecoder.idle_for``) if it is exactly one whole event block in the bytes the
        upstream sends for a text delta of choice 0, without parsing it as SSE (``""``: an empty
        delta); else ``None`` (the adapter parses it). For that block's one parsed event
        ``read_data`` must return ``[TextDelta(text)]`` (``[]`` for ``""``): the usual read of a
        live stream (one event per read) then costs a few byte tests. The adapter calls it only
        on readers that override it."""
        return None

    def read_arguments_block(self, block: bytes) -> ToolCallDelta | None:
        """``read_text_block`` for a (non-empty) argument fragment of a tool call: the part
        ``read_data`` returns for that block's one parsed event, with the same effect on the
        reader, or ``None`` (the adapter parses it)."""
        return None

    def complete(self) -> bool:
        """Whether every choice the upstream opened has finished, including choices that never
        produced content (formats without choices: always)."""
        return True


class JSONReader(Reader):
    """A reader for formats whose events each carry one JSON object (all five): the envelope
    that every such event shares, then ``read_object`` for the format's own meaning."""

    done_ends_stream: ClassVar[bool] = True
    """Whether ``data: [DONE]`` is this format's end of stream (otherwise it is foreign to the
    format and skipped: the format's own terminal event says how the stream ended)."""

    def read_data(self, data: str, event: str | None) -> list[Part]:
        if data.startswith("[DONE]"):
            # The end of stream: what the reader still holds comes first (``end``).
            return [*self.end(), Done()] if self.done_ends_stream else []
        if not data or data.isspace():
            return []
        try:
            obj = loads(data)
        except ValueError:
            # orjson refuses JSON the standard library (and so the client SDKs) reads, a lone
            # surrogate escape among it: the ``fast`` extra must not make such an event
            # malformed (``_json``). The readers' shortcuts that decode only a string give up
            # on such an event, so it always reaches this point.
            obj = loads_fallback(data)
        if not isinstance(obj, dict):
            raise MalformedEvent(f"{type(self).__name__}: the event is not a JSON object")
        return self.read_object(obj, event)

    @abstractmethod
    def read_object(self, obj: dict[str, Any], event: str | None = None) -> list[Part]:
        """Parts for one decoded event (``event``: its ``event:`` line, if any); also used for
        whole non-streamed responses."""


class CallQueue:
    """For writers whose format shows one call at a time (Messages blocks, Responses items):
    what waits for the open call to end, in arrival order. A call that starts while another is
    open waits with all its parts (interleaved parallel calls from a Chat upstream); text and
    reasoning that arrive meanwhile wait too (closing the open call for them would cut its
    arguments), in entries of their own."""

    __slots__ = ("_entries", "_held")

    def __init__(self) -> None:
        # Calls by their index; held content under negative keys (dicts keep insertion order).
        self._entries: dict[int, list[Any]] = {}
        self._held = 0

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __contains__(self, index: int) -> bool:
        """Whether the call with this index waits."""
        return index in self._entries

    def add_call_part(self, index: int, part: Any) -> None:
        """Queue a part of call ``index`` (its start first)."""
        self._entries.setdefault(index, []).append(part)

    def hold(self, item: Any) -> None:
        """Queue content: after the last entry if that is held content too, else as a new one."""
        key = next(reversed(self._entries), 0) if self._entries else 0
        if key >= 0:
            self._held -= 1
            key = self._held
            self._entries[key] = []
        self._entries[key].append(item)

    def pop(self) -> tuple[bool, list[Any]]:
        """The earliest entry: whether it is a call, and its parts (or held items)."""
        key = next(iter(self._entries))
        return key >= 0, self._entries.pop(key)

    def clear(self) -> None:
        self._entries.clear()


class Writer(ABC):
    """Turns canonical parts into one format's client events, under its valid-stream contract.

    Every method appends encoded events to ``out``. The adapter guarantees the order: any number
    of ``write`` calls, then exactly one of ``end`` (normal end) or ``error`` (the error tail,
    maybe just after ``error_text``).
    ``content`` is the stream's accumulated content, already updated with the part being written
    (``error_text`` excepted: it folds in its text itself, only if it writes it).
    """

    def __init__(self, options: WriterOptions, content: Content) -> None:
        self.options = options
        self.content = content

    @abstractmethod
    def write(self, part: Part, out: list[bytes]) -> None:
        """Emit whatever ``part`` calls for now (possibly nothing: writers may hold events)."""

    def write_run(self, run: TextRun | ArgumentsRun, out: list[bytes]) -> None:
        """``write`` of each text of ``run`` as a ``TextDelta`` (each fragment as a
        ``ToolCallDelta``), in fewer steps, for writers that override it (``content`` then
        already holds the whole run). The adapter calls it only on those: others get the run as
        single parts, ``content`` updated before each."""
        raise NotImplementedError

    def write_text(self, text: str) -> bytes:
        """``write`` of ``TextDelta(text)`` (choice 0), returned (``content`` already holds
        it): the adapter's one-event read path. Writers override it with a shorter way to the
        same bytes."""
        out: list[bytes] = []
        self.write(text_delta(text), out)
        return out[0] if len(out) == 1 else b"".join(out)

    def error_text(self, text: str, out: list[bytes]) -> None:
        """The error message as a last text delta (``visible_errors``), just before ``error``:
        folded into ``content`` and written as ``TextDelta(text)``, unless this writer cannot
        show it without finishing something the error interrupted (then nothing: the error
        event carries the message anyway). Visible or not, an error leaves an interrupted tool
        call unfinished (no done or stop event for it): clients treat a finished call as one to
        run, and its arguments were cut."""
        part = TextDelta(text)
        self.content.add(part)
        self.write(part, out)

    @abstractmethod
    def end(self, out: list[bytes]) -> None:
        """Normal end: flush held events and the format's terminal events."""

    @abstractmethod
    def error(self, error: StreamError, out: list[bytes]) -> None:
        """The error tail: how a mid-stream failure looks to this client."""

    def keepalive(self) -> bytes | None:
        """A native keep-alive event valid at this point, or ``None`` to use a comment."""
        return None

    @abstractmethod
    def response(self) -> dict[str, Any]:
        """The non-streamed response object this format's API would have returned."""


@dataclass(frozen=True, slots=True)
class Format:
    """A registered wire format."""

    name: str
    family: Literal["openai", "anthropic"]
    reader: Callable[[], Reader]
    writer: Callable[[WriterOptions, Content], Writer]
    error_body: Callable[[StreamError], tuple[int, dict[str, Any]]]
    """Non-streaming error JSON and HTTP status for this client format."""
    parse_error_body: Callable[[int, Any], StreamError]
    """Read this format's non-2xx error body (already JSON-decoded, or raw text) as an error."""
    endpoint: str
    """The API path this format is served on (``/v1/chat/completions``…)."""
    terminator: bytes = b""
    """The format's end-of-stream event, appended in identity mode when the upstream finished
    but closed without it (``data: [DONE]``, ``message_stop``)."""
    terminator_prefixes: tuple[bytes, ...] = ()
    """How a raw terminator event starts (``data: [DONE]``, ``event: message_stop``): lets
    identity mode recognise a normal end from the last block alone, without decoding."""
    resume_error: Callable[[StreamError, bytes, bytes, WriterOptions], bytes] | None = None
    """Identity-mode error tail for formats whose tail must continue the upstream's own stream
    (Responses: its response id and sequence numbers), from the first and the last raw event
    chunks passed through; ``None``: the writer's ``error``."""
    done_after_error: bool = False
    """Default for ``data: [DONE]`` after the error tail (on for Chat and Completions clients;
    foreign to Messages and Responses streams, formats.md §9.3)."""
    response_parts: Callable[[dict[str, Any]], list[Part]] | None = None
    """A non-streamed response of this format as canonical parts (for translating JSON replies:
    the client format's writer then renders them with ``response()``)."""
    choices: bool = False
    """Whether the format carries ``n > 1`` choices (its writer drops choices other than 0 if
    not)."""


# Anthropic error type → (status to Anthropic clients, status to OpenAI clients, OpenAI code)
# (formats.md §9.4).
ERROR_STATUS: Mapping[str, tuple[int, int, str | None]] = {
    "invalid_request_error": (400, 400, None),
    "authentication_error": (401, 401, "invalid_api_key"),
    "permission_error": (403, 403, None),
    "not_found_error": (404, 404, "model_not_found"),
    "request_too_large": (413, 413, None),
    "rate_limit_error": (429, 429, "rate_limit_exceeded"),
    "api_error": (500, 500, "server_error"),
    "overloaded_error": (529, 503, "overloaded"),
    "billing_error": (402, 402, None),
    "conflict_error": (409, 409, None),
}


#: The longest upstream text (a plain-text error body, a ``detail``) quoted in a message.
MAX_QUOTED = 300


def detail_message(detail: Any) -> str | None:
    """The message of FastAPI's ``{"detail": ...}``: the string, or a validation error list
    as ``loc: msg`` entries (bounded)."""
    if isinstance(detail, str):
        return detail[:MAX_QUOTED] or None
    if not isinstance(detail, list):
        return None
    entries = []
    for item in detail[:10]:
        if isinstance(item, dict) and isinstance(item.get("msg"), str):
            loc = item.get("loc")
            where = ".".join(str(x) for x in loc) if isinstance(loc, list) else ""
            entries.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(entries)[:MAX_QUOTED] or None


def text_message(status: int, body: Any) -> str:
    """The message for a non-JSON error body: a short plain text is quoted; anything else
    (an HTML error page, a long or binary body) is described, never copied (formats.md §9.2)."""
    if not isinstance(body, str):
        return f"upstream returned HTTP {status} (a JSON body that is not an error object)"
    text = body.strip()
    if not text:
        return f"upstream returned HTTP {status} (empty body)"
    plain = text.replace("\r", " ").replace("\n", " ").replace("\t", " ")
    if len(text) <= MAX_QUOTED and plain.isprintable() and not _MARKUP.search(text):
        return text
    return f"upstream returned HTTP {status} (non-JSON body, {len(body.encode())} bytes)"


_MARKUP = re.compile(r"<[A-Za-z!?/]")


def frame(payload: Any, event: str | None = None) -> bytes:
    """One SSE event holding ``payload`` as compact one-line JSON (``event:`` line if named)."""
    data = dumps_lenient(payload)  # (what orjson refuses is written as without it: ``_json``)
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


def frame_strings(head: bytes, strings: Sequence[str], tail: bytes) -> bytes:
    """The events ``head + dumps(s) + tail`` for each of ``strings``, as one piece, the strings
    encoded in one call (``dump_strings``): how writers write a run."""
    glue = b'"' + tail + head + b'"'
    text = "".join(strings)
    if '"' not in text and "\\" not in text and text.isprintable():
        # Most runs: no string holds anything JSON escapes, so each encodes as itself (NUL,
        # which no printable text holds, marks where the strings meet).
        encoded = "\x00".join(strings).encode().replace(b"\x00", glue)
    else:
        encoded = glue.join(dump_strings(strings))
    return b"".join((head, b'"', encoded, b'"', tail))


def string_bodies(values: Sequence[str], start: int, head: str, tail: str) -> list[str]:
    """The string bodies, still encoded, of the values from ``values[start]`` on that are
    ``head`` (ending with a string's opening quote), a body, then ``tail`` (starting with its
    closing quote): up to the first value that is not. How readers gather a run."""
    size = len(head)
    least = size + len(tail)  # shorter, the tail would overlap the head's quote
    cut = -len(tail)
    bodies: list[str] = []
    for data in values[start:] if start else values:
        if not (data.startswith(head) and data.endswith(tail) and len(data) >= least):
            break
        bodies.append(data[size:cut])
    return bodies


def block_strings(text: str, head: str, tail: str) -> tuple[list[str], int]:
    """The strings of the blocks ``text`` (complete SSE blocks, LF line ends) starts with that
    are exactly ``head`` (whole lines, then a last line up to a string's opening quote), the
    inside of a JSON string literal, ``tail`` (from the closing quote to the line's end) and the
    blank line, decoded (``decode_strings``); up to the first block that is not; and where in
    ``text`` they end. How readers read a run straight from raw blocks: parsed as SSE, each such
    block is one event whose ``data`` is the head's last line after ``data: ``, the string
    literal and the tail.

    ``text`` is cut wherever a ``tail`` and blank line meet the next ``head``. A cut holds LF LF,
    which no line does, so it falls at a block boundary, and a piece between two cuts is one
    block's string body unless it holds a LF: then other blocks follow its block inside it. No
    JSON string holds a raw LF, so decoding stops at such a piece without a search of its own;
    its own block is then cut out of it. The last piece always runs on to the end of ``text``.
    """
    if not text.startswith(head):
        return [], 0
    bodies = text.split(tail + "\n\n" + head)
    if len(bodies[0]) < len(head):
        # The first block is the head with its closing quote and tail sharing the head's
        # opening quote (``"text":"}}``): the first cut took that quote. No string there.
        return [], 0
    bodies[0] = bodies[0][len(head) :]
    if not _cut_body(bodies, len(bodies) - 1, tail):
        bodies.pop()
    strings = decode_strings(bodies)
    count = len(strings)
    if count < len(bodies) and _cut_body(bodies, count, tail):
        last = decode_strings(bodies[count : count + 1])
        strings = strings + last
        count += len(last)
    size = sum(map(len, bodies if count == len(bodies) else bodies[:count]))
    return strings, size + count * (len(head) + len(tail) + 2)


def _cut_body(bodies: list[str], i: int, tail: str) -> bool:
    """Cut ``bodies[i]``, a piece holding its block and more, to its block's body if the block
    ends with its first line and that line with ``tail``; whether it did."""
    piece = bodies[i]
    end = piece.find("\n")
    if (
        end >= len(tail)
        and piece.startswith(tail, end - len(tail))
        and piece.startswith("\n\n", end)
    ):
        bodies[i] = piece[: end - len(tail)]
        return True
    return False


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else ``{}`` (readers are lenient about shapes)."""
    return value if isinstance(value, dict) else {}


def as_str(value: Any) -> str | None:
    """``value`` if it is a string, else ``None``."""
    return value if isinstance(value, str) else None


_INT64 = 1 << 63


def as_int(value: Any) -> int | None:
    """``value`` if it is an integer (not a bool) that every client can hold (64 bits), else
    ``None``: a count or index beyond that is nonsense, and JSON libraries refuse to write it."""
    if isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64:
        return value
    return None


def as_timestamp(value: Any) -> int | None:
    """A Unix time in whole seconds from an int or finite float, else ``None`` (``1e999``,
    ``NaN`` and booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    seconds = int(value)
    return seconds if 0 <= seconds < _INT64 else None


def strip_prefix(value: str | None, prefix: str) -> str | None:
    """``value`` without ``prefix`` (ids are stored prefix-free in the canonical model)."""
    if value is not None and value.startswith(prefix) and len(value) > len(prefix):
        return value[len(prefix) :]
    return value
