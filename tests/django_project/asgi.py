"""ASGI entry point of the test Django project, wrapped in ``SSEAdapterMiddleware``.

The path picks the pair: the views under ``/openai/`` stream OpenAI Chat, the others Anthropic
Messages; ``…/v1/chat/completions`` serves OpenAI Chat clients, ``…/v1/messages`` Anthropic
clients (same format on both sides: plain re-chunking). Everything else is left alone.
``build_application(**options)`` wraps the same Django handler with other middleware options.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

from asgi_sse_adapter.middleware import SSEAdapterMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_project.settings")

django_application = get_asgi_application()


def select(scope: Any) -> tuple[str, str] | None:
    """The format pair for a request path (``None``: not an LLM stream)."""
    path = str(scope.get("path", ""))
    upstream = "openai-chat" if path.startswith("/openai/") else "anthropic-messages"
    if path.endswith("/v1/chat/completions"):
        return (upstream, "openai-chat")
    if path.endswith("/v1/messages"):
        return (upstream, "anthropic-messages")
    return None


def build_application(**options: Any) -> SSEAdapterMiddleware:
    """Django wrapped in the middleware with ``options`` (``on_complete``…)."""
    return SSEAdapterMiddleware(django_application, select=select, **options)


application = build_application()
