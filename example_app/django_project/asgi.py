"""ASGI entry point: Django wrapped in ``SSEAdapterMiddleware``, a gateway beside it.

``/gateway/…`` goes to an ``UpstreamProxy`` (in front of the Anthropic Messages upstream at
``$LLM_UPSTREAM_URL``, default ``http://127.0.0.1:8081``); everything else goes to Django, whose
event streams the middleware translates from Anthropic Messages to OpenAI Chat. Run it with::

    uvicorn example_app.django_project.asgi:application
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from django.core.asgi import get_asgi_application

from asgi_sse_adapter import SSEAdapterMiddleware, UpstreamProxy

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_app.django_project.settings")

django_app = SSEAdapterMiddleware(
    get_asgi_application(),
    upstream_format="anthropic-messages",  # what the Django views stream
    client_format="openai-chat",  # what the clients receive
)
gateway = UpstreamProxy(
    os.environ.get("LLM_UPSTREAM_URL", "http://127.0.0.1:8081"),
    upstream_format="anthropic-messages",
)


class PrefixDispatcher:
    """Send requests under ``prefix`` to ``mounted`` (prefix stripped from ``path`` and added
    to ``root_path``) and all others to ``default``.

    Lifespan events go to ``mounted`` only: Django does not speak the lifespan protocol, and
    the proxy uses shutdown to close its connection pool.
    """

    def __init__(self, prefix: str, mounted: ASGIApp, default: ASGIApp) -> None:
        self.prefix = prefix.rstrip("/")
        self.mounted = mounted
        self.default = default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.mounted(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            child = dict(scope)
            child["path"] = path[len(self.prefix) :] or "/"
            child["root_path"] = scope.get("root_path", "") + self.prefix
            raw_path = scope.get("raw_path")
            prefix = self.prefix.encode()
            if isinstance(raw_path, bytes) and raw_path.startswith(prefix):
                child["raw_path"] = raw_path[len(prefix) :] or b"/"
            else:
                child.pop("raw_path", None)  # percent-encoded differently: let it be rebuilt
            await self.mounted(child, receive, send)
        else:
            await self.default(scope, receive, send)


application = PrefixDispatcher("/gateway", mounted=gateway, default=django_app)
