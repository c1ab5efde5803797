"""Views of the test Django project.

The LLM views are async and return ``StreamingHttpResponse`` over an async generator, split into
small uneven chunks. ``messages_stream`` streams Anthropic Messages events, ``chat_stream`` OpenAI
Chat chunks. The answer names the request's ``model``, so tests can tell the request body reached
the view intact; the model ``"forever"`` streams text deltas until the client goes away, and
``"then-work"`` works on after its last event (``AFTER_STREAM`` records it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.gzip import gzip_page

CHUNK = 29  # bytes per chunk: cuts events, lines and JSON anywhere
FOREVER_INTERVAL = 0.02  # seconds between deltas of the endless stream


def _event(name: str, data: dict[str, object]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_head() -> bytes:
    """``message_start`` and the text block's ``content_block_start``."""
    message: dict[str, object] = {
        "id": "msg_django",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-django",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 7, "output_tokens": 1},
    }
    block = {"type": "text", "text": ""}
    return _event("message_start", {"type": "message_start", "message": message}) + _event(
        "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    )


def anthropic_delta(text: str) -> bytes:
    """One ``content_block_delta`` with a text delta."""
    delta = {"type": "text_delta", "text": text}
    return _event(
        "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    )


def anthropic_events(text: str) -> bytes:
    """A complete Anthropic Messages stream whose answer is ``text`` (two text deltas)."""
    half = len(text) // 2
    usage = {"output_tokens": 3}
    stop = {"stop_reason": "end_turn", "stop_sequence": None}
    return b"".join(
        [
            anthropic_head(),
            _event("ping", {"type": "ping"}),
            anthropic_delta(text[:half]),
            anthropic_delta(text[half:]),
            _event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            _event("message_delta", {"type": "message_delta", "delta": stop, "usage": usage}),
            _event("message_stop", {"type": "message_stop"}),
        ]
    )


def chat_events(text: str) -> bytes:
    """A complete OpenAI Chat stream whose answer is ``text``, with a usage chunk and ``[DONE]``."""
    half = len(text) // 2

    def chunk(choices: list[dict[str, object]], **extra: object) -> bytes:
        body = {
            "id": "chatcmpl-django",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": "gpt-django",
            "choices": choices,
            **extra,
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    def delta(content: str, **fields: object) -> dict[str, object]:
        return {"index": 0, "delta": {**fields, "content": content}, "finish_reason": None}

    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    return b"".join(
        [
            chunk([delta("", role="assistant")]),
            chunk([delta(text[:half])]),
            chunk([delta(text[half:])]),
            chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            chunk([], usage=usage),
            b"data: [DONE]\n\n",
        ]
    )


def _model(request: HttpRequest) -> str:
    try:
        payload = json.loads(request.body or b"{}")
    except ValueError:
        payload = {}
    model = payload.get("model") if isinstance(payload, dict) else None
    return str(model)


async def _chunks(raw: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(raw), CHUNK):
        yield raw[start : start + CHUNK]
        await asyncio.sleep(0)


# What ``messages_stream``'s ``"then-work"`` model did after its last event.
AFTER_STREAM: list[str] = []


async def _then_work(raw: bytes) -> AsyncIterator[bytes]:
    """``raw``, then work after its last event (as an app saving its usage), recorded."""
    try:
        async for chunk in _chunks(raw):
            yield chunk
        await asyncio.sleep(0.2)
        AFTER_STREAM.append("saved")
    finally:
        AFTER_STREAM.append("finally")


async def _forever() -> AsyncIterator[bytes]:
    yield anthropic_head()
    while True:
        await asyncio.sleep(FOREVER_INTERVAL)
        yield anthropic_delta("tick ")


def _sse(content: AsyncIterator[bytes]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["X-Django-View"] = "stream"
    return response


async def messages_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream an Anthropic Messages answer (the middleware translates or re-chunks it)."""
    model = _model(request)
    if model == "forever":
        return _sse(_forever())
    if model == "then-work":
        return _sse(_then_work(anthropic_events("Hello")))
    return _sse(_chunks(anthropic_events(f"Hello from Django to {model}")))


async def chat_stream(request: HttpRequest) -> StreamingHttpResponse:
    """Stream an OpenAI Chat answer (the middleware translates or re-chunks it)."""
    return _sse(_chunks(chat_events(f"Hello from Django to {_model(request)}")))


@gzip_page
async def gzipped_messages_stream(request: HttpRequest) -> StreamingHttpResponse:
    """``messages_stream`` through Django's ``GZipMiddleware``: one gzip member per chunk."""
    return await messages_stream(request)


async def json_view(request: HttpRequest) -> HttpResponse:
    """A plain JSON response, which the middleware must leave byte-for-byte alone."""
    return JsonResponse({"ok": True, "path": request.path})
