"""Mounting the gateway inside an existing Starlette app, next to its other routes.

``UpstreamProxy`` is a plain ASGI app, so ``Mount`` puts it under a prefix: here ``/llm``, so
OpenAI clients use ``base_url="http://host/llm/v1"`` and Anthropic clients
``base_url="http://host/llm"``. The app's own routes are unaffected, and its lifespan closes the
proxy's connection pool on shutdown (a mounted app gets no lifespan events of its own)::

    python -m example_app.fake_upstream --port 8081 &
    uvicorn example_app.mounted:app --port 8080
    curl http://127.0.0.1:8080/health
    curl -N http://127.0.0.1:8080/llm/v1/chat/completions -H 'content-type: application/json' \\
        -d '{"model": "claude-sonnet-4-6", "stream": true,
             "messages": [{"role": "user", "content": "Hi"}]}'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from asgi_sse_adapter import UpstreamProxy


def create_app(upstream_url: str) -> Starlette:
    """An app with its own routes and the gateway (to ``upstream_url``) mounted at ``/llm``."""
    llm = UpstreamProxy(upstream_url, upstream_format="anthropic-messages")

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": "demo", "llm_base_url": str(request.base_url) + "llm/v1"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await llm.aclose()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/api/me", whoami),
            Mount("/llm", app=llm),
        ],
        lifespan=lifespan,
    )


app = create_app(os.environ.get("LLM_UPSTREAM_URL", "http://127.0.0.1:8081"))
