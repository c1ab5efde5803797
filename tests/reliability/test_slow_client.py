"""A slow client never makes the adapter buffer without bound.

The client is a raw socket with a tiny receive buffer that reads one byte a second; the
upstream (or the app) could produce 50 MB at once. Backpressure must hold the producer back:
uvicorn's ``send`` waits for the socket to drain, so the proxy stops reading its upstream and
the upstream's own ``send`` waits in turn. The bytes the producer managed to write stay a small
constant (socket buffers and transport high-water marks), flat while the client dawdles, and the
process's memory does not grow with the 50 MB on offer.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from asgi_sse_adapter import SSEAdapterMiddleware, UpstreamProxy
from tests.reliability._support import (
    Message,
    Receive,
    Scope,
    Send,
    client_request,
    port_of,
    rss_bytes,
    settle,
    wait_until,
)
from tests.servers import ServerFactory

OFFER = 50 * 1024 * 1024
#: What may sit in kernel socket buffers (autotuned up to ``tcp_rmem``/``tcp_wmem`` maxima) and
#: transport high-water marks along the path: a third of the offer.
IN_FLIGHT = 16 * 1024 * 1024
READ_FOR = 3.0


def _chunk(n: int) -> bytes:
    payload = {
        "id": "chatcmpl-slow",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": f"token {n:08d} " * 16}}],
    }
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class Firehose:
    """An ASGI app streaming OpenAI Chat chunks as fast as ``send`` lets it, up to ``OFFER``
    bytes; ``sent`` counts what ``send`` accepted, ``gone`` whether the client left."""

    def __init__(self) -> None:
        self.sent = 0
        self.done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Stream until ``OFFER`` bytes were accepted or the client is gone."""
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        chunks = [_chunk(n) for n in range(64)]
        n = 0
        try:
            while self.sent < OFFER:
                data = b"".join(chunks[(n + i) % 64] for i in range(16))
                await send({"type": "http.response.body", "body": data, "more_body": True})
                self.sent += len(data)
                n += 16
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            pass
        finally:
            self.done = True


def _slow_read(port: int, path: str, body: bytes, samples: Callable[[], None]) -> bytes:
    """POST ``body`` with a 4 KiB receive buffer, read the response head, then one byte of
    body a second for ``READ_FOR`` seconds, calling ``samples`` after each read; return what
    was read."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = b""
        while b"\r\n\r\n" not in received:  # the response head at full speed
            received += sock.recv(1)
        deadline = time.monotonic() + READ_FOR
        while time.monotonic() < deadline:
            received += sock.recv(1)
            samples()
            time.sleep(1.0)
        return received


def _run(port: int, path: str, body: bytes, firehose: Firehose) -> dict[str, Any]:
    settle()
    rss = rss_bytes()
    sent: list[int] = []
    received = _slow_read(port, path, body, lambda: sent.append(firehose.sent))
    growth = rss_bytes() - rss
    assert received.startswith(b"HTTP/1.1 200")
    assert wait_until(lambda: firehose.done, timeout=5.0), "the producer did not stop"
    return {"sent": sent, "rss_growth": growth}


@pytest.mark.usefixtures("quiet")
def test_slow_client_through_proxy_holds_upstream_back(servers: ServerFactory) -> None:
    """Proxy mode, OpenAI Chat upstream translated for an Anthropic client reading one byte a
    second: the upstream cannot push more than the in-flight bound of its 50 MB, stops
    advancing while the client dawdles, RSS grows by less than that bound, and the upstream
    stops once the client hangs up."""
    firehose = Firehose()
    upstream = servers(firehose)
    proxy = servers(UpstreamProxy(upstream.url, upstream_format="openai-chat"))
    body = json.dumps(client_request("anthropic-messages")).encode()
    result = _run(port_of(proxy.url), "/v1/messages", body, firehose)
    sent = result["sent"]
    assert sent[-1] < IN_FLIGHT, sent
    assert sent[-1] - sent[1] < 256 * 1024, sent  # buffers full after a second: stalled
    assert result["rss_growth"] < IN_FLIGHT, result
    print(f"\nproxy: upstream wrote {sent[-1] / 1e6:.2f} MB of {OFFER / 1e6:.0f} MB; RSS {result}")


@pytest.mark.usefixtures("quiet")
def test_slow_client_through_middleware_holds_app_back(servers: ServerFactory) -> None:
    """Middleware mode, an app streaming as fast as it can, translated for an Anthropic client
    reading one byte a second: the app's ``send`` waits; the same bounds hold."""
    firehose = Firehose()
    app = SSEAdapterMiddleware(
        firehose, upstream_format="openai-chat", client_format="anthropic-messages"
    )
    server = servers(app)
    body = json.dumps(client_request("anthropic-messages")).encode()
    result = _run(port_of(server.url), "/v1/messages", body, firehose)
    sent = result["sent"]
    assert sent[-1] < IN_FLIGHT, sent
    assert sent[-1] - sent[1] < 256 * 1024, sent
    assert result["rss_growth"] < IN_FLIGHT, result
    print(f"\nmiddleware: app wrote {sent[-1] / 1e6:.2f} MB of {OFFER / 1e6:.0f} MB; {result}")


def test_firehose_is_fast_without_backpressure() -> None:
    """The producer really can flood: with a client that reads everything it reaches 50 MB,
    so the bounds above are backpressure at work, not a slow producer."""
    import asyncio

    firehose = Firehose()

    async def main() -> None:
        requests = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> Message:
            return requests.pop() if requests else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            return None

        await firehose({"type": "http"}, receive, send)

    started = time.monotonic()
    asyncio.run(main())
    assert firehose.sent >= OFFER
    assert time.monotonic() - started < 10


@pytest.mark.usefixtures("quiet")
def test_client_that_stops_reading_releases_the_upstream(servers: ServerFactory) -> None:
    """Proxy mode, a client that sends its request, reads the response head and then nothing
    (a frozen tab, a half-open connection): once the proxy's sends have waited the idle limit
    for it, the stream is abandoned as a disconnect, without a farewell that would wait too, and
    the upstream connection is closed, so the upstream stops generating."""
    firehose = Firehose()
    upstream = servers(firehose)
    proxy = servers(UpstreamProxy(upstream.url, upstream_format="openai-chat", idle_timeout=0.5))
    body = json.dumps(client_request("openai-chat")).encode()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port_of(proxy.url)))
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"content-type: application/json\r\n"
            + f"content-length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1)
        assert head.startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        # Not reading: the proxy's send waits; the upstream is held back meanwhile.
        assert wait_until(lambda: firehose.done, timeout=8.0), "the upstream was never closed"
        assert 0.4 < time.monotonic() - started < 5.0
