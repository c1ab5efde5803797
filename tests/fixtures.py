"""Reusable upstream SSE streams: one assistant turn, rendered the way each upstream sends it.

A ``Scenario`` describes a turn abstractly (its blocks in order, how it stops, its usage, whether
it fails or is cut off); ``chat_stream`` renders it as an OpenAI Chat Completions upstream would
(``chat.completion.chunk`` events, ``data: [DONE]``), ``messages_stream`` as the Anthropic Messages
API would (named events, ``message_stop``). Both accept a ``Scenario`` or the name of one in
``CHAT_SCENARIOS`` / ``MESSAGES_SCENARIOS``; both return the exact upstream bytes.

Stop reasons are in the upstream's own vocabulary (``stop``/``tool_calls``… for Chat,
``end_turn``/``tool_use``… for Messages), so a scenario is written for one upstream format; the
format-neutral ones are listed in both registries with the matching reason.

Usage follows Anthropic's split (``UsageSpec.input_tokens`` excludes cache reads and writes); the
Chat rendering adds them back into ``prompt_tokens`` as OpenAI does (formats.md §6).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeAlias

__all__ = [
    "CHAT_ID",
    "CHAT_MODEL",
    "CHAT_SCENARIOS",
    "CREATED",
    "MESSAGES_ID",
    "MESSAGES_MODEL",
    "MESSAGES_SCENARIOS",
    "Block",
    "Refusal",
    "Scenario",
    "Text",
    "Thinking",
    "Tool",
    "ToolLayout",
    "UsageLayout",
    "UsageSpec",
    "chat_stream",
    "messages_stream",
]

CHAT_ID = "chatcmpl-9xQ2abc123"
CHAT_MODEL = "gpt-4o-2024-08-06"
CREATED = 1700000123
MESSAGES_ID = "msg_01XFDUDYJgAACzvnptvVoYEL"
MESSAGES_MODEL = "claude-sonnet-4-5-20250929"


@dataclass(frozen=True)
class Text:
    """Assistant text, streamed as these fragments."""

    chunks: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole text."""
        return "".join(self.chunks)


@dataclass(frozen=True)
class Thinking:
    """Reasoning text (Chat ``reasoning_content``, Messages ``thinking``) and its signature.

    The signature exists only in Messages streams; the Chat rendering drops it.
    """

    chunks: tuple[str, ...]
    signature: str | None = None

    @property
    def text(self) -> str:
        """The whole reasoning text."""
        return "".join(self.chunks)


@dataclass(frozen=True)
class Refusal:
    """OpenAI ``refusal`` text (rendered as ordinary text in a Messages stream)."""

    chunks: tuple[str, ...]

    @property
    def text(self) -> str:
        """The whole refusal text."""
        return "".join(self.chunks)


@dataclass(frozen=True)
class Tool:
    """A function/tool call: its id, its name and its JSON arguments as streamed fragments."""

    id: str
    name: str
    fragments: tuple[str, ...]

    @property
    def arguments(self) -> str:
        """The arguments as the client must see them: the fragments joined, ``"{}"`` if none."""
        return "".join(self.fragments) or "{}"

    @property
    def input(self) -> Any:
        """The parsed arguments."""
        return json.loads(self.arguments)


Block: TypeAlias = Text | Thinking | Refusal | Tool

ToolLayout = Literal[
    "sequential", "interleaved", "one_chunk", "late_name", "resent", "no_index", "legacy"
]
"""How a Chat upstream streams a run of consecutive tool calls:

- ``sequential``: each call's first delta (``id``, ``type``, ``name``, ``arguments: ""``), then
  its argument fragments, then the next call;
- ``interleaved``: first deltas and fragments of all calls round-robin;
- ``one_chunk``: every call complete (whole arguments) in one chunk;
- ``late_name``: the first delta of each call has ``id`` and a fragment but no ``name``, which
  comes with the second delta;
- ``resent``: every delta repeats ``id``, ``type`` and ``name``;
- ``no_index``: sequential, but no delta has an ``index`` (Ollama and others);
- ``legacy``: one deprecated ``function_call`` (no ``tool_calls``)."""

UsageLayout = Literal["chunk", "on_finish", "delta_totals", "repeated_delta"]
"""Where the upstream reports usage.

Chat: ``chunk`` = a ``choices: []`` chunk after the finish (``include_usage``), other chunks
carrying ``usage: null``; ``on_finish`` = on the finish chunk itself.
Messages: ``chunk`` = input and cache numbers in ``message_start``, ``output_tokens`` in
``message_delta`` (the classic shape); ``delta_totals`` = placeholder numbers in
``message_start``, every cumulative total in ``message_delta`` (recent API revisions);
``repeated_delta`` = two ``message_delta`` events, the first with an interim ``output_tokens``.
"""


@dataclass(frozen=True)
class UsageSpec:
    """Token usage of the turn, Anthropic style: ``input_tokens`` excludes the cache."""

    input_tokens: int
    output_tokens: int
    cache_read: int = 0
    cache_write: int = 0
    reasoning: int | None = None

    @property
    def prompt_tokens(self) -> int:
        """OpenAI's ``prompt_tokens``: input including cache reads and writes."""
        return self.input_tokens + self.cache_read + self.cache_write

    def chat(self) -> dict[str, Any]:
        """The usage object a Chat upstream sends."""
        out: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.output_tokens,
            "total_tokens": self.prompt_tokens + self.output_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cache_read, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": self.reasoning or 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        if self.cache_write:
            out["prompt_tokens_details"]["cache_write_tokens"] = self.cache_write
        return out

    def messages_input(self) -> dict[str, int]:
        """The input side of a Messages usage object."""
        return {
            "input_tokens": self.input_tokens,
            "cache_creation_input_tokens": self.cache_write,
            "cache_read_input_tokens": self.cache_read,
        }


DEFAULT_USAGE = UsageSpec(input_tokens=25, output_tokens=17)


@dataclass(frozen=True)
class Scenario:
    """One assistant turn as an upstream streams it.

    Fields:
        name: registry key (also the pytest id).
        blocks: the turn's output in order.
        stop: the upstream's finish/stop reason; ``None``: the upstream never says (truncated,
            or failed when ``error`` is set).
        stop_sequence: the matched stop sequence (Messages ``stop_sequence`` stops).
        usage: reported usage, ``None`` for none (Chat without ``include_usage``).
        usage_layout: where usage is reported (see ``UsageLayout``).
        tool_layout: how a Chat upstream streams tool calls (see ``ToolLayout``).
        error: ``(type, message)`` of an in-band error sent after the blocks (the last block
            is left open in a Messages stream, as when Anthropic fails mid-block).
        terminator: send ``data: [DONE]`` / ``message_stop`` after the finish.
        chat_quirk: a Chat upstream's liberal shape: ``combined_finish`` puts the last delta
            and the finish reason in one chunk; ``empty_finish`` sends ``finish_reason: ""``
            instead of ``null`` on every other chunk; ``azure_preamble`` opens with Azure's
            ``prompt_filter_results`` chunk (empty ``id``/``model``, ``created: 0``, no choices).
    """

    name: str
    blocks: tuple[Block, ...]
    stop: str | None
    stop_sequence: str | None = None
    usage: UsageSpec | None = DEFAULT_USAGE
    usage_layout: UsageLayout = "chunk"
    tool_layout: ToolLayout = "sequential"
    error: tuple[str, str] | None = None
    terminator: bool = True
    chat_quirk: Literal["combined_finish", "empty_finish", "azure_preamble"] | None = None

    @property
    def tools(self) -> tuple[Tool, ...]:
        """The tool calls, in order."""
        return tuple(b for b in self.blocks if isinstance(b, Tool))

    @property
    def ends_normally(self) -> bool:
        """Whether the upstream said how the turn ended (a finish, and no error)."""
        return self.stop is not None and self.error is None


# -- rendering: Chat ----------------------------------------------------------------------------


def _data(payload: Any) -> bytes:
    return (
        b"data: "
        + json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        + b"\n\n"
    )


def _named(event: str, payload: Any) -> bytes:
    return b"event: " + event.encode() + b"\n" + _data(payload)


def chat_stream(scenario: Scenario | str) -> bytes:
    """The Chat Completions upstream bytes for ``scenario`` (a ``Scenario`` or a registry name)."""
    s = CHAT_SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    usage_nulls = s.usage is not None and s.usage_layout == "chunk"

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
        obj: dict[str, Any] = {
            "id": CHAT_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": CHAT_MODEL,
            "system_fingerprint": "fp_5e9b1c2d3a",
            "choices": []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage_nulls:
            obj["usage"] = None
        obj.update(extra)
        return _data(obj)

    deltas: list[dict[str, Any]] = [{"role": "assistant", "content": "", "refusal": None}]
    blocks = list(s.blocks)
    i = 0
    next_index = 0
    while i < len(blocks):
        block = blocks[i]
        if isinstance(block, Text):
            deltas.extend({"content": c} for c in block.chunks)
        elif isinstance(block, Thinking):
            deltas.extend({"reasoning_content": c} for c in block.chunks)
        elif isinstance(block, Refusal):
            deltas.extend({"refusal": c} for c in block.chunks)
        else:
            run: list[Tool] = []
            while i < len(blocks) and isinstance(blocks[i], Tool):
                tool = blocks[i]
                assert isinstance(tool, Tool)
                run.append(tool)
                i += 1
            deltas.extend(_chat_tools(run, next_index, s.tool_layout))
            next_index += len(run)
            continue
        i += 1

    # Some providers send finish_reason "" instead of null until the end.
    pending = "" if s.chat_quirk == "empty_finish" else None
    finish_usage = s.usage is not None and s.usage_layout == "on_finish"
    combined = s.chat_quirk == "combined_finish" and s.ends_normally
    out = [chunk(d, pending) for d in (deltas[:-1] if combined else deltas)]
    if s.chat_quirk == "azure_preamble":
        filters = {"hate": {"filtered": False, "severity": "safe"}}
        preamble = {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": filters}],
        }
        out.insert(0, _data(preamble))
    if s.error is not None:
        type_, message = s.error
        error = {"message": message, "type": type_, "param": None, "code": type_}
        out.append(_data({"error": error}))
        return b"".join(out)
    if s.stop is None:
        return b"".join(out)
    extra = {"usage": s.usage.chat()} if finish_usage and s.usage is not None else {}
    # The last delta and the finish reason in one chunk (litellm's _CombinedChunkSplitter).
    out.append(chunk(deltas[-1] if combined else {}, s.stop, **extra))
    if s.usage is not None and not finish_usage:
        out.append(chunk(None, usage=s.usage.chat()))
    if s.terminator:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def _chat_tools(run: list[Tool], first: int, layout: ToolLayout) -> list[dict[str, Any]]:
    """The deltas of a run of consecutive tool calls, laid out as ``layout`` says."""

    def start(k: int, tool: Tool, arguments: str = "") -> dict[str, Any]:
        return {
            "index": first + k,
            "id": tool.id,
            "type": "function",
            "function": {"name": tool.name, "arguments": arguments},
        }

    def frag(k: int, arguments: str) -> dict[str, Any]:
        return {"index": first + k, "function": {"arguments": arguments}}

    def one(call: dict[str, Any]) -> dict[str, Any]:
        return {"tool_calls": [call]}

    if layout == "legacy":
        assert len(run) == 1, "the legacy function_call form has one call"
        tool = run[0]
        out = [{"function_call": {"name": tool.name, "arguments": ""}}]
        out.extend({"function_call": {"arguments": f}} for f in tool.fragments)
        return out
    if layout == "one_chunk":
        return [{"tool_calls": [start(k, t, "".join(t.fragments)) for k, t in enumerate(run)]}]
    if layout == "interleaved":
        streams = [[start(k, t)] + [frag(k, f) for f in t.fragments] for k, t in enumerate(run)]
        out = []
        for step in range(max(len(x) for x in streams)):
            out.extend(one(x[step]) for x in streams if step < len(x))
        return out
    out = []
    for k, tool in enumerate(run):
        if layout == "sequential":
            out.append(one(start(k, tool)))
            out.extend(one(frag(k, f)) for f in tool.fragments)
        elif layout == "no_index":
            head = start(k, tool)
            del head["index"]
            out.append(one(head))
            out.extend(one({"function": {"arguments": f}}) for f in tool.fragments)
        elif layout == "resent":
            out.append(one(start(k, tool)))
            out.extend(one(start(k, tool, f)) for f in tool.fragments)
        else:  # late_name: the name comes with the second delta
            assert len(tool.fragments) >= 2, "late_name needs two fragments"
            head = {
                "index": first + k,
                "id": tool.id,
                "type": "function",
                "function": {"arguments": tool.fragments[0]},
            }
            second = {
                "index": first + k,
                "function": {"name": tool.name, "arguments": tool.fragments[1]},
            }
            out.extend([one(head), one(second)])
            out.extend(one(frag(k, f)) for f in tool.fragments[2:])
    return out


# -- rendering: Messages ------------------------------------------------------------------------


def messages_stream(scenario: Scenario | str) -> bytes:
    """The Anthropic Messages upstream bytes for ``scenario`` (a ``Scenario`` or a name)."""
    s = MESSAGES_SCENARIOS[scenario] if isinstance(scenario, str) else scenario
    usage = s.usage if s.usage is not None else UsageSpec(0, 0)
    if s.usage_layout == "delta_totals":
        start_usage: dict[str, Any] = {
            "input_tokens": 1,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        }
    else:
        start_usage = usage.messages_input()
    start_usage["output_tokens"] = 1
    message: dict[str, Any] = {
        "id": MESSAGES_ID,
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": MESSAGES_MODEL,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    out = [
        _named("message_start", {"type": "message_start", "message": message}),
        _named("ping", {"type": "ping"}),
    ]
    cut = s.error is not None or s.stop is None
    for index, block in enumerate(s.blocks):
        last = index == len(s.blocks) - 1
        out.extend(_messages_block(index, block, stop=not (cut and last)))
    if s.error is not None:
        type_, msg = s.error
        out.append(_named("error", {"type": "error", "error": {"type": type_, "message": msg}}))
        return b"".join(out)
    if s.stop is None:
        return b"".join(out)
    delta = {"stop_reason": s.stop, "stop_sequence": s.stop_sequence}
    final_usage: dict[str, Any] = {"output_tokens": usage.output_tokens}
    if s.usage_layout == "delta_totals":
        final_usage.update(usage.messages_input())
    if s.usage_layout == "repeated_delta":
        interim = {"stop_reason": None, "stop_sequence": None}
        out.append(
            _named(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": interim,
                    "usage": {"output_tokens": max(1, usage.output_tokens // 2)},
                },
            )
        )
    out.append(
        _named("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    )
    if s.terminator:
        out.append(_named("message_stop", {"type": "message_stop"}))
    return b"".join(out)


def _messages_block(index: int, block: Block, *, stop: bool) -> list[bytes]:
    def start(content_block: dict[str, Any]) -> bytes:
        return _named(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": content_block},
        )

    def delta(d: dict[str, Any]) -> bytes:
        return _named(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}
        )

    if isinstance(block, Text | Refusal):
        out = [start({"type": "text", "text": ""})]
        out.extend(delta({"type": "text_delta", "text": c}) for c in block.chunks)
    elif isinstance(block, Thinking):
        out = [start({"type": "thinking", "thinking": "", "signature": ""})]
        out.extend(delta({"type": "thinking_delta", "thinking": c}) for c in block.chunks)
        if block.signature is not None:
            out.append(delta({"type": "signature_delta", "signature": block.signature}))
    else:
        out = [start({"type": "tool_use", "id": block.id, "name": block.name, "input": {}})]
        # Anthropic opens every tool block with an empty fragment.
        out.extend(
            delta({"type": "input_json_delta", "partial_json": f}) for f in ("", *block.fragments)
        )
    if stop:
        out.append(_named("content_block_stop", {"type": "content_block_stop", "index": index}))
    return out


# -- scenarios ----------------------------------------------------------------------------------

HELLO = Text(("Hel", "lo, ", "world", "!"))
UNICODE = Text(
    (
        "Line one\nline two\r\n",
        '\n\ttabbed "quoted" \\ back',
        "slash\n日本語のテキスト、",
        "中文，한국어 ",  # noqa: RUF001
        "🎉👍",
        "🏽 family: 👨‍👩‍👧",
        " sep:\u2028after\u2029para \x85nel \x00nul \x1e\x0b\x0c",
        " é" + "\u0301" + " end",
    )
)
# Text that looks like SSE framing and the formats' end markers: only its JSON encoding may reach
# the wire, and nothing may take it for the real thing.
MARKERS = Text(
    (
        "data: [DONE]\n\n",
        'event: error\ndata: {"error": 1}\n\n',
        'event: message_stop\n"type":"message_stop"',
        ' "finish_reason":"stop" : comment\r\r',
    )
)
SIGNATURE = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDYvL0i9ZmIhDzlsEiMLcQvBp0eJSI/4x+ktUDx6X8T5pX=="
THOUGHT = Thinking(("Let me think", " about the\nweather in ", "Oslo… 🤔"), SIGNATURE)
THOUGHT_UNSIGNED = replace(THOUGHT, signature=None)
WEATHER = Tool("call_Wx1a", "get_weather", ('{"city":', ' "Oslo",', ' "unit": "c"}'))
TIME = Tool("call_Tm2b", "get_time", ('{"tz"', ': "Europe/', 'Oslo"}'))
SEARCH = Tool("call_Sr3c", "search_docs", ('{"query": "ünïcode ', '日本", "k": [1, ', "2, 3]}"))
TOOLU_WEATHER = replace(WEATHER, id="toolu_01A09q90qw90lq917835lq9")
TOOLU_TIME = replace(TIME, id="toolu_01B18r81rx81mr826724mr8")
TOOLU_SEARCH = replace(SEARCH, id="toolu_01C27s72sy72ns735613ns7")
REFUSAL = Refusal(("I'm sorry, ", "I can't help ", "with that."))
CACHE_USAGE = UsageSpec(input_tokens=12, output_tokens=345, cache_read=2048, cache_write=512)
CACHE_READ_ONLY = UsageSpec(input_tokens=40, output_tokens=9, cache_read=1000)


def _registry(*scenarios: Scenario) -> dict[str, Scenario]:
    out = {s.name: s for s in scenarios}
    assert len(out) == len(scenarios), "duplicate scenario name"
    return out


CHAT_SCENARIOS: dict[str, Scenario] = _registry(
    Scenario("text", (HELLO,), "stop"),
    Scenario("unicode", (UNICODE,), "stop"),
    Scenario("markers", (MARKERS,), "stop"),
    Scenario("markers_truncated", (MARKERS,), None),
    Scenario("thinking", (THOUGHT_UNSIGNED, HELLO), "stop"),
    Scenario("tool", (WEATHER,), "tool_calls"),
    Scenario("tools_sequential", (HELLO, WEATHER, TIME, SEARCH), "tool_calls"),
    Scenario("tools_interleaved", (WEATHER, TIME, SEARCH), "tool_calls", tool_layout="interleaved"),
    Scenario("tools_one_chunk", (WEATHER, TIME, SEARCH), "tool_calls", tool_layout="one_chunk"),
    Scenario("tools_late_name", (WEATHER, TIME), "tool_calls", tool_layout="late_name"),
    Scenario("tools_resent", (WEATHER, TIME), "tool_calls", tool_layout="resent"),
    Scenario("tools_no_index", (WEATHER, TIME, SEARCH), "tool_calls", tool_layout="no_index"),
    Scenario("azure_preamble", (HELLO,), "stop", chat_quirk="azure_preamble"),
    Scenario("tool_then_stop", (HELLO, WEATHER), "stop"),
    Scenario("combined_finish", (HELLO,), "stop", chat_quirk="combined_finish"),
    Scenario(
        "combined_finish_tools",
        (WEATHER, TIME),
        "tool_calls",
        tool_layout="interleaved",
        chat_quirk="combined_finish",
    ),
    Scenario("empty_finish", (THOUGHT_UNSIGNED, HELLO), "stop", chat_quirk="empty_finish"),
    Scenario("refusal", (REFUSAL,), "content_filter"),
    Scenario("refusal_stop", (REFUSAL,), "stop"),
    Scenario("text_then_refusal", (HELLO, REFUSAL, HELLO), "stop"),
    Scenario("finish_length", (HELLO,), "length"),
    Scenario("finish_content_filter", (HELLO,), "content_filter"),
    Scenario("finish_function_call", (WEATHER,), "function_call", tool_layout="legacy"),
    Scenario("usage_cache", (HELLO,), "stop", usage=CACHE_USAGE),
    Scenario("usage_cache_read", (HELLO,), "stop", usage=CACHE_READ_ONLY),
    Scenario("usage_on_finish", (HELLO,), "stop", usage=CACHE_USAGE, usage_layout="on_finish"),
    Scenario("usage_none", (HELLO,), "stop", usage=None),
    Scenario(
        "error", (HELLO,), None, error=("rate_limit_exceeded", "Rate limit reached for gpt-4o")
    ),
    Scenario("error_server", (WEATHER,), None, error=("server_error", "The server had an error")),
    Scenario("markers_error", (MARKERS,), None, error=("server_error", "The server had an error")),
    Scenario("truncated", (HELLO,), None),
    Scenario("truncated_tools", (HELLO, WEATHER), None),
    Scenario("no_terminator", (HELLO,), "stop", usage=CACHE_USAGE, terminator=False),
    Scenario("no_terminator_no_usage", (HELLO,), "length", usage=None, terminator=False),
)
"""Chat upstream scenarios, by name."""

MESSAGES_SCENARIOS: dict[str, Scenario] = _registry(
    Scenario("text", (HELLO,), "end_turn"),
    Scenario("unicode", (UNICODE,), "end_turn"),
    Scenario("markers", (MARKERS,), "end_turn"),
    Scenario("markers_truncated", (MARKERS,), None),
    Scenario("thinking", (THOUGHT, HELLO), "end_turn"),
    Scenario(
        "thinking_twice", (THOUGHT, replace(THOUGHT, signature="c2ln" * 8), HELLO), "end_turn"
    ),
    Scenario("tool", (TOOLU_WEATHER,), "tool_use"),
    Scenario(
        "tools_parallel", (THOUGHT, HELLO, TOOLU_WEATHER, TOOLU_TIME, TOOLU_SEARCH), "tool_use"
    ),
    Scenario("tool_no_args", (HELLO, replace(TOOLU_TIME, fragments=())), "tool_use"),
    Scenario("stop_end_turn", (HELLO,), "end_turn"),
    Scenario("stop_sequence", (HELLO,), "stop_sequence", stop_sequence="\n\nHuman:"),
    Scenario("stop_max_tokens", (HELLO,), "max_tokens"),
    Scenario("stop_tool_use", (HELLO, TOOLU_WEATHER), "tool_use"),
    Scenario("stop_pause_turn", (HELLO,), "pause_turn"),
    Scenario("stop_refusal", (HELLO,), "refusal"),
    Scenario("stop_context_window", (HELLO,), "model_context_window_exceeded"),
    Scenario("usage_cache", (HELLO,), "end_turn", usage=CACHE_USAGE),
    Scenario(
        "usage_delta_totals", (HELLO,), "end_turn", usage=CACHE_USAGE, usage_layout="delta_totals"
    ),
    Scenario(
        "usage_repeated_delta",
        (HELLO,),
        "end_turn",
        usage=CACHE_USAGE,
        usage_layout="repeated_delta",
    ),
    Scenario("error", (HELLO,), None, error=("overloaded_error", "Overloaded")),
    Scenario("markers_error", (MARKERS,), None, error=("overloaded_error", "Overloaded")),
    Scenario(
        "error_in_tool", (HELLO, TOOLU_WEATHER), None, error=("api_error", "Internal server error")
    ),
    Scenario("truncated", (HELLO,), None),
    Scenario("truncated_thinking", (THOUGHT,), None),
    Scenario("no_terminator", (HELLO,), "end_turn", usage=CACHE_USAGE, terminator=False),
    Scenario("no_terminator_tool", (TOOLU_WEATHER,), "tool_use", terminator=False),
)
"""Messages upstream scenarios, by name."""
