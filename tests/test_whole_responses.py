"""``StreamAdapter.feed_response``: an upstream's whole (non-streamed) answer, written as the
client format's event stream and response object, as its streamed twin would have been.

The twin: each fixture scenario streamed through the adapter, against the same scenario's
whole response (the upstream format's response object, built by an identity adapter from the
same stream) given to ``feed_response``. Both must end in the same final response and usage for
every client format, and the event stream must satisfy the client's SDK.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import openai
import pytest

from asgi_sse_adapter.adapter import StreamAdapter
from tests.fixtures import CHAT_SCENARIOS, MESSAGES_SCENARIOS, chat_stream, messages_stream
from tests.test_translate import anthropic_client, openai_client

CLIENTS = (
    "openai-chat",
    "anthropic-messages",
    "openai-responses",
    "openai-text",
    "anthropic-text",
)
UPSTREAMS: dict[str, tuple[dict[str, Any], Callable[[str], bytes]]] = {
    "openai-chat": (CHAT_SCENARIOS, chat_stream),
    "anthropic-messages": (MESSAGES_SCENARIOS, messages_stream),
}
# Where a whole response cannot say what its stream said (not a defect of ours):
APART = {
    # A Chat message holds its content and its refusal apart: text, refusal, text interleaved
    # is a stream's alone.
    ("openai-chat", "text_then_refusal"),
    # A legacy ``function_call`` has no id: the stream's is empty, a response's generated.
    ("openai-chat", "finish_function_call"),
}


def _adapter(upstream: str, client: str, **options: Any) -> StreamAdapter:
    count = itertools.count(1)
    return StreamAdapter(
        upstream_format=upstream,
        client_format=client,
        clock=lambda: 1700000000.0,
        id_factory=lambda: f"gen{next(count):04d}",
        collect_response=True,
        **options,
    )


def _whole(upstream: str, stream: bytes) -> dict[str, Any] | None:
    """The upstream format's response object for ``stream`` (``None``: it did not complete)."""
    adapter = _adapter(upstream, upstream)
    adapter.feed(stream)
    adapter.close()
    return adapter.result.response if adapter.result.outcome == "complete" else None


def _arguments_parsed(value: Any) -> Any:
    """``value`` with every tool-call ``arguments`` string parsed: a Messages response holds a
    call's input as an object, so its serialisation (spacing) is the writer's, not the
    upstream's."""
    if isinstance(value, dict):
        out = {k: _arguments_parsed(v) for k, v in value.items()}
        if isinstance(out.get("arguments"), str):
            out["arguments"] = json.loads(out["arguments"])
        return out
    if isinstance(value, list):
        return [_arguments_parsed(v) for v in value]
    return value


# (A scenario whose stream does not complete, truncated or failed, has no whole response.)
CASES = [
    (upstream, name, client)
    for upstream, (scenarios, make) in UPSTREAMS.items()
    for name in scenarios
    if (upstream, name) not in APART and _whole(upstream, make(name)) is not None
    for client in CLIENTS
]
PARALLEL_TOOLS = {"openai-chat": "tools_interleaved", "anthropic-messages": "tools_parallel"}


@pytest.mark.parametrize(("upstream", "name", "client"), CASES)
def test_whole_answer_ends_as_its_stream_does(upstream: str, name: str, client: str) -> None:
    stream = UPSTREAMS[upstream][1](name)
    whole = _whole(upstream, stream)
    assert whole is not None
    streamed = _adapter(upstream, client)
    streamed.feed(stream)
    streamed.close()
    answered = _adapter(upstream, client)
    out = answered.feed_response(whole)
    assert answered.ended
    assert answered.result.outcome == "complete"
    assert out
    assert _arguments_parsed(answered.result.response) == _arguments_parsed(
        streamed.result.response
    )
    assert answered.result.usage == streamed.result.usage
    assert answered.feed(stream) == b""
    assert answered.close() == b""


@pytest.mark.parametrize("upstream", list(UPSTREAMS))
def test_whole_answer_streams_to_the_sdks(upstream: str) -> None:
    """The event stream written for a whole answer is what the SDKs' stream helpers read:
    text, tool calls and stop reason as in the answer."""
    whole = _whole(upstream, UPSTREAMS[upstream][1](PARALLEL_TOOLS[upstream]))
    assert whole is not None
    out = _adapter(upstream, "openai-chat", include_usage=True).feed_response(whole)
    with openai_client(out).chat.completions.stream(model="m", messages=[]) as chat:
        final = chat.get_final_completion()
    calls = final.choices[0].message.tool_calls or []
    assert len(calls) == 3
    assert [c.function.name for c in calls] == ["get_weather", "get_time", "search_docs"]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None
    assert final.usage.completion_tokens == 17
    out = _adapter(upstream, "anthropic-messages").feed_response(whole)
    with anthropic_client(out).messages.stream(model="m", max_tokens=1, messages=[]) as stream:
        message = stream.get_final_message()
    assert [b.name for b in message.content if b.type == "tool_use"] == [
        "get_weather",
        "get_time",
        "search_docs",
    ]
    assert message.stop_reason == "tool_use"


def test_error_in_a_whole_answer_fails_it() -> None:
    """A whole answer that is an error, or not this format's response at all, ends the stream
    as failed with the error tail (the proxy answers ``error_body`` instead: nothing was sent)."""
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    adapter = _adapter("anthropic-messages", "openai-chat")
    out = adapter.feed_response(error)
    assert adapter.result.outcome == "failed"
    assert adapter.result.error is not None
    assert adapter.result.error.message == "Overloaded"
    assert out.endswith(b"data: [DONE]\n\n")
    with pytest.raises(openai.APIError, match="Overloaded"):
        list(openai_client(out).chat.completions.create(model="m", messages=[], stream=True))
    for upstream in CLIENTS:
        # A bare ``{"error": "text"}`` is an error in every format, never an empty answer.
        adapter = _adapter(upstream, "openai-chat")
        adapter.feed_response({"error": "bad key"})
        assert adapter.result.outcome == "failed"
        assert adapter.result.error is not None
        assert adapter.result.error.message == "bad key"
        # A 2xx answer of another endpoint (a model list): never an empty, complete answer.
        adapter = _adapter(upstream, "anthropic-messages")
        adapter.feed_response({"object": "list", "data": []})
        assert adapter.result.outcome == "failed"
        assert adapter.result.error is not None
        assert adapter.result.error.message.startswith("malformed upstream response: not a")


def test_whole_answer_honours_reasoning_drop() -> None:
    whole = _whole("anthropic-messages", messages_stream("thinking"))
    assert whole is not None
    kept = _adapter("anthropic-messages", "openai-chat")
    assert b"reasoning_content" in kept.feed_response(whole)
    dropped = _adapter("anthropic-messages", "openai-chat", reasoning="drop")
    assert b"reasoning_content" not in dropped.feed_response(whole)
    assert dropped.result.outcome == "complete"


def test_feed_response_after_feed_is_a_programming_error() -> None:
    adapter = _adapter("anthropic-messages", "openai-chat")
    adapter.feed(messages_stream("text")[:200])
    with pytest.raises(RuntimeError):
        adapter.feed_response({"type": "message", "content": []})
