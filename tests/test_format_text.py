"""The legacy text formats: ``openai-text`` (OpenAI Completions) and ``anthropic-text`` (Anthropic
Text Completions, both versions), read and written through ``StreamAdapter``.

Every client stream is checked against its valid-stream contract (formats.md §13) by a strict
decoder below; ``openai-text`` output is also consumed by the official ``openai`` SDK.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_sse_adapter import ServerSentEvent, SSEDecoder
from asgi_sse_adapter import formats as registry
from asgi_sse_adapter.adapter import StreamAdapter
from asgi_sse_adapter.formats import anthropic_text, get_format, openai_text
from asgi_sse_adapter.formats.base import WriterOptions
from asgi_sse_adapter.parts import StreamError

CREATED = 1700000000
TEXT_FORMATS = ("openai-text", "anthropic-text")
ALL_FORMATS = ("openai-text", "openai-chat", "anthropic-messages", "anthropic-text")
# Every directed translation pair with a text format on at least one side.
PAIRS = [
    (up, client)
    for up in ALL_FORMATS
    for client in ALL_FORMATS
    if up != client and (up in TEXT_FORMATS or client in TEXT_FORMATS)
]
PLAIN = ["Hello", ", ", "world", "!"]
UNICODE = [
    "第一行 你好。\n",
    "second line 🚀 and 👩‍👩‍👧\n\n",
    'quotes " and \\ back\tslash',
    "\r\nこんにちは",
    " café ∑",
]


# -- upstream streams -----------------------------------------------------------------------------


def sse(obj: Any, event: str | None = None) -> bytes:
    """One SSE event with ``obj`` as JSON (the way upstreams send it)."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def _interleave(pieces: Sequence[str], n: int) -> Iterator[tuple[int, str]]:
    for piece in pieces:
        for c in range(n):
            yield c, piece if c == 0 else f"[{c}]{piece}"


def completions_upstream(
    pieces: Sequence[str],
    finish: str | None = "stop",
    *,
    n: int = 1,
    usage: dict[str, Any] | None = None,
    done: bool = True,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """An OpenAI Completions stream (formats.md §2.2); choice c > 0 prefixes pieces with ``[c]``."""
    env = {"id": "cmpl-up1", "object": "text_completion", "created": CREATED, "model": "gpt-inst"}

    def chunk(c: int, text: str, fr: str | None) -> bytes:
        choice = {"text": text, "index": c, "logprobs": None, "finish_reason": fr}
        return sse({**env, "choices": [{**choice, **(extra or {})} if fr else choice]})

    out = [chunk(c, text, None) for c, text in _interleave(pieces, n)]
    if finish is not None:
        out += [chunk(c, "", finish) for c in range(n)]
    if usage is not None:
        out.append(sse({**env, "choices": [], "usage": usage}))
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def chat_upstream(
    pieces: Sequence[str],
    finish: str | None = "stop",
    *,
    n: int = 1,
    usage: dict[str, Any] | None = None,
    done: bool = True,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """An OpenAI Chat stream (formats.md §2.1); choice c > 0 says ``[c]`` before each piece;
    ``extra``: more fields of the finishing choices."""
    env = {"id": "chatcmpl-up2", "object": "chat.completion.chunk", "created": CREATED}
    env["model"] = "gpt-chat"

    def chunk(c: int, delta: dict[str, Any], fr: str | None) -> bytes:
        choice = {"index": c, "delta": delta, "finish_reason": fr}
        return sse({**env, "choices": [{**choice, **(extra or {})} if fr else choice]})

    out = [chunk(c, {"role": "assistant", "content": ""}, None) for c in range(n)]
    out += [chunk(c, {"content": text}, None) for c, text in _interleave(pieces, n)]
    if finish is not None:
        out += [chunk(c, {}, finish) for c in range(n)]
    if usage is not None:
        out.append(sse({**env, "choices": [], "usage": usage}))
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def messages_upstream(
    pieces: Sequence[str], stop_reason: str | None = "end_turn", stop_sequence: str | None = None
) -> bytes:
    """An Anthropic Messages stream (formats.md §2.4)."""
    usage = {"input_tokens": 7, "output_tokens": 1}
    message: dict[str, Any] = {"id": "msg_up3", "type": "message", "role": "assistant"}
    message.update(content=[], model="claude-x", stop_reason=None, stop_sequence=None, usage=usage)
    out = [sse({"type": "message_start", "message": message}, "message_start")]
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}
    block["content_block"]["text"] = ""  # type: ignore[index]
    out.append(sse(block, "content_block_start"))
    for text in pieces:
        delta = {"type": "content_block_delta", "index": 0}
        delta["delta"] = {"type": "text_delta", "text": text}
        out.append(sse(delta, "content_block_delta"))
    out.append(sse({"type": "ping"}, "ping"))
    if stop_reason is None:
        return b"".join(out)
    out.append(sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
    message_delta = {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 9}}
    out.append(sse(message_delta, "message_delta"))
    out.append(sse({"type": "message_stop"}, "message_stop"))
    return b"".join(out)


def atext_upstream(
    pieces: Sequence[str], stop_reason: str | None = "stop_sequence", stop: str | None = None
) -> bytes:
    """An Anthropic Text Completions 2023-06-01 stream (formats.md §2.5)."""
    env = {"type": "completion", "id": "compl_up4", "model": "claude-2.0"}
    out = [sse({**env, "completion": text, "stop_reason": None}, "completion") for text in pieces]
    out.insert(1, sse({"type": "ping"}, "ping"))
    if stop_reason is not None:
        final = {**env, "completion": "", "stop_reason": stop_reason, "stop": stop}
        out.append(sse(final, "completion"))
    return b"".join(out)


def cumulative_upstream(
    texts: Sequence[str],
    stop_reason: str | None = "stop_sequence",
    stop: str | None = "\n\nHuman:",
    *,
    done: bool = True,
    truncated: bool = False,
    exception: str | None = None,
) -> bytes:
    """An Anthropic Text Completions 2023-01-01 stream: ``texts`` are the cumulative texts."""
    env = {"truncated": False, "stop": None, "exception": None, "log_id": "abc123"}
    env["model"] = "claude-v1"
    out = [sse({**env, "completion": text, "stop_reason": None}) for text in texts]
    last = texts[-1] if texts else ""
    if stop_reason is not None or truncated or exception is not None:
        final = {**env, "completion": last, "stop_reason": stop_reason, "stop": stop}
        final.update(truncated=truncated, exception=exception)
        out.append(sse(final))
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def upstream(fmt: str, pieces: Sequence[str], finish: str | None, stop: str | None = None) -> bytes:
    """A stream of ``pieces`` ending with the format-native ``finish`` (``None``: cut off)."""
    if fmt == "openai-text":
        return completions_upstream(pieces, finish, done=finish is not None)
    if fmt == "openai-chat":
        return chat_upstream(pieces, finish, done=finish is not None)
    if fmt == "anthropic-messages":
        return messages_upstream(pieces, finish, stop)
    return atext_upstream(pieces, finish, stop)


NATIVE_STOP = {
    "openai-text": "stop",
    "openai-chat": "stop",
    "anthropic-messages": "end_turn",
    "anthropic-text": "stop_sequence",
}


# -- running the adapter --------------------------------------------------------------------------


def adapter(up: str, client: str, **options: Any) -> StreamAdapter:
    """A deterministic adapter: fixed clock and id factory."""
    return StreamAdapter(
        upstream_format=up,
        client_format=client,
        clock=lambda: float(CREATED),
        id_factory=lambda: "fixed",
        **options,
    )


def run(
    up: str, client: str, data: bytes, cuts: Sequence[int] = (), **options: Any
) -> tuple[bytes, StreamAdapter]:
    """Feed ``data`` split at ``cuts`` (sorted positions), then close; the client bytes."""
    a = adapter(up, client, **options)
    out = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        out.append(a.feed(data[start:cut]))
        start = cut
    out.append(a.close())
    assert a.ended
    assert a.feed(b"data: {}\n\n") == b""
    return b"".join(out), a


def decode(body: bytes) -> list[ServerSentEvent]:
    """The events in a client body; it must end on an event boundary."""
    assert body.endswith(b"\n\n")
    decoder = SSEDecoder(max_event_size=None)
    events = decoder.feed(body)
    decoder.close()
    assert not decoder.truncated
    return events


# -- strict client-side readers (formats.md §13) --------------------------------------------------


@dataclass
class Seen:
    """What a client got: per-choice text and finish reason, usage, error, ``[DONE]``."""

    texts: dict[int, str] = field(default_factory=dict)
    finishes: dict[int, str] = field(default_factory=dict)
    stop: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: bool = False
    events: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Choice 0's text."""
        return self.texts.get(0, "")

    @property
    def finish(self) -> str | None:
        """Choice 0's finish reason."""
        return self.finishes.get(0)


def read_openai_text(body: bytes) -> Seen:
    """Completions contract: data-only, one envelope, ascending choices, finish last per
    choice, usage chunk only after every finish, ``[DONE]`` at the end (also after an error)."""
    seen = Seen()
    envelope: tuple[Any, ...] | None = None
    for event in decode(body):
        assert event.event is None, "Completions is data-only"
        assert event.id is None
        assert event.retry is None
        assert not seen.done, "nothing after [DONE]"
        if event.data == "[DONE]":
            seen.done = True
            continue
        assert seen.error is None, "only [DONE] after the error"
        assert seen.usage is None, "nothing but [DONE] after the usage chunk"
        obj = json.loads(event.data)
        if "error" in obj:
            assert set(obj) == {"error"}
            assert set(obj["error"]) == {"message", "type", "param", "code"}
            seen.error = obj["error"]
            continue
        assert obj["object"] == "text_completion"
        assert obj["id"].startswith("cmpl-")
        assert isinstance(obj["created"], int)
        this = (obj["id"], obj["created"], obj["model"])
        assert envelope in (None, this), "same id, created and model on every chunk"
        envelope = this
        if obj["choices"] == []:
            assert set(seen.texts) == set(seen.finishes), "usage after every finish"
            seen.usage = obj["usage"]
            continue
        assert set(obj) == {"id", "object", "created", "model", "choices"}
        for choice in obj["choices"]:
            assert set(choice) == {"text", "index", "logprobs", "finish_reason"}
            assert choice["logprobs"] is None
            index = choice["index"]
            if index not in seen.texts:
                assert index == len(seen.texts), "choices first appear in ascending order"
                seen.texts[index] = ""
            assert index not in seen.finishes, "nothing for a choice after its finish"
            assert isinstance(choice["text"], str)
            seen.texts[index] += choice["text"]
            if choice["finish_reason"] is not None:
                assert choice["finish_reason"] in ("stop", "length", "content_filter")
                assert choice["text"] == ""
                seen.finishes[index] = choice["finish_reason"]
    assert seen.done
    if seen.error is None:
        assert set(seen.finishes) == set(seen.texts), "one finish per choice"
    return seen


def read_anthropic_text(body: bytes, *, done_after_error: bool = False) -> Seen:
    """Text Completions 2023-06-01 contract: named events equal to ``type``, incremental
    completions with ``stop_reason: null``, one final event last, no ``[DONE]``."""
    seen = Seen()
    envelope: tuple[Any, ...] | None = None
    final = False
    for event in decode(body):
        assert not seen.done
        if event.data == "[DONE]":
            assert done_after_error, "no [DONE] in 2023-06-01"
            assert seen.error is not None
            assert event.event is None
            seen.done = True
            continue
        assert event.event in ("completion", "ping", "error")
        seen.events.append(event.event)
        obj = json.loads(event.data)
        assert obj["type"] == event.event
        assert seen.error is None, "nothing after the error event"
        assert not final, "the event with the stop reason is the last one"
        if event.event == "ping":
            assert obj == {"type": "ping"}
        elif event.event == "error":
            assert set(obj) == {"type", "error"}
            assert set(obj["error"]) == {"type", "message"}
            seen.error = obj["error"]
        else:
            assert obj["id"].startswith("compl_")
            this = (obj["id"], obj["model"])
            assert envelope in (None, this), "same id and model on every event"
            envelope = this
            seen.texts.setdefault(0, "")
            if obj["stop_reason"] is None:
                assert set(obj) == {"type", "id", "completion", "stop_reason", "model"}
                assert obj["completion"], "no empty deltas"
                seen.texts[0] += obj["completion"]
            else:
                assert set(obj) == {"type", "id", "completion", "stop_reason", "stop", "model"}
                assert obj["completion"] == ""
                assert obj["stop_reason"] in ("stop_sequence", "max_tokens")
                seen.finishes[0] = obj["stop_reason"]
                seen.stop = obj["stop"]
                final = True
    assert final or seen.error is not None
    assert not (final and seen.error is not None)
    return seen


LEGACY_KEYS = {"completion", "stop_reason", "truncated", "stop", "exception", "log_id", "model"}


def read_anthropic_text_2023_01_01(body: bytes) -> Seen:
    """Text Completions 2023-01-01 contract: data-only, cumulative ``completion`` with every
    legacy field, ``stop_reason`` (or ``exception``) only on the last event, ``[DONE]``."""
    seen = Seen()
    last = ""
    closing = False
    for event in decode(body):
        assert event.event is None
        assert not seen.done
        if event.data == "[DONE]":
            assert closing, "[DONE] after the final event"
            seen.done = True
            continue
        assert not closing
        obj = json.loads(event.data)
        assert set(obj) == LEGACY_KEYS
        assert obj["truncated"] is False
        assert obj["completion"].startswith(last), "cumulative"
        assert obj["log_id"].startswith("compl_")
        last = obj["completion"]
        seen.texts[0] = last
        if obj["exception"] is not None:
            assert obj["stop_reason"] is None
            seen.error = {"message": obj["exception"]}
            closing = True
        elif obj["stop_reason"] is not None:
            assert obj["stop_reason"] in ("stop_sequence", "max_tokens")
            seen.finishes[0] = obj["stop_reason"]
            seen.stop = obj["stop"]
            closing = True
        else:
            assert obj["stop"] is None
    assert seen.done
    return seen


def read_chat(body: bytes) -> Seen:
    """Chat output (its own contract is tested elsewhere): texts, finishes, usage, error."""
    seen = Seen()
    for event in decode(body):
        if event.data == "[DONE]":
            seen.done = True
            continue
        obj = json.loads(event.data)
        if "error" in obj:
            seen.error = obj["error"]
            continue
        if obj.get("usage"):
            seen.usage = obj["usage"]
        for choice in obj["choices"]:
            index = choice["index"]
            seen.texts[index] = seen.texts.get(index, "") + (choice["delta"].get("content") or "")
            if choice["finish_reason"] is not None:
                seen.finishes[index] = choice["finish_reason"]
    return seen


def read_messages(body: bytes) -> Seen:
    """Messages output: text deltas, stop reason and sequence, error."""
    seen = Seen()
    for event in decode(body):
        if event.data == "[DONE]":
            seen.done = True
            continue
        obj = json.loads(event.data)
        assert obj["type"] == event.event
        if obj["type"] == "content_block_delta" and obj["delta"]["type"] == "text_delta":
            seen.texts[0] = seen.texts.get(0, "") + obj["delta"]["text"]
        elif obj["type"] == "message_delta":
            seen.finishes[0] = obj["delta"]["stop_reason"]
            seen.stop = obj["delta"]["stop_sequence"]
            seen.usage = obj["usage"]
        elif obj["type"] == "error":
            seen.error = obj["error"]
    return seen


READERS: dict[str, Callable[[bytes], Seen]] = {
    "openai-text": read_openai_text,
    "openai-chat": read_chat,
    "anthropic-messages": read_messages,
    "anthropic-text": read_anthropic_text,
}


def observe(client: str, body: bytes) -> Seen:
    """What a client of ``client`` format sees in ``body`` (contract-checked)."""
    return READERS[client](body)


def response_view(client: str, response: dict[str, Any] | None) -> tuple[dict[int, str], Any]:
    """Per-choice text and choice 0's finish reason of a final (non-streamed) response."""
    assert response is not None
    if client == "openai-text":
        assert response["object"] == "text_completion"
        texts = {c["index"]: c["text"] for c in response["choices"]}
        return texts, response["choices"][0]["finish_reason"] if response["choices"] else None
    if client == "openai-chat":
        texts = {c["index"]: c["message"]["content"] or "" for c in response["choices"]}
        return texts, response["choices"][0]["finish_reason"] if response["choices"] else None
    if client == "anthropic-messages":
        text = "".join(b["text"] for b in response["content"] if b["type"] == "text")
        return {0: text}, response["stop_reason"]
    assert response["type"] == "completion"
    assert response["id"].startswith("compl_")
    return {0: response["completion"]}, response["stop_reason"]


# -- the official openai SDK as the Completions client --------------------------------------------


def sdk_client(body: bytes) -> openai.OpenAI:
    """An ``openai.OpenAI`` whose every request is answered with ``body`` as an SSE stream."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        assert request.url.path == "/v1/completions"
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, content=body)

    transport = httpx2.MockTransport(handler)
    return openai.OpenAI(
        api_key="x", base_url="http://test/v1", http_client=httpx2.Client(transport=transport)
    )


def sdk_read(body: bytes) -> Seen:
    """Consume ``body`` with ``client.completions.create(stream=True)``."""
    seen = Seen()
    stream = sdk_client(body).completions.create(model="m", prompt="p", stream=True)
    for chunk in stream:
        assert chunk.object == "text_completion"
        if chunk.usage is not None:
            seen.usage = chunk.usage.model_dump(exclude_none=True)
        for choice in chunk.choices:
            seen.texts[choice.index] = seen.texts.get(choice.index, "") + choice.text
            if choice.finish_reason is not None:
                seen.finishes[choice.index] = choice.finish_reason
    return seen


# -- plain and unicode text for every pair --------------------------------------------------------


@pytest.mark.parametrize("pieces", [PLAIN, UNICODE], ids=["plain", "unicode"])
@pytest.mark.parametrize(("up", "client"), PAIRS)
def test_text_reaches_the_client_exactly(up: str, client: str, pieces: list[str]) -> None:
    """The client sees exactly the upstream text (multi-line, CJK, emoji, escapes), one normal
    finish, a complete outcome, and a final response that says the same."""
    body, a = run(up, client, upstream(up, pieces, NATIVE_STOP[up]))
    seen = observe(client, body)
    assert seen.texts == {0: "".join(pieces)}
    assert seen.error is None
    assert seen.finish in ("stop", "end_turn", "stop_sequence")
    assert a.result.outcome == "complete"
    assert a.result.error is None
    texts, finish = response_view(client, a.result.response)
    assert texts == seen.texts
    assert finish == seen.finish


@pytest.mark.parametrize("up", ["openai-chat", "anthropic-messages", "anthropic-text"])
@pytest.mark.parametrize("pieces", [PLAIN, UNICODE], ids=["plain", "unicode"])
def test_openai_sdk_reads_translated_completions(up: str, pieces: list[str]) -> None:
    """openai-python's ``completions.create(stream=True)`` accumulates exactly the source text
    and finish reason from our Completions output."""
    body, _ = run(up, "openai-text", upstream(up, pieces, NATIVE_STOP[up]))
    seen = sdk_read(body)
    assert seen.texts == {0: "".join(pieces)}
    assert seen.finishes == {0: "stop"}


def test_completions_chunks_have_the_documented_envelope() -> None:
    """The exact bytes of a translated Completions stream (formats.md §2.2): ids get ``cmpl-``,
    ``created`` and ``model`` are copied, the finish chunk has empty text."""
    body, _ = run("openai-chat", "openai-text", chat_upstream(["Hi"], "length"))
    env = b'{"id":"cmpl-up2","object":"text_completion","created":1700000000,"model":"gpt-chat",'
    assert body == (
        b"data: " + env + b'"choices":[{"text":"Hi","index":0,"logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        b"data: " + env + b'"choices":[{"text":"","index":0,"logprobs":null,'
        b'"finish_reason":"length"}]}\n\n'
        b"data: [DONE]\n\n"
    )


def test_anthropic_text_events_have_the_documented_shape() -> None:
    """The exact bytes of a translated 2023-06-01 stream (formats.md §2.5): ``compl_`` id, one
    ``completion`` event per delta, one final event with ``stop_reason`` and ``stop``."""
    body, _ = run("anthropic-messages", "anthropic-text", messages_upstream(["Hi"], "max_tokens"))
    assert body == (
        b'event: completion\ndata: {"type":"completion","id":"compl_up3","completion":"Hi",'
        b'"stop_reason":null,"model":"claude-x"}\n\n'
        b'event: completion\ndata: {"type":"completion","id":"compl_up3","completion":"",'
        b'"stop_reason":"max_tokens","model":"claude-x","stop":null}\n\n'
    )


def test_missing_identity_uses_factory_and_clock() -> None:
    """Without upstream id/model/created the writers use the id factory, the clock and
    ``unknown``, never an empty or per-chunk value."""
    data = b'data: {"choices":[{"text":"a","index":0}]}\n\ndata: {"choices":[{"text":"b"}]}\n\n'
    data += b'data: {"choices":[{"text":"","finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
    body, a = run("openai-text", "anthropic-text", data)
    assert read_anthropic_text(body).text == "ab"
    assert b'"id":"compl_fixed"' in body
    assert b'"model":"unknown"' in body
    body, a = run("anthropic-text", "openai-text", atext_upstream(["x"], "max_tokens"))
    assert read_openai_text(body).texts == {0: "x"}
    assert b'"id":"cmpl-up4","object":"text_completion","created":1700000000' in body
    atext = b'event: completion\ndata: {"completion":"x","stop_reason":"max_tokens"}\n\n'
    body, a = run("anthropic-text", "openai-text", atext)
    assert b'"id":"cmpl-fixed","object":"text_completion","created":1700000000' in body
    assert a.result.response is not None
    assert a.result.response["id"] == "cmpl-fixed"


# -- finish reasons -------------------------------------------------------------------------------

FINISH_CASES: list[tuple[str, str, str | None, str, str, str | None]] = [
    # (upstream, native reason, stop sequence, client, client reason, client stop sequence)
    *(
        ("openai-text", src, None, client, dst, None)
        for client, table in {
            "openai-chat": {"stop": "stop", "length": "length", "content_filter": "content_filter"},
            "anthropic-messages": {
                "stop": "end_turn",
                "length": "max_tokens",
                "content_filter": "refusal",
            },
            "anthropic-text": {
                "stop": "stop_sequence",
                "length": "max_tokens",
                "content_filter": "stop_sequence",
            },
        }.items()
        for src, dst in table.items()
    ),
    *(
        ("openai-chat", src, None, client, dst, None)
        for client, table in {
            "openai-text": {
                "stop": "stop",
                "length": "length",
                "content_filter": "content_filter",
                "tool_calls": "stop",
                "function_call": "stop",
            },
            "anthropic-text": {
                "stop": "stop_sequence",
                "length": "max_tokens",
                "content_filter": "stop_sequence",
                "tool_calls": "stop_sequence",
            },
        }.items()
        for src, dst in table.items()
    ),
    *(
        ("anthropic-messages", src, seq, "openai-text", dst, None)
        for src, seq, dst in [
            ("end_turn", None, "stop"),
            ("stop_sequence", "###", "stop"),
            ("max_tokens", None, "length"),
            ("model_context_window_exceeded", None, "length"),
            ("refusal", None, "content_filter"),
            ("pause_turn", None, "stop"),
            ("tool_use", None, "stop"),
        ]
    ),
    *(
        ("anthropic-messages", src, seq, "anthropic-text", dst, dst_seq)
        for src, seq, dst, dst_seq in [
            ("end_turn", None, "stop_sequence", None),
            ("stop_sequence", "###", "stop_sequence", "###"),
            ("max_tokens", None, "max_tokens", None),
            ("model_context_window_exceeded", None, "max_tokens", None),
            ("refusal", None, "stop_sequence", None),
            ("pause_turn", None, "stop_sequence", None),
            ("tool_use", None, "stop_sequence", None),
        ]
    ),
    ("anthropic-text", "stop_sequence", "\n\nHuman:", "openai-text", "stop", None),
    ("anthropic-text", "max_tokens", None, "openai-text", "length", None),
    ("anthropic-text", "stop_sequence", "\n\nHuman:", "openai-chat", "stop", None),
    ("anthropic-text", "max_tokens", None, "openai-chat", "length", None),
    # The matched sequence reaches Messages clients; the API's own turn delimiter, which ends
    # every normal answer, is an end of turn.
    ("anthropic-text", "stop_sequence", "###", "anthropic-messages", "stop_sequence", "###"),
    ("anthropic-text", "stop_sequence", "\n\nHuman:", "anthropic-messages", "end_turn", None),
    ("anthropic-text", "stop_sequence", None, "anthropic-messages", "end_turn", None),
    ("anthropic-text", "max_tokens", None, "anthropic-messages", "max_tokens", None),
]


@pytest.mark.parametrize(
    ("up", "native", "seq", "client", "expected", "expected_seq"), FINISH_CASES
)
def test_finish_reasons_map(
    up: str, native: str, seq: str | None, client: str, expected: str, expected_seq: str | None
) -> None:
    """Every finish reason the source can say becomes the documented one in the target
    (formats.md §5), the stop sequence travels where the target has a field for it, and the
    final response agrees."""
    body, a = run(up, client, upstream(up, ["some text"], native, seq))
    seen = observe(client, body)
    assert seen.finishes == {0: expected}
    if client in ("anthropic-messages", "anthropic-text"):
        assert seen.stop == expected_seq
    assert seen.text == "some text"
    assert a.result.outcome == "complete"
    assert response_view(client, a.result.response)[1] == expected
    if client == "openai-text":
        assert sdk_read(body).finishes == {0: expected}


@pytest.mark.parametrize(
    ("up", "stream"),
    [("openai-text", completions_upstream), ("openai-chat", chat_upstream)],
)
def test_vllm_stop_reason_extension_becomes_the_stop_sequence(
    up: str, stream: Callable[..., bytes]
) -> None:
    """A Completions or Chat ``stop`` finish naming the matched string (vLLM ``stop_reason``)
    reaches a Messages client as ``stop_sequence`` with that string, and Text Completions as
    ``stop``."""
    data = stream(["a"], "stop", extra={"stop_reason": "###"})
    seen = read_messages(run(up, "anthropic-messages", data)[0])
    assert (seen.finish, seen.stop) == ("stop_sequence", "###")
    seen = read_anthropic_text(run(up, "anthropic-text", data)[0])
    assert (seen.finish, seen.stop) == ("stop_sequence", "###")
    data = stream(["a"], "stop", extra={"stop_reason": 50256})  # a token id
    seen = read_messages(run(up, "anthropic-messages", data)[0])
    assert (seen.finish, seen.stop) == ("end_turn", None)


@pytest.mark.parametrize("client", ALL_FORMATS[1:])
def test_an_azure_preamble_does_not_start_a_completions_stream(client: str) -> None:
    """Azure opens a stream with a content-filter chunk that has neither id nor choices
    (``id: ""``, ``model: ""``, ``created: 0``): the stream's id, model and time come from the
    first real chunk, as with a Chat upstream."""
    preamble = sse(
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
        }
    )
    data = preamble + completions_upstream(["Hi"], "stop")
    body, a = run("openai-text", client, data)
    assert a.result.outcome == "complete"
    response = a.result.response
    assert response is not None
    assert response["id"].endswith("up1")
    assert response["model"] == "gpt-inst"
    if "created" in response:
        assert response["created"] == CREATED
    assert b'"model":""' not in body


# -- n > 1 ----------------------------------------------------------------------------------------


def test_completions_to_chat_keeps_two_choices() -> None:
    """n=2 Completions → Chat: both choices, their own text and finish, indexes kept."""
    body, a = run("openai-text", "openai-chat", completions_upstream(PLAIN, "length", n=2))
    seen = read_chat(body)
    assert seen.texts == {0: "Hello, world!", 1: "[1]Hello[1], [1]world[1]!"}
    assert seen.finishes == {0: "length", 1: "length"}
    texts, _ = response_view("openai-chat", a.result.response)
    assert texts == seen.texts


def test_chat_to_completions_keeps_two_choices() -> None:
    """n=2 Chat → Completions: both choices in ascending order, read back by the SDK."""
    body, a = run("openai-chat", "openai-text", chat_upstream(UNICODE, "stop", n=2))
    seen = read_openai_text(body)
    expected = {0: "".join(UNICODE), 1: "".join(f"[1]{p}" for p in UNICODE)}
    assert seen.texts == expected
    assert seen.finishes == {0: "stop", 1: "stop"}
    sdk = sdk_read(body)
    assert (sdk.texts, sdk.finishes) == (expected, {0: "stop", 1: "stop"})
    texts, _ = response_view("openai-text", a.result.response)
    assert texts == expected
    assert a.result.response is not None
    assert [c["finish_reason"] for c in a.result.response["choices"]] == ["stop", "stop"]


def test_choice_one_first_still_appears_in_ascending_order() -> None:
    """A Chat upstream whose choice 1 speaks first: choice 0 appears first (with empty text),
    and nothing is lost or invented."""
    env = {"id": "chatcmpl-z", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    data = b"".join(
        sse({**env, "choices": [{"index": c, "delta": {"content": t}, "finish_reason": f}]})
        for c, t, f in [(1, "b", None), (0, "a", None), (1, "", "length"), (0, "", "stop")]
    )
    body, _ = run("openai-chat", "openai-text", data + b"data: [DONE]\n\n")
    seen = read_openai_text(body)
    assert (seen.texts, seen.finishes) == ({0: "a", 1: "b"}, {0: "stop", 1: "length"})
    first = json.loads(decode(body)[0].data)
    assert first["choices"] == [{"text": "", "index": 0, "logprobs": None, "finish_reason": None}]


def test_anthropic_text_writes_only_choice_zero() -> None:
    """Text Completions has no choices: choice 0 is written, the others are dropped."""
    body, _ = run("openai-chat", "anthropic-text", chat_upstream(PLAIN, "stop", n=2))
    seen = read_anthropic_text(body)
    assert (seen.text, seen.finish) == ("Hello, world!", "stop_sequence")


# -- usage ----------------------------------------------------------------------------------------

USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}


@pytest.mark.parametrize("up", ["openai-chat", "anthropic-messages"])
def test_usage_chunk_only_when_asked(up: str) -> None:
    """openai-text with include_usage: one ``choices: []`` usage chunk after the finishes, then
    ``[DONE]``, read by the SDK; without include_usage: no usage chunk."""
    if up == "openai-chat":
        data = chat_upstream(PLAIN, "stop", usage=USAGE)
        expected = USAGE
    else:
        data = messages_upstream(PLAIN)
        expected = {"prompt_tokens": 7, "completion_tokens": 9, "total_tokens": 16}
    body, a = run(up, "openai-text", data, include_usage=True)
    seen = read_openai_text(body)
    assert seen.usage == expected
    assert sdk_read(body).usage == expected
    assert a.result.response is not None
    assert a.result.response["usage"] == expected
    body, _ = run(up, "openai-text", data)
    assert read_openai_text(body).usage is None
    assert b'"usage"' not in body


def test_completions_usage_is_read() -> None:
    """A Completions usage chunk (with cache details) reaches Chat and Messages clients."""
    usage = {**USAGE, "prompt_tokens_details": {"cached_tokens": 5}}
    data = completions_upstream(PLAIN, "stop", usage=usage)
    body, a = run("openai-text", "openai-chat", data, include_usage=True)
    assert read_chat(body).usage == usage
    assert a.result.usage is not None
    assert (a.result.usage.input_tokens, a.result.usage.output_tokens) == (11, 4)
    body, _ = run("openai-text", "anthropic-messages", data)
    assert read_messages(body).usage == {
        "input_tokens": 6,
        "output_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 5,
    }


def test_no_usage_chunk_when_upstream_reported_none() -> None:
    """Text Completions has no usage: an include_usage client gets no invented usage chunk."""
    body, a = run("anthropic-text", "openai-text", atext_upstream(PLAIN), include_usage=True)
    assert read_openai_text(body).usage is None
    assert a.result.usage is None
    assert a.result.response is not None
    assert "usage" not in a.result.response


# -- errors and truncation ------------------------------------------------------------------------

ERRORS: dict[str, bytes] = {
    "openai-text": sse({"error": {"message": "Overloaded!", "type": "server_error"}}),
    "openai-chat": sse({"error": {"message": "Overloaded!", "type": "server_error"}}),
    "anthropic-messages": sse(
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded!"}}, "error"
    ),
    "anthropic-text": sse(
        {"error": {"type": "overloaded_error", "message": "Overloaded!"}}, "error"
    ),
}


def _cut_then(up: str, tail: bytes) -> bytes:
    """The source stream without its end, then ``tail``."""
    return upstream(up, PLAIN, None) + tail


@pytest.mark.parametrize(("up", "client"), PAIRS)
def test_upstream_error_becomes_the_error_tail(up: str, client: str) -> None:
    """An upstream error event mid-stream: the text so far, then the client's error tail with
    the upstream message; never a normal finish; outcome failed."""
    body, a = run(up, client, _cut_then(up, ERRORS[up]))
    seen = observe(client, body)
    assert seen.text == "Hello, world!"
    assert seen.finishes == {}
    assert seen.error is not None
    assert seen.error["message"] == "Overloaded!"
    assert a.result.outcome == "failed"
    assert a.result.error is not None
    assert a.result.error.message == "Overloaded!"
    assert response_view(client, a.result.response) == ({0: "Hello, world!"}, None)


@pytest.mark.parametrize(("up", "client"), PAIRS)
def test_truncated_stream_becomes_the_error_tail(up: str, client: str) -> None:
    """close() before any finish: the client's error tail, outcome truncated."""
    body, a = run(up, client, _cut_then(up, b""))
    seen = observe(client, body)
    assert seen.text == "Hello, world!"
    assert seen.finishes == {}
    assert seen.error is not None
    assert "truncated" in seen.error["message"]
    assert a.result.outcome == "truncated"


@pytest.mark.parametrize("up", ["openai-chat", "anthropic-messages", "anthropic-text"])
def test_openai_sdk_raises_on_the_error_tail(up: str) -> None:
    """openai-python raises ``APIError`` carrying our message on the Completions error tail
    (after yielding the text before it)."""
    body, _ = run(up, "openai-text", _cut_then(up, ERRORS[up]))
    assert body.endswith(b"data: [DONE]\n\n")
    texts: list[str] = []

    def consume() -> None:
        stream = sdk_client(body).completions.create(model="m", prompt="p", stream=True)
        for chunk in stream:
            texts.extend(c.text for c in chunk.choices)

    with pytest.raises(openai.APIError) as info:
        consume()
    assert info.value.message == "Overloaded!"
    assert "".join(texts) == "Hello, world!"
    body, _ = run(up, "openai-text", _cut_then(up, b""))
    with pytest.raises(openai.APIError, match="truncated"):
        list(sdk_client(body).completions.create(model="m", prompt="p", stream=True))


def test_error_tail_done_is_configurable() -> None:
    """``done_after_error`` adds ``[DONE]`` after the Text Completions error event (off by
    default) and removes it from the Completions tail (on by default)."""
    data = _cut_then("openai-chat", ERRORS["openai-chat"])
    body, _ = run("openai-chat", "anthropic-text", data, done_after_error=True)
    assert read_anthropic_text(body, done_after_error=True).done
    body, _ = run("openai-chat", "openai-text", data, done_after_error=False)
    assert not body.endswith(b"data: [DONE]\n\n")
    assert json.loads(decode(body)[-1].data)["error"]["message"] == "Overloaded!"


def test_error_type_and_code_are_kept() -> None:
    """Anthropic error types reach Completions clients with the OpenAI code; OpenAI types reach
    Text Completions clients as Anthropic types."""
    body, _ = run(
        "anthropic-text", "openai-text", _cut_then("anthropic-text", ERRORS["anthropic-text"])
    )
    err = read_openai_text(body).error
    assert err == {
        "message": "Overloaded!",
        "type": "overloaded_error",
        "param": None,
        "code": "overloaded",
    }
    rate = sse({"error": {"message": "slow down", "type": "rate_limit_exceeded"}})
    body, _ = run("openai-text", "anthropic-text", _cut_then("openai-text", rate))
    assert read_anthropic_text(body).error == {"type": "rate_limit_error", "message": "slow down"}


def test_finish_reason_error_is_an_error() -> None:
    """A Completions ``finish_reason: "error"`` (OpenRouter) is an error, never a stop."""
    body, a = run("openai-text", "anthropic-text", completions_upstream(["x"], "error"))
    assert read_anthropic_text(body).error is not None
    assert a.result.outcome == "failed"


def test_fail_gives_the_error_tail() -> None:
    """``fail()`` mid-stream: the Text Completions error event with the reason."""
    a = adapter("openai-text", "anthropic-text")
    body = a.feed(completions_upstream(["x"], None, done=False)) + a.fail("ReadTimeout")
    seen = read_anthropic_text(body)
    assert seen.error == {"type": "api_error", "message": "ReadTimeout"}
    assert a.result.outcome == "failed"


# -- 2023-01-01 (cumulative) input ----------------------------------------------------------------


@pytest.mark.parametrize("client", ["openai-text", "openai-chat", "anthropic-messages"])
def test_cumulative_input_yields_deltas(client: str) -> None:
    """2023-01-01 cumulative text becomes each event's new part; ``[DONE]`` ends normally."""
    texts = ["Hel", "Hello", "Hello 世界", "Hello 世界 🚀", "Hello 世界 🚀"]
    body, a = run("anthropic-text", client, cumulative_upstream(texts))
    seen = observe(client, body)
    assert seen.text == "Hello 世界 🚀"
    assert seen.finish == ("end_turn" if client == "anthropic-messages" else "stop")
    assert a.result.outcome == "complete"
    assert response_view(client, a.result.response)[0] == {0: "Hello 世界 🚀"}
    if client == "openai-text":
        assert sdk_read(body).texts == {0: "Hello 世界 🚀"}
    if client == "anthropic-messages":
        assert seen.stop is None  # (the API's turn delimiter: an end of turn)


def test_cumulative_done_without_stop_reason_is_a_normal_stop() -> None:
    """2023-01-01 ``[DONE]`` without a stop reason: a normal stop (formats.md §4.4)."""
    body, a = run("anthropic-text", "openai-text", cumulative_upstream(["a", "ab"], None))
    seen = read_openai_text(body)
    assert (seen.text, seen.finish) == ("ab", "stop")
    assert a.result.outcome == "complete"


def test_cumulative_truncated_flag_is_max_tokens() -> None:
    """``truncated: true`` without a stop reason → ``length`` / ``max_tokens``."""
    data = cumulative_upstream(["a", "ab"], None, None, truncated=True)
    assert read_openai_text(run("anthropic-text", "openai-text", data)[0]).finish == "length"
    assert (
        read_messages(run("anthropic-text", "anthropic-messages", data)[0]).finish == "max_tokens"
    )


@pytest.mark.parametrize("client", ["openai-text", "anthropic-messages", "openai-chat"])
def test_cumulative_exception_is_the_error_tail(client: str) -> None:
    """A non-null ``exception``: the text so far (including what that event added), then the
    error tail with the exception's message; never a normal stop."""
    data = cumulative_upstream(["a", "ab"], None, None, done=False)
    failed = {"completion": "abc", "stop_reason": None, "truncated": False, "stop": None}
    data += sse({**failed, "exception": "Model overloaded", "log_id": "abc123"})
    data += b"data: [DONE]\n\n"
    body, a = run("anthropic-text", client, data)
    seen = observe(client, body)
    assert seen.text == "abc"
    assert seen.finishes == {}
    assert seen.error is not None
    assert seen.error["message"] == "Model overloaded"
    assert a.result.outcome == "failed"


def test_cumulative_revision_is_never_duplicated(caplog: pytest.LogCaptureFixture) -> None:
    """A 2023-01-01 event that revises earlier text: nothing re-sent (no duplication), a
    warning, and later events continue from the revised text."""
    caplog.set_level(logging.WARNING, logger="asgi_sse_adapter")
    texts = ["Hello wor", "Hello world", "Hello World, again", "Hello World, again!"]
    body, a = run("anthropic-text", "openai-text", cumulative_upstream(texts))
    seen = read_openai_text(body)
    assert seen.text == "Hello world!"
    assert a.result.outcome == "complete"
    assert [r for r in caplog.records if "revised" in r.getMessage()]


def test_cumulative_detected_by_legacy_keys_only() -> None:
    """An untyped event without legacy keys is read as incremental; typed 2023-06-01 events
    are never cumulative even when a ``log_id`` is present."""
    data = sse({"completion": "ab"}) + sse({"completion": "ab", "stop_reason": "max_tokens"})
    assert read_openai_text(run("anthropic-text", "openai-text", data)[0]).text == "abab"
    typed = {"type": "completion", "log_id": "x", "completion": "ab", "stop_reason": None}
    data = sse(typed, "completion") + sse({**typed, "stop_reason": "max_tokens"}, "completion")
    assert read_openai_text(run("anthropic-text", "openai-text", data)[0]).text == "abab"


def test_cumulative_reader_when_configured() -> None:
    """The 2023-01-01 format's reader treats every completion event as cumulative, even
    without legacy keys."""
    reader = anthropic_text.FORMAT_2023_01_01.reader()
    parts = [
        p
        for t in ("a", "ab", "abc")
        for p in reader.read(ServerSentEvent(json.dumps({"completion": t})))
    ]
    assert [getattr(p, "text", None) for p in parts[1:]] == ["a", "b", "c"]


# -- the 2023-01-01 writer ------------------------------------------------------------------------


@pytest.fixture
def cumulative_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Resolve ``anthropic-text`` to the 2023-01-01 variant (how a proxy would choose it)."""
    monkeypatch.setitem(registry._cache, "anthropic-text", anthropic_text.FORMAT_2023_01_01)


@pytest.mark.usefixtures("cumulative_client")
@pytest.mark.parametrize("up", ["openai-text", "openai-chat", "anthropic-messages"])
def test_cumulative_writer(up: str) -> None:
    """2023-01-01 output: whole text so far on every event, legacy fields, one final event with
    the stop reason, ``[DONE]``; the response holds the same text."""
    body, a = run(up, "anthropic-text", upstream(up, UNICODE, NATIVE_STOP[up]))
    seen = read_anthropic_text_2023_01_01(body)
    assert seen.text == "".join(UNICODE)
    assert seen.finish == "stop_sequence"
    assert a.result.response is not None
    assert a.result.response["completion"] == "".join(UNICODE)
    assert a.result.response["stop_reason"] == "stop_sequence"
    assert set(a.result.response) == LEGACY_KEYS


@pytest.mark.usefixtures("cumulative_client")
def test_cumulative_writer_error_and_round_trip() -> None:
    """2023-01-01 error tail: ``exception`` set, then ``[DONE]``; our own reader reads the
    written stream back to the same text and the same error."""
    data = _cut_then("openai-chat", ERRORS["openai-chat"])
    body, _ = run("openai-chat", "anthropic-text", data)
    seen = read_anthropic_text_2023_01_01(body)
    assert seen.error == {"message": "Overloaded!"}
    assert seen.text == "Hello, world!"
    back, b = run("anthropic-text", "openai-chat", body)
    assert (read_chat(back).text, b.result.outcome) == ("Hello, world!", "failed")
    body, _ = run("openai-text", "anthropic-text", completions_upstream(PLAIN, "length"))
    assert read_anthropic_text_2023_01_01(body).finish == "max_tokens"
    back, b = run("anthropic-text", "openai-chat", body)
    assert (read_chat(back).text, read_chat(back).finish) == ("Hello, world!", "length")


# -- dropped content ------------------------------------------------------------------------------


def _chat_with_tools_and_reasoning() -> bytes:
    env = {"id": "chatcmpl-t", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    deltas: list[tuple[dict[str, Any], str | None]] = [
        ({"role": "assistant", "reasoning_content": "thinking..."}, None),
        ({"content": "Let me check."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "g", "arguments": "{}"},
                    }
                ]
            },
            None,
        ),
        ({}, "tool_calls"),
    ]
    data = b"".join(
        sse({**env, "choices": [{"index": 0, "delta": d, "finish_reason": f}]}) for d, f in deltas
    )
    return data + b"data: [DONE]\n\n"


@pytest.mark.parametrize("client", TEXT_FORMATS)
def test_tool_calls_and_reasoning_are_dropped_with_one_warning(
    client: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tool calls and reasoning cannot be written in the text formats: the text survives, the
    finish is a plain stop, and each kind is warned about once per stream."""
    caplog.set_level(logging.DEBUG, logger="asgi_sse_adapter")
    body, a = run("openai-chat", client, _chat_with_tools_and_reasoning())
    seen = observe(client, body)
    assert seen.texts == {0: "Let me check."}
    assert seen.finish in ("stop", "stop_sequence")
    assert b"thinking" not in body
    assert b"call_1" not in body
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len([w for w in warnings if "tool calls" in w]) == 1
    assert response_view(client, a.result.response)[0] == {0: "Let me check."}


def test_refusal_is_sent_as_text() -> None:
    """Chat refusal text reaches Completions and Text Completions clients as text."""
    env = {"id": "chatcmpl-r", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    data = sse({**env, "choices": [{"index": 0, "delta": {"refusal": "I can't."}}]})
    data += sse({**env, "choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]})
    for client in TEXT_FORMATS:
        body, a = run("openai-chat", client, data)
        assert observe(client, body).text == "I can't."
        assert response_view(client, a.result.response)[0] == {0: "I can't."}


# -- keep-alives ----------------------------------------------------------------------------------


def test_keepalives() -> None:
    """Text Completions has a native ``event: ping`` (with native_keepalive); Completions
    keep-alives are comments; both are valid between events."""
    a = adapter("openai-chat", "anthropic-text", native_keepalive=True)
    data = chat_upstream(PLAIN)
    half = len(data) // 2
    body = a.heartbeat() + a.feed(data[:half]) + a.heartbeat() + a.feed(data[half:]) + a.close()
    seen = read_anthropic_text(body)
    assert seen.events.count("ping") == 2
    assert seen.text == "Hello, world!"
    assert a.heartbeat() == b""
    b = adapter("openai-chat", "openai-text", native_keepalive=True)
    assert b.heartbeat() == b": ping\n\n"
    body = b.feed(data[:half]) + b.heartbeat() + b.feed(data[half:]) + b.close()
    assert sdk_read(body).texts == {0: "Hello, world!"}


# -- chunking invariance --------------------------------------------------------------------------


def _short(up: str) -> bytes:
    return upstream(up, ["Hé", "🚀\n"], NATIVE_STOP[up])


@pytest.mark.parametrize(("up", "client"), PAIRS)
def test_every_single_split_gives_the_same_bytes(up: str, client: str) -> None:
    """Splitting the upstream bytes at any one position (inside JSON, inside a UTF-8 character,
    between CR and LF) changes nothing the client receives."""
    data = _short(up).replace(b"\n\n", b"\r\n\r\n", 1)
    whole, _ = run(up, client, data)
    observe(client, whole)
    for cut in range(1, len(data)):
        assert run(up, client, data, [cut])[0] == whole, cut


@pytest.mark.parametrize("client", ["openai-text", "openai-chat"])
def test_every_single_split_of_cumulative_input(client: str) -> None:
    """The same for 2023-01-01 input with ``[DONE]``."""
    data = cumulative_upstream(["a", "aé", "aé🚀"])
    whole, _ = run("anthropic-text", client, data)
    assert observe(client, whole).text == "aé🚀"
    for cut in range(1, len(data)):
        assert run("anthropic-text", client, data, [cut])[0] == whole, cut


@settings(max_examples=150, deadline=None)
@given(
    pair=st.sampled_from(PAIRS),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=30),
    unicode=st.booleans(),
)
def test_any_splits_give_the_same_bytes(
    pair: tuple[str, str], cuts: list[int], unicode: bool
) -> None:
    """Any set of split positions gives the same client bytes as one feed."""
    up, client = pair
    data = upstream(up, UNICODE if unicode else PLAIN, NATIVE_STOP[up])
    cuts = [c % (len(data) + 1) for c in cuts]
    whole, _ = run(up, client, data)
    assert run(up, client, data, cuts)[0] == whole


# -- identity -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "data"),
    [
        ("openai-text", completions_upstream(UNICODE, "stop")),
        ("anthropic-text", atext_upstream(UNICODE, "stop_sequence", "\n\nHuman:")),
        ("anthropic-text", cumulative_upstream(["a", "ab"], None)),
    ],
)
def test_identity_passes_bytes_through(fmt: str, data: bytes) -> None:
    """Same format on both sides: bytes unchanged, the end recognised, the response built."""
    body, a = run(fmt, fmt, data, collect_response=True)
    assert body == data
    assert a.result.outcome == "complete"
    assert response_view(fmt, a.result.response)[0][0] in ("".join(UNICODE), "ab")


@pytest.mark.parametrize("fmt", TEXT_FORMATS)
def test_identity_truncation_and_error(fmt: str) -> None:
    """Identity mode: a cut stream gets the error tail; an upstream error is recognised."""
    data = upstream(fmt, PLAIN, None)
    body, a = run(fmt, fmt, data)
    assert a.result.outcome == "truncated"
    assert observe(fmt, body).error is not None
    body, a = run(fmt, fmt, data + ERRORS[fmt])
    assert a.result.outcome == "failed"


# -- odd input ------------------------------------------------------------------------------------

ODD_COMPLETIONS = [
    b'data: {"id":7,"created":"x","model":null,"choices":"nope"}\n\n',
    b'data: {"created":1e300,"choices":[null,5,{"text":5,"index":"x"},{"index":-1,"text":"n"}]}'
    b"\n\n",
    b'data: {"choices":null,"usage":"lots"}\n\n',
    b'data: {"choices":[{"text":"ok","logprobs":{"tokens":["ok"]}}]}\n\n',
    b"data: \n\n",
    b": comment\n\n",
    b'data: {"choices":[{"index":0,"finish_reason":7}]}\n\n',
    b'data: {"choices":[{"index":0,"text":" go","finish_reason":"weird"}]}\n\n',
    b'data: {"choices":[{"index":0,"text":"after finish"}]}\n\n',
]

ODD_ATEXT = [
    b'event: completion\ndata: {"type":"completion","completion":5,"id":7,"model":[]}\n\n',
    b'event: completion\ndata: {"type":"completion","completion":"ok","stop_reason":7}\n\n',
    b"event: ping\ndata: \n\n",
    b'event: something\ndata: {"type":"unknown"}\n\n',
    b'data: {"completion":null,"exception":{},"truncated":"yes"}\n\n',
    b'event: completion\ndata: {"type":"completion","completion":" go","stop_reason":"weird"}\n\n',
    b'event: completion\ndata: {"type":"completion","completion":"after finish"}\n\n',
]


ODD_CASES = [
    (up, events, client)
    for up, events in [("openai-text", ODD_COMPLETIONS), ("anthropic-text", ODD_ATEXT)]
    for client in ALL_FORMATS
    if client != up
]


@pytest.mark.parametrize(("up", "events", "client"), ODD_CASES)
def test_odd_shapes_are_skipped_not_fatal(up: str, events: list[bytes], client: str) -> None:
    """Wrong types and missing fields are skipped; an unknown finish reason is a normal stop;
    text after a finish is ignored; the stream still ends properly."""
    body, a = run(up, client, b"".join(events))
    seen = observe(client, body)
    assert seen.text == "ok go"
    assert seen.error is None
    assert a.result.outcome == "complete"


@pytest.mark.parametrize("bad", [b"data: [1, 2]\n\n", b"data: not json\n\n", b'data: "str"\n\n'])
@pytest.mark.parametrize("up", TEXT_FORMATS)
def test_unreadable_event_is_an_error_tail(up: str, bad: bytes) -> None:
    """An event that is not a JSON object ends the stream with the error tail (no crash)."""
    client = "openai-chat" if up == "anthropic-text" else "anthropic-text"
    body, a = run(up, client, upstream(up, ["x"], None) + bad)
    seen = observe(client, body)
    assert seen.error is not None
    assert "malformed" in seen.error["message"]
    assert a.result.outcome == "failed"


def test_error_variants_in_text_completions() -> None:
    """Text Completions errors: typed, untyped with ``event: error``, data-only
    ``{"error":…}``, and an error whose ``error`` is not an object."""
    for event in [
        sse({"type": "error", "error": {"type": "api_error", "message": "m"}}),
        sse({"error": {"type": "api_error", "message": "m"}}, "error"),
        sse({"error": {"type": "api_error", "message": "m"}}),
    ]:
        body, a = run("anthropic-text", "openai-text", event)
        assert read_openai_text(body).error is not None
        assert a.result.error is not None
        assert a.result.error.message == "m"
    body, a = run("anthropic-text", "openai-text", sse({"error": "oops"}, "error"))
    assert a.result.outcome == "failed"


# -- format objects and writers directly ----------------------------------------------------------


def test_format_registration() -> None:
    """Both modules are registered with their family, endpoint and error envelopes; the
    2023-01-01 variant is reachable but not registered."""
    text = get_format("openai-text")
    assert (text, text.family, text.endpoint) == (openai_text.FORMAT, "openai", "/v1/completions")
    atext = get_format("anthropic-text")
    assert (atext, atext.family, atext.endpoint) == (
        anthropic_text.FORMAT,
        "anthropic",
        "/v1/complete",
    )
    assert anthropic_text.FORMAT_2023_01_01 is not atext
    error = StreamError("overloaded_error", "busy")
    assert text.error_body(error) == (
        503,
        {
            "error": {
                "message": "busy",
                "type": "overloaded_error",
                "param": None,
                "code": "overloaded",
            }
        },
    )
    assert atext.error_body(error) == (
        529,
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
    )
    assert text.parse_error_body(429, {"error": {"message": "x"}}).type == "rate_limit_error"
    assert atext.parse_error_body(500, "boom").message == "boom"


def test_writers_without_any_part() -> None:
    """A writer that saw nothing still ends validly and builds an empty response."""
    from asgi_sse_adapter.content import Content

    for fmt, reader in [
        (openai_text.FORMAT, read_openai_text),
        (anthropic_text.FORMAT, read_anthropic_text),
        (anthropic_text.FORMAT_2023_01_01, read_anthropic_text_2023_01_01),
    ]:
        options = WriterOptions(clock=lambda: float(CREATED), id_factory=lambda: "w")
        writer = fmt.writer(options, Content())
        out: list[bytes] = []
        writer.end(out)
        if fmt is openai_text.FORMAT:
            assert b"".join(out) == b"data: [DONE]\n\n"
        else:
            reader(b"".join(out))
        response = writer.response()
        assert response.get("completion", "") == ""
        assert response.get("choices", []) == []


# -- non-streamed responses as parts (used by the proxy for JSON replies) ------------------------


def _render(parts: list[Any], client: str) -> dict[str, Any]:
    from asgi_sse_adapter.content import Content

    content = Content()
    writer = get_format(client).writer(WriterOptions(id_factory=lambda: "r"), content)
    for part in parts:
        content.add(part)
    return writer.response()


def test_completions_response_parts() -> None:
    """A non-streamed ``text_completion`` (two choices, usage) renders as the same content in
    Chat and Messages; an error body is an error."""
    response = {
        "id": "cmpl-9",
        "object": "text_completion",
        "created": 5,
        "model": "gpt-inst",
        "choices": [
            {"text": "Hi 🚀", "index": 0, "logprobs": None, "finish_reason": "length"},
            {"text": "Yo", "index": 1, "logprobs": None, "finish_reason": "stop"},
        ],
        "usage": USAGE,
    }
    parts = openai_text.response_parts(response)
    chat = _render(parts, "openai-chat")
    assert chat["id"] == "chatcmpl-9"
    assert [c["message"]["content"] for c in chat["choices"]] == ["Hi 🚀", "Yo"]
    assert [c["finish_reason"] for c in chat["choices"]] == ["length", "stop"]
    assert chat["usage"] == USAGE
    assert _render(parts, "openai-text") == {**response, "id": "cmpl-9"}
    messages = _render(parts, "anthropic-messages")
    assert (messages["content"], messages["stop_reason"]) == (
        [{"type": "text", "text": "Hi 🚀"}],
        "max_tokens",
    )
    error = openai_text.response_parts(
        {"error": {"message": "bad", "type": "invalid_request_error"}}
    )
    assert error == [StreamError("invalid_request_error", "bad")]
    assert get_format("openai-text").response_parts is openai_text.response_parts


@pytest.mark.parametrize(
    "response",
    [
        {
            "type": "completion",
            "id": "compl_7",
            "completion": " Hi\n",
            "stop_reason": "stop_sequence",
            "stop": "\n\nHuman:",
            "model": "claude-2.0",
        },
        {
            "completion": " Hi\n",
            "stop_reason": "stop_sequence",
            "truncated": False,
            "stop": "\n\nHuman:",
            "exception": None,
            "log_id": "compl_7",
            "model": "claude-2.0",
        },
    ],
    ids=["2023-06-01", "2023-01-01"],
)
def test_text_completions_response_parts(response: dict[str, Any]) -> None:
    """A non-streamed Text Completion of either version renders in Completions and Messages
    and back in its own shape."""
    parts = anthropic_text.response_parts(response)
    text = _render(parts, "openai-text")
    assert (text["id"], text["choices"][0]["text"]) == ("cmpl-7", " Hi\n")
    assert text["choices"][0]["finish_reason"] == "stop"
    messages = _render(parts, "anthropic-messages")
    assert (messages["stop_reason"], messages["stop_sequence"]) == ("end_turn", None)
    own = _render(parts, "anthropic-text")
    assert own == {
        "type": "completion",
        "id": "compl_7",
        "completion": " Hi\n",
        "stop_reason": "stop_sequence",
        "stop": None,  # (an end of turn, as this writer says it: the finish-reason tests)
        "model": "claude-2.0",
    }


def test_text_completions_error_response_parts() -> None:
    """Text Completions error bodies and ``exception`` responses are errors."""
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    assert anthropic_text.response_parts(body) == [StreamError("overloaded_error", "busy")]
    legacy = {"completion": "", "stop_reason": None, "exception": "boom", "log_id": "x"}
    parts = anthropic_text.response_parts(legacy)
    assert parts[-1] == StreamError("api_error", "boom")
