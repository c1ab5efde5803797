"""Translation between ``openai-chat`` and ``anthropic-messages`` (formats.md §4.1, §4.2, §5-§9,
§11-§13), in all four directions (chat→messages, messages→chat and both identities).

Every scenario of ``tests/fixtures.py`` is run through ``StreamAdapter`` and its output is

- checked against the client format's valid-stream contract (§13) by an independent decoder;
- consumed by the official SDK (openai 3.52, anthropic 2.11) through an in-process mock
  transport, whose accumulated result must equal the source turn exactly;
- compared with the adapter's own final response (``result.response``, §11);
- shown to be independent of how the upstream bytes were split, and deterministic.

Expected values are derived from the scenario and the §5/§6 tables written out literally below,
never from the package's own mapping tables.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_sse_adapter import ServerSentEvent, SSEDecoder
from asgi_sse_adapter.adapter import StreamAdapter
from asgi_sse_adapter.parts import Usage, text_delta
from tests.fixtures import (
    CHAT_ID,
    CHAT_MODEL,
    CHAT_SCENARIOS,
    CREATED,
    MESSAGES_ID,
    MESSAGES_MODEL,
    MESSAGES_SCENARIOS,
    Refusal,
    Scenario,
    Text,
    Thinking,
    Tool,
    UsageLayout,
    UsageSpec,
    chat_stream,
    messages_stream,
)

CLOCK = 1700000000.0
FORMATS = {"chat": "openai-chat", "messages": "anthropic-messages"}
SCENARIOS = {"chat": CHAT_SCENARIOS, "messages": MESSAGES_SCENARIOS}

# formats.md §5, written out (not imported from the package).
MESSAGES_TO_CHAT = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
}
CHAT_TO_MESSAGES = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
CHAT_FINISH_REASONS = frozenset(CHAT_TO_MESSAGES)
MESSAGES_STOP_REASONS = frozenset(MESSAGES_TO_CHAT)
# OpenAI error types seen upstream → the Anthropic error type the client must get (§9.4).
OPENAI_TO_ANTHROPIC_ERROR = {"rate_limit_exceeded": "rate_limit_error", "server_error": "api_error"}
TRUNCATED = "truncated"


# -- cases ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One upstream format, one client format, one scenario."""

    source: str
    client: str
    scenario: Scenario

    @property
    def identity(self) -> bool:
        """Same format on both sides (passthrough)."""
        return self.source == self.client

    @property
    def id(self) -> str:
        """The pytest id."""
        return f"{self.source}->{self.client}:{self.scenario.name}"

    @property
    def model(self) -> str:
        """The upstream's model, which every client event must carry (§7)."""
        return CHAT_MODEL if self.source == "chat" else MESSAGES_MODEL

    def upstream(self) -> bytes:
        """The upstream bytes."""
        if self.source == "chat":
            return chat_stream(self.scenario)
        return messages_stream(self.scenario)

    @property
    def upstream_conforms(self) -> bool:
        """Whether the upstream bytes themselves satisfy the §13 contract of their format.

        Identity mode passes bytes through unchanged, so contract and SDK-equality checks on an
        identity output only apply to upstreams that were valid to begin with (resent ids, late
        names, no ``index``, the legacy ``function_call``, usage on the finish chunk, a tool call
        ending in ``stop``, ``finish_reason: ""``, Azure's preamble chunk, a missing terminator
        and a repeated ``message_delta`` are liberal input).
        """
        s = self.scenario
        if not s.terminator:
            return False
        if self.source == "messages":
            return s.usage_layout != "repeated_delta"  # §13: one message_delta
        return (
            s.tool_layout in ("sequential", "interleaved", "one_chunk")
            and (s.usage is None or s.usage_layout == "chunk")
            and not (s.stop == "stop" and s.tools)
            and s.chat_quirk not in ("empty_finish", "azure_preamble")
        )

    @property
    def checked(self) -> bool:
        """Whether the output must satisfy the contract and match the source in the SDK."""
        return not self.identity or self.upstream_conforms


CASES = [
    Case(source, client, scenario)
    for source in ("chat", "messages")
    for client in ("chat", "messages")
    for scenario in SCENARIOS[source].values()
]
CHECKED = [c for c in CASES if c.checked]
CHAT_CLIENT = [c for c in CHECKED if c.client == "chat"]
MESSAGES_CLIENT = [c for c in CHECKED if c.client == "messages"]


def _ids(cases: Iterable[Case]) -> list[str]:
    return [c.id for c in cases]


def counter_ids() -> Callable[[], str]:
    """A deterministic ``id_factory``: gen0001, gen0002…"""
    counter = itertools.count(1)
    return lambda: f"gen{next(counter):04d}"


def make_adapter(case: Case, *, include_usage: bool = False) -> StreamAdapter:
    """A deterministic adapter for ``case`` that also builds the final response."""
    return StreamAdapter(
        upstream_format=FORMATS[case.source],
        client_format=FORMATS[case.client],
        include_usage=include_usage,
        clock=lambda: CLOCK,
        id_factory=counter_ids(),
        collect_response=True,
    )


def run(
    case: Case, *, include_usage: bool = False, pieces: Iterable[bytes] | None = None
) -> tuple[bytes, StreamAdapter]:
    """Feed the upstream (whole, or as ``pieces``) and close: the client bytes and the adapter."""
    adapter = make_adapter(case, include_usage=include_usage)
    out = [adapter.feed(p) for p in (pieces if pieces is not None else [case.upstream()])]
    out.append(adapter.close())
    assert adapter.ended
    return b"".join(out), adapter


def split_at(data: bytes, points: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets."""
    cuts = [0, *sorted(set(points)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(cuts)]


def decode(out: bytes) -> list[ServerSentEvent]:
    """Decode client bytes with the package's WHATWG decoder; nothing may be left over."""
    decoder = SSEDecoder(max_event_size=None)
    events = decoder.feed(out)
    decoder.close()
    assert not decoder.truncated, "client stream ends inside an event"
    return events


# -- what the client must see -----------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """The turn as the client must accumulate it (client vocabulary)."""

    text: str | None
    refusal: str | None
    reasoning: str | None
    tools: tuple[tuple[str | None, str, Any], ...]
    """(call id, ``None`` if the adapter had to make one up; name; parsed arguments)."""
    blocks: tuple[dict[str, Any], ...]
    """The Messages ``content`` list (Messages clients)."""
    finish: str | None
    stop_sequence: str | None
    usage: UsageSpec | None
    error_type: str | None
    error_message: str | None
    """Exact message; for a truncated stream only a substring."""


def want(case: Case, *, include_usage: bool = False) -> Want:
    """The expected client view of ``case``, from the scenario and the literal §5/§6 tables."""
    s = case.scenario
    chat_to_chat = case.source == "chat" and case.client == "chat"
    # Refusals stay refusals only for Chat clients of a Chat upstream; elsewhere they are text.
    texts = [
        b.text
        for b in s.blocks
        if isinstance(b, Text) or (isinstance(b, Refusal) and not chat_to_chat)
    ]
    refusals = [b.text for b in s.blocks if isinstance(b, Refusal)] if chat_to_chat else []
    thoughts = [b.text for b in s.blocks if isinstance(b, Thinking)]
    legacy = s.tool_layout == "legacy" and case.source == "chat"
    tools = tuple((None if legacy else t.id, t.name, t.input) for t in s.tools)

    blocks: list[dict[str, Any]] = []
    for b in s.blocks:
        if isinstance(b, Text | Refusal):
            if case.source == "chat" and blocks and blocks[-1]["type"] == "text":
                blocks[-1] = {"type": "text", "text": blocks[-1]["text"] + b.text}
            else:
                blocks.append({"type": "text", "text": b.text})
        elif isinstance(b, Thinking):
            blocks.append({"type": "thinking", "thinking": b.text, "signature": b.signature or ""})
        else:
            tool_id = None if legacy else b.id
            blocks.append({"type": "tool_use", "id": tool_id, "name": b.name, "input": b.input})

    finish: str | None = None
    if s.stop is not None and s.error is None:
        if case.client == case.source:
            finish = s.stop
        elif case.client == "chat":
            finish = MESSAGES_TO_CHAT[s.stop]
        else:
            finish = CHAT_TO_MESSAGES[s.stop]
            only_refusal = bool(s.blocks) and all(isinstance(b, Refusal) for b in s.blocks)
            if s.stop == "stop" and s.tools:
                finish = "tool_use"  # a tool call ending in a plain stop is a tool_use turn
            elif s.stop == "stop" and only_refusal:
                finish = "refusal"  # §4.2 row 8
    stop_sequence = s.stop_sequence if case.client == "messages" else None

    if case.client == "chat":
        usage = s.usage if (case.identity or include_usage) else None
    else:
        usage = s.usage if s.usage is not None else UsageSpec(0, 0)

    error_type = error_message = None
    if s.error is not None:
        error_type, error_message = s.error
        if case.source == "chat" and case.client == "messages":
            error_type = OPENAI_TO_ANTHROPIC_ERROR[error_type]
    elif s.stop is None:
        error_type, error_message = "api_error", TRUNCATED
    return Want(
        text="".join(texts) if texts else None,
        refusal="".join(refusals) if refusals else None,
        reasoning="".join(thoughts) if thoughts else None,
        tools=tools,
        blocks=tuple(blocks),
        finish=finish,
        stop_sequence=stop_sequence,
        usage=usage,
        error_type=error_type,
        error_message=error_message,
    )


# -- §13 contract checkers --------------------------------------------------------------------

CHAT_ERROR_KEYS = {"message", "type", "param", "code"}


def check_chat_contract(out: bytes, *, usage_allowed: bool) -> list[dict[str, Any]]:
    """Assert every §13 Chat rule on ``out``; return its chunks (without the error tail).

    ``usage_allowed``: the client asked for usage (``stream_options.include_usage``).
    """
    assert b"\r" not in out, "the adapter writes LF line endings"
    events = decode(out)
    assert events, "empty client stream"
    for ev in events:
        assert ev.id is None, "no id: lines"
        assert ev.retry is None, "no retry: lines"
        assert "\n" not in ev.data, "data is one line"
    assert events[-1].data == "[DONE]", "the stream ends with data: [DONE]"
    assert sum(ev.data == "[DONE]" for ev in events) == 1, "exactly one [DONE]"
    body = [json.loads(ev.data) for ev in events[:-1]]
    for obj in body:
        assert isinstance(obj, dict)
    error = body[-1] if body and "error" in body[-1] else None
    if error is not None:
        body.pop()
        assert set(error) == {"error"}
        assert set(error["error"]) == CHAT_ERROR_KEYS
        assert isinstance(error["error"]["message"], str)
        assert error["error"]["message"]
        assert isinstance(error["error"]["type"], str)
    for ev, obj in zip(events, body, strict=False):
        assert ev.event is None, "no event: lines outside the error tail"
        assert "error" not in obj, "an error object only in the tail"

    if not body:
        assert error is not None, "a stream with no chunk must be an error tail"
        return body
    first = body[0]
    assert isinstance(first["id"], str)
    assert first["id"].startswith("chatcmpl-")
    assert len(first["id"]) > len("chatcmpl-")
    assert isinstance(first["created"], int)
    assert not isinstance(first["created"], bool)
    assert isinstance(first["model"], str)
    assert first["model"]
    roles: dict[int, int] = {}
    finished: dict[int, str] = {}
    tools: dict[int, dict[int, str]] = {}
    for position, chunk in enumerate(body):
        assert chunk["object"] == "chat.completion.chunk"
        for key in ("id", "created", "model"):
            assert chunk[key] == first[key], f"{key} changes mid-stream"
        choices = chunk["choices"]
        assert isinstance(choices, list)
        if not choices:
            assert usage_allowed, "usage chunk although the client did not ask for usage"
            assert position == len(body) - 1, "the usage chunk is the last chunk"
            assert error is None
            usage = chunk["usage"]
            for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
                assert isinstance(usage[key], int)
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
            continue
        assert chunk.get("usage") is None, "usage only on the usage chunk"
        if position == 0:
            assert choices[0]["index"] == 0
            assert choices[0]["delta"].get("role") == "assistant", "role in the first chunk"
        for choice in choices:
            index = choice["index"]
            assert isinstance(index, int)
            delta = choice["delta"]
            assert isinstance(delta, dict)
            assert index not in finished, "nothing for a choice after its finish chunk"
            assert not (finished and len(finished) == len(roles)), "only usage after finishes"
            if index not in roles:
                assert index == len(roles), "choice indexes appear in ascending order"
                assert delta.get("role") == "assistant", "role in a choice's first chunk"
                roles[index] = 1
            else:
                assert "role" not in delta, "role exactly once per choice"
            for call in delta.get("tool_calls") or []:
                calls = tools.setdefault(index, {})
                t = call["index"]
                assert isinstance(t, int)
                assert not isinstance(t, bool)
                fn = call.get("function")
                assert isinstance(fn, dict), "every tool delta has a function object"
                assert isinstance(fn.get("arguments"), str), "every tool delta has arguments"
                if t not in calls:
                    assert t == len(calls), "tool index dense from 0, in order"
                    assert isinstance(call.get("id"), str)
                    assert call["id"]
                    assert call.get("type") == "function"
                    assert isinstance(fn.get("name"), str)
                    assert fn["name"]
                    calls[t] = ""
                else:
                    assert "id" not in call, "id only in a call's first delta"
                    assert "type" not in call, "type only in a call's first delta"
                    assert "name" not in fn, "name only in a call's first delta"
                calls[t] += fn["arguments"]
            reason = choice["finish_reason"]
            if reason is not None:
                assert reason in CHAT_FINISH_REASONS, f"undocumented finish_reason {reason!r}"
                finished[index] = reason
    if error is None:
        assert set(finished) == set(roles), "exactly one finish chunk per choice"
        for calls in tools.values():
            for arguments in calls.values():
                json.loads(arguments)  # concatenated arguments are valid JSON
    return body


MESSAGES_EVENTS = {
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
}
DELTAS_FOR = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "redacted_thinking": set(),
}
USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)


def check_messages_contract(out: bytes, *, full_usage: bool = True) -> list[dict[str, Any]]:
    """Assert every §13 Messages rule on ``out``; return its events' JSON objects.

    ``full_usage``: ``message_delta`` must carry the input and cache totals too (what the adapter
    writes; Anthropic itself long sent only ``output_tokens``, which identity passes through).
    """
    assert b"\r" not in out, "the adapter writes LF line endings"
    events = decode(out)
    assert events, "empty client stream"
    objs: list[dict[str, Any]] = []
    for ev in events:
        assert ev.event in MESSAGES_EVENTS, f"undocumented event {ev.event!r}"
        assert ev.id is None
        assert ev.retry is None
        assert "\n" not in ev.data, "data is one line"
        obj = json.loads(ev.data)  # also: no [DONE]
        assert isinstance(obj, dict)
        assert obj["type"] == ev.event, "event name equals the JSON type"
        objs.append(obj)

    start = objs[0]
    assert start["type"] == "message_start", "message_start first"
    assert sum(o["type"] == "message_start" for o in objs) == 1, "exactly one message_start"
    message = start["message"]
    assert message["content"] == []
    assert message["type"] == "message"
    assert message["role"] == "assistant"
    assert isinstance(message["id"], str)
    assert message["id"].startswith("msg_")
    assert len(message["id"]) > len("msg_")
    assert isinstance(message["model"], str)
    assert message["model"]
    assert message["stop_reason"] is None
    for key in USAGE_KEYS:
        assert isinstance(message["usage"][key], int), f"message_start usage lacks {key}"

    failed = objs[-1]["type"] == "error"
    if failed:
        err = objs[-1]
        assert set(err) == {"type", "error"}
        assert isinstance(err["error"]["type"], str)
        assert err["error"]["type"]
        assert isinstance(err["error"]["message"], str)
        assert err["error"]["message"]
    else:
        assert objs[-1]["type"] == "message_stop", "message_stop last"
    assert sum(o["type"] == "error" for o in objs) == int(failed), "error only as the tail"

    next_index = 0
    open_block: dict[str, Any] | None = None
    signed = False
    message_deltas = 0
    for obj in objs[1:]:
        kind = obj["type"]
        if kind in ("ping", "error"):
            continue
        assert message_deltas == 0 or kind == "message_stop", "after message_delta: stop"
        if kind == "content_block_start":
            assert open_block is None, "never two blocks open"
            assert obj["index"] == next_index, "block indexes 0, 1, 2…"
            block = obj["content_block"]
            assert block["type"] in DELTAS_FOR
            if block["type"] == "tool_use":
                assert block["input"] == {}, "tool blocks start with input {}"
                assert isinstance(block["id"], str)
                assert block["id"]
                assert isinstance(block["name"], str)
                assert block["name"]
            elif block["type"] == "text":
                assert block["text"] == ""
            elif block["type"] == "thinking":
                assert block["thinking"] == ""
            open_block = block
            signed = False
        elif kind == "content_block_delta":
            assert open_block is not None, "delta for a block that is not open"
            assert obj["index"] == next_index
            dtype = obj["delta"]["type"]
            assert dtype in DELTAS_FOR[open_block["type"]], "delta type matches the block"
            assert not signed, "signature_delta is the thinking block's last delta"
            signed = dtype == "signature_delta"
        elif kind == "content_block_stop":
            assert open_block is not None, "stop for a block that is not open"
            assert obj["index"] == next_index
            open_block = None
            next_index += 1
        elif kind == "message_delta":
            assert open_block is None, "message_delta after the last stop"
            message_deltas += 1
            assert obj["delta"]["stop_reason"] in MESSAGES_STOP_REASONS
            assert isinstance(obj["usage"]["output_tokens"], int)
            for key in USAGE_KEYS if full_usage else ():
                assert isinstance(obj["usage"][key], int), f"message_delta usage lacks {key}"
        else:
            assert kind == "message_stop"
            assert message_deltas == 1, "exactly one message_delta before message_stop"
    if failed:
        assert message_deltas == 0, "no message_delta in an error tail"
    return objs


def check_contract(case: Case, out: bytes, *, include_usage: bool) -> None:
    """The contract check for ``case``'s client format."""
    if case.client == "chat":
        check_chat_contract(out, usage_allowed=include_usage or case.identity)
    else:
        check_messages_contract(out, full_usage=not case.identity)


# -- the SDKs ---------------------------------------------------------------------------------


def _transport(out: bytes) -> httpx2.Client:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=out)

    return httpx2.Client(transport=httpx2.MockTransport(handler))


def openai_client(out: bytes) -> openai.OpenAI:
    """An OpenAI client whose every request streams ``out``."""
    return openai.OpenAI(api_key="x", base_url="http://test/v1", http_client=_transport(out))


def anthropic_client(out: bytes) -> anthropic.Anthropic:
    """An Anthropic client whose every request streams ``out``."""
    return anthropic.Anthropic(api_key="x", base_url="http://test", http_client=_transport(out))


@dataclass
class ChatSeen:
    """What user code iterating ``chat.completions.create(stream=True)`` accumulates."""

    text: str | None = None
    refusal: str | None = None
    reasoning: str | None = None
    tools: dict[int, list[str]] = field(default_factory=dict)
    finish: str | None = None
    usage: Any = None
    ids: set[str] = field(default_factory=set)


def _cat(a: str | None, b: str | None) -> str | None:
    return b if a is None else a + (b or "")


def consume_chat_chunks(out: bytes, *, include_usage: bool) -> ChatSeen:
    """Iterate the raw chunks as user code does; raises the SDK's error for an error tail."""
    seen = ChatSeen()
    stream = openai_client(out).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": include_usage},
    )
    for chunk in stream:
        seen.ids.add(chunk.id)
        if chunk.usage is not None:
            seen.usage = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                seen.text = _cat(seen.text, delta.content)
            if delta.refusal:
                seen.refusal = _cat(seen.refusal, delta.refusal)
            reasoning = (delta.model_extra or {}).get("reasoning_content")
            if reasoning:
                seen.reasoning = _cat(seen.reasoning, reasoning)
            for call in delta.tool_calls or []:
                if call.id is not None:
                    assert call.index not in seen.tools
                    seen.tools[call.index] = [call.id, "", ""]
                entry = seen.tools[call.index]
                assert call.function is not None
                if call.function.name:
                    entry[1] += call.function.name
                entry[2] += call.function.arguments or ""
            if choice.finish_reason is not None:
                assert seen.finish is None
                seen.finish = choice.finish_reason
    return seen


def final_completion(out: bytes) -> tuple[dict[str, Any], BaseException | None]:
    """``chat.completions.stream()`` + ``get_final_completion()``: the completion (from the
    exception for ``length``/``content_filter``, §12.2) and that exception."""
    client = openai_client(out)
    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
        try:
            return stream.get_final_completion().model_dump(), None
        except openai.LengthFinishReasonError as exc:
            return exc.completion.model_dump(), exc
        except openai.ContentFilterFinishReasonError as exc:
            if exc.completion is None:
                raise
            return exc.completion.model_dump(), exc


def final_message(out: bytes) -> dict[str, Any]:
    """``messages.stream()`` + ``get_final_message()``, as a dict."""
    client = anthropic_client(out)
    with client.messages.stream(
        model="claude", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
    ) as stream:
        for _ in stream:
            pass
        return stream.get_final_message().model_dump()


def assert_chat_usage(usage: Any, expected: UsageSpec | None) -> None:
    """An OpenAI usage (model or dict) equals ``expected`` (§6: no double counting)."""
    if expected is None:
        assert usage is None
        return
    assert usage is not None, "usage missing"
    u = usage if isinstance(usage, dict) else usage.model_dump()
    assert u["prompt_tokens"] == expected.prompt_tokens
    assert u["completion_tokens"] == expected.output_tokens
    assert u["total_tokens"] == expected.prompt_tokens + expected.output_tokens
    details = u.get("prompt_tokens_details") or {}
    assert (details.get("cached_tokens") or 0) == expected.cache_read
    assert (details.get("cache_write_tokens") or 0) == expected.cache_write


def assert_messages_usage(usage: dict[str, Any], expected: UsageSpec) -> None:
    """An Anthropic usage dict equals ``expected`` (input excludes the cache, §6)."""
    assert usage["input_tokens"] == expected.input_tokens
    assert usage["output_tokens"] == expected.output_tokens
    assert usage["cache_read_input_tokens"] == expected.cache_read
    assert usage["cache_creation_input_tokens"] == expected.cache_write


def assert_chat_error(exc: openai.APIError, w: Want) -> None:
    """The SDK's error carries our message (and the original type)."""
    assert w.error_message is not None
    if w.error_message == TRUNCATED:
        assert TRUNCATED in exc.message
    else:
        assert exc.message == w.error_message
    assert exc.type == w.error_type


def assert_messages_error(exc: anthropic.APIStatusError, w: Want) -> None:
    """The SDK's error carries our type and message."""
    assert w.error_message is not None
    assert exc.type == w.error_type
    assert isinstance(exc.body, dict)
    message = exc.body["error"]["message"]
    if w.error_message == TRUNCATED:
        assert TRUNCATED in message
    else:
        assert message == w.error_message


def _tool_id_ok(got: str, wanted: str | None, prefix: str) -> bool:
    """Passed through unchanged, or (``wanted is None``) made up with the client's prefix."""
    return got == wanted if wanted is not None else got.startswith(prefix) and got != prefix


# -- tests: contract ---------------------------------------------------------------------------


# Known adapter.py bugs (reported to the lead), by case id. Strict xfail: fixing one makes its
# test fail until the entry is removed.
ADAPTER_BUGS: dict[str, str] = {}


def with_known_bugs(cases: Iterable[Case]) -> list[Any]:
    """``cases`` as pytest params, known adapter bugs marked as strict xfails."""
    return [
        pytest.param(c, id=c.id, marks=pytest.mark.xfail(reason=ADAPTER_BUGS[c.id], strict=True))
        if c.id in ADAPTER_BUGS
        else pytest.param(c, id=c.id)
        for c in cases
    ]


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "include_usage"])
@pytest.mark.parametrize("case", with_known_bugs(CHECKED))
def test_contract(case: Case, include_usage: bool) -> None:
    """Every output in every scenario satisfies the client format's §13 contract."""
    out, _ = run(case, include_usage=include_usage)
    check_contract(case, out, include_usage=include_usage)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_outcome(case: Case) -> None:
    """``result.outcome``: complete after a finish (terminator or not), failed after an upstream
    error, truncated when the upstream stopped without saying how the turn ended."""
    _, adapter = run(case)
    result = adapter.result
    s = case.scenario
    if s.error is not None:
        assert result.outcome == "failed"
        assert result.error is not None
        assert result.error.message == s.error[1]
    elif s.stop is None:
        assert result.outcome == "truncated"
        assert result.error is not None
        assert TRUNCATED in result.error.message
    else:
        assert result.outcome == "complete"
        assert result.error is None


@pytest.mark.parametrize("case", with_known_bugs(c for c in CASES if c.identity))
def test_identity_passes_bytes_through(case: Case) -> None:
    """Same format on both sides: the upstream bytes go out unchanged, followed only by what the
    client still needs (the error tail of a truncated stream, ``[DONE]`` after a Chat error, the
    terminator a finished stream closed without)."""
    upstream = case.upstream()
    out, adapter = run(case)
    assert out.startswith(upstream)
    tail = out[len(upstream) :]
    s = case.scenario
    if s.error is not None:
        assert tail == (b"data: [DONE]\n\n" if case.client == "chat" else b"")
    elif s.stop is None:
        assert tail, "a truncated stream gets the error tail"
        assert adapter.result.outcome == "truncated"
    elif case.id.endswith(("no_terminator", "no_terminator_no_usage", "no_terminator_tool")):
        terminator = (
            b"data: [DONE]\n\n"
            if case.client == "chat"
            else b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
        )
        assert tail == terminator
        assert adapter.result.outcome == "complete"
    else:
        assert tail == b""


IDENTITY_CHAT_ERROR = [
    b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}'
    b"\n\n",
    b'data: {"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}\n\n',
    b"data: [DONE]\n\n",
]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"".join(IDENTITY_CHAT_ERROR)],
        IDENTITY_CHAT_ERROR,
        [IDENTITY_CHAT_ERROR[0], b"".join(IDENTITY_CHAT_ERROR[1:])],
        [b"".join(IDENTITY_CHAT_ERROR[:2]), IDENTITY_CHAT_ERROR[2]],
    ],
    ids=["whole", "one_per_read", "error_with_done", "done_alone"],
)
def test_identity_error_before_the_terminator(pieces: list[bytes]) -> None:
    """Identity: an upstream error event followed by the terminator (OpenAI ends errors with
    ``[DONE]``) is a failed stream, however the reads fall; the bytes go through unchanged."""
    adapter = StreamAdapter(upstream_format="openai-chat", client_format="openai-chat")
    out = b"".join(adapter.feed(p) for p in pieces) + adapter.close()
    assert out == b"".join(IDENTITY_CHAT_ERROR)
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.message == "overloaded"


@pytest.mark.parametrize(
    "between",
    [b"\n", b": keep-alive\n\n", b"\n: keep-alive\n\n", b"retry: 1000\n\n", b"id: 7\n\n"],
)
def test_identity_error_then_a_comment_or_blank_line_before_the_terminator(between: bytes) -> None:
    """A keep-alive comment or a stray blank line between the error event and ``[DONE]`` (in
    one read) does not make the failed stream look complete (``on_complete`` reports it)."""
    role, error, done = IDENTITY_CHAT_ERROR
    raw = role + error + between + done
    adapter = StreamAdapter(upstream_format="openai-chat", client_format="openai-chat")
    assert adapter.feed(raw) + adapter.close() == raw
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.message == "overloaded"


def test_passes_answers_for_whole_events_only() -> None:
    """``StreamAdapter.passes``: true only for identity without response collection, once
    running, with nothing pending and whole events within the bound; a chunk it passes counts as
    fed (the stream's ending is read from it), one it refuses leaves the adapter as it was."""
    chunk, done = IDENTITY_CHAT_ERROR[0], b"data: [DONE]\n\n"
    adapter = StreamAdapter(
        upstream_format="openai-chat", client_format="openai-chat", max_event_size=1000
    )
    assert not adapter.passes(chunk)  # the stream's first chunk is framed (its start, a BOM)
    assert adapter.feed(chunk) == chunk
    assert adapter.passes(chunk)
    assert not adapter.passes(chunk[:10])  # not a whole event
    assert adapter.feed(chunk[:10]) == b""
    assert not adapter.passes(chunk[10:])  # whole only with the pending bytes before it
    assert adapter.feed(chunk[10:]) == chunk
    assert not adapter.passes(b"data: " + b"x" * 2000 + b"\n\n")  # over the bound: feed fails it
    assert adapter.passes(done)
    assert adapter.close() == b""
    assert adapter.result.outcome == "complete"
    translating = StreamAdapter(upstream_format="openai-chat", client_format="anthropic-messages")
    collecting = StreamAdapter(
        upstream_format="openai-chat", client_format="openai-chat", collect_response=True
    )
    for other in (translating, collecting):
        other.feed(chunk)
        assert not other.passes(chunk)


@pytest.mark.parametrize(
    "client", ["openai-chat", "anthropic-messages"], ids=["identity", "translating"]
)
def test_max_event_size_must_be_a_positive_int_or_none(client: str) -> None:
    """0, a negative, NaN, a float, a string or a bool is refused at construction (NaN and
    floats used to be taken, NaN as "unbounded"; a string failed later with a TypeError)."""
    bad: Any
    for bad in (0, -1, float("nan"), 1.5, "1024", True):
        with pytest.raises(ValueError, match="max_event_size must be a positive int or None"):
            StreamAdapter(upstream_format="openai-chat", client_format=client, max_event_size=bad)
    for good in (1, 1 << 30, None):
        StreamAdapter(upstream_format="openai-chat", client_format=client, max_event_size=good)


def test_long_answer_is_held_compactly() -> None:
    """A long answer's text, reasoning and tool arguments are held as a few joined strings, not
    one object per delta, in every way they arrive (one delta at a time, runs, with the final
    response read mid-stream); the text is exactly the concatenation."""
    from asgi_sse_adapter.content import Content
    from asgi_sse_adapter.parts import (
        ArgumentsRun,
        ReasoningDelta,
        TextRun,
        ToolCallDelta,
        ToolCallStart,
    )

    texts = [f"t{i} " for i in range(3000)]
    for runs in (False, True):
        content = Content()
        for piece in texts:
            content.add(TextRun([piece]) if runs else text_delta(piece))
        (segment,) = content.choice(0).segments
        assert len(segment.fragments) <= 3000 // 256 + 256
        assert segment.text == "".join(texts)
    content = Content()
    for i, piece in enumerate(texts):
        content.add(ReasoningDelta(piece) if i < 1500 else text_delta(piece))
        if i % 500 == 0:
            assert content.choice(0).text_of("reasoning") == "".join(texts[: min(i + 1, 1500)])
    content.add(ToolCallStart(0, "call_1", "f"))
    for i in range(1000):
        content.add(ToolCallDelta(0, "a") if i % 2 else ArgumentsRun(0, ["b", "c"]))
    reasoning, text_segment, call = content.choice(0).segments
    for segment in (reasoning, text_segment, call):
        assert len(segment.fragments) <= 1500 // 256 + 256
    assert reasoning.text + text_segment.text == "".join(texts)
    assert call.text == "bca" * 500


# -- tests: the SDKs ----------------------------------------------------------------------------


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "include_usage"])
@pytest.mark.parametrize("case", CHAT_CLIENT, ids=_ids(CHAT_CLIENT))
def test_openai_sdk_chunks(case: Case, include_usage: bool) -> None:
    """openai's ``create(stream=True)`` chunks accumulate to exactly the source turn: text,
    reasoning_content, tool ids/names/arguments, finish reason and usage (or the SDK's
    ``APIError`` with our message for a failed or truncated stream)."""
    out, _ = run(case, include_usage=include_usage)
    w = want(case, include_usage=include_usage)
    if w.error_message is not None:
        with pytest.raises(openai.APIError) as info:
            consume_chat_chunks(out, include_usage=include_usage)
        assert_chat_error(info.value, w)
        return
    seen = consume_chat_chunks(out, include_usage=include_usage)
    assert len(seen.ids) == 1
    assert seen.text == w.text
    assert seen.refusal == w.refusal
    assert seen.reasoning == w.reasoning
    assert len(seen.tools) == len(w.tools)
    assert sorted(seen.tools) == list(range(len(w.tools)))
    for (tool_id, name, arguments), (want_id, want_name, want_input) in zip(
        (seen.tools[i] for i in sorted(seen.tools)), w.tools, strict=True
    ):
        assert _tool_id_ok(tool_id, want_id, "call_")
        assert name == want_name
        assert json.loads(arguments) == want_input
    assert seen.finish == w.finish
    assert_chat_usage(seen.usage, w.usage)


@pytest.mark.parametrize("include_usage", [False, True], ids=["no_usage", "include_usage"])
@pytest.mark.parametrize("case", CHAT_CLIENT, ids=_ids(CHAT_CLIENT))
def test_openai_sdk_final_completion(case: Case, include_usage: bool) -> None:
    """``chat.completions.stream().get_final_completion()`` equals the source turn and the
    adapter's own final response (``result.response``); ``length`` raises
    ``LengthFinishReasonError`` and ``content_filter`` ``ContentFilterFinishReasonError``
    (§12.2)."""
    out, adapter = run(case, include_usage=include_usage)
    w = want(case, include_usage=include_usage)
    if w.error_message is not None:
        with pytest.raises(openai.APIError) as info:
            final_completion(out)
        assert_chat_error(info.value, w)
        return
    final, exc = final_completion(out)
    if w.finish == "length":
        assert isinstance(exc, openai.LengthFinishReasonError)
    elif w.finish == "content_filter":
        assert isinstance(exc, openai.ContentFilterFinishReasonError)
    else:
        assert exc is None
    assert final["model"] == case.model
    (choice,) = final["choices"]
    message = choice["message"]
    assert message["role"] == "assistant"
    # A role chunk's ``content: ""`` makes the SDK's content "" for turns without text.
    assert (message["content"] or None) == w.text
    assert message["refusal"] == w.refusal
    assert message.get("reasoning_content") == w.reasoning
    calls = message["tool_calls"] or []
    assert len(calls) == len(w.tools)
    for call, (want_id, want_name, want_input) in zip(calls, w.tools, strict=True):
        assert _tool_id_ok(call["id"], want_id, "call_")
        assert call["type"] == "function"
        assert call["function"]["name"] == want_name
        assert json.loads(call["function"]["arguments"]) == want_input
    assert choice["finish_reason"] == w.finish
    assert_chat_usage(final["usage"], w.usage)

    # The adapter's final response (§11) agrees with what the SDK accumulated.
    response = adapter.result.response
    assert response is not None
    assert response["object"] == "chat.completion"
    assert response["id"] == final["id"]
    assert response["created"] == final["created"]
    assert response["model"] == final["model"]
    (rchoice,) = response["choices"]
    rmessage = rchoice["message"]
    assert (rmessage["content"] or None) == (message["content"] or None)
    assert rmessage["refusal"] == message["refusal"]
    assert rmessage.get("reasoning_content") == message.get("reasoning_content")
    rcalls = [
        (c["id"], c["type"], c["function"]["name"], c["function"]["arguments"])
        for c in rmessage.get("tool_calls") or []
    ]
    scalls = [
        (c["id"], c["type"], c["function"]["name"], c["function"]["arguments"]) for c in calls
    ]
    assert rcalls == scalls
    assert rchoice["finish_reason"] == choice["finish_reason"]
    if final["usage"] is not None:
        assert_chat_usage(response["usage"], w.usage)


@pytest.mark.parametrize("case", MESSAGES_CLIENT, ids=_ids(MESSAGES_CLIENT))
def test_anthropic_sdk_final_message(case: Case) -> None:
    """anthropic's ``messages.stream().get_final_message()`` equals the source turn (blocks in
    order, thinking text and signature, tool ids/names/inputs, stop reason and sequence, usage)
    and the adapter's own final response; a failed or truncated stream raises ``APIStatusError``
    with our error type and message."""
    out, adapter = run(case)
    w = want(case)
    if w.error_message is not None:
        with pytest.raises(anthropic.APIStatusError) as info:
            final_message(out)
        assert_messages_error(info.value, w)
        return
    final = final_message(out)
    assert final["role"] == "assistant"
    assert final["model"] == case.model
    blocks = final["content"]
    assert len(blocks) == len(w.blocks)
    for got, expected in zip(blocks, w.blocks, strict=True):
        assert got["type"] == expected["type"]
        if expected["type"] == "text":
            assert got["text"] == expected["text"]
        elif expected["type"] == "thinking":
            assert got["thinking"] == expected["thinking"]
            assert got["signature"] == expected["signature"]
        else:
            assert _tool_id_ok(got["id"], expected["id"], "toolu_")
            assert got["name"] == expected["name"]
            assert got["input"] == expected["input"]
    assert final["stop_reason"] == w.finish
    assert final["stop_sequence"] == w.stop_sequence
    assert w.usage is not None
    assert_messages_usage(final["usage"], w.usage)

    response = adapter.result.response
    assert response is not None
    assert response["type"] == "message"
    assert response["id"] == final["id"]
    assert response["model"] == final["model"]
    assert response["stop_reason"] == final["stop_reason"]
    assert response["stop_sequence"] == final["stop_sequence"]
    assert_messages_usage(response["usage"], w.usage)
    keys = {
        "text": ("text",),
        "thinking": ("thinking", "signature"),
        "tool_use": ("id", "name", "input"),
    }
    assert [b["type"] for b in response["content"]] == [b["type"] for b in blocks]
    for rblock, block in zip(response["content"], blocks, strict=True):
        for key in keys[block["type"]]:
            assert rblock[key] == block[key], key


@pytest.mark.parametrize("case", MESSAGES_CLIENT, ids=_ids(MESSAGES_CLIENT))
def test_anthropic_sdk_events(case: Case) -> None:
    """The anthropic SDK's raw event iterator sees the same text and tool arguments as the
    source, block by block (Claude Code builds ``input`` from ``input_json_delta`` only)."""
    out, _ = run(case)
    w = want(case)
    client = anthropic_client(out)
    texts: dict[int, str] = {}
    args: dict[int, str] = {}
    kinds: dict[int, str] = {}

    def consume() -> None:
        stream = client.messages.create(
            model="claude",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
        )
        for event in stream:
            if event.type == "content_block_start":
                kinds[event.index] = event.content_block.type
            elif event.type == "content_block_delta":
                if event.delta.type == "text_delta":
                    texts[event.index] = texts.get(event.index, "") + event.delta.text
                elif event.delta.type == "input_json_delta":
                    args[event.index] = args.get(event.index, "") + event.delta.partial_json

    if w.error_message is not None:
        with pytest.raises(anthropic.APIStatusError):
            consume()
        return
    consume()
    assert [kinds[i] for i in sorted(kinds)] == [b["type"] for b in w.blocks]
    for i, block in enumerate(w.blocks):
        if block["type"] == "text":
            assert texts[i] == block["text"]
        elif block["type"] == "tool_use":
            assert json.loads(args.get(i) or "{}") == block["input"]


# -- tests: specific rules ----------------------------------------------------------------------


def _chat_finish(out: bytes) -> str:
    chunks = check_chat_contract(out, usage_allowed=True)
    (reason,) = [
        c["choices"][0]["finish_reason"]
        for c in chunks
        if c["choices"] and c["choices"][0]["finish_reason"]
    ]
    assert isinstance(reason, str)
    return reason


def _messages_stop(out: bytes) -> tuple[str, str | None]:
    objs = check_messages_contract(out, full_usage=False)
    (delta,) = [o["delta"] for o in objs if o["type"] == "message_delta"]
    return delta["stop_reason"], delta["stop_sequence"]


@pytest.mark.parametrize(("stop", "finish"), sorted(MESSAGES_TO_CHAT.items()))
def test_stop_reason_messages_to_chat(stop: str, finish: str) -> None:
    """Every Messages ``stop_reason`` maps to its §5 Chat ``finish_reason``."""
    blocks: tuple[Text | Tool, ...] = (Text(("x",)),)
    if stop == "tool_use":
        blocks = (Tool("toolu_1", "f", ('{"a":', "1}")),)
    scenario = Scenario(f"stop_{stop}", blocks, stop)
    out, _ = run(Case("messages", "chat", scenario))
    assert _chat_finish(out) == finish


def test_a_tool_finish_without_a_tool_call_is_a_plain_stop() -> None:
    """``tool_use`` / ``tool_calls`` with no call in the stream (some servers say it for any
    turn of a request with tools): a client that branches on it would look for a call that is
    not there; it is the plain stop of the other side (the mirror of a stop after calls
    becoming ``tool_use``)."""
    text_only = (Text(("x",)),)
    out, _ = run(Case("messages", "chat", Scenario("tool_use_no_call", text_only, "tool_use")))
    assert _chat_finish(out) == "stop"
    out, _ = run(Case("chat", "messages", Scenario("tool_calls_no_call", text_only, "tool_calls")))
    assert _messages_stop(out) == ("end_turn", None)


@pytest.mark.parametrize(("finish", "stop"), sorted(CHAT_TO_MESSAGES.items()))
def test_stop_reason_chat_to_messages(finish: str, stop: str) -> None:
    """Every Chat ``finish_reason`` maps to its §5 Messages ``stop_reason`` (``stop_sequence`` is
    null: Chat does not say whether one fired)."""
    tool = Tool("call_1", "f", ('{"a":', "1}"))
    blocks: tuple[Text | Tool, ...] = (Text(("x",)),)
    if finish in ("tool_calls", "function_call"):
        blocks = (tool,)
    scenario = Scenario(f"finish_{finish}", blocks, finish)
    if finish == "function_call":
        scenario = replace(scenario, tool_layout="legacy")
    out, _ = run(Case("chat", "messages", scenario))
    assert _messages_stop(out) == (stop, None)


def test_stop_sequence_string_kept_for_messages_clients() -> None:
    """A Messages ``stop_sequence`` stop keeps its matched string through identity, and becomes
    a plain ``stop`` for Chat clients."""
    case = Case("messages", "messages", MESSAGES_SCENARIOS["stop_sequence"])
    out, _ = run(case)
    assert _messages_stop(out) == ("stop_sequence", "\n\nHuman:")
    out, _ = run(Case("messages", "chat", MESSAGES_SCENARIOS["stop_sequence"]))
    assert _chat_finish(out) == "stop"


@pytest.mark.parametrize("name", ["usage_cache", "usage_delta_totals", "usage_repeated_delta"])
def test_usage_chunk_only_when_requested(name: str) -> None:
    """Chat clients get the ``choices: []`` usage chunk only with ``include_usage``, as the last
    chunk before ``[DONE]``, with the §6 totals; without it no chunk carries usage."""
    scenario = MESSAGES_SCENARIOS[name]
    case = Case("messages", "chat", scenario)
    out, _ = run(case, include_usage=False)
    chunks = check_chat_contract(out, usage_allowed=False)
    assert all(c["choices"] and c.get("usage") is None for c in chunks)
    out, _ = run(case, include_usage=True)
    chunks = check_chat_contract(out, usage_allowed=True)
    assert chunks[-1]["choices"] == []
    assert out.endswith(b"data: [DONE]\n\n")
    assert_chat_usage(chunks[-1]["usage"], scenario.usage)


@pytest.mark.parametrize("layout", ["chunk", "delta_totals", "repeated_delta"])
def test_messages_usage_is_cumulative(layout: UsageLayout) -> None:
    """``message_delta`` usage values are cumulative totals that overwrite (never add to) the
    ``message_start`` values and earlier ``message_delta`` values; the interim
    ``message_start.output_tokens`` is never counted."""
    base = MESSAGES_SCENARIOS["usage_cache"]
    scenario = replace(base, usage_layout=layout)
    out, adapter = run(Case("messages", "chat", scenario), include_usage=True)
    chunks = check_chat_contract(out, usage_allowed=True)
    assert_chat_usage(chunks[-1]["usage"], base.usage)
    usage = adapter.result.usage
    assert usage is not None
    assert base.usage is not None
    assert usage.input_tokens == base.usage.prompt_tokens
    assert usage.output_tokens == base.usage.output_tokens
    assert usage.cache_read_tokens == base.usage.cache_read
    assert usage.cache_write_tokens == base.usage.cache_write


def test_chat_cache_tokens_not_double_counted() -> None:
    """Chat → Messages: ``input_tokens = prompt_tokens - cached - cache_write``, never
    ``prompt_tokens`` next to ``cache_read_input_tokens`` (§6)."""
    scenario = CHAT_SCENARIOS["usage_cache"]
    assert scenario.usage is not None
    out, _ = run(Case("chat", "messages", scenario))
    (delta,) = [o for o in check_messages_contract(out) if o["type"] == "message_delta"]
    assert delta["usage"]["input_tokens"] == 12
    assert delta["usage"]["cache_read_input_tokens"] == 2048
    assert delta["usage"]["cache_creation_input_tokens"] == 512
    assert delta["usage"]["output_tokens"] == 345


@pytest.mark.parametrize(
    "name",
    [
        "tools_sequential",
        "tools_interleaved",
        "tools_one_chunk",
        "tools_late_name",
        "tools_resent",
        "tools_no_index",
        "combined_finish_tools",
    ],
)
def test_chat_tool_layouts_become_sequential_blocks(name: str) -> None:
    """Chat → Messages: however the upstream streams parallel calls (sequential, interleaved
    fragments, all in one chunk, name arriving late, id/name resent, no ``index``), each becomes
    exactly one
    ``tool_use`` block with the unchanged call id, and its arguments arrive whole and in order
    through ``input_json_delta`` (never an empty fragment, never a duplicate)."""
    scenario = CHAT_SCENARIOS[name]
    out, _ = run(Case("chat", "messages", scenario))
    objs = check_messages_contract(out)
    starts = [o["content_block"] for o in objs if o["type"] == "content_block_start"]
    tool_blocks = [b for b in starts if b["type"] == "tool_use"]
    assert [(b["id"], b["name"]) for b in tool_blocks] == [(t.id, t.name) for t in scenario.tools]
    by_index: dict[int, str] = {}
    for o in objs:
        if o["type"] == "content_block_delta" and o["delta"]["type"] == "input_json_delta":
            assert o["delta"]["partial_json"], "no empty fragments"
            by_index[o["index"]] = by_index.get(o["index"], "") + o["delta"]["partial_json"]
    tool_indexes = [
        o["index"]
        for o in objs
        if o["type"] == "content_block_start" and o["content_block"]["type"] == "tool_use"
    ]
    assert [by_index[i] for i in tool_indexes] == ["".join(t.fragments) for t in scenario.tools]


def test_messages_tools_get_dense_chat_indexes() -> None:
    """Messages → Chat: tool blocks after thinking and text blocks get tool indexes 0, 1, 2 (not
    the Anthropic block index), each id/name once, arguments streamed as fragments."""
    scenario = MESSAGES_SCENARIOS["tools_parallel"]
    out, _ = run(Case("messages", "chat", scenario))
    chunks = check_chat_contract(out, usage_allowed=False)
    firsts = [
        (call["index"], call["id"], call["function"]["name"])
        for c in chunks
        for ch in c["choices"]
        for call in ch["delta"].get("tool_calls") or []
        if "id" in call
    ]
    assert firsts == [(i, t.id, t.name) for i, t in enumerate(scenario.tools)]
    fragments = [
        call["function"]["arguments"]
        for c in chunks
        for ch in c["choices"]
        for call in ch["delta"].get("tool_calls") or []
        if "id" not in call
    ]
    assert fragments == [f for t in scenario.tools for f in t.fragments]


def test_chat_error_tail_shape() -> None:
    """Messages → Chat error: ``data: {"error": {message, type, param, code}}`` then
    ``data: [DONE]`` (§9.1), nothing after, and the text so far was delivered."""
    out, _ = run(Case("messages", "chat", MESSAGES_SCENARIOS["error"]))
    events = decode(out)
    assert [e.data for e in events[-1:]] == ["[DONE]"]
    tail = json.loads(events[-2].data)
    assert tail == {
        "error": {
            "message": "Overloaded",
            "type": "overloaded_error",
            "param": None,
            "code": "overloaded",
        }
    }
    seen = "".join(
        json.loads(e.data)["choices"][0]["delta"].get("content") or "" for e in events[:-2]
    )
    assert seen == "Hello, world!"


def test_messages_error_tail_shape() -> None:
    """Chat → Messages error: ``event: error`` with ``{"type":"error","error":{type, message}}``
    as the very last event: no ``message_delta``, ``message_stop`` or ``[DONE]`` (§9.1)."""
    out, _ = run(Case("chat", "messages", CHAT_SCENARIOS["error"]))
    assert out.endswith(
        b'event: error\ndata: {"type":"error","error":{"type":"rate_limit_error",'
        b'"message":"Rate limit reached for gpt-4o"}}\n\n'
    )
    assert b"message_stop" not in out
    assert b"[DONE]" not in out


@pytest.mark.parametrize("source", ["chat", "messages"])
@pytest.mark.parametrize("client", ["chat", "messages"])
def test_truncation_is_not_success(source: str, client: str) -> None:
    """An upstream that stops without a finish (even after text that looks like an end marker)
    gets the client's error tail, never a synthetic ``stop``/``end_turn``."""
    case = Case(source, client, SCENARIOS[source]["markers_truncated"])
    out, adapter = run(case)
    assert adapter.result.outcome == "truncated"
    if client == "chat":
        assert b'"finish_reason":"stop"' not in out
        assert json.loads(decode(out)[-2].data)["error"]["code"] == "stream_truncated"
    else:
        events = decode(out)
        assert all(e.event != "message_stop" for e in events)
        assert events[-1].event == "error"


def test_ids_model_created() -> None:
    """§7: Chat output has one ``chatcmpl-`` id, the upstream model and ``created`` in seconds
    from the clock; Messages output a ``msg_`` id from the chunk id and the upstream model."""
    out, _ = run(Case("messages", "chat", MESSAGES_SCENARIOS["text"]))
    chunks = check_chat_contract(out, usage_allowed=False)
    assert {c["id"] for c in chunks} == {"chatcmpl-" + MESSAGES_ID.removeprefix("msg_")}
    assert {c["model"] for c in chunks} == {MESSAGES_MODEL}
    assert {c["created"] for c in chunks} == {int(CLOCK)}
    out, _ = run(Case("chat", "messages", CHAT_SCENARIOS["text"]))
    start = check_messages_contract(out)[0]["message"]
    assert start["id"] == "msg_" + CHAT_ID.removeprefix("chatcmpl-")
    assert start["model"] == CHAT_MODEL
    assert int(CLOCK) != CREATED


def test_each_adapter_uses_its_own_clock_and_ids() -> None:
    """Adapters built one after another with the same or other ``clock`` and ``id_factory``
    functions (and other settings) each use exactly their own: the options are shared between
    adapters only when every setting is the same."""
    start = (
        b'event: message_start\ndata: {"type":"message_start","message":{"type":"message",'
        b'"role":"assistant","model":"m","content":[],"usage":{"input_tokens":1,'
        b'"output_tokens":0}}}\n\n'
        b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"text","text":""}}\n\n'
    )

    def first_chunk(clock: Callable[[], float], ids: Callable[[], str], **options: Any) -> Any:
        adapter = StreamAdapter(
            upstream_format="anthropic-messages",
            client_format="openai-chat",
            clock=clock,
            id_factory=ids,
            **options,
        )
        return json.loads(adapter.feed(start).split(b"\n\n")[0].removeprefix(b"data: "))

    def clock_a() -> float:
        return 100.5

    def clock_b() -> float:
        return 200.5

    def ids_a() -> str:
        return "a"

    def ids_b() -> str:
        return "b"

    seen = [
        (chunk["created"], chunk["id"])
        for chunk in (
            first_chunk(clock_a, ids_a),
            first_chunk(clock_a, ids_a),
            first_chunk(clock_b, ids_a),
            first_chunk(clock_b, ids_b),
            first_chunk(clock_a, ids_b, include_usage=True),
            first_chunk(lambda: 300.0, ids_b),
        )
    ]
    assert seen == [
        (100, "chatcmpl-a"),
        (100, "chatcmpl-a"),
        (200, "chatcmpl-a"),
        (200, "chatcmpl-b"),
        (100, "chatcmpl-b"),
        (300, "chatcmpl-b"),
    ]
    # The include_usage setting is not taken from the options built before it.
    with_usage = StreamAdapter(
        upstream_format="anthropic-messages",
        client_format="openai-chat",
        clock=clock_a,
        id_factory=ids_a,
        include_usage=True,
    )
    without = StreamAdapter(
        upstream_format="anthropic-messages",
        client_format="openai-chat",
        clock=clock_a,
        id_factory=ids_a,
    )
    ending = (
        b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
        b'"usage":{"output_tokens":2}}\n\n'
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    for adapter, usage_chunks in ((with_usage, 1), (without, 0)):
        body = adapter.feed(start + ending) + adapter.close()
        events = SSEDecoder().feed(body)
        chunks = [json.loads(e.data) for e in events if e.data != "[DONE]"]
        assert sum(1 for c in chunks if c["choices"] == []) == usage_chunks


# -- tests: chunking invariance and determinism ------------------------------------------------

_REFERENCE: dict[tuple[str, bool], bytes] = {}


def reference(case: Case, include_usage: bool = False) -> bytes:
    """The client bytes for the upstream fed in one piece (memoised)."""
    key = (case.id, include_usage)
    if key not in _REFERENCE:
        _REFERENCE[key] = run(case, include_usage=include_usage)[0]
    return _REFERENCE[key]


MEDIUM = [
    Case("chat", "messages", CHAT_SCENARIOS["tools_interleaved"]),
    Case("chat", "chat", CHAT_SCENARIOS["tools_sequential"]),
    Case("messages", "chat", MESSAGES_SCENARIOS["tools_parallel"]),
    Case("messages", "messages", MESSAGES_SCENARIOS["tools_parallel"]),
]


@pytest.mark.parametrize("case", MEDIUM, ids=_ids(MEDIUM))
def test_every_single_split_point(case: Case) -> None:
    """The client bytes are identical for the upstream cut at every single offset (UTF-8
    sequences, ``\\n\\n`` boundaries and JSON split included)."""
    upstream = case.upstream()
    expected = reference(case, True)
    for point in range(1, len(upstream)):
        out, _ = run(case, include_usage=True, pieces=split_at(upstream, [point]))
        assert out == expected, f"split at {point}"


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_byte_at_a_time(case: Case) -> None:
    """Feeding the upstream one byte per call gives the same client bytes and the same result."""
    upstream = case.upstream()
    out, adapter = run(case, pieces=[upstream[i : i + 1] for i in range(len(upstream))])
    assert out == reference(case)
    _, whole = run(case)
    assert adapter.result == whole.result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_split_gives_the_same_bytes(data: st.DataObject) -> None:
    """Hypothesis: for every scenario and pair, any multi-split of the upstream bytes gives the
    client bytes of the unsplit stream."""
    case = data.draw(st.sampled_from(CASES), label="case")
    include_usage = data.draw(st.booleans(), label="include_usage")
    upstream = case.upstream()
    points = data.draw(
        st.lists(st.integers(1, len(upstream) - 1), max_size=40), label="split points"
    )
    out, _ = run(case, include_usage=include_usage, pieces=split_at(upstream, points))
    assert out == reference(case, include_usage)


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_deterministic(case: Case) -> None:
    """With a fixed clock and a counter ``id_factory``, the same input gives the same bytes and
    the same final response."""
    out1, a1 = run(case, include_usage=True)
    out2, a2 = run(case, include_usage=True)
    assert out1 == out2
    assert a1.result.response == a2.result.response
    if case.client == "chat" and not case.identity:
        assert all(
            c["created"] == int(CLOCK)
            for c in check_chat_contract(out1, usage_allowed=True)
            if "created" in c
        )


@pytest.mark.parametrize("name", [f.name for f in fields(Usage)])
def test_usage_updated_merges_each_field(name: str) -> None:
    """``Usage.updated``: a field the newer usage reports wins, one it leaves ``None`` keeps the
    older value, field by field."""
    older = Usage(*range(1, 6))
    newer = Usage(**{name: 99})
    merged = older.updated(newer)
    for f in fields(Usage):
        want = 99 if f.name == name else getattr(older, f.name)
        assert getattr(merged, f.name) == want, f.name
    assert older.updated(Usage()) == older


def _message_start_usage(body: bytes) -> dict[str, Any]:
    events = SSEDecoder().feed(body)
    assert events[0].event == "message_start"
    usage: dict[str, Any] = json.loads(events[0].data)["message"]["usage"]
    return usage


@pytest.mark.parametrize(
    ("upstream", "data"),
    [
        ("openai-chat", chat_stream("usage_cache")),
        ("openai-chat", chat_stream("usage_none")),
        ("openai-responses", None),
    ],
)
def test_input_tokens_estimate_fills_message_start_until_the_upstream_says(
    upstream: str, data: bytes | None
) -> None:
    """``input_tokens_estimate`` is the prompt's size in ``message_start`` where the upstream has
    not said it by then; its own count goes to ``message_delta`` and the result. An upstream
    that never says it leaves the estimate in ``message_delta`` too (the SDK copies that over
    ``message_start``'s), the result keeping what the upstream said: nothing."""
    if data is None:
        # (A Responses upstream says its usage in ``response.completed`` only.)
        into = StreamAdapter(upstream_format="openai-chat", client_format="openai-responses")
        data = into.feed(chat_stream("usage_cache")) + into.close()
    adapter = StreamAdapter(
        upstream_format=upstream, client_format="anthropic-messages", input_tokens_estimate=321
    )
    body = adapter.feed(data) + adapter.close()
    assert _message_start_usage(body)["input_tokens"] == 321
    events = SSEDecoder().feed(body)
    delta = next(json.loads(e.data) for e in events if e.event == "message_delta")
    response = adapter.result.response
    assert response is not None
    if adapter.content.usage_reported:
        assert delta["usage"]["input_tokens"] == response["usage"]["input_tokens"] != 321
    else:
        assert (delta["usage"]["input_tokens"], response["usage"]["input_tokens"]) == (321, 0)


def test_input_tokens_estimate_gives_way_to_the_upstreams_count() -> None:
    """An upstream that states usage in its first chunk (vLLM's continuous usage stats) or a
    Messages upstream's own ``message_start``: its count, not the estimate."""
    chunk = {
        "id": "chatcmpl-u",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": "hi"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
    adapter = StreamAdapter(
        upstream_format="openai-chat", client_format="anthropic-messages", input_tokens_estimate=99
    )
    assert (
        _message_start_usage(adapter.feed(f"data: {json.dumps(chunk)}\n\n".encode()))[
            "input_tokens"
        ]
        == 12
    )
    with pytest.raises(ValueError, match="input_tokens_estimate must be an int >= 0"):
        StreamAdapter(
            upstream_format="openai-chat",
            client_format="anthropic-messages",
            input_tokens_estimate=-1,
        )


def test_parallel_calls_all_at_index_0_stay_apart() -> None:
    """Some servers send every parallel call at ``index: 0`` (formats.md §14): a new id with a
    name there is a new call, and the fragments after it (no id) are its own, whether the read
    holds one chunk or the whole stream (the argument template of the first call must not claim
    them); a known id is its call's; a new id without a name continues the call."""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        body = {"id": "chatcmpl-i", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        compact = json.dumps({**body, "choices": [choice]}, separators=(",", ":"))
        return f"data: {compact}\n\n".encode()  # (as the API sends it: templates apply)

    def call(call_id: str | None, name: str | None, arguments: str) -> dict[str, Any]:
        head: dict[str, Any] = {"id": call_id, "type": "function"} if call_id else {}
        function = {"name": name, "arguments": arguments} if name else {"arguments": arguments}
        return {"tool_calls": [{"index": 0, **head, "function": function}]}

    data = b"".join(
        [
            chunk({"role": "assistant", **call("call_1", "read", "")}),
            chunk(call(None, None, '{"a":')),
            chunk(call(None, None, "1}")),
            chunk(call("call_2", "write", "")),
            chunk(call(None, None, '{"b":')),
            chunk(call(None, None, "2}")),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    # A server that changes the id on every chunk of one call (poolsideai/pool#9, early vLLM):
    # no name with the new id, so still the same call.
    unstable = b"".join(
        [
            chunk({"role": "assistant", **call("call_A", "get", "")}),
            chunk(call("call_B", None, '{"c":')),
            chunk(call("call_C", None, "3}")),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    # Calls interleaved at index 0, each chunk naming its call's id: each fragment to its call.
    interleaved = b"".join(
        [
            chunk({"role": "assistant", **call("call_1", "read", "")}),
            chunk(call("call_2", "write", "")),
            chunk(call("call_1", None, '{"a":1}')),
            chunk(call("call_2", None, '{"b":2}')),
            chunk({}, "tool_calls"),
            b"data: [DONE]\n\n",
        ]
    )
    for stream, expected in (
        (unstable, [("call_A", "get", {"c": 3})]),
        (interleaved, [("call_1", "read", {"a": 1}), ("call_2", "write", {"b": 2})]),
    ):
        adapter = StreamAdapter(upstream_format="openai-chat", client_format="anthropic-messages")
        adapter.feed(stream)
        adapter.close()
        assert adapter.result.response is not None
        content = adapter.result.response["content"]
        assert [(b["id"], b["name"], b["input"]) for b in content] == expected
    events = [block + b"\n\n" for block in data.split(b"\n\n") if block]
    for reads in ([data], events):
        adapter = StreamAdapter(upstream_format="openai-chat", client_format="anthropic-messages")
        for read in reads:
            adapter.feed(read)
        adapter.close()
        response = adapter.result.response
        assert response is not None
        calls = [(b["id"], b["name"], b["input"]) for b in response["content"]]
        assert calls == [("call_1", "read", {"a": 1}), ("call_2", "write", {"b": 2})]
        assert response["stop_reason"] == "tool_use"


@pytest.mark.parametrize("client", ["anthropic-messages", "openai-responses", "openai-chat"])
def test_tool_names_give_the_client_its_names_back(client: str) -> None:
    """``tool_names`` (``TranslatedRequest.tool_names``: names the request shortened for an
    OpenAI upstream): the client's calls, streamed or answered whole, carry its own names; a
    tool the mapping does not name keeps the upstream's. (A Messages upstream for Chat clients:
    the same format on both sides is passed through, its request never renamed.)"""
    long = "mcp__server__" + "x" * 60
    short = long[:55] + "_0123abcd"
    calls = (Tool("call_1", short, ('{"a":', "1}")), Tool("call_2", "plain", ("{}",)))
    if client == "openai-chat":
        upstream, stream = "anthropic-messages", messages_stream(Scenario("r", calls, "tool_use"))
    else:
        upstream, stream = "openai-chat", chat_stream(Scenario("r", calls, "tool_calls"))
    names = {short: long}

    def called(text: str) -> list[str]:
        return [n for n in (long, short, "plain") if f'"{n}"' in text]

    adapter = StreamAdapter(upstream_format=upstream, client_format=client, tool_names=names)
    out = adapter.feed(stream) + adapter.close()
    assert called(out.decode()) == [long, "plain"]
    assert called(json.dumps(adapter.result.response)) == [long, "plain"]
    whole = StreamAdapter(
        upstream_format="anthropic-messages", client_format=client, tool_names=names
    )
    response = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": short, "input": {"a": 1}}],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    out = whole.feed_response(response)
    assert called(out.decode()) == [long]
    assert called(json.dumps(whole.result.response)) == [long]
    unnamed = StreamAdapter(upstream_format=upstream, client_format=client)
    out = unnamed.feed(stream) + unnamed.close()
    assert called(out.decode()) == [short, "plain"]
