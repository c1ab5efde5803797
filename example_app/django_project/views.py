"""Views of the example Django project.

``chat_completions`` stands in for a view that calls an Anthropic model and streams its events
back: an **async** view returning ``StreamingHttpResponse`` over an **async** generator (under
ASGI Django consumes a sync iterator whole before sending anything). It streams Anthropic
Messages; ``SSEAdapterMiddleware`` in ``asgi.py`` turns that into OpenAI Chat for the client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.views.decorators.http import require_GET, require_POST

from example_app.fake_upstream import render_stream


async def anthropic_events(request: dict[str, Any]) -> AsyncIterator[bytes]:
    """Your model call: Anthropic Messages SSE events, as they are produced."""
    for event in render_stream("/v1/messages", request):
        await asyncio.sleep(0.05)
        yield event


@require_POST
async def chat_completions(request: HttpRequest) -> StreamingHttpResponse:
    body = json.loads(request.body or b"{}")
    return StreamingHttpResponse(anthropic_events(body), content_type="text/event-stream")


@require_GET
async def index(request: HttpRequest) -> JsonResponse:
    """A plain Django view: the middleware leaves non-stream responses alone."""
    return JsonResponse(
        {
            "django": "/v1/chat/completions streams OpenAI Chat (translated from Anthropic)",
            "gateway": "/gateway/v1/... forwards to the LLM upstream",
        }
    )
