"""A scripted fake LLM upstream: five wire formats, deterministic output, injectable faults.

``FakeUpstream`` is a pure ASGI application (standard library and asyncio only) that answers like
an LLM provider. It replays canned conversations (``SCRIPTS``) in the format of the endpoint it is
called on, streaming when the JSON request body has ``"stream": true`` and returning the format's
normal JSON response otherwise. Ids and timestamps are fixed, so two runs produce the same bytes.
It is independent of ``asgi_sse_adapter``: every format is rendered by its own small emitter here.

Endpoints (``POST``)::

    /v1/chat/completions   OpenAI Chat          chat.completion.chunk stream / chat.completion
    /v1/completions        OpenAI Completions   text_completion stream / text_completion
    /v1/responses          OpenAI Responses     response.* events / response object
    /v1/messages           Anthropic Messages   message_start ... message_stop / message
    /v1/complete           Anthropic Text       event: completion stream / completion; the
                                                ``anthropic-version: 2023-01-01`` header selects
                                                the legacy cumulative data-only stream

Knobs are set per request, as header ``x-fake-<knob>`` (``-`` and ``_`` are interchangeable in the
name) or as query parameter ``<knob>``; the query parameter wins when both are given. Unknown
``x-fake-*`` headers, unknown query parameters and malformed values get a 400 in the format's
error shape, so a typo never silently runs the default. An "event" below is one SSE event as
written, counting ``ping`` and ``[DONE]``::

    knob            value              effect
    --------------  -----------------  ----------------------------------------------------------
    scenario        text (default)     a short multi-sentence answer with some unicode
                    thinking           reasoning first, then text: Messages thinking block with a
                                       signature_delta, Chat ``reasoning_content``, Responses
                                       reasoning item with summary text events
                    tools              a short text, then two tool calls whose arguments stream in
                                       fragments (finish ``tool_calls`` / ``tool_use`` /
                                       ``function_call`` items)
                    long               ``deltas`` text deltas
    deltas          int >= 0           number of text deltas in ``long`` (default 64)
    header_delay    seconds            wait before sending the response head
    delay           seconds            wait before the first event (non-streaming: before the
                                       response)
    pace            seconds            wait between two events
    status          400..599           answer that status with the format's error JSON, no stream
                                       (Anthropic ``{"type":"error","error":{type,message}}``,
                                       OpenAI ``{"error":{message,type,param,code}}``)
    fail_after      N                  after N events raise ``InjectedFailure``: the server drops
                                       the connection, the client sees a broken chunked body
    cut_mid_event   N | true           after N events write the first half of the next event's
                                       bytes, then raise as ``fail_after``; ``true`` cuts at the
                                       ``fail_after`` position instead
    error_after     N                  after N events write the format's in-band error tail (Chat /
                                       Completions ``data: {"error":…}``; Messages and Text
                                       ``event: error`` overloaded_error; Responses ``error``
                                       nested+flat then ``response.failed``), then end cleanly
    truncate_after  N                  end the body cleanly after N events, no terminal event
    stall           N | true (= 1)     after N events wait, silent, until the client disconnects
    chunk           bytes              split the written bytes into pieces of this size; pieces
                                       span events written back to back (without a wait between)
    crlf            bool               CRLF line endings
    ids             bool               an ``id: <n>`` line on every event (n counts from 1)

When N is at least the number of events, ``fail_after`` and ``cut_mid_event`` abort where the body
would have ended, ``stall`` stalls there, ``truncate_after`` changes nothing and ``error_after``
appends the error tail after the whole stream. Booleans accept 1/0, true/false, yes/no, on/off.
Non-streaming requests honour ``header_delay``, ``delay``, ``stall`` (no answer until the client
leaves), ``status`` and ``chunk``; the other stream knobs do not apply to them.

What every scenario renders in each format: Completions and Anthropic Text carry only the text
(their formats have no reasoning or tools). Usage is realistic: Messages ``message_start`` usage
with cache fields and a cumulative ``message_delta`` usage; Chat and Completions a ``choices: []``
usage chunk only when the request has ``stream_options.include_usage`` (Chat then also puts
``usage: null`` on every other chunk); Responses usage in ``response.completed``; Anthropic Text
none. Non-streaming responses always carry usage (except Anthropic Text).

Observations for tests live on the instance (see ``FakeUpstream``): request count and log, the last
request's path, headers and body, streams started / completed / in progress, injected aborts and
``disconnects`` (streams that saw ``http.disconnect`` before finishing; generation stops at once).

Run it with ``python -m example_app.fake_upstream --port 8001`` (needs uvicorn).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl

__all__ = [
    "ANTHROPIC_TEXT_STOP",
    "CHAT_ID",
    "COMPLETION_ID",
    "CREATED",
    "DEFAULT_MODELS",
    "ENDPOINTS",
    "LOG_ID",
    "MESSAGE_ID",
    "MESSAGE_ITEM_ID",
    "REASONING_ITEM_ID",
    "REQUEST_ID",
    "RESPONSE_ID",
    "SCRIPTS",
    "STREAM_ERROR",
    "SYSTEM_FINGERPRINT",
    "TEXT_COMPLETION_ID",
    "Disconnect",
    "FakeUpstream",
    "Format",
    "InjectedFailure",
    "Knobs",
    "RecordedRequest",
    "Script",
    "ToolCall",
    "Usage",
    "app",
    "long_script",
    "main",
    "render_response",
    "render_stream",
    "script_for",
]

# ---------------------------------------------------------------------------------------------
# Script data: what the fake "model" says, independent of any wire format.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token counts of one scripted turn, in Anthropic terms.

    Fields:
        input_tokens: uncached input tokens (Anthropic ``input_tokens``).
        output_tokens: all output tokens, reasoning included.
        cache_creation_input_tokens: input tokens written to the prompt cache.
        cache_read_input_tokens: input tokens read from the prompt cache.
        reasoning_tokens: the part of ``output_tokens`` spent on reasoning.
    """

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """All input tokens, cached ones included (OpenAI ``prompt_tokens`` / ``input_tokens``)."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total_tokens(self) -> int:
        """``prompt_tokens + output_tokens``."""
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True)
class ToolCall:
    """One scripted tool call.

    Fields:
        name: the function name.
        fragments: the argument JSON as streamed, piece by piece.
        call_id: Chat ``tool_calls[].id`` and Responses ``call_id`` (``call_…``).
        tool_use_id: Messages ``tool_use`` block id (``toolu_…``).
        item_id: Responses ``function_call`` item id (``fc_…``).
    """

    name: str
    fragments: tuple[str, ...]
    call_id: str
    tool_use_id: str
    item_id: str

    @property
    def arguments(self) -> str:
        """The whole argument JSON text."""
        return "".join(self.fragments)

    @property
    def input(self) -> dict[str, Any]:
        """The parsed arguments (Messages ``tool_use.input``)."""
        parsed: dict[str, Any] = json.loads(self.arguments)
        return parsed


@dataclass(frozen=True)
class Script:
    """One canned assistant turn, rendered into every format.

    Fields:
        name: the scenario name.
        text_deltas: the answer text, as streamed.
        usage: the turn's token counts.
        thinking_deltas: reasoning text, as streamed (empty: no reasoning).
        signature: the Messages thinking block signature (sent as one ``signature_delta``).
        tool_calls: the tool calls that follow the text, in order.
    """

    name: str
    text_deltas: tuple[str, ...]
    usage: Usage
    thinking_deltas: tuple[str, ...] = ()
    signature: str = ""
    tool_calls: tuple[ToolCall, ...] = ()

    @property
    def text(self) -> str:
        """The whole answer text."""
        return "".join(self.text_deltas)

    @property
    def thinking(self) -> str:
        """The whole reasoning text."""
        return "".join(self.thinking_deltas)

    @property
    def stop_reason(self) -> Literal["end_turn", "tool_use"]:
        """The Messages ``stop_reason``; Chat finishes ``tool_calls`` / ``stop`` accordingly."""
        return "tool_use" if self.tool_calls else "end_turn"


_LONG_WORDS = ("alpha", "βeta", "gamma", "δelta", "épsilon", "zeta", "η", "θeta")


def long_script(deltas: int = 64) -> Script:
    """The ``long`` scenario with ``deltas`` text deltas (``"alpha0 "``, ``"βeta1 "``, …)."""
    text = tuple(f"{_LONG_WORDS[i % len(_LONG_WORDS)]}{i} " for i in range(deltas))
    return Script(name="long", text_deltas=text, usage=Usage(input_tokens=12, output_tokens=deltas))


SCRIPTS: Mapping[str, Script] = {
    "text": Script(
        name="text",
        text_deltas=(
            "Hello",
            "! Here is",
            " a short answer",
            " in three sentences.",
            " Unicode travels too: ",
            "naïve café, Grüße, ",
            "日本語 and emoji 🚀👋🏽.",
            " That's all.",
        ),
        usage=Usage(
            input_tokens=25,
            output_tokens=31,
            cache_creation_input_tokens=8,
            cache_read_input_tokens=64,
        ),
    ),
    "thinking": Script(
        name="thinking",
        thinking_deltas=(
            "The user wants",
            " a greeting.",
            " Keep it brief —",
            " one sentence.",
        ),
        signature="EqQBCkYIBhgCIkBmYWtlLXNpZ25hdHVyZS1mb3ItdGVzdHM=",
        text_deltas=("Hi there!", " After some thought: ", "the answer is 42 ✓."),
        usage=Usage(
            input_tokens=30,
            output_tokens=44,
            cache_creation_input_tokens=0,
            cache_read_input_tokens=128,
            reasoning_tokens=17,
        ),
    ),
    "tools": Script(
        name="tools",
        text_deltas=("I'll check", " both for you."),
        tool_calls=(
            ToolCall(
                name="get_weather",
                fragments=('{"city":', ' "Zürich"', ', "unit": "cel', 'sius"}'),
                call_id="call_fake_weather_01",
                tool_use_id="toolu_fake_weather_01",
                item_id="fc_fake_weather_01",
            ),
            ToolCall(
                name="get_time",
                fragments=('{"timez', 'one": "Asia/', 'Tokyo"}'),
                call_id="call_fake_time_02",
                tool_use_id="toolu_fake_time_02",
                item_id="fc_fake_time_02",
            ),
        ),
        usage=Usage(
            input_tokens=310,
            output_tokens=58,
            cache_creation_input_tokens=1024,
            cache_read_input_tokens=0,
        ),
    ),
    "long": long_script(64),
}
"""The canned turns by scenario name; ``long`` here has the default 64 deltas."""


def script_for(scenario: str, deltas: int = 64) -> Script:
    """The script a request with these knobs replays."""
    if scenario == "long":
        return long_script(deltas)
    return SCRIPTS[scenario]


# Fixed identifiers, so two runs produce the same bytes.
CREATED = 1_700_000_000
"""``created`` / ``created_at`` of every response (unix seconds)."""
CHAT_ID = "chatcmpl-fake0001"
COMPLETION_ID = "cmpl-fake0001"
RESPONSE_ID = "resp_fake0001"
MESSAGE_ITEM_ID = "msg_fakeitem0001"
"""The Responses ``message`` item id."""
REASONING_ITEM_ID = "rs_fake0001"
MESSAGE_ID = "msg_fake0001"
"""The Messages ``message.id``."""
TEXT_COMPLETION_ID = "compl_fake0001"
LOG_ID = "fake-log-0001"
REQUEST_ID = "req_fake0001"
SYSTEM_FINGERPRINT = "fp_fake"
ANTHROPIC_TEXT_STOP = "\n\nHuman:"
"""The ``stop`` sequence Anthropic Text streams report."""

Format = Literal["chat", "completions", "responses", "messages", "anthropic_text"]

ENDPOINTS: Mapping[str, Format] = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/responses": "responses",
    "/v1/messages": "messages",
    "/v1/complete": "anthropic_text",
}
"""Path to format."""

DEFAULT_MODELS: Mapping[Format, str] = {
    "chat": "gpt-4o-mini",
    "completions": "gpt-3.5-turbo-instruct",
    "responses": "gpt-4.1-mini",
    "messages": "claude-sonnet-4-5",
    "anthropic_text": "claude-2.1",
}
"""The model reported when the request names none (otherwise the request's model is echoed)."""

STREAM_ERROR: Mapping[Format, tuple[str, str]] = {
    "chat": ("server_error", "The server had an error while processing your request."),
    "completions": ("server_error", "The server had an error while processing your request."),
    "responses": ("server_error", "The server had an error while processing your request."),
    "messages": ("overloaded_error", "Overloaded"),
    "anthropic_text": ("overloaded_error", "Overloaded"),
}
"""``(type, message)`` of the in-band error ``error_after`` writes, per format."""

# ---------------------------------------------------------------------------------------------
# Knobs
# ---------------------------------------------------------------------------------------------

_KNOB_PREFIX = "x-fake-"
_IGNORED_QUERY = frozenset({"beta", "api-version"})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Knobs:
    """The per-request behaviour switches; see the module docstring for their meaning."""

    scenario: str = "text"
    deltas: int = 64
    header_delay: float = 0.0
    delay: float = 0.0
    pace: float = 0.0
    status: int | None = None
    fail_after: int | None = None
    cut_mid_event: int | bool | None = None
    error_after: int | None = None
    truncate_after: int | None = None
    stall: int | None = None
    chunk: int | None = None
    crlf: bool = False
    ids: bool = False

    @classmethod
    def from_request(
        cls, headers: Iterable[tuple[str, str]], query: Iterable[tuple[str, str]]
    ) -> Knobs:
        """Parse ``x-fake-*`` headers and query parameters; raise ``ValueError`` on bad input."""
        raw: dict[str, str] = {}
        for name, value in headers:
            lowered = name.lower()
            if lowered.startswith(_KNOB_PREFIX):
                raw[lowered[len(_KNOB_PREFIX) :].replace("-", "_")] = value
        for name, value in query:
            if name not in _IGNORED_QUERY:
                raw[name.replace("-", "_")] = value
        return cls.from_mapping(raw)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, str]) -> Knobs:
        """Parse knob name to string value; raise ``ValueError`` on bad input."""
        values: dict[str, Any] = {}
        for name, text in raw.items():
            parser = _PARSERS.get(name)
            if parser is None:
                raise ValueError(f"unknown fake-upstream knob {name!r}")
            try:
                values[name] = parser(text.strip())
            except ValueError as exc:
                raise ValueError(f"bad value for knob {name!r}: {text!r} ({exc})") from None
        return cls(**values)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("expected a boolean")


def _parse_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("expected a count >= 0")
    return value


def _parse_seconds(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("expected seconds >= 0")
    return value


def _parse_status(text: str) -> int:
    value = int(text)
    if not 400 <= value <= 599:
        raise ValueError("expected an HTTP error status 400..599")
    return value


def _parse_scenario(text: str) -> str:
    if text not in SCRIPTS:
        raise ValueError(f"expected one of {', '.join(SCRIPTS)}")
    return text


def _parse_chunk(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("expected a size >= 1")
    return value


def _parse_count_or_flag(text: str) -> int | None:
    """``N``, or a boolean: true is 1, false is off."""
    try:
        return _parse_count(text)
    except ValueError:
        return 1 if _parse_bool(text) else None


def _parse_cut(text: str) -> int | bool | None:
    """``N``, or true (cut at ``fail_after``), or false (off)."""
    try:
        return _parse_count(text)
    except ValueError:
        return True if _parse_bool(text) else None


_PARSERS: Mapping[str, Callable[[str], Any]] = {
    "scenario": _parse_scenario,
    "deltas": _parse_count,
    "header_delay": _parse_seconds,
    "delay": _parse_seconds,
    "pace": _parse_seconds,
    "status": _parse_status,
    "fail_after": _parse_count,
    "cut_mid_event": _parse_cut,
    "error_after": _parse_count,
    "truncate_after": _parse_count,
    "stall": _parse_count_or_flag,
    "chunk": _parse_chunk,
    "crlf": _parse_bool,
    "ids": _parse_bool,
}

# ---------------------------------------------------------------------------------------------
# Per-format emitters
# ---------------------------------------------------------------------------------------------

_DONE = "[DONE]"


@dataclass(frozen=True)
class _Event:
    name: str | None
    data: Any  # a JSON object, or the literal "[DONE]"


@dataclass(frozen=True)
class _Turn:
    """Everything a rendering needs about one request."""

    fmt: Format
    script: Script
    model: str
    include_usage: bool
    legacy_text: bool  # Anthropic Text 2023-01-01


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _chat_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cache_read_input_tokens,
            "audio_tokens": 0,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _completions_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _responses_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_input_tokens},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def _messages_usage(usage: Usage, *, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


# --- Chat ------------------------------------------------------------------------------------


def _chat_events(turn: _Turn) -> list[_Event]:
    script = turn.script
    envelope: dict[str, Any] = {
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": turn.model,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if turn.include_usage:
        envelope["usage"] = None

    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> _Event:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return _Event(None, {**envelope, "choices": [choice]})

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"reasoning_content": piece}) for piece in script.thinking_deltas]
    events += [chunk({"content": piece}) for piece in script.text_deltas]
    for index, call in enumerate(script.tool_calls):
        first = {
            "index": index,
            "id": call.call_id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        events.append(chunk({"tool_calls": [first]}))
        for piece in call.fragments:
            events.append(
                chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            )
    events.append(chunk({}, "tool_calls" if script.tool_calls else "stop"))
    if turn.include_usage:
        events.append(_Event(None, {**envelope, "choices": [], "usage": _chat_usage(script.usage)}))
    events.append(_Event(None, _DONE))
    return events


def _chat_json(turn: _Turn) -> dict[str, Any]:
    script = turn.script
    message: dict[str, Any] = {
        "role": "assistant",
        "content": script.text or None,
        "refusal": None,
        "annotations": [],
    }
    if script.thinking_deltas:
        message["reasoning_content"] = script.thinking
    if script.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.call_id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments},
            }
            for call in script.tool_calls
        ]
    return {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": turn.model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if script.tool_calls else "stop",
            }
        ],
        "usage": _chat_usage(script.usage),
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def _openai_error(kind: str, message: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _openai_stream_tail(turn: _Turn, sent: Sequence[_Event]) -> list[_Event]:
    kind, message = STREAM_ERROR[turn.fmt]
    return [_Event(None, _openai_error(kind, message, kind))]


# --- Completions -----------------------------------------------------------------------------


def _completions_events(turn: _Turn) -> list[_Event]:
    envelope: dict[str, Any] = {
        "id": COMPLETION_ID,
        "object": "text_completion",
        "created": CREATED,
        "model": turn.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }

    def chunk(text: str, finish_reason: str | None = None) -> _Event:
        choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish_reason}
        return _Event(None, {**envelope, "choices": [choice]})

    events = [chunk(piece) for piece in turn.script.text_deltas]
    events.append(chunk("", "stop"))
    if turn.include_usage:
        usage = _completions_usage(turn.script.usage)
        events.append(_Event(None, {**envelope, "choices": [], "usage": usage}))
    events.append(_Event(None, _DONE))
    return events


def _completions_json(turn: _Turn) -> dict[str, Any]:
    return {
        "id": COMPLETION_ID,
        "object": "text_completion",
        "created": CREATED,
        "model": turn.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {"text": turn.script.text, "index": 0, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": _completions_usage(turn.script.usage),
    }


# --- Responses -------------------------------------------------------------------------------


def _response_object(
    turn: _Turn,
    status: str,
    output: list[dict[str, Any]],
    *,
    usage: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": turn.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _responses_items(script: Script) -> list[dict[str, Any]]:
    """The completed output items, in output order."""
    items: list[dict[str, Any]] = []
    if script.thinking_deltas:
        items.append(
            {
                "id": REASONING_ITEM_ID,
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": script.thinking}],
            }
        )
    if script.text_deltas:
        items.append(
            {
                "id": MESSAGE_ITEM_ID,
                "type": "message",
                "status": "completed",
                "content": [_output_text(script.text)],
                "role": "assistant",
            }
        )
    for call in script.tool_calls:
        items.append(
            {
                "id": call.item_id,
                "type": "function_call",
                "status": "completed",
                "arguments": call.arguments,
                "call_id": call.call_id,
                "name": call.name,
            }
        )
    return items


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _responses_events(turn: _Turn) -> list[_Event]:
    script = turn.script
    events: list[_Event] = []

    def add(kind: str, **fields: Any) -> None:
        events.append(_Event(kind, {"type": kind, "sequence_number": len(events), **fields}))

    in_progress = _response_object(turn, "in_progress", [])
    add("response.created", response=in_progress)
    add("response.in_progress", response=in_progress)
    final_items = _responses_items(script)
    for output_index, item in enumerate(final_items):
        item_id = item["id"]
        where = {"item_id": item_id, "output_index": output_index}
        if item["type"] == "reasoning":
            add(
                "response.output_item.added",
                output_index=output_index,
                item={"id": item_id, "type": "reasoning", "summary": []},
            )
            part = {"type": "summary_text", "text": ""}
            add("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
            for piece in script.thinking_deltas:
                add("response.reasoning_summary_text.delta", **where, summary_index=0, delta=piece)
            add(
                "response.reasoning_summary_text.done",
                **where,
                summary_index=0,
                text=script.thinking,
            )
            part = {"type": "summary_text", "text": script.thinking}
            add("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
        elif item["type"] == "message":
            added = {**item, "status": "in_progress", "content": []}
            add("response.output_item.added", output_index=output_index, item=added)
            add("response.content_part.added", **where, content_index=0, part=_output_text(""))
            for piece in script.text_deltas:
                add(
                    "response.output_text.delta",
                    **where,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
            add(
                "response.output_text.done",
                **where,
                content_index=0,
                text=script.text,
                logprobs=[],
            )
            add(
                "response.content_part.done",
                **where,
                content_index=0,
                part=_output_text(script.text),
            )
        else:
            call = next(c for c in script.tool_calls if c.item_id == item_id)
            added = {**item, "status": "in_progress", "arguments": ""}
            add("response.output_item.added", output_index=output_index, item=added)
            for piece in call.fragments:
                add("response.function_call_arguments.delta", **where, delta=piece)
            add(
                "response.function_call_arguments.done",
                **where,
                arguments=call.arguments,
                name=call.name,
            )
        add("response.output_item.done", output_index=output_index, item=item)
    completed = _response_object(
        turn, "completed", final_items, usage=_responses_usage(script.usage)
    )
    add("response.completed", response=completed)
    return events


def _responses_tail(turn: _Turn, sent: Sequence[_Event]) -> list[_Event]:
    kind, message = STREAM_ERROR["responses"]
    done_items = [e.data["item"] for e in sent if e.name == "response.output_item.done"]
    error_event = {
        "type": "error",
        "sequence_number": len(sent),
        "error": {"type": kind, "code": kind, "message": message, "param": None},
        "code": kind,
        "message": message,
        "param": None,
    }
    failed = _response_object(turn, "failed", done_items, error={"code": kind, "message": message})
    failed_event = {"type": "response.failed", "sequence_number": len(sent) + 1, "response": failed}
    return [_Event("error", error_event), _Event("response.failed", failed_event)]


def _responses_json(turn: _Turn) -> dict[str, Any]:
    usage = _responses_usage(turn.script.usage)
    return _response_object(turn, "completed", _responses_items(turn.script), usage=usage)


# --- Messages --------------------------------------------------------------------------------


def _messages_blocks(script: Script) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if script.thinking_deltas:
        blocks.append(
            {"type": "thinking", "thinking": script.thinking, "signature": script.signature}
        )
    if script.text_deltas:
        blocks.append({"type": "text", "text": script.text})
    for call in script.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.tool_use_id, "name": call.name, "input": call.input}
        )
    return blocks


def _message_object(turn: _Turn, content: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "role": "assistant",
        "model": turn.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        **fields,
    }


def _messages_events(turn: _Turn) -> list[_Event]:
    script = turn.script
    events: list[_Event] = []

    def add(kind: str, **fields: Any) -> None:
        events.append(_Event(kind, {"type": kind, **fields}))

    start_usage = _messages_usage(script.usage, output_tokens=1)
    add("message_start", message=_message_object(turn, [], usage=start_usage))
    index = 0
    if script.thinking_deltas:
        block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        add("content_block_start", index=index, content_block=block)
        for piece in script.thinking_deltas:
            add(
                "content_block_delta",
                index=index,
                delta={"type": "thinking_delta", "thinking": piece},
            )
        delta = {"type": "signature_delta", "signature": script.signature}
        add("content_block_delta", index=index, delta=delta)
        add("content_block_stop", index=index)
        index += 1
    if script.text_deltas:
        add("content_block_start", index=index, content_block={"type": "text", "text": ""})
        for piece in script.text_deltas:
            add("content_block_delta", index=index, delta={"type": "text_delta", "text": piece})
        add("content_block_stop", index=index)
        index += 1
    for call in script.tool_calls:
        block = {"type": "tool_use", "id": call.tool_use_id, "name": call.name, "input": {}}
        add("content_block_start", index=index, content_block=block)
        for piece in call.fragments:
            delta = {"type": "input_json_delta", "partial_json": piece}
            add("content_block_delta", index=index, delta=delta)
        add("content_block_stop", index=index)
        index += 1
    # Anthropic sends a ping after the first block starts.
    first_start = next((i for i, e in enumerate(events) if e.name == "content_block_start"), 0)
    events.insert(first_start + 1, _Event("ping", {"type": "ping"}))
    final_usage = _messages_usage(script.usage, output_tokens=script.usage.output_tokens)
    del final_usage["cache_creation"], final_usage["service_tier"]
    add(
        "message_delta",
        delta={"stop_reason": script.stop_reason, "stop_sequence": None},
        usage=final_usage,
    )
    add("message_stop")
    return events


def _anthropic_error_event(turn: _Turn) -> _Event:
    kind, message = STREAM_ERROR[turn.fmt]
    return _Event("error", {"type": "error", "error": {"type": kind, "message": message}})


def _messages_tail(turn: _Turn, sent: Sequence[_Event]) -> list[_Event]:
    return [_anthropic_error_event(turn)]


def _messages_json(turn: _Turn) -> dict[str, Any]:
    script = turn.script
    usage = _messages_usage(script.usage, output_tokens=script.usage.output_tokens)
    return _message_object(
        turn, _messages_blocks(script), stop_reason=script.stop_reason, usage=usage
    )


# --- Anthropic Text Completions --------------------------------------------------------------


def _anthropic_text_events(turn: _Turn) -> list[_Event]:
    script = turn.script
    if turn.legacy_text:
        events: list[_Event] = []
        so_far = ""
        for piece in script.text_deltas:
            so_far += piece
            events.append(_Event(None, _legacy_completion(turn, so_far, None)))
        events.append(_Event(None, _legacy_completion(turn, so_far, "stop_sequence")))
        events.append(_Event(None, _DONE))
        return events

    def completion(text: str, **fields: Any) -> _Event:
        payload = {
            "type": "completion",
            "id": TEXT_COMPLETION_ID,
            "completion": text,
            "stop_reason": None,
            "model": turn.model,
            **fields,
        }
        return _Event("completion", payload)

    events = [completion(piece) for piece in script.text_deltas]
    events.insert(1, _Event("ping", {"type": "ping"}))
    events.append(completion("", stop_reason="stop_sequence", stop=ANTHROPIC_TEXT_STOP))
    return events


def _legacy_completion(
    turn: _Turn, so_far: str, stop_reason: str | None, exception: str | None = None
) -> dict[str, Any]:
    return {
        "completion": so_far,
        "stop_reason": stop_reason,
        "truncated": False,
        "stop": ANTHROPIC_TEXT_STOP if stop_reason else None,
        "exception": exception,
        "log_id": LOG_ID,
        "model": turn.model,
    }


def _anthropic_text_tail(turn: _Turn, sent: Sequence[_Event]) -> list[_Event]:
    if not turn.legacy_text:
        return [_anthropic_error_event(turn)]
    so_far = next((e.data["completion"] for e in reversed(sent) if isinstance(e.data, dict)), "")
    _kind, message = STREAM_ERROR[turn.fmt]
    return [_Event(None, _legacy_completion(turn, so_far, None, message)), _Event(None, _DONE)]


def _anthropic_text_json(turn: _Turn) -> dict[str, Any]:
    return {
        "type": "completion",
        "id": TEXT_COMPLETION_ID,
        "completion": turn.script.text,
        "stop_reason": "stop_sequence",
        "stop": ANTHROPIC_TEXT_STOP,
        "model": turn.model,
        "log_id": LOG_ID,
    }


_STREAMS: Mapping[Format, Callable[[_Turn], list[_Event]]] = {
    "chat": _chat_events,
    "completions": _completions_events,
    "responses": _responses_events,
    "messages": _messages_events,
    "anthropic_text": _anthropic_text_events,
}
_TAILS: Mapping[Format, Callable[[_Turn, Sequence[_Event]], list[_Event]]] = {
    "chat": _openai_stream_tail,
    "completions": _openai_stream_tail,
    "responses": _responses_tail,
    "messages": _messages_tail,
    "anthropic_text": _anthropic_text_tail,
}
_JSON: Mapping[Format, Callable[[_Turn], dict[str, Any]]] = {
    "chat": _chat_json,
    "completions": _completions_json,
    "responses": _responses_json,
    "messages": _messages_json,
    "anthropic_text": _anthropic_text_json,
}

# --- HTTP errors before any stream -----------------------------------------------------------

_ANTHROPIC_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found."),
    409: ("conflict_error", "Conflict."),
    413: ("request_too_large", "Request exceeds the maximum allowed size."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_OPENAI_ERRORS: Mapping[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("authentication_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    413: ("invalid_request_error", None, "Request too large."),
    429: ("rate_limit_exceeded", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", "server_error", "The server had an error processing your request."),
    503: ("server_error", "overloaded", "The engine is currently overloaded."),
    529: ("server_error", "overloaded", "The engine is currently overloaded."),
}


def _error_body(fmt: Format, status: int, message: str | None = None) -> dict[str, Any]:
    """The format's error JSON for an HTTP error ``status``."""
    if fmt in ("messages", "anthropic_text"):
        default = (
            ("api_error", "Internal server error")
            if status >= 500
            else ("invalid_request_error", "Invalid request.")
        )
        kind, text = _ANTHROPIC_ERRORS.get(status, default)
        return {"type": "error", "error": {"type": kind, "message": message or text}}
    fallback: tuple[str, str | None, str] = (
        ("server_error", "server_error", "The server had an error processing your request.")
        if status >= 500
        else ("invalid_request_error", None, "Invalid request.")
    )
    kind, code, text = _OPENAI_ERRORS.get(status, fallback)
    return _openai_error(kind, message or text, code)


# --- Rendering entry points ------------------------------------------------------------------


def _turn(fmt: Format, request: Mapping[str, Any], knobs: Knobs, anthropic_version: str) -> _Turn:
    model = request.get("model")
    options = request.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return _Turn(
        fmt=fmt,
        script=script_for(knobs.scenario, knobs.deltas),
        model=model if isinstance(model, str) and model else DEFAULT_MODELS[fmt],
        include_usage=include_usage and fmt in ("chat", "completions"),
        legacy_text=fmt == "anthropic_text" and anthropic_version == "2023-01-01",
    )


def _plan_events(turn: _Turn, knobs: Knobs) -> list[_Event]:
    events = _STREAMS[turn.fmt](turn)
    if knobs.truncate_after is not None:
        events = events[: knobs.truncate_after]
    if knobs.error_after is not None:
        events = events[: knobs.error_after]
        events += _TAILS[turn.fmt](turn, events)
    return events


def _encode(event: _Event, *, event_id: int | None, newline: str) -> bytes:
    lines = []
    if event.name is not None:
        lines.append(f"event: {event.name}")
    if event_id is not None:
        lines.append(f"id: {event_id}")
    data = event.data if isinstance(event.data, str) else _dumps(event.data)
    lines.append(f"data: {data}")
    return (newline.join(lines) + newline + newline).encode()


def _format_of(path: str) -> Format:
    try:
        return ENDPOINTS[path]
    except KeyError:
        raise ValueError(
            f"no fake endpoint at {path!r}; expected one of {list(ENDPOINTS)}"
        ) from None


def render_stream(
    path: str,
    request: Mapping[str, Any] | None = None,
    knobs: Knobs | None = None,
    *,
    anthropic_version: str = "2023-06-01",
) -> list[bytes]:
    """The SSE events (encoded, one ``bytes`` per event) the fake streams for this request.

    ``truncate_after``, ``error_after``, ``crlf`` and ``ids`` apply; timing and connection faults
    (``fail_after``, ``cut_mid_event``, ``stall``, ``chunk``, delays) do not, as they are not
    part of the bytes.
    """
    knobs = knobs or Knobs()
    fmt = _format_of(path)
    turn = _turn(fmt, request or {}, knobs, anthropic_version)
    newline = "\r\n" if knobs.crlf else "\n"
    return [
        _encode(event, event_id=index + 1 if knobs.ids else None, newline=newline)
        for index, event in enumerate(_plan_events(turn, knobs))
    ]


def render_response(
    path: str,
    request: Mapping[str, Any] | None = None,
    knobs: Knobs | None = None,
    *,
    anthropic_version: str = "2023-06-01",
) -> dict[str, Any]:
    """The JSON body the fake returns for this request without ``"stream": true``."""
    knobs = knobs or Knobs()
    fmt = _format_of(path)
    return _JSON[fmt](_turn(fmt, request or {}, knobs, anthropic_version))


# ---------------------------------------------------------------------------------------------
# The ASGI app
# ---------------------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class InjectedFailure(RuntimeError):
    """Raised by the app after the response started, on ``fail_after`` / ``cut_mid_event``."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake saw it.

    Fields:
        method, path, query: from the ASGI scope (``query`` undecoded).
        headers: lower-cased names; the last value wins for repeated names.
        body: the raw request body.
        json: the parsed body, ``None`` if it was not a JSON object.
    """

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: dict[str, Any] | None


@dataclass(frozen=True)
class Disconnect:
    """A request whose client disconnected before the fake finished answering.

    Fields:
        path: the request path.
        stream: whether it was a streaming request.
        events_sent: whole events written before the disconnect was seen.
        at: ``time.monotonic()`` when the fake noticed.
        elapsed: seconds from the request's arrival to that moment.
    """

    path: str
    stream: bool
    events_sent: int
    at: float
    elapsed: float


class _DisconnectWatch:
    """Owns ``receive`` after the body was read and flags ``http.disconnect``."""

    def __init__(self, receive: Receive) -> None:
        self._flag = asyncio.Event()
        self._task = asyncio.ensure_future(self._run(receive))

    async def _run(self, receive: Receive) -> None:
        try:
            while True:
                message = await receive()
                if message.get("type") == "http.disconnect":
                    break
        except Exception:  # a server whose receive fails: treat as gone
            pass
        self._flag.set()

    @property
    def disconnected(self) -> bool:
        return self._flag.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` unless the client leaves first; return whether it left."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return self.disconnected
        try:
            await asyncio.wait_for(self._flag.wait(), seconds)
        except asyncio.TimeoutError:
            return False
        return True

    async def wait(self) -> None:
        await self._flag.wait()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class _Progress:
    events: int = 0
    """Whole events written so far."""


class _ClientGone(Exception):
    """The client disconnected; stop answering."""


class _Writer:
    """Writes body bytes in ``chunk``-sized pieces, holding a short tail until the next flush."""

    def __init__(self, send: Send, chunk: int | None) -> None:
        self._send = send
        self._chunk = chunk
        self._pending = b""

    async def write(self, data: bytes) -> None:
        if self._chunk is None:
            await self._body(data)
            return
        data = self._pending + data
        size = self._chunk
        whole = len(data) - len(data) % size
        for start in range(0, whole, size):
            await self._body(data[start : start + size])
        self._pending = data[whole:]

    async def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, b""
            await self._body(pending)

    async def _body(self, data: bytes) -> None:
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": True})
        except OSError as exc:  # ASGI 2.4: send raises OSError once the client is gone
            raise _ClientGone from exc

    async def end(self) -> None:
        await self.flush()
        try:
            await self._send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError as exc:
            raise _ClientGone from exc


class FakeUpstream:
    """The fake LLM upstream: an ASGI app plus what it observed.

    Create one per test for isolated counters; ``app`` is a module-level instance. Counters are
    updated on the server's event loop; ``wait_for`` blocks a *different* thread until a condition
    holds (for a server running in a background thread), ``wait_for_async`` polls from a
    coroutine (for a server on the same loop).

    Serve it with a real server (uvicorn) to test disconnects, ``stall`` and broken bodies:
    in-process transports such as ``httpx.ASGITransport`` buffer the whole body, never report a
    client disconnect, and re-raise ``InjectedFailure`` in the caller.

    Attributes:
        requests: HTTP requests seen (every path, also rejected ones).
        request_log: the last ``log_size`` ``RecordedRequest`` objects, oldest first.
        streams_started: streaming responses whose head was sent.
        streams_completed: streams that ended their body normally (including ``truncate_after``
            and ``error_after`` streams).
        streams_in_progress: streams started and not yet over.
        aborts: ``InjectedFailure`` raised (``fail_after`` / ``cut_mid_event``).
        disconnects: ``Disconnect`` records, in the order noticed.
    """

    def __init__(self, *, log_size: int = 1000) -> None:
        self._changed = threading.Condition()
        self._log_size = log_size
        self.requests = 0
        self.request_log: deque[RecordedRequest] = deque(maxlen=log_size)
        self.streams_started = 0
        self.streams_completed = 0
        self.streams_in_progress = 0
        self.aborts = 0
        self.disconnects: list[Disconnect] = []

    # --- observations --------------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything observed, except ``streams_in_progress`` (streams still running)."""
        with self._changed:
            self.requests = 0
            self.request_log.clear()
            self.streams_started = 0
            self.streams_completed = 0
            self.aborts = 0
            self.disconnects.clear()
            self._changed.notify_all()

    @property
    def last_request(self) -> RecordedRequest | None:
        """The most recent request, ``None`` before the first."""
        return self.request_log[-1] if self.request_log else None

    @property
    def last_path(self) -> str | None:
        """The most recent request's path."""
        last = self.last_request
        return last.path if last else None

    @property
    def last_headers(self) -> dict[str, str] | None:
        """The most recent request's headers (lower-cased names)."""
        last = self.last_request
        return last.headers if last else None

    @property
    def last_body(self) -> bytes | None:
        """The most recent request's raw body."""
        last = self.last_request
        return last.body if last else None

    @property
    def last_json(self) -> dict[str, Any] | None:
        """The most recent request's parsed JSON body."""
        last = self.last_request
        return last.json if last else None

    def wait_for(self, predicate: Callable[[FakeUpstream], bool], timeout: float = 5.0) -> bool:
        """Block this thread until ``predicate(self)`` holds; return it (False on timeout)."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    async def wait_for_async(
        self, predicate: Callable[[FakeUpstream], bool], timeout: float = 5.0
    ) -> bool:
        """Poll ``predicate(self)`` from a coroutine; return it (False on timeout)."""
        deadline = time.monotonic() + timeout
        while not predicate(self):
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _update(self, change: Callable[[], None]) -> None:
        with self._changed:
            change()
            self._changed.notify_all()

    # --- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        arrived = time.monotonic()
        body = await _read_body(receive)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        header_map = {name.lower(): value for name, value in headers}
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        query = scope.get("query_string", b"").decode("latin-1")
        record = RecordedRequest(
            method=scope["method"],
            path=scope["path"],
            query=query,
            headers=header_map,
            body=body,
            json=parsed if isinstance(parsed, dict) else None,
        )

        def log() -> None:
            self.requests += 1
            self.request_log.append(record)

        self._update(log)

        fmt = ENDPOINTS.get(scope["path"])
        rejection: tuple[int, dict[str, Any]] | None = None
        knobs = Knobs()
        if fmt is None:
            rejection = 404, _openai_error("invalid_request_error", "Not found.", None)
        elif scope["method"] != "POST":
            rejection = 405, _error_body(fmt, 405, "Method not allowed; use POST.")
        else:
            try:
                knobs = Knobs.from_request(headers, parse_qsl(query, keep_blank_values=True))
            except ValueError as exc:
                rejection = 400, _error_body(fmt, 400, str(exc))
            else:
                if record.json is None:
                    rejection = 400, _error_body(fmt, 400, "The body must be a JSON object.")
        if rejection is not None or fmt is None or record.json is None:
            status, payload = rejection or (400, {})
            with contextlib.suppress(_ClientGone):
                await _send_json(send, status, payload)
            return

        stream = record.json.get("stream") is True
        version = header_map.get("anthropic-version", "2023-06-01")
        turn = _turn(fmt, record.json, knobs, version)
        watch = _DisconnectWatch(receive)
        progress = _Progress()

        def gone() -> None:
            now = time.monotonic()
            disconnect = Disconnect(scope["path"], stream, progress.events, now, now - arrived)
            self._update(lambda: self.disconnects.append(disconnect))

        try:
            if knobs.header_delay and await watch.sleep(knobs.header_delay):
                gone()
                return
            if knobs.status is not None:
                await _send_json(send, knobs.status, _error_body(fmt, knobs.status))
                return
            if not stream:
                if knobs.stall is not None:
                    await watch.wait()
                    gone()
                    return
                if knobs.delay and await watch.sleep(knobs.delay):
                    gone()
                    return
                await _send_json(send, 200, _JSON[fmt](turn), chunk=knobs.chunk)
                return
            await self._stream(send, watch, turn, knobs, progress)
        except _ClientGone:
            gone()
        finally:
            await watch.close()

    async def _stream(
        self, send: Send, watch: _DisconnectWatch, turn: _Turn, knobs: Knobs, progress: _Progress
    ) -> None:
        """Write the stream, counting events in ``progress``; ``_ClientGone`` if the client left."""
        newline = "\r\n" if knobs.crlf else "\n"
        encoded = [
            _encode(event, event_id=index + 1 if knobs.ids else None, newline=newline)
            for index, event in enumerate(_plan_events(turn, knobs))
        ]
        abort_at: int | None = knobs.fail_after
        cut = False
        if isinstance(knobs.cut_mid_event, bool):
            cut = knobs.cut_mid_event and abort_at is not None
        elif knobs.cut_mid_event is not None and (
            abort_at is None or knobs.cut_mid_event <= abort_at
        ):
            abort_at, cut = knobs.cut_mid_event, True

        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": _stream_headers(turn.fmt),
            }
        )

        def started() -> None:
            self.streams_started += 1
            self.streams_in_progress += 1

        def completed() -> None:
            self.streams_completed += 1

        def aborted() -> None:
            self.aborts += 1

        def stopped() -> None:
            self.streams_in_progress -= 1

        self._update(started)
        writer = _Writer(send, knobs.chunk)
        try:
            for index in range(len(encoded) + 1):
                if index == knobs.stall:
                    await writer.flush()
                    await watch.wait()
                    raise _ClientGone
                if index == abort_at:
                    await writer.flush()
                    if cut and index < len(encoded):
                        data = encoded[index]
                        await writer.write(data[: len(data) // 2])
                        await writer.flush()
                    self._update(aborted)
                    raise InjectedFailure(
                        f"fake upstream: injected failure after {index} events"
                        + (" (mid-event)" if cut else "")
                    )
                if index == len(encoded):
                    break
                wait = knobs.delay if index == 0 else knobs.pace
                if wait > 0:
                    await writer.flush()
                if await watch.sleep(wait):
                    raise _ClientGone
                await writer.write(encoded[index])
                progress.events = index + 1
            await writer.end()
            self._update(completed)
        finally:
            self._update(stopped)


def _stream_headers(fmt: Format) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
    ]
    if fmt in ("messages", "anthropic_text"):
        headers.append((b"request-id", REQUEST_ID.encode()))
    else:
        headers.append((b"x-request-id", REQUEST_ID.encode()))
    return headers


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(parts)


async def _send_json(
    send: Send, status: int, payload: Mapping[str, Any], *, chunk: int | None = None
) -> None:
    body = _dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", REQUEST_ID.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    writer = _Writer(send, chunk)
    await writer.write(body)
    await writer.end()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


app = FakeUpstream()
"""A shared instance, for ``uvicorn example_app.fake_upstream:app``."""


def main(argv: Sequence[str] | None = None) -> None:
    """Serve ``app`` with uvicorn: ``python -m example_app.fake_upstream --port 8001``."""
    parser = argparse.ArgumentParser(
        prog="python -m example_app.fake_upstream",
        description="A scripted fake LLM upstream (OpenAI and Anthropic formats).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    import uvicorn  # lazily: only needed to serve

    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
