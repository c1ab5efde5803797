"""Translation fidelity at the edges, through ``StreamAdapter`` and the official SDKs:

* an interrupted tool call never looks finished, with ``visible_errors`` as without it (the
  option only adds the error message as a last text delta, where the format can show it);
* a refusal after reasoning is a refusal to Messages clients;
* usage in the first chunk reaches Messages' ``message_start``;
* JSON that only the standard library reads (a lone surrogate escape) streams the same with
  orjson installed as without it;
* ``reasoning_field`` must name a field the Chat delta does not already use;
* what the client must act on but cannot receive (a custom tool's call) fails the stream.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from asgi_sse_adapter import ServerSentEvent, SSEDecoder
from asgi_sse_adapter.adapter import StreamAdapter
from tests.test_text_runs import use_stdlib_json
from tests.test_translate import anthropic_client, openai_client

CHAT = "openai-chat"
MESSAGES = "anthropic-messages"
RESPONSES = "openai-responses"
COMPLETIONS = "openai-text"
TEXT = "anthropic-text"
TOOL_CLIENTS = (CHAT, MESSAGES, RESPONSES)
ALL_CLIENTS = (CHAT, MESSAGES, RESPONSES, COMPLETIONS, TEXT)
VISIBLE = "[error: boom]"


# -- upstream events ---------------------------------------------------------------------------


def sse(payload: Any, event: str | None = None) -> bytes:
    head = b"" if event is None else b"event: " + event.encode() + b"\n"
    return head + b"data: " + json.dumps(payload).encode() + b"\n\n"


def chat(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    usage: dict[str, Any] | None = None,
    obj: str = "chat.completion.chunk",
) -> bytes:
    """One Chat chunk of choice 0 (a Completions chunk when ``obj`` says so)."""
    if obj == "text_completion":
        choice: dict[str, Any] = {"text": (delta or {}).get("content", ""), "index": 0}
    else:
        choice = {"index": 0, "delta": delta or {}}
    choice.update(logprobs=None, finish_reason=finish)
    chunk: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": obj,
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [choice],
    }
    if usage is not None:
        chunk["usage"] = usage
    return sse(chunk)


def call(index: int, arguments: str, call_id: str | None = None, name: str = "rm") -> bytes:
    """A Chat chunk with one tool-call delta (its first, when ``call_id`` is given)."""
    entry: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if call_id is not None:
        entry.update(id=call_id, type="function")
        entry["function"] = {"name": name, "arguments": arguments}
    return chat({"tool_calls": [entry]})


def messages(type_: str, **fields: Any) -> bytes:
    return sse({"type": type_, **fields}, type_)


MESSAGE_START = messages(
    "message_start",
    message={
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1},
    },
)


def tool_start(index: int, call_id: str, name: str) -> bytes:
    """A Messages ``tool_use`` block's start."""
    use = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    return messages("content_block_start", index=index, content_block=use)


def tool_args(index: int, fragment: str) -> bytes:
    """An argument fragment of the Messages tool block at ``index``."""
    delta = {"type": "input_json_delta", "partial_json": fragment}
    return messages("content_block_delta", index=index, delta=delta)


def tool_block(index: int, call_id: str, name: str, arguments: str) -> bytes:
    """A whole Messages ``tool_use`` block: start, one argument fragment, stop."""
    return (
        tool_start(index, call_id, name)
        + tool_args(index, arguments)
        + messages("content_block_stop", index=index)
    )


def responses(type_: str, seq: int, **fields: Any) -> bytes:
    return sse({"type": type_, "sequence_number": seq, **fields}, type_)


RESPONSE = {"id": "resp_1", "object": "response", "created_at": 1700000000, "model": "gpt-5"}
ROLE = chat({"role": "assistant", "content": ""})

# Upstreams whose tool call is cut off: the events up to the cut, the upstream format, and its
# error event (the other ending: the stream just stops, a truncation).
CUT_CALLS: dict[str, tuple[str, bytes, bytes]] = {
    "chat": (
        CHAT,
        ROLE + call(0, '{"path":"/tmp/x', "call_a"),
        sse({"error": {"message": "boom", "type": "server_error"}}),
    ),
    "chat-after-text": (
        CHAT,
        ROLE + chat({"content": "Deleting it."}) + call(0, '{"path":', "call_a"),
        sse({"error": {"message": "boom", "type": "server_error"}}),
    ),
    # Parallel calls interleaved (Chat): the second one is queued behind the first by the
    # Messages and Responses writers; neither may be played through to its end.
    "chat-interleaved": (
        CHAT,
        ROLE
        + call(0, '{"path":', "call_a")
        + call(1, '{"path":"/b', "call_b", "rm")
        + call(0, '"/tmp'),
        sse({"error": {"message": "boom", "type": "server_error"}}),
    ),
    "messages": (
        MESSAGES,
        MESSAGE_START
        + messages(
            "content_block_start",
            index=0,
            content_block={"type": "tool_use", "id": "toolu_1", "name": "rm", "input": {}},
        )
        + messages(
            "content_block_delta",
            index=0,
            delta={"type": "input_json_delta", "partial_json": '{"path":"/tmp/x'},
        ),
        messages("error", error={"type": "overloaded_error", "message": "boom"}),
    ),
    "responses": (
        RESPONSES,
        responses("response.created", 0, response={**RESPONSE, "status": "in_progress"})
        + responses(
            "response.output_item.added",
            1,
            output_index=0,
            item={
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "rm",
                "arguments": "",
                "status": "in_progress",
            },
        )
        + responses(
            "response.function_call_arguments.delta",
            2,
            item_id="fc_1",
            output_index=0,
            delta='{"path":"/tmp/x',
        ),
        responses(
            "error", 3, error={"type": "server_error", "code": "server_error", "message": "boom"}
        ),
    ),
}

# Every translation of them to a client that carries tool calls (identity passes the upstream's
# own events through).
CUT_CASES = [
    pytest.param(name, client, id=f"{name}-{client}")
    for name, (upstream, _, _) in CUT_CALLS.items()
    for client in TOOL_CLIENTS
    if client != upstream
]


# -- helpers -----------------------------------------------------------------------------------


def counter_ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"gen{next(counter):04d}"


def adapter(upstream: str, client: str, **options: Any) -> StreamAdapter:
    """A deterministic adapter that builds the final response."""
    return StreamAdapter(
        upstream_format=upstream,
        client_format=client,
        clock=lambda: 1700000000.0,
        id_factory=counter_ids(),
        collect_response=True,
        **options,
    )


def translate(
    upstream: str, client: str, raw: bytes, **options: Any
) -> tuple[bytes, StreamAdapter]:
    a = adapter(upstream, client, **options)
    return a.feed(raw) + a.close(), a


def cut(name: str, ending: str, client: str, visible: bool) -> tuple[bytes, StreamAdapter]:
    upstream, head, error = CUT_CALLS[name]
    raw = head + error if ending == "error" else head
    return translate(upstream, client, raw, visible_errors=visible)


def drain(events: Iterable[Any], seen: list[Any]) -> None:
    """Collect what an SDK stream yields into ``seen`` (until it raises)."""
    for event in events:
        seen.append(event)


def payloads(out: bytes) -> list[dict[str, Any]]:
    """Every JSON event of a client stream, read by the standard library (as the SDKs do)."""
    events: list[ServerSentEvent] = SSEDecoder(max_event_size=None).feed(out)
    return [json.loads(e.data) for e in events if e.data != "[DONE]"]


def without_seq(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "sequence_number"}


def call_events(client: str, out: bytes) -> list[Any]:
    """What a client stream says about its tool calls, event by event (Responses: without the
    sequence numbers, which count the events the visible text adds)."""
    events = payloads(out)
    if client == CHAT:
        return [
            (c["delta"].get("tool_calls"), c["finish_reason"])
            for e in events
            for c in e.get("choices") or []
            if c["delta"].get("tool_calls") or c["finish_reason"]
        ]
    if client == MESSAGES:
        tools = {
            e["index"]
            for e in events
            if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"
        }
        return [e for e in events if e.get("index") in tools]
    fc = [
        e["item"]["id"]
        for e in events
        if e["type"] == "response.output_item.added" and e["item"]["type"] == "function_call"
    ]
    return [
        without_seq(e)
        for e in events
        if e.get("item_id") in fc or (e.get("item") or {}).get("id") in fc
    ]


def assert_calls_unfinished(client: str, out: bytes) -> None:
    """No event of ``out`` presents a tool call as finished."""
    events = payloads(out)
    if client == CHAT:
        finishes = [c["finish_reason"] for e in events for c in e.get("choices") or []]
        assert not any(finishes), finishes
        assert any("tool_calls" in c["delta"] for e in events for c in e.get("choices") or [])
    elif client == MESSAGES:
        tools = [
            e["index"]
            for e in events
            if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use"
        ]
        assert tools
        stopped = [e["index"] for e in events if e["type"] == "content_block_stop"]
        assert not set(tools) & set(stopped), (tools, stopped)
        assert not {"message_delta", "message_stop"} & {e["type"] for e in events}
    else:
        types = [e["type"] for e in events]
        assert "response.function_call_arguments.done" not in types
        done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
        assert all(item["type"] != "function_call" for item in done), done
        (failed,) = [e["response"] for e in events if e["type"] == "response.failed"]
        calls = [i for i in failed["output"] if i["type"] == "function_call"]
        assert calls
        assert all(i["status"] == "incomplete" for i in calls), calls


def visible_text(client: str, out: bytes) -> str:
    """The text a client stream shows."""
    events = payloads(out)
    if client == CHAT:
        return "".join(
            c["delta"].get("content") or "" for e in events for c in e.get("choices") or []
        )
    if client == MESSAGES:
        return "".join(
            e["delta"]["text"]
            for e in events
            if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
        )
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


# -- D1: an interrupted tool call stays unfinished, visible error or not -------------------------


@pytest.mark.parametrize("ending", ["error", "truncated"])
@pytest.mark.parametrize(("name", "client"), CUT_CASES)
def test_cut_tool_call_stays_unfinished_with_visible_errors(
    name: str, client: str, ending: str
) -> None:
    """A call cut off by an error or a truncation: no client sees it finished (no finish
    reason, no block stop, no done events; ``response.failed`` lists it as incomplete), and
    ``visible_errors`` changes nothing about the calls: every event about them is the same as
    without it. The text is visible where the format can show it without stopping the call's
    block (Chat, Responses: a message item of its own); Messages shows none while a tool block
    is open."""
    plain, plain_adapter = cut(name, ending, client, visible=False)
    shown, shown_adapter = cut(name, ending, client, visible=True)
    assert plain_adapter.result.outcome == shown_adapter.result.outcome
    assert shown_adapter.result.outcome == ("failed" if ending == "error" else "truncated")
    assert_calls_unfinished(client, plain)
    assert_calls_unfinished(client, shown)
    assert call_events(client, shown) == call_events(client, plain)
    message = "boom" if ending == "error" else "truncated"
    before = visible_text(client, plain)
    if client == MESSAGES:
        assert visible_text(client, shown) == before
        assert message not in json.dumps(shown_adapter.result.response)
    else:
        assert visible_text(client, shown).startswith(before)
        assert message in visible_text(client, shown)[len(before) :]


@pytest.mark.parametrize(("name", "client"), CUT_CASES)
def test_sdks_never_see_a_cut_call_finished(name: str, client: str) -> None:
    """What the official SDKs hand user code for a call cut off by an error, with
    ``visible_errors``: anthropic's ``MessageStream`` yields no ``content_block_stop`` (which
    would carry a finished ``ToolUseBlock``), openai's ``responses.stream()`` no done event for
    the call, ``chat.completions`` no finish reason; then each raises the error."""
    upstream, head, error = CUT_CALLS[name]
    out, _ = translate(upstream, client, head + error, visible_errors=True)
    prompt: Any = [{"role": "user", "content": "hi"}]
    seen: list[Any] = []
    if client == MESSAGES:
        with (
            anthropic_client(out).messages.stream(
                model="claude", max_tokens=100, messages=prompt
            ) as stream,
            pytest.raises(anthropic.APIStatusError, match="boom"),
        ):
            drain(stream, seen)
        assert any(e.type == "content_block_start" for e in seen)
        stopped = [e for e in seen if e.type == "content_block_stop"]
        assert all(e.content_block.type != "tool_use" for e in stopped), stopped
    elif client == RESPONSES:
        with (
            openai_client(out).responses.stream(model="gpt-5", input="hi") as rstream,
            pytest.raises(openai.APIError, match="boom"),
        ):
            drain(rstream, seen)
        assert any(e.type == "response.function_call_arguments.delta" for e in seen)
        assert not [e for e in seen if e.type == "response.function_call_arguments.done"]
        assert not [
            e
            for e in seen
            if e.type == "response.output_item.done" and e.item.type == "function_call"
        ]
    else:
        chunks = openai_client(out).chat.completions.create(
            model="gpt-4o", messages=prompt, stream=True
        )
        with pytest.raises(openai.APIError, match="boom"):
            drain(chunks, seen)
        choices = [c for chunk in seen for c in chunk.choices]
        assert any(c.delta.tool_calls for c in choices)
        assert all(c.finish_reason is None for c in choices)


def test_visible_error_after_a_finished_call_is_shown_to_messages_clients() -> None:
    """Once the call's block has stopped (the upstream finished the call), the error text has
    a text block of its own again: the rule hides it only while a call is open."""
    upstream = (
        responses("response.created", 0, response={**RESPONSE, "status": "in_progress"})
        + responses(
            "response.output_item.added",
            1,
            output_index=0,
            item={"type": "function_call", "id": "fc_1", "call_id": "call_a", "name": "rm"},
        )
        + responses(
            "response.function_call_arguments.delta",
            2,
            item_id="fc_1",
            output_index=0,
            delta='{"path":"/tmp/x"}',
        )
        + responses(
            "response.output_item.done",
            3,
            output_index=0,
            item={
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_a",
                "name": "rm",
                "arguments": '{"path":"/tmp/x"}',
                "status": "completed",
            },
        )
        + responses("error", 4, error={"type": "server_error", "message": "boom"})
    )
    out, _ = translate(RESPONSES, MESSAGES, upstream, visible_errors=True)
    events = payloads(out)
    assert [e["type"] for e in events if e["type"].startswith("content_block")] == [
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
    ]
    assert visible_text(MESSAGES, out) == "\n\n" + VISIBLE


@pytest.mark.parametrize("client", [MESSAGES, RESPONSES])
def test_visible_error_still_joins_open_text(client: str) -> None:
    """Text cut by an error: the error text goes on in the same text block / message item, and
    nothing is closed before the error event."""
    upstream = ROLE + chat({"content": "Hello"}) + CUT_CALLS["chat"][2]
    out, _ = translate(CHAT, client, upstream, visible_errors=True)
    assert visible_text(client, out) == "Hello\n\n" + VISIBLE
    types = [e["type"] for e in payloads(out)]
    assert "content_block_stop" not in types
    assert not [t for t in types if t.endswith(".done")]


def test_visible_error_after_cut_reasoning() -> None:
    """Reasoning cut by an error: a Responses client's reasoning item stays open as without the
    text (the text gets a message item of its own); a Messages client's thinking block is
    stopped so that a text block can show it (blocks are sequential, and a stopped thinking
    block is nothing a client acts on)."""
    upstream = ROLE + chat({"reasoning_content": "Let me"}) + CUT_CALLS["chat"][2]
    plain, _ = translate(CHAT, RESPONSES, upstream)
    shown, _ = translate(CHAT, RESPONSES, upstream, visible_errors=True)
    for out in (plain, shown):
        assert not [e for e in payloads(out) if e["type"].endswith(".done")]
    assert visible_text(RESPONSES, shown) == "\n\n" + VISIBLE
    shown, _ = translate(CHAT, MESSAGES, upstream, visible_errors=True)
    blocks = [
        (e["type"], e.get("content_block", {}).get("type"))
        for e in payloads(shown)
        if e["type"] in ("content_block_start", "content_block_stop")
    ]
    assert blocks == [
        ("content_block_start", "thinking"),
        ("content_block_stop", None),
        ("content_block_start", "text"),
    ]
    assert visible_text(MESSAGES, shown) == "\n\n" + VISIBLE


# -- D2: a refusal after reasoning ---------------------------------------------------------------


def responses_refusal_after_reasoning() -> bytes:
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    message = {"type": "message", "id": "msg_1", "role": "assistant", "content": []}
    refusal = "I can't help with that."
    return b"".join(
        [
            responses("response.created", 0, response={**RESPONSE, "status": "in_progress"}),
            responses("response.output_item.added", 1, output_index=0, item=reasoning),
            responses(
                "response.reasoning_summary_text.delta",
                2,
                item_id="rs_1",
                output_index=0,
                summary_index=0,
                delta="The request is disallowed.",
            ),
            responses("response.output_item.done", 3, output_index=0, item=reasoning),
            responses("response.output_item.added", 4, output_index=1, item=message),
            responses(
                "response.refusal.delta",
                5,
                item_id="msg_1",
                output_index=1,
                content_index=0,
                delta=refusal,
            ),
            responses(
                "response.completed",
                6,
                response={
                    **RESPONSE,
                    "status": "completed",
                    "output": [],
                    "usage": {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7},
                },
            ),
        ]
    )


REFUSAL = chat({"refusal": "I can't help with that."})
REFUSALS_AFTER_REASONING: dict[str, tuple[str, bytes, str]] = {
    "chat-reasoning": (
        CHAT,
        ROLE + chat({"reasoning_content": "Disallowed."}) + REFUSAL + chat(None, "stop"),
        "refusal",
    ),
    "chat-signed-reasoning": (
        CHAT,
        ROLE
        + chat(
            {
                "reasoning_content": "Disallowed.",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "Disallowed.", "signature": "c2ln"}
                ],
            }
        )
        + REFUSAL
        + chat(None, "stop"),
        "refusal",
    ),
    "chat-redacted-reasoning": (
        CHAT,
        ROLE
        + chat({"thinking_blocks": [{"type": "redacted_thinking", "data": "ZW5j"}]})
        + REFUSAL
        + chat(None, "stop"),
        "refusal",
    ),
    "responses-reasoning-item": (RESPONSES, responses_refusal_after_reasoning(), "refusal"),
    # Not a refusal-only answer: the rule must not reach these.
    "chat-text-and-refusal": (
        CHAT,
        ROLE
        + chat({"reasoning_content": "Hm."})
        + chat({"content": "Well, "})
        + REFUSAL
        + chat(None, "stop"),
        "end_turn",
    ),
    "chat-reasoning-only": (
        CHAT,
        ROLE + chat({"reasoning_content": "Hm."}) + chat(None, "stop"),
        "end_turn",
    ),
}


@pytest.mark.parametrize("name", REFUSALS_AFTER_REASONING)
def test_refusal_after_reasoning_is_a_refusal_to_messages_clients(name: str) -> None:
    """OpenAI ends a refusal with a plain stop; to a Messages client an answer that is only a
    refusal ends with ``refusal``, whatever reasoning (plain, signed, redacted, a Responses
    reasoning item) came first: in the stream, in ``get_final_message()`` and in the
    adapter's final response."""
    upstream, raw, stop = REFUSALS_AFTER_REASONING[name]
    out, a = translate(upstream, MESSAGES, raw + b"data: [DONE]\n\n")
    assert a.result.outcome == "complete"
    (delta,) = [e for e in payloads(out) if e["type"] == "message_delta"]
    assert delta["delta"]["stop_reason"] == stop
    with anthropic_client(out).messages.stream(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        assert stream.get_final_message().stop_reason == stop
    assert a.result.response is not None
    assert a.result.response["stop_reason"] == stop


# -- D3: usage in the first chunk ----------------------------------------------------------------


def usage(completion: int) -> dict[str, Any]:
    return {"prompt_tokens": 20, "completion_tokens": completion, "total_tokens": 20 + completion}


@pytest.mark.parametrize("obj", ["chat.completion.chunk", "text_completion"])
def test_usage_in_the_first_chunk_reaches_message_start(obj: str) -> None:
    """vLLM's continuous usage stats and some gateways put usage on every chunk, the first
    included: ``message_start`` then states the prompt's 20 input tokens (Claude Code's context
    meter reads them there), and the final usage is the last chunk's."""
    upstream = CHAT if obj == "chat.completion.chunk" else COMPLETIONS
    raw = (
        chat({"role": "assistant", "content": "Hi"}, usage=usage(1), obj=obj)
        + chat({"content": " there"}, usage=usage(2), obj=obj)
        + chat(None, "stop", usage=usage(3), obj=obj)
        + b"data: [DONE]\n\n"
    )
    out, a = translate(upstream, MESSAGES, raw)
    events = payloads(out)
    assert events[0]["type"] == "message_start"
    assert events[0]["message"]["usage"]["input_tokens"] == 20
    with anthropic_client(out).messages.stream(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        first = next(iter(stream))
        assert first.type == "message_start"
        assert first.message.usage.input_tokens == 20
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.output_tokens) == (20, 3)
    assert a.result.usage is not None
    assert (a.result.usage.input_tokens, a.result.usage.output_tokens) == (20, 3)


def test_usage_in_the_first_chunk_still_reaches_chat_usage_chunk() -> None:
    """The same upstream to a Chat client that asked for usage: one usage chunk, the last
    one's totals (the first chunk's usage now travels with the stream's start)."""
    raw = (
        chat({"role": "assistant", "content": "Hi"}, usage=usage(1), obj="text_completion")
        + chat(None, "stop", usage=usage(2), obj="text_completion")
        + b"data: [DONE]\n\n"
    )
    out, _ = translate(COMPLETIONS, CHAT, raw, include_usage=True)
    usages = [e["usage"] for e in payloads(out) if e.get("usage")]
    assert usages == [usage(2)]


# -- D4: JSON only the standard library reads ------------------------------------------------


RAW = "\x00raw\x00"


def with_raw(payload: Any, raw: str, event: str | None = None) -> bytes:
    """One event holding ``payload`` as compact JSON (the exact shape the APIs send, which the
    readers' shortcuts recognise) with the value ``RAW`` in it written as ``raw``, raw JSON
    (escapes kept as they are)."""
    data = json.dumps(payload, separators=(",", ":")).replace(json.dumps(RAW), raw)
    head = b"" if event is None else b"event: " + event.encode() + b"\n"
    return head + b"data: " + data.encode() + b"\n\n"


def text_block(index: int, text_json: str) -> bytes:
    """A Messages text delta whose text is given as raw JSON."""
    delta = {"type": "text_delta", "text": RAW}
    payload = {"type": "content_block_delta", "index": index, "delta": delta}
    return with_raw(payload, text_json, "content_block_delta")


def messages_text_stream(*texts_json: str) -> bytes:
    start = messages("content_block_start", index=0, content_block={"type": "text", "text": ""})
    end = (
        messages("content_block_stop", index=0)
        + messages("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3})
        + messages("message_stop")
    )
    return MESSAGE_START + start + b"".join(text_block(0, t) for t in texts_json) + end


def messages_tool_stream(start_input: str, partial: str | None) -> bytes:
    """A tool_use block whose start ``input`` and (maybe) one ``partial_json`` are raw JSON."""
    block = {"type": "tool_use", "id": "toolu_1", "name": "find", "input": RAW}
    start = {"type": "content_block_start", "index": 0, "content_block": block}
    blocks = with_raw(start, start_input, "content_block_start")
    if partial is not None:
        delta = {"type": "input_json_delta", "partial_json": RAW}
        payload = {"type": "content_block_delta", "index": 0, "delta": delta}
        blocks += with_raw(payload, partial, "content_block_delta")
    end = (
        messages("content_block_stop", index=0)
        + messages("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 3})
        + messages("message_stop")
    )
    return MESSAGE_START + blocks + end


def chat_raw(delta_json: str) -> bytes:
    """A Chat chunk of choice 0 whose delta is given as raw JSON."""
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": RAW, "logprobs": None, "finish_reason": None}],
    }
    return with_raw(chunk, delta_json)


CHAT_END = chat(None, "stop") + b"data: [DONE]\n\n"
# Streams with a lone surrogate escape (``\ud83d``) where each kind of value is read.
LONE_SURROGATES: dict[str, tuple[str, bytes]] = {
    "chat-content": (CHAT, ROLE + chat_raw('{"content":"a\\ud83d"}') + CHAT_END),
    "chat-content-among-text": (
        CHAT,
        ROLE
        + b"".join(chat({"content": f"t{i} "}) for i in range(6))
        + chat_raw('{"content":"\\ud83d"}')
        + b"".join(chat({"content": f"u{i} "}) for i in range(6))
        + CHAT_END,
    ),
    "chat-reasoning": (CHAT, ROLE + chat_raw('{"reasoning_content":"\\udfff"}') + CHAT_END),
    "chat-refusal": (CHAT, ROLE + chat_raw('{"refusal":"no \\ud800"}') + CHAT_END),
    "chat-tool-name": (
        CHAT,
        ROLE
        + chat_raw(
            '{"tool_calls":[{"index":0,"id":"call_1","type":"function",'
            '"function":{"name":"f\\ud83d","arguments":"{}"}}]}'
        )
        + chat(None, "tool_calls")
        + b"data: [DONE]\n\n",
    ),
    "chat-arguments": (
        CHAT,
        ROLE
        + call(0, "", "call_1", "find")
        + chat_raw('{"tool_calls":[{"index":0,"function":{"arguments":"{\\"q\\":\\"\\ud83d"}}]}')
        + call(0, '"}')
        + chat(None, "tool_calls")
        + b"data: [DONE]\n\n",
    ),
    "messages-text": (MESSAGES, messages_text_stream('"a"', '"b\\ud83d"', '"c"')),
    "messages-arguments": (
        MESSAGES,
        messages_tool_stream("{}", '"{\\"q\\":\\"\\ud83d\\"}"'),
    ),
    "messages-start-input": (MESSAGES, messages_tool_stream('{"q":"\\ud83d"}', None)),
}

TEXT_VALUES = frozenset(
    {"chat-content", "chat-content-among-text", "chat-refusal", "messages-text"}
)


def run_whole_and_split(upstream: str, client: str, raw: bytes) -> tuple[bytes, StreamAdapter]:
    """The client stream for ``raw`` fed whole, checked equal to it fed an event at a time
    (the one-event read paths) and in 7-byte reads."""
    whole, a = translate(upstream, client, raw)
    events = [block + b"\n\n" for block in raw.split(b"\n\n") if block]
    for pieces in (events, [raw[i : i + 7] for i in range(0, len(raw), 7)]):
        b = adapter(upstream, client)
        assert b"".join(b.feed(piece) for piece in pieces) + b.close() == whole
    return whole, a


def backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The installed JSON backend, then the standard library's (the package without orjson)."""
    yield "installed"
    use_stdlib_json(monkeypatch)
    yield "stdlib"


@pytest.mark.parametrize("name", LONE_SURROGATES)
def test_lone_surrogate_escape_streams_alike_under_both_json_backends(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """orjson refuses a lone surrogate escape, which the standard library (and so the SDKs)
    reads: every client gets a complete stream, byte for byte the same with orjson installed
    as without it, the value written as its escape again. Except in tool arguments to
    Anthropic clients, whose SDK encodes them to UTF-8 and fails on a lone surrogate: there
    the stream ends with the error event (``_tool_input``)."""
    upstream, raw = LONE_SURROGATES[name]
    clients = [c for c in ALL_CLIENTS if c != upstream]
    got: dict[str, list[bytes]] = {}
    for backend in backends(monkeypatch):
        got[backend] = []
        for client in clients:
            out, a = run_whole_and_split(upstream, client, raw)
            if name == "chat-arguments" and client == MESSAGES:
                assert a.result.error is not None
                assert a.result.error.code == "malformed_tool_arguments"
                assert "lone surrogate" in a.result.error.message
                continue
            assert a.result.outcome == "complete", (backend, client, out[-300:])
            payloads(out)  # every event is JSON the standard library reads
            got[backend].append(out)
    assert got["installed"] == got["stdlib"]
    # Where the client format carries the value (the text ones have no reasoning or tools).
    carried = [
        out
        for client, out in zip(
            [c for c in clients if not (name == "chat-arguments" and c == MESSAGES)],
            got["installed"],
            strict=True,
        )
        if client in TOOL_CLIENTS or name in TEXT_VALUES
    ]
    assert all(b"\\ud8" in out or b"\\udf" in out for out in carried), name


def test_lone_surrogate_reaches_sdk_users() -> None:
    """The SDKs read the escape back into the upstream's string."""
    upstream, raw = LONE_SURROGATES["chat-content"]
    out, _ = translate(upstream, MESSAGES, raw)
    with anthropic_client(out).messages.stream(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        message = stream.get_final_message()
    assert [b.text for b in message.content if b.type == "text"] == ["a\ud83d"]
    upstream, raw = LONE_SURROGATES["messages-arguments"]
    out, _ = translate(upstream, CHAT, raw)
    chunks = openai_client(out).chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    arguments = "".join(
        tc.function.arguments or ""
        for chunk in chunks
        for c in chunk.choices
        for tc in c.delta.tool_calls or []
        if tc.function is not None
    )
    assert json.loads(arguments) == {"q": "\ud83d"}


def test_malformed_json_is_still_malformed() -> None:
    """The fallback reads only what the standard library reads: cut JSON still ends the
    stream with the error tail."""
    out, a = translate(CHAT, MESSAGES, ROLE + b'data: {"choices":[{"index":0,"delta":{"conte\n\n')
    assert a.result.outcome == "failed"
    assert a.result.error is not None
    assert "invalid JSON" in a.result.error.message
    assert payloads(out)[-1]["type"] == "error"


# -- D5: reasoning_field ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field",
    ["content", "role", "refusal", "tool_calls", "function_call", "", None, 7, ["reasoning"]],
)
def test_reasoning_field_must_be_a_field_of_its_own(field: Any) -> None:
    """Reasoning written into ``content`` would be read as the answer, into ``role`` would break
    the role chunk: such a name (or no name at all) is refused when the adapter is built."""
    with pytest.raises(ValueError, match="reasoning_field"):
        StreamAdapter(upstream_format=MESSAGES, client_format=CHAT, reasoning_field=field)


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content", "thoughts"])
def test_reasoning_field_carries_the_reasoning(field: str) -> None:
    """A free name carries the reasoning, and only it."""
    thinking = messages(
        "content_block_start",
        index=0,
        content_block={"type": "thinking", "thinking": "Let me see.", "signature": ""},
    ) + messages("content_block_stop", index=0)
    raw = (
        MESSAGE_START
        + thinking
        + messages("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 3})
        + messages("message_stop")
    )
    out, _ = translate(MESSAGES, CHAT, raw, reasoning_field=field)
    deltas = [c["delta"] for e in payloads(out) for c in e["choices"]]
    assert [d[field] for d in deltas if field in d] == ["Let me see."]
    assert all(d.get("content") in (None, "") for d in deltas)


@pytest.mark.parametrize("client", [CHAT, COMPLETIONS])
def test_lone_surrogate_in_the_model_name_to_openai_clients(client: str) -> None:
    """A lone surrogate escape in the upstream's model name reaches the chunk envelope of Chat
    and Completions clients, which ``formats/_openai.py`` (``Envelope``) encodes once per
    stream: it needs the ``dumps_fallback`` too (with orjson, a ``TypeError`` otherwise)."""
    start = messages(
        "message_start",
        message={"id": "msg_1", "type": "message", "role": "assistant", "content": []},
    ).replace(b'"content": []', b'"content": [], "model": "c\\ud83d"')
    raw = (
        start
        + messages("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": 1})
        + messages("message_stop")
    )
    out, a = translate(MESSAGES, client, raw)
    assert a.result.outcome == "complete"
    assert all(e["model"] == "c\ud83d" for e in payloads(out))


# -- content between a call's argument fragments; a call cut by the token limit ----------------

# Chat upstreams that send a content (or reasoning) delta while a call's arguments are still
# streaming: the Messages and Responses writers hold it until the call is done, never closing
# the call for it (which dropped the rest of its arguments).
INTERLEAVED_CONTENT: dict[str, bytes] = {
    "text": call(0, '{"a":', "call_a", "f") + chat({"content": "\n"}) + call(0, "1}"),
    "reasoning": (
        call(0, '{"a":', "call_a", "f") + chat({"reasoning_content": "hmm"}) + call(0, "1}")
    ),
    "parallel-then-text": (
        call(0, '{"a":', "call_a", "f")
        + call(1, '{"b":', "call_b", "g")
        + call(1, "2}")
        + chat({"content": " "})
        + call(0, "1}")
    ),
}
WHOLE_ARGUMENTS = {"call_a": {"a": 1}, "call_b": {"b": 2}}


@pytest.mark.parametrize("client", [MESSAGES, RESPONSES])
@pytest.mark.parametrize("name", list(INTERLEAVED_CONTENT))
def test_content_inside_a_calls_arguments_waits_for_the_call(name: str, client: str) -> None:
    raw = ROLE + INTERLEAVED_CONTENT[name] + chat(None, "tool_calls") + b"data: [DONE]\n\n"
    out, a = translate(CHAT, client, raw)
    # What the SDK accumulated: each call's arguments when it was finished (a stopped block,
    # a done item), and the kinds of content in order.
    if client == MESSAGES:
        with anthropic_client(out).messages.stream(model="m", max_tokens=1, messages=[]) as stream:
            message = stream.get_final_message()
        calls = {b.id: b.input for b in message.content if b.type == "tool_use"}
        kinds: list[str | None] = [b.type for b in message.content]
    else:
        assert list(openai_client(out).responses.create(model="m", input="x", stream=True))
        done = [e["item"] for e in payloads(out) if e["type"] == "response.output_item.done"]
        fc = [i for i in done if i["type"] == "function_call"]
        calls = {i["call_id"]: json.loads(i["arguments"]) for i in fc}
        assert all(i["status"] == "completed" for i in fc)
        kinds = [{"message": "text", "reasoning": "thinking"}.get(i["type"]) for i in done]
    wanted = ["call_a", "call_b"] if name == "parallel-then-text" else ["call_a"]
    assert calls == {k: WHOLE_ARGUMENTS[k] for k in wanted}
    # The held content follows the calls it arrived within, and is not lost.
    assert kinds[-1] == ("thinking" if name == "reasoning" else "text")
    held = {"text": "\n", "reasoning": "hmm", "parallel-then-text": " "}[name]
    assert json.dumps(held)[1:-1] in json.dumps(a.result.response)
    # Chunking invariance holds with the held content too.
    for cut_at in range(1, len(raw), 7):
        b = adapter(CHAT, client)
        assert b.feed(raw[:cut_at]) + b.feed(raw[cut_at:]) + b.close() == out


def test_a_call_cut_by_the_token_limit_is_incomplete_to_responses_clients() -> None:
    """Anthropic stops a tool_use block the token limit cut like any other, and only the
    ``message_delta`` after it says ``max_tokens``: the call's item must not close as
    ``completed`` before that is known (agents run completed calls), while a call that was
    followed by another one was complete."""
    raw = MESSAGE_START + tool_block(0, "t0", "f", '{"a":1}') + tool_block(1, "t1", "g", '{"b":')
    ending = messages("message_delta", delta={"stop_reason": "%s"}, usage={"output_tokens": 9})
    for reason, last_status in (("max_tokens", "incomplete"), ("tool_use", "completed")):
        tail = ending.replace(b"%s", reason.encode()) + messages("message_stop")
        out, a = translate(MESSAGES, RESPONSES, raw + tail)
        assert list(openai_client(out).responses.create(model="m", input="x", stream=True))
        done = [e["item"] for e in payloads(out) if e["type"] == "response.output_item.done"]
        statuses = [(i["call_id"], i["status"]) for i in done]
        assert statuses == [("t0", "completed"), ("t1", last_status)]
        assert a.result.response is not None
        final = [(i["call_id"], i["status"]) for i in a.result.response["output"]]
        assert final == [("t0", "completed"), ("t1", last_status)]


@pytest.mark.parametrize(
    "error",
    [
        {"type": "requests", "code": "rate_limit_exceeded", "message": "Rate limit reached"},
        {"type": "tokens", "code": None, "message": "Rate limit reached"},
    ],
)
@pytest.mark.parametrize("client", [MESSAGES, RESPONSES])
def test_openai_rate_limit_types_are_rate_limits(error: dict[str, Any], client: str) -> None:
    """OpenAI types a rate limit by what ran out ("requests", "tokens"): it is a rate limit to
    every client (Anthropic's ``rate_limit_error``; 429 when it becomes a status, which the
    SDKs retry), not an unknown error (500)."""
    raw = ROLE + chat({"content": "hi"}) + sse({"error": error})
    out, a = translate(CHAT, client, raw)
    assert a.result.error is not None
    assert a.result.error.type == "rate_limit_error"
    assert a.client_format.error_body(a.result.error)[0] == 429
    if client == MESSAGES:
        (tail,) = [e for e in payloads(out) if e["type"] == "error"]
        assert tail["error"]["type"] == "rate_limit_error"


@pytest.mark.parametrize("visible", [False, True])
def test_content_held_behind_a_cut_call_reaches_responses_clients(visible: bool) -> None:
    """Text held behind an open call when the stream fails: the call stays unfinished (no done
    event, ``incomplete``), the text goes out after it in a message item of its own, and the
    deltas streamed agree with ``response.failed`` (with ``visible_errors`` the error text
    follows it)."""
    raw = (
        ROLE
        + call(0, '{"a":', "call_a", "f")
        + chat({"content": "IMPORTANT"})
        + call(0, "1")
        + sse({"error": {"message": "boom", "type": "server_error"}})
    )
    out, _ = translate(CHAT, RESPONSES, raw, visible_errors=visible)
    events = payloads(out)
    streamed = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert streamed == ("IMPORTANT\n\n" + VISIBLE if visible else "IMPORTANT")
    (failed,) = [e["response"] for e in events if e["type"] == "response.failed"]
    texts = [c["text"] for i in failed["output"] if i["type"] == "message" for c in i["content"]]
    assert "".join(texts) == streamed
    calls = [i for i in failed["output"] if i["type"] == "function_call"]
    assert [c["status"] for c in calls] == ["incomplete"]
    assert_calls_unfinished(RESPONSES, out)


def test_a_finished_call_followed_by_an_error_is_complete_to_responses_clients() -> None:
    """A call whose end was read before the stream failed was complete (Anthropic stops a tool
    block only when it is whole, or with ``max_tokens`` after it): its done events go out and
    it is ``completed`` in ``response.failed``."""
    raw = (
        MESSAGE_START
        + tool_block(0, "t0", "f", '{"a":1}')
        + messages("error", error={"type": "overloaded_error", "message": "Overloaded"})
    )
    out, _ = translate(MESSAGES, RESPONSES, raw)
    events = payloads(out)
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [(i["call_id"], i["status"], i["arguments"]) for i in done] == [
        ("t0", "completed", '{"a":1}')
    ]
    (failed,) = [e["response"] for e in events if e["type"] == "response.failed"]
    assert [i["status"] for i in failed["output"]] == ["completed"]


def test_queued_calls_whose_end_was_read_are_complete_when_the_stream_fails() -> None:
    """Two tool blocks interleaved (as some relays send them), both stopped, then an error: the
    second call, queued behind the first, was whole too, and closes as complete."""
    raw = (
        MESSAGE_START
        + tool_start(0, "t0", "f")
        + tool_start(1, "t1", "g")
        + tool_args(0, '{"a":1}')
        + tool_args(1, '{"b":2}')
        + messages("content_block_stop", index=1)
        + messages("content_block_stop", index=0)
        + messages("error", error={"type": "overloaded_error", "message": "Overloaded"})
    )
    out, _ = translate(MESSAGES, RESPONSES, raw)
    events = payloads(out)
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [(i["call_id"], i["status"], i["arguments"]) for i in done] == [
        ("t0", "completed", '{"a":1}'),
        ("t1", "completed", '{"b":2}'),
    ]
    (failed,) = [e["response"] for e in events if e["type"] == "response.failed"]
    assert [i["status"] for i in failed["output"]] == ["completed", "completed"]


# -- what the client must act on but cannot receive ----------------------------------------------

CUSTOM_CALL = {
    "type": "custom_tool_call",
    "id": "ctc_1",
    "call_id": "call_c1",
    "name": "apply_patch",
    "input": "*** Begin Patch",
    "status": "completed",
}
APPROVAL = {
    "type": "mcp_approval_request",
    "id": "mcpr_1",
    "server_label": "deepwiki",
    "name": "ask_question",
    "arguments": "{}",
}
WEB_SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed"}


def responses_with(item: dict[str, Any]) -> bytes:
    """A Responses stream: a text message, then ``item``, then ``response.completed``."""
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "Patching.", "annotations": []}],
    }
    completed = {**RESPONSE, "status": "completed", "output": [message, item]}
    return (
        responses("response.created", 0, response={**RESPONSE, "status": "in_progress"})
        + responses("response.output_item.added", 1, output_index=0, item=message)
        + responses(
            "response.output_text.delta",
            2,
            item_id="msg_1",
            output_index=0,
            content_index=0,
            delta="Patching.",
        )
        + responses("response.output_item.done", 3, output_index=0, item=message)
        + responses("response.output_item.added", 4, output_index=1, item=item)
        + responses("response.output_item.done", 5, output_index=1, item=item)
        + responses("response.completed", 6, response=completed)
    )


def chat_custom_call() -> bytes:
    """A Chat stream whose answer is a custom tool's call (free-form input)."""
    custom = {"index": 0, "id": "call_c1", "type": "custom"}
    first = {**custom, "custom": {"name": "apply_patch", "input": ""}}
    more = {"index": 0, "custom": {"input": "*** Begin Patch"}}
    return (
        ROLE
        + chat({"content": "Patching."})
        + chat({"tool_calls": [first]})
        + chat({"tool_calls": [more]})
        + chat(finish="tool_calls")
        + b"data: [DONE]\n\n"
    )


UNREPRESENTABLE = {
    "responses-custom": (RESPONSES, responses_with(CUSTOM_CALL), "custom_tool_call item"),
    "responses-approval": (RESPONSES, responses_with(APPROVAL), "mcp_approval_request item"),
    "chat-custom": (CHAT, chat_custom_call(), "custom tool call"),
}


@pytest.mark.parametrize(
    ("name", "client"),
    [
        (name, client)
        for name, (upstream, _, _) in UNREPRESENTABLE.items()
        for client in TOOL_CLIENTS
        if client != upstream
    ],
)
def test_what_the_client_must_act_on_but_cannot_receive_fails_the_stream(
    name: str, client: str
) -> None:
    """A call the client must run (or an MCP call it must approve) that its format has no form
    for: the turn must not end as if answered (``stop``, ``end_turn``) with the call lost; the
    text before it is delivered, then the error the SDK raises names it."""
    upstream, raw, what = UNREPRESENTABLE[name]
    out, a = translate(upstream, client, raw)
    assert a.result.outcome == "failed"
    assert a.result.error is not None
    assert a.result.error.code == "unsupported_upstream_output"
    assert what in a.result.error.message
    seen: list[Any] = []
    if client == MESSAGES:
        with (
            anthropic_client(out).messages.stream(
                model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as stream,
            pytest.raises(anthropic.APIStatusError, match=what),
        ):
            drain(stream, seen)
        assert "Patching." in "".join(e.text for e in seen if e.type == "text")
    elif client == RESPONSES:
        with (
            openai_client(out).responses.stream(model="gpt-5", input="hi") as rstream,
            pytest.raises(openai.APIError, match=what),
        ):
            drain(rstream, seen)
        assert "Patching." in "".join(
            e.delta for e in seen if e.type == "response.output_text.delta"
        )
    else:
        chunks = openai_client(out).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError, match=what):
            drain(chunks, seen)
        assert "Patching." in "".join(c.delta.content or "" for s in seen for c in s.choices)
        assert all(c.finish_reason is None for s in seen for c in s.choices)


@pytest.mark.parametrize("client", [CHAT, MESSAGES])
def test_an_unreceivable_item_in_a_whole_response_fails_it(client: str) -> None:
    """The same in an upstream's JSON answer (``feed_response``): failed, so a caller answers
    with the error body rather than an empty success."""
    raw = responses_with(CUSTOM_CALL)
    completed = payloads(raw)[-1]["response"]
    a = adapter(RESPONSES, client)
    a.feed_response(completed)
    assert a.result.outcome == "failed"
    assert a.result.error is not None
    assert "custom_tool_call item (apply_patch)" in a.result.error.message


@pytest.mark.parametrize("client", [CHAT, MESSAGES])
def test_server_run_items_do_not_fail_the_stream(client: str) -> None:
    out, a = translate(RESPONSES, client, responses_with(WEB_SEARCH))
    assert a.result.outcome == "complete"
    assert b"Patching." in out


def test_identity_passes_what_only_its_own_clients_receive() -> None:
    raw = responses_with(CUSTOM_CALL)
    out, a = translate(RESPONSES, RESPONSES, raw)
    assert out == raw
    assert a.result.outcome == "complete"


# -- Messages upstreams that repeat or never stop a tool block ---------------------------------


def _final_calls(client: str, out: bytes) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of each call, as the client's SDK accumulates them."""
    if client == RESPONSES:
        with openai_client(out).responses.stream(model="gpt-5", input="hi") as stream:
            final = stream.get_final_response()
        return [(i.call_id, i.name, i.arguments) for i in final.output if i.type == "function_call"]
    with openai_client(out).chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    ) as cstream:
        message = cstream.get_final_completion().choices[0].message
    return [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]


def _tool_turn(*blocks: bytes) -> bytes:
    delta = messages("message_delta", delta={"stop_reason": "tool_use"}, usage={"output_tokens": 9})
    return MESSAGE_START + b"".join(blocks) + delta + messages("message_stop")


@pytest.mark.parametrize("client", [CHAT, RESPONSES])
def test_a_repeated_tool_block_start_is_one_call(client: str) -> None:
    """A relay that sends a ``content_block_start`` twice must not make the call run twice."""
    raw = _tool_turn(
        tool_start(0, "toolu_1", "get"),
        tool_start(0, "toolu_1", "get"),
        tool_args(0, '{"a":1}'),
        messages("content_block_stop", index=0),
    )
    out, _ = translate(MESSAGES, client, raw)
    assert _final_calls(client, out) == [("toolu_1", "get", '{"a":1}')]


@pytest.mark.parametrize("client", [CHAT, RESPONSES])
def test_two_tool_blocks_with_one_id_get_two_ids(client: str) -> None:
    """Clients match results to calls by id; ``responses.stream()`` refuses two items with one
    ``call_id`` (RuntimeError "conflicting output identities"): the second gets a fresh one."""
    raw = _tool_turn(
        tool_block(0, "toolu_1", "get", '{"a":1}'), tool_block(1, "toolu_1", "put", '{"b":2}')
    )
    out, _ = translate(MESSAGES, client, raw)
    calls = _final_calls(client, out)
    assert [(name, args) for _, name, args in calls] == [("get", '{"a":1}'), ("put", '{"b":2}')]
    assert calls[0][0] == "toolu_1"
    assert len({call_id for call_id, _, _ in calls}) == 2


@pytest.mark.parametrize("client", [CHAT, RESPONSES])
def test_a_tool_block_never_stopped_keeps_its_input(client: str) -> None:
    """A relay that drops ``content_block_stop`` (formats.md §14): the message's end ends the
    block, with the input its start carried (formats.md §4.1)."""
    use = {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": 1}}
    raw = _tool_turn(messages("content_block_start", index=0, content_block=use))
    out, a = translate(MESSAGES, client, raw)
    assert _final_calls(client, out) == [("toolu_1", "get", '{"a":1}')]
    assert a.result.outcome == "complete"


@pytest.mark.parametrize("client", [MESSAGES, RESPONSES])
def test_an_unreceivable_call_in_a_choice_the_client_does_not_get(client: str) -> None:
    """A custom tool's call in choice 1 of an ``n > 1`` Chat stream: a client shown choice 0
    only gets that choice whole (as it would for any part of choice 1)."""

    def chunk(choice: dict[str, Any]) -> bytes:
        return sse(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": "gpt-4o",
                "choices": [{"logprobs": None, "finish_reason": None, **choice}],
            }
        )

    custom = {"index": 0, "id": "call_c1", "type": "custom", "custom": {"name": "apply_patch"}}
    raw = (
        chunk({"index": 0, "delta": {"role": "assistant", "content": "hi"}})
        + chunk({"index": 1, "delta": {"role": "assistant", "tool_calls": [custom]}})
        + chunk({"index": 0, "delta": {}, "finish_reason": "stop"})
        + chunk({"index": 1, "delta": {}, "finish_reason": "tool_calls"})
        + b"data: [DONE]\n\n"
    )
    out, a = translate(CHAT, client, raw)
    assert a.result.outcome == "complete"
    assert b"hi" in out
    _, completions = translate(CHAT, COMPLETIONS, raw)
    assert completions.result.outcome == "failed"  # (it shows choice 1)


def test_a_tool_id_repeated_after_its_block_index_was_reused_gets_a_new_id() -> None:
    """A relay that reuses block index 0 (a call, text, the same call id again): the id is
    still known, and ``responses.stream()`` gets two distinct ``call_id``s."""
    text = {"type": "text", "text": ""}
    raw = _tool_turn(
        tool_block(0, "toolu_A", "get", '{"a":1}'),
        messages("content_block_start", index=0, content_block=text),
        messages("content_block_stop", index=0),
        tool_block(0, "toolu_A", "get", '{"a":2}'),
    )
    out, _ = translate(MESSAGES, RESPONSES, raw)
    calls = _final_calls(RESPONSES, out)
    assert [args for _, _, args in calls] == ['{"a":1}', '{"a":2}']
    assert calls[0][0] == "toolu_A"
    assert calls[1][0] != "toolu_A"
