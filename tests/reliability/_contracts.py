"""The valid-stream contract of each client format (formats.md §13), as assertions on the
decoded events of a translated client stream, whatever the upstream sent.

A stream may end with the format's error tail (formats.md §9.1): from its first error event on,
only the tail's own events may follow.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from asgi_sse_adapter import ServerSentEvent, SSEDecoder, StreamAdapter, encode_event
from tests.reliability._support import (
    check_error_tail,
    check_responses_lifecycle,
    decode,
    is_error_event,
)

__all__ = ["adapt_and_check", "check_contract"]


#: What may follow the error event, per client format (formats.md §9.1).
_TAILS: dict[str, list[list[str]]] = {
    "openai-chat": [["[DONE]"], []],
    "openai-text": [["[DONE]"], []],
    "openai-responses": [["response.failed"]],
    "anthropic-messages": [[]],
    "anthropic-text": [[]],
}


def check_contract(client: str, events: Sequence[ServerSentEvent], body: bytes) -> None:
    """Assert ``events`` (the decoded ``body``) keep the contract of ``client``'s format."""
    errors = [i for i, e in enumerate(events) if is_error_event(e)]
    assert len(errors) <= 1, "more than one error event"
    if errors:
        (at,) = errors
        tail: list[str] = [e.event or e.data for e in events[at + 1 :]]
        allowed = _TAILS[client]
        assert tail in allowed, tail
        events = events[:at]
    CHECKS[client](events, bool(errors))
    if client == "openai-responses":
        check_responses_lifecycle(body)


def _payloads(events: Sequence[ServerSentEvent]) -> list[tuple[ServerSentEvent, Any]]:
    out = []
    for event in events:
        if event.data == "[DONE]":
            out.append((event, None))
        else:
            out.append((event, json.loads(event.data)))
    return out


def _openai(events: Sequence[ServerSentEvent], failed: bool, obj: str) -> None:
    items = _payloads(events)
    done = [i for i, (_, p) in enumerate(items) if p is None]
    assert done in ([], [len(items) - 1]), "[DONE] is not last"
    assert failed or done, "no [DONE]"
    ids = set()
    created = set()
    models = set()
    roles: set[int] = set()
    seen: list[int] = []
    finished: set[int] = set()
    tools: dict[int, list[int]] = {}
    usage_seen = False
    for event, payload in items:
        if payload is None:
            continue
        assert event.event is None, "an event: line outside the error tail"
        assert payload["object"] == obj
        ids.add(payload["id"])
        assert isinstance(payload["created"], int)
        created.add(payload["created"])
        models.add(payload["model"])
        choices = payload["choices"]
        assert isinstance(choices, list)
        if not choices:
            assert payload.get("usage"), "an empty chunk without usage"
            usage_seen = True
            continue
        assert not usage_seen, "a chunk after the usage chunk"
        for choice in choices:
            index = choice["index"]
            assert isinstance(index, int)
            if index not in seen:
                assert index == len(seen), f"choice {index} before {len(seen)}"
                seen.append(index)
            assert index not in finished, f"choice {index} continues after its finish"
            if obj == "chat.completion.chunk":
                delta = choice["delta"]
                if delta.get("role") is not None:
                    assert delta["role"] == "assistant"
                    assert index not in roles, "role sent twice"
                    roles.add(index)
                else:
                    assert index in roles, "first chunk of a choice without its role"
                _tool_deltas(delta.get("tool_calls"), tools.setdefault(index, []))
            else:
                assert isinstance(choice["text"], str)
            if choice.get("finish_reason") is not None:
                finished.add(index)
    assert len(ids) <= 1, ids
    assert len(created) <= 1, created
    assert len(models) <= 1, models
    if done and not failed:
        assert set(seen) <= finished, "a choice without its finish before [DONE]"


def _tool_deltas(calls: Any, opened: list[int]) -> None:
    if calls is None:
        return
    assert isinstance(calls, list)
    for call in calls:
        index = call["index"]
        assert isinstance(index, int)
        assert isinstance(call["function"], dict), "a tool delta without its function object"
        if index not in opened:
            assert index == len(opened), f"tool call {index} before {len(opened)}"
            opened.append(index)
            assert call["id"]
            assert call["type"] == "function"
            # A string (empty only when the upstream's own tool call had no name).
            assert isinstance(call["function"]["name"], str)
        else:
            assert "id" not in call or call["id"] is None, "tool id repeated"
            assert "name" not in call["function"], "tool name repeated"
        assert isinstance(call["function"].get("arguments", ""), str)


def _chat(events: Sequence[ServerSentEvent], failed: bool) -> None:
    _openai(events, failed, "chat.completion.chunk")


def _text(events: Sequence[ServerSentEvent], failed: bool) -> None:
    _openai(events, failed, "text_completion")


_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


def _responses(events: Sequence[ServerSentEvent], failed: bool) -> None:
    items = _payloads(events)
    if not items:
        assert failed
        return
    assert items[0][1]["type"] == "response.created"
    terminals = [i for i, (_, p) in enumerate(items) if p["type"] in _TERMINAL]
    if failed:
        assert not terminals, "a terminal event before the error"
    else:
        assert terminals == [len(items) - 1], "not exactly one terminal event, last"
    opened: dict[int, str] = {}
    closed: set[int] = set()
    parts: set[tuple[str, int]] = set()
    for _, payload in items:
        kind = payload["type"]
        if kind == "response.output_item.added":
            index = payload["output_index"]
            assert index == len(opened), f"output_index {index} out of order"
            opened[index] = payload["item"]["id"]
        elif kind == "response.output_item.done":
            index = payload["output_index"]
            assert index in opened
            assert index not in closed
            assert payload["item"]["id"] == opened[index]
            closed.add(index)
        elif "item_id" in payload:
            index = payload["output_index"]
            assert index in opened, f"{kind} outside its item"
            assert index not in closed, f"{kind} after its item's end"
            assert payload["item_id"] == opened[index]
            if kind == "response.content_part.added":
                parts.add((payload["item_id"], payload["content_index"]))
            elif kind == "response.output_text.delta":
                assert (payload["item_id"], payload["content_index"]) in parts
    if not failed:
        assert closed == set(opened), "an item left open"
        final = items[-1][1]["response"]
        assert len(final["output"]) == len(opened)


_BLOCK_DELTAS = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "redacted_thinking": set(),
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
}
_MESSAGES_EVENTS = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
}


def _messages(events: Sequence[ServerSentEvent], failed: bool) -> None:
    items = _payloads(events)
    if not items:
        assert failed
        return
    for event, payload in items:
        assert payload is not None, "[DONE] in a Messages stream"
        assert event.event == payload["type"], event
        assert payload["type"] in _MESSAGES_EVENTS, payload["type"]
    kinds = [p["type"] for _, p in items]
    assert kinds[0] == "message_start"
    assert kinds.count("message_start") == 1
    assert items[0][1]["message"]["content"] == []
    open_block: tuple[int, str] | None = None
    next_index = 0
    after_delta = False
    for _, payload in items[1:]:
        kind = payload["type"]
        assert not after_delta or kind in ("message_stop", "ping"), f"{kind} after message_delta"
        if kind == "content_block_start":
            assert open_block is None, "a block started while another is open"
            assert payload["index"] == next_index
            block = payload["content_block"]
            if block["type"] in ("tool_use", "server_tool_use"):
                assert block["input"] == {}
            open_block = (next_index, block["type"])
            next_index += 1
        elif kind == "content_block_delta":
            assert open_block is not None, "a delta outside any block"
            assert payload["index"] == open_block[0]
            assert payload["delta"]["type"] in _BLOCK_DELTAS.get(open_block[1], set())
        elif kind == "content_block_stop":
            assert open_block is not None, "a stop outside any block"
            assert payload["index"] == open_block[0]
            open_block = None
        elif kind == "message_delta":
            assert open_block is None, "message_delta with a block open"
            after_delta = True
    if not failed:
        assert kinds[-1] == "message_stop"
        assert kinds.count("message_delta") == 1
        assert kinds.count("message_stop") == 1


def _anthropic_text(events: Sequence[ServerSentEvent], failed: bool) -> None:
    stopped = False
    for event, payload in _payloads(events):
        assert payload is not None, "[DONE] in a 2023-06-01 Text Completions stream"
        assert event.event in ("completion", "ping"), event.event
        if event.event == "completion":
            assert payload["type"] == "completion"
            assert not stopped, "a completion after the last one"
            assert isinstance(payload["completion"], str)
            stopped = payload["stop_reason"] is not None
    assert failed or stopped, "no final completion"


CHECKS: dict[str, Callable[[Sequence[ServerSentEvent], bool], None]] = {
    "openai-chat": _chat,
    "openai-text": _text,
    "openai-responses": _responses,
    "anthropic-messages": _messages,
    "anthropic-text": _anthropic_text,
}


def adapt_and_check(upstream: str, client: str, pieces: Sequence[bytes], **options: Any) -> bytes:
    """Drive one ``StreamAdapter`` over ``pieces`` of hostile upstream input and assert what
    must hold whatever came in: nothing raises, every ``feed`` returns whole events, the stream
    ends once, nothing comes after its end, a translated stream keeps its format's contract,
    and a stream that did not complete ends with exactly one error tail. Returns the client
    bytes."""
    adapter = StreamAdapter(
        upstream_format=upstream, client_format=client, include_usage=True, **options
    )
    out: list[bytes] = []
    for piece in pieces:
        chunk = adapter.feed(piece)
        if chunk:
            decoder = SSEDecoder(max_event_size=None)
            decoder.feed(chunk)
            decoder.close()
            assert not decoder.truncated, "feed returned part of an event"
        out.append(chunk)
    out.append(adapter.close())
    body = b"".join(out)
    result = adapter.result
    assert adapter.ended
    assert result.outcome in ("complete", "truncated", "failed")
    assert adapter.feed(b"data: {}\n\n") == adapter.close() == adapter.fail("late") == b""
    if upstream == client:
        return body
    events = decode(body)
    check_contract(client, events, body)
    errors = [i for i, e in enumerate(events) if is_error_event(e)]
    if result.outcome == "complete":
        assert not errors
        assert result.error is None
    else:
        assert result.error is not None
        assert len(errors) == 1
        assert "Traceback" not in result.error.message
        tail_start = errors[0]
        if client == "openai-responses":
            while tail_start and events[tail_start - 1].event in (
                "response.created",
                "response.in_progress",
            ):
                tail_start -= 1
        check_error_tail(client, _encode(events[tail_start:]), None, opening=True)
    return body


def _encode(events: Sequence[ServerSentEvent]) -> bytes:
    return b"".join(encode_event(e) for e in events)
