"""The demo server: a page at ``/`` and a gateway (``UpstreamProxy``) for everything else.

``build_app(upstream_url)`` returns one ASGI app: ``GET /`` serves the page (``static/index.html``
with this demo's settings filled in), ``/static/…`` its script and style sheet, and every other
path, including the ``/v1/…`` LLM endpoints, goes to an ``UpstreamProxy`` in front of an upstream
that speaks Anthropic Messages. Lifespan events go to the proxy, which closes its httpx client on
shutdown. ``python -m example_app`` serves it next to the fake upstream.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from asgi_sse_adapter import UpstreamProxy
from asgi_sse_adapter.session import OnComplete

from .fake_upstream import SCRIPTS, Knobs, render_stream

__all__ = ["STATIC_DIR", "UPSTREAM_FORMAT", "DemoApp", "build_app", "page_config"]

STATIC_DIR = Path(__file__).with_name("static")
UPSTREAM_FORMAT = "anthropic-messages"
"""What the fake upstream speaks in this demo (it can speak every format)."""
MODEL = "claude-sonnet-4-6"
_CONFIG_MARKER = "__DEMO_CONFIG__"


def _midway(scenario: str) -> int:
    """How many upstream events to let through before the injected failure: up to three
    quarters of the scenario's deltas, so some of the answer is on screen when it fails."""
    events = render_stream("/v1/messages", {"stream": True}, Knobs(scenario=scenario))
    deltas = [
        i for i, event in enumerate(events) if event.startswith(b"event: content_block_delta")
    ]
    keep = max(1, -(-3 * len(deltas) // 4))  # ceil(0.75 n)
    return deltas[keep - 1] + 1


def page_config(upstream_url: str, heartbeat_interval: float | None) -> dict[str, Any]:
    """What the page needs to know: the upstream, the heartbeat, the model, the scenarios and
    where to inject the failure ("fail midway") in each."""
    return {
        "upstreamUrl": upstream_url,
        "upstreamFormat": UPSTREAM_FORMAT,
        "heartbeatInterval": heartbeat_interval,
        "model": MODEL,
        "scenarios": {name: {"midway": _midway(name)} for name in SCRIPTS},
    }


class DemoApp:
    """The page and the gateway as one ASGI app (see the module docstring)."""

    def __init__(self, proxy: UpstreamProxy, config: dict[str, Any]) -> None:
        self.proxy = proxy
        # The config goes into a <script type="application/json">: escape what could end it.
        config_json = json.dumps(config).replace("<", "\\u003c")
        index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        self.index_html = index.replace(_CONFIG_MARKER, config_json).replace(
            "__UPSTREAM_URL__", html.escape(str(config["upstreamUrl"]))
        )

        async def index_page(request: Request) -> HTMLResponse:
            return HTMLResponse(self.index_html, headers={"cache-control": "no-cache"})

        self.page = Starlette(
            routes=[
                Route("/", index_page),
                Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] == "http" and (path == "/" or path.startswith("/static/")):
            await self.page(scope, receive, send)
        else:
            await self.proxy(scope, receive, send)  # LLM endpoints, lifespan, anything else


def build_app(
    upstream_url: str,
    *,
    heartbeat_interval: float | None = 1.0,
    on_complete: OnComplete | None = None,
) -> DemoApp:
    """The page plus an ``UpstreamProxy`` to ``upstream_url`` (an Anthropic Messages upstream).

    The heartbeat is short (1 s) so a person sees the keep-alive comments while the fake
    upstream "thinks" (its ``delay`` knob) or streams slowly (``pace``).
    """
    proxy = UpstreamProxy(
        upstream_url,
        upstream_format=UPSTREAM_FORMAT,
        heartbeat_interval=heartbeat_interval,
        on_complete=on_complete,
    )
    return DemoApp(proxy, page_config(upstream_url, heartbeat_interval))
