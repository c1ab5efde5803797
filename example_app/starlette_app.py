"""Starlette: your endpoint streams Anthropic Messages, your clients get OpenAI Chat.

The endpoint below stands in for code that calls an Anthropic model and streams its events back
(here: the fake upstream's canned answer, one event every 50 ms). ``SSEAdapterMiddleware``
re-chunks that stream on event boundaries, translates it to OpenAI Chat Completions chunks,
heartbeats while it is silent and ends a failed stream with an OpenAI error chunk and
``data: [DONE]``. Any OpenAI client can use it::

    uvicorn example_app.starlette_app:app --port 8000

    from openai import OpenAI
    client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
    for chunk in client.chat.completions.create(model="m", messages=[], stream=True):
        print(chunk.choices[0].delta.content or "", end="")
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from asgi_sse_adapter import SSEAdapterMiddleware
from example_app.fake_upstream import render_stream


async def anthropic_events(request: dict[str, object]) -> AsyncIterator[bytes]:
    """Your model call: Anthropic Messages SSE events, as they are produced."""
    for event in render_stream("/v1/messages", request):
        await asyncio.sleep(0.05)
        yield event


async def chat_completions(request: Request) -> StreamingResponse:
    body = await request.json()
    return StreamingResponse(anthropic_events(body), media_type="text/event-stream")


app = Starlette(routes=[Route("/v1/chat/completions", chat_completions, methods=["POST"])])
app.add_middleware(
    SSEAdapterMiddleware,
    upstream_format="anthropic-messages",  # what the endpoint streams
    client_format="openai-chat",  # what the clients receive
    heartbeat_interval=15.0,  # seconds of silence before a ": ping" comment
)
