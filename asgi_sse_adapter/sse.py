"""Server-Sent Events codec: bytes to events and back, incremental and without I/O.

Implements WHATWG HTML §9.2.5-§9.2.6 "Parsing an event stream" (the reference is quoted in
``shared/reference/sse-and-asgi.md`` §1):

- a line ends at CRLF, at a lone LF, or at a lone CR; a CR ending one ``feed`` ends its line at
  once and a LF starting the next ``feed`` is swallowed, so a split CRLF counts once (the raw
  framer passes that LF on: its output keeps the upstream's bytes);
- one leading U+FEFF BOM is stripped, even when it arrives split across feeds;
- the stream is decoded as UTF-8 with invalid sequences replaced by U+FFFD; byte framing is safe
  because UTF-8 never puts CR or LF inside a multi-byte sequence;
- field = text before the first colon, value = the rest minus one leading space; a line without a
  colon is a field with an empty value; lines starting with a colon are comments;
- ``data`` values are joined with LF, ``id`` is ignored when it contains NUL and persists across
  events, ``retry`` counts only when it is all ASCII digits;
- a blank line dispatches the event unless no ``data`` line was seen;
- an unterminated event at end of stream is discarded (``truncated`` tells the caller).

Cost is linear in the bytes received: the buffer remembers how far it has searched and each byte
is copied a bounded number of times. Memory is bounded by ``max_event_size``.
"""

from __future__ import annotations

import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter

from .errors import EventTooLarge

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "SSEDecoder",
    "SSEFramer",
    "ServerSentEvent",
    "encode_comment",
    "encode_event",
    "tail_blocks",
]

DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
"""Default bound on one event's raw size in bytes (1 MiB)."""

# From this size on, a completed pending event leaves the framing as the buffer itself.
_HANDOVER = 64 * 1024
# From this size on, a pending event is kept as a list of blocks (see ``_Framing._park``).
_BLOCK = 64 * 1024

_BOM = b"\xef\xbb\xbf"
# Two consecutive line terminators end an event. A CR followed by LF is one terminator, so a lone
# CR only counts when no LF follows it in the buffer (a CR at the very end counts: the next
# feed's leading LF is then swallowed).
_TERMINATOR = rb"(?:\r\n|\r(?!\n)|\n)"
_BOUNDARY = re.compile(_TERMINATOR + _TERMINATOR)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_FORBIDDEN_IN_FIELD = re.compile(r"[\r\n\x00]")


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event.

    Fields:
        data: the ``data`` lines joined with LF.
        event: the event type, ``None`` when the block set none (a browser would say "message").
        id: the stream's last event ID at dispatch; it persists across events as the spec says.
        retry: the reconnection time in milliseconds set by this event's block, if any.
    """

    data: str
    event: str | None = None
    id: str | None = None
    retry: int | None = None


class _Framing:
    """Finds event boundaries in raw bytes: the part ``SSEFramer`` and ``SSEDecoder`` share.

    ``keep_split_lf`` (the framer): the LF completing a CRLF split across feeds is kept, at the
    start of the next region, rather than swallowed: passed on, the bytes stay the upstream's.
    """

    def __init__(self, max_event_size: int | None, *, keep_split_lf: bool = False) -> None:
        if max_event_size is not None and max_event_size < 1:
            raise ValueError("max_event_size must be positive or None")
        self._max = max_event_size
        # Pending bytes of the unfinished event. Invariant: it starts at a line start and never
        # with a terminator (blank lines there are released at once).
        self._buf = bytearray()
        # A large pending event in ``_take``'s fast path: blocks, then the rest in ``_buf``.
        self._parts: list[bytes] = []
        self._parts_len = 0
        # Offset into ``_buf`` before which no boundary can start any more.
        self._scan_from = 0
        self._has_cr = False
        self._skip_lf = False
        self._keep_split_lf = keep_split_lf
        self._at_start = True
        self._broken = False
        # Whether ``_take`` may use its fast path (see there); false until the start is behind.
        # With it and nothing pending (no ``_buf``, no ``_parts``), data ending with LF LF is
        # whole blocks as it is, and taking it would leave this state as it is (every LF LF ends
        # a block, whatever the line ends before it): ``SSEDecoder.idle_for`` and
        # ``StreamAdapter.passes`` test that without taking anything.
        self._lf_only = False
        self._limit = sys.maxsize if max_event_size is None else max_event_size
        # Set by ``_take`` when the pending event outgrew ``_max``; the caller raises.
        self._overflow = False

    def _take(self, data: bytes) -> bytes | bytearray:
        """Add ``data``; return every complete block so far (raw, concatenated), maybe ``b""``.

        When the unfinished event grows past the bound, the framing breaks and ``_overflow`` is
        set; the complete blocks found in the same call are still returned. A large pending event
        may come back as a ``bytearray`` the caller then owns.
        """
        if not self._lf_only or 0x0D in data:
            return self._take_general(data)
        # The common case inlined: LF line ends only, past the stream's start, no LF to swallow.
        # Every LF LF is then a boundary; the last one ends the complete part. The pending bytes
        # hold no boundary, so a new one ends in ``data`` (maybe straddling: LF | LF ``data``).
        buf = self._buf
        i = data.rfind(b"\n\n")
        if i >= 0:
            end = i + 2
        elif data[:1] == b"\n" and self._pending_ends_line():
            end = 1  # a blank line: ``data`` starts at a line start
        else:
            end = 0
        if end == 0:
            if self._parts or len(buf) + len(data) >= _BLOCK:
                self._park(data)
            else:
                buf += data
                self._scan_from = max(0, len(buf) - 2)
            if len(buf) + self._parts_len > self._limit:
                self._overflowed()
            return b""
        region: bytes
        if self._parts:
            region = b"".join([*self._parts, buf, data[:end]])
            self._parts.clear()
            self._parts_len = 0
            buf.clear()
        elif buf:
            region = bytes(buf) + data[:end]
            buf.clear()
        elif end == len(data):
            return data
        else:
            region = data[:end]
        self._scan_from = 0
        if end < len(data):
            buf += data[end:]
            if len(buf) > self._limit:
                self._overflowed()
        return region

    def _park(self, data: bytes) -> None:
        """Add ``data`` to a large pending event, kept as a list of blocks.

        Growing one buffer would have the allocator copy it again and again (and fault in fresh
        pages for each copy). Pieces of 1 KiB or more are kept as they are (no copy at all);
        smaller ones are gathered in ``_buf`` into blocks of ``_BLOCK`` bytes.
        """
        buf = self._buf
        if len(data) >= 1024:
            if buf:
                self._parts.append(bytes(buf))
                self._parts_len += len(buf)
                buf.clear()
            self._parts.append(bytes(data))  # no copy for ``bytes``; a copy of anything mutable
            self._parts_len += len(data)
        else:
            buf += data
            if len(buf) >= _BLOCK:
                self._parts.append(bytes(buf))
                self._parts_len += len(buf)
                buf.clear()

    def _pending_ends_line(self) -> bool:
        """Whether the pending bytes end with a LF (or there are none): a line start follows."""
        tail = self._buf or (self._parts[-1] if self._parts else b"\n")
        return tail[-1] == 0x0A

    def _consolidate(self) -> None:
        """Turn a pending event kept in blocks (see ``_park``) back into ``_buf`` alone."""
        if self._parts:
            buf = bytearray().join(self._parts)
            buf += self._buf
            self._buf = buf
            self._parts.clear()
            self._parts_len = 0
            self._scan_from = max(0, len(buf) - 2)

    def _take_general(self, data: bytes) -> bytes | bytearray:
        """``_take`` for every case: BOM, CR line ends, a LF to swallow, a broken framing."""
        if self._broken:
            return b""
        self._consolidate()
        if self._at_start:
            data = bytes(self._buf) + data
            self._buf.clear()
            if len(data) < 3 and _BOM.startswith(data):
                self._buf += data  # could still become a BOM: wait for more
                return b""
            self._at_start = False
            if data.startswith(_BOM):
                data = data[3:]
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A and not self._keep_split_lf:
                data = data[1:]
        if not data:
            self._lf_only = not (self._has_cr or self._skip_lf)
            return b""
        if not self._has_cr and 0x0D in data:
            self._has_cr = True

        buf = self._buf
        region: bytes | bytearray
        if buf:
            buf += data
            end = self._last_boundary(buf, self._scan_from)
            if end == 0:
                region = b""
            elif end == len(buf) and end >= _HANDOVER:
                region = buf
                buf = self._buf = bytearray()
            else:
                region = bytes(memoryview(buf)[:end])
                del buf[:end]
        else:
            end = self._last_boundary(data, 0)
            if end == len(data):
                region = data
            else:
                region = data[:end]
                buf += memoryview(data)[end:]
        self._scan_from = max(0, len(buf) - 2)
        if region and self._has_cr:
            # Only a CR that ended all the input so far may be half of a CRLF split across feeds:
            # with bytes pending after it, the next LF belongs to those.
            self._skip_lf = region[-1] == 0x0D and not buf
            self._has_cr = 0x0D in buf
        self._lf_only = not (self._has_cr or self._skip_lf)
        if len(buf) > self._limit:
            self._overflowed()
        return region

    def _overflowed(self) -> None:
        self._broken = True
        self._overflow = True
        self._lf_only = False
        self._buf.clear()
        self._parts.clear()
        self._parts_len = 0

    def _last_boundary(self, hay: bytes | bytearray, start: int) -> int:
        """Offset just past the last event boundary in ``hay``, or 0 when there is none.

        Every CR and LF from a line start on is (part of) a terminator, so two terminators in a
        row always contain LF LF, CR CR or LF CR. The boundary ends with the run of CR/LF bytes it
        sits in: the rest of that run is blank lines (a CR at the very end ends its line; the LF
        that may follow in the next feed is swallowed).
        """
        pos = hay.rfind(b"\n\n", start)
        if self._has_cr:
            pos = max(pos, hay.rfind(b"\r\r", start), hay.rfind(b"\n\r", start))
        if pos < 0:
            first = hay[0]
            if first != 0x0A and first != 0x0D:
                return 0
            pos = 0  # the buffer opens with a blank line
        else:
            pos += 2
        n = len(hay)
        while pos < n and (hay[pos] == 0x0A or hay[pos] == 0x0D):
            pos += 1
        return pos

    def _oversized(self, blocks: list[bytes]) -> int:
        """Index of the first block over the size bound, or -1."""
        if self._max is None:
            return -1
        for i, block in enumerate(blocks):
            if len(block) > self._max:
                return i
        return -1

    def _fail_on(self, complete: list[object]) -> EventTooLarge:
        assert self._max is not None
        self._broken = True
        self._overflow = False
        self._lf_only = False
        self._buf.clear()
        self._parts.clear()
        self._parts_len = 0
        return EventTooLarge(self._max, complete)

    def _close(self) -> bytes:
        """End of input: the unterminated tail (dropped from the buffer)."""
        self._consolidate()
        tail = bytes(self._buf)
        self._buf.clear()
        self._broken = True
        self._lf_only = False
        return tail


def _split_blocks(region: bytes) -> list[bytes]:
    """Split a region of complete blocks into single blocks, each ending with its blank line."""
    blocks: list[bytes] = []
    pos = 0
    n = len(region)
    lf_only = 0x0D not in region
    while pos < n:
        c = region[pos]
        if c == 0x0A:
            end = pos + 1
        elif c == 0x0D:
            end = pos + 2 if region[pos + 1 : pos + 2] == b"\n" else pos + 1
        elif lf_only:
            end = region.index(b"\n\n", pos) + 2
        else:
            m = _BOUNDARY.search(region, pos)
            assert m is not None
            end = m.end()
        blocks.append(region[pos:end])
        pos = end
    return blocks


def _lf_only(region: bytes | bytearray) -> bytes | bytearray:
    """``region`` with every line end (CRLF, CR) made LF."""
    return region.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def _normalise(region: bytes) -> str:
    return (_lf_only(region) if 0x0D in region else region).decode("utf-8", "replace")


def tail_blocks(region: bytes, count: int) -> bytes:
    """The last ``count`` event blocks of ``region``, a run of whole blocks such as
    ``SSEFramer.feed_joined`` returns (found by searching backwards: cost independent of the
    region's length). Lone blank lines count as blocks; the result may start a little earlier
    than needed, never later."""
    # Every LF LF ends a block, whatever the line ends: searching for it backwards finds at
    # least ``count`` blocks. Only where the found tail holds a CR may it hold more (a CR or
    # CRLF blank line ends blocks too): those are counted exactly.
    pos = len(region)
    for _ in range(count):
        i = region.rfind(b"\n\n", 0, pos - 1)
        if i < 0:
            pos = 0
            break
        pos = i + 2
    tail = region[pos:] if pos else region
    if 0x0D in tail:
        return b"".join(_split_blocks(tail)[-count:])
    return tail


class SSEFramer:
    """Raw framing for passthrough: whole event blocks out, fields never decoded.

    Same line-end, BOM and size rules as ``SSEDecoder``, at the speed of a byte search. Blocks keep
    the upstream's bytes (line endings included); a lone blank line between events is a block of
    its own. A LF that completes a CRLF split across feeds comes first in the next result (a
    block of its own in ``feed``): the CR already ended the block that went out, and a WHATWG
    parser skips that LF, but parsers that hold a CR back until they see what follows it
    (eventsource-parser, in the Vercel AI SDK) would otherwise never end that block.
    """

    def __init__(self, *, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._framing = _Framing(max_event_size, keep_split_lf=True)
        self._truncated = False

    def feed(self, data: bytes) -> list[bytes]:
        """Return the raw blocks completed by ``data``, each ending with its blank line."""
        framing = self._framing
        region = framing._take(data)
        if isinstance(region, bytearray):  # a large pending event, now ours: hand out bytes
            region = bytes(region)
        if not region:
            if framing._overflow:
                raise framing._fail_on([])
            return []
        blocks = _split_blocks(region)
        if framing._max is not None and len(region) > framing._max:
            bad = framing._oversized(blocks)
            if bad >= 0:
                raise framing._fail_on(list(blocks[:bad]))
        if framing._overflow:
            raise framing._fail_on(list(blocks))
        return blocks

    def feed_joined(self, data: bytes) -> bytes:
        """Like ``feed`` but return the completed blocks as one ``bytes`` (the passthrough path)."""
        framing = self._framing
        region = framing._take(data)
        # The regular case (a ``bytes`` region within the bound, no overflow), tested inline;
        # ``StreamAdapter``'s identity hot path repeats this test around ``_take`` itself.
        if region.__class__ is bytes and not framing._overflow and len(region) <= framing._limit:
            return region
        return self._settle(region)

    def _settle(self, region: bytes | bytearray) -> bytes:
        """``feed_joined``'s result for a region ``_take`` returned outside the regular case:
        a large pending event handed out as ``bytes``, or ``EventTooLarge`` with the whole
        blocks before the oversized event."""
        framing = self._framing
        if isinstance(region, bytearray):  # a large pending event, now ours: hand out bytes
            region = bytes(region)
        if framing._max is not None and len(region) > framing._max:
            blocks = _split_blocks(region)
            bad = framing._oversized(blocks)
            if bad >= 0:
                done = b"".join(blocks[:bad])
                raise framing._fail_on([done] if done else [])
        if framing._overflow:
            raise framing._fail_on([region] if region else [])
        return region

    def close(self) -> bytes:
        """End of input: return the unterminated tail's raw bytes (``b""`` if none).

        The spec discards such a tail; the caller decides whether to forward or drop it.
        ``truncated`` is then ``True`` when the tail held an event that would have dispatched.
        """
        tail = self._framing._close()
        self._truncated = _has_dispatchable(tail)
        return tail

    @property
    def truncated(self) -> bool:
        """After ``close()``: whether an unterminated event with data was cut off."""
        return self._truncated


def _has_dispatchable(tail: bytes) -> bool:
    """Whether an unterminated tail holds a ``data`` field, i.e. would have fired an event."""
    if not tail:
        return False
    for line in _LINE_BREAK.split(_normalise(tail)):
        if line == "data" or line.startswith("data:"):
            return True
    return False


# From this size on, a read holding one ``data`` event has its value decoded straight out of the
# buffer (below it, decoding the block whole and slicing the text is cheaper).
_SLICED = 64 * 1024

_Columns = tuple[list[str], list[str | None] | None]
"""Events as two columns: ``data`` values, and types (``None``: no event had one)."""

_after_data: Callable[[str], str] = itemgetter(slice(6, None))  # a "data: X" line's X
_after_event: Callable[[str], str] = itemgetter(slice(7, None))  # an "event: E" line's E


def _lines(text: str) -> list[str]:
    """The lines of ``text`` (complete blocks, LF line ends), without the empty piece after the
    final terminator."""
    lines = text.split("\n")
    lines.pop()
    return lines


def _columns(region: bytes | bytearray | str) -> _Columns | str:
    """The events in ``region`` (complete blocks with LF line ends, maybe followed by blank
    lines; raw or decoded) as columns when they have one of the block shapes LLM streams use,
    else ``region`` decoded, for ``SSEDecoder._parse_lines``.

    The shapes take fast paths that avoid a Python loop per line: every block ``data: X``
    (OpenAI) or every block ``event: E`` + ``data: X`` (Anthropic). Anything else, or a mix,
    goes line by line.
    """
    if isinstance(region, str):
        text = region
    elif (
        len(region) >= _SLICED
        and region.find(b"\n") == len(region) - 2
        and region.startswith(b"data:")
    ):
        # One large event of one ``data`` line: decode the value straight out of the buffer
        # instead of decoding the whole block and then copying the value out of it.
        start = 6 if region[5] == 0x20 else 5
        return [str(memoryview(region)[start:-2], "utf-8", "replace")], None
    else:
        text = region.decode("utf-8", "replace")
    if text.startswith("data: ") and text.endswith("\n\n"):
        # Cut off the leading "data: " and the closing LF LF, then split at LF LF "data: ".
        # If no piece holds a LF, every block was exactly "data: X" LF LF.
        values = text[6:-2].split("\n\ndata: ")
        if "\n" not in "".join(values):
            return values, None
    if not text.startswith("event: "):
        return text
    end = text.find("\n")
    if text.startswith("data: ", end + 1) and text.find("\n", end + 1) == len(text) - 2:
        # One ``event: E`` + ``data: X`` block (a Messages stream read as it arrives).
        return [text[end + 7 : -2]], [text[7:end] or None]
    lines = _lines(text)
    # Every block is ``event: E`` then ``data: X``: columns of the line list.
    if len(lines) % 3 or any(lines[2::3]):
        return text
    names = lines[0::3]
    values = lines[1::3]
    if not all(map(str.startswith, values, repeat("data: "))):
        return text
    if not all(map(str.startswith, names, repeat("event: "))):
        return text
    types: list[str | None] = list(map(_after_event, names))
    if "" in types:
        types = [type_ or None for type_ in types]
    return list(map(_after_data, values)), types


class SSEDecoder:
    """Incremental WHATWG event-stream parser: ``feed`` bytes, get dispatched events.

    ``max_event_size`` bounds one event's raw bytes (``None``: unbounded). Exceeding it raises
    ``EventTooLarge`` whose ``complete`` lists the events completed before it in that call; the
    decoder then discards all further input.
    """

    def __init__(self, *, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._framing = _Framing(max_event_size)
        self._last_id: str | None = None
        self._truncated = False
        self.retry: int | None = None
        """The reconnection time last set by a valid ``retry`` field, in milliseconds."""

    @property
    def last_event_id(self) -> str | None:
        """The last event ID buffer (``None`` until an ``id`` field was seen)."""
        return self._last_id

    @property
    def truncated(self) -> bool:
        """After ``close()``: whether an unterminated event with data was discarded."""
        return self._truncated

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Return the events completed by ``data``, in order."""
        framing = self._framing
        region = framing._take(data)
        if not region or len(region) > framing._limit or 0x0D in region:
            region = self._checked(region)
            if not region:
                return []
        # ``_parse`` inlined (a call less per read), and below ``_BULK`` events built one by one.
        columns = _columns(region)
        if isinstance(columns, str):
            events = self._parse_lines(_lines(columns))
        else:
            values, types = columns
            last_id = self._last_id
            if len(values) >= _BULK:
                events = _build_events(values, types, last_id)
            elif types is None:
                events = [_make_event(value, None, last_id, None) for value in values]
            else:
                events = [
                    _make_event(value, type_, last_id, None)
                    for value, type_ in zip(values, types, strict=True)
                ]
        if framing._overflow:
            raise framing._fail_on(list(events))
        return events

    def feed_fields(self, data: bytes) -> _Columns:
        """``feed`` for translators, which read only each event's ``data`` and type: the same
        events as two columns, the ``data`` values and the types (``None``: no event had one),
        without a ``ServerSentEvent`` per event (building those is most of ``feed``'s cost per
        event in the usual stream shapes). ``EventTooLarge.complete`` still lists events."""
        framing = self._framing
        region = framing._take(data)
        if not region or len(region) > framing._limit or 0x0D in region:
            region = self._checked(region)
            if not region:
                return [], None
        columns = _columns(region)
        events: list[ServerSentEvent] | None = None
        if isinstance(columns, str):
            events = self._parse_lines(_lines(columns))
            columns = [e.data for e in events], [e.event for e in events]
        if framing._overflow:
            if events is None:
                values, types = columns
                events = _build_events(values, types, self._last_id)
            raise framing._fail_on(list(events))
        return columns

    def idle_for(self, data: bytes) -> bool:
        """Whether nothing is pending and ``data`` is within the size bound: then, if ``data`` is
        exactly one whole block, a caller may read it straight from the bytes instead of
        feeding it (feeding it would leave the state as it is now). Nothing is taken."""
        framing = self._framing
        return (
            framing._lf_only  # nothing pending (see ``_Framing.__init__``)
            and not framing._buf
            and not framing._parts
            and len(data) <= framing._limit
        )

    def feed_text(self, data: bytes) -> str:
        """The complete blocks ``data`` adds, decoded, with LF line ends (``""``: none yet), for
        a caller that reads some blocks straight from the text and hands ``fields`` the rest.
        ``EventTooLarge`` as ``feed`` raises it."""
        framing = self._framing
        region = framing._take(data)
        if not region or len(region) > framing._limit or 0x0D in region:
            region = self._checked(region)
            if not region:
                return ""
        if framing._overflow:
            raise framing._fail_on(list(self._parse(region)))
        return region.decode("utf-8", "replace")

    def fields(self, text: str) -> _Columns:
        """The events of ``text`` (complete blocks from ``feed_text``, or a tail of them that
        starts at a block) as ``feed_fields`` gives them."""
        columns = _columns(text)
        if isinstance(columns, str):
            events = self._parse_lines(_lines(columns))
            return [e.data for e in events], [e.event for e in events]
        return columns

    def close(self) -> list[ServerSentEvent]:
        """End of input. The spec discards an unterminated event, so this returns ``[]``."""
        self._truncated = _has_dispatchable(self._framing._close())
        return []

    def _checked(self, region: bytes | bytearray) -> bytes | bytearray:
        """``region`` from ``_take`` once its rare cases are handled: nothing complete (``b""``,
        or ``EventTooLarge`` if the pending event outgrew the bound), a block over the bound
        (``EventTooLarge`` with the events before it), CR line ends (made LF)."""
        framing = self._framing
        if not region:
            if framing._overflow:
                raise framing._fail_on([])
            return region
        if len(region) > framing._limit:  # it may hold a block over the bound
            blocks = _split_blocks(bytes(region))
            bad = framing._oversized(blocks)
            if bad >= 0:
                raise framing._fail_on(list(self._parse(_lf_only(b"".join(blocks[:bad])))))
        return _lf_only(region) if 0x0D in region else region

    def _parse(self, region: bytes | bytearray) -> list[ServerSentEvent]:
        """The events in ``region``: complete blocks with LF line ends, maybe followed by blank
        lines."""
        columns = _columns(region)
        if isinstance(columns, str):
            return self._parse_lines(_lines(columns))
        values, types = columns
        return _build_events(values, types, self._last_id)

    def _parse_lines(self, lines: list[str]) -> list[ServerSentEvent]:
        """The general case: §9.2.6 line by line (``lines``: see ``_lines``)."""
        events: list[ServerSentEvent] = []
        data: list[str] | None = None
        event: str | None = None
        retry: int | None = None
        for line in lines:
            if not line:
                if data is not None:
                    events.append(_make_event("\n".join(data), event or None, self._last_id, retry))
                    data = None
                event = None
                retry = None
                continue
            if line.startswith("data:"):
                value = line[6:] if line[5:6] == " " else line[5:]
                if data is None:
                    data = [value]
                else:
                    data.append(value)
                continue
            colon = line.find(":")
            if colon == 0:
                continue
            if colon < 0:
                name, value = line, ""
            else:
                name = line[:colon]
                value = (
                    line[colon + 2 :] if line[colon + 1 : colon + 2] == " " else line[colon + 1 :]
                )
            if name == "data":
                if data is None:
                    data = [value]
                else:
                    data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                if "\x00" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = self.retry = int(value)
        return events


_BULK = 24
"""From this many events on, ``_build_events`` beats one ``_make_event`` call per event."""
_new_object = object.__new__
# The slot descriptors of the frozen dataclass. Setting them directly skips the frozen
# ``__setattr__`` guard that the generated ``__init__`` goes through: about twice as fast.
_set_data: Callable[[object, object], None] = ServerSentEvent.__dict__["data"].__set__
_set_event: Callable[[object, object], None] = ServerSentEvent.__dict__["event"].__set__
_set_id: Callable[[object, object], None] = ServerSentEvent.__dict__["id"].__set__
_set_retry: Callable[[object, object], None] = ServerSentEvent.__dict__["retry"].__set__


def _make_event(data: str, event: str | None, id: str | None, retry: int | None) -> ServerSentEvent:
    """``ServerSentEvent(data, event, id, retry)``, without the frozen ``__init__``'s cost."""
    obj: ServerSentEvent = _new_object(ServerSentEvent)
    _set_data(obj, data)
    _set_event(obj, event)
    _set_id(obj, id)
    _set_retry(obj, retry)
    return obj


def _build_events(
    data: list[str], types: list[str | None] | None, id: str | None
) -> list[ServerSentEvent]:
    """``[ServerSentEvent(d, t, id) for d, t in zip(data, types)]`` with the loops in C."""
    n = len(data)
    events: list[ServerSentEvent] = list(map(_new_object, repeat(ServerSentEvent, n)))
    _consume(map(_set_data, events, data))
    _consume(map(_set_event, events, repeat(None, n) if types is None else types))
    _consume(map(_set_id, events, repeat(id, n)))
    _consume(map(_set_retry, events, repeat(None, n)))
    return events


def _consume(iterator: Iterator[object]) -> None:
    deque(iterator, maxlen=0)


def _check_field(value: str, name: str) -> None:
    if _FORBIDDEN_IN_FIELD.search(value):
        raise ValueError(f"SSE {name} must not contain CR, LF or NUL: {value!r}")


def encode_event(event: ServerSentEvent) -> bytes:
    """Serialise one event with LF line ends and its terminating blank line.

    Multi-line ``data`` (CR, LF or CRLF) becomes several ``data:`` lines. Raises ``ValueError``
    for an ``event`` or ``id`` containing CR, LF or NUL, or a negative ``retry``, so no caller can
    inject fields.
    """
    out: list[str] = []
    if event.event is not None:
        _check_field(event.event, "event")
        if event.event:
            out.append(f"event: {event.event}\n")
    if event.id is not None:
        _check_field(event.id, "id")
        out.append(f"id: {event.id}\n")
    if event.retry is not None:
        if event.retry < 0:
            raise ValueError("SSE retry must be a non-negative integer")
        out.append(f"retry: {event.retry}\n")
    for line in _LINE_BREAK.split(event.data):
        out.append(f"data: {line}\n")
    out.append("\n")
    return "".join(out).encode("utf-8")


def encode_comment(text: str = "", *, blank_line: bool = True) -> bytes:
    """Serialise a comment (one ``:`` line per line of ``text``).

    With ``blank_line`` (the default) a blank line follows. Without it the comment terminates
    nothing, which is the safe keep-alive once a stream has carried an ``id:`` field (see
    ``sse-and-asgi.md`` §2.1: a blank line would then dispatch a phantom event in the Python SDKs).
    """
    lines = "".join(f": {line}\n" if line else ":\n" for line in _LINE_BREAK.split(text))
    return (lines + "\n" if blank_line else lines).encode("utf-8")
