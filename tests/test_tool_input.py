"""Tool-call arguments from OpenAI-family upstreams, as Anthropic Messages clients parse them.

The Anthropic SDK parses a ``tool_use`` block's arguments joined so far on every
``input_json_delta`` (jiter, partial mode) and raises a plain ``ValueError`` at the first prefix
that cannot become JSON. Open models behind vLLM or Ollama write raw newlines in strings and
trailing commas: those are repaired as they stream; anything else ends the stream with the error
event, which the SDK raises as an ``APIStatusError`` naming the call, and never reaches the SDK's
own parser.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import jiter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_sse_adapter.adapter import StreamAdapter
from asgi_sse_adapter.formats._tool_input import ArgumentsError, ToolInputCheck, repaired
from tests.test_text_runs import assert_same, chat_body, chat_tool
from tests.test_text_runs import sse as raw_sse
from tests.test_translate import anthropic_client, counter_ids
from tests.test_translate_fidelity import call, chat, payloads, sse

MESSAGES = "anthropic-messages"
PROMPT: Any = [{"role": "user", "content": "hi"}]

# Arguments as open models write them, and the input the client must get.
REPAIRED = {
    "raw newline and tab in a string": (
        '{"path": "a.py", "content": "def f():\n\treturn 1\n"}',
        {"path": "a.py", "content": "def f():\n\treturn 1\n"},
    ),
    "trailing commas": (
        '{"a": [1, 2, ], "b": {"c": null, }, }',
        {"a": [1, 2], "b": {"c": None}},
    ),
    "leading whitespace": ('\n  {"q": "x"}', {"q": "x"}),
    "a control character with no short escape": ('{"q": "a\x01b"}', {"q": "a\x01b"}),
    "an escaped surrogate pair": ('{"q": "\\ud83d\\ude00"}', {"q": "\U0001f600"}),
    # Some servers send the object's text as a JSON string.
    "double-encoded": (
        json.dumps('{"path": "a.py", "n": [1, 2,],}'),
        {"path": "a.py", "n": [1, 2]},
    ),
}
MALFORMED = {
    "not an object": ('["ls", "-l"]', "'\\[' where the object should open at character 1"),
    "a bad literal": ('{"force": tru}', "'}' after 'tru' at character 14"),
    "two objects": ('{"a": 1}{"b": 2}', "'{' after the object at character 9"),
    "python quoting": ("{'a': 1}", '"\'" where a key or a colon should be at character 2'),
    "a leading zero": ('{"n": 01}', "'1' after a value at character 8"),
    "a double comma": ('{"a": 1,, "b": 2}', "',' where a key or a colon should be at character 9"),
    # The standard library reads lone surrogate escapes; the SDK's parser (jiter) does not.
    "a lone high surrogate": ('{"q": "\\ud83dx"}', "'x' after a lone surrogate escape"),
    "a lone low surrogate": ('{"q": "\\ude00"}', "'0' ending a lone surrogate escape"),
    "two high surrogates": ('{"q": "\\ud83d\\ud83d"}', "'d' ending a lone surrogate escape"),
    "a string holding no object": ('"ls -l"', "a string holding no JSON object: 'l' where"),
    # Limits of the SDK's parser (jiter): nesting, an integer's digits, a lone surrogate.
    "nested too deep": ('{"a": ' + "[" * 201, "nested deeper than 201"),
    "an integer too long": ('{"n": ' + "9" * 4301 + "}", "in an integer over 4300 digits"),
    "a lone surrogate": ('{"q": "a\ud800b"}', r"\(a lone surrogate\) in a string"),
    "more after a string": ('"{}" x', "'x' after the"),
    # Stopped short with a plain finish (a cut, ``length``, keeps its prefix: below).
    "a string holding an object that stops short": (
        json.dumps('{"city": "Par'),
        "a string holding an object that stops short",
    ),
    "unclosed": (
        '{"path": "a.py", "content": "print(1)',
        "arguments ended before their object did",
    ),
}


def chat_call(arguments: str, *, pieces: int = 7, second: str | None = None) -> bytes:
    """A Chat stream in OpenAI's exact chunk shape (which the adapter reads many at a time as
    runs) of one call (two, interleaved, with ``second``) whose arguments come in ``pieces``
    fragments, cut anywhere (a string's newline and its escape included)."""
    step = max(1, -(-len(arguments) // pieces))
    fragments = [arguments[i : i + step] for i in range(0, len(arguments), step)]
    out = raw_sse(chat_body('{"role":"assistant","content":null}'))
    out += chat_tool(0, call_id="call_1", name="write")
    if second is not None:
        out += chat_tool(1, call_id="call_2", name="other")
    for i, fragment in enumerate(fragments):
        out += chat_tool(0, args=fragment)
        if second is not None and i == 0:
            out += chat_tool(1, args=second)
    return out + raw_sse(chat_body("{}", finish='"tool_calls"')) + b"data: [DONE]\n\n"


def reads(raw: bytes, how: str) -> list[bytes]:
    """The upstream bytes as the adapter may get them: whole (the many-events path), an event
    per read (the one-event path), or a byte per read."""
    if how == "whole":
        return [raw]
    if how == "events":
        return [block + b"\n\n" for block in raw.split(b"\n\n") if block]
    return [raw[i : i + 1] for i in range(len(raw))]


def to_messages(raw: bytes, how: str, upstream: str = "openai-chat") -> tuple[bytes, StreamAdapter]:
    adapter = StreamAdapter(
        upstream_format=upstream,
        client_format=MESSAGES,
        clock=lambda: 1700000000.0,
        id_factory=counter_ids(),
    )
    out = b"".join(adapter.feed(chunk) for chunk in reads(raw, how))
    return out + adapter.close(), adapter


def tool_inputs(out: bytes) -> list[Any]:
    """What the Anthropic SDK's ``MessageStream`` accumulates for each tool_use block."""
    with anthropic_client(out).messages.stream(
        model="claude", max_tokens=100, messages=PROMPT
    ) as stream:
        message = stream.get_final_message()
    return [block.input for block in message.content if block.type == "tool_use"]


def partial_json(out: bytes) -> dict[int, str]:
    """Each block's ``input_json_delta`` fragments joined."""
    joined: dict[int, str] = {}
    for event in payloads(out):
        delta = event.get("delta", {})
        if event["type"] == "content_block_delta" and delta.get("type") == "input_json_delta":
            joined[event["index"]] = joined.get(event["index"], "") + delta["partial_json"]
    return joined


@pytest.mark.parametrize("how", ["whole", "events", "bytes"])
@pytest.mark.parametrize("case", REPAIRED)
def test_repairable_arguments_reach_the_sdk_repaired(case: str, how: str) -> None:
    arguments, expected = REPAIRED[case]
    out, adapter = to_messages(chat_call(arguments), how)
    assert tool_inputs(out) == [expected]
    assert adapter.result.outcome == "complete"
    # The final response says what the stream said.
    response = adapter.result.response
    assert response is not None
    blocks = response["content"]
    assert [b["input"] for b in blocks if b["type"] == "tool_use"] == [expected]


@pytest.mark.parametrize("how", ["whole", "events", "bytes"])
@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_arguments_end_the_stream_with_an_error_the_sdk_raises(
    case: str, how: str
) -> None:
    arguments, where = MALFORMED[case]
    out, adapter = to_messages(chat_call(arguments), how)
    # Not the SDK's own ValueError from its parse: the error event, naming the call.
    with pytest.raises(anthropic.APIStatusError, match=rf"upstream tool call 'write'.*{where}"):
        tool_inputs(out)
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.code == "malformed_tool_arguments"
    # Every prefix the client was sent parses, as the SDK parses it.
    for joined in partial_json(out).values():
        if joined:
            jiter.from_json(joined.encode(), partial_mode=True)
    assert out.endswith(b"event: error\n" + out.rsplit(b"event: error\n", 1)[1])
    assert b"content_block_stop" not in out.rsplit(b"content_block_start", 1)[1]


@pytest.mark.parametrize("how", ["whole", "events"])
def test_a_queued_calls_malformed_arguments_fail_the_stream(how: str) -> None:
    """The second of two interleaved calls waits for the first's block to stop; its arguments
    are checked as they arrive, so the stream fails before any of it is sent."""
    out, adapter = to_messages(chat_call('{"a": 1}', second="[1, 2]"), how)
    with pytest.raises(anthropic.APIStatusError, match="upstream tool call 'other'"):
        tool_inputs(out)
    assert adapter.result.outcome == "failed"
    assert b'"name":"other"' not in out


def test_a_queued_calls_repaired_arguments_reach_the_sdk() -> None:
    out, _ = to_messages(chat_call('{"a": 1,}', second='{"b": "x\ny",}'), "events")
    assert tool_inputs(out) == [{"a": 1}, {"b": "x\ny"}]


def test_responses_upstream_arguments_are_checked_too() -> None:
    def event(payload: dict[str, Any]) -> bytes:
        return sse(payload, payload["type"])

    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "write"}
    raw = event({"type": "response.created", "response": {"id": "resp_1", "model": "m"}})
    raw += event({"type": "response.output_item.added", "output_index": 0, "item": item})
    for fragment in ('{"a": ', "1,", "}"):
        raw += event(
            {
                "type": "response.function_call_arguments.delta",
                "output_index": 0,
                "item_id": "fc_1",
                "delta": fragment,
            }
        )
    done = {**item, "arguments": '{"a": 1,}'}
    raw += event({"type": "response.output_item.done", "output_index": 0, "item": done})
    raw += event(
        {"type": "response.completed", "response": {"id": "resp_1", "status": "completed"}}
    )
    out, _ = to_messages(raw, "events", upstream="openai-responses")
    assert tool_inputs(out) == [{"a": 1}]


def test_a_surrogate_pair_cut_between_two_fragments_reaches_the_sdk_whole() -> None:
    """A server that cuts text in UTF-16 units (JavaScript's) may end one argument fragment
    with a high surrogate and open the next with its low one; sent apart, the SDK fails to
    encode the first to UTF-8 (a plain ``UnicodeEncodeError``). They go out together."""
    raw = raw_sse(chat_body('{"role":"assistant","content":null}'))
    raw += chat_tool(0, call_id="call_1", name="write")
    for fragment in ('{"q": "a\ud83d', '\ude00b"}'):
        raw += chat_tool(0, args=fragment)
    raw += raw_sse(chat_body("{}", finish='"tool_calls"')) + b"data: [DONE]\n\n"
    for how in ("whole", "events"):
        out, adapter = to_messages(raw, how)
        assert tool_inputs(out) == [{"q": "a\U0001f600b"}]
        assert adapter.result.outcome == "complete"


def test_done_without_a_finish_after_arguments_that_stop_short_is_failed() -> None:
    """``[DONE]`` with no finish reason is a normal end (``end_turn``): a call whose arguments
    stop short then fails the stream, and nothing follows the error event."""
    raw = raw_sse(chat_body('{"role":"assistant","content":null}'))
    raw += chat_tool(0, call_id="call_1", name="get") + chat_tool(0, args='{"city": "Par')
    raw += b"data: [DONE]\n\n"
    out, adapter = to_messages(raw, "events")
    assert adapter.result.outcome == "failed"
    assert out.rstrip(b"\n").rsplit(b"\n\n", 1)[-1].startswith(b"event: error")
    with pytest.raises(anthropic.APIStatusError, match="arguments ended before their object"):
        tool_inputs(out)


def test_a_whole_answer_whose_arguments_stop_short_is_failed_not_raised() -> None:
    """``feed_response`` of a Chat answer with no finish reason whose call stops short: a failed
    stream the caller can answer with its error body (it raised out of ``feed_response``)."""
    call = {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": '{"a'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": None}],
    }
    adapter = StreamAdapter(upstream_format="openai-chat", client_format=MESSAGES)
    out = adapter.feed_response(answer)
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.code == "malformed_tool_arguments"
    assert b"event: error" in out


@pytest.mark.parametrize(("after", "sent"), [(" ", ""), ("\n\t", "")])
def test_an_empty_double_encoded_string_sends_nothing(after: str, sent: str) -> None:
    check = ToolInputCheck()
    assert check.feed('""') + check.feed(after) == sent
    assert check.complete
    with pytest.raises(ArgumentsError, match="after the object"):
        check.feed("udc00")


def test_whitespace_held_after_a_comma_is_bounded() -> None:
    """A comma waits for the next token, with the whitespace after it; a model stuck writing
    whitespace there (a JSON-mode failure) must not grow what is held (it went quadratic)."""
    check = ToolInputCheck()
    assert check.feed('{"a": 1,') == '{"a": 1'
    for _ in range(10_000):
        assert check.feed(" ") == ""
    assert check.feed('"b": 2}') == "," + " " * 63 + '"b": 2}'


def test_a_call_cut_by_the_token_limit_keeps_its_valid_prefix() -> None:
    """Incomplete is not malformed: the SDK reads the prefix (as Anthropic's own streams at
    ``max_tokens``), and a comma held back at the cut is simply not sent."""
    raw = chat({"role": "assistant"}) + call(0, "", "call_1", "write")
    raw += call(0, '{"a": 1, "b": "x",') + chat(finish="length") + b"data: [DONE]\n\n"
    out, adapter = to_messages(raw, "events")
    assert partial_json(out) == {0: '{"a": 1, "b": "x"'}
    assert tool_inputs(out) == [{"a": 1, "b": "x"}]
    assert adapter.result.outcome == "complete"


# -- the check itself --------------------------------------------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _sloppy(value: Any, draw: Any) -> str:
    """``value`` as an open model might write it: random whitespace, trailing commas, raw
    control characters in strings, ``E`` exponents."""

    def gap() -> str:
        return str(draw(st.sampled_from(["", " ", "\n", "\t ", "\r\n  "])))

    def comma() -> str:
        return str(draw(st.sampled_from(["", ",", ", ", ",\n"])))

    if isinstance(value, dict):
        items = [
            f"{gap()}{json.dumps(k)}{gap()}:{gap()}{_sloppy(v, draw)}" for k, v in value.items()
        ]
        return "{" + ",".join(items) + (comma() if items else "") + gap() + "}"
    if isinstance(value, list):
        items = [gap() + _sloppy(v, draw) for v in value]
        return "[" + ",".join(items) + (comma() if items else "") + gap() + "]"
    if isinstance(value, str):
        # Raw control characters, as a model writes them; everything else escaped or not.
        ascii_only, raw = draw(st.booleans()), draw(st.booleans())
        return (
            '"'
            + "".join(
                c if raw and c in "\n\t\r\x01" else json.dumps(c, ensure_ascii=ascii_only)[1:-1]
                for c in value
            )
            + '"'
        )
    text = json.dumps(value)
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    return text.replace("e", "E") if numeric and draw(st.booleans()) else text


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _values, max_size=5), st.data())
def test_sloppy_objects_are_repaired_to_themselves_in_any_fragments(
    obj: dict[str, Any], data: Any
) -> None:
    text = data.draw(st.sampled_from(["", " ", "\n"])) + _sloppy(obj, data.draw)
    whole = repaired(text)
    assert json.loads(whole) == obj
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    check = ToolInputCheck()
    sent = ""
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        sent += check.feed(text[start:end])
        if sent:  # what the SDK parses after each fragment
            jiter.from_json(sent.encode(), partial_mode=True)
    assert sent == whole


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}[]":,\\ \n0123456789-.eEtrufalsn', max_size=30))
def test_whatever_passes_is_a_prefix_the_sdk_parses(text: str) -> None:
    """Arbitrary bytes: either refused, or every prefix sent parses (and a complete one is
    JSON)."""
    check = ToolInputCheck()
    sent = ""
    for char in text:
        try:
            sent += check.feed(char)
        except ArgumentsError:
            return
        if sent:
            value = jiter.from_json(sent.encode(), partial_mode=True)
            assert isinstance(value, dict)
    try:
        complete = json.loads(sent)
    except ValueError:
        return
    assert isinstance(complete, dict)


# Fragments cut at the edges where the check has to remember something (a held comma, an escape,
# a number, a literal, a surrogate half): what is sent of each, and whether the object is whole.
FRAGMENT_EDGES = {
    "a held comma dropped before the bracket": (['{"a": 1,', " }"], ['{"a": 1', " }"]),
    "a held comma and its whitespace sent before a key": (
        ['{"a": "x", ', '"b": 2}'],
        ['{"a": "x"', ', "b": 2}'],
    ),
    "a held comma across a whitespace-only fragment": (
        ['{"a": "x",', "\n", ' "b": [1,', "2,", "]}"],
        ['{"a": "x"', "", ',\n "b": [1', ",2", "]}"],
    ),
    "a comma held after brackets closed in the same fragment": (
        ['{"a": {"b": [1]}', ",", "}"],
        ['{"a": {"b": [1]}', "", "}"],
    ),
    "an escape cut after its backslash, in a value and in a key": (
        ['{"a\\', 't": "x\\', '"y"}'],
        ['{"a\\', 't": "x\\', '"y"}'],
    ),
    "a unicode escape cut in its digits": (['{"q": "\\u00', 'e9"}'], ['{"q": "\\u00', 'e9"}']),
    "a surrogate pair's escapes cut between them": (
        ['{"q": "\\ud83d', '\\ude00"}'],
        ['{"q": "\\ud83d', '\\ude00"}'],
    ),
    "a surrogate pair cut between its halves": (
        ['{"q": "a\ud83d', '\ude00b"}'],
        ['{"q": "a', '\ud83d\ude00b"}'],
    ),
    "a number cut anywhere": (
        ['{"n": -', "0", ".5", "E+", "2,", "}"],
        ['{"n": -', "0", ".5", "E+", "2", "}"],
    ),
    "a number that ends a fragment, then a comma before the bracket": (
        ['{"n": 12', ",}"],
        ['{"n": 12', "}"],
    ),
    "integers of as many digits as a run reads, and one more": (
        ['{"a": ' + "9" * 99, ', "b": ' + "9" * 100 + "}"],
        ['{"a": ' + "9" * 99, ', "b": ' + "9" * 100 + "}"],
    ),
    "literals cut": (
        ['{"a": tr', "ue, ", '"b": nu', "ll}"],
        ['{"a": tr', "ue", ', "b": nu', "ll}"],
    ),
    "raw control characters in a key and a value, cut between": (
        ['{"a\nb": "c', '\td\x01\x1f"}'],
        ['{"a\\nb": "c', '\\td\\u0001\\u001f"}'],
    ),
    "brackets nested and closed in one fragment": (
        ['{"a": [1, {"b": [true, null]}], "c": {}, "d": [[]]}'],
        ['{"a": [1, {"b": [true, null]}], "c": {}, "d": [[]]}'],
    ),
    "whitespace before the object, and after it": (
        ["  ", ' {"a"', ":", '"b"}', " \n"],
        ["", '{"a"', ":", '"b"}', " \n"],
    ),
}


@pytest.mark.parametrize("case", FRAGMENT_EDGES)
def test_fragments_cut_at_a_runs_edges(case: str) -> None:
    fragments, expected = FRAGMENT_EDGES[case]
    check = ToolInputCheck()
    assert [check.feed(fragment) for fragment in fragments] == expected
    assert check.complete
    assert json.loads("".join(expected)) == json.loads(repaired("".join(fragments)))


# Refused at such an edge: the character and its place (counted over every fragment) are named.
REFUSED_AT_EDGES = {
    "after the object": (['{"a": 1', "}x"], "'x' after the object at character 9"),
    "the wrong bracket": (['{"a": "b"', " ]"], "']' after a value at character 11"),
    "an object's bracket closing an array": (['{"a": [1', "}"], "'}' after a value at character 9"),
    "a comma after a held one": (
        ['{"a": 1,', ",}"],
        "',' where a key or a colon should be at character 9",
    ),
    "an escape": (['{"a": "\\', "x"], "'x' in an escape at character 9"),
    "a high surrogate's escape alone": (
        ['{"a": "\\ud83d', '"}'],
        "'\"' after a lone surrogate escape at character 14",
    ),
    "a number cut at its point": (['{"a": 1.', "}"], "'}' in a number at character 9"),
    "a leading zero": (['{"a": 0', "1}"], "'1' after a value at character 8"),
    "nested too deep in one fragment": (
        ['{"a": [' + "[" * 198, "[[]]"],
        "'\\[' nested deeper than 201 at character 207",
    ),
    "an integer too long across fragments": (
        ['{"n": ' + "9" * 4299, "9", "9"],
        "'9' in an integer over 4300 digits at character 4307",
    ),
}


@pytest.mark.parametrize("case", REFUSED_AT_EDGES)
def test_refused_where_a_run_hands_over(case: str) -> None:
    fragments, where = REFUSED_AT_EDGES[case]
    check = ToolInputCheck()
    for fragment in fragments[:-1]:
        check.feed(fragment)
    with pytest.raises(ArgumentsError, match=where):
        check.feed(fragments[-1])


def test_positions_after_double_encoded_arguments_count_every_fragment() -> None:
    """Found by the review of this module: the double-encoded path counted none of its
    characters, so an error after it named the wrong place."""
    with pytest.raises(ArgumentsError, match="'x' after the string at character 6"):
        ToolInputCheck().feed('"{}" x')
    check = ToolInputCheck()
    check.feed('"{\\"a\\"')
    check.feed(': 1}"')
    with pytest.raises(ArgumentsError, match="'x' after the object at character 14"):
        check.feed(" x")


def test_every_control_character_is_sent_as_its_escape() -> None:
    controls = "".join(map(chr, range(0x20)))
    short = {"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
    escaped = "".join(short.get(char, f"\\u{ord(char):04x}") for char in controls)
    text = '{"a' + controls + 'é": "😀' + controls + controls + 'b"}'
    expected = '{"a' + escaped + 'é": "😀' + escaped + escaped + 'b"}'
    assert repaired(text) == expected
    for cut in range(len(text) + 1):
        check = ToolInputCheck()
        assert check.feed(text[:cut]) + check.feed(text[cut:]) == expected


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _values, max_size=6), st.data())
def test_valid_json_passes_unchanged_in_any_fragments(obj: dict[str, Any], data: Any) -> None:
    """What a model writes as valid JSON (compact, spaced, indented, escaped or not) goes out
    as it came, cut anywhere, every prefix parses as the SDK parses it, and it is the object."""
    text = json.dumps(
        obj,
        ensure_ascii=data.draw(st.booleans()),
        indent=data.draw(st.sampled_from([None, 0, 2])),
        separators=data.draw(st.sampled_from([None, (",", ":"), (", ", ": ")])),
    )
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    check = ToolInputCheck()
    sent = []
    for start, end in zip([0, *cuts], [*cuts, len(text)], strict=True):
        sent.append(check.feed(text[start:end]))
        if "".join(sent):
            jiter.from_json("".join(sent).encode(), partial_mode=True)
    assert "".join(sent) == text
    assert check.complete
    assert json.loads("".join(sent)) == obj


@pytest.mark.parametrize("client", [MESSAGES, "openai-responses"])
def test_arguments_sent_as_an_object_are_the_calls_arguments(client: str) -> None:
    """Some OpenAI-compatible servers send ``function.arguments`` as a JSON object instead of
    its text (sipeed/picoclaw#1287); the reader dropped them, and the call ran with none."""
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get", "arguments": {"city": "Zürich"}},
            }
        ],
    }
    answer = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
    }
    adapter = StreamAdapter(upstream_format="openai-chat", client_format=client)
    adapter.feed_response(answer)
    response = adapter.result.response
    assert response is not None
    if client == MESSAGES:
        assert [b["input"] for b in response["content"]] == [{"city": "Zürich"}]
    else:
        assert [json.loads(i["arguments"]) for i in response["output"]] == [{"city": "Zürich"}]


def test_a_run_refused_partway_counts_the_events_read_one_at_a_time() -> None:
    """Arguments refused inside a run of argument events (a read holding many): the same bytes
    and the same ``result``, ``events`` included, as the stream read an event at a time, which
    never reads the run's events after the refused one (found by a random-stream test)."""
    role = raw_sse(chat_body('{"role":"assistant","content":""}'))
    call = [chat_tool(0, call_id="call_a", name="f")] + [
        chat_tool(0, args=fragment) for fragment in ('{"q":', '"x', 'y\\\\"}', '"', "}")
    ]
    events = [role, *call, role, *call]  # the second time round: a second object
    events += [raw_sse(chat_body("{}", finish='"stop"')), b"data: [DONE]\n\n"]
    assert_same("openai-chat", MESSAGES, events, {}, [[b"".join(events)]])
