"""The SSE codec (``asgi_sse_adapter.sse``): WHATWG parsing rules, chunking, encoding, bad input.

Sections follow the brief of issue "Foundation" parts 3 and 4:

1. the WHATWG §9.2.5-§9.2.6 edge cases, one test each;
2. chunk-boundary invariance of ``SSEDecoder`` and ``SSEFramer`` (exhaustive splits of a corpus,
   then hypothesis, checked against a direct reading of the spec written here);
3. round trips through ``encode_event`` / ``encode_comment``;
4. bad input: invalid UTF-8, NUL, oversized events, floods;
5. the documented deviations of openai-python, anthropic-python and httpx-sse, each next to the
   third-party decoder doing it differently;
6. linear cost.
"""

from __future__ import annotations

import itertools
import time
import tracemalloc
from collections.abc import Iterator, Sequence

import httpx
import pytest
from anthropic._streaming import SSEDecoder as AnthropicSSEDecoder
from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder as OpenAISSEDecoder

from asgi_sse_adapter.errors import EventTooLarge
from asgi_sse_adapter.sse import (
    DEFAULT_MAX_EVENT_SIZE,
    ServerSentEvent,
    SSEDecoder,
    SSEFramer,
    _split_blocks,
    encode_comment,
    encode_event,
    tail_blocks,
)

BOM = b"\xef\xbb\xbf"
MiB = 1024 * 1024


def decode(*chunks: bytes, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE) -> list[str]:
    """The ``data`` of every event dispatched by feeding ``chunks`` then closing."""
    return [e.data for e in decode_events(chunks, max_event_size=max_event_size)]


def decode_events(
    chunks: Sequence[bytes], *, max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE
) -> list[ServerSentEvent]:
    """Every event dispatched by feeding ``chunks`` one by one, then closing."""
    decoder = SSEDecoder(max_event_size=max_event_size)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    return events


def one(raw: bytes) -> ServerSentEvent:
    """The single event ``raw`` decodes to in one feed (fails if there is not exactly one)."""
    events = decode_events([raw])
    assert len(events) == 1, events
    return events[0]


# --------------------------------------------------------------------------------------------
# 1. WHATWG edge cases


def test_lf_line_ends() -> None:
    """LF ends lines; LF LF ends an event."""
    assert decode(b"data: a\n\ndata: b\n\n") == ["a", "b"]


def test_cr_line_ends() -> None:
    """A lone CR ends a line; CR CR ends an event."""
    assert decode(b"data: a\r\rdata: b\rdata: c\r\r") == ["a", "b\nc"]


def test_crlf_line_ends() -> None:
    """CRLF is one terminator; CRLF CRLF ends an event."""
    assert decode(b"event: e\r\ndata: a\r\ndata: b\r\n\r\n") == ["a\nb"]
    assert one(b"event: e\r\ndata: a\r\n\r\n").event == "e"


def test_crlf_split_across_feeds_counts_once() -> None:
    """A CRLF split across two feeds is one terminator: it neither fires early nor twice."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r") == []
    assert decoder.feed(b"\n") == []  # completes the CRLF: still only one line end
    assert [e.data for e in decoder.feed(b"\r\n")] == ["x"]
    assert decoder.feed(b"data: y\r\n\r") == [ServerSentEvent("y")]
    assert decoder.feed(b"\n") == []  # the LF of the split CRLF is not a second blank line
    assert decoder.feed(b"data: z\n\n") == [ServerSentEvent("z")]


def test_lone_trailing_cr_dispatches_at_once() -> None:
    """A CR at the end of a feed ends its line immediately: the event fires without more input."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [ServerSentEvent("x")]
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"data: y\r") == []
    assert decoder.feed(b"\r") == [ServerSentEvent("y")]


def test_lf_after_pending_bytes_is_not_swallowed() -> None:
    """A LF opening a feed is swallowed only when the previous feed ended on a CR with nothing
    pending; otherwise it belongs to the pending line (regression: the event was merged away)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\rdata: b") == [ServerSentEvent("a")]
    assert decoder.feed(b"\n\n") == [ServerSentEvent("b")]
    assert decoder.feed(b"data: c\n\n") == [ServerSentEvent("c")]
    decoder = SSEDecoder()
    assert decoder.feed(b"\rdata: x") == []
    assert decoder.feed(b"\n\n") == [ServerSentEvent("x")]
    framer = SSEFramer()
    assert framer.feed(b"\r00\r") == [b"\r"]
    assert framer.feed(b"\n") == []
    assert framer.close() == b"00\r\n"


def test_a_split_crlf_is_passed_on() -> None:
    """The framer passes the LF of a CRLF split across feeds on, first in its next result: the
    CR ended the block, but a parser that holds a CR back until it sees what follows (the Vercel
    AI SDK's eventsource-parser, which never flushes at the end of a stream) would otherwise
    never end that block, and a stream's last event was lost. The decoder counts the pair once."""
    stream = b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
    cut = len(stream) - 1
    framer = SSEFramer()
    assert framer.feed_joined(stream[:cut]) == stream[:cut]
    assert framer.feed_joined(stream[cut:]) == b"\n"
    assert framer.close() == b""
    framer = SSEFramer()
    assert framer.feed(stream[:cut]) == [stream[:cut]]
    assert framer.feed(stream[cut:] + b"data: x\r\n\r\n") == [b"\n", b"data: x\r\n\r\n"]
    decoder = SSEDecoder()
    assert [e.event for e in decoder.feed(stream[:cut])] == ["message_stop"]
    assert decoder.feed(stream[cut:]) == []


def test_first_cr_after_lf_only_reads() -> None:
    """A read bringing the stream's first CR still finds the LF LF boundary before it
    (regression: a stale search offset hid it until the next read)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"id: 1\ndata:") == []
    assert decoder.feed(b" a\n\nd") == [ServerSentEvent("a", id="1")]
    assert decoder.feed(b"ata: b\n\n\r") == [ServerSentEvent("b", id="1")]


def test_leading_bom_stripped_once() -> None:
    """One leading BOM is stripped; a second BOM is content (here: part of the field name)."""
    assert decode(BOM + b"data: a\n\n") == ["a"]
    assert decode(BOM + BOM + b"data: a\n\ndata: b\n\n") == ["b"]
    assert decode(b"data: " + BOM + b"a\n\n") == ["\ufeffa"]
    assert decode(b"data: a\n\n" + BOM + b"data: b\n\n") == ["a"]


def test_bom_split_across_feeds() -> None:
    """A BOM arriving as EF | BB BF (or byte by byte) is still stripped."""
    assert decode(b"\xef", b"\xbb\xbfdata: a\n\n") == ["a"]
    assert decode(b"\xef", b"\xbb", b"\xbf", b"data: a\n\n") == ["a"]
    assert decode(b"\xef\xbb", b"", b"\xbfdata: a\n\n") == ["a"]


def test_partial_bom_is_data() -> None:
    """Bytes that only start like a BOM are kept (and decoded as U+FFFD)."""
    assert decode(b"\xef", b"\xbbdata: a\n\ndata: b\n\n") == ["b"]
    framer = SSEFramer()
    assert framer.feed(b"\xef\xbb") == []
    assert framer.close() == b"\xef\xbb"


def test_invalid_utf8_becomes_replacement_character() -> None:
    """Invalid UTF-8 decodes to U+FFFD and never raises."""
    assert decode(b"data: a\xffb\xc3\n\n") == ["a\ufffdb\ufffd"]
    assert one(b"event: \xfe\ndata: x\n\n").event == "\ufffd"


def test_multibyte_character_split_across_feeds() -> None:
    """A UTF-8 sequence cut between feeds decodes to the right character."""
    raw = "data: é東😀\n\n".encode()
    for cut in range(len(raw) + 1):
        assert decode(raw[:cut], raw[cut:]) == ["é東😀"], cut
    assert decode(*[raw[i : i + 1] for i in range(len(raw))]) == ["é東😀"]


def test_only_one_space_after_colon_removed() -> None:
    """``data:  x`` keeps the second space; ``data:x`` equals ``data: x``."""
    assert decode(b"data:  x\n\ndata:x\n\ndata: x\n\ndata:\tx\n\n") == [" x", "x", "x", "\tx"]
    assert one(b"event:  e\ndata: x\n\n").event == " e"


def test_line_without_colon_is_field_with_empty_value() -> None:
    """A bare ``data`` line is ``data:``: the event fires with empty data."""
    assert decode(b"data\n\n") == [""]
    assert decode(b"data\ndata\n\n") == ["\n"]
    assert one(b"event\ndata: x\n\n").event is None


def test_data_lines_joined_with_lf() -> None:
    """Several ``data`` lines are joined with a single LF, with no trailing LF."""
    assert decode(b"data: a\ndata: b\ndata:\ndata: c\n\n") == ["a\nb\n\nc"]


def test_id_containing_nul_is_ignored() -> None:
    """An ``id`` whose value holds NUL is ignored; the previous id stays."""
    events = decode_events([b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n"])
    assert [e.id for e in events] == ["1", "1"]


def test_id_persists_and_empty_id_resets() -> None:
    """The last event ID persists across events; an empty ``id`` resets it to ``""``."""
    decoder = SSEDecoder()
    events = decoder.feed(
        b"data: a\n\nid: 7\ndata: b\n\ndata: c\n\nid\ndata: d\n\nid:\ndata: e\n\n"
    )
    assert [e.id for e in events] == [None, "7", "7", "", ""]
    assert decoder.last_event_id == ""


@pytest.mark.parametrize("value", ["+5", " 7", "1_0", "\u0663", "", "5 ", "-1", "1.5", "0x1"])
def test_retry_rejects_non_digits(value: str) -> None:
    """``retry`` counts only when its value is all ASCII digits (no sign, space, ``_``, ٣)."""
    decoder = SSEDecoder()
    events = decoder.feed(f"retry: {value}\ndata: x\n\n".encode())
    assert events == [ServerSentEvent("x")]
    assert decoder.retry is None


def test_retry_accepts_digits() -> None:
    """An all-digit ``retry`` sets the reconnection time and the block's ``retry``."""
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 0150\ndata: x\n\ndata: y\n\n") == [
        ServerSentEvent("x", retry=150),
        ServerSentEvent("y"),
    ]
    assert decoder.retry == 150
    assert decoder.feed(b"retry: 20\n\n") == []
    assert decoder.retry == 20


@pytest.mark.parametrize(
    "block",
    [b"event: ping\n\n", b"id: 1\n\n", b"retry: 3000\n\n", b"event: a\nid: 2\nretry: 1\n\n"],
)
def test_blank_line_without_data_dispatches_nothing(block: bytes) -> None:
    """A block with ``event``, ``id`` or ``retry`` but no ``data`` fires no event."""
    assert decode(block) == []
    assert decode(block + b"data: x\n\n") == ["x"]
    assert one(block + b"data: x\n\n").event is None  # the event type was cleared at the blank


def test_comments_ignored() -> None:
    """Lines starting with a colon are ignored, inside or between events."""
    assert decode(b": hi\ndata: a\n: mid\ndata: b\n\n:\n\n: x: y\n\n") == ["a\nb"]


def test_unterminated_event_discarded_and_truncated() -> None:
    """An event without its blank line at the end is discarded; ``truncated`` says so."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [ServerSentEvent("a")]
    before_close = decoder.truncated
    assert before_close is False
    assert decoder.close() == []
    assert decoder.truncated is True
    framer = SSEFramer()
    assert framer.feed(b"data: a\n\ndata: b") == [b"data: a\n\n"]
    assert framer.close() == b"data: b"
    assert framer.truncated is True


def test_comment_only_tail_is_not_truncated() -> None:
    """A tail holding only comments or event/id lines would not have fired: not truncated."""
    for tail in (b": ping\n", b": ping", b"event: x\nid: 3\n", b""):
        decoder = SSEDecoder()
        decoder.feed(b"data: a\n\n" + tail)
        decoder.close()
        assert decoder.truncated is False, tail
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\ndata")
    decoder.close()
    assert decoder.truncated is True


def test_spec_worked_example() -> None:
    """WHATWG's example ``data\\n\\ndata\\ndata\\n\\ndata:`` fires ``""`` and ``"\\n"``."""
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data\n\ndata\ndata\n\ndata:")] == ["", "\n"]
    decoder.close()
    assert decoder.truncated is True


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1e"])
def test_unicode_line_separators_are_ordinary(char: str) -> None:
    """U+2028, U+2029, U+0085, VT, FF and friends are data, not line breaks."""
    assert decode(f"data: a{char}b\n\n".encode()) == [f"a{char}b"]
    assert decode(f"data: a{char}data: b\n\n".encode()) == [f"a{char}data: b"]


def test_empty_event_type_is_none() -> None:
    """``event:`` with an empty value leaves the type unset (``None``)."""
    assert one(b"event:\ndata: x\n\n").event is None
    assert one(b"event: \ndata: x\n\n").event is None
    assert one(b"event: a\nevent:\ndata: x\n\n").event is None


def test_field_names_are_case_sensitive() -> None:
    """``Data:``, ``EVENT:``, ``Id:`` are unknown fields and ignored."""
    assert decode(b"Data: x\n\n") == []
    events = decode_events([b"EVENT: e\nId: 1\nRetry: 5\ndata: x\n\n"])
    assert events == [ServerSentEvent("x")]


def test_unknown_fields_ignored() -> None:
    """Fields other than data/event/id/retry are ignored."""
    assert decode(b"foo: bar\ndata: x\nbaz\n\n") == ["x"]


def test_fast_path_shapes_match_general_rules() -> None:
    """The OpenAI- and Anthropic-shaped streams (fast paths) decode like any other."""
    openai = b"".join(b'data: {"n":%d}\n\n' % i for i in range(40))
    assert decode(openai) == [f'{{"n":{i}}}' for i in range(40)]
    anthropic = b"".join(b"event: e%d\ndata: %d\n\n" % (i, i) for i in range(40))
    events = decode_events([anthropic])
    assert [(e.event, e.data) for e in events] == [(f"e{i}", str(i)) for i in range(40)]
    # Near misses fall back to the general rules.
    assert decode(b"data: a\n\ndata: b\ndata: c\n\n") == ["a", "b\nc"]
    assert decode(b"data: a\n\ndata:b\n\n\n\ndata:  c\n\n") == ["a", "b", " c"]
    # Event/data lines in the right places, but not one block per (event, data) pair:
    odd = b"event: a\ndata: 1\nX\nevent: b\ndata: 2\n\n"
    assert [(e.event, e.data) for e in decode_events([odd])] == [("b", "1\n2")]
    mixed = decode_events([b"event: a\ndata: 1\n\nevent:\ndata: 2\n\nevent: c\nid: 9\n\n"])
    assert [(e.event, e.data, e.id) for e in mixed] == [("a", "1", None), (None, "2", None)]


# --------------------------------------------------------------------------------------------
# 2. Chunk-boundary invariance

CORPUS: dict[str, bytes] = {
    "ascii": b"data: hello\n\ndata: world\n\n",
    "cjk": "event: 消息\ndata: 你好\uff0c世界\n\ndata: 東京\n\n".encode(),
    "emoji": "data: 😀🎉 ok\n\ndata: 👩\u200d👩\u200d👧\n\n".encode(),
    "crlf": b"event: a\r\ndata: 1\r\n\r\ndata: 2\r\n\r\n",
    "cr_only": b"data: a\r\rdata: b\rdata: c\r\r",
    "mixed_endings": b"data: a\r\n\ndata: b\n\r\ndata: c\r\r\ndata: d\n\r",
    "bom": BOM + b"data: bom\n\ndata: x\n\n",
    "comments": b": ping\n\ndata: a\n: inside\ndata: b\n\n:\n\n",
    "multiline": b"data: line1\ndata: line2\ndata\ndata:\n\n",
    "ids": b"id: 1\ndata: a\n\nid\ndata: b\n\nid: x\x00y\ndata: c\n\n",
    "retries": b"retry: 1000\ndata: a\n\nretry: +5\ndata: b\n\nretry: 7\n\n",
    "blank_runs": b"\n\n\ndata: a\n\n\n\n\ndata: b\n\n\r\n\r\n\r\r\n",
    "tail": b"data: a\n\ndata: tail",
    "cr_tail": b"data: a\r\rdata: b\r",
    "invalid_utf8": b"data: \xff\xfe ok\n\ndata: \xe4\xb8\n\n",
    "openai_shape": b'data: {"a":1}\n\ndata: {"a":2}\n\ndata: [DONE]\n\n',
    "anthropic_shape": b'event: ping\ndata: {}\n\nevent: delta\ndata: {"t":"x"}\n\n',
    "nul": b"data: a\x00b\n\n",
    "unicode_breaks": "data: a\u2028b\u0085c\n\n".encode(),
}
SHORT = {name: raw for name, raw in CORPUS.items() if len(raw) <= 64}


def reference_decode(raw: bytes) -> tuple[list[ServerSentEvent], bool]:
    """A direct, unoptimised reading of WHATWG §9.2.5-§9.2.6: events, and whether a data-bearing
    event was cut off at the end (the codec's ``truncated``)."""
    text = raw.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: list[ServerSentEvent] = []
    data: list[str] = []
    event = ""
    last_id: str | None = None
    retry: int | None = None
    pos = 0
    while True:
        ends = [i for i in (text.find("\r", pos), text.find("\n", pos)) if i >= 0]
        if not ends:
            break
        end = min(ends)
        line = text[pos:end]
        pos = end + 2 if text.startswith("\r\n", end) else end + 1
        if not line:
            if data:
                events.append(ServerSentEvent("\n".join(data), event or None, last_id, retry))
            data, event, retry = [], "", None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
        elif name == "id" and "\x00" not in value:
            last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    rest = text[pos:]
    truncated = bool(data) or rest == "data" or rest.startswith("data:")
    return events, truncated


def framer_expected(raw: bytes, cuts: Sequence[int]) -> bytes:
    """What ``SSEFramer`` outputs in total (blocks + tail) when fed ``raw`` cut at ``cuts``: the
    input minus a leading BOM, every byte kept (a LF completing a CRLF split across feeds too,
    which some clients' parsers need to end the block: ``test_a_split_crlf_is_passed_on``)."""
    return raw[3:] if raw.startswith(BOM) else raw


def split_at(raw: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``raw`` cut at the sorted positions ``cuts`` (empty chunks allowed)."""
    bounds = [0, *sorted(cuts), len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(bounds)]


def check_invariance(raw: bytes, cuts: Sequence[int]) -> None:
    """Decoder and framer give the whole-stream answer whatever the cuts."""
    chunks = split_at(raw, cuts)
    expected_events, expected_truncated = reference_decode(raw)

    decoder = SSEDecoder(max_event_size=None)
    events: list[ServerSentEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    events += decoder.close()
    assert events == expected_events, chunks
    assert decoder.truncated is expected_truncated, chunks

    framer = SSEFramer(max_event_size=None)
    blocks: list[bytes] = []
    for chunk in chunks:
        out = framer.feed(chunk)
        assert all(block.endswith((b"\n", b"\r")) for block in out), out
        blocks += out
    tail = framer.close()
    assert b"".join(blocks) + tail == framer_expected(raw, cuts), chunks
    assert framer.truncated is expected_truncated, chunks
    # Decoding the framer's blocks gives the same events.
    assert decode_events(blocks, max_event_size=None) == expected_events, blocks

    joined = SSEFramer(max_event_size=None)
    parts = [joined.feed_joined(chunk) for chunk in chunks]
    assert b"".join(parts) == b"".join(blocks), chunks
    assert joined.close() == tail

    # The translators' columns: the same events' data and types, whatever the cuts.
    columns = SSEDecoder(max_event_size=None)
    fields: list[tuple[str, str | None]] = []
    for chunk in chunks:
        values, types = columns.feed_fields(chunk)
        fields += zip(values, types or [None] * len(values), strict=True)
    assert fields == [(e.data, e.event) for e in expected_events], chunks


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_corpus_matches_reference(name: str) -> None:
    """Fed whole, each corpus stream decodes exactly as the reference reading of the spec."""
    raw = CORPUS[name]
    events, truncated = reference_decode(raw)
    decoder = SSEDecoder()
    assert decoder.feed(raw) + decoder.close() == events
    assert decoder.truncated is truncated
    assert events or name in {"comments"} or truncated  # the corpus is not vacuous


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_every_single_split(name: str) -> None:
    """Every one-cut split of each corpus stream gives the same events and framed bytes."""
    raw = CORPUS[name]
    for cut in range(len(raw) + 1):
        check_invariance(raw, [cut])


@pytest.mark.parametrize("name", sorted(SHORT))
def test_every_two_cut_split(name: str) -> None:
    """Every two-cut split of the short corpus streams gives the same events and framed bytes."""
    raw = SHORT[name]
    for first in range(len(raw) + 1):
        for second in range(first, len(raw) + 1):
            check_invariance(raw, [first, second])


def test_byte_by_byte() -> None:
    """Feeding one byte at a time gives the same result for every corpus stream."""
    for raw in CORPUS.values():
        check_invariance(raw, range(1, len(raw)))


@st.composite
def corpus_splits(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A corpus stream (or several glued together) and random cut positions."""
    names = draw(st.lists(st.sampled_from(sorted(CORPUS)), min_size=1, max_size=4))
    raw = b"".join(CORPUS[name] for name in names)
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=12))
    return raw, cuts


_VALUE_CHARS = st.sampled_from(
    ["a", "b", " ", ":", "0", "7", "+", "\x00", "é", "東", "😀", "\u2028", "\ufeff", "\x0b"]
)
_LINES = st.one_of(
    st.just(""),
    st.builds(
        lambda name, sep, value: name + sep + value,
        st.sampled_from(["data", "event", "id", "retry", "Data", "x", ""]),
        st.sampled_from([":", ": ", ":  ", ""]),
        st.text(_VALUE_CHARS, max_size=6),
    ),
)


@st.composite
def generated_streams(draw: st.DrawFn) -> tuple[bytes, list[int]]:
    """A stream of random field lines and terminators, maybe with BOM or raw junk, and cuts."""
    lines = draw(st.lists(st.tuples(_LINES, st.sampled_from(["\n", "\r", "\r\n"])), max_size=14))
    raw = "".join(line + end for line, end in lines).encode()
    if draw(st.booleans()):
        raw = BOM + raw
    raw += draw(st.binary(max_size=4))
    cuts = draw(st.lists(st.integers(0, len(raw)), max_size=10))
    return raw, cuts


@settings(max_examples=300, deadline=None)
@given(corpus_splits())
def test_hypothesis_corpus_splits(case: tuple[bytes, list[int]]) -> None:
    """Random multi-cut splits of (concatenated) corpus streams never change the result."""
    check_invariance(*case)


@settings(max_examples=400, deadline=None)
@given(generated_streams())
def test_hypothesis_generated_streams(case: tuple[bytes, list[int]]) -> None:
    """Random streams, randomly cut, decode exactly as the reference reading of the spec."""
    check_invariance(*case)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.lists(st.integers(0, 40), max_size=6))
def test_hypothesis_arbitrary_bytes(raw: bytes, cuts: list[int]) -> None:
    """Even arbitrary bytes decode like the reference, whatever the cuts, without raising."""
    check_invariance(raw, [c for c in cuts if c <= len(raw)])


LARGE = (
    b"data: a\n\n"
    + b"data: " + b"x" * 70_000 + b"\ndata: y\n\n"
    + b"data: " + b"z" * 70_000 + b"\r\n\r\n"
    + b"id: 1\ndata: \ndata: " + b"w" * 70_000 + b"\n\r"
)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, len(LARGE)), max_size=40))
def test_hypothesis_large_events(cuts: list[int]) -> None:
    """Events over 64 KiB (kept in blocks while pending) survive any cuts, CR or LF."""
    check_invariance(LARGE, cuts)


def test_framer_blocks_are_whole_events() -> None:
    """The framer returns one block per event (plus lone blank lines), with original endings."""
    framer = SSEFramer()
    assert framer.feed(b"data: a\r\n\r\n\ndata: b\n\ndata: c") == [
        b"data: a\r\n\r\n",
        b"\n",
        b"data: b\n\n",
    ]
    assert framer.feed(b"\r\r") == [b"data: c\r\r"]
    assert framer.feed(b"\n") == [b"\n"]  # completes the CRLF: passed on (its own block)
    assert framer.feed(b"\n") == [b"\n"]  # a real blank line


def test_framer_trailing_blank_lines_released_at_once() -> None:
    """Blank lines right after an event leave with it, not with the next event."""
    framer = SSEFramer()
    assert framer.feed(b"data: x\r\r\r") == [b"data: x\r\r", b"\r"]
    assert framer.feed(b"\n") == [b"\n"]
    assert framer.close() == b""


_LINE_ENDS = st.sampled_from([b"\n", b"\r", b"\r\n"])


@st.composite
def block_runs(draw: st.DrawFn) -> list[bytes]:
    """Whole blocks as a framer hands them out: lines with any line ends, then a blank line;
    some lone blank lines. (After a CR a LF would only complete that CR's CRLF: never drawn.)"""
    blocks: list[bytes] = []
    after_cr = False
    for _ in range(draw(st.integers(0, 8))):
        if draw(st.integers(0, 5)) == 0:
            blank = draw(_LINE_ENDS)
            if not (after_cr and blank == b"\n"):
                blocks.append(blank)
                after_cr = blank == b"\r"
            continue
        lines = draw(
            st.lists(
                st.sampled_from([b"data: x", b"event: e", b"id: 1", b":"]), min_size=1, max_size=3
            )
        )
        block = b"".join(line + draw(_LINE_ENDS) for line in lines)
        blank = draw(_LINE_ENDS)
        if blank == b"\n" and block.endswith(b"\r"):
            blank = b"\r"
        blocks.append(block + blank)
        after_cr = blank == b"\r"
    return blocks


@settings(max_examples=400, deadline=None)
@given(block_runs(), st.integers(1, 5))
def test_tail_blocks_are_the_last_blocks(blocks: list[bytes], count: int) -> None:
    """``tail_blocks`` gives a run of whole blocks from its last ``count`` blocks on, whatever
    the line ends: never fewer, more only where lone blank lines lead the run."""
    region = b"".join(blocks)
    assert _split_blocks(region) == blocks
    got = tail_blocks(region, count)
    assert region.endswith(got)
    taken = _split_blocks(got)
    assert taken[-count:] == blocks[-count:]
    if len(taken) > count:
        assert all(block in (b"\n", b"\r", b"\r\n") for block in taken[:-count])


# --------------------------------------------------------------------------------------------
# 3. Round trip and encoders

_FIELD_TEXT = st.text(
    st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=20
)
EVENTS = st.builds(
    ServerSentEvent,
    data=st.text(st.characters(blacklist_characters="\r", blacklist_categories=["Cs"])),
    event=st.none() | _FIELD_TEXT.filter(bool),
    id=st.none() | _FIELD_TEXT,
    retry=st.none() | st.integers(min_value=0, max_value=2**63),
)


@settings(max_examples=300, deadline=None)
@given(EVENTS)
def test_round_trip(event: ServerSentEvent) -> None:
    """``decode(encode(e)) == e`` for one event on a fresh decoder."""
    assert decode_events([encode_event(event)]) == [event]


@settings(max_examples=100, deadline=None)
@given(st.lists(EVENTS.filter(lambda e: e.id is not None), max_size=8))
def test_round_trip_sequence(events: list[ServerSentEvent]) -> None:
    """A sequence of events that each set ``id`` survives encoding and one decoder."""
    raw = b"".join(encode_event(e) for e in events)
    assert decode_events([raw]) == events


def test_encode_event_layout() -> None:
    """Fields come out in a fixed order with LF endings and one blank line."""
    event = ServerSentEvent("x", event="e", id="1", retry=10)
    assert encode_event(event) == b"event: e\nid: 1\nretry: 10\ndata: x\n\n"
    assert encode_event(ServerSentEvent("")) == b"data: \n\n"
    assert encode_event(ServerSentEvent("x", event="")) == b"data: x\n\n"


def test_encode_multiline_data() -> None:
    """Data with CRLF, CR or LF becomes one ``data:`` line per line."""
    raw = encode_event(ServerSentEvent("a\r\nb\rc\nd\n"))
    assert raw == b"data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
    assert decode(raw) == ["a\nb\nc\nd\n"]


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\x00b", "\n", "x\r\n"])
def test_encode_rejects_injection(bad: str) -> None:
    """``event`` or ``id`` holding CR, LF or NUL raise ``ValueError`` (no field injection)."""
    with pytest.raises(ValueError, match="event"):
        encode_event(ServerSentEvent("x", event=bad))
    with pytest.raises(ValueError, match="id"):
        encode_event(ServerSentEvent("x", id=bad))


def test_encode_rejects_negative_retry() -> None:
    """A negative ``retry`` raises ``ValueError``; zero is fine."""
    with pytest.raises(ValueError, match="retry"):
        encode_event(ServerSentEvent("x", retry=-1))
    assert encode_event(ServerSentEvent("x", retry=0)) == b"retry: 0\ndata: x\n\n"


def test_encode_comment() -> None:
    """Comments: one ``:`` line per line, with or without the closing blank line."""
    assert encode_comment("ping") == b": ping\n\n"
    assert encode_comment("ping", blank_line=False) == b": ping\n"
    assert encode_comment() == b":\n\n"
    assert encode_comment(blank_line=False) == b":\n"
    assert encode_comment("a\r\nb\rc") == b": a\n: b\n: c\n\n"
    assert decode(encode_comment("a\nb") + b"data: x\n\n") == ["x"]


# --------------------------------------------------------------------------------------------
# 4. Bad input


def test_nul_bytes_in_data_kept() -> None:
    """NUL is an ordinary character in data."""
    assert decode(b"data: \x00a\x00\n\n") == ["\x00a\x00"]


def test_max_event_size_must_be_positive() -> None:
    """``max_event_size`` of zero or less is rejected at construction."""
    for cls in (SSEDecoder, SSEFramer):
        with pytest.raises(ValueError, match="max_event_size"):
            cls(max_event_size=0)


def test_event_too_large_keeps_completed_events() -> None:
    """An oversized complete event raises with the events completed before it in that feed."""
    decoder = SSEDecoder(max_event_size=64)
    big = b"data: " + b"x" * 100 + b"\n\n"
    with pytest.raises(EventTooLarge) as info:
        decoder.feed(b"data: a\n\ndata: b\n\n" + big + b"data: c\n\n")
    assert info.value.complete == [ServerSentEvent("a"), ServerSentEvent("b")]
    assert info.value.limit == 64
    assert decoder.feed(b"data: d\n\n") == []


def test_event_too_large_while_pending_keeps_completed_events() -> None:
    """An unfinished event past the bound raises at once, keeping that feed's complete events."""
    decoder = SSEDecoder(max_event_size=64)
    with pytest.raises(EventTooLarge) as info:
        decoder.feed(b"data: a\n\ndata: " + b"x" * 100)
    assert info.value.complete == [ServerSentEvent("a")]
    assert decoder.feed(b"\n\ndata: b\n\n") == []

    framer = SSEFramer(max_event_size=64)
    with pytest.raises(EventTooLarge) as info:
        framer.feed(b"data: a\n\ndata: " + b"x" * 100)
    assert info.value.complete == [b"data: a\n\n"]

    joined = SSEFramer(max_event_size=64)
    with pytest.raises(EventTooLarge) as info:
        joined.feed_joined(b"data: a\n\ndata: b\n\ndata: " + b"x" * 100)
    assert info.value.complete == [b"data: a\n\ndata: b\n\n"]
    assert joined.feed_joined(b"\n\n") == b""


def pending_size(decoder: SSEDecoder) -> int:
    """Bytes the decoder holds for the unfinished event (buffer and blocks)."""
    return len(decoder._framing._buf) + decoder._framing._parts_len


def feed_until_too_large(
    decoder: SSEDecoder, pieces: Sequence[bytes]
) -> tuple[int, int, EventTooLarge]:
    """Feed ``pieces`` (each must complete nothing) until ``EventTooLarge``: return how many
    were accepted, the largest pending buffer seen, and the error."""
    largest = 0
    for accepted, piece in enumerate(pieces):
        try:
            out = decoder.feed(piece)
        except EventTooLarge as exc:
            return accepted, largest, exc
        assert out == []
        largest = max(largest, pending_size(decoder))
    pytest.fail("EventTooLarge was never raised")


def test_event_too_large_in_small_pieces() -> None:
    """An event growing past the bound in small pieces raises once, then input is dropped."""
    decoder = SSEDecoder(max_event_size=1000)
    assert decoder.feed(b"data: a\n\n") == [ServerSentEvent("a")]
    accepted, _, error = feed_until_too_large(decoder, [b"data: xxxx"] * 200)  # 10 bytes a time
    assert error.complete == []
    assert accepted == 100  # raised on the feed that took the line past 1000 bytes
    assert decoder.feed(b"data: xxxx") == []  # raised once: later input is dropped quietly
    assert decoder.feed(b"\n\ndata: b\n\n") == []
    assert decoder.close() == []


def test_framer_event_too_large_complete_blocks() -> None:
    """The framer's ``complete`` holds the raw blocks before the oversized one."""
    framer = SSEFramer(max_event_size=32)
    with pytest.raises(EventTooLarge) as info:
        framer.feed(b"data: a\r\n\r\n" + b"data: " + b"y" * 40 + b"\n\n")
    assert info.value.complete == [b"data: a\r\n\r\n"]
    assert framer.feed(b"data: b\n\n") == []


def test_unbounded_event_size() -> None:
    """With ``max_event_size=None`` a 3 MiB event goes through."""
    payload = "é" * (3 * MiB // 2)
    raw = f"data: {payload}\n\n".encode()
    chunks = [raw[i : i + 65536] for i in range(0, len(raw), 65536)]
    assert decode(*chunks, max_event_size=None) == [payload]
    with pytest.raises(EventTooLarge):
        decode(*chunks)


def test_framer_large_event_is_bytes() -> None:
    """A large event leaves the framer as ``bytes`` (never its internal ``bytearray``)."""
    raw = b"data: " + b"z" * 300_000 + b"\r\n\r\n" + b"data: " + b"w" * 300_000 + b"\n\n"
    pieces = [raw[i : i + 4096] for i in range(0, len(raw), 4096)]
    framer = SSEFramer()
    blocks = [block for piece in pieces for block in framer.feed(piece)]
    assert [type(block) for block in blocks] == [bytes, bytes]
    assert b"".join(blocks) == raw
    joined = SSEFramer()
    parts = [joined.feed_joined(piece) for piece in pieces]
    assert {type(part) for part in parts} == {bytes}
    assert b"".join(parts) == raw


def test_large_pending_event_edges() -> None:
    """A pending event past 64 KiB still frames right: a blank line split right after its LF,
    a CR ending arriving late, and the tail at close."""
    head = b"data: " + b"x" * (65536 - 7) + b"\n"
    assert decode(head, b"\n", b"data: y\n\n", max_event_size=None) == ["x" * 65529, "y"]
    # (The first read always takes the general path: these start with a small one.)
    xs = b"x" * 70_000  # no LF yet: a LF opening the next read ends this line only
    [event] = decode_events([b"data: ", xs, b"\nid: 1\n", b"\n"], max_event_size=None)
    assert (len(event.data), event.id) == (70_000, "1")
    decoder = SSEDecoder(max_event_size=None)
    assert decoder.feed(b"data: ") == []
    assert decoder.feed(xs + b"\n") == []
    assert decoder.feed(b"\r\n") == [ServerSentEvent("x" * 70_000)]  # LF | CRLF: blank line
    expected = ["x" * 70_000 + "abcde"]
    assert decode(b"data: ", xs, b"abc", b"de", b"\n\n", max_event_size=None) == expected
    body = b"data: " + b"y" * 200_000
    pieces = [body[i : i + 1000] for i in range(0, len(body), 1000)]
    assert decode(*pieces, b"\r\n\r\n", max_event_size=None) == ["y" * 200_000]
    assert decode(*pieces, b"\r", b"\r", max_event_size=None) == ["y" * 200_000]
    framer = SSEFramer(max_event_size=None)
    assert [framer.feed(piece) for piece in pieces] == [[]] * len(pieces)
    assert framer.close() == body
    assert framer.truncated is True


def test_blank_line_flood() -> None:
    """100k blank lines (LF, CRLF, CR) fire nothing and cost little, whole or in pieces."""
    for unit in (b"\n", b"\r\n", b"\r"):
        raw = unit * 100_000
        t0 = time.perf_counter()
        assert decode(raw) == []
        assert decode(*[raw[i : i + 7] for i in range(0, len(raw), 7)]) == []
        assert decode(raw + b"data: x\n\n") == ["x"]
        assert time.perf_counter() - t0 < 5


def test_endless_line_bounded_memory() -> None:
    """A 10 MiB line without newline in 64 KiB pieces raises once past 1 MiB; memory stays
    bounded by the limit plus one piece."""
    piece = b"x" * 65536
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    tracemalloc.start()
    try:
        accepted, largest, error = feed_until_too_large(decoder, [piece] * 160)  # 10 MiB
        for _ in range(160 - accepted - 1):
            assert decoder.feed(piece) == []
            assert pending_size(decoder) == 0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error.limit == DEFAULT_MAX_EVENT_SIZE
    assert accepted == 15  # the 16th piece takes 6 + 16 * 65536 bytes past 1 MiB
    assert largest <= DEFAULT_MAX_EVENT_SIZE
    assert peak < DEFAULT_MAX_EVENT_SIZE + 4 * len(piece)
    assert pending_size(decoder) == 0


# --------------------------------------------------------------------------------------------
# 5. Where the common Python decoders deviate (reference §1.4, §2.1), and we do not


def openai_decode(chunks: Sequence[bytes]) -> list[tuple[str, str | None, str | None]]:
    """openai-python's decoder as ``openai.Stream`` drives it: ``iter_bytes`` over the reads."""
    return [(e.data, e.event, e.id) for e in OpenAISSEDecoder().iter_bytes(iter(chunks))]


def httpx_sse_lines(text: str) -> list[str]:
    """httpx-sse's line splitting of one text chunk, before any further input arrives."""
    return SSELineDecoder().decode(text)


class _MoreInputRequested(Exception):
    """Raised by ``first_then_stop`` when a decoder asks for the next chunk."""


def first_then_stop(chunk: bytes) -> Iterator[bytes]:
    """Yield ``chunk``, then fail if the consumer wants more before yielding an event."""
    yield chunk
    raise _MoreInputRequested


def test_bom_not_lost() -> None:
    """A leading BOM is stripped: the first event survives (openai-python loses it)."""
    raw = BOM + b"data: first\n\ndata: second\n\n"
    assert decode(raw) == ["first", "second"]
    assert openai_decode([raw]) == [("second", None, None)]


def test_invalid_utf8_does_not_raise() -> None:
    """Invalid UTF-8 becomes U+FFFD (openai-python raises ``UnicodeDecodeError``)."""
    raw = b"data: caf\xe9\n\n"
    assert decode(raw) == ["caf\ufffd"]
    with pytest.raises(UnicodeDecodeError):
        openai_decode([raw])


def test_heartbeat_after_id_is_no_phantom_event() -> None:
    """A ``: ping`` blank line after an ``id:`` fires nothing (the SDK decoders fire ``""``)."""
    raw = b"id: 1\ndata: {}\n\n: ping\n\ndata: {}\n\n"
    assert decode_events([raw]) == [ServerSentEvent("{}", id="1"), ServerSentEvent("{}", id="1")]
    assert openai_decode([raw]) == [("{}", None, "1"), ("", None, "1"), ("{}", None, "1")]
    decoder = HttpxSSEDecoder()
    fired = [decoder.decode(line) for line in httpx_sse_lines(raw.decode())]
    assert [e.data for e in fired if e is not None] == ["{}", "", "{}"]


def test_retry_only_block_fires_nothing() -> None:
    """``retry: 3000`` then a blank line fires nothing (openai-python fires an empty event)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"retry: 3000\n\n") == []
    assert decoder.retry == 3000
    assert openai_decode([b"retry: 3000\n\n"]) == [("", None, None)]


def test_retry_with_sign_rejected() -> None:
    """``retry: +5`` is not all digits and is ignored (``int("+5")`` in the SDKs accepts it)."""
    assert one(b"retry: +5\ndata: x\n\n").retry is None
    [sdk_event] = OpenAISSEDecoder().iter_bytes(iter([b"retry: +5\ndata: x\n\n"]))
    assert sdk_event.retry == 5


def test_cr_only_stream_not_held_back() -> None:
    """A CR-only event fires on the chunk that ends it (httpx-sse holds the last CR back)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\r\r") == [ServerSentEvent("x")]
    lines = httpx_sse_lines("data: x\r\r")
    assert lines == ["data: x"]  # the blank line is still held back: no dispatch yet


def test_lf_crlf_blank_line_releases_event() -> None:
    """LF then CRLF ends the event on that chunk (anthropic-python's chunker waits for more)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\r\n") == [ServerSentEvent("x")]
    anthropic = AnthropicSSEDecoder().iter_bytes(first_then_stop(b"data: x\n\r\n"))
    with pytest.raises(_MoreInputRequested):
        next(anthropic)


def test_no_splitlines_on_unicode_separators() -> None:
    """U+2028 inside data stays data (httpx ``aiter_lines`` splits there)."""
    raw = "data: a\u2028b\n\n"
    assert decode(raw.encode()) == ["a\u2028b"]
    assert httpx._decoders.LineDecoder().decode(raw)[:2] == ["data: a", "b"]


# --------------------------------------------------------------------------------------------
# 6. Linear cost


def test_large_event_small_pieces_linear() -> None:
    """One 16 MiB event fed in 64-byte pieces completes quickly (quadratic would take hours)."""
    size = 16 * MiB
    raw = b"data: " + b"x" * size + b"\n\n"
    view = memoryview(raw)
    decoder = SSEDecoder(max_event_size=None)
    events: list[ServerSentEvent] = []
    t0 = time.perf_counter()
    for i in range(0, len(raw), 64):
        events += decoder.feed(bytes(view[i : i + 64]))
    elapsed = time.perf_counter() - t0
    assert len(events) == 1
    assert len(events[0].data) == size
    assert elapsed < 10


def test_many_events_small_pieces_linear() -> None:
    """Many small CRLF events in 5-byte pieces (the general path) decode quickly."""
    raw = b"event: e\r\ndata: 0123456789\r\n\r\n" * 20_000
    t0 = time.perf_counter()
    events = decode_events([raw[i : i + 5] for i in range(0, len(raw), 5)])
    assert len(events) == 20_000
    assert time.perf_counter() - t0 < 10
