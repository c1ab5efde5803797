"""A gateway: ``UpstreamProxy`` in front of an LLM upstream that speaks Anthropic Messages.

Every client format is served on its own endpoint and translated to the upstream's; here the
upstream is the fake (``example_app.fake_upstream``), so nothing leaves the machine::

    python -m example_app.fake_upstream --port 8081 &
    uvicorn example_app.gateway:app --port 8080

    from openai import OpenAI            # or anthropic.Anthropic(base_url="http://127.0.0.1:8080")
    client = OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="unused")
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], stream=True
    )

For a real upstream, set ``LLM_UPSTREAM_URL=https://api.anthropic.com`` and pass
``api_key=os.environ["ANTHROPIC_API_KEY"]``: the gateway injects it, and never forwards the
clients' own credentials.
"""

from __future__ import annotations

import os

from asgi_sse_adapter import UpstreamProxy


def create_app(upstream_url: str) -> UpstreamProxy:
    """The gateway in front of the Anthropic Messages upstream at ``upstream_url``."""
    return UpstreamProxy(
        upstream_url,
        upstream_format="anthropic-messages",
        model_map={"gpt-4o-mini": "claude-sonnet-4-6"},  # what OpenAI clients ask for → upstream
        heartbeat_interval=15.0,
    )


app = create_app(os.environ.get("LLM_UPSTREAM_URL", "http://127.0.0.1:8081"))
