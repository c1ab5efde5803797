"""FastAPI: your endpoint streams Anthropic Messages, your clients get OpenAI Chat.

The same shape as ``starlette_app``: the endpoint streams Anthropic Messages events (here the
fake upstream's canned answer, one event every 50 ms, standing in for a call to an Anthropic
model) and ``SSEAdapterMiddleware`` turns them into OpenAI Chat Completions chunks::

    uvicorn example_app.fastapi_app:app --port 8000
    curl -N http://127.0.0.1:8000/v1/chat/completions -H 'content-type: application/json' \\
        -d '{"model": "claude-sonnet-4-6", "stream": true, "messages": []}'

Routes that do not answer ``text/event-stream`` (``/health``, the OpenAPI docs) pass through
untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from asgi_sse_adapter import SSEAdapterMiddleware
from example_app.fake_upstream import render_stream

app = FastAPI(title="Anthropic model, OpenAI clients")
app.add_middleware(
    SSEAdapterMiddleware,
    upstream_format="anthropic-messages",  # what the endpoints stream
    client_format="openai-chat",  # what the clients receive
    heartbeat_interval=15.0,  # seconds of silence before a ": ping" comment
)


async def anthropic_events(request: dict[str, Any]) -> AsyncIterator[bytes]:
    """Your model call: Anthropic Messages SSE events, as they are produced."""
    for event in render_stream("/v1/messages", request):
        await asyncio.sleep(0.05)
        yield event


@app.post("/v1/chat/completions")
async def chat_completions(body: dict[str, Any]) -> StreamingResponse:
    return StreamingResponse(anthropic_events(body), media_type="text/event-stream")


@app.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
