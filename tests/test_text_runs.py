"""Text runs (``TextRun``) change nothing anyone can see.

When one ``feed()`` completes many upstream events, ``StreamAdapter`` asks the reader for runs of
plain text deltas (``Reader.read_text_run``) and hands each run on as one ``TextRun``
(``Writer.write_run``, ``Content.add``); a read completing a single event takes the per-event
path. The contract: the client's bytes and the ``StreamResult`` (outcome, response, usage, error,
events) are exactly those of the per-event path, for every input.

The reference is the upstream fed one event per ``feed()`` (a single-event read never forms a
run); it is compared with the same upstream fed whole and in read sizes of a socket's, with the
same ``clock`` and ``id_factory``:

1. every fixture scenario and long text-heavy ones, both upstream formats (``openai-chat``,
   ``anthropic-messages``), every client format, with and without ``include_usage``,
   ``reasoning="drop"``, ``visible_errors``;
2. crafted events in the middle of runs of text deltas that must end a run (or that a run may
   swallow only if the per-event path reads them as plain text), and texts inside runs written
   with every kind of JSON escape, or with what JSON refuses there (the runs' texts are decoded
   and encoded together: ``load_strings``, ``dump_strings``), under the installed JSON
   backend and under the standard library's (the package's fallback without orjson);
3. hypothesis: random sequences of those events and random read splits;
4. the runs really happen (direct ``read_text_run`` calls, the writer's ``write_run`` called),
   and the official SDKs accept a run-heavy stream in each direction.

The reference itself is checked too: the per-event path reads the crafted streams as they read
with every event parsed whole (the readers' shortcuts, which the runs share, change nothing).
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_sse_adapter import SSEDecoder
from asgi_sse_adapter import _json as json_backend
from asgi_sse_adapter.adapter import StreamAdapter, StreamResult
from asgi_sse_adapter.formats.anthropic_messages import MessagesReader, MessagesWriter
from asgi_sse_adapter.formats.openai_chat import ChatReader, ChatWriter
from asgi_sse_adapter.parts import ArgumentsRun, TextDelta, TextRun, ToolCallDelta, ToolCallEnd
from tests.fixtures import (
    CHAT_SCENARIOS,
    HELLO,
    MESSAGES_SCENARIOS,
    REFUSAL,
    THOUGHT,
    THOUGHT_UNSIGNED,
    TOOLU_WEATHER,
    UNICODE,
    WEATHER,
    Scenario,
    Text,
    chat_stream,
    messages_stream,
)
from tests.test_translate import (
    CLOCK,
    consume_chat_chunks,
    counter_ids,
    final_completion,
    final_message,
)

CHAT = "openai-chat"
MESSAGES = "anthropic-messages"
UPSTREAMS = (CHAT, MESSAGES)
CLIENTS = (CHAT, "openai-text", "openai-responses", MESSAGES, "anthropic-text")
OPTION_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "include_usage": {"include_usage": True},
    "drop_reasoning": {"reasoning": "drop"},
    "visible_errors": {"visible_errors": True},
    "all": {"include_usage": True, "reasoning": "drop", "visible_errors": True},
}
# Read sizes: None is the whole upstream in one feed; the others are a socket's usual reads.
READ_SIZES: tuple[int | None, ...] = (None, 1460, 4096, 16384)


@pytest.fixture(autouse=True)
def _quiet_adapter(caplog: pytest.LogCaptureFixture) -> None:
    """Malformed input logs a warning per stream; keep thousands of records out of the run."""
    caplog.set_level(logging.CRITICAL + 1, "asgi_sse_adapter")


# -- running both paths ---------------------------------------------------------------------------


@dataclass
class Run:
    """One adapter run: the client bytes, the result, and how many events runs consumed."""

    out: bytes
    result: StreamResult
    run_events: int
    runs: int


def translate(
    upstream: str,
    client: str,
    pieces: Sequence[bytes],
    options: dict[str, Any],
    *,
    runs: bool = True,
) -> Run:
    """Feed ``pieces`` to a deterministic adapter and close it; record the runs it read, from
    columns (``read_text_run``) and from raw blocks (``read_blocks``). ``runs=False``: the
    per-event path only, whatever the read sizes."""
    adapter = StreamAdapter(
        upstream_format=upstream,
        client_format=client,
        clock=lambda: CLOCK,
        id_factory=counter_ids(),
        **options,
    )
    counted = [0, 0]
    if not runs:
        adapter._text_runs = adapter._argument_runs = False
        adapter._block_runs = adapter._one_blocks = False
    reader = adapter._reader
    if adapter._text_runs and reader is not None:
        read_run = reader.read_text_run

        def recording(
            values: Sequence[str], types: Sequence[str | None], start: int
        ) -> tuple[list[str], int]:
            texts, end = read_run(values, types, start)
            if end > start:
                counted[0] += end - start
                counted[1] += 1
            return texts, end

        reader.read_text_run = recording  # type: ignore[method-assign]
    if adapter._block_runs and reader is not None:
        read_blocks = reader.read_blocks

        def recording_blocks(text: str) -> tuple[Any, int, int]:
            run, count, end = read_blocks(text)
            if isinstance(run, TextRun):
                counted[0] += count
                counted[1] += 1
            return run, count, end

        reader.read_blocks = recording_blocks  # type: ignore[method-assign]
    out = [adapter.feed(piece) for piece in pieces]
    out.append(adapter.close())
    assert adapter.ended
    return Run(b"".join(out), adapter.result, counted[0], counted[1])


def by_size(data: bytes, size: int | None) -> list[bytes]:
    """``data`` in reads of ``size`` bytes (``None``: one read)."""
    if size is None:
        return [data]
    return [data[i : i + size] for i in range(0, len(data), size)]


def first_difference(got: bytes, want: bytes, reference: str = "per-event path") -> str:
    """Where two client streams part, event by event (for the assertion message)."""
    a, b = got.split(b"\n\n"), want.split(b"\n\n")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return f"event {i}: got {x[:300]!r}, {reference} gave {y[:300]!r}"
    return f"got {len(a)} event blocks, {reference} gave {len(b)}"


def attempt(
    upstream: str,
    client: str,
    pieces: Sequence[bytes],
    options: dict[str, Any],
    *,
    runs: bool = True,
) -> Run | Exception:
    """``translate``, or what it raised (the per-event path may raise for some input, and the
    other paths must then raise the same)."""
    try:
        return translate(upstream, client, pieces, options, runs=runs)
    except Exception as exc:
        return exc


def assert_same(
    upstream: str,
    client: str,
    events: Sequence[bytes],
    options: dict[str, Any],
    splits: Sequence[Sequence[bytes]],
    label: str = "",
) -> list[Run]:
    """Each split of ``events`` gives the bytes and result of one event per ``feed()`` parsed
    as SSE; so does one event per ``feed()`` with the fast paths on (``read_text_block``). Returns
    the splits' runs."""
    reference = attempt(upstream, client, events, options, runs=False)
    runs = []
    for pieces in [events, *splits]:
        got = attempt(upstream, client, pieces, options)
        where = f"{label} {upstream}->{client} {options} reads={[len(p) for p in pieces][:8]}"
        if isinstance(reference, Exception):
            assert type(got) is type(reference), f"{where}: per-event path raised {reference!r}"
            continue
        assert not isinstance(got, Exception), f"{where}: raised {got!r}, per-event path did not"
        assert got.out == reference.out, f"{where}: {first_difference(got.out, reference.out)}"
        assert got.result == reference.result, f"{where}: result"
        if pieces is not events:
            runs.append(got)
    return runs


def read_splits(data: bytes, sizes: Sequence[int | None] = READ_SIZES) -> list[list[bytes]]:
    """``data`` in each read size, duplicates (a size over the stream's length) left out."""
    out: list[list[bytes]] = []
    for size in sizes:
        pieces = by_size(data, size)
        if pieces not in out:
            out.append(pieces)
    return out


def events_of(data: bytes) -> list[bytes]:
    """A fixture stream cut at its event boundaries (its events end in ``\\n\\n``, none
    holds a blank line)."""
    blocks = [block + b"\n\n" for block in data.split(b"\n\n")[:-1]]
    assert b"".join(blocks) == data
    return blocks


# -- 1. fixture and long streams ------------------------------------------------------------------

# Text that looks like the readers' own shortcuts and markers, non-BMP characters, escapes and an
# empty fragment (which a run counts but does not carry).
TRICKY = (
    '"}}',
    '"delta":{"content":',
    '\\"delta\\":{\\"content\\":',
    "😀 smile",
    "",
    '"text":"x"}}',
    "line\nbreak\r\n\t\x00\u2028",
    "data: [DONE]\n\n",
    "日本語",
)
LONG = Text(tuple(f"word{i} " if i % 10 else TRICKY[(i // 10) % len(TRICKY)] for i in range(240)))
LONG_2 = Text(tuple(f"more {i}, " for i in range(60)))

LONG_CHAT = [
    Scenario("long_text", (LONG,), "stop"),
    Scenario("long_unicode", (UNICODE, LONG, UNICODE), "length"),
    Scenario("long_mixed", (THOUGHT_UNSIGNED, LONG, WEATHER, LONG_2), "tool_calls"),
    Scenario("long_refusal", (LONG, REFUSAL, LONG_2), "stop"),
    Scenario("long_usage_on_finish", (LONG,), "stop", usage_layout="on_finish"),
    Scenario("long_combined_finish", (LONG,), "stop", chat_quirk="combined_finish"),
    Scenario("long_empty_finish", (LONG,), "stop", chat_quirk="empty_finish"),
    Scenario("long_truncated", (LONG,), None),
    Scenario("long_error", (LONG,), None, error=("server_error", "The server had an error")),
    Scenario("long_no_terminator", (LONG,), "stop", terminator=False),
]
LONG_MESSAGES = [
    Scenario("long_text", (LONG,), "end_turn"),
    Scenario("long_unicode", (UNICODE, LONG, UNICODE), "max_tokens"),
    Scenario("long_mixed", (THOUGHT, LONG, TOOLU_WEATHER, LONG_2), "tool_use"),
    Scenario("long_two_blocks", (LONG, HELLO, LONG_2), "end_turn"),
    Scenario("long_truncated", (LONG,), None),
    Scenario("long_error", (HELLO, LONG), None, error=("overloaded_error", "Overloaded")),
    Scenario("long_no_terminator", (LONG,), "end_turn", terminator=False),
]
STREAMS: dict[str, list[tuple[str, bytes]]] = {
    CHAT: [(s.name, chat_stream(s)) for s in [*CHAT_SCENARIOS.values(), *LONG_CHAT]],
    MESSAGES: [
        (s.name, messages_stream(s)) for s in [*MESSAGES_SCENARIOS.values(), *LONG_MESSAGES]
    ],
}


@pytest.mark.parametrize("options", OPTION_SETS.values(), ids=list(OPTION_SETS))
@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("upstream", UPSTREAMS)
def test_scenarios_whole_and_in_reads(upstream: str, client: str, options: dict[str, Any]) -> None:
    """Every fixture scenario and the long ones: fed whole and in 1460/4096/16384-byte reads,
    the client bytes and ``result`` equal those of one event per ``feed()``."""
    run_events = 0
    for name, data in STREAMS[upstream]:
        runs = assert_same(upstream, client, events_of(data), options, read_splits(data), name)
        run_events += sum(r.run_events for r in runs)
    if upstream != client:  # identity passes bytes through: no reader, no runs
        assert run_events > 1000, "the streams fed whole must form text runs"


# -- 2. crafted run-breakers ----------------------------------------------------------------------


def sse(data: str, event: str | None = None) -> bytes:
    """One SSE event holding ``data`` (one line) and, if given, an ``event:`` line."""
    head = f"event: {event}\n" if event is not None else ""
    return (head + f"data: {data}\n\n").encode()


CHAT_ENVELOPE = (
    '{"id":"chatcmpl-run","object":"chat.completion.chunk","created":1700000123,'
    '"model":"gpt-4o-run","system_fingerprint":"fp_run",'
)


def chat_body(
    delta: str, *, index: str = "0", finish: str = "null", extra: str = "", envelope: str = ""
) -> str:
    """A chunk's JSON, OpenAI's key order: one choice with ``delta`` (JSON text)."""
    choice = f'{{"index":{index},"delta":{delta},"logprobs":null,"finish_reason":{finish}}}'
    return (envelope or CHAT_ENVELOPE) + f'"choices":[{choice}]{extra}}}'


def chat_text(text: str, *, ascii_only: bool = False, obfuscation: str | None = None) -> bytes:
    """A plain content chunk, as OpenAI sends it (with its random ``obfuscation`` field, if
    given: OpenAI's default, ``stream_options.include_obfuscation``)."""
    extra = "" if obfuscation is None else ',"obfuscation":' + json.dumps(obfuscation)
    delta = '{"content":' + json.dumps(text, ensure_ascii=ascii_only) + "}"
    return sse(chat_body(delta, extra=extra))


def chat_tool(
    index: int | None,
    *,
    call_id: str | None = None,
    name: str | None = None,
    args: str = "",
    obfuscation: str | None = None,
) -> bytes:
    """A tool-call chunk, OpenAI's key order: one call (``index`` ``None``: no ``index`` key)."""
    call: dict[str, Any] = {} if index is None else {"index": index}
    if call_id is not None:
        call.update({"id": call_id, "type": "function"})
    call["function"] = ({"name": name} if name is not None else {}) | {"arguments": args}
    extra = "" if obfuscation is None else ',"obfuscation":' + json.dumps(obfuscation)
    delta = '{"tool_calls":[' + json.dumps(call, separators=(",", ":")) + "]}"
    return sse(chat_body(delta, extra=extra))


def chat_tool_raw(calls: str) -> bytes:
    """A tool-call chunk whose ``tool_calls`` list holds ``calls`` (JSON text) as they are."""
    return sse(chat_body('{"tool_calls":[' + calls + "]}"))


def two_choices(first: str, second: str) -> bytes:
    """A chunk with two choices (JSON texts of the choice objects), in this order."""
    return sse(CHAT_ENVELOPE + f'"choices":[{first},{second}]}}')


CHAT_ROLE = sse(chat_body('{"role":"assistant","content":"","refusal":null}'))
CHAT_FINISH = sse(chat_body("{}", finish='"stop"'))
CHAT_USAGE = sse(
    CHAT_ENVELOPE + '"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,'
    '"total_tokens":12}}'
)
CHAT_DONE = b"data: [DONE]\n\n"
CONTENT_X = '{"content":"x"}'
DEEP = "[" * 100_000 + "]" * 100_000

CHAT_BREAKERS: dict[str, list[bytes]] = {
    # Unreadable events.
    "malformed_json": [sse('{"choices":[{"index":0,"delta":{"content":"x"')],
    "malformed_mark_only": [sse('"delta":{"content":"x"}')],
    "malformed_bad_escape": [sse(chat_body('{"content":"a\\q"}'))],
    "not_an_object": [sse('[{"delta":{"content":"x"}}]')],
    "deep_nesting": [sse(chat_body(CONTENT_X, extra=f',"x":{DEEP}'))],
    "deep_nesting_in_text": [sse(chat_body('{"content":' + "[" * 100_000 + "}"))],
    "huge_float": [sse(chat_body(CONTENT_X, extra=',"x":1e400'))],
    "huge_int": [sse(chat_body(CONTENT_X, extra=',"x":' + "1" * 5000))],
    "lone_surrogate": [sse(chat_body('{"content":"\\ud83d"}'))],
    # Errors.
    "error_event": [
        sse('{"error":{"message":"boom","type":"server_error","param":null,"code":null}}', "error")
    ],
    "error_event_on_content_chunk": [sse(chat_body(CONTENT_X), "error")],
    "error_field_with_content": [
        sse(chat_body(CONTENT_X, extra=',"error":{"message":"bad","type":"server_error"}'))
    ],
    "error_string_with_content": [sse(chat_body(CONTENT_X, extra=',"error":"bad"'))],
    "error_falsy_with_content": [
        sse(chat_body(CONTENT_X, extra=',"error":null')),
        sse(chat_body(CONTENT_X, extra=',"error":{}')),
        sse(chat_body(CONTENT_X, extra=',"error":""')),
        sse(chat_body(CONTENT_X, extra=',"error":0')),
    ],
    "object_error_with_content": [
        sse(
            chat_body(
                CONTENT_X,
                envelope='{"id":"x","object":"error","message":"bad","type":"server_error",',
            )
        )
    ],
    "finish_error": [sse(chat_body(CONTENT_X, finish='"error"'))],
    # Usage.
    "usage_dict": [
        sse(
            chat_body(
                CONTENT_X,
                extra=',"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}',
            )
        )
    ],
    "usage_null_and_number": [
        sse(chat_body(CONTENT_X, extra=',"usage":null')),
        sse(chat_body(CONTENT_X, extra=',"usage":5')),
    ],
    "usage_chunk": [CHAT_USAGE],
    # Finish reasons (later text of the finished choice is dropped).
    "finish_with_content": [sse(chat_body(CONTENT_X, finish='"stop"'))],
    "finish_alone": [sse(chat_body("{}", finish='"length"'))],
    "finish_empty_string": [sse(chat_body(CONTENT_X, finish='""'))],
    "finish_false": [sse(chat_body(CONTENT_X, finish="false"))],
    # Other choices and odd indexes.
    "choice_1": [sse(chat_body(CONTENT_X, index="1"))],
    "choice_1_finishes": [
        sse(chat_body(CONTENT_X, index="1")),
        sse(chat_body("{}", index="1", finish='"stop"')),
    ],
    "choice_2_gap": [sse(chat_body(CONTENT_X, index="2"))],
    "index_null": [sse(chat_body(CONTENT_X, index="null"))],
    "index_true": [sse(chat_body(CONTENT_X, index="true"))],
    "index_false": [sse(chat_body(CONTENT_X, index="false"))],
    "index_string": [sse(chat_body(CONTENT_X, index='"0"'))],
    "index_float": [sse(chat_body(CONTENT_X, index="0.0"))],
    "index_negative": [sse(chat_body(CONTENT_X, index="-1"))],
    "index_huge": [sse(chat_body(CONTENT_X, index="1000000"))],
    "no_index": [sse(CHAT_ENVELOPE + '"choices":[{"delta":{"content":"x"}}]}')],
    "two_choices": [
        sse(
            CHAT_ENVELOPE + '"choices":[{"index":0,"delta":{"content":"a"}},'
            '{"index":1,"delta":{"content":"b"}}]}'
        )
    ],
    "two_choices_same_index": [
        sse(
            CHAT_ENVELOPE + '"choices":[{"index":0,"delta":{"content":"a"}},'
            '{"index":0,"delta":{"content":"b"}}]}'
        )
    ],
    "no_choice_mark_elsewhere": [
        sse(CHAT_ENVELOPE + '"choices":[],"x":{"delta":{"content":"y"}}}'),
        sse(CHAT_ENVELOPE + '"choices":null,"x":{"delta":{"content":"y"}}}'),
        sse(CHAT_ENVELOPE + '"choices":["x"],"x":{"delta":{"content":"y"}}}'),
        sse(CHAT_ENVELOPE + '"choices":{"a":1},"x":{"delta":{"content":"y"}}}'),
        sse(CHAT_ENVELOPE + '"choices":[{"index":0,"delta":"s"}],"x":{"delta":{"content":"y"}}}'),
        sse(CHAT_ENVELOPE + '"choices":[[1]],"x":{"delta":{"content":"y"}}}'),
    ],
    "mark_in_another_field": [
        sse(chat_body('{"reasoning_content":"r"}', extra=',"x":{"delta":{"content":"fake"}}')),
        sse(chat_body("{}", extra=',"x":{"delta":{"content":"fake"}}')),
    ],
    # Deltas with more than content.
    "content_and_tool_calls": [
        sse(
            chat_body(
                '{"content":"x","tool_calls":[{"index":0,"id":"call_r","type":"function",'
                '"function":{"name":"f","arguments":"{}"}}]}'
            )
        )
    ],
    "content_and_reasoning_content": [sse(chat_body('{"content":"x","reasoning_content":"t"}'))],
    "content_and_reasoning": [sse(chat_body('{"content":"x","reasoning":"t"}'))],
    "content_and_refusal": [
        sse(chat_body('{"content":"x","refusal":"no"}')),
        sse(chat_body('{"content":"x","refusal":null}')),
    ],
    "content_and_function_call": [
        sse(chat_body('{"content":"x","function_call":{"name":"f","arguments":"{}"}}'))
    ],
    "content_then_role": [sse(chat_body('{"content":"x","role":"assistant"}'))],
    "role_first": [
        sse(chat_body('{"role":null,"content":"x"}')),
        sse(chat_body('{"role":"assistant","content":"y"}')),
    ],
    "signed_reasoning": [
        sse(
            chat_body(
                '{"reasoning_content":"r","thinking_blocks":[{"type":"thinking",'
                '"thinking":"r","signature":"c2ln"}]}'
            )
        )
    ],
    "reasoning_chunk": [sse(chat_body('{"reasoning_content":"\\"delta\\":{\\"content\\":"}'))],
    "tool_call_chunk": [
        sse(
            chat_body(
                '{"tool_calls":[{"index":0,"id":"call_r","type":"function",'
                '"function":{"name":"f","arguments":"{\\"a\\":1}"}}]}'
            )
        )
    ],
    # Content that is no text.
    "content_number": [sse(chat_body('{"content":5}'))],
    "content_null": [sse(chat_body('{"content":null}'))],
    "content_list": [sse(chat_body('{"content":["a"]}'))],
    "content_object": [sse(chat_body('{"content":{"a":"b"}}'))],
    "content_true": [sse(chat_body('{"content":true}'))],
    "content_empty": [sse(chat_body('{"content":""}')), sse(chat_body('{"content":""}'))],
    # Text that is odd but plain.
    "surrogate_pair_escaped": [sse(chat_body('{"content":"\\ud83d\\ude00"}'))],
    "escapes": [sse(chat_body('{"content":"a\\"}}\\\\\\n\\t\\u0000\\u2028\\/"}'))],
    "text_quote_braces": [chat_text('"}}'), chat_text('"}]}')],
    "text_with_mark": [chat_text('"delta":{"content":'), chat_text('\\"delta\\":{\\"content\\":')],
    "ascii_escaped_text": [chat_text("😀 ünï", ascii_only=True)],
    "whitespace_no_mark": [
        sse('{ "choices" : [ { "index" : 0 , "delta" : { "content" : "x" } } ] }'),
    ],
    "whitespace_after_mark": [
        sse(chat_body('{"content": "x" }')),
        sse(chat_body('{"content":"y"}') + "  "),
        sse(chat_body('{"content":\t"z"\n}')),
    ],
    "duplicate_keys": [sse(chat_body('{"content":"a","content":"b"}'))],
    "extra_choice_fields": [
        sse(
            CHAT_ENVELOPE + '"choices":[{"index":0,"delta":{"content":"x"},'
            '"logprobs":{"content":[]},"finish_reason":null,"matched_stop":null}]}'
        )
    ],
    # OpenAI's obfuscation field, alphanumeric or not.
    "obfuscation": [
        chat_text("o1", obfuscation="a1B2"),
        chat_text("o2", obfuscation="Zz9"),
        chat_text("o3", obfuscation=""),
        chat_text("o4", obfuscation="a-b"),
        chat_text("o5", obfuscation='q"}]}'),
        chat_text("o6", obfuscation="ünï"),
        chat_text("o7", obfuscation="a1B2"),
    ],
    # Chunks whose first content mark is not the text choice 0 reads: what they say differs
    # from a chunk of the same shape read before them only at that first mark.
    "mark_before_choices": [
        sse(chat_body(CONTENT_X, envelope=CHAT_ENVELOPE + '"x":{"delta":{"content":"p"}},')),
        sse(chat_body(CONTENT_X, envelope=CHAT_ENVELOPE + '"x":{"delta":{"content":"q"}},')),
    ],
    "empty_choice_1_first": [
        two_choices('{"index":1,"delta":{"content":""}}', '{"index":0,"delta":{"content":"a"}}'),
        two_choices('{"index":1,"delta":{"content":"B"}}', '{"index":0,"delta":{"content":"a"}}'),
    ],
    "finished_choice_1_first": [
        sse(chat_body(CONTENT_X, index="1")),
        sse(chat_body("{}", index="1", finish='"stop"')),
        two_choices('{"index":1,"delta":{"content":"c"}}', '{"index":0,"delta":{"content":"a"}}'),
        two_choices('{"index":1,"delta":{"content":"D"}}', '{"index":0,"delta":{"content":"a"}}'),
    ],
    "duplicate_content_keys": [
        sse(chat_body('{"content":"a","content":"b"}')),
        sse(chat_body('{"content":"c","content":"b"}')),
    ],
    # Tool calls and their argument fragments (``ChatReader``'s argument template).
    "tool_args": [
        chat_tool(0, call_id="call_a", name="f", args=""),
        *(chat_tool(0, args=a) for a in ('{"q":', '"x', 'y\\"}', '"', "}")),
    ],
    "tool_args_obfuscation": [
        chat_tool(0, call_id="call_a", name="f", args="{"),
        chat_tool(0, args='"a"', obfuscation="Ab1"),
        chat_tool(0, args=":1", obfuscation="z9"),
        chat_tool(0, args="}", obfuscation="a-b"),
    ],
    "tool_args_no_index": [
        chat_tool(None, call_id="call_a", name="f", args="{"),
        chat_tool(None, args='"a":'),
        chat_tool(None, call_id="call_b", name="g", args="{"),
        chat_tool(None, args='"b":'),
        chat_tool(None, args="2}"),
    ],
    "tool_args_index_true": [
        chat_tool(0, call_id="call_a", name="f", args="{"),
        chat_tool(0, args='"a":'),
        chat_tool_raw('{"index":true,"function":{"arguments":"1}"}}'),
    ],
    "tool_args_two_calls": [
        chat_tool(0, call_id="call_a", name="f", args="{"),
        chat_tool(1, call_id="call_b", name="g", args="{"),
        chat_tool(0, args='"a":1'),
        chat_tool(1, args='"b":2'),
        chat_tool(0, args="}"),
        chat_tool(1, args="}"),
        chat_tool_raw(
            '{"index":0,"function":{"arguments":" "}},{"index":1,"function":{"arguments":" "}}'
        ),
    ],
    "tool_args_foreign_mark": [
        chat_tool(0, call_id="call_a", name="f", args="{"),
        sse(
            chat_body(
                '{"tool_calls":[{"index":0,"function":{"arguments":"1"}}]}',
                envelope=CHAT_ENVELOPE + '"x":{"function":{"arguments":"p"}},',
            )
        ),
        sse(
            chat_body(
                '{"tool_calls":[{"index":0,"function":{"arguments":"1"}}]}',
                envelope=CHAT_ENVELOPE + '"x":{"function":{"arguments":"q"}},',
            )
        ),
    ],
    "tool_args_repeated_key": [
        chat_tool(0, call_id="call_a", name="f", args="{"),
        chat_tool_raw('{"index":0,"function":{"arguments":"a","arguments":"b"}}'),
        chat_tool_raw('{"index":0,"function":{"arguments":"c","arguments":"b"}}'),
    ],
    "tool_args_pending_then_named": [
        chat_tool(0, call_id="call_a", args="{"),
        chat_tool(0, args='"a":'),
        chat_tool(0, name="f", args="1"),
        chat_tool(0, args="}"),
    ],
    "tool_args_choice_1": [
        sse(
            chat_body(
                '{"tool_calls":[{"index":0,"id":"c1","function":{"name":"f","arguments":""}}]}',
                index="1",
            )
        ),
        sse(chat_body('{"tool_calls":[{"index":0,"function":{"arguments":"{"}}]}', index="1")),
        sse(chat_body('{"tool_calls":[{"index":0,"function":{"arguments":"}"}}]}', index="1")),
    ],
    "tool_args_odd_strings": [
        chat_tool(0, call_id="call_a", name="f", args=""),
        chat_tool(0, args='"}}]}'),
        chat_tool(0, args='\\"function\\":{\\"arguments\\":'),
        chat_tool(0, args="😀\u2028"),
        chat_tool_raw('{"index":0,"function":{"arguments":5}}'),
        chat_tool_raw('{"index":0,"function":{"arguments":null}}'),
    ],
    # Framing.
    "two_data_lines": [
        (
            "data: " + CHAT_ENVELOPE + "\n"
            'data: "choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\n\n'
        ).encode()
    ],
    "crlf": [chat_text("cr").replace(b"\n", b"\r\n")],
    "comment_id_retry": [b": keepalive\n\n", b"id: 7\n" + chat_text("i"), b"retry: 100\n\n"],
    "event_message": [sse(chat_body(CONTENT_X), "message")],
    "empty_data": [b"data: \n\n", b"data:  \n\n"],
    "azure_preamble": [
        sse(
            '{"choices":[],"created":0,"id":"","model":"","object":"",'
            '"prompt_filter_results":[{"prompt_index":0,"content_filter_results":{}}]}'
        )
    ],
    # Ends of stream in the middle (what follows must be ignored).
    "done": [CHAT_DONE],
}

MESSAGES_START = sse(
    '{"type":"message_start","message":{"id":"msg_run","type":"message","role":"assistant",'
    '"content":[],"model":"claude-run","stop_reason":null,"stop_sequence":null,'
    '"usage":{"input_tokens":11,"output_tokens":1}}}',
    "message_start",
)
MESSAGES_PING = sse('{"type":"ping"}', "ping")
MESSAGES_DELTA = sse(
    '{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
    '"usage":{"output_tokens":9}}',
    "message_delta",
)
MESSAGES_STOP = sse('{"type":"message_stop"}', "message_stop")


def block_start(index: int, block: str = '{"type":"text","text":""}') -> bytes:
    """A ``content_block_start``."""
    body = f'{{"type":"content_block_start","index":{index},"content_block":{block}}}'
    return sse(body, "content_block_start")


def block_stop(index: int) -> bytes:
    """A ``content_block_stop``."""
    return sse(f'{{"type":"content_block_stop","index":{index}}}', "content_block_stop")


TOOL_BLOCK = '{"type":"tool_use","id":"toolu_1","name":"f","input":{}}'


def json_delta(partial: str, index: int) -> bytes:
    """An argument fragment, as the API sends it (compact JSON, its key order)."""
    return delta_event(
        '{"type":"input_json_delta","partial_json":'
        + json.dumps(partial, ensure_ascii=False)
        + "}",
        index,
    )


def delta_event(delta: str, index: int = 0, name: str | None = "content_block_delta") -> bytes:
    """A ``content_block_delta`` holding ``delta`` (JSON text), the API's key order."""
    return sse(f'{{"type":"content_block_delta","index":{index},"delta":{delta}}}', name)


def messages_text(text: str, index: int = 0, *, ascii_only: bool = False) -> bytes:
    """A text delta, as Anthropic sends it."""
    encoded = json.dumps(text, ensure_ascii=ascii_only)
    return delta_event('{"type":"text_delta","text":' + encoded + "}", index)


TEXT_HEAD = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":'

# Each: the events, and the block index the text after them goes to.
MESSAGES_BREAKERS: dict[str, tuple[list[bytes], int]] = {
    # Unreadable events.
    "malformed_json": ([sse(TEXT_HEAD + '"a"}', "content_block_delta")], 0),
    "malformed_bad_escape": ([sse(TEXT_HEAD + '"a\\q"}}', "content_block_delta")], 0),
    "malformed_garbage": ([sse("{not json}", "content_block_delta")], 0),
    "not_an_object": ([sse('["x"]', "content_block_delta")], 0),
    "deep_nesting_in_text": ([sse(TEXT_HEAD + "[" * 100_000 + '"}}', "content_block_delta")], 0),
    "deep_nesting_elsewhere": ([sse(TEXT_HEAD + '"a"},"x":' + DEEP + "}")], 0),
    "lone_surrogate": ([sse(TEXT_HEAD + '"\\ud83d"}}', "content_block_delta")], 0),
    "huge_float_elsewhere": ([sse(TEXT_HEAD + '"a"},"x":1e400}')], 0),
    # Errors.
    "error_event": (
        [
            sse(
                '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
                "error",
            )
        ],
        0,
    ),
    "error_by_name_only": ([sse('{"error":{"type":"api_error","message":"x"}}', "error")], 0),
    "error_name_on_text_delta": ([sse(TEXT_HEAD + '"x"}}', "error")], 0),
    # Tool blocks and their argument fragments (``MessagesReader``'s argument shape).
    "tool_block": (
        [
            block_stop(0),
            block_start(1, TOOL_BLOCK),
            *(json_delta(p, 1) for p in ('{"q":', '"x', 'y\\"}', '"}}', "", "}")),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    "tool_fragments_after_stop": (
        [
            block_stop(0),
            block_start(1, TOOL_BLOCK),
            json_delta("{", 1),
            block_stop(1),
            json_delta('"late":1}', 1),
            block_start(2),
        ],
        2,
    ),
    "tool_block_replaced_at_its_index": (
        [
            block_stop(0),
            block_start(1, TOOL_BLOCK),
            json_delta("{", 1),
            block_start(1),
            json_delta("}", 1),
            messages_text("t", 1),
        ],
        1,
    ),
    "tool_fragment_for_another_index": (
        [
            block_stop(0),
            block_start(1, TOOL_BLOCK),
            json_delta("{", 2),
            json_delta("{", 1),
            json_delta('"a":1}', 1),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    "tool_fragment_not_a_string": (
        [
            block_stop(0),
            block_start(1, TOOL_BLOCK),
            delta_event('{"type":"input_json_delta","partial_json":5}', 1),
            delta_event('{"type":"input_json_delta","partial_json":"a","more":1}', 1),
            json_delta("😀\u2028", 1),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    "tool_fragment_in_text_block": ([json_delta("{}", 0)], 0),
    "tool_block_at_index_2": (
        [
            block_stop(0),
            block_start(1),
            messages_text("b1", 1),
            block_stop(1),
            block_start(2, TOOL_BLOCK),
            json_delta('{"a":', 2),
            json_delta("1}", 2),
            json_delta("!", 1),
            block_stop(2),
            block_start(3),
        ],
        3,
    ),
    # Arguments in the start block and then fragments too: the fragments mark the arguments
    # seen, so the start block's input is not added at the block's stop.
    "tool_input_in_start_and_fragments": (
        [
            block_stop(0),
            block_start(1, '{"type":"tool_use","id":"toolu_s","name":"f","input":{"a":1}}'),
            json_delta('{"b":', 1),
            json_delta("2}", 1),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    # Other blocks.
    "text_for_block_1": ([messages_text("x", 1), messages_text("y", 1)], 0),
    "next_text_block": ([block_stop(0), block_start(1), messages_text("n", 1)], 1),
    "next_text_block_with_text": (
        [block_stop(0), block_start(1, '{"type":"text","text":"pre"}')],
        1,
    ),
    "next_block_text_for_0": ([block_stop(0), block_start(1)], 0),
    "thinking_block_between": (
        [
            block_stop(0),
            block_start(1, '{"type":"thinking","thinking":"","signature":""}'),
            delta_event('{"type":"thinking_delta","thinking":"hmm"}', 1),
            delta_event('{"type":"signature_delta","signature":"c2ln"}', 1),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    "tool_block_between": (
        [
            block_stop(0),
            block_start(1, '{"type":"tool_use","id":"toolu_r","name":"f","input":{}}'),
            delta_event('{"type":"input_json_delta","partial_json":"{\\"a\\":1}"}', 1),
            block_stop(1),
            block_start(2),
        ],
        2,
    ),
    "block_start_no_index": (
        [block_stop(0), sse('{"type":"content_block_start","content_block":{"type":"text"}}')],
        1,
    ),
    # Other deltas in the text block.
    "thinking_delta": ([delta_event('{"type":"thinking_delta","thinking":"t"}')], 0),
    "signature_delta": ([delta_event('{"type":"signature_delta","signature":"c2ln"}')], 0),
    "input_json_delta": ([delta_event('{"type":"input_json_delta","partial_json":"{}"}')], 0),
    "citations_delta": (
        [delta_event('{"type":"citations_delta","citation":{"type":"char_location"}}')],
        0,
    ),
    "delta_without_type": ([delta_event('{"text":"x"}')], 0),
    # Text deltas of another shape.
    "extra_field_in_delta": ([delta_event('{"type":"text_delta","text":"a","x":1}')], 0),
    "extra_field_after_text": ([delta_event('{"type":"text_delta","text":"a","x":"b"}')], 0),
    "extra_top_level_field": ([sse(TEXT_HEAD + '"a"},"x":"y"}')], 0),
    "key_order": (
        [sse('{"index":0,"type":"content_block_delta","delta":{"text":"x","type":"text_delta"}}')],
        0,
    ),
    "whitespace": (
        [
            sse(
                '{"type": "content_block_delta", "index": 0, '
                '"delta": {"type": "text_delta", "text": "x"}}'
            ),
            sse(TEXT_HEAD + ' "y"}}'),
            sse(TEXT_HEAD + '"z"}} '),
        ],
        0,
    ),
    "index_missing": (
        [sse('{"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}')],
        0,
    ),
    "index_string": (
        [delta_event('{"type":"text_delta","text":"x"}').replace(b'"index":0', b'"index":"0"')],
        0,
    ),
    "text_not_string": (
        [
            delta_event('{"type":"text_delta","text":5}'),
            delta_event('{"type":"text_delta","text":null}'),
            delta_event('{"type":"text_delta","text":["a"]}'),
        ],
        0,
    ),
    "empty_text": ([messages_text(""), messages_text("")], 0),
    "surrogate_pair_escaped": ([sse(TEXT_HEAD + '"\\ud83d\\ude00"}}')], 0),
    "escapes": ([sse(TEXT_HEAD + '"a\\"}}\\\\\\n\\t\\u0000\\u2028\\/"}}')], 0),
    "text_quote_braces": ([messages_text('"}}'), messages_text('\\"}}'), messages_text("}}")], 0),
    "text_with_head": (
        [messages_text(TEXT_HEAD + '"x"}}'), messages_text('"delta":{"content":')],
        0,
    ),
    "ascii_escaped_text": ([messages_text("😀 ünï", ascii_only=True)], 0),
    # Other events.
    "ping": ([MESSAGES_PING], 0),
    "message_delta_usage": (
        [sse('{"type":"message_delta","delta":{},"usage":{"output_tokens":4}}', "message_delta")],
        0,
    ),
    "message_start_again": ([MESSAGES_START], 0),
    "unknown_event": ([sse('{"type":"future_event","x":1}', "future_event")], 0),
    "done_marker": ([CHAT_DONE], 0),
    # Framing.
    "two_data_lines": (
        [
            (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,\n'
                b'data: "delta":{"type":"text_delta","text":"x"}}\n\n'
            )
        ],
        0,
    ),
    "crlf": ([messages_text("cr").replace(b"\n", b"\r\n")], 0),
    "comment_id_retry": ([b": keepalive\n\n", b"id: 7\n" + messages_text("i"), b"retry: 9\n\n"], 0),
    "no_event_name": ([delta_event('{"type":"text_delta","text":"x"}', name=None)], 0),
    # Ends of stream in the middle (what follows must be ignored).
    "message_stop": ([MESSAGES_STOP], 0),
}

# Escapes inside runs. ``MessagesReader.read_text_run`` decodes a run's texts still encoded, all
# together (``load_strings``), or one at a time where that cannot be certain (a text ending with
# a backslash, an event that does not read); ``MessagesWriter`` and ``ChatWriter`` encode a run's
# texts in one call (``dump_strings``). Each entry sits between the plain runs of
# ``messages_with`` / ``chat_with``, so it joins them into one run where it reads as text.

# Texts JSON escapes (or that look like the encoding of a list of strings), written by
# ``json.dumps`` as an upstream does. None ends with a backslash (that makes ``load_strings``
# decline the run: entries of their own) or with a quote and a comma (see below).
ESCAPING_TEXTS = (
    "a\nb",
    'say "hi"',
    '"',
    "back\\slash",
    "\\x",
    '\\"',
    "/</",
    "café",
    "😀",
    "",
    "tab\tx\x01\x00\x1f\x7f",
    "\u2028\u2029\u00a0",
    'x","y',
    '","',
    '["a","b"]',
    "a\\u0000b",  # a backslash, then "u0000": what an encoder writes for NUL
    "日本語",
)


def messages_raw(body: str, head: str = TEXT_HEAD) -> bytes:
    """A text delta whose text is ``body`` written between the quotes as it stands: escapes of
    any form, or characters JSON refuses there."""
    return sse(head + '"' + body + '"}}', "content_block_delta")


def chat_raw(body: str) -> bytes:
    """A content chunk whose text is ``body`` written between the quotes as it stands."""
    return sse(chat_body('{"content":"' + body + '"}'))


MESSAGES_ESCAPE_RUNS: dict[str, list[bytes]] = {
    "escapes": [messages_text(t) for t in ESCAPING_TEXTS],
    "escapes_ascii": [messages_text(t, ascii_only=True) for t in ESCAPING_TEXTS],
    "escape_newline": [messages_raw("a\\nb")],
    "escape_quote": [messages_raw('say \\"hi\\"'), messages_raw('\\"')],
    "escape_backslash": [messages_raw("a\\\\b"), messages_raw("\\\\x")],
    "escape_solidus": [messages_raw("\\/path\\/"), messages_raw("\\/")],
    "escape_unicode": [messages_raw("caf\\u00e9"), messages_raw("\\u00E9\\u0022\\u005c")],
    "escape_surrogate_pair": [messages_raw("\\ud83d\\ude00 ok")],
    "escape_surrogate_pair_split": [messages_raw("a\\ud83d"), messages_raw("\\ude00b")],
    "escape_lone_surrogate": [messages_raw("\\ud800")],
    "escape_lone_surrogate_later": [messages_raw("x\\n"), messages_raw("y\\udfff")],
    # The stdlib reads a lone surrogate (orjson refuses the event): the writers then write that
    # text with ASCII escapes, and only that one.
    "escape_lone_surrogate_among_non_ascii": [
        messages_text("é😀\x7f"),
        messages_raw("\\ud800"),
        messages_raw("caf\\u00e9"),
        messages_text("\u2028日本"),
    ],
    "escape_broken_unicode": [messages_raw("\\n"), messages_raw("\\u12"), messages_raw("34")],
    "text_ends_with_backslash": [messages_raw("a\\\\"), messages_raw("b\\n")],
    "texts_of_backslashes": [
        messages_raw("\\\\"),
        messages_raw("\\\\\\\\"),
        messages_raw('\\\\\\"'),
    ],
    "raw_quote": [messages_raw("x\\n"), messages_raw('a"b')],
    "raw_quote_merging": [messages_raw('a","b')],
    "raw_quote_after_backslash": [messages_raw('a\\\\"b')],
    # Bodies that decode together though not alone: joined as a list's items, ``a\`` and ``,"``
    # read as ``["a\",",""]`` (two strings), the three below as ``["x",["","y",""],"z"]``.
    "raw_quote_escaped_by_the_join": [messages_raw("a\\"), messages_raw(',"')],
    "raw_quotes_regrouping": [messages_raw('x",["'), messages_raw("y"), messages_raw('"],"z')],
    "raw_tab": [messages_raw("a\tb")],
    "raw_control": [messages_raw("\\n"), messages_raw("a\x01b")],
    "raw_nul": [messages_raw("\x00")],
    "raw_del": [messages_raw("a\x7fb\\n")],
    "raw_separators": [
        messages_raw("a\u2028b"),
        messages_raw("\u00a0"),
        messages_raw("\u2029\\n"),
    ],
    "empty_texts": [messages_raw(""), messages_raw("\\n"), messages_raw("")],
    "degenerate_text": [sse(TEXT_HEAD + '"}}', "content_block_delta")],
    "degenerate_text_after_escape": [
        messages_raw("\\n"),
        sse(TEXT_HEAD + '"}}', "content_block_delta"),
    ],
    "whitespace_after_key": [
        sse(TEXT_HEAD + ' "a\\nb"}}', "content_block_delta"),
        sse(TEXT_HEAD + '\t"c"}}', "content_block_delta"),
        messages_raw("d\\n"),
    ],
    "middle_escape": [messages_text("p"), messages_raw("q\\nr"), messages_text("s")],
    # A text ending with a quote and a comma: its encoding ``\",`` is followed by the next
    # text's ``","`` when a writer encodes the run as a list.
    "text_ending_quote_comma": [
        messages_text('",'),
        messages_text("x"),
        messages_text('a\\",'),
        messages_text("y"),
    ],
}

CHAT_ESCAPE_RUNS: dict[str, list[bytes]] = {
    "escapes": [chat_text(t) for t in ESCAPING_TEXTS],
    "escapes_ascii": [chat_text(t, ascii_only=True) for t in ESCAPING_TEXTS],
    "escapes_obfuscation": [chat_text(t, obfuscation="a1B2") for t in ESCAPING_TEXTS],
    "escape_forms": [
        chat_raw("\\/path\\/"),
        chat_raw("caf\\u00e9 \\u0022\\u005c"),
        chat_raw("\\ud83d\\ude00"),
        chat_raw("\\b\\f\\n\\r\\t"),
    ],
    "escape_surrogate_pair_split": [chat_raw("a\\ud83d"), chat_raw("\\ude00b")],
    "escape_lone_surrogate": [chat_text("a\n"), chat_raw("\\ud800"), chat_text("b\n")],
    "escape_lone_surrogate_among_non_ascii": [
        chat_text("é😀\x7f"),
        chat_raw("\\ud800"),
        chat_raw("caf\\u00e9"),
        chat_text("\u2028日本"),
    ],
    "text_ends_with_backslash": [chat_text("a\\"), chat_text("\\"), chat_text("b")],
    "raw_quote": [chat_text("x\n"), chat_raw('a"b')],
    "raw_control": [chat_raw("a\tb"), chat_raw("\x01")],
    "raw_separators": [chat_raw("a\u2028b"), chat_raw("\u00a0"), chat_raw("\u2029\\n")],
    "empty_texts": [chat_text(""), chat_text("\n"), chat_text("")],
    "middle_escape": [chat_text("p"), chat_text("q\nr"), chat_text("s")],
    "text_ending_quote_comma": [
        chat_text('",'),
        chat_text("x"),
        chat_text('a\\",'),
        chat_text("y"),
    ],
}

RUN_1 = ("Hel", "lo", ", wor", "ld")
RUN_2 = ("!", " How", " are", " you?")


def chat_with(breaker: Sequence[bytes]) -> list[bytes]:
    """A Chat stream: role chunk, a run of text, ``breaker``, another run, finish, usage."""
    return [
        CHAT_ROLE,
        *(chat_text(t) for t in RUN_1),
        *breaker,
        *(chat_text(t) for t in RUN_2),
        CHAT_FINISH,
        CHAT_USAGE,
        CHAT_DONE,
    ]


def messages_with(breaker: Sequence[bytes], after: int) -> list[bytes]:
    """A Messages stream: a text block's run, ``breaker``, another run (block ``after``)."""
    return [
        MESSAGES_START,
        MESSAGES_PING,
        block_start(0),
        *(messages_text(t) for t in RUN_1),
        *breaker,
        *(messages_text(t, after) for t in RUN_2),
        block_stop(after),
        MESSAGES_DELTA,
        MESSAGES_STOP,
    ]


CRAFTED: list[Any] = [
    *(pytest.param(CHAT, chat_with(b), id=f"chat-{name}") for name, b in CHAT_BREAKERS.items()),
    *(
        pytest.param(MESSAGES, messages_with(b, after), id=f"messages-{name}")
        for name, (b, after) in MESSAGES_BREAKERS.items()
    ),
    *(
        pytest.param(CHAT, chat_with(b), id=f"chat-run_{name}")
        for name, b in CHAT_ESCAPE_RUNS.items()
    ),
    *(
        pytest.param(MESSAGES, messages_with(b, 0), id=f"messages-run_{name}")
        for name, b in MESSAGES_ESCAPE_RUNS.items()
    ),
]


@pytest.fixture(params=["installed", "stdlib"])
def json_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The JSON backend: the installed one (orjson in the test envs), or the standard library's,
    the package's own fallback when orjson is not installed (``asgi_sse_adapter._json``)."""
    if request.param == "stdlib":
        use_stdlib_json(monkeypatch)
    return str(request.param)


def use_stdlib_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every package module use ``asgi_sse_adapter._json``'s stdlib functions."""
    stdlib_loads: Callable[[str | bytes], Any] = json.loads
    stdlib_dumps = json_backend._dumps_stdlib
    loads, dumps = json_backend.loads, json_backend.dumps  # before ``_json`` itself is patched
    patched = 0
    for name, module in list(sys.modules.items()):
        if name != "asgi_sse_adapter" and not name.startswith("asgi_sse_adapter."):
            continue
        if getattr(module, "loads", None) is loads:
            monkeypatch.setattr(module, "loads", stdlib_loads)
            patched += 1
        if getattr(module, "dumps", None) is dumps:
            monkeypatch.setattr(module, "dumps", stdlib_dumps)
    assert patched >= 3, "the readers' modules no longer import loads from _json"
    # A list encoder of ``dump_strings``' own (the writers' runs), looked up in ``_json`` per
    # call, if it has one: its stdlib counterpart. Nothing in ``_json`` may reach orjson then.
    stdlib_list = getattr(json_backend, "_dumps_list_stdlib", None)
    if stdlib_list is not None:
        monkeypatch.setattr(json_backend, "_dumps_list", stdlib_list)
    if json_backend.BACKEND == "orjson":
        left = [name for name, value in vars(json_backend).items() if value in (loads, dumps)]
        assert not left, f"_json still reaches orjson through {left}"


@pytest.mark.parametrize(("upstream", "events"), CRAFTED)
def test_run_breakers(upstream: str, events: list[bytes], json_impl: str) -> None:
    """An odd event in the middle of a run of text deltas: every client, every option set, fed
    whole and in reads, gives the bytes and result of one event per ``feed()``; fed whole, the
    text before it was read as a run."""
    data = b"".join(events)
    # Reads of 97 and 301 bytes cut the runs anywhere, and end reads inside events.
    splits = read_splits(data, (None, 97, 301, 1460))
    for client in CLIENTS:
        for options in OPTION_SETS.values():
            runs = assert_same(upstream, client, events, options, splits)
            if upstream != client and runs:  # (no runs: the per-event path raised)
                # The first text after the role chunk may be read whole (to learn its shape).
                assert runs[0].run_events >= len(RUN_1) - 1, "the text before it formed no run"


def test_oversized_event_in_a_run() -> None:
    """An event over ``max_event_size`` after a run: the run's text, then the error tail."""
    big = chat_text("y" * 5000)
    for upstream, events in (
        (CHAT, chat_with([big])),
        (MESSAGES, messages_with([messages_text("y" * 5000)], 0)),
    ):
        data = b"".join(events)
        for client in CLIENTS:
            options = {"max_event_size": 2000, "visible_errors": True}
            runs = assert_same(upstream, client, events, options, read_splits(data, (None, 777)))
            assert runs[0].result.outcome == "failed"


def full_parse_events(events: Sequence[bytes]) -> list[bytes]:
    """``events`` with one more member in each JSON object, a field no format reads
    (``"x_nonce"``, the event's position): what the events say is unchanged, but no event has
    the shape of another any more, so the readers' shortcuts (``MessagesReader``'s exact text
    delta shape, ``ChatReader``'s chunk template) never apply and every event is parsed whole."""
    out: list[bytes] = []
    for position, block in enumerate(events):
        for event in SSEDecoder(max_event_size=None).feed(block):
            data = event.data
            try:
                obj = json.loads(data)
            except (ValueError, RecursionError):
                obj = None
            if isinstance(obj, dict) and obj and data.rstrip().endswith("}"):
                data = data.rstrip()[:-1] + f',"x_nonce":{position}}}'
            lines = [f"event: {event.event}"] if event.event is not None else []
            lines += [f"data: {line}" for line in data.split("\n")]
            out.append(("\n".join(lines) + "\n\n").encode())
    return out


@pytest.mark.parametrize(("upstream", "events"), CRAFTED)
def test_shortcuts_read_what_a_full_parse_reads(upstream: str, events: list[bytes]) -> None:
    """The per-event path, the reference above, reads each event as a full parse does: the
    crafted streams translate as they do with every event parsed whole (``full_parse_events``).
    The runs rely on it: they take a text wherever the reader's shortcut would."""
    full = full_parse_events(events)
    for client in CLIENTS:
        if client == upstream:
            continue  # identity passes the bytes through
        got = attempt(upstream, client, events, {})
        want = attempt(upstream, client, full, {})
        if isinstance(want, Exception):
            assert type(got) is type(want), f"{client}: a full parse raised {want!r}"
            continue
        assert not isinstance(got, Exception), f"{client}: raised {got!r}"
        diff = first_difference(got.out, want.out, "a full parse")
        assert got.out == want.out, f"{client}: {diff}"
        assert got.result == want.result, f"{client}: result"


# -- 3. hypothesis --------------------------------------------------------------------------------

texts = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(['"', "\\", "}", "\n", "\r", "\u2028", "😀", "\x00", ":"]),
    ),
    max_size=12,
) | st.sampled_from(TRICKY)


obfuscations = (
    st.none()
    | st.sampled_from(["", "a-b", "ü1", "x y"])
    | st.text("abcXYZ019", min_size=1, max_size=6)
)


@st.composite
def chat_upstreams(draw: st.DrawFn) -> list[bytes]:
    """A Chat upstream: runs of plain text chunks among the crafted events, some ending."""
    events: list[bytes] = [CHAT_ROLE] if draw(st.booleans()) or draw(st.booleans()) else []
    breakers = st.sampled_from(sorted(CHAT_BREAKERS))
    for _ in range(draw(st.integers(0, 8))):
        run = draw(st.lists(st.tuples(texts, st.booleans(), obfuscations), max_size=8))
        events += [chat_text(t, ascii_only=a, obfuscation=o) for t, a, o in run]
        if draw(st.integers(0, 3)) == 0:
            events.append(CHAT_ROLE)
        else:
            events += CHAT_BREAKERS[draw(breakers)]
    ending = draw(st.sampled_from(["finish", "done", "usage", "none"]))
    if ending == "finish":
        events += [CHAT_FINISH, CHAT_USAGE, CHAT_DONE]
    elif ending == "done":
        events.append(CHAT_DONE)
    elif ending == "usage":
        events += [CHAT_USAGE, CHAT_FINISH]
    return events


@st.composite
def messages_upstreams(draw: st.DrawFn) -> list[bytes]:
    """A Messages upstream: runs of text deltas (for one of a few blocks) among the crafted
    events and block changes, some ending."""
    events: list[bytes] = [MESSAGES_START] if draw(st.booleans()) or draw(st.booleans()) else []
    block = 0
    events.append(block_start(block))
    breakers = st.sampled_from(sorted(MESSAGES_BREAKERS))
    for _ in range(draw(st.integers(0, 8))):
        index = draw(st.sampled_from([block, block, block, block + 1, 0]))
        run = draw(st.lists(st.tuples(texts, st.booleans()), max_size=8))
        events += [messages_text(t, index, ascii_only=a) for t, a in run]
        choice = draw(st.integers(0, 3))
        if choice == 0:
            events += [block_stop(block), block_start(block + 1)]
            block += 1
        else:
            breaker, _ = MESSAGES_BREAKERS[draw(breakers)]
            events += breaker
    ending = draw(st.sampled_from(["stop", "no_stop", "none"]))
    if ending != "none":
        events += [block_stop(block), MESSAGES_DELTA]
    if ending == "stop":
        events.append(MESSAGES_STOP)
    return events


def random_split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at ``cuts`` (taken modulo its length)."""
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


RANDOM = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_random(upstream: str, events: list[bytes], data: st.DataObject) -> None:
    """Fed whole and split at random, ``events`` give what one event per feed gives."""
    # Not the identity pair: it has no reader or writer runs (its split invariance is
    # test_translate's), and its end-of-stream guess depends on the last reads' bytes.
    client = data.draw(st.sampled_from([c for c in CLIENTS if c != upstream]), label="client")
    options = OPTION_SETS[data.draw(st.sampled_from(sorted(OPTION_SETS)), label="options")]
    whole = b"".join(events)
    cuts = data.draw(st.lists(st.integers(0, 2**20), max_size=12), label="cuts")
    assert_same(upstream, client, events, options, [[whole], random_split(whole, cuts)])


@RANDOM
@given(events=chat_upstreams(), data=st.data())
def test_random_chat_upstreams(events: list[bytes], data: st.DataObject) -> None:
    """Hypothesis, Chat upstream: any mix of text runs and crafted events, fed whole or split
    anywhere, gives the bytes and result of one event per ``feed()``."""
    check_random(CHAT, events, data)


@RANDOM
@given(events=messages_upstreams(), data=st.data())
def test_random_messages_upstreams(events: list[bytes], data: st.DataObject) -> None:
    """Hypothesis, Messages upstream: the same."""
    check_random(MESSAGES, events, data)


# -- 4. the runs happen ---------------------------------------------------------------------------


def columns(events: Sequence[bytes]) -> tuple[list[str], list[str | None]]:
    """The ``data`` and type columns of ``events``, as the adapter decodes them."""
    values, types = SSEDecoder(max_event_size=None).feed_fields(b"".join(events))
    return values, types if types is not None else [None] * len(values)


def test_messages_reader_reads_a_run() -> None:
    """``MessagesReader.read_text_run`` on a started text block consumes every text delta up to
    the next other event; empty texts count as events but are left out of the texts."""
    texts = ["a", "", "b\n", '"}}', "😀", "c"]
    events = [
        MESSAGES_START,
        block_start(0),
        *(messages_text(t) for t in texts),
        messages_text("x", 1),
        *(messages_text(t) for t in texts),
        block_stop(0),
    ]
    values, types = columns(events)
    reader = MessagesReader()
    for i in range(2):
        reader.read_data(values[i], types[i])
    assert reader.read_text_run(values, types, 2) == (["a", "b\n", '"}}', "😀", "c"], 8)
    assert reader.read_text_run(values, types, 8) == ([], 8)  # block 1's delta ends the run
    assert reader.read_data(values[8], types[8]) == [TextDelta("x")]
    assert reader.read_text_run(values, types, 9) == (["a", "b\n", '"}}', "😀", "c"], 15)
    assert reader.read_text_run(values, types, 15) == ([], 15)
    # Each event the run counted reads, one at a time, into the same texts.
    one_by_one = [p for i in range(2, 8) for p in reader.read_data(values[i], types[i])]
    assert one_by_one == [TextDelta(t) for t in texts if t]
    assert read_like_the_adapter(MessagesReader(), values, types, 0, len(values))[1] == [6, 6]


def read_like_the_adapter(
    reader: ChatReader | MessagesReader,
    values: list[str],
    types: list[str | None],
    start: int,
    stop: int,
) -> tuple[list[Any], list[int]]:
    """Read ``values[start:stop]`` as ``StreamAdapter._parts`` does: runs where the reader finds
    them, single events otherwise. The parts (a run's texts as ``TextDelta``) and run lengths."""
    parts: list[Any] = []
    lengths: list[int] = []
    i = start
    while i < stop:
        texts, end = reader.read_text_run(values[:stop], types[:stop], i)
        assert i <= end <= stop
        if end > i:
            lengths.append(end - i)
            parts += [TextDelta(t) for t in texts]
            i = end
        else:
            parts += reader.read_data(values[i], types[i])
            i += 1
    return parts, lengths


def test_chat_reader_reads_a_run() -> None:
    """``ChatReader.read_text_run`` consumes the plain content chunks of choice 0 once the stream
    started (all of them but perhaps the first, read whole), each into the part it reads into;
    it never starts before the stream did nor reads past a chunk that is not plain content."""
    texts = ["a", "", "b\n", '"}}', "😀", "c", "d"]
    events = [
        CHAT_ROLE,
        *(chat_text(t) for t in texts),
        CHAT_FINISH,
        *(chat_text(t) for t in texts),
    ]
    values, types = columns(events)
    reader = ChatReader()
    assert reader.read_text_run(values, types, 0) == ([], 0)  # not started
    reader.read_data(values[0], types[0])
    parts, lengths = read_like_the_adapter(reader, values, types, 1, 8)
    assert parts == [TextDelta(t) for t in texts if t]
    assert max(lengths) >= len(texts) - 1, lengths
    assert reader.read_text_run(values, types, 8) == ([], 8)  # the finish chunk
    reader.read_data(values[8], types[8])
    for i in range(9, len(values)):  # choice 0 finished: its text is no run
        assert reader.read_text_run(values, types, i) == ([], i)


@pytest.mark.parametrize(
    ("upstream", "client", "writer"),
    [
        (CHAT, MESSAGES, MessagesWriter),
        (MESSAGES, CHAT, ChatWriter),
    ],
    ids=["chat->messages", "messages->chat"],
)
def test_adapter_hands_the_writer_one_run(
    upstream: str, client: str, writer: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole stream of N text deltas in one ``feed()`` reaches the writer as one ``TextRun``
    of N texts; one event per ``feed()`` never does; the bytes are the same."""
    n = 200
    calls: list[int] = []
    write_run = writer.write_run

    def counting(self: Any, run: TextRun, out: list[bytes]) -> None:
        calls.append(len(run.texts))
        write_run(self, run, out)

    monkeypatch.setattr(writer, "write_run", counting)
    blocks = (Text(tuple(f"t{i} " for i in range(n))),)
    scenario = Scenario("many", blocks, "stop" if upstream == CHAT else "end_turn")
    data = chat_stream(scenario) if upstream == CHAT else messages_stream(scenario)
    whole = translate(upstream, client, [data], {})
    # One run: all N texts, or all but the first (read whole to learn the chunks' shape).
    assert len(calls) == 1
    assert calls[0] >= n - 1
    assert whole.runs == 1
    calls.clear()
    one_by_one = translate(upstream, client, events_of(data), {})
    assert calls == []
    assert whole.out == one_by_one.out
    assert whole.result == one_by_one.result


# -- runs read straight from raw blocks ----------------------------------------------------------

BLOCK_HEAD = "event: content_block_delta\ndata: " + TEXT_HEAD + '"'
BLOCK_TAIL = '"}}'


def exact_block_strings(blocks: Sequence[str], head: str, tail: str) -> tuple[list[str], int]:
    """What ``block_strings`` must give, block by block: the leading blocks that are exactly
    ``head``, a body on one line that reads alone as a string literal's inside, ``tail``."""
    strings: list[str] = []
    end = 0
    for block in blocks:
        body = block[len(head) : len(block) - len(tail)]
        if not (
            block.startswith(head)
            and block.endswith(tail)
            and len(block) >= len(head) + len(tail)
            and "\n" not in body
        ):
            break
        try:
            string = json_backend.loads('"' + body + '"')
        except ValueError:
            break
        if not isinstance(string, str):
            break
        strings.append(string)
        end += len(block) + 2
    return strings, end


def block_variants(text: str) -> list[str]:
    """Blocks (without their blank line) near the text-delta shape, or far from it."""
    encoded = json.dumps(text, ensure_ascii=False)[1:-1]
    return [
        BLOCK_HEAD + encoded + BLOCK_TAIL,
        BLOCK_HEAD + text.replace("\n", "") + BLOCK_TAIL,  # raw: quotes, backslashes
        BLOCK_HEAD[:-1] + BLOCK_TAIL,  # the head's quote is the tail's: no string
        BLOCK_HEAD + BLOCK_TAIL,  # an empty text
        BLOCK_HEAD + encoded + '"}},"x":1}',
        BLOCK_HEAD.replace('index":0', 'index":1') + encoded + BLOCK_TAIL,
        BLOCK_HEAD.replace("event: content_block_delta\n", "") + encoded + BLOCK_TAIL,
        BLOCK_HEAD.replace("data: ", "data:") + encoded + BLOCK_TAIL,
        "id: 7\n" + BLOCK_HEAD + encoded + BLOCK_TAIL,
        BLOCK_HEAD + encoded + BLOCK_TAIL + "\n: comment",
        BLOCK_HEAD + encoded + BLOCK_TAIL + " ",
        BLOCK_HEAD + "a\n" + encoded + BLOCK_TAIL,  # a LF inside: two data-ish lines
        'event: ping\ndata: {"type":"ping"}',
    ]


def block_kinds(text: str) -> st.SearchStrategy[str]:
    """One block (without its blank line) near the text-delta shape, or far from it."""
    return st.sampled_from(block_variants(text))


@st.composite
def raw_blocks(draw: st.DrawFn) -> list[str]:
    """Blocks mostly of the exact text-delta shape, some near it, some far from it."""
    blocks: list[str] = []
    for _ in range(draw(st.integers(0, 10))):
        text = draw(texts)
        exact = BLOCK_HEAD + json.dumps(text, ensure_ascii=False)[1:-1] + BLOCK_TAIL
        blocks.append(exact if draw(st.integers(0, 2)) else draw(block_kinds(text)))
    return blocks


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=raw_blocks(), stdlib=st.booleans())
def test_block_strings_takes_exactly_the_exact_blocks(blocks: list[str], stdlib: bool) -> None:
    """``block_strings`` on complete blocks takes the leading blocks of exactly the shape, each
    the string its body reads into alone, and says where they end; each block taken parses as
    SSE into one event whose ``data`` a columns run (``string_bodies``) takes in the same way."""
    from asgi_sse_adapter.formats.base import block_strings, string_bodies

    with pytest.MonkeyPatch.context() as patch:
        if stdlib:
            use_stdlib_json(patch)
        text = "".join(block + "\n\n" for block in blocks)
        strings, end = block_strings(text, BLOCK_HEAD, BLOCK_TAIL)
        assert (strings, end) == exact_block_strings(blocks, BLOCK_HEAD, BLOCK_TAIL)
        taken = SSEDecoder(max_event_size=None).feed(text[:end].encode())
        assert len(taken) == len(strings)
        assert all(event.event == "content_block_delta" for event in taken)
        values = [event.data for event in taken]
        data_head = BLOCK_HEAD.split("data: ", 1)[1]
        assert json_backend.decode_strings(string_bodies(values, 0, data_head, BLOCK_TAIL)) == (
            strings
        )


def one_block_variants(text: str) -> list[bytes]:
    """Reads at and around one block of the exact text-delta shape, as bytes: the blocks of
    ``block_variants``, raw bytes no text carries (invalid UTF-8, CR, a CRLF line end), and
    reads of more than one block."""
    encoded = json.dumps(text, ensure_ascii=False)[1:-1]
    exact = BLOCK_HEAD + encoded + BLOCK_TAIL
    blocks = [(block + "\n\n").encode("utf-8", "surrogatepass") for block in block_variants(text)]
    raw = exact.encode("utf-8", "surrogatepass")
    cut = len(BLOCK_HEAD.encode())
    blocks += [
        raw[:cut] + b"\xff\xfe" + raw[cut:] + b"\n\n",
        raw[:cut] + b"a\rb" + raw[cut:] + b"\n\n",
        raw[:cut] + b"a\r\nb" + raw[cut:] + b"\n\n",
        raw.replace(b"\n", b"\r\n") + b"\r\n\r\n",
        raw + b"\r\n\n",
        raw + b"\n\n",
        raw + b"\n\n" + raw + b"\n\n",  # two blocks in one read
        raw + b"\n\n\n",  # and a lone blank line
    ]
    return blocks


def messages_in_text_block() -> MessagesReader:
    """A Messages reader that saw the message and its text block 0 start."""
    reader = MessagesReader()
    for event in SSEDecoder().feed(MESSAGES_START + block_start(0)):
        reader.read_data(event.data, event.event)
    return reader


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=texts, stdlib=st.booleans())
def test_read_text_block_is_read_data_of_the_parsed_event(text: str, stdlib: bool) -> None:
    """``MessagesReader.read_text_block`` on a read: ``None``, or exactly the text of the one
    part reading its one parsed event gives (never for a read that parses into more events, or
    otherwise)."""
    with pytest.MonkeyPatch.context() as patch:
        if stdlib:
            use_stdlib_json(patch)
        reader = messages_in_text_block()
        for data in one_block_variants(text):
            got = reader.read_text_block(data)
            if got is None:
                continue
            events = SSEDecoder().feed(data)
            assert len(events) == 1, data
            parts = [TextDelta(got)] if got else []
            assert parts == parsed_alone(messages_in_text_block, events[0].data, events[0].event)


def test_read_text_block_takes_the_exact_shape() -> None:
    """The block the API sends for a text delta is read straight from its bytes; one of another
    block index, shape or line layout is left to the SSE path."""
    reader = MessagesReader()
    for event in SSEDecoder().feed(MESSAGES_START + block_start(0)):
        reader.read_data(event.data, event.event)
    assert reader.read_text_block(messages_text('héllo "x"\n')) == 'héllo "x"\n'
    assert reader.read_text_block(messages_text("")) == ""
    assert reader.read_text_block(messages_text("a", 1)) is None
    assert reader.read_text_block(messages_text("a").replace(b"data: ", b"data:")) is None
    assert reader.read_text_block(block_start(1)) is None


def chat_block_variants(text: str, obfuscation: str | None) -> list[bytes]:
    """Reads at and around one plain content chunk (as OpenAI sends it, with or without its
    ``obfuscation`` field), as bytes: the exact block, other layouts of the same event, raw
    bytes no chunk carries, near shapes, and reads of more than one block."""
    exact = chat_text(text, obfuscation=obfuscation)
    line = exact[:-2]
    encoded = json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")
    cut = line.index(b'"content":') + len(b'"content":') + 1
    return [
        exact,
        chat_text(text, ascii_only=True, obfuscation=obfuscation),
        chat_text(text, obfuscation="x" if obfuscation is None else obfuscation + "é"),
        chat_text(text, obfuscation="a b"),
        line.replace(b"data: ", b"data:") + b"\n\n",
        line.replace(b"data: ", b"data:  ") + b"\n\n",
        b"event: error\n" + exact,
        b"event: message\n" + exact,
        b"id: 7\n" + exact,
        exact[:-2] + b"\n: comment\n\n",
        line + b"\r\n\r\n",
        line + b"\r\r",
        line + b"\r\n\n",
        line + b" \n\n",
        line + b"\n\n\n",
        exact + exact,
        exact + CHAT_FINISH,
        line[:cut] + b"\xff\xfe" + line[cut:] + b"\n\n",
        line[:cut] + b"a\rb" + line[cut:] + b"\n\n",
        line[:cut] + b"a\nb" + line[cut:] + b"\n\n",
        line[:cut] + b"a\ndata: b" + line[cut:] + b"\n\n",
        line.replace(b'"index":0', b'"index":1') + b"\n\n",
        line.replace(encoded, encoded + b',"refusal":null') + b"\n\n",
        line.replace(b'"content":', b'"content": ') + b"\n\n",
        line.replace(encoded, b"\t" + encoded + b"\n") + b"\n\n",  # JSON whitespace, a LF
        line.replace(encoded, b"\r" + encoded) + b"\n\n",
        line.replace(encoded, encoded + b" ") + b"\n\n",
        line.replace(b"chatcmpl-run", b"chatcmpl-other") + b"\n\n",
    ]


def chat_after_first_text(obfuscation: str | None = None) -> ChatReader:
    """A Chat reader that read a first plain content chunk whole (its text template)."""
    reader = ChatReader()
    for event in SSEDecoder().feed(CHAT_ROLE + chat_text("first", obfuscation=obfuscation)):
        reader.read_data(event.data, event.event)
    return reader


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=texts,
    obfuscation=st.none() | st.sampled_from(["", "Xy3", "a1b2c3d4e5"]),
    stdlib=st.booleans(),
)
def test_chat_read_text_block_is_read_data_of_the_parsed_event(
    text: str, obfuscation: str | None, stdlib: bool
) -> None:
    """``ChatReader.read_text_block`` on a read: ``None``, or exactly the text of the one part
    reading its one parsed event gives (never for a read that parses into more events, another
    layout of the event's lines, or otherwise); and it is not ``None`` for the exact block."""
    with pytest.MonkeyPatch.context() as patch:
        if stdlib:
            use_stdlib_json(patch)
        assert ChatReader().read_text_block(chat_text(text)) is None  # no template yet
        reader = chat_after_first_text(obfuscation)
        for data in chat_block_variants(text, obfuscation):
            got = reader.read_text_block(data)
            if got is None:
                assert data != chat_text(text, obfuscation=obfuscation), data
                continue
            events = SSEDecoder().feed(data)
            assert len(events) == 1, data
            parts = [TextDelta(got)] if got else []
            again = parsed_alone(
                lambda: chat_after_first_text(obfuscation), events[0].data, events[0].event
            )
            assert parts == again, data


def test_chat_read_text_block_follows_the_reader_state() -> None:
    """Not before a template, not after choice 0 finished, and not for a template read from a
    chunk spread over two ``data`` lines (its block is not one line)."""
    assert ChatReader().read_text_block(chat_text("a")) is None
    reader = chat_after_first_text()
    assert reader.read_text_block(chat_text("a")) == "a"
    assert reader.read_text_block(chat_text("")) == ""
    assert reader.read_text_block(chat_text('"\n😀')) == '"\n😀'
    for event in SSEDecoder().feed(CHAT_FINISH):
        reader.read_data(event.data, event.event)
    assert reader.read_text_block(chat_text("a")) is None
    split = ChatReader()
    two_lines = chat_text("first").replace(b',"choices"', b'\ndata: ,"choices"')
    for event in SSEDecoder().feed(CHAT_ROLE + two_lines):
        split.read_data(event.data, event.event)
    assert split.read_data(SSEDecoder().feed(two_lines)[0].data, None) == [TextDelta("first")]
    assert split.read_text_block(chat_text("a")) is None
    # The template's chunk after ``data: `` as one block: its second line is no ``data`` line.
    joined = SSEDecoder().feed(two_lines.replace(b'"first"', b'"a"'))[0].data.encode()
    assert split.read_text_block(b"data: " + joined + b"\n\n") is None


def arguments_block_variants(exact: bytes, fragment: str, ascii_only: bool) -> list[bytes]:
    """Reads at and around one argument-fragment block ``exact`` (one ``data`` line, maybe after
    an ``event`` line; its fragment JSON-encoded with ``ensure_ascii=ascii_only``), as bytes:
    other layouts of the same event, raw bytes no fragment carries, near shapes, and reads of
    more than one block."""
    encoded = json.dumps(fragment, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    line = exact[:-2]
    at = line.rindex(encoded)
    inside = at + 1
    return [
        exact,
        line.replace(b"data: ", b"data:") + b"\n\n",
        b"id: 7\n" + exact,
        b"event: error\n" + line.split(b"\n")[-1] + b"\n\n",
        line + b"\r\n\r\n",
        line + b"\r\r",
        line + b" \n\n",
        line + b"\n\n\n",
        exact + exact,
        line[:inside] + b"\xff\xfe" + line[inside:] + b"\n\n",
        line[:inside] + b"a\rb" + line[inside:] + b"\n\n",
        line[:inside] + b"a\ndata: b" + line[inside:] + b"\n\n",
        line[:at] + b"\t" + encoded + b"\n" + line[at + len(encoded) :] + b"\n\n",
        line[:at] + encoded + b',"x":1' + line[at + len(encoded) :] + b"\n\n",
        line[:at] + b"5" + line[at + len(encoded) :] + b"\n\n",
        line.replace(b'"index":1', b'"index":2') + b"\n\n",
    ]


def parsed_alone(make: Callable[[], Any], data: str, name: str | None) -> list[Any] | Exception:
    """What a fresh reader from ``make`` (brought to the state under test) reads from one event
    (or what it raised)."""
    try:
        return cast(list[Any], make().read_data(data, name))
    except Exception as exc:
        return exc


def check_arguments_blocks(
    make: Callable[[], Any], exact: bytes, fragment: str, ascii_only: bool
) -> None:
    """``read_arguments_block`` of every variant: ``None``, or the one part reading its one parsed
    event gives; not ``None`` for the exact block of a non-empty fragment."""
    for data in arguments_block_variants(exact, fragment, ascii_only):
        got = make().read_arguments_block(data)
        if got is None:
            assert data != exact or not fragment, data
            continue
        events = SSEDecoder().feed(data)
        assert len(events) == 1, data
        assert [got] == parsed_alone(make, events[0].data, events[0].event), data


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fragment=texts, stdlib=st.booleans())
def test_messages_read_arguments_block_is_read_data_of_the_parsed_event(
    fragment: str, stdlib: bool
) -> None:
    """``MessagesReader.read_arguments_block`` on a read: ``None``, or exactly the part reading
    its one parsed event gives (never for a read that parses otherwise)."""

    def make() -> MessagesReader:
        reader = MessagesReader()
        for event in SSEDecoder().feed(
            MESSAGES_START + block_start(0) + block_start(1, TOOL_BLOCK)
        ):
            reader.read_data(event.data, event.event)
        return reader

    with pytest.MonkeyPatch.context() as patch:
        if stdlib:
            use_stdlib_json(patch)
        check_arguments_blocks(make, json_delta(fragment, 1), fragment, False)
        # Not for a tool block other than the one started last, nor after a text block started.
        assert make().read_arguments_block(json_delta("a", 0)) is None
        later = make()
        for event in SSEDecoder().feed(block_start(2)):
            later.read_data(event.data, event.event)
        assert later.read_arguments_block(json_delta("a", 1)) is None


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fragment=texts,
    obfuscation=st.none() | st.sampled_from(["", "Xy3"]),
    stdlib=st.booleans(),
)
def test_chat_read_arguments_block_is_read_data_of_the_parsed_event(
    fragment: str, obfuscation: str | None, stdlib: bool
) -> None:
    """``ChatReader.read_arguments_block`` the same way, once a first fragment of the call was
    read whole (the argument template)."""

    def make() -> ChatReader:
        reader = ChatReader()
        first = chat_tool(1, call_id="call_1", name="f") + chat_tool(
            1, args="first", obfuscation=obfuscation
        )
        for event in SSEDecoder().feed(CHAT_ROLE + first):
            reader.read_data(event.data, event.event)
        return reader

    with pytest.MonkeyPatch.context() as patch:
        if stdlib:
            use_stdlib_json(patch)
        exact = chat_tool(1, args=fragment, obfuscation=obfuscation)
        check_arguments_blocks(make, exact, fragment, True)
        assert ChatReader().read_arguments_block(chat_tool(1, args="a")) is None  # no template
        done = make()
        for event in SSEDecoder().feed(CHAT_FINISH):
            done.read_data(event.data, event.event)
        assert done.read_arguments_block(chat_tool(1, args="a")) is None  # choice 0 finished


def test_block_strings_crafted() -> None:
    """Where the cuts could mislead: a first block whose head and tail share a quote, a block of
    more lines between two exact ones, a text that ends with what a tail looks like."""
    from asgi_sse_adapter.formats.base import block_strings

    def take(*blocks: str) -> tuple[list[str], int]:
        got = block_strings("".join(b + "\n\n" for b in blocks), BLOCK_HEAD, BLOCK_TAIL)
        assert got == exact_block_strings(blocks, BLOCK_HEAD, BLOCK_TAIL)
        return got

    a, b = BLOCK_HEAD + "a" + BLOCK_TAIL, BLOCK_HEAD + "b" + BLOCK_TAIL
    degenerate = BLOCK_HEAD[:-1] + BLOCK_TAIL
    assert take(degenerate, a) == ([], 0)
    assert take(a, degenerate, b) == (["a"], len(a) + 2)
    assert take(a, 'event: ping\ndata: {"type":"ping"}', b) == (["a"], len(a) + 2)
    assert take(a, "id: 1\n" + b) == (["a"], len(a) + 2)
    quoted = BLOCK_HEAD + '\\"}}' + BLOCK_TAIL  # the text ``"}}``
    assert take(quoted, a) == (['"}}', "a"], len(quoted) + len(a) + 4)
    assert take(BLOCK_HEAD + "x" + BLOCK_TAIL + "y", a) == ([], 0)
    assert take("") == ([], 0)


def test_messages_reader_reads_runs_from_blocks() -> None:
    """``MessagesReader.read_blocks``: the text deltas of the last started text block, or the
    argument fragments of the tool block started last, that raw blocks start with; each the part
    reading it alone gives; counted events include empty ones; the rest is left."""
    reader = MessagesReader()
    for event in SSEDecoder().feed(MESSAGES_START + block_start(0)):
        reader.read_data(event.data, event.event)
    texts = ["a", "", "b\n", '"}}', "😀"]
    run = b"".join(messages_text(t) for t in texts)
    rest = block_stop(0) + messages_text("after")
    got, count, end = reader.read_blocks((run + rest).decode())
    assert (got, count, end) == (TextRun(["a", "b\n", '"}}', "😀"]), 5, len(run.decode()))
    assert reader.read_blocks(rest.decode()) == (None, 0, 0)
    assert reader.read_blocks(messages_text("").decode()) == (None, 1, len(messages_text("")))
    assert reader.read_blocks(messages_text("x", 1).decode()) == (None, 0, 0)  # not this block
    # A tool block: its fragments, and the block learns its arguments came as deltas.
    for event in SSEDecoder().feed(block_stop(0) + block_start(1, TOOL_BLOCK)):
        reader.read_data(event.data, event.event)
    fragments = b"".join(json_delta(f, 1) for f in FRAGMENTS)
    got, count, end = reader.read_blocks((fragments + block_stop(1)).decode())
    assert got == ArgumentsRun(0, [f for f in FRAGMENTS if f])
    assert (count, end) == (len(FRAGMENTS), len(fragments.decode()))
    assert reader.read_data(*_only(block_stop(1))) == [ToolCallEnd(0)]


def _only(block: bytes) -> tuple[str, str | None]:
    (event,) = SSEDecoder().feed(block)
    return event.data, event.event


@pytest.mark.parametrize("client", [c for c in CLIENTS if c != MESSAGES])
def test_adapter_reads_a_run_from_the_blocks_a_read_starts_with(client: str) -> None:
    """A read of many events that starts with text deltas (the usual read of a stream at
    speed) is read as a run straight from its blocks; its bytes and result are those of one
    event per ``feed()``; a small read (a live stream's one event) is not."""
    head = [MESSAGES_START, block_start(0)]
    middle = [messages_text(f"word {i} ") for i in range(40)]
    tail = [block_stop(0), MESSAGES_DELTA, MESSAGES_STOP]
    reads = [b"".join(head), b"".join(middle), b"".join(tail)]
    whole = translate(MESSAGES, client, reads, {})
    assert (whole.runs, whole.run_events) == (1, 40)
    one_by_one = translate(MESSAGES, client, [*head, *middle, *tail], {}, runs=True)
    assert one_by_one.runs == 0
    reference = translate(MESSAGES, client, [*head, *middle, *tail], {}, runs=False)
    assert whole.out == one_by_one.out == reference.out
    assert whole.result == one_by_one.result == reference.result


# -- argument runs -------------------------------------------------------------------------------

FRAGMENTS = ['{"city":', ' "Zürich', "\\", '", "q": "say \\"hi\\"', "", '\n"}', "😀", '",']


def test_messages_reader_reads_an_arguments_run() -> None:
    """``MessagesReader.read_arguments_run`` consumes the argument fragments of the tool block
    started last up to the next other event (empty ones counted, left out), each the fragment
    reading it alone gives; the block then knows its arguments came as deltas."""
    events = [
        MESSAGES_START,
        block_start(0),
        messages_text("hi"),
        block_stop(0),
        # Input in the start block, then deltas: the deltas are the arguments (formats.md §4.1).
        block_start(1, TOOL_BLOCK.replace("{}", '{"pre":1}')),
        *(json_delta(f, 1) for f in FRAGMENTS),
        json_delta("x", 0),  # another index: not this block's shape
        *(json_delta(f, 1) for f in FRAGMENTS),
        block_stop(1),
    ]
    values, types = columns(events)
    reader = MessagesReader()
    for i in range(5):
        reader.read_data(values[i], types[i])
    n = len(FRAGMENTS)
    assert reader.read_text_run(values, types, 5) == ([], 5)  # fragments are no text
    expected = ArgumentsRun(0, [f for f in FRAGMENTS if f])
    assert reader.read_arguments_run(values, types, 5) == (expected, 5 + n)
    assert reader.read_arguments_run(values, types, 5 + n) == (None, 5 + n)
    reader.read_data(values[5 + n], types[5 + n])
    assert reader.read_arguments_run(values, types, 6 + n) == (expected, 6 + 2 * n)
    assert reader.read_data(values[-1], types[-1]) == [ToolCallEnd(0)]  # no start input resent
    alone = MessagesReader()
    for i in range(5):
        alone.read_data(values[i], types[i])
    one_by_one = [p for i in range(5, 5 + n) for p in alone.read_data(values[i], types[i])]
    assert one_by_one == [ToolCallDelta(0, f) for f in FRAGMENTS if f]
    # No tool block started last: nothing is a run.
    fresh = MessagesReader()
    fresh.read_data(values[0], types[0])
    assert fresh.read_arguments_run(values, types, 5) == (None, 5)


def test_chat_reader_reads_an_arguments_run() -> None:
    """``ChatReader.read_arguments_run`` consumes the argument chunks that fit the template of
    the last one read whole (explicit index), each into the fragment reading it alone gives,
    and stops at a chunk of another call, an ``event: error`` chunk, or a finished choice."""
    start = chat_tool(0, call_id="call_1", name="f")
    events = [
        CHAT_ROLE,
        start,
        *(chat_tool(0, args=f) for f in FRAGMENTS),
        chat_tool(1, call_id="call_2", name="g"),
        chat_tool(1, args="a"),
        *(chat_tool(1, args=f) for f in FRAGMENTS),
        CHAT_FINISH,
        *(chat_tool(1, args=f) for f in FRAGMENTS),
    ]
    values, types = columns(events)
    n = len(FRAGMENTS)
    reader = ChatReader()
    for i in range(3):  # the first fragment read whole makes the template
        reader.read_data(values[i], types[i])
    expected = [f for f in FRAGMENTS[1:] if f]
    assert reader.read_arguments_run(values, types, 3) == (ArgumentsRun(0, expected), 2 + n)
    assert reader.read_arguments_run(values, types, 2 + n) == (None, 2 + n)  # call 2 starts
    for i in range(2 + n, 4 + n):
        reader.read_data(values[i], types[i])
    call_2 = ArgumentsRun(1, [f for f in FRAGMENTS if f])
    assert reader.read_arguments_run(values, types, 4 + n) == (call_2, 4 + 2 * n)
    errors = list(types)
    errors[4 + n + 2] = "error"  # read whole, as an error
    assert reader.read_arguments_run(values, errors, 4 + n) == (
        ArgumentsRun(1, [f for f in FRAGMENTS[:2] if f]),
        4 + n + 2,
    )
    reader.read_data(values[4 + 2 * n], types[4 + 2 * n])  # the finish
    assert reader.read_arguments_run(values, types, 5 + 2 * n) == (None, 5 + 2 * n)


def tool_stream(upstream: str, fragments: Sequence[str], calls: int = 1) -> bytes:
    """A stream of ``calls`` tool calls, one after the other, each streaming ``fragments``."""
    if upstream == CHAT:
        events = [CHAT_ROLE]
        for c in range(calls):
            events.append(chat_tool(c, call_id=f"call_{c}", name="f"))
            events += [chat_tool(c, args=f) for f in fragments]
        events += [sse(chat_body("{}", finish='"tool_calls"')), CHAT_DONE]
    else:
        events = [MESSAGES_START]
        for c in range(calls):
            events.append(block_start(c, TOOL_BLOCK.replace("toolu_1", f"toolu_{c}")))
            events += [json_delta(f, c) for f in fragments]
            events.append(block_stop(c))
        events += [
            sse(
                '{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},'
                '"usage":{"output_tokens":9}}',
                "message_delta",
            ),
            MESSAGES_STOP,
        ]
    return b"".join(events)


@pytest.mark.parametrize(
    ("upstream", "client", "writer"),
    [(CHAT, MESSAGES, MessagesWriter), (MESSAGES, CHAT, ChatWriter)],
    ids=["chat->messages", "messages->chat"],
)
def test_adapter_hands_the_writer_one_arguments_run(
    upstream: str, client: str, writer: type[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call's N argument fragments in one ``feed()`` reach the writer as one ``ArgumentsRun``
    (all N, or all but the first for Chat: read whole to learn the chunks' shape); one event per
    ``feed()`` never does; the bytes and the result are the same, and the client's final
    arguments are the fragments joined."""
    arguments = json.dumps({"q": "".join(FRAGMENTS) * 4, "n": [1, 2.5, None]}, ensure_ascii=False)
    fragments = [arguments[i : i + 3] for i in range(0, len(arguments), 3)]
    calls: list[int] = []
    write_run = writer.write_run

    def counting(self: Any, run: Any, out: list[bytes]) -> None:
        if isinstance(run, ArgumentsRun):
            calls.append(len(run.fragments))
        write_run(self, run, out)

    monkeypatch.setattr(writer, "write_run", counting)
    data = tool_stream(upstream, fragments, calls=2)
    whole = translate(upstream, client, [data], {})
    assert len(calls) == 2
    assert min(calls) >= len(fragments) - 1
    calls.clear()
    one_by_one = translate(upstream, client, events_of(data), {})
    assert calls == []
    assert whole.out == one_by_one.out
    assert whole.result == one_by_one.result
    if client == CHAT:
        final, exc = final_completion(whole.out)
        assert exc is None
        got = [c["function"]["arguments"] for c in final["choices"][0]["message"]["tool_calls"]]
        assert got == [arguments, arguments]
    else:
        final = final_message(whole.out)
        got = [b["input"] for b in final["content"] if b["type"] == "tool_use"]
        assert got == [json.loads(arguments)] * 2


def test_arguments_run_of_a_queued_call() -> None:
    """Parallel Chat calls whose fragments interleave in runs: for a Messages client the second
    call waits behind the open first one (its run is queued, not written into the open block);
    the bytes are those of one event per ``feed()`` and the SDK's final message has both calls
    with their whole arguments."""
    a = ['{"x":', " 1", "}"]
    b = ['{"y":', ' "two', '"}']
    events = [
        CHAT_ROLE,
        chat_tool(0, call_id="call_a", name="f"),
        chat_tool(0, args=a[0]),
        chat_tool(1, call_id="call_b", name="g"),
        *(chat_tool(1, args=f) for f in b),
        *(chat_tool(0, args=f) for f in a[1:]),
        sse(chat_body("{}", finish='"tool_calls"')),
        CHAT_DONE,
    ]
    data = b"".join(events)
    whole = translate(CHAT, MESSAGES, [data], {})
    one_by_one = translate(CHAT, MESSAGES, events_of(data), {})
    assert whole.out == one_by_one.out
    assert whole.result == one_by_one.result
    final = final_message(whole.out)
    inputs = {blk["name"]: blk["input"] for blk in final["content"] if blk["type"] == "tool_use"}
    assert inputs == {"f": {"x": 1}, "g": {"y": "two"}}


# -- the SDKs -------------------------------------------------------------------------------------

SDK_TEXT = Text(tuple(f"chunk {i} {TRICKY[i % len(TRICKY)]}" for i in range(300)))


def sdk_output(upstream: str, client: str) -> bytes:
    """The client bytes of a run-heavy stream fed whole (read in runs), checked equal to those
    of one event per ``feed()``."""
    scenario = Scenario("sdk", (SDK_TEXT,), "stop" if upstream == CHAT else "end_turn")
    data = chat_stream(scenario) if upstream == CHAT else messages_stream(scenario)
    whole = translate(upstream, client, [data], {"include_usage": True})
    assert whole.run_events >= len(SDK_TEXT.chunks) - 1
    assert whole.out == translate(upstream, client, events_of(data), {"include_usage": True}).out
    return whole.out


def test_openai_sdk_reads_a_run_heavy_stream() -> None:
    """Messages → Chat, read in runs: the openai SDK's chunks and final completion hold the
    whole text, and the bytes are those of the per-event path."""
    out = sdk_output(MESSAGES, CHAT)
    seen = consume_chat_chunks(out, include_usage=True)
    assert seen.text == SDK_TEXT.text
    assert seen.finish == "stop"
    assert seen.usage is not None
    final, exc = final_completion(out)
    assert exc is None
    assert final["choices"][0]["message"]["content"] == SDK_TEXT.text


def test_anthropic_sdk_reads_a_run_heavy_stream() -> None:
    """Chat → Messages, read in runs: the anthropic SDK's final message holds the whole text in
    one block, and the bytes are those of the per-event path."""
    final = final_message(sdk_output(CHAT, MESSAGES))
    assert [b["type"] for b in final["content"]] == ["text"]
    assert final["content"][0]["text"] == SDK_TEXT.text
    assert final["stop_reason"] == "end_turn"


@pytest.mark.parametrize("fragment", ['{"a":', '"x\\"y', "😀 ünï\u2028", "\x00\n", '"}}]}', " "])
def test_chat_writer_argument_chunk_is_the_dict_encoding(fragment: str) -> None:
    """``ChatWriter`` writes an argument fragment with a cached head and only the fragment
    encoded: the bytes are exactly those of encoding the chunk's choice as a dict, as it did
    (and as it still does for the call's first chunk)."""
    from asgi_sse_adapter._json import dumps
    from asgi_sse_adapter.content import Content
    from asgi_sse_adapter.formats.base import WriterOptions
    from asgi_sse_adapter.formats.openai_chat import ChatWriter
    from asgi_sse_adapter.parts import MessageStart, ToolCallDelta, ToolCallStart

    content = Content()
    writer = ChatWriter(WriterOptions(clock=lambda: 1.0, id_factory=lambda: "x"), content)
    out: list[bytes] = []
    for part in (MessageStart(id="run", model="m"), ToolCallStart(2, "call_1", "f")):
        content.add(part)
        writer.write(part, out)
    for _ in range(2):  # the head made, then reused
        out.clear()
        writer.write(ToolCallDelta(2, fragment), out)
        choice = {
            "index": 0,
            "delta": {"tool_calls": [{"index": 2, "function": {"arguments": fragment}}]},
            "logprobs": None,
            "finish_reason": None,
        }
        assert out == [writer._prefix + dumps(choice) + b"]}\n\n"]
