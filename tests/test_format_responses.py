"""``openai-responses``: the reader, the writer's valid-stream contract (formats.md §13
"Responses"), the final response, and every directed pair with the other formats, each stream
consumed by the official SDK its client would use (openai 3.52 ``responses``/``chat``/
``completions``, anthropic 2.11 ``messages``).

Upstream fixtures are built by hand per format (§2.1, §2.3, §2.4, §2.5); a ``Turn`` describes
one assistant turn independently of the format, and the expectation each client must see is
derived from it, so every pair is checked against the same source content.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseStreamEvent

from asgi_sse_adapter.adapter import StreamAdapter
from asgi_sse_adapter.content import Content
from asgi_sse_adapter.formats import get_format
from asgi_sse_adapter.formats.base import MalformedEvent, WriterOptions
from asgi_sse_adapter.formats.openai_responses import (
    FORMAT,
    RESPONSE_EXTENSION,
    ResponsesReader,
    ResponsesWriter,
    usage_in,
    usage_out,
)
from asgi_sse_adapter.parts import (
    Done,
    Extension,
    Finish,
    MessageStart,
    Part,
    ReasoningDelta,
    ReasoningSignature,
    RefusalDelta,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)
from asgi_sse_adapter.sse import ServerSentEvent, SSEDecoder

RESPONSES = "openai-responses"
CHAT = "openai-chat"
MESSAGES = "anthropic-messages"
COMPLETIONS = "openai-text"
TEXT_COMPLETIONS = "anthropic-text"
CLOCK = 1700000000.0
CREATED = 1700000123
RESP_ID = "resp_68af3c0d1e2f4a5b"
CHAT_ID = "chatcmpl-9xQ2abc123"
MSG_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"

_EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)


def _has_format(name: str) -> bool:
    module = {COMPLETIONS: "openai_text", TEXT_COMPLETIONS: "anthropic_text"}[name]
    return importlib.util.find_spec(f"asgi_sse_adapter.formats.{module}") is not None


def _require(name: str) -> None:
    if name in (COMPLETIONS, TEXT_COMPLETIONS) and not _has_format(name):
        pytest.skip(f"format module for {name} not written yet")


# -- turns: one assistant turn, format-neutral --------------------------------------------------


@dataclass(frozen=True)
class T:
    """Assistant text, streamed as these chunks."""

    chunks: tuple[str, ...]


@dataclass(frozen=True)
class R:
    """Reasoning text (summary / reasoning_content / thinking), streamed as these chunks."""

    chunks: tuple[str, ...]


@dataclass(frozen=True)
class F:
    """A function call: call id, name, argument fragments."""

    call_id: str
    name: str
    fragments: tuple[str, ...]

    @property
    def arguments(self) -> str:
        """The arguments as the client must see them."""
        return "".join(self.fragments) or "{}"


@dataclass(frozen=True)
class U:
    """Usage in OpenAI terms: ``input`` includes ``cached``, ``output`` includes ``reasoning``."""

    input: int
    output: int
    cached: int = 0
    reasoning: int = 0


@dataclass(frozen=True)
class Turn:
    """One turn: blocks in order; canonical stop (``None``: never said); usage; mid-stream error."""

    blocks: tuple[T | R | F, ...]
    stop: str | None = "end_turn"
    usage: U = U(21, 9)
    error: str | None = None

    @property
    def text(self) -> str:
        """All assistant text."""
        return "".join("".join(b.chunks) for b in self.blocks if isinstance(b, T))

    @property
    def reasoning(self) -> str:
        """All reasoning text."""
        return "".join("".join(b.chunks) for b in self.blocks if isinstance(b, R))

    @property
    def tools(self) -> list[tuple[str, str, Any]]:
        """``(call_id, name, parsed arguments)`` of every call."""
        return [
            (b.call_id, b.name, json.loads(b.arguments)) for b in self.blocks if isinstance(b, F)
        ]


TURNS: dict[str, Turn] = {
    "text": Turn((T(("Hello", ", world", "!")),)),
    "unicode": Turn(
        (T(("line one\n", "línea dos — ", "三行目 🚀\n\n", '"quoted" \\ back\tslash')),),
    ),
    "reasoning": Turn(
        (R(("The user ", "greets me.\nI should ", "answer.")), T(("Hi ", "there."))),
        usage=U(30, 48, reasoning=40),
    ),
    "tool": Turn(
        (T(("Let me check.",)), F("call_w1", "get_weather", ('{"city":', ' "Oslo"', "}"))),
        stop="tool_use",
    ),
    "parallel": Turn(
        (
            F("call_a", "get_weather", ('{"city":', '"Oslo",', '"unit":"c"}')),
            F("call_b", "get_time", ('{"tz":', '"Europe/Oslo"}')),
        ),
        stop="tool_use",
    ),
    "usage": Turn((T(("Cached answer.",)),), usage=U(2048, 310, cached=1920, reasoning=256)),
}

TRUNCATED = Turn((T(("Hello", " wor")),), stop=None)
FAILED = Turn(
    (T(("Partial",)),), stop=None, error="The server had an error processing your request"
)


# -- upstream renderings ------------------------------------------------------------------------


def _data(payload: Any) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n\n"
    )


def _named(event: str, payload: Any) -> bytes:
    return b"event: " + event.encode() + b"\n" + _data(payload)


RESPONSES_STOP = {
    "end_turn": ("response.completed", None),
    "tool_use": ("response.completed", None),
    "max_tokens": ("response.incomplete", "max_output_tokens"),
    "content_filter": ("response.incomplete", "content_filter"),
}


def responses_upstream(
    turn: Turn,
    *,
    error_form: str = "nested",
    incomplete_reason: str | None = None,
    arguments_in_done_only: bool = False,
) -> bytes:
    """A Responses upstream stream for ``turn``, shaped like the live API (formats.md §2.3)."""
    seq = itertools.count()
    out: list[bytes] = []

    def ev(type_: str, **fields: Any) -> None:
        out.append(_named(type_, {"type": type_, "sequence_number": next(seq), **fields}))

    def response(status: str, output: list[Any], usage: Any = None, **extra: Any) -> Any:
        return {
            "id": RESP_ID,
            "object": "response",
            "created_at": CREATED + 0.25,
            "status": status,
            "background": False,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": "gpt-5-2025-08-07",
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": "medium", "summary": "auto"},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": {},
            **extra,
        }

    ev("response.created", response=response("in_progress", []))
    ev("response.in_progress", response=response("in_progress", []))
    output: list[Any] = []
    for index, block in enumerate(turn.blocks):
        last = index == len(turn.blocks) - 1
        cut = last and turn.stop is None
        if isinstance(block, T):
            item_id = f"msg_68af3c{index:04d}"
            text = "".join(block.chunks)
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            item = {"id": item_id, "type": "message", "status": "in_progress", "content": []}
            item["role"] = "assistant"
            ev("response.output_item.added", output_index=index, item=item)
            empty = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
            ev("response.content_part.added", **where, part=empty)
            for chunk in block.chunks:
                ev("response.output_text.delta", **where, delta=chunk, logprobs=[])
            if cut:
                break
            ev("response.output_text.done", **where, text=text, logprobs=[])
            full = {**empty, "text": text}
            ev("response.content_part.done", **where, part=full)
            done = {**item, "status": "completed", "content": [full]}
            ev("response.output_item.done", output_index=index, item=done)
            output.append(done)
        elif isinstance(block, R):
            item_id = f"rs_68af3c{index:04d}"
            text = "".join(block.chunks)
            where = {"item_id": item_id, "output_index": index, "summary_index": 0}
            item = {"id": item_id, "type": "reasoning", "summary": []}
            ev("response.output_item.added", output_index=index, item=item)
            ev(
                "response.reasoning_summary_part.added",
                **where,
                part={"type": "summary_text", "text": ""},
            )
            for chunk in block.chunks:
                ev("response.reasoning_summary_text.delta", **where, delta=chunk)
            if cut:
                break
            ev("response.reasoning_summary_text.done", **where, text=text)
            part = {"type": "summary_text", "text": text}
            ev("response.reasoning_summary_part.done", **where, part=part)
            done = {**item, "summary": [part], "encrypted_content": "gAAAAB-opaque"}
            ev("response.output_item.done", output_index=index, item=done)
            output.append(done)
        else:
            item_id = f"fc_68af3c{index:04d}"
            where = {"item_id": item_id, "output_index": index}
            item = {
                "id": item_id,
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": block.call_id,
                "name": block.name,
            }
            ev("response.output_item.added", output_index=index, item=item)
            if not arguments_in_done_only:
                for fragment in block.fragments:
                    ev("response.function_call_arguments.delta", **where, delta=fragment)
            if cut:
                break
            arguments = "".join(block.fragments)
            ev(
                "response.function_call_arguments.done",
                **where,
                arguments=arguments,
                name=block.name,
            )
            done = {**item, "status": "completed", "arguments": arguments}
            ev("response.output_item.done", output_index=index, item=done)
            output.append(done)
    if turn.error is not None:
        nested = {
            "type": "server_error",
            "code": "server_error",
            "message": turn.error,
            "param": None,
        }
        if error_form == "nested":
            ev("error", error=nested)
        elif error_form == "flat":
            ev("error", code="server_error", message=turn.error, param=None)
        error = {"code": "server_error", "message": turn.error}
        ev("response.failed", response=response("failed", output, error=error))
        return b"".join(out)
    if turn.stop is None:
        return b"".join(out)
    u = turn.usage
    usage = {
        "input_tokens": u.input,
        "input_tokens_details": {"cached_tokens": u.cached, "cache_write_tokens": 0},
        "output_tokens": u.output,
        "output_tokens_details": {"reasoning_tokens": u.reasoning},
        "total_tokens": u.input + u.output,
    }
    terminal, reason = RESPONSES_STOP[turn.stop]
    if incomplete_reason is not None:
        terminal, reason = "response.incomplete", incomplete_reason
    if terminal == "response.completed":
        ev(terminal, response=response("completed", output, usage))
    else:
        details = {"reason": reason}
        ev(terminal, response=response("incomplete", output, usage, incomplete_details=details))
    return b"".join(out)


CHAT_STOP = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length"}
CHAT_STOP["content_filter"] = "content_filter"


def chat_upstream(turn: Turn, *, interleave: bool = False, finish: str | None = None) -> bytes:
    """A Chat Completions upstream (``include_usage`` on) for ``turn`` (formats.md §2.1)."""

    def chunk(delta: Any, finish_reason: str | None = None, **extra: Any) -> bytes:
        choices = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
        obj = {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "gpt-4o-2024-08-06",
            "system_fingerprint": "fp_5e9b1c2d3a",
            "choices": [] if delta is None else choices,
            "usage": None,
            **extra,
        }
        return _data(obj)

    out = [chunk({"role": "assistant", "content": "", "refusal": None})]
    calls = [b for b in turn.blocks if isinstance(b, F)]
    tool_index = 0
    for block in turn.blocks:
        if isinstance(block, T):
            out.extend(chunk({"content": c}) for c in block.chunks)
        elif isinstance(block, R):
            out.extend(chunk({"reasoning_content": c}) for c in block.chunks)
        elif not interleave:
            first = {"index": tool_index, "id": block.call_id, "type": "function"}
            first["function"] = {"name": block.name, "arguments": ""}
            out.append(chunk({"tool_calls": [first]}))
            for fragment in block.fragments:
                frag = {"index": tool_index, "function": {"arguments": fragment}}
                out.append(chunk({"tool_calls": [frag]}))
            tool_index += 1
    if interleave:
        streams = []
        for k, call in enumerate(calls):
            first = {"index": k, "id": call.call_id, "type": "function"}
            first["function"] = {"name": call.name, "arguments": ""}
            steps = [first] + [{"index": k, "function": {"arguments": f}} for f in call.fragments]
            streams.append(steps)
        for step in range(max(len(s) for s in streams)):
            out.extend(chunk({"tool_calls": [s[step]]}) for s in streams if step < len(s))
    if turn.error is not None:
        error = {"message": turn.error, "type": "server_error", "param": None, "code": None}
        out.append(_data({"error": error}))
        return b"".join(out)
    if turn.stop is None:
        return b"".join(out)
    out.append(chunk({}, finish or CHAT_STOP[turn.stop]))
    u = turn.usage
    usage = {
        "prompt_tokens": u.input,
        "completion_tokens": u.output,
        "total_tokens": u.input + u.output,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning, "audio_tokens": 0},
    }
    out.append(chunk(None, usage=usage))
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


MESSAGES_STOP = {"end_turn": "end_turn", "tool_use": "tool_use", "max_tokens": "max_tokens"}
MESSAGES_STOP["content_filter"] = "refusal"


def messages_upstream(turn: Turn, *, stop_reason: str | None = None) -> bytes:
    """An Anthropic Messages upstream for ``turn`` (formats.md §2.4)."""
    u = turn.usage
    start_usage = {
        "input_tokens": u.input - u.cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached,
        "output_tokens": 1,
    }
    message: dict[str, Any] = {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    out = [_named("message_start", {"type": "message_start", "message": message})]
    out.append(_named("ping", {"type": "ping"}))
    cut = turn.stop is None

    def delta(index: int, body: Any) -> None:
        event = {"type": "content_block_delta", "index": index, "delta": body}
        out.append(_named("content_block_delta", event))

    for index, block in enumerate(turn.blocks):
        if isinstance(block, T):
            start: Any = {"type": "text", "text": ""}
        elif isinstance(block, R):
            start = {"type": "thinking", "thinking": "", "signature": ""}
        else:
            start = {"type": "tool_use", "id": block.call_id, "name": block.name, "input": {}}
        event = {"type": "content_block_start", "index": index, "content_block": start}
        out.append(_named("content_block_start", event))
        if isinstance(block, T):
            for c in block.chunks:
                delta(index, {"type": "text_delta", "text": c})
        elif isinstance(block, R):
            for c in block.chunks:
                delta(index, {"type": "thinking_delta", "thinking": c})
            delta(index, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"})
        else:
            for f in block.fragments:
                delta(index, {"type": "input_json_delta", "partial_json": f})
        if not (cut and index == len(turn.blocks) - 1):
            stop = {"type": "content_block_stop", "index": index}
            out.append(_named("content_block_stop", stop))
    if turn.error is not None:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": turn.error}}
        out.append(_named("error", error))
        return b"".join(out)
    if cut:
        return b"".join(out)
    assert turn.stop is not None
    final_usage: dict[str, Any] = {"output_tokens": u.output}
    if u.reasoning:
        final_usage["output_tokens_details"] = {"thinking_tokens": u.reasoning}
    reason = stop_reason or MESSAGES_STOP[turn.stop]
    sequence = "\n\nHuman:" if reason == "stop_sequence" else None
    body = {"stop_reason": reason, "stop_sequence": sequence}
    out.append(
        _named("message_delta", {"type": "message_delta", "delta": body, "usage": final_usage})
    )
    out.append(_named("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def completions_upstream(turn: Turn, *, finish: str | None = None) -> bytes:
    """An OpenAI legacy Completions upstream for a text-only ``turn`` (formats.md §2.2)."""

    def chunk(text: str, finish_reason: str | None = None) -> bytes:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return _data(
            {
                "id": "cmpl-8abc",
                "object": "text_completion",
                "created": CREATED,
                "model": "gpt-3.5-turbo-instruct",
                "choices": [choice],
            }
        )

    out = [chunk(c) for b in turn.blocks if isinstance(b, T) for c in b.chunks]
    if turn.error is not None:
        out.append(_data({"error": {"message": turn.error, "type": "server_error"}}))
        return b"".join(out)
    if turn.stop is None:
        return b"".join(out)
    out.append(chunk("", finish or CHAT_STOP[turn.stop]))
    usage = {
        "prompt_tokens": turn.usage.input,
        "completion_tokens": turn.usage.output,
        "total_tokens": turn.usage.input + turn.usage.output,
    }
    out.append(
        _data(
            {
                "id": "cmpl-8abc",
                "object": "text_completion",
                "created": CREATED,
                "model": "gpt-3.5-turbo-instruct",
                "choices": [],
                "usage": usage,
            }
        )
    )
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def text_completions_upstream(turn: Turn, *, stop_reason: str = "stop_sequence") -> bytes:
    """An Anthropic Text Completions 2023-06-01 upstream for a text-only ``turn`` (§2.5)."""

    def event(text: str, reason: str | None = None) -> bytes:
        stop = "\n\nHuman:" if reason == "stop_sequence" else None
        payload = {
            "type": "completion",
            "id": "compl_01abc",
            "completion": text,
            "stop_reason": reason,
            "stop": stop,
            "model": "claude-2.1",
        }
        return _named("completion", payload)

    out = [event(c) for b in turn.blocks if isinstance(b, T) for c in b.chunks]
    if turn.error is not None:
        error = {"type": "error", "error": {"type": "overloaded_error", "message": turn.error}}
        out.append(_named("error", error))
    elif turn.stop is not None:
        out.append(event("", stop_reason))
    return b"".join(out)


UPSTREAMS: dict[str, Callable[[Turn], bytes]] = {
    RESPONSES: responses_upstream,
    CHAT: chat_upstream,
    MESSAGES: messages_upstream,
    COMPLETIONS: completions_upstream,
    TEXT_COMPLETIONS: text_completions_upstream,
}


# -- running the adapter -------------------------------------------------------------------------


def make_adapter(upstream: str, client: str, **options: Any) -> StreamAdapter:
    """A deterministic adapter (fixed clock, counting id factory)."""
    counter = itertools.count(1)
    return StreamAdapter(
        upstream_format=upstream,
        client_format=client,
        clock=lambda: CLOCK,
        id_factory=lambda: f"{next(counter):06d}",
        **options,
    )


def translate(
    upstream: str, client: str, data: bytes, cuts: list[int] | None = None, **options: Any
) -> tuple[bytes, StreamAdapter]:
    """Feed ``data`` (split at ``cuts``), close, return the client bytes and the adapter."""
    adapter = make_adapter(upstream, client, **options)
    bounds = [0, *sorted(cuts or []), len(data)]
    out = [adapter.feed(data[a:b]) for a, b in itertools.pairwise(bounds)]
    out.append(adapter.close())
    return b"".join(out), adapter


def events_of(body: bytes) -> list[ServerSentEvent]:
    """The SSE events in ``body``."""
    decoder = SSEDecoder()
    events = decoder.feed(body)
    decoder.close()
    return events


# -- the Responses valid-stream contract (formats.md §13) ----------------------------------------


def check_responses(
    body: bytes, *, terminal: str | None = None, usage: bool = True
) -> list[dict[str, Any]]:
    """Assert ``body`` is a valid Responses stream; return its event payloads.

    Every event validates as the SDK's ``ResponseStreamEvent``; ``event:`` equals ``type``;
    sequence numbers run 0, 1, 2…; ``response.created`` then ``response.in_progress`` open it
    with one response id; items are announced before their deltas with ``output_index`` = their
    position and one stable id; parts are announced before text deltas; everything opened is
    done exactly once; exactly one terminal event, last, whose ``output`` equals the done items
    (completed/incomplete, usage filled, or ``null`` without ``usage``: an upstream that has
    none) or holds the items so far (failed).
    """
    events = events_of(body)
    assert b"[DONE]" not in body
    payloads: list[dict[str, Any]] = []
    for event in events:
        obj = json.loads(event.data)
        assert event.event == obj["type"], (event.event, obj["type"])
        _EVENTS.validate_python(obj)
        payloads.append(obj)
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    types = [p["type"] for p in payloads]
    assert types[:2] == ["response.created", "response.in_progress"], types[:3]
    response_id = payloads[0]["response"]["id"]
    assert response_id.startswith("resp_")
    items: dict[int, dict[str, Any]] = {}
    done_items: dict[int, dict[str, Any]] = {}
    open_parts: set[tuple[int, str, Any]] = set()
    closed_parts: set[tuple[int, str, Any]] = set()
    terminals = [p for p in payloads if p["type"] in _TERMINALS]
    assert len(terminals) == 1, types
    assert payloads[-1] is terminals[0] or (
        payloads[-1]["type"] == "response.failed" and payloads[-2]["type"] == "error"
    )
    for p in payloads:
        kind = p["type"]
        if "response" in p:
            assert p["response"]["id"] == response_id
        if kind == "response.output_item.added":
            index = p["output_index"]
            assert index == len(items), "output_index must be the item's position"
            assert p["item"]["id"][:3] in ("msg", "fc_", "rs_")
            items[index] = p["item"]
        elif "item_id" in p:
            index = p["output_index"]
            assert index in items, kind
            assert index not in done_items, kind
            assert p["item_id"] == items[index]["id"]
            if kind in _PART_ADDED:
                key = (index, _PART_ADDED[kind], p.get("content_index", p.get("summary_index")))
                assert key not in open_parts
                assert key not in closed_parts
                open_parts.add(key)
            elif kind in _PART_DELTA:
                key = (index, _PART_DELTA[kind], p.get("content_index", p.get("summary_index")))
                assert key in open_parts, f"{kind} before its part was added"
            elif kind in _PART_DONE:
                key = (index, _PART_DONE[kind], p.get("content_index", p.get("summary_index")))
                assert key in open_parts
                open_parts.discard(key)
                closed_parts.add(key)
        elif kind == "response.output_item.done":
            index = p["output_index"]
            assert index in items
            assert index not in done_items
            assert p["item"]["id"] == items[index]["id"]
            assert not any(k[0] == index for k in open_parts), "item done with a part open"
            done_items[index] = p["item"]
    final = terminals[0]
    output = final["response"]["output"]
    if final["type"] != "response.failed":
        assert set(done_items) == set(items), "every item must be done"
        assert output == [done_items[k] for k in sorted(done_items)]
        assert (final["response"]["usage"] is not None) is usage
    else:
        assert [o["id"] for o in output] == [items[k]["id"] for k in sorted(items)]
        assert payloads[-2]["type"] == "error"
    Response.model_validate(final["response"])
    if terminal is not None:
        assert final["type"] == terminal
    return payloads


_TERMINALS = ("response.completed", "response.incomplete", "response.failed")
_PART_ADDED = {
    "response.content_part.added": "content",
    "response.reasoning_summary_part.added": "summary",
}
_PART_DELTA = {
    "response.output_text.delta": "content",
    "response.refusal.delta": "content",
    "response.reasoning_summary_text.delta": "summary",
}
_PART_DONE = {
    "response.content_part.done": "content",
    "response.reasoning_summary_part.done": "summary",
}


# -- clients -------------------------------------------------------------------------------------


def _http(body: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=body)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def openai_client(body: bytes) -> openai.OpenAI:
    """The official OpenAI client, answered with ``body``."""
    return openai.OpenAI(
        api_key="x", base_url="http://test/v1", http_client=_http(body), max_retries=0
    )


def anthropic_client(body: bytes) -> anthropic.Anthropic:
    """The official Anthropic client, answered with ``body``."""
    return anthropic.Anthropic(
        api_key="x", base_url="http://test", http_client=_http(body), max_retries=0
    )


@dataclass
class Got:
    """What a client ended up with, normalised across formats."""

    text: str = ""
    reasoning: str = ""
    tools: list[tuple[str, str, Any]] = field(default_factory=list)
    stop: str | None = None
    usage: tuple[int, int, int, int] | None = None


def expect(turn: Turn, client: str, stop: str | None = None) -> Got:
    """What ``client`` must see for ``turn`` (``stop`` in the client's vocabulary)."""
    u = turn.usage
    got = Got(text=turn.text, stop=stop)
    if client in (RESPONSES, CHAT, MESSAGES):
        got.reasoning = turn.reasoning
        got.tools = turn.tools
        got.usage = (u.input, u.cached, u.output, u.reasoning)
    elif client == COMPLETIONS:
        got.usage = (u.input, 0, u.output, 0)
    return got


def got_from_response(response: Any) -> Got:
    """Normalise a ``Response`` (SDK model)."""
    got = Got()
    for item in response.output:
        if item.type == "message":
            got.text += "".join(c.text for c in item.content if c.type == "output_text")
        elif item.type == "reasoning":
            got.reasoning += "".join(s.text for s in item.summary)
        elif item.type == "function_call":
            got.tools.append((item.call_id, item.name, json.loads(item.arguments)))
    u = response.usage
    if u is not None:
        details = (u.input_tokens_details.cached_tokens, u.output_tokens_details.reasoning_tokens)
        got.usage = (u.input_tokens, details[0], u.output_tokens, details[1])
    got.stop = response.status
    if response.incomplete_details is not None:
        got.stop = f"incomplete:{response.incomplete_details.reason}"
    return got


def consume_responses(body: bytes) -> Got:
    """Read ``body`` with ``responses.create(stream=True)`` (and, when it completed, with
    ``responses.stream()``, whose final response must say the same)."""
    events = list(openai_client(body).responses.create(model="gpt-5", input="hi", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created"
    terminal = events[-1]
    assert terminal.type in ("response.completed", "response.incomplete")
    got = got_from_response(terminal.response)
    if terminal.type == "response.completed":
        with openai_client(body).responses.stream(model="gpt-5", input="hi") as stream:
            final = stream.get_final_response()
        assert got_from_response(final) == got
    return got


def consume_chat(body: bytes) -> Got:
    """Read ``body`` with ``chat.completions.stream()`` (raw ``create(stream=True)`` for the
    finishes the helper refuses: ``length``, ``content_filter``)."""
    client = openai_client(body)
    messages: Any = [{"role": "user", "content": "hi"}]
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=messages, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    stop = [f for f in finishes if f]
    assert len(stop) == 1
    if stop[0] in ("length", "content_filter"):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return Got(text=text, stop=stop[0])
    with openai_client(body).chat.completions.stream(model="gpt-4o", messages=messages) as s:
        final = s.get_final_completion()
    message = final.choices[0].message
    got = Got(text=message.content or "", stop=final.choices[0].finish_reason)
    got.reasoning = getattr(message, "reasoning_content", None) or ""
    for call in message.tool_calls or []:
        assert call.type == "function"
        got.tools.append((call.id, call.function.name, json.loads(call.function.arguments)))
    u = final.usage
    if u is not None:
        cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
        reasoning = (
            u.completion_tokens_details.reasoning_tokens if u.completion_tokens_details else 0
        )
        got.usage = (u.prompt_tokens, cached or 0, u.completion_tokens, reasoning or 0)
    return got


def consume_messages(body: bytes) -> Got:
    """Read ``body`` with anthropic's ``messages.stream()`` / ``get_final_message()``."""
    client = anthropic_client(body)
    with client.messages.stream(
        model="claude-test", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        final = stream.get_final_message()
    got = Got(stop=final.stop_reason)
    for block in final.content:
        if block.type == "text":
            got.text += block.text
        elif block.type == "thinking":
            got.reasoning += block.thinking
        elif block.type == "tool_use":
            got.tools.append((block.id, block.name, block.input))
    u = final.usage
    read = u.cache_read_input_tokens or 0
    total_input = u.input_tokens + read + (u.cache_creation_input_tokens or 0)
    thinking = u.output_tokens_details.thinking_tokens if u.output_tokens_details else 0
    got.usage = (total_input, read, u.output_tokens, thinking or 0)
    return got


def consume_completions(body: bytes) -> Got:
    """Read ``body`` with ``completions.create(stream=True)``."""
    chunks = list(openai_client(body).completions.create(model="m", prompt="hi", stream=True))
    got = Got(text="".join(c.choices[0].text for c in chunks if c.choices))
    got.stop = next(
        (c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason),
        None,
    )
    usage = next((c.usage for c in chunks if c.usage is not None), None)
    if usage is not None:
        got.usage = (usage.prompt_tokens, 0, usage.completion_tokens, 0)
    return got


def consume_text_completions(body: bytes) -> Got:
    """Read a Text Completions 2023-06-01 stream (no SDK reads it any more): the raw events."""
    got = Got()
    for event in events_of(body):
        obj = json.loads(event.data)
        if event.event == "error":
            raise RuntimeError(obj["error"]["message"])
        if event.event == "completion":
            got.text += obj["completion"]
            got.stop = obj["stop_reason"] or got.stop
    return got


CONSUMERS: dict[str, Callable[[bytes], Got]] = {
    RESPONSES: consume_responses,
    CHAT: consume_chat,
    MESSAGES: consume_messages,
    COMPLETIONS: consume_completions,
    TEXT_COMPLETIONS: consume_text_completions,
}

# The stop each client must see for a canonical stop of the turn.
CLIENT_STOP: dict[str, dict[str, str]] = {
    RESPONSES: {
        "end_turn": "completed",
        "tool_use": "completed",
        "max_tokens": "incomplete:max_output_tokens",
        "content_filter": "incomplete:content_filter",
    },
    CHAT: CHAT_STOP,
    MESSAGES: MESSAGES_STOP,
    COMPLETIONS: {"end_turn": "stop", "max_tokens": "length", "content_filter": "content_filter"},
    TEXT_COMPLETIONS: {"end_turn": "stop_sequence", "max_tokens": "max_tokens"},
}

RICH_PAIRS = [(RESPONSES, CHAT), (RESPONSES, MESSAGES), (CHAT, RESPONSES), (MESSAGES, RESPONSES)]
TEXT_PAIRS = [
    (RESPONSES, COMPLETIONS),
    (COMPLETIONS, RESPONSES),
    (RESPONSES, TEXT_COMPLETIONS),
    (TEXT_COMPLETIONS, RESPONSES),
]
ALL_PAIRS = RICH_PAIRS + TEXT_PAIRS
TEXT_TURNS = ["text", "unicode"]


def _pair_id(pair: tuple[str, str]) -> str:
    return f"{pair[0]}->{pair[1]}"


def _options(client: str) -> dict[str, Any]:
    return {"include_usage": True} if client in (CHAT, COMPLETIONS) else {}


def run_turn(upstream: str, client: str, turn: Turn, **options: Any) -> tuple[Got, StreamAdapter]:
    """Translate ``turn`` from ``upstream`` to ``client`` and read it with the client's SDK."""
    body, adapter = translate(
        upstream, client, UPSTREAMS[upstream](turn), **_options(client), **options
    )
    if client == RESPONSES:
        check_responses(body, usage=upstream != TEXT_COMPLETIONS)  # (it has no usage)
    return CONSUMERS[client](body), adapter


# -- every directed pair: the scenario set --------------------------------------------------------


@pytest.mark.parametrize("name", list(TURNS))
@pytest.mark.parametrize("pair", RICH_PAIRS, ids=_pair_id)
def test_pair_scenarios(pair: tuple[str, str], name: str) -> None:
    """Text, multi-line unicode, reasoning, one tool call, parallel streamed calls and cached +
    reasoning usage arrive exactly as the source said them, read by the client's own SDK."""
    upstream, client = pair
    turn = TURNS[name]
    got, adapter = run_turn(upstream, client, turn)
    assert got == expect(turn, client, CLIENT_STOP[client][turn.stop or ""])
    assert adapter.result.outcome == "complete"


@pytest.mark.parametrize("name", TEXT_TURNS)
@pytest.mark.parametrize("pair", TEXT_PAIRS, ids=_pair_id)
def test_text_format_pair_scenarios(pair: tuple[str, str], name: str) -> None:
    """The legacy text formats carry text (and Completions its usage) to and from Responses."""
    upstream, client = pair
    _require(upstream)
    _require(client)
    turn = TURNS[name]
    got, adapter = run_turn(upstream, client, turn)
    want = expect(turn, client, CLIENT_STOP[client]["end_turn"])
    if upstream == TEXT_COMPLETIONS and client == RESPONSES:
        # No usage in Text Completions: none, rather than an invented 0.
        want.usage = None
    assert got == want
    assert adapter.result.outcome == "complete"


def test_chat_interleaved_parallel_calls_become_sequential_items() -> None:
    """Parallel calls whose Chat deltas interleave become one item after the other, each with
    every argument fragment (a later call waits until the earlier call's item is done)."""
    turn = TURNS["parallel"]
    body, _ = translate(CHAT, RESPONSES, chat_upstream(turn, interleave=True))
    payloads = check_responses(body, terminal="response.completed")
    order: list[int] = [p["output_index"] for p in payloads if "function_call" in p["type"]]
    assert order == sorted(order)
    assert (order.count(0), order.count(1)) == (4, 3)  # every fragment, then the done event
    assert consume_responses(body) == expect(turn, RESPONSES, "completed")


def test_responses_arguments_only_in_done_events() -> None:
    """An upstream that sends a call's arguments only in its done events (no deltas) still
    gives Chat and Messages clients the whole arguments, once (formats.md §4.5)."""
    turn = TURNS["parallel"]
    data = responses_upstream(turn, arguments_in_done_only=True)
    for client in (CHAT, MESSAGES):
        body, _ = translate(RESPONSES, client, data, **_options(client))
        assert CONSUMERS[client](body).tools == turn.tools


# -- every stop reason ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish", "want"),
    [
        ("stop", "completed"),
        ("length", "incomplete:max_output_tokens"),
        ("content_filter", "incomplete:content_filter"),
        ("tool_calls", "completed"),
    ],
)
def test_chat_finish_reasons_to_responses(finish: str, want: str) -> None:
    """Each Chat ``finish_reason`` ends the Responses stream with the matching terminal event;
    ``length`` and ``content_filter`` are ``response.incomplete``, never a normal completion."""
    turn = TURNS["tool"] if finish == "tool_calls" else TURNS["text"]
    body, adapter = translate(CHAT, RESPONSES, chat_upstream(turn, finish=finish))
    check_responses(body, terminal="response." + want.split(":")[0])
    got = consume_responses(body)
    assert got == expect(turn, RESPONSES, want)
    assert adapter.result.outcome == "complete"


@pytest.mark.parametrize(
    ("stop_reason", "want"),
    [
        ("end_turn", "completed"),
        ("stop_sequence", "completed"),
        ("pause_turn", "completed"),
        ("tool_use", "completed"),
        ("max_tokens", "incomplete:max_output_tokens"),
        ("model_context_window_exceeded", "incomplete:max_output_tokens"),
        ("refusal", "incomplete:content_filter"),
    ],
)
def test_messages_stop_reasons_to_responses(stop_reason: str, want: str) -> None:
    """Each Messages ``stop_reason`` maps to its Responses terminal event (formats.md §5)."""
    turn = TURNS["tool"] if stop_reason == "tool_use" else TURNS["text"]
    body, _ = translate(MESSAGES, RESPONSES, messages_upstream(turn, stop_reason=stop_reason))
    assert consume_responses(body) == expect(turn, RESPONSES, want)


RESPONSES_ENDINGS = [
    # (turn, incomplete reason override, Chat finish, Messages stop)
    ("text", None, "stop", "end_turn"),
    ("tool", None, "tool_calls", "tool_use"),
    ("parallel", None, "tool_calls", "tool_use"),
    ("text", "max_output_tokens", "length", "max_tokens"),
    ("text", "content_filter", "content_filter", "refusal"),
    ("text", "max_messages", "length", "max_tokens"),  # unknown reason: still cut short
]


@pytest.mark.parametrize(("name", "reason", "chat", "messages"), RESPONSES_ENDINGS)
def test_responses_endings_to_chat_and_messages(
    name: str, reason: str | None, chat: str, messages: str
) -> None:
    """``response.completed`` becomes ``stop``/``end_turn`` (``tool_calls``/``tool_use`` when a
    function call was made); ``response.incomplete`` becomes ``length``/``max_tokens`` or
    ``content_filter``/``refusal``: never a normal stop."""
    turn = TURNS[name]
    data = responses_upstream(turn, incomplete_reason=reason)
    body, _ = translate(RESPONSES, CHAT, data, include_usage=True)
    assert consume_chat(body).stop == chat
    body, _ = translate(RESPONSES, MESSAGES, data)
    assert consume_messages(body).stop == messages


@pytest.mark.parametrize(
    ("pair", "finish", "want"),
    [
        ((COMPLETIONS, RESPONSES), "length", "incomplete:max_output_tokens"),
        ((COMPLETIONS, RESPONSES), "content_filter", "incomplete:content_filter"),
        ((TEXT_COMPLETIONS, RESPONSES), "max_tokens", "incomplete:max_output_tokens"),
        ((RESPONSES, COMPLETIONS), "max_output_tokens", "length"),
        ((RESPONSES, COMPLETIONS), "content_filter", "content_filter"),
        ((RESPONSES, TEXT_COMPLETIONS), "max_output_tokens", "max_tokens"),
    ],
    ids=lambda v: _pair_id(v) if isinstance(v, tuple) else str(v),
)
def test_text_format_stop_reasons(pair: tuple[str, str], finish: str, want: str) -> None:
    """Length and filter stops cross between Responses and the legacy text formats."""
    upstream, client = pair
    _require(upstream)
    _require(client)
    turn = TURNS["text"]
    if upstream == COMPLETIONS:
        data = completions_upstream(turn, finish=finish)
    elif upstream == TEXT_COMPLETIONS:
        data = text_completions_upstream(turn, stop_reason=finish)
    else:
        data = responses_upstream(turn, incomplete_reason=finish)
    body, _ = translate(upstream, client, data, **_options(client))
    assert CONSUMERS[client](body).stop == want


# -- errors and truncation -----------------------------------------------------------------------


@pytest.mark.parametrize("upstream", [CHAT, MESSAGES, COMPLETIONS, TEXT_COMPLETIONS])
def test_upstream_error_mid_stream_to_responses(upstream: str) -> None:
    """An upstream error after some text reaches a Responses client as the error tail: an
    ``error`` event with nested and flat fields, then ``response.failed`` holding the text so
    far; the SDK raises ``APIError`` with the upstream's message."""
    _require(upstream)
    body, adapter = translate(upstream, RESPONSES, UPSTREAMS[upstream](FAILED))
    payloads = check_responses(body, terminal="response.failed")
    error = payloads[-2]
    assert error["error"]["message"] == error["message"] == FAILED.error
    assert error["code"] == error["error"]["code"]
    assert "param" in error
    assert "param" in error["error"]
    failed = payloads[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"]["message"] == FAILED.error
    assert failed["output"][0]["content"][0]["text"] == "Partial"
    assert adapter.result.outcome == "failed"
    with pytest.raises(openai.APIError, match=FAILED.error):
        list(openai_client(body).responses.create(model="m", input="hi", stream=True))
    with (
        pytest.raises(openai.APIError, match=FAILED.error),
        openai_client(body).responses.stream(model="m", input="hi") as stream,
    ):
        stream.get_final_response()


@pytest.mark.parametrize("form", ["nested", "flat", "failed"])
@pytest.mark.parametrize("client", [CHAT, MESSAGES, COMPLETIONS, TEXT_COMPLETIONS])
def test_responses_upstream_error_to_clients(client: str, form: str) -> None:
    """A Responses upstream failure (nested ``error``, documented flat ``error``, or only
    ``response.failed``) is an error for every client, with the upstream's message."""
    _require(client)
    data = responses_upstream(FAILED, error_form=form)
    body, adapter = translate(RESPONSES, client, data, **_options(client))
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.message == FAILED.error
    expected: type[Exception] = {
        CHAT: openai.APIError,
        COMPLETIONS: openai.APIError,
        MESSAGES: anthropic.APIStatusError,
        TEXT_COMPLETIONS: RuntimeError,
    }[client]
    with pytest.raises(expected, match=FAILED.error):
        CONSUMERS[client](body)


@pytest.mark.parametrize("pair", ALL_PAIRS, ids=_pair_id)
def test_truncation_is_never_a_normal_end(pair: tuple[str, str]) -> None:
    """An upstream that stops without saying how the turn ended gives the client the error
    tail (``result.outcome == "truncated"``), never a normal completion."""
    upstream, client = pair
    _require(upstream)
    _require(client)
    body, adapter = translate(upstream, client, UPSTREAMS[upstream](TRUNCATED), **_options(client))
    assert adapter.result.outcome == "truncated"
    if client == RESPONSES:
        payloads = check_responses(body, terminal="response.failed")
        assert payloads[-1]["response"]["output"][0]["status"] == "incomplete"
    expected: type[Exception] = {
        RESPONSES: openai.APIError,
        CHAT: openai.APIError,
        COMPLETIONS: openai.APIError,
        MESSAGES: anthropic.APIStatusError,
        TEXT_COMPLETIONS: RuntimeError,
    }[client]
    with pytest.raises(expected, match="truncated"):
        CONSUMERS[client](body)


def test_error_before_anything_opens_the_response_first() -> None:
    """An upstream that fails before sending anything still gets ``response.created`` (and
    ``in_progress``) before the error tail, so the stream is valid from its first event."""
    error = _data({"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}})
    body, _ = translate(CHAT, RESPONSES, error)
    payloads = check_responses(body, terminal="response.failed")
    assert [p["type"] for p in payloads] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert payloads[-1]["response"]["output"] == []
    with pytest.raises(openai.APIError, match="Rate limit reached"):
        list(openai_client(body).responses.create(model="m", input="hi", stream=True))


def test_failed_error_code_is_one_the_api_documents() -> None:
    """``response.failed``'s ``error.code`` is an enum in the API: codes outside it become
    ``server_error`` there (``rate_limit_exceeded`` is kept), while the ``error`` event keeps
    the original code."""
    cases = [("upstream_exploded", "server_error"), ("rate_limit_exceeded", "rate_limit_exceeded")]
    for code, want in cases:
        writer, content = make_writer()
        out: list[bytes] = []
        drive(writer, content, [MessageStart("1"), TextDelta("x")], out)
        writer.error(StreamError("api_error", "boom", code), out)
        payloads = check_responses(b"".join(out), terminal="response.failed")
        assert payloads[-2]["code"] == code
        assert payloads[-1]["response"]["error"] == {"code": want, "message": "boom"}


def test_no_done_marker_by_default_and_only_on_request() -> None:
    """``[DONE]`` is foreign to Responses: never after a normal end, not after the error tail
    by default; only when ``done_after_error`` is asked for explicitly."""
    body, _ = translate(CHAT, RESPONSES, chat_upstream(TURNS["text"]))
    assert b"[DONE]" not in body
    body, _ = translate(CHAT, RESPONSES, chat_upstream(FAILED))
    assert b"[DONE]" not in body
    body, _ = translate(CHAT, RESPONSES, chat_upstream(FAILED), done_after_error=True)
    assert body.endswith(b"data: [DONE]\n\n")
    assert consume_error(body) == FAILED.error


def consume_error(body: bytes) -> str:
    """The message of the ``APIError`` the Responses SDK raises on ``body``."""
    with pytest.raises(openai.APIError) as info:
        list(openai_client(body).responses.create(model="m", input="hi", stream=True))
    return info.value.message


# -- chunking invariance ------------------------------------------------------------------------

SHORT = Turn((T(("Hi", " 🚀")),), usage=U(3, 2))
SPLIT_PAIRS = [(RESPONSES, CHAT), (RESPONSES, MESSAGES), (CHAT, RESPONSES), (MESSAGES, RESPONSES)]


@pytest.mark.parametrize("pair", SPLIT_PAIRS, ids=_pair_id)
def test_every_single_split_point_gives_identical_bytes(pair: tuple[str, str]) -> None:
    """Splitting the upstream bytes at any one position (inside a UTF-8 sequence, a JSON
    string, a line break) changes nothing in what the client receives."""
    upstream, client = pair
    data = UPSTREAMS[upstream](SHORT)
    whole, _ = translate(upstream, client, data, **_options(client))
    for cut in range(1, len(data)):
        assert translate(upstream, client, data, [cut], **_options(client))[0] == whole, cut


@pytest.mark.parametrize("pair", SPLIT_PAIRS, ids=_pair_id)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_splits_give_identical_bytes(pair: tuple[str, str], data: st.DataObject) -> None:
    """Any set of split points in a multi-item stream (reasoning, text, two calls) gives the
    same client bytes as one read."""
    upstream, client = pair
    turn = Turn(TURNS["reasoning"].blocks + TURNS["parallel"].blocks, stop="tool_use")
    raw = UPSTREAMS[upstream](turn)
    cuts = data.draw(st.lists(st.integers(1, len(raw) - 1), max_size=12, unique=True))
    whole, _ = translate(upstream, client, raw, **_options(client))
    assert translate(upstream, client, raw, cuts, **_options(client))[0] == whole


# -- reader ---------------------------------------------------------------------------------------


def read_all(data: bytes) -> list[Part]:
    """Every part the reader produces for ``data``, but the terminal response object itself
    (``RESPONSE_EXTENSION``, for Responses clients: see the identity tests)."""
    reader = ResponsesReader()
    parts = [part for event in events_of(data) for part in reader.read(event)]
    return [p for p in parts if not (isinstance(p, Extension) and p.name == RESPONSE_EXTENSION)]


def test_reader_text_and_tool_turn() -> None:
    """The §2.3 text + tool turn reads as exact canonical parts: ``resp_`` stripped, float
    ``created_at`` made an integer, the call's ``call_id`` (not its item id) as the tool id,
    dense tool indexes, the end at the item's done, ``tool_use`` and usage at completion."""
    parts = read_all(responses_upstream(TURNS["tool"]))
    assert parts == [
        MessageStart(id="68af3c0d1e2f4a5b", model="gpt-5-2025-08-07", created=CREATED),
        TextDelta("Let me check."),
        ToolCallStart(0, "call_w1", "get_weather"),
        ToolCallDelta(0, '{"city":'),
        ToolCallDelta(0, ' "Oslo"'),
        ToolCallDelta(0, "}"),
        ToolCallEnd(0),
        Finish("tool_use"),
        UsageUpdate(Usage(21, 9, 0, 0, 0)),
        Done(),
    ]


def test_reader_reasoning_and_encrypted_content() -> None:
    """Summary deltas are reasoning; ``encrypted_content`` stays an OpenAI-only extension."""
    parts = read_all(responses_upstream(TURNS["reasoning"]))
    assert [p for p in parts if isinstance(p, ReasoningDelta)] == [
        ReasoningDelta("The user "),
        ReasoningDelta("greets me.\nI should "),
        ReasoningDelta("answer."),
    ]
    ext = [p for p in parts if isinstance(p, Extension)]
    assert ext == [
        Extension(
            "openai.reasoning_encrypted",
            {"id": "rs_68af3c0000", "encrypted_content": "gAAAAB-opaque"},
        )
    ]


def ev(type_: str, seq: int = 0, **fields: Any) -> bytes:
    """One hand-written Responses event."""
    return _named(type_, {"type": type_, "sequence_number": seq, **fields})


CREATED_EV = ev("response.created", response={"id": "resp_1", "model": "gpt-5", "created_at": 5})


def test_reader_raw_reasoning_text_and_refusal() -> None:
    """``reasoning_text`` deltas (open-weight models) are reasoning; ``refusal`` deltas are
    refusals; their done events add nothing that the deltas already brought."""
    data = CREATED_EV + b"".join(
        [
            ev(
                "response.reasoning_text.delta",
                item_id="rs_1",
                output_index=0,
                content_index=0,
                delta="hm",
            ),
            ev(
                "response.reasoning_text.done",
                item_id="rs_1",
                output_index=0,
                content_index=0,
                text="hm",
            ),
            ev("response.refusal.delta", item_id="m", output_index=1, content_index=0, delta="No."),
            ev(
                "response.refusal.done", item_id="m", output_index=1, content_index=0, refusal="No."
            ),
        ]
    )
    assert read_all(data)[1:] == [ReasoningDelta("hm"), RefusalDelta("No.")]


def test_reader_text_only_in_done_events_and_terminal_output() -> None:
    """Text that only a done event carries is emitted once; an item that only the terminal
    response lists (a backend that skips item events) is emitted from there."""
    fc = {
        "type": "function_call",
        "id": "fc_9",
        "call_id": "call_9",
        "name": "f",
        "arguments": '{"a":1}',
    }
    msg = {"type": "message", "id": "msg_2", "content": [{"type": "output_text", "text": "late"}]}
    data = CREATED_EV + b"".join(
        [
            ev(
                "response.output_item.added",
                output_index=0,
                item={"type": "message", "id": "msg_1"},
            ),
            ev(
                "response.output_text.done",
                item_id="msg_1",
                output_index=0,
                content_index=0,
                text="only done",
            ),
            ev(
                "response.content_part.done",
                item_id="msg_1",
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "only done"},
            ),
            ev(
                "response.completed",
                response={"id": "resp_1", "output": [{"type": "message", "id": "msg_1"}, msg, fc]},
            ),
        ]
    )
    assert read_all(data)[1:] == [
        TextDelta("only done"),
        TextDelta("late"),
        ToolCallStart(0, "call_9", "f"),
        ToolCallDelta(0, '{"a":1}'),
        ToolCallEnd(0),
        Finish("tool_use"),
        Done(),
    ]


def test_reader_arguments_only_in_output_item_done() -> None:
    """A call whose arguments come only in ``output_item.done`` gets them once, then its end."""
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
    }
    data = CREATED_EV + b"".join(
        [
            ev("response.output_item.added", output_index=0, item=item),
            ev("response.output_item.done", output_index=0, item={**item, "arguments": '{"x":2}'}),
            ev("response.output_item.done", output_index=0, item={**item, "arguments": '{"x":2}'}),
        ]
    )
    assert read_all(data)[1:] == [
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"x":2}'),
        ToolCallEnd(0),
    ]


def test_reader_arguments_only_in_function_call_arguments_done() -> None:
    """Arguments that only ``function_call_arguments.done`` carries (the item's done event
    repeats none) are emitted once, before the call's end."""
    item = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
    }
    where: dict[str, Any] = {"item_id": "fc_1", "output_index": 0}
    data = CREATED_EV + b"".join(
        [
            ev("response.output_item.added", output_index=0, item=item),
            ev("response.function_call_arguments.done", **where, arguments='{"y":3}', name="f"),
            ev("response.output_item.done", output_index=0, item=item),
        ]
    )
    assert read_all(data)[1:] == [
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"y":3}'),
        ToolCallEnd(0),
    ]


def test_reader_deltas_before_their_item_wait_for_the_name() -> None:
    """Argument deltas for a call not announced yet are held until its name is known."""
    item = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    data = CREATED_EV + b"".join(
        [
            ev(
                "response.function_call_arguments.delta", item_id="fc_1", output_index=0, delta="{}"
            ),
            ev("response.output_item.added", output_index=0, item=item),
        ]
    )
    assert read_all(data)[1:] == [ToolCallStart(0, "call_1", "f"), ToolCallDelta(0, "{}")]


@pytest.mark.parametrize(
    ("details", "finish"),
    [
        ({"reason": "max_output_tokens"}, "max_tokens"),
        ({"reason": "content_filter"}, "content_filter"),
        ({"reason": "steered"}, "max_tokens"),
        (None, "max_tokens"),
    ],
)
def test_reader_incomplete_is_never_a_normal_stop(details: Any, finish: str) -> None:
    """``response.incomplete`` is a length or filter finish, whatever its details say."""
    data = ev("response.incomplete", response={"id": "resp_1", "incomplete_details": details})
    assert read_all(data)[-2:] == [Finish(finish), Done()]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("payload", "want"),
    [
        (
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": "context_length_exceeded",
                    "message": "too long",
                    "param": "input",
                },
            },
            StreamError("invalid_request_error", "too long", "context_length_exceeded"),
        ),
        (
            {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None},
            StreamError("rate_limit_error", "slow down", "rate_limit_exceeded"),
        ),
        (
            {
                "type": "response.failed",
                "response": {"id": "r", "error": {"code": "server_error", "message": "oops"}},
            },
            StreamError("api_error", "oops", "server_error"),
        ),
        (
            {"type": "response.failed", "response": {"id": "r"}},
            StreamError("api_error", "upstream response failed"),
        ),
        ({"type": "error"}, StreamError("api_error", "upstream error")),
    ],
)
def test_reader_errors(payload: Any, want: StreamError) -> None:
    """``error`` (nested or flat) and ``response.failed`` become ``StreamError`` with the
    upstream's code and message."""
    assert read_all(_named(payload["type"], payload)) == [want]


def test_reader_is_lenient() -> None:
    """Unknown events, wrong types and ``[DONE]`` are skipped, never a crash; a payload that is
    not a JSON object is malformed; the ``event:`` name stands in for a missing ``type``."""
    data = b"".join(
        [
            ev("response.web_search_call.searching", item_id="ws_1", output_index=0),
            _named(
                "response.output_text.delta", {"type": "response.output_text.delta", "delta": 5}
            ),
            _named(
                "response.output_item.added",
                {"type": "response.output_item.added", "item": "x", "output_index": "a"},
            ),
            _named(
                "response.function_call_arguments.delta",
                {"type": "response.function_call_arguments.delta", "delta": "{"},
            ),
            _named("response.output_text.delta", {"delta": "named only"}),
            b"data: [DONE]\n\n",
        ]
    )
    assert read_all(data) == [TextDelta("named only")]
    with pytest.raises(MalformedEvent):
        ResponsesReader().read(ServerSentEvent(data="[1, 2]", event="response.created"))


def test_reader_built_in_tool_items_are_extensions() -> None:
    """Server-side tool items (``web_search_call``…) become extensions, never calls to run."""
    item = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    data = CREATED_EV + ev("response.output_item.added", output_index=0, item=item)
    data += ev("response.output_item.done", output_index=0, item=item)
    data += ev("response.completed", response={"id": "resp_1", "output": [item]})
    parts = read_all(data)
    assert Extension("openai.output_item", item) in parts
    assert not any(isinstance(p, ToolCallStart) for p in parts)
    assert Finish("end_turn") in parts


def test_usage_mapping_round_trip() -> None:
    """Responses usage ↔ canonical: input includes cached, output includes reasoning."""
    obj = {
        "input_tokens": 2048,
        "input_tokens_details": {"cached_tokens": 1920},
        "output_tokens": 310,
        "output_tokens_details": {"reasoning_tokens": 256},
        "total_tokens": 2358,
    }
    usage = usage_in(obj)
    assert usage == Usage(2048, 310, 1920, None, 256)
    out = usage_out(usage)
    assert out == {**obj, "input_tokens_details": {"cached_tokens": 1920, "cache_write_tokens": 0}}
    assert usage_in({"input_tokens": "x", "input_tokens_details": []}) == Usage()


# -- writer ---------------------------------------------------------------------------------------


def make_writer(**options: Any) -> tuple[ResponsesWriter, Content]:
    """A writer with deterministic options and its content."""
    counter = itertools.count(1)
    options.setdefault("done_after_error", False)
    opts = WriterOptions(clock=lambda: CLOCK, id_factory=lambda: f"{next(counter):06d}", **options)
    content = Content()
    return ResponsesWriter(opts, content), content


def drive(writer: ResponsesWriter, content: Content, parts: list[Part], out: list[bytes]) -> None:
    """Feed parts as the adapter does: into the content first, then to the writer."""
    for part in parts:
        content.add(part)
        writer.write(part, out)


def write_stream(parts: list[Part], **options: Any) -> tuple[list[dict[str, Any]], ResponsesWriter]:
    """A whole stream for ``parts`` (then ``end()``), checked against the contract."""
    writer, content = make_writer(**options)
    out: list[bytes] = []
    drive(writer, content, parts, out)
    writer.end(out)
    return check_responses(b"".join(out), usage=content.usage_reported), writer


def item_types(payloads: list[dict[str, Any]]) -> list[str]:
    """The item types in the terminal output."""
    return [item["type"] for item in payloads[-1]["response"]["output"]]


def test_writer_text_after_reasoning_opens_a_message_item() -> None:
    """Text after reasoning goes into a new message item, never into the reasoning item
    (BerriAI/litellm#41185)."""
    payloads, _ = write_stream(
        [
            MessageStart("a"),
            ReasoningDelta("r1"),
            TextDelta("t1"),
            ReasoningDelta("r2"),
            TextDelta("t2"),
            Finish("end_turn"),
        ]
    )
    assert item_types(payloads) == ["reasoning", "message", "reasoning", "message"]
    texts = [p["delta"] for p in payloads if p["type"] == "response.output_text.delta"]
    assert texts == ["t1", "t2"]


def test_writer_text_around_an_extension_stays_one_part() -> None:
    """Text interrupted by an extension (an annotation, a citation) continues the same content
    part: its done events and the output carry all of it."""
    payloads, _ = write_stream(
        [
            TextDelta("see "),
            Extension("anthropic.citation", {"url": "u"}),
            TextDelta("[1]"),
            Finish("end_turn"),
        ]
    )
    (message,) = payloads[-1]["response"]["output"]
    assert [c["text"] for c in message["content"]] == ["see [1]"]
    done = next(p for p in payloads if p["type"] == "response.output_text.done")
    assert done["text"] == "see [1]"


def test_writer_signed_reasoning_segments_are_separate_items() -> None:
    """Two thinking blocks (separated by a signature) become two reasoning items; the
    signature itself (another provider's) is not forwarded."""
    payloads, _ = write_stream(
        [ReasoningDelta("a"), ReasoningSignature("sig"), ReasoningDelta("b"), Finish("end_turn")]
    )
    output = payloads[-1]["response"]["output"]
    assert [o["summary"][0]["text"] for o in output] == ["a", "b"]
    assert b"sig" not in json.dumps(payloads).encode()


def test_writer_refusal_and_text_share_one_message() -> None:
    """Refusal and text in a row are two content parts of one message item, each closed."""
    payloads, _ = write_stream(
        [RefusalDelta("No"), RefusalDelta("pe."), TextDelta("Sorry."), Finish("refusal")]
    )
    final = payloads[-1]
    assert final["type"] == "response.incomplete"
    assert final["response"]["incomplete_details"] == {"reason": "content_filter"}
    (message,) = final["response"]["output"]
    assert message["content"][0] == {"type": "refusal", "refusal": "Nope."}
    assert message["content"][1]["text"] == "Sorry."
    assert message["status"] == "incomplete"


def test_writer_tool_call_closes_the_open_text_item() -> None:
    """A call that starts while text is open closes the message item first; a call without
    arguments gets ``"{}"``; text after a call opens a new message item."""
    payloads, _ = write_stream(
        [
            TextDelta("a"),
            ToolCallStart(0, "call_1", "f"),
            ToolCallEnd(0),
            TextDelta("b"),
            Finish("tool_use"),
        ]
    )
    assert item_types(payloads) == ["message", "function_call", "message"]
    kinds = [p["type"] for p in payloads]
    assert kinds.index("response.output_item.done") < kinds.index(
        "response.function_call_arguments.delta"
    )
    call = payloads[-1]["response"]["output"][1]
    assert (call["call_id"], call["name"], call["arguments"]) == ("call_1", "f", "{}")
    assert call["id"].startswith("fc_")


def test_writer_generates_call_ids_when_missing() -> None:
    """A call without an upstream id gets a ``call_`` id, kept in every event and the output."""
    payloads, _ = write_stream(
        [ToolCallStart(0, None, "f"), ToolCallDelta(0, "{}"), ToolCallEnd(0), Finish("tool_use")]
    )
    added = next(p for p in payloads if p["type"] == "response.output_item.added")
    assert added["item"]["call_id"].startswith("call_")
    assert payloads[-1]["response"]["output"][0]["call_id"] == added["item"]["call_id"]


def test_writer_holds_the_terminal_event_for_late_usage() -> None:
    """Usage that arrives after the finish still reaches the terminal event (held to end())."""
    writer, content = make_writer()
    out: list[bytes] = []
    drive(writer, content, [MessageStart("a"), TextDelta("x"), Finish("end_turn")], out)
    assert not any(b"response.completed" in chunk for chunk in out)
    drive(writer, content, [UsageUpdate(Usage(7, 3, 2, None, 1))], out)
    writer.end(out)
    payloads = check_responses(b"".join(out), terminal="response.completed")
    assert payloads[-1]["response"]["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 3,
        "output_tokens_details": {"reasoning_tokens": 1},
        "total_tokens": 10,
    }


def test_writer_identity_fields() -> None:
    """The response id is ``resp_`` + the canonical id; ``created_at`` the canonical created
    (else the clock); the model passes through (``unknown`` if never said)."""
    payloads, _ = write_stream(
        [MessageStart("abc", "gpt-x", 123), TextDelta("x"), Finish("end_turn")]
    )
    response = payloads[-1]["response"]
    assert (response["id"], response["created_at"], response["model"]) == ("resp_abc", 123, "gpt-x")
    payloads, _ = write_stream([TextDelta("x"), Finish("end_turn")])
    response = payloads[-1]["response"]
    assert (response["id"], response["created_at"], response["model"]) == (
        "resp_000001",
        int(CLOCK),
        "unknown",
    )


def test_writer_drops_other_choices() -> None:
    """Responses has no ``n > 1``: parts of choice 1 are dropped, choice 0 is whole."""
    payloads, _ = write_stream(
        [
            TextDelta("zero"),
            TextDelta("one", choice=1),
            Finish("end_turn"),
            Finish("end_turn", choice=1),
        ]
    )
    assert payloads[-1]["response"]["output"][0]["content"][0]["text"] == "zero"


def test_writer_empty_stream_still_completes() -> None:
    """A stream with no output still opens and completes properly, with an empty output."""
    payloads, _ = write_stream([])
    assert [p["type"] for p in payloads] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]


def test_keepalive() -> None:
    """With native keep-alives, once started, a keep-alive is ``response.in_progress`` with the
    same response id and the next sequence number (the SDK accepts it mid-stream); otherwise,
    before the start or after the end, ``None`` (a comment is used)."""
    writer, content = make_writer(native_keepalive=True)
    assert writer.keepalive() is None
    out: list[bytes] = []
    drive(writer, content, [MessageStart("k"), TextDelta("a")], out)
    ping = writer.keepalive()
    assert ping is not None
    out.append(ping)
    drive(writer, content, [TextDelta("b"), Finish("end_turn")], out)
    writer.end(out)
    assert writer.keepalive() is None
    body = b"".join(out)
    payloads = check_responses(body, terminal="response.completed", usage=False)
    pings = [p for p in payloads[2:] if p["type"] == "response.in_progress"]
    assert len(pings) == 1
    assert pings[0]["response"]["id"] == "resp_k"
    assert consume_responses(body).text == "ab"
    plain, content = make_writer()
    drive(plain, content, [MessageStart("k")], [])
    assert plain.keepalive() is None


def test_adapter_heartbeat_uses_in_progress_when_asked() -> None:
    """Through the adapter: ``native_keepalive`` heartbeats are ``response.in_progress`` events
    after the start, a comment before it."""
    adapter = make_adapter(CHAT, RESPONSES, native_keepalive=True)
    assert adapter.heartbeat().startswith(b":")
    data = chat_upstream(TURNS["text"])
    body = adapter.feed(data[: data.index(b"\n\n") + 2])
    assert body.startswith(b"event: response.created")
    body += adapter.heartbeat()
    assert b"event: response.in_progress" in body.split(b"\n\n")[-2]


# -- final response -------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", [CHAT, MESSAGES])
def test_final_response_is_the_terminal_response(upstream: str) -> None:
    """``result.response`` is exactly the terminal event's response, and the SDK's model
    accepts it."""
    body, adapter = translate(upstream, RESPONSES, UPSTREAMS[upstream](TURNS["tool"]))
    payloads = check_responses(body)
    assert adapter.result.response == payloads[-1]["response"]
    Response.model_validate(adapter.result.response)
    body, adapter = translate(upstream, RESPONSES, UPSTREAMS[upstream](FAILED))
    payloads = check_responses(body, terminal="response.failed")
    assert adapter.result.response == payloads[-1]["response"]


def test_final_response_mid_stream_is_in_progress() -> None:
    """Before the end, ``response()`` is an in-progress snapshot of the output so far."""
    writer, content = make_writer()
    drive(writer, content, [MessageStart("m"), TextDelta("so far")], [])
    response = writer.response()
    assert response["status"] == "in_progress"
    assert response["output"][0]["content"][0]["text"] == "so far"
    Response.model_validate(response)


def test_identity_passthrough_and_collected_response() -> None:
    """Responses to Responses passes the upstream bytes through untouched; with
    ``collect_response`` the final response is the upstream's own terminal response object
    (formats.md §11): its item ids, encrypted reasoning and request echoes, not a rebuild."""
    data = responses_upstream(TURNS["reasoning"])
    body, adapter = translate(RESPONSES, RESPONSES, data, collect_response=True)
    assert body == data
    assert adapter.result.outcome == "complete"
    response = adapter.result.response
    assert response is not None
    assert response["id"] == RESP_ID
    (terminal,) = [
        json.loads(e.data)["response"] for e in events_of(data) if e.event == "response.completed"
    ]
    assert response == terminal
    Response.model_validate(response)
    got = got_from_response(Response.model_validate(response))
    assert got == expect(TURNS["reasoning"], RESPONSES, "completed")


def test_identity_truncation_with_collected_content_raises_api_error() -> None:
    """A truncated identity stream (content collected) ends with an ``error`` event and
    ``response.failed`` for the upstream's own response, without opening a second response,
    so the SDK raises ``APIError``."""
    data = responses_upstream(TRUNCATED)
    body, adapter = translate(RESPONSES, RESPONSES, data, collect_response=True)
    assert adapter.result.outcome == "truncated"
    tail = body[len(data) :]
    assert b"response.created" not in tail
    assert RESP_ID.encode() in tail
    assert "truncated" in consume_error(body)


# -- non-streamed replies (the proxy's JSON path) -------------------------------------------------


def parts_of(response: dict[str, Any]) -> list[Part]:
    """The format's non-streamed reply reader."""
    assert FORMAT.response_parts is not None
    return FORMAT.response_parts(response)


def json_reply(parts: list[Part], client: str) -> dict[str, Any]:
    """What the proxy answers for a non-streamed reply: parts folded into a content, rendered by
    the client format's writer without any streamed write."""
    content = Content()
    for part in parts:
        assert not isinstance(part, StreamError)
        if not isinstance(part, Done):
            content.add(part)
    fmt = get_format(client)
    return fmt.writer(WriterOptions(id_factory=lambda: "fixed"), content).response()


def final_response_json(turn: Turn, **kwargs: Any) -> dict[str, Any]:
    """The terminal response object of ``responses_upstream(turn)``, as a non-streamed reply."""
    last = events_of(responses_upstream(turn, **kwargs))[-1]
    response: dict[str, Any] = json.loads(last.data)["response"]
    return response


def test_response_parts_to_chat_and_messages() -> None:
    """A non-streamed Responses reply translates to a Chat completion and a Messages message
    with the same text, reasoning, calls, stop and usage."""
    turn = Turn(TURNS["reasoning"].blocks + TURNS["tool"].blocks, stop="tool_use")
    parts = parts_of(final_response_json(turn))
    chat = json_reply(parts, CHAT)
    message = chat["choices"][0]["message"]
    assert message["content"] == turn.text
    assert message["reasoning_content"] == turn.reasoning
    calls = [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message["tool_calls"]
    ]
    assert calls == turn.tools
    assert chat["choices"][0]["finish_reason"] == "tool_calls"
    assert chat["usage"]["prompt_tokens"] == turn.usage.input
    messages = json_reply(parts, MESSAGES)
    assert [b["type"] for b in messages["content"]] == ["thinking", "text", "tool_use"]
    assert messages["stop_reason"] == "tool_use"
    anthropic.types.Message.model_validate(messages)


@pytest.mark.parametrize(
    ("response", "want"),
    [
        (
            {
                "object": "response",
                "status": "incomplete",
                "incomplete_details": {"reason": "content_filter"},
                "output": [],
            },
            Finish("content_filter"),
        ),
        (
            {
                "object": "response",
                "status": "failed",
                "error": {"code": "server_error", "message": "x"},
            },
            StreamError("api_error", "x", "server_error"),
        ),
        (
            {
                "error": {
                    "message": "bad key",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            StreamError("invalid_request_error", "bad key", "invalid_api_key"),
        ),
        (
            {"object": "response", "status": "queued"},
            StreamError("api_error", "upstream response is still queued"),
        ),
    ],
)
def test_response_parts_endings(response: dict[str, Any], want: Part) -> None:
    """Incomplete replies finish as cut short; failed replies, error bodies and unfinished
    background responses are errors, never a completion."""
    parts = parts_of(response)
    assert want in parts
    if isinstance(want, StreamError):
        assert parts == [want]


def test_response_rendered_without_streamed_writes() -> None:
    """A content filled without any ``write`` (the proxy's JSON path, identity collection)
    renders a valid response whose items are grouped as the stream would have been, with ids
    that stay the same from one call to the next."""
    parts: list[Part] = [
        MessageStart("r1", "m", 7),
        ReasoningDelta("think"),
        TextDelta("a"),
        RefusalDelta("no"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallDelta(0, '{"k":1}'),
        ToolCallEnd(0),
        ToolCallStart(1, None, "g"),
        ToolCallEnd(1),
        TextDelta("b"),
        Finish("tool_use"),
        UsageUpdate(Usage(5, 6, 1, None, 2)),
    ]
    content = Content()
    for part in parts:
        content.add(part)
    writer, _ = make_writer()
    writer.content = content
    first = writer.response()
    assert first == writer.response()
    Response.model_validate(first)
    output = first["output"]
    assert [o["type"] for o in output] == [
        "reasoning",
        "message",
        "function_call",
        "function_call",
        "message",
    ]
    assert [c["type"] for c in output[1]["content"]] == ["output_text", "refusal"]
    assert output[2]["arguments"] == '{"k":1}'
    assert output[3]["arguments"] == "{}"
    assert output[3]["call_id"] == "call_" + output[3]["id"][len("fc_") :]
    assert len({o["id"] for o in output}) == len(output)
    assert first["status"] == "completed"
    assert first["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}


# -- format registration --------------------------------------------------------------------------


def test_format_registration() -> None:
    """The registry serves this module's format with its endpoint, family and identity hooks:
    no ``[DONE]`` after errors by default, no terminator to add, a resumed error tail."""
    fmt = get_format(RESPONSES)
    assert fmt is FORMAT
    assert (fmt.name, fmt.family, fmt.endpoint) == (RESPONSES, "openai", "/v1/responses")
    assert fmt.done_after_error is False
    assert fmt.terminator == b""
    assert fmt.resume_error is not None


def test_identity_truncation_continues_the_upstream_response() -> None:
    """A Responses stream passed through (identity, nothing decoded) and cut off ends with an
    ``error`` and ``response.failed`` that continue the upstream's own response: same id, the
    next sequence numbers. ``responses.stream()`` then raises the API error, not "Lifecycle
    response identity changed." (a fresh ``response.created`` would)."""
    full = responses_upstream(TURNS["text"])
    events = full.split(b"\n\n")
    cut = b"\n\n".join(events[:6]) + b"\n\n"
    adapter = StreamAdapter(upstream_format=RESPONSES, client_format=RESPONSES)
    out = adapter.feed(cut) + adapter.close()
    assert out.startswith(cut)
    assert adapter.result.outcome == "truncated"
    upstream = [json.loads(e.data) for e in SSEDecoder().feed(cut)]
    tail = [json.loads(e.data) for e in SSEDecoder().feed(out[len(cut) :])]
    assert [e["type"] for e in tail] == ["error", "response.failed"]
    last = upstream[-1]["sequence_number"]
    assert [e["sequence_number"] for e in tail] == [last + 1, last + 2]
    assert tail[1]["response"]["id"] == upstream[0]["response"]["id"]
    with openai_client(out) as client, pytest.raises(openai.APIError, match="truncated"):  # noqa: SIM117 - the stream must open inside pytest.raises
        with client.responses.stream(model="m", input="hi") as stream:
            stream.get_final_response()


def test_text_mentioning_event_names_is_not_a_marker() -> None:
    """Delta text that spells an event line (``event: response.completed``) does not look
    like the end of the stream to identity mode."""
    turn = Turn((T(("event: response.completed\nevent: error",)),), stop=None)
    data = responses_upstream(turn)
    _, adapter = translate(RESPONSES, RESPONSES, data)
    assert adapter.result.outcome == "truncated"


@pytest.mark.parametrize(
    ("data", "outcome"),
    [
        (responses_upstream(TURNS["tool"]), "complete"),
        (responses_upstream(TURNS["text"], incomplete_reason="max_output_tokens"), "complete"),
        (responses_upstream(FAILED, error_form="nested"), "failed"),
        (responses_upstream(FAILED, error_form="flat"), "failed"),
        (responses_upstream(FAILED, error_form="failed"), "failed"),
        (responses_upstream(TRUNCATED), "truncated"),
    ],
    ids=["completed", "incomplete", "error-nested", "error-flat", "failed-only", "truncated"],
)
def test_identity_outcome_from_markers(data: bytes, outcome: str) -> None:
    """Identity mode tells complete, failed and truncated Responses streams apart by the
    format's markers alone, passing every upstream byte through."""
    body, adapter = translate(RESPONSES, RESPONSES, data)
    assert adapter.result.outcome == outcome
    assert body.startswith(data)
    assert (body == data) == (outcome != "truncated")


def test_error_envelopes() -> None:
    """Errors before the stream use OpenAI's envelope and status, both ways."""
    status, body = FORMAT.error_body(StreamError("overloaded_error", "busy"))
    assert status == 503
    assert body["error"]["message"] == "busy"
    err = FORMAT.parse_error_body(
        429, {"error": {"message": "slow", "type": "rate_limit_exceeded"}}
    )
    assert (err.message, err.status) == ("slow", 429)


def _iter_payloads(body: bytes) -> Iterator[dict[str, Any]]:
    for event in events_of(body):
        yield json.loads(event.data)


def test_sdk_sees_every_event_type_in_order() -> None:
    """``responses.create(stream=True)`` yields typed events in the written order, with
    strictly increasing sequence numbers (text + reasoning + tools turn)."""
    turn = Turn(TURNS["reasoning"].blocks + TURNS["tool"].blocks, stop="tool_use")
    body, _ = translate(MESSAGES, RESPONSES, messages_upstream(turn))
    events = list(openai_client(body).responses.create(model="m", input="hi", stream=True))
    assert [e.type for e in events] == [p["type"] for p in _iter_payloads(body)]
    assert all(type(e).__name__ != "BaseModel" for e in events)


@pytest.mark.parametrize("late", [False, True], ids=["deltas", "done-only"])
def test_reasoning_summary_parts_are_paragraphs(late: bool) -> None:
    """Two summary parts of one reasoning item (each a paragraph under its own heading) reach
    Chat and Messages clients joined by a blank line, not run together; also when a part's
    text comes only in its done event."""
    seq = itertools.count()
    where = {"item_id": "rs_1", "output_index": 0}

    def ev(type_: str, **fields: Any) -> bytes:
        return _named(type_, {"type": type_, "sequence_number": next(seq), **fields})

    created = {"id": RESP_ID, "object": "response", "status": "in_progress", "output": []}
    events = [
        ev("response.created", response=created),
        ev("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning"}),
    ]
    for index, text in enumerate(["**Plan**\n\nFirst.", "**Check**\n\nSecond."]):
        part = {**where, "summary_index": index}
        if not late:
            events.append(ev("response.reasoning_summary_text.delta", **part, delta=text))
        events.append(ev("response.reasoning_summary_text.done", **part, text=text))
    completed = {**created, "status": "completed", "output": []}
    events.append(ev("response.completed", response=completed))
    data = b"".join(events)
    expected = "**Plan**\n\nFirst.\n\n**Check**\n\nSecond."
    _, chat = translate("openai-responses", "openai-chat", data)
    assert chat.result.response is not None
    assert chat.result.response["choices"][0]["message"]["reasoning_content"] == expected
    _, messages = translate("openai-responses", "anthropic-messages", data)
    assert messages.result.response is not None
    assert messages.result.response["content"][0]["thinking"] == expected


def test_a_repeated_upstream_call_id_is_made_unique() -> None:
    """Some OpenAI-compatible servers repeat a tool-call id. Clients match results to calls by
    id: ``responses.stream()`` refuses two items with one ``call_id`` ("conflicting output
    identities"), Anthropic two ``tool_use`` blocks with one id. The second call gets a new one."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return _data(
            {
                "id": "chatcmpl-d",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": "m",
                "choices": [choice],
            }
        )

    def call(index: int, name: str) -> dict[str, Any]:
        function = {"name": name, "arguments": "{}"}
        return {"index": index, "id": "call_0", "type": "function", "function": function}

    data = b"".join(
        [
            chunk({"role": "assistant", "content": None, "tool_calls": [call(0, "f")]}),
            chunk({"tool_calls": [call(1, "g")]}),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    body, responses = translate("openai-chat", "openai-responses", data)
    check_responses(body, usage=False)  # (the stream has none)
    assert responses.result.response is not None
    ids = [item["call_id"] for item in responses.result.response["output"]]
    assert ids[0] == "call_0"
    assert len(set(ids)) == 2
    with openai_client(body) as client, client.responses.stream(model="m", input="x") as stream:
        final = stream.get_final_response()
    assert [item.call_id for item in final.output if item.type == "function_call"] == ids
    _, messages = translate("openai-chat", "anthropic-messages", data)
    assert messages.result.response is not None
    tool_ids = [block["id"] for block in messages.result.response["content"]]
    assert len(set(tool_ids)) == 2
