"""Security: header hygiene both ways, the upstream key never shown, no stack traces in
answers, request bodies bounded before anything is forwarded, and the proxy contacts its
configured upstream only (no URL, Host or redirect taken from anyone else).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest

from asgi_sse_adapter import SSEAdapterMiddleware, UpstreamProxy
from asgi_sse_adapter.formats import FORMATS
from example_app.fake_upstream import FakeUpstream
from tests.reliability._support import (
    Message,
    Receive,
    Scope,
    Send,
    client_request,
    endpoint,
    http_client,
    port_of,
    raw_http,
)
from tests.servers import LiveServer, ServerFactory

KEY = "sk-UPSTREAM-0123456789abcdefSECRET"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "transfer-encoding",
    "x-named-in-connection",
}
CLIENT_CREDENTIALS = {"authorization", "x-api-key", "api-key", "cookie"}
#: What a stack trace or an internal path looks like in a message.
TRACE = re.compile(r"Traceback|File \"|\.py\b|line \d+|0x[0-9a-f]{6,}")


def _hostile_request_headers() -> dict[str, str]:
    return {
        "authorization": "Bearer client-key-AAAA",
        "x-api-key": "client-key-BBBB",
        "api-key": "client-key-CCCC",
        "cookie": "session=client-DDDD",
        "connection": "keep-alive, x-named-in-connection",
        "x-named-in-connection": "hop",
        "keep-alive": "timeout=5",
        "proxy-connection": "keep-alive",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
        "te": "trailers",
        "trailer": "x-checksum",
        "upgrade": "websocket",
        "x-forwarded-host": "evil.example",
        "x-request-tag": "kept",
    }


# -- request headers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"api_key": KEY}, "configured"),
        ({}, "none"),
        ({"forward_credentials": True}, "client"),
        ({"forward_credentials": True, "api_key": KEY}, "configured"),
    ],
    ids=["api-key", "no-key", "forward-credentials", "api-key-wins"],
)
@pytest.mark.parametrize("upstream_format", ["openai-chat", "anthropic-messages"])
def test_request_headers_never_forwarded(
    upstream_format: str, options: dict[str, Any], expected: str, servers: ServerFactory
) -> None:
    """Every client endpoint and a passthrough path, with hop-by-hop, proxy and credential
    headers on the request: no hop-by-hop or proxy header reaches the upstream; client
    credentials only with ``forward_credentials`` and no ``api_key``; the configured key as the
    upstream family's own header; Host is the upstream's; ordinary headers pass."""
    fake = FakeUpstream()
    upstream = servers(fake)
    proxy = servers(UpstreamProxy(upstream.url, upstream_format=upstream_format, **options))
    targets: list[tuple[str, dict[str, Any] | None]] = [
        (endpoint(c), client_request(c, stream=False)) for c in FORMATS
    ]
    targets.append(("/v1/models", None))
    with http_client(timeout=5) as http:
        for path, body in targets:
            http.post(proxy.url + path, json=body, headers=_hostile_request_headers())
            seen = fake.last_headers
            assert seen is not None
            # httpx opens its own hop with its own ``connection: keep-alive``; nothing of ours.
            assert seen.get("connection", "keep-alive") == "keep-alive"
            assert not (HOP_BY_HOP - {"connection"}) & set(seen), (path, HOP_BY_HOP & set(seen))
            assert seen["host"] == upstream.url.removeprefix("http://")
            assert seen["x-request-tag"] == "kept"
            auth = "x-api-key" if upstream_format.startswith("anthropic") else "authorization"
            if expected == "configured":
                assert seen[auth] == (KEY if auth == "x-api-key" else f"Bearer {KEY}")
                assert not (CLIENT_CREDENTIALS - {auth}) & set(seen), path
            elif expected == "none":
                assert not CLIENT_CREDENTIALS & set(seen), path
            else:
                assert seen["authorization"] == "Bearer client-key-AAAA"
                assert seen["x-api-key"] == "client-key-BBBB"
            # The gateway's cookies are never the upstream's business.
            assert "cookie" not in seen, path
            assert "client-key" not in json.dumps(seen) or expected == "client"


# -- response headers --------------------------------------------------------------------------

BAD_RESPONSE_HEADERS = [
    (b"set-cookie", b"sid=upstream-secret"),
    (b"connection", b"x-hop"),
    (b"x-hop", b"1"),
    (b"keep-alive", b"timeout=5"),
    (b"proxy-authenticate", b"Basic"),
    (b"trailer", b"x-sum"),
    (b"upgrade", b"h2c"),
    (b"server", b"upstream/1.0"),
    (b"x-internal-host", b"10.0.0.7"),
    (b"www-authenticate", b"Bearer"),
    (b"x-request-id", b"req_ok"),
    (b"retry-after", b"1"),
    (b"x-should-retry", b"false"),
    (b"x-ratelimit-remaining-requests", b"9"),
]
ALLOWED = {"x-request-id", "retry-after", "x-should-retry", "x-ratelimit-remaining-requests"}


class HeaderUpstream:
    """An upstream that answers every request with ``BAD_RESPONSE_HEADERS`` (an event stream,
    JSON, an error or plain text depending on the path) and records the cookies it is sent."""

    def __init__(self) -> None:
        self.cookies: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer with hostile headers."""
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        headers = {bytes(k).lower(): bytes(v) for k, v in scope["headers"]}
        cookie = headers.get(b"cookie")
        self.cookies.append(cookie.decode() if cookie else None)
        path = scope["path"]
        if path.endswith("/sse"):
            status, ctype = 200, b"text/event-stream"
            body = b'data: {"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":"stop"}]}'
            body += b"\n\ndata: [DONE]\n\n"
        elif path.endswith("/error"):
            status, ctype = 500, b"application/json"
            body = b'{"error":{"message":"boom","type":"server_error"}}'
        else:
            status, ctype = 200, b"application/json"
            body = json.dumps(
                {
                    "id": "c",
                    "object": "chat.completion",
                    "created": 1,
                    "model": "m",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "x"},
                            "finish_reason": "stop",
                        }
                    ],
                }
            ).encode()
        start_headers = [(b"content-type", ctype), *BAD_RESPONSE_HEADERS]
        await send({"type": "http.response.start", "status": status, "headers": start_headers})
        await send({"type": "http.response.body", "body": body})


def test_response_headers_allow_listed_and_cookies_never_stored(servers: ServerFactory) -> None:
    """Whatever the upstream sends back (SSE, JSON, an error, a passthrough path), the client
    sees only the allow-listed request-id and rate-limit headers plus the proxy's own; and a
    ``Set-Cookie`` from the upstream is never replayed on a later request."""
    hostile = HeaderUpstream()
    upstream = servers(hostile, lifespan="off")
    cases = [
        ("/v1/chat/completions", client_request("openai-chat"), "/v1/chat/completions/sse"),
        ("/v1/chat/completions", client_request("openai-chat", stream=False), None),
        ("/v1/messages", client_request("anthropic-messages"), "/v1/chat/completions/error"),
        ("/v1/other", {"x": 1}, None),
    ]
    with http_client(timeout=5) as http:
        for client_path, body, upstream_path in cases:
            proxy = servers(
                UpstreamProxy(
                    upstream.url, upstream_format="openai-chat", upstream_path=upstream_path
                )
            )
            response = http.post(proxy.url + client_path, json=body)
            names = {k.lower() for k in response.headers}
            own = {"content-type", "content-length", "cache-control", "x-accel-buffering"}
            own |= {"date", "server", "transfer-encoding"}  # uvicorn's own
            assert names - own <= ALLOWED, (client_path, names - own - ALLOWED)
            assert names >= ALLOWED, (client_path, ALLOWED - names)
            assert "upstream/1.0" not in response.headers.get("server", "")
            assert "set-cookie" not in names
            assert "upstream-secret" not in str(response.headers)
    assert hostile.cookies == [None] * len(cases)


# -- the key and stack traces --------------------------------------------------------------------


def _failure_scenarios() -> Iterator[tuple[str, str, dict[str, Any], dict[str, str]]]:
    """(name, client format, request body, headers) of failure scenarios."""
    for client in FORMATS:
        for knob, value in (
            ("status", "401"),
            ("status", "429"),
            ("status", "500"),
            ("status", "529"),
            ("fail-after", "3"),
            ("cut-mid-event", "2"),
            ("error-after", "4"),
            ("truncate-after", "5"),
            ("stall", "3"),
            ("header-delay", "2"),
        ):
            if knob in ("stall", "header-delay") and client not in ("openai-chat", "openai-text"):
                continue  # timeouts take a while: two client formats are enough
            yield f"{knob}={value}", client, client_request(client), {f"x-fake-{knob}": value}
        yield (
            "non-stream 500",
            client,
            client_request(client, stream=False),
            {"x-fake-status": "500"},
        )
        yield "bad json", client, {"not": "valid"}, {"x-fake-scenario": "nonsense"}


def test_key_never_shown_and_no_stack_traces(
    servers: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """With ``api_key`` set, across upstream error statuses, broken, cut, errored, truncated,
    stalled (idle timeout) and slow (first-byte timeout) streams, an unreachable upstream,
    invalid requests and oversized bodies, for every client format: the key is in no response
    body or header and in no log record at INFO or above (message, arguments or traceback),
    and no answer carries a stack trace or a source path."""
    caplog.set_level(logging.INFO)
    fake = FakeUpstream()
    upstream = servers(fake)
    options: dict[str, Any] = {
        "api_key": KEY,
        "idle_timeout": 0.3,
        "first_byte_timeout": 0.5,
        "max_request_body": 4096,
    }
    proxies = {
        fmt: servers(UpstreamProxy(upstream.url, upstream_format=fmt, **options))
        for fmt in ("openai-chat", "anthropic-messages")
    }
    # A port bound but never listening: connections to it are refused.
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))
        unreachable = servers(
            UpstreamProxy(
                f"http://127.0.0.1:{dead.getsockname()[1]}",
                upstream_format="openai-chat",
                **options,
            )
        )
        answers: list[tuple[str, int, str, bytes]] = []
        with http_client(timeout=10) as http:
            for live in proxies.values():
                for name, client, body, headers in _failure_scenarios():
                    response = http.post(live.url + endpoint(client), json=body, headers=headers)
                    answers.append(
                        (name, response.status_code, str(response.headers), response.read())
                    )
                big = {"model": "m", "messages": [{"role": "user", "content": "x" * 10_000}]}
                response = http.post(live.url + "/v1/chat/completions", json=big)
                assert response.status_code == 413
                answers.append(("413", 413, str(response.headers), response.read()))
            for client in FORMATS:
                response = http.post(
                    unreachable.url + endpoint(client), json=client_request(client)
                )
                assert response.status_code == 502
                answers.append(("unreachable", 502, str(response.headers), response.read()))
    assert len(answers) > 100, len(answers)
    print(f"\n{len(answers)} failure answers checked")
    statuses = {status for _, status, _, _ in answers}
    assert {200, 401, 413, 429, 502, 503, 529} <= statuses, statuses
    for name, _, text, content in answers:
        assert KEY not in text, name
        assert KEY.encode() not in content, name
        assert not TRACE.search(content.decode("utf-8", "replace")), (name, content[-300:])
    assert fake.requests > 0
    records = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert records
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert KEY not in text, (record.name, text[:300])


@pytest.mark.anyio
async def test_app_exception_text_never_reaches_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Middleware mode: an app that fails mid-stream with a message full of secrets and a
    traceback: the client gets the error tail naming only the exception class; the details go
    to the log."""
    from tests.reliability._support import drive, http_scope

    secret = "password=hunter2 at /srv/app/secrets.py line 12"

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
        raise ValueError(secret)

    for client in FORMATS:
        mw = SSEAdapterMiddleware(
            app, upstream_format="openai-chat", client_format=client, heartbeat_interval=None
        )
        caplog.clear()
        with caplog.at_level(logging.ERROR, "asgi_sse_adapter"):
            exchange = await drive(mw, http_scope(endpoint(client)))
        body = exchange.body.decode()
        assert "hunter2" not in body
        assert not TRACE.search(body), body
        assert "ValueError" in body
        assert any(r.exc_info for r in caplog.records)


# -- request size ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*(endpoint(c) for c in FORMATS), "/v1/files"])
def test_oversized_request_body_gets_413_before_forwarding(
    path: str, servers: ServerFactory
) -> None:
    """Bodies over ``max_request_body`` get 413 whether declared by Content-Length or sent
    chunked without one, on every client endpoint and on passthrough paths, and the upstream
    never hears of them; a body at the limit goes through."""
    fake = FakeUpstream()
    upstream = servers(fake)
    limit = 2048
    proxy = servers(
        UpstreamProxy(upstream.url, upstream_format="openai-chat", max_request_body=limit)
    )
    port = port_of(proxy.url)
    over = json.dumps({"model": "m", "prompt": "x" * limit}).encode()
    declared = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(over)}\r\nconnection: close\r\n\r\n"
    ).encode() + over
    chunked = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        "transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    ).encode()
    for start in range(0, len(over), 500):
        piece = over[start : start + 500]
        chunked += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    chunked += b"0\r\n\r\n"
    lying = (
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {10**12}\r\nconnection: close\r\n\r\n{{}}"
    ).encode()
    for request in (declared, chunked, lying):
        answer = raw_http(port, request)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert b"request body larger than 2048 bytes" in answer
    assert fake.requests == 0
    client = next((c for c in FORMATS if endpoint(c) == path), "openai-chat")
    fits = json.dumps(client_request(client, stream=False)).encode()
    with http_client(timeout=5) as http:
        response = http.post(proxy.url + path, content=fits.ljust(limit, b" "))
    assert response.status_code != 413
    assert fake.requests == 1


# A body nested deeper than any JSON parser recurses: the stdlib's ``json`` raises RecursionError
# (not ValueError) on it, orjson refuses it as invalid.
DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize("path", [endpoint(c) for c in FORMATS])
def test_hostile_nesting_gets_400_without_forwarding(path: str, servers: ServerFactory) -> None:
    """A request body nested 200 000 deep gets the client format's 400 from the proxy, the
    upstream never hears of it, and the proxy goes on serving."""
    fake = FakeUpstream()
    upstream = servers(fake)
    proxy = servers(UpstreamProxy(upstream.url, upstream_format="openai-chat"))
    client = next(c for c in FORMATS if endpoint(c) == path)
    with http_client(timeout=10) as http:
        response = http.post(
            proxy.url + path, content=DEEP, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text[:200]
        assert "not valid JSON" in response.text
        assert fake.requests == 0
        fine = http.post(proxy.url + path, json=client_request(client, stream=False))
    assert fine.status_code == 200
    assert fake.requests == 1


@pytest.mark.anyio
async def test_hostile_nesting_reaches_the_app_as_sent() -> None:
    """The middleware, reading a request body for usage negotiation, leaves a body nested
    200 000 deep to the app: the app receives it unchanged and answers."""
    seen: list[bytes] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})

    middleware = SSEAdapterMiddleware(
        app, upstream_format="anthropic-messages", client_format="openai-chat"
    )
    sent: list[Message] = []
    chunks = [DEEP[i : i + 65536] for i in range(0, len(DEEP), 65536)]
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    await middleware(scope, receive, send)
    assert seen == [DEEP]
    assert sent[0]["status"] == 400


# -- only the configured upstream --------------------------------------------------------------


class Recorder:
    """A server that must never be contacted: it records every request target it gets."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record and answer 200."""
        if scope["type"] != "http":
            return
        self.seen.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"evil"})


class Redirector:
    """An upstream that redirects every request to ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 307 to ``target``."""
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        headers = [(b"location", self.target.encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 307, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})


def _targets(evil: str) -> list[str]:
    host = evil.removeprefix("http://")
    return [
        f"{evil}/v1/messages",  # absolute-form
        f"{evil}/v1/models",
        f"@{host}/v1/models",  # userinfo trick: base URL + "@host/…"
        f"//{host}/v1/messages",  # network-path reference
        f"/%2F%2F{host}/v1/models",
        "/v1/../../x",
        "/v1/%2e%2e/%2e%2e/x",
        f"/v1/messages?url={evil}",
        f"/v1/models#@{host}",
        "*",
        host,  # authority-form
    ]


@pytest.mark.parametrize(
    "http",
    [
        "h11",
        pytest.param(
            "httptools",
            marks=pytest.mark.skipif(
                find_spec("httptools") is None,
                reason="uvicorn's optional httptools parser is not installed here",
            ),
        ),
    ],
)
def test_proxy_contacts_only_its_upstream(
    http: str, servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Request targets in absolute form, authority form, ``@host`` and ``//host`` forms, dot
    segments and encoded slashes, a Host header and X-Forwarded-Host naming another server,
    environment proxy settings and an upstream redirect: the proxy answers every one (a 4xx
    for targets that are not paths) and only ever contacts its configured upstream, never
    outside its base path."""
    evil_app = Recorder()
    evil = servers(evil_app, http=http, lifespan="off")
    monkeypatch.setenv("HTTP_PROXY", evil.url)
    monkeypatch.setenv("http_proxy", evil.url)
    monkeypatch.setenv("ALL_PROXY", evil.url)
    fake = FakeUpstream()
    upstream = servers(fake, http=http)
    proxies: list[LiveServer] = [
        servers(UpstreamProxy(upstream.url, upstream_format="anthropic-messages"), http=http),
        servers(
            UpstreamProxy(upstream.url + "/v1", upstream_format="anthropic-messages"), http=http
        ),
    ]
    host = evil.url.removeprefix("http://")
    for proxy in proxies:
        for target in _targets(evil.url):
            for method, body in (("GET", b""), ("POST", b'{"model":"m","max_tokens":1}')):
                request = (
                    f"{method} {target} HTTP/1.1\r\nhost: {host}\r\n"
                    f"x-forwarded-host: {host}\r\nx-forwarded-proto: http\r\n"
                    f"forwarded: host={host}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
                ).encode() + body
                answer = raw_http(port_of(proxy.url), request)
                assert re.match(rb"HTTP/1.1 [1-5]\d\d ", answer), (target, answer[:100])
                assert not answer.startswith(b"HTTP/1.1 500"), (target, answer[:300])
                assert b"evil" not in answer.split(b"\r\n\r\n", 1)[-1]
    redirecting = servers(Redirector(evil.url + "/stolen"), lifespan="off")
    via_redirect = servers(UpstreamProxy(redirecting.url, upstream_format="openai-chat"))
    with http_client(timeout=5) as client:
        for path in ("/v1/chat/completions", "/v1/models"):
            client.post(via_redirect.url + path, json=client_request("openai-chat"))
    assert evil_app.seen == []
    assert fake.requests > 0
    for record in fake.request_log:
        assert record.headers["host"] == upstream.url.removeprefix("http://")


def test_dot_segments_cannot_leave_the_base_path(servers: ServerFactory) -> None:
    """An upstream configured under a base path (``http://host/api``): dot segments, encoded
    or not, cannot climb out of it; they get a 400 and the upstream sees nothing outside
    ``/api``."""
    fake = FakeUpstream()
    upstream = servers(fake)
    proxy = servers(UpstreamProxy(upstream.url + "/api", upstream_format="openai-chat"))
    with http_client(timeout=5) as http:
        for path in ("/../v1/models", "/x/../../v1/models", "/%2e%2e/v1/models"):
            answer = raw_http(
                port_of(proxy.url),
                f"GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".encode(),
            )
            assert answer.startswith(b"HTTP/1.1 400"), (path, answer[:200])
        http.get(proxy.url + "/v1/models")
    assert [r.path for r in fake.request_log] == ["/api/v1/models"]
