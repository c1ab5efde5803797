"""Server-Sent Events codec: bytes to events and back, incremental and without I/O.

Implements WHATWG HTML §9.2.5-§9.2.6 "Parsing an event stream" (the reference is quoted in
``shared/reference/sse-and-asgi.md`` §1):

- a line ends at CRLF, at a lone LF, or at a lone CR; a CR ending one ``feed`` ends its line at
  once and a LF starting the next ``feed`` is swallowed, so a split CRLF counts once;
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
from dataclasses import dataclass

from .errors import EventTooLarge

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "SSEDecoder",
    "SSEFramer",
    "ServerSentEvent",
    "encode_comment",
    "encode_event",
]

DEFAULT_MAX_EVENT_SIZE = 1024 * 1024
"""Default bound on one event's raw size in bytes (1 MiB)."""

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
    """Finds event boundaries in raw bytes: the part ``SSEFramer`` and ``SSEDecoder`` share."""

    def __init__(self, max_event_size: int | None) -> None:
        if max_event_size is not None and max_event_size < 1:
            raise ValueError("max_event_size must be positive or None")
        self._max = max_event_size
        self._buf = bytearray()
        # Offset into ``_buf`` before which no boundary can start any more.
        self._scan_from = 0
        self._has_cr = False
        self._skip_lf = False
        self._at_start = True
        self._broken = False

    def _take(self, data: bytes) -> bytes:
        """Add ``data``; return every complete block so far (raw, concatenated), maybe ``b""``."""
        if self._broken:
            return b""
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
            if data[0] == 0x0A:
                data = data[1:]
        if not data:
            return b""
        if not self._has_cr and 0x0D in data:
            self._has_cr = True

        buf = self._buf
        hay: bytes | bytearray
        if buf:
            buf += data
            hay = buf
        else:
            hay = data
        end = self._last_boundary(hay)
        if end == 0:
            if hay is data:
                buf += data
            self._scan_from = max(0, len(buf) - 3)
            self._check_pending(len(buf))
            return b""

        if hay is buf:
            region = bytes(memoryview(buf)[:end])
            del buf[:end]
        else:
            region = data if end == len(data) else data[:end]
            buf += memoryview(data)[end:]
        self._scan_from = max(0, len(buf) - 3)
        if self._has_cr:
            self._skip_lf = region[-1] == 0x0D
            self._has_cr = 0x0D in buf
        self._check_pending(len(buf))
        return region

    def _last_boundary(self, hay: bytes | bytearray) -> int:
        """Offset just past the last event boundary in ``hay``, or 0 when there is none."""
        start = self._scan_from if hay is self._buf else 0
        if not self._has_cr:
            i = hay.rfind(b"\n\n", start)
            if i >= 0:
                return i + 2
        else:
            end = 0
            for m in _BOUNDARY.finditer(hay, start):
                end = m.end()
            if end:
                return end
        # The buffer always begins at a line start, so a terminator there is a blank line.
        if hay[:1] == b"\n":
            return 1
        if hay[:1] == b"\r":
            return 2 if hay[1:2] == b"\n" else 1
        return 0

    def _check_pending(self, pending: int) -> None:
        if self._max is not None and pending > self._max:
            self._broken = True
            self._buf.clear()
            raise EventTooLarge(self._max)

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
        self._buf.clear()
        return EventTooLarge(self._max, complete)

    def _close(self) -> bytes:
        """End of input: the unterminated tail (dropped from the buffer)."""
        tail = b"" if self._at_start else bytes(self._buf)
        self._buf.clear()
        self._broken = True
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


def _normalise(region: bytes) -> str:
    if 0x0D in region:
        region = region.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return region.decode("utf-8", "replace")


class SSEFramer:
    """Raw framing for passthrough: whole event blocks out, fields never decoded.

    Same line-end, BOM and size rules as ``SSEDecoder``, at the speed of a byte search. Blocks keep
    the upstream's bytes (line endings included); a lone blank line between events is a block of
    its own. A LF that completes a CRLF split across feeds is dropped, because the CR already ended
    the block that went out.
    """

    def __init__(self, *, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> None:
        self._framing = _Framing(max_event_size)
        self._truncated = False

    def feed(self, data: bytes) -> list[bytes]:
        """Return the raw blocks completed by ``data``, each ending with its blank line."""
        region = self._framing._take(data)
        if not region:
            return []
        blocks = _split_blocks(region)
        if self._framing._max is not None and len(region) > self._framing._max:
            bad = self._framing._oversized(blocks)
            if bad >= 0:
                raise self._framing._fail_on(list(blocks[:bad]))
        return blocks

    def feed_joined(self, data: bytes) -> bytes:
        """Like ``feed`` but return the completed blocks as one ``bytes`` (the passthrough path)."""
        region = self._framing._take(data)
        if self._framing._max is not None and len(region) > self._framing._max:
            blocks = _split_blocks(region)
            bad = self._framing._oversized(blocks)
            if bad >= 0:
                raise self._framing._fail_on([b"".join(blocks[:bad])])
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
    for line in _LINE_BREAK.split(_normalise(tail)):
        if line == "data" or line.startswith("data:"):
            return True
    return False


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
        region = self._framing._take(data)
        if not region:
            return []
        if self._framing._max is not None and len(region) > self._framing._max:
            blocks = _split_blocks(region)
            bad = self._framing._oversized(blocks)
            if bad >= 0:
                events = self._parse(_normalise(b"".join(blocks[:bad])))
                raise self._framing._fail_on(list(events))
        return self._parse(_normalise(region))

    def close(self) -> list[ServerSentEvent]:
        """End of input. The spec discards an unterminated event, so this returns ``[]``."""
        self._truncated = _has_dispatchable(self._framing._close())
        return []

    def _parse(self, text: str) -> list[ServerSentEvent]:
        events: list[ServerSentEvent] = []
        data: list[str] | None = None
        event: str | None = None
        retry: int | None = None
        lines = text.split("\n")
        lines.pop()  # ``text`` ends with a terminator: the last piece is always empty
        for line in lines:
            if not line:
                if data is not None:
                    events.append(
                        ServerSentEvent("\n".join(data), event or None, self._last_id, retry)
                    )
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
