"""Bugs the reliability suite found in ``adapter.py`` / ``formats/``, kept as regression tests
with the failing inputs that showed them (R1, R2, R2b, R3, R4, R5: all fixed)."""

from __future__ import annotations

import json
import logging
import re

import pytest

from asgi_sse_adapter import StreamAdapter
from tests.reliability._contracts import adapt_and_check
from tests.reliability._support import source


def _chat(
    index: int, delta: dict[str, object], finish: str | None = None, **extra: object
) -> bytes:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    chunk.update(extra)
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _text(index: int, text: str, finish: str | None = None) -> bytes:
    chunk = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": index, "text": text, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    """These inputs log warnings by design."""
    caplog.set_level(logging.CRITICAL + 1, "asgi_sse_adapter")


@pytest.mark.parametrize(
    ("upstream", "client", "field", "value"),
    [
        ("openai-chat", "openai-text", b'"created":', b"1000000000000000000000000000000"),
        ("openai-chat", "openai-responses", b'"created":', b"1e30"),
        ("openai-text", "openai-chat", b'"created":', b"18446744073709551616"),
        ("openai-responses", "openai-chat", b'"created_at":', b"1e30"),
    ],
    ids=["chat-to-text", "chat-to-responses", "text-to-chat", "responses-to-chat"],
)
def test_r1_huge_timestamp_does_not_escape(
    upstream: str, client: str, field: bytes, value: bytes
) -> None:
    """A real stream whose first event carries a timestamp no client can use (beyond 64
    bits): the adapter must not crash; the value is ignored (or the stream ends with the error
    tail), never raised out of ``feed``, and the client stream stays valid."""
    raw = source(upstream, "text").raw
    start = raw.index(field) + len(field)
    end = start + len(re.match(rb"[0-9.e+]+", raw[start:]).group())  # type: ignore[union-attr]
    raw = raw[:start] + value + raw[end:]
    # adapt_and_check asks for usage (the OpenAI clients' usual ``stream_options``), checks
    # the client format's contract and that nothing raised.
    adapt_and_check(upstream, client, [raw])


@pytest.mark.parametrize("client", ["openai-text", "anthropic-messages"])
def test_r2_unfinished_empty_choice_is_a_truncation(client: str) -> None:
    """n=2 Chat upstream: choice 0 got only its role chunk, choice 1 finished, then the
    upstream closed without ``[DONE]``. Choice 0 never said how it ends: truncated."""
    raw = (
        _chat(0, {"role": "assistant", "content": ""})
        + _chat(1, {"role": "assistant", "content": ""})
        + _chat(1, {"content": "Bye"})
        + _chat(1, {}, "stop")
    )
    adapter = StreamAdapter(upstream_format="openai-chat", client_format=client)
    adapter.feed(raw)
    adapter.close()
    assert adapter.result.outcome == "truncated"


@pytest.mark.parametrize("fmt", ["openai-chat", "openai-text"])
def test_r3_identity_multi_choice_truncation(fmt: str) -> None:
    """n=2 upstream, identity mode: choice 0 is mid-answer, choice 1 finished, the upstream
    closes cleanly without ``[DONE]``. Translating, this is a truncation (error tail); in
    identity mode it must be too, not a ``[DONE]`` that tells the client all went well."""
    if fmt == "openai-chat":
        raw = (
            _chat(0, {"role": "assistant", "content": ""})
            + _chat(1, {"role": "assistant", "content": ""})
            + _chat(0, {"content": "Hel"})
            + _chat(1, {"content": "Bye"})
            + _chat(1, {}, "stop")
        )
    else:
        raw = _text(0, "Hel") + _text(1, "Bye") + _text(1, "", "stop")
    translated = StreamAdapter(
        upstream_format=fmt,
        client_format="anthropic-messages" if fmt == "openai-chat" else "openai-chat",
    )
    translated.feed(raw)
    translated.close()
    assert translated.result.outcome == "truncated"  # holds today
    adapter = StreamAdapter(upstream_format=fmt, client_format=fmt)
    out = adapter.feed(raw) + adapter.close()
    assert adapter.result.outcome == "truncated"
    assert b"[DONE]" not in out or b'"error"' in out


@pytest.mark.parametrize(
    ("upstream", "client"), [("openai-chat", "openai-text"), ("openai-text", "openai-chat")]
)
def test_r4_absurd_choice_index_is_bounded(upstream: str, client: str) -> None:
    """One small upstream event naming choice 100 000: the client output stays small (the
    index is refused, or the stream ends with the error tail), instead of 100 000 filler
    chunks (19 MB here; 1.5 GB for 10**7; an unbounded loop for 2**40)."""
    if upstream == "openai-chat":
        raw = _chat(0, {"role": "assistant", "content": "Hi"}) + _chat(100_000, {"content": "!"})
    else:
        raw = _text(0, "Hi") + _text(100_000, "!")
    adapter = StreamAdapter(upstream_format=upstream, client_format=client)
    out = adapter.feed(raw) + adapter.close()
    assert len(out) < 64 * 1024, len(out)


def test_r2b_filler_choices_are_finished() -> None:
    """A Completions upstream jumps from choice 0 to choice 5 and ends with ``[DONE]``: the
    Chat writer announces choices 1…4 (each index only after the lower ones), so it must end
    them too, or a client that waits for every choice's finish reason waits forever."""
    raw = _text(0, "Hi") + _text(5, " there") + b"data: [DONE]\n\n"
    adapter = StreamAdapter(upstream_format="openai-text", client_format="openai-chat")
    out = adapter.feed(raw) + adapter.close()
    finished: set[int] = set()
    announced: set[int] = set()
    for line in out.decode().split("\n"):
        if line.startswith("data: {"):
            for choice in json.loads(line[6:])["choices"]:
                announced.add(choice["index"])
                if choice["finish_reason"] is not None:
                    finished.add(choice["index"])
    assert announced == finished, (announced, finished)


@pytest.mark.parametrize("client", ["openai-chat", "anthropic-messages", "openai-responses"])
def test_r5_lone_surrogate_with_stdlib_json(client: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """R5 (found by tests/test_text_runs.py): without orjson, the standard library reads an
    upstream's lone ``\\ud83d`` escape into a lone surrogate, and writing it as UTF-8 raised
    ``UnicodeEncodeError`` out of ``feed()``. It is now written as its escape again."""
    from asgi_sse_adapter import _json
    from tests.test_text_runs import use_stdlib_json

    use_stdlib_json(monkeypatch)
    adapter = StreamAdapter(upstream_format="openai-chat", client_format=client)
    raw = (
        _chat(0, {"role": "assistant", "content": ""})
        + b'data: {"id":"chatcmpl-1","choices":[{"index":0,"delta":{"content":"a\\ud83d"}}]}\n\n'
        + _chat(0, {}, "stop")
        + b"data: [DONE]\n\n"
    )
    out = adapter.feed(raw) + adapter.close()
    assert adapter.result.outcome == "complete"
    assert b"\\ud83d" in out
    assert _json._dumps_stdlib("a\ud83d") == b'"a\\ud83d"'
