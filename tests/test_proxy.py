"""``UpstreamProxy`` against a real upstream on loopback (the fake LLM), served by uvicorn, with
the official SDKs as clients: each format pair, each failure class, header hygiene and
disconnects (issue "UpstreamProxy")."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from importlib.util import find_spec
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest
from anthropic.types import MessageParam
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount

from asgi_sse_adapter import SSEDecoder, StreamReport, UpstreamProxy
from asgi_sse_adapter import proxy as proxy_module
from asgi_sse_adapter import session as session_module
from asgi_sse_adapter.proxy import _close_response, _reclaim_pool
from asgi_sse_adapter.requests import estimate_input_tokens
from example_app.fake_upstream import SCRIPTS, FakeUpstream
from tests.reliability._support import http_scope
from tests.servers import LiveServer, ServerFactory, server_pool


@pytest.fixture
def servers() -> Iterator[ServerFactory]:
    """Start uvicorn servers on demand; stop them all at teardown."""
    with server_pool() as start:
        yield start


@pytest.fixture
def fake() -> FakeUpstream:
    """A fresh fake LLM upstream per test, so its observations are this test's alone."""
    return FakeUpstream()


def _proxy(
    servers: ServerFactory, fake: FakeUpstream, upstream_format: str, **options: Any
) -> tuple[LiveServer, LiveServer]:
    upstream = servers(fake)
    options.setdefault("heartbeat_interval", None)
    proxy = UpstreamProxy(upstream.url, upstream_format=upstream_format, **options)
    return upstream, servers(proxy)


_open_clients: list[openai.OpenAI | anthropic.Anthropic] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    """Close every SDK client a test made: their pooled sockets must not outlive the test
    (a socket collected later warns in whichever test is running then)."""
    yield
    while _open_clients:
        _open_clients.pop().close()


def _openai(url: str, **headers: str) -> openai.OpenAI:
    client = openai.OpenAI(
        api_key="client-key", base_url=url + "/v1", max_retries=0, default_headers=headers
    )
    _open_clients.append(client)
    return client


def _anthropic(url: str, **headers: str) -> anthropic.Anthropic:
    client = anthropic.Anthropic(
        api_key="client-key", base_url=url, max_retries=0, default_headers=headers
    )
    _open_clients.append(client)
    return client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


TEXT = SCRIPTS["text"].text
MESSAGES: Any = [{"role": "user", "content": "hi"}]


# -- format pairs, streaming and not --------------------------------------------------------


def test_openai_chat_client_to_anthropic_upstream_streaming(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An OpenAI Chat client streams from an Anthropic upstream: exact text, finish, usage."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url)
    with client.chat.completions.stream(
        model="claude-x", messages=MESSAGES, stream_options={"include_usage": True}
    ) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == TEXT
    assert final.choices[0].finish_reason == "stop"
    usage = SCRIPTS["text"].usage
    assert final.usage is not None
    assert final.usage.prompt_tokens == usage.prompt_tokens
    # The upstream received an Anthropic Messages request on its own endpoint.
    assert fake.last_path == "/v1/messages"
    assert fake.last_json is not None
    assert fake.last_json["messages"] == [{"role": "user", "content": "hi"}]
    assert fake.last_json["stream"] is True
    assert "max_tokens" in fake.last_json


def test_openai_chat_client_tools_and_thinking(servers: ServerFactory, fake: FakeUpstream) -> None:
    """Parallel tool calls and thinking arrive in an OpenAI client exactly as scripted."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url, **{"x-fake-scenario": "tools"})
    with client.chat.completions.stream(model="claude-x", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    calls = message.tool_calls or []
    script = SCRIPTS["tools"]
    assert [c.function.name for c in calls] == [t.name for t in script.tool_calls]
    assert [json.loads(c.function.arguments) for c in calls] == [t.input for t in script.tool_calls]
    assert [c.id for c in calls] == [t.tool_use_id for t in script.tool_calls]
    assert final.choices[0].finish_reason == "tool_calls"

    thinking = _openai(proxy.url, **{"x-fake-scenario": "thinking"})
    with thinking.chat.completions.stream(model="claude-x", messages=MESSAGES) as stream:
        final = stream.get_final_completion()
    assert (
        getattr(final.choices[0].message, "reasoning_content", None) == SCRIPTS["thinking"].thinking
    )
    assert final.choices[0].message.content == SCRIPTS["thinking"].text


def test_anthropic_client_to_openai_chat_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An Anthropic client (and its stream helper) talks to an OpenAI Chat upstream."""
    _, proxy = _proxy(servers, fake, "openai-chat")
    client = _anthropic(proxy.url)
    with client.messages.stream(model="gpt-x", max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert [b.text for b in final.content if b.type == "text"] == [TEXT]
    assert final.stop_reason == "end_turn"
    assert fake.last_path == "/v1/chat/completions"
    assert fake.last_json is not None
    # Translated requests always ask an OpenAI upstream for usage.
    assert fake.last_json["stream_options"] == {"include_usage": True}
    assert final.usage.output_tokens == SCRIPTS["text"].usage.output_tokens


def test_anthropic_client_gets_a_prompt_size_at_message_start(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An OpenAI-family upstream says the prompt's size only at the end; Anthropic clients read
    it from ``message_start`` (Claude Code's context meter showed 0: CLIProxyAPI#1700). The
    proxy states its estimate of the client's request there; the upstream's count follows."""
    _, proxy = _proxy(servers, fake, "openai-chat")
    long_prompt: list[MessageParam] = [{"role": "user", "content": "word " * 400}]
    with _anthropic(proxy.url).messages.stream(
        model="gpt-x", max_tokens=100, messages=long_prompt, system="be brief"
    ) as stream:
        first = next(iter(stream))
        final = stream.get_final_message()
    assert first.type == "message_start"
    assert first.message.usage.input_tokens == estimate_input_tokens(
        {"system": "be brief", "messages": long_prompt}
    )
    assert first.message.usage.input_tokens > 400
    # The upstream's count (the fake's, through Chat's usage) replaces it.
    assert final.usage.input_tokens < 100
    assert final.usage.cache_read_input_tokens == SCRIPTS["text"].usage.cache_read_input_tokens


def test_count_tokens_is_answered_for_an_openai_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Anthropic's ``/v1/messages/count_tokens`` (Claude Code calls it often, plain and with
    ``?beta=true``) has no OpenAI counterpart: the proxy answers it with the estimate its
    ``message_start`` states, and the upstream sees no request (forwarded, each was a 404)."""
    _, proxy = _proxy(servers, fake, "openai-chat")
    client = _anthropic(proxy.url)
    prompt: list[MessageParam] = [{"role": "user", "content": "word " * 400}]
    tool: Any = {"name": "get", "description": "d", "input_schema": {"type": "object"}}
    counted = client.messages.count_tokens(
        model="gpt-x", messages=prompt, system="be brief", tools=[tool]
    )
    beta = client.beta.messages.count_tokens(model="gpt-x", messages=list(prompt))  # type: ignore[arg-type]
    expected = estimate_input_tokens({"system": "be brief", "messages": prompt, "tools": [tool]})
    assert counted.input_tokens == expected
    assert beta.input_tokens == estimate_input_tokens({"messages": prompt})
    assert fake.requests == 0
    with pytest.raises(anthropic.BadRequestError, match="messages list"):
        client.post("/v1/messages/count_tokens", body={"model": "gpt-x"}, cast_to=object)


def test_count_tokens_is_forwarded_to_an_anthropic_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An Anthropic upstream counts for itself."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    with contextlib.suppress(anthropic.APIStatusError):  # (whatever the fake answers)
        _anthropic(proxy.url).messages.count_tokens(model="claude-x", messages=MESSAGES)
    assert fake.last_path == "/v1/messages/count_tokens"


def test_anthropic_client_streams_tool_calls_from_openai_chat_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """The Claude Code direction with tools: the Anthropic stream helper accumulates every call
    of a streamed Chat upstream (ids, names, arguments streamed in fragments) and the text."""
    _, proxy = _proxy(servers, fake, "openai-chat")
    client = _anthropic(proxy.url, **{"x-fake-scenario": "tools"})
    with client.messages.stream(model="gpt-x", max_tokens=100, messages=MESSAGES) as stream:
        assert_tools_message(stream.get_final_message())


def test_identity_anthropic_client(servers: ServerFactory, fake: FakeUpstream) -> None:
    """Same format on both sides: the Anthropic SDK gets the upstream's stream whole."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _anthropic(proxy.url, **{"x-fake-scenario": "thinking"})
    with client.messages.stream(model="claude-x", max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    thinking = [b for b in final.content if b.type == "thinking"]
    assert thinking[0].thinking == SCRIPTS["thinking"].thinking
    assert thinking[0].signature == SCRIPTS["thinking"].signature


def test_responses_client_to_anthropic_upstream(servers: ServerFactory, fake: FakeUpstream) -> None:
    """A Responses client's stream helper gets the full answer from an Anthropic upstream."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url)
    with client.responses.stream(model="claude-x", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == TEXT
    assert final.usage is not None
    assert final.usage.output_tokens == SCRIPTS["text"].usage.output_tokens


def test_completions_client_to_anthropic_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A legacy Completions client streams text from an Anthropic upstream."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url)
    chunks = list(client.completions.create(model="claude-x", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_non_streaming_identity_json(servers: ServerFactory, fake: FakeUpstream) -> None:
    """A non-streaming request to the same format comes back as the upstream's JSON."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    message = _anthropic(proxy.url).messages.create(
        model="claude-x", max_tokens=10, messages=MESSAGES
    )
    assert [b.text for b in message.content if b.type == "text"] == [TEXT]


def test_non_streaming_translated_json(servers: ServerFactory, fake: FakeUpstream) -> None:
    """A non-streaming Chat request to a legacy Completions upstream is translated whole: the
    upstream's JSON as canonical parts, rendered as the client format's response object."""
    _, proxy = _proxy(servers, fake, "openai-text")
    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"


def test_default_max_tokens_reaches_an_anthropic_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Anthropic requires ``max_tokens``; OpenAI clients need not send one: the proxy's
    ``default_max_tokens`` is sent then, the client's own otherwise."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", default_max_tokens=12000)
    _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert fake.last_json is not None
    assert fake.last_json["max_tokens"] == 12000
    _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, max_tokens=7)
    assert fake.last_json["max_tokens"] == 7


def test_non_streaming_anthropic_upstream_to_openai_clients(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Non-streaming Chat and Responses requests to an Anthropic upstream: the Messages JSON is
    translated whole (text, tool calls with parsed arguments, finish, usage incl. cache)."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url, **{"x-fake-scenario": "tools"})
    completion = client.chat.completions.create(model="claude-x", messages=MESSAGES)
    script = SCRIPTS["tools"]
    message = completion.choices[0].message
    assert message.content == script.text
    calls = message.tool_calls or []
    assert [c.id for c in calls] == [t.tool_use_id for t in script.tool_calls]
    assert [json.loads(c.function.arguments) for c in calls] == [t.input for t in script.tool_calls]  # type: ignore[union-attr]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == script.usage.prompt_tokens
    assert completion.usage.completion_tokens == script.usage.output_tokens
    assert fake.last_json is not None
    assert "stream" not in fake.last_json or fake.last_json["stream"] is False

    response = _openai(proxy.url).responses.create(model="claude-x", input="hi")
    assert response.output_text == TEXT
    assert response.status == "completed"


def test_non_streaming_openai_upstream_to_anthropic_client(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A non-streaming Messages request to an OpenAI Chat upstream gets a Messages object."""
    _, proxy = _proxy(servers, fake, "openai-chat")
    client = _anthropic(proxy.url, **{"x-fake-scenario": "tools"})
    assert_tools_message(client.messages.create(model="gpt-x", max_tokens=100, messages=MESSAGES))


def assert_tools_message(message: anthropic.types.Message) -> None:
    """``message`` holds exactly the fake's ``tools`` script, as an OpenAI Chat upstream sent
    it: its text, its calls (ids, names, parsed arguments), the stop reason and output tokens."""
    script = SCRIPTS["tools"]
    assert [b.text for b in message.content if b.type == "text"] == [script.text]
    uses = [b for b in message.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        (t.call_id, t.name, t.input) for t in script.tool_calls
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == script.usage.output_tokens


# -- paths ----------------------------------------------------------------------------------


def test_v1_suffix_not_doubled_and_other_paths_forwarded(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An upstream URL ending in /v1 gets /v1/messages once; unknown paths pass through."""
    upstream = servers(fake)
    proxy = servers(UpstreamProxy(upstream.url + "/v1", upstream_format="anthropic-messages"))
    _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, stream=True).close()
    assert fake.last_path == "/v1/messages"
    response = httpx2.get(proxy.url + "/v1/models?limit=2")
    assert fake.last_path == "/v1/models"
    assert response.status_code in (404, 405)


# -- failures -------------------------------------------------------------------------------


def test_connect_error_is_502_in_client_format(servers: ServerFactory) -> None:
    """Nothing listening upstream: 502 with the client format's error JSON, no retry storm."""
    proxy = servers(
        UpstreamProxy(f"http://127.0.0.1:{_free_port()}", upstream_format="anthropic-messages")
    )
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.status_code == 502
    assert "upstream unreachable" in info.value.message
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        _anthropic(proxy.url).messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert ainfo.value.status_code == 502
    assert ainfo.value.body["type"] == "error"  # type: ignore[index]


def test_first_byte_timeout_is_504(servers: ServerFactory, fake: FakeUpstream) -> None:
    """An upstream that never answers within the first-byte timeout: 504."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", first_byte_timeout=0.3)
    client = _openai(proxy.url, **{"x-fake-header-delay": "5"})
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 3


@pytest.mark.parametrize(
    ("upstream_status", "openai_status", "anthropic_status"), [(529, 503, 529), (429, 429, 429)]
)
def test_upstream_error_status_translated(
    servers: ServerFactory,
    fake: FakeUpstream,
    upstream_status: int,
    openai_status: int,
    anthropic_status: int,
) -> None:
    """Anthropic 529 overloaded is 503 to OpenAI clients and stays 529 to Anthropic clients."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    knob = {"x-fake-status": str(upstream_status)}
    with pytest.raises(openai.APIStatusError) as info:
        _openai(proxy.url, **knob).chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        )
    assert info.value.status_code == openai_status
    assert isinstance(info.value.body, dict)
    assert info.value.body["type"] in ("overloaded_error", "rate_limit_error")
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        _anthropic(proxy.url, **knob).messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert ainfo.value.status_code == anthropic_status


def _raw_stream(url: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    with httpx2.stream("POST", url + path, json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        return b"".join(response.iter_raw())


def test_mid_stream_failure_gives_error_tail(servers: ServerFactory, fake: FakeUpstream) -> None:
    """The upstream connection breaks after 4 events: complete events, then the OpenAI error
    tail (error event + [DONE]); the SDK raises APIError with our message."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    raw = _raw_stream(
        proxy.url,
        "/v1/chat/completions",
        {"model": "m", "messages": MESSAGES, "stream": True},
        {"x-fake-fail-after": "4"},
    )
    events = SSEDecoder().feed(raw)
    assert events[-1].data == "[DONE]"
    error = json.loads(events[-2].data)["error"]
    assert "upstream stream failed" in error["message"]
    assert all("error" not in json.loads(e.data) for e in events[:-2])
    client = _openai(proxy.url, **{"x-fake-fail-after": "4"})
    with pytest.raises(openai.APIError, match="upstream stream failed"):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_truncated_upstream_is_reported(servers: ServerFactory, fake: FakeUpstream) -> None:
    """An upstream that closes cleanly before message_stop: the Anthropic client gets an
    error event, not a normal end."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _anthropic(proxy.url, **{"x-fake-truncate-after": "4"})
    stream_manager = client.messages.stream(model="m", max_tokens=5, messages=MESSAGES)
    with pytest.raises(anthropic.APIStatusError, match="truncated"), stream_manager as stream:
        stream.get_final_message()


def test_upstream_error_event_passes_as_client_error(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An in-band Anthropic overloaded_error becomes the OpenAI error tail."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url, **{"x-fake-error-after": "3"})
    with pytest.raises(openai.APIError) as info:
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    assert info.value.type == "overloaded_error"


def test_idle_timeout_mid_stream(servers: ServerFactory, fake: FakeUpstream) -> None:
    """An upstream that stalls mid-stream ends with the error tail after the idle timeout, and
    the upstream connection is closed."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", idle_timeout=0.4)
    started = time.monotonic()
    raw = _raw_stream(
        proxy.url,
        "/v1/chat/completions",
        {"model": "m", "messages": MESSAGES, "stream": True},
        {"x-fake-stall": "3"},
    )
    assert time.monotonic() - started < 5
    events = SSEDecoder().feed(raw)
    assert "sent nothing for 0.4 seconds" in json.loads(events[-2].data)["error"]["message"]
    assert fake.wait_for(lambda f: len(f.disconnects) == 1, timeout=3)


def test_idle_timeout_longer_than_first_byte_timeout(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """An idle limit longer than the first-byte limit is honoured between chunks: an upstream
    pacing its events 0.6 s apart streams to the end under first_byte 0.3 s / idle 5 s."""
    _, proxy = _proxy(servers, fake, "openai-chat", first_byte_timeout=0.3, idle_timeout=5.0)
    raw = _raw_stream(
        proxy.url,
        "/v1/chat/completions",
        {"model": "m", "messages": MESSAGES, "stream": True},
        {"x-fake-scenario": "long", "x-fake-deltas": "2", "x-fake-pace": "0.6"},
    )
    events = SSEDecoder().feed(raw)
    assert events[-1].data == "[DONE]"
    assert not any("error" in json.loads(e.data) for e in events[:-1])


class _StallingBody:
    """An upstream that sends its response head and the first bytes of the body, then goes
    silent until the client leaves (records when it saw the disconnect)."""

    def __init__(self) -> None:
        self.left = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"id": "x", ', "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass
        self.left.set()


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_idle_timeout_on_a_body_after_its_head(servers: ServerFactory, path: str) -> None:
    """A body that stops after its head is bounded by the idle limit too (httpx reads without a
    timeout of its own): a translated JSON answer becomes a 504 in the client's format, a relayed
    one ends without its final message (the client sees an incomplete body, not a short
    complete one); either way the upstream connection is closed."""
    upstream = _StallingBody()
    proxy = servers(
        UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages", idle_timeout=0.4)
    )
    started = time.monotonic()
    with httpx2.Client(timeout=10) as http:
        if path == "/v1/models":
            with pytest.raises(httpx2.RemoteProtocolError):
                http.get(proxy.url + path).read()
        else:
            response = http.post(proxy.url + path, json={"model": "m", "messages": MESSAGES})
            assert response.status_code == 504
            assert "sent nothing for 0.4 seconds" in response.json()["error"]["message"]
    assert 0.35 < time.monotonic() - started < 3
    assert upstream.left.wait(3)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop", "asyncio-behind-base-http-middleware"])
def test_heartbeat_while_upstream_silent(
    servers: ServerFactory, fake: FakeUpstream, loop: str
) -> None:
    """While the upstream thinks, the client receives comment keep-alives between events (on
    asyncio's loop and on uvloop, uvicorn's default when installed), also under an outer
    ``BaseHTTPMiddleware``, whose ``send`` needs a running task."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
        if not hasattr(asyncio, "Runner"):
            pytest.skip("a uvloop server in a thread needs asyncio.Runner (Python 3.11+)")
    upstream = servers(fake)
    app: Any = UpstreamProxy(
        upstream.url, upstream_format="anthropic-messages", heartbeat_interval=0.1
    )
    if loop.endswith("-behind-base-http-middleware"):

        async def dispatch(request: Request, call_next: RequestResponseEndpoint) -> Response:
            return await call_next(request)

        app = BaseHTTPMiddleware(app, dispatch=dispatch)
        loop = "asyncio"
    proxy = servers(app, loop=loop)
    raw = _raw_stream(
        proxy.url,
        "/v1/chat/completions",
        {"model": "m", "messages": MESSAGES, "stream": True},
        {"x-fake-delay": "0.5"},
    )
    assert raw.count(b": ping\n\n") >= 2
    text = "".join(
        json.loads(e.data)["choices"][0]["delta"].get("content") or ""
        for e in SSEDecoder().feed(raw)
        if e.data != "[DONE]" and json.loads(e.data)["choices"]
    )
    assert text == TEXT


def test_client_disconnect_closes_upstream(servers: ServerFactory, fake: FakeUpstream) -> None:
    """The client leaving mid-stream closes the upstream connection promptly (no more billing),
    and the proxy process is left with no extra tasks."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    before = proxy.task_count()
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx2.stream(
        "POST", proxy.url + "/v1/chat/completions", json=body, headers={"x-fake-stall": "2"}
    ) as response:
        next(response.iter_raw())
        left = time.monotonic()
    assert fake.wait_for(lambda f: len(f.disconnects) == 1, timeout=3)
    assert fake.disconnects[0].at - left < 0.5
    deadline = time.monotonic() + 3
    while proxy.task_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.task_count() <= before


# -- requests and headers -------------------------------------------------------------------


def test_request_body_limit_is_413_before_forwarding(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A request body over the limit gets 413 in the client's format; nothing is forwarded."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", max_request_body=1000)
    big: Any = [{"role": "user", "content": "x" * 5000}]
    with pytest.raises(openai.APIStatusError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=big)
    assert info.value.status_code == 413
    assert fake.requests == 0


def test_header_hygiene(servers: ServerFactory, fake: FakeUpstream) -> None:
    """Client credentials, hop-by-hop headers and the other vendor's account headers (OpenAI's
    organization and project ids to Anthropic, Anthropic's to OpenAI) are not forwarded; the
    configured key is injected; Host is the upstream's."""
    upstream, proxy = _proxy(servers, fake, "anthropic-messages", api_key="upstream-secret")
    httpx2.post(
        proxy.url + "/v1/chat/completions",
        json={"model": "m", "messages": MESSAGES},
        headers={
            "authorization": "Bearer client-key",
            "cookie": "session=abc",
            "connection": "keep-alive, x-private",
            "x-private": "hop",
            "keep-alive": "timeout=5",
            "openai-organization": "org-1",
            "openai-project": "proj-1",
            "x-fake-scenario": "text",
        },
    )
    assert fake.last_headers is not None
    headers = {k.lower(): v for k, v in fake.last_headers.items()}
    assert headers["x-api-key"] == "upstream-secret"
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert "x-private" not in headers
    assert "keep-alive" not in headers
    assert not [k for k in headers if k.startswith("openai-")]
    assert headers["host"] == upstream.url.removeprefix("http://")
    assert headers["anthropic-version"] == "2023-06-01"
    _, openai_proxy = _proxy(servers, fake, "openai-chat")
    httpx2.post(
        openai_proxy.url + "/v1/messages",
        json={"model": "m", "max_tokens": 5, "messages": MESSAGES},
        headers={"anthropic-beta": "tools-2024", "openai-organization": "org-1"},
    )
    assert fake.last_headers is not None
    assert not [k for k in fake.last_headers if k.startswith("anthropic-")]
    assert fake.last_headers["openai-organization"] == "org-1"


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/models"], ids=["translated", "relayed"]
)
def test_header_values_beyond_ascii_pass_as_their_bytes(servers: ServerFactory, path: str) -> None:
    """RFC 9110 §5.5 obs-text: a client header value with bytes beyond ASCII (OpenRouter's
    ``X-Title: Café Bot``, in UTF-8 or in latin-1) reaches the upstream as the same bytes, and an
    allow-listed upstream response header (a request id in UTF-8) reaches the client as the
    upstream's bytes; neither is a 500 with a traceback."""
    request_id = "要求-1".encode()
    upstream = _Answer(200, CHAT_COMPLETION, headers=((b"x-request-id", request_id),))
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="openai-chat"))
    for title in ("Café Bot".encode(), "Café Bot".encode("latin-1")):
        response = httpx2.post(
            proxy.url + path,
            json={"model": "m", "messages": MESSAGES},
            headers=[(b"x-title", title)],
        )
        assert response.status_code == 200, response.text
        assert upstream.request_headers[b"x-title"] == title
        assert (b"x-request-id", request_id) in response.headers.raw


@pytest.mark.parametrize(
    ("path", "body", "sent", "want"),
    [
        ("/v1/complete", {"model": "m", "prompt": "\n\nHuman: hi\n\nAssistant:",
         "max_tokens_to_sample": 5}, "2023-01-01", "2023-06-01"),
        ("/v1/messages", {"model": "m", "messages": MESSAGES, "max_tokens": 5},
         "2023-06-01-preview", "2023-06-01-preview"),
    ],
    ids=["translated", "same-format"],
)  # fmt: skip
def test_anthropic_version_names_the_upstreams_api(
    servers: ServerFactory, fake: FakeUpstream, path: str, body: Any, sent: str, want: str
) -> None:
    """A translated request gets the proxy's ``anthropic-version`` (a legacy Text Completions
    client's 2023-01-01 names its own API, which the Messages upstream is not); a client of the
    upstream's own format keeps its version."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    httpx2.post(
        proxy.url + path,
        json=body,
        headers={"anthropic-version": sent, "x-fake-scenario": "text"},
    )
    assert fake.last_headers is not None
    assert fake.last_headers["anthropic-version"] == want


def test_set_cookie_and_unknown_headers_not_passed(servers: ServerFactory) -> None:
    """Upstream Set-Cookie and other headers outside the allow-list never reach the client;
    rate-limit and request-id headers do."""

    async def upstream(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await receive()
        body = b'{"type":"message","content":[]}'
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"set-cookie", b"sid=secret"),
                    (b"x-internal", b"1"),
                    (b"request-id", b"req_1"),
                    (b"anthropic-ratelimit-requests-remaining", b"9"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    up = servers(upstream, lifespan="off")
    proxy = servers(UpstreamProxy(up.url, upstream_format="anthropic-messages"))
    response = httpx2.post(
        proxy.url + "/v1/messages", json={"model": "m", "max_tokens": 1, "messages": MESSAGES}
    )
    assert "set-cookie" not in response.headers
    assert "x-internal" not in response.headers
    assert response.headers["request-id"] == "req_1"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "9"


def test_upstream_key_never_in_error_messages(servers: ServerFactory, fake: FakeUpstream) -> None:
    """Failure answers never echo the upstream key."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", api_key="sk-upstream-SECRET")
    for knob in ({"x-fake-status": "500"}, {"x-fake-fail-after": "2"}):
        body = {"model": "m", "messages": MESSAGES, "stream": True}
        response = httpx2.post(proxy.url + "/v1/chat/completions", json=body, headers=knob)
        assert b"SECRET" not in response.content
        assert "SECRET" not in str(response.headers)


# -- relayed paths: the client leaving ------------------------------------------------------


def test_relayed_stream_closes_upstream_when_client_leaves(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A path the proxy does not translate (here another format's endpoint, relayed as it is)
    is watched for the client leaving like a translated one: uvicorn's ``send`` succeeds after
    a disconnect, so only ``receive`` tells, and the upstream connection closes at once instead
    of when the upstream finishes; no task is left running."""
    _, proxy = _proxy(servers, fake, "openai-chat", client_format="openai-chat")
    before = proxy.task_count()
    body = {"model": "m", "max_tokens": 5, "messages": MESSAGES, "stream": True}
    with httpx2.stream(
        "POST", proxy.url + "/v1/messages", json=body, headers={"x-fake-stall": "2"}
    ) as response:
        assert response.status_code == 200
        assert next(response.iter_raw()).startswith(b"event: message_start")
        left = time.monotonic()
    assert fake.wait_for(lambda f: len(f.disconnects) == 1, timeout=3)
    assert fake.disconnects[0].path == "/v1/messages"
    assert fake.disconnects[0].at - left < 0.5
    deadline = time.monotonic() + 3
    while proxy.task_count() > before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proxy.task_count() <= before


def test_relayed_answer_still_complete(
    servers: ServerFactory, fake: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """Watching for the client leaving does not cut a relayed answer short nor outlive it: a
    relayed stream arrives whole, to its terminal event, and so does a relayed JSON body; the
    watch is stopped before the last message (after it uvicorn's ``receive`` reports a
    disconnect), so the server logs no cancelled exchange."""
    _, proxy = _proxy(servers, fake, "openai-chat", client_format="openai-chat")
    client = _anthropic(proxy.url)
    with client.messages.stream(model="m", max_tokens=100, messages=MESSAGES) as stream:
        final = stream.get_final_message()
    assert [b.text for b in final.content if b.type == "text"] == [TEXT]
    message = client.messages.create(model="m", max_tokens=100, messages=MESSAGES)
    assert [b.text for b in message.content if b.type == "text"] == [TEXT]
    time.sleep(0.1)
    assert not [r for r in caplog.records if r.levelno >= 40], caplog.records


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/models"])
def test_client_leaving_during_a_whole_body_closes_upstream(
    servers: ServerFactory, path: str
) -> None:
    """The client leaves while a whole body is being read after its head (a translated JSON
    answer, a relayed one): the upstream connection closes at once, not at the idle limit."""
    upstream = _StallingBody()
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages"))
    method = "GET" if path == "/v1/models" else "POST"
    body = None if method == "GET" else {"model": "m", "messages": MESSAGES}
    with httpx2.Client(timeout=0.3) as http, pytest.raises(httpx2.ReadTimeout):
        http.request(method, proxy.url + path, json=body)
    left = time.monotonic()
    assert upstream.left.wait(3)
    assert time.monotonic() - left < 0.5


# -- upstream error statuses ----------------------------------------------------------------


class _Answer:
    """An upstream that answers every request with one fixed response (``headers`` added to
    it), counting requests and recording the path and query of the last, its path as sent
    (``raw_path``) and its headers."""

    def __init__(
        self,
        status: int,
        body: bytes,
        content_type: bytes = b"application/json",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ):
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers
        self.hits = 0
        self.target: tuple[str, bytes] | None = None
        self.raw_path: bytes | None = None
        self.request_headers: dict[bytes, bytes] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body", False):
            pass
        self.hits += 1
        self.target = (scope["path"], scope["query_string"])
        self.raw_path = scope["raw_path"]
        self.request_headers = dict(scope["headers"])
        headers = [(b"content-type", self.content_type), (b"retry-after-ms", b"10")]
        await send(
            {
                "type": "http.response.start",
                "status": self.status,
                "headers": [*headers, *self.headers],
            }
        )
        await send({"type": "http.response.body", "body": self.body})


def _retrying_clients(url: str) -> tuple[openai.OpenAI, anthropic.Anthropic]:
    """SDK clients that retry twice (what the SDKs do by default)."""
    oai = openai.OpenAI(api_key="k", base_url=url + "/v1", max_retries=2)
    ant = anthropic.Anthropic(api_key="k", base_url=url, max_retries=2)
    _open_clients.extend((oai, ant))
    return oai, ant


@pytest.mark.parametrize(
    ("upstream_format", "body", "message"),
    [
        (
            "openai-chat",
            {"error": "Input validation error: inputs too long", "error_type": "validation"},
            "Input validation error: inputs too long",
        ),
        ("openai-chat", {"error": {"message": "bad field"}}, "bad field"),
        ("openai-chat", {"detail": "Unprocessable"}, "Unprocessable"),
        (
            "openai-chat",
            {"detail": [{"loc": ["body", "messages"], "msg": "Field required", "type": "x"}]},
            "body.messages: Field required",
        ),
        ("anthropic-messages", {"error": {"message": "bad field"}}, "bad field"),
        ("anthropic-messages", {"detail": "Unprocessable"}, "Unprocessable"),
    ],
)
def test_upstream_422_stays_422_and_is_not_retried(
    servers: ServerFactory, upstream_format: str, body: dict[str, Any], message: str
) -> None:
    """A 4xx the status table does not know (TGI's and FastAPI's 422) stays a 422, typed
    ``invalid_request_error``, with the upstream's message: both SDKs raise
    ``UnprocessableEntityError`` and do not retry a request that cannot succeed."""
    upstream = _Answer(422, json.dumps(body).encode())
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format=upstream_format))
    oai, ant = _retrying_clients(proxy.url)
    with pytest.raises(openai.UnprocessableEntityError) as info:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == message
    assert info.value.type == "invalid_request_error"
    assert upstream.hits == 1
    with pytest.raises(anthropic.UnprocessableEntityError) as ainfo:
        ant.messages.create(model="m", max_tokens=5, messages=MESSAGES, stream=True)
    assert ainfo.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": message},
    }
    assert upstream.hits == 2


@pytest.mark.parametrize("status", [408, 418, 451])
def test_unknown_upstream_4xx_is_invalid_request_with_its_status(
    servers: ServerFactory, status: int
) -> None:
    """Any 4xx keeps its status (a 408 the SDKs retry, others they do not) and is an
    ``invalid_request_error`` for clients of both families, never a 500."""
    upstream = _Answer(status, b'{"error": {"message": "no"}}')
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="openai-chat"))
    for path, body in (
        ("/v1/chat/completions", {"model": "m", "messages": MESSAGES}),
        ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": MESSAGES}),
    ):
        response = httpx2.post(proxy.url + path, json=body)
        assert response.status_code == status
        assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("upstream_format", "status", "openai_status", "anthropic_status"),
    [
        ("openai-chat", 502, 502, 502),
        ("openai-chat", 504, 504, 504),
        ("openai-chat", 503, 503, 529),  # an overload: Anthropic clients know it as 529
        ("anthropic-messages", 502, 502, 502),
        ("anthropic-messages", 503, 503, 503),
    ],
)
def test_upstream_5xx_keeps_a_status_the_sdks_retry(
    servers: ServerFactory,
    upstream_format: str,
    status: int,
    openai_status: int,
    anthropic_status: int,
) -> None:
    """An upstream gateway error (502, 503, 504, here with a JSON body) keeps its status, or
    the status the client's API uses for it: the SDKs retry it (twice), and report it."""
    upstream = _Answer(status, b'{"error": {"message": "try later"}}')
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format=upstream_format))
    oai, ant = _retrying_clients(proxy.url)
    with pytest.raises(openai.InternalServerError) as info:
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == openai_status
    assert isinstance(info.value.body, dict)
    assert info.value.body["message"] == "try later"
    assert upstream.hits == 3
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        ant.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert ainfo.value.status_code == anthropic_status
    assert upstream.hits == 6


@pytest.mark.parametrize("upstream_format", ["openai-chat", "anthropic-messages"])
def test_html_503_keeps_the_meaning_of_the_upstreams_api(
    servers: ServerFactory, upstream_format: str
) -> None:
    """A 503 load balancer page is an overload only in OpenAI's API (its 503 is Anthropic's
    529, formats.md §9.4): from an OpenAI upstream Anthropic clients get 529
    ``overloaded_error``; from an Anthropic upstream, whose overload is 529, the 503 stays 503
    ``api_error``, as it would reach the SDK without the proxy."""
    upstream = _Answer(503, b"<html><body>503 Service Unavailable</body></html>", b"text/html")
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format=upstream_format))
    overload = upstream_format == "openai-chat"
    with pytest.raises(anthropic.APIStatusError) as info:
        _anthropic(proxy.url).messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert info.value.status_code == (529 if overload else 503)
    assert info.value.type == ("overloaded_error" if overload else "api_error")


@pytest.mark.parametrize(
    ("status", "code", "exception", "anthropic_type"),
    [
        (401, "invalid_api_key", anthropic.AuthenticationError, "authentication_error"),
        (403, "unsupported_country_region_territory", anthropic.PermissionDeniedError,
         "permission_error"),
        (404, "model_not_found", anthropic.NotFoundError, "not_found_error"),
        (413, None, anthropic.APIStatusError, "request_too_large"),
        (422, None, anthropic.UnprocessableEntityError, "invalid_request_error"),
    ],
)  # fmt: skip
def test_openai_4xx_gets_the_anthropic_type_of_its_status(
    servers: ServerFactory,
    status: int,
    code: str | None,
    exception: type[anthropic.APIStatusError],
    anthropic_type: str,
) -> None:
    """OpenAI types every 4xx ``invalid_request_error``; Anthropic clients get the type its API
    gives that status (formats.md §9.4): ``authentication_error`` for a wrong key's 401,
    ``permission_error``, ``not_found_error``, ``request_too_large``; a status without a type of
    its own stays ``invalid_request_error``."""
    error = {"message": "no", "type": "invalid_request_error", "param": None, "code": code}
    upstream = _Answer(status, json.dumps({"error": error}).encode())
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="openai-chat"))
    with pytest.raises(exception) as info:
        _anthropic(proxy.url).messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert info.value.status_code == status
    assert info.value.body == {"type": "error", "error": {"type": anthropic_type, "message": "no"}}


@pytest.mark.parametrize(
    ("status", "should_retry", "hits"), [(429, b"false", 1), (400, b"true", 3)]
)
def test_x_should_retry_reaches_the_sdks(
    servers: ServerFactory, status: int, should_retry: bytes, hits: int
) -> None:
    """Both SDKs read the upstream's ``x-should-retry`` before the status (a quota 429 they must
    not retry, a 400 they may): through the proxy they retry as often as they would direct,
    translated or not."""
    error = {"error": {"message": "no", "type": "insufficient_quota", "code": None}}
    upstream = _Answer(
        status, json.dumps(error).encode(), headers=((b"x-should-retry", should_retry),)
    )
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="openai-chat"))
    oai, ant = _retrying_clients(proxy.url)
    with pytest.raises(openai.APIStatusError):
        oai.chat.completions.create(model="m", messages=MESSAGES)
    assert upstream.hits == hits
    with pytest.raises(anthropic.APIStatusError) as info:
        ant.messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert info.value.response.headers["x-should-retry"] == should_retry.decode()
    assert upstream.hits == 2 * hits


_UNDECODABLE = [
    "compress",  # (no client library decodes LZW any more)
    pytest.param(
        "br",
        marks=pytest.mark.skipif(
            find_spec("brotli") is not None or find_spec("brotlicffi") is not None,
            reason="httpx decodes br where brotli is installed",
        ),
    ),
]


@pytest.mark.parametrize("coding", _UNDECODABLE)
def test_an_answer_in_an_encoding_httpx_cannot_decode_is_named(
    servers: ServerFactory, fake: FakeUpstream, coding: str
) -> None:
    """An answer in a ``Content-Encoding`` httpx cannot decode is a 502 that names it, streamed
    or not, never its compressed bytes read as a truncated stream or invalid JSON, and it is
    reported; on a relayed path the body goes on as encoded, with its ``Content-Encoding``."""
    encoded = b"\x1b\x00\x00not-really-compressed\xff\xfe"
    headers = ((b"content-encoding", coding.encode()),)
    proxy, reports = _reporting_proxy(
        servers, _Answer(200, encoded, b"text/event-stream", headers=headers), "openai-chat"
    )
    named = f"upstream answered in Content-Encoding {coding}, which the proxy cannot decode"
    for stream in (True, False):
        with pytest.raises(anthropic.InternalServerError) as info:
            _anthropic(proxy.url).messages.create(
                model="m", max_tokens=5, messages=MESSAGES, stream=stream
            )
        assert info.value.status_code == 502
        assert info.value.message.startswith(f"502 {named}")
        report = _one_report(reports)
        assert report.outcome == "failed"
        assert report.error is not None
        assert report.error.message == named
    with httpx2.stream("GET", proxy.url + "/v1/models") as response:
        assert response.headers["content-encoding"] == coding
        assert b"".join(response.iter_raw()) == encoded


def test_a_redirect_is_named_and_not_followed(servers: ServerFactory) -> None:
    """An upstream 3xx on a translated endpoint is a 502 that says it was a redirect (not
    "invalid JSON"); the proxy's client follows no redirect."""
    upstream = _Answer(302, b"", b"text/html", headers=((b"location", b"https://example.com/"),))
    proxy = UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages")
    assert proxy.client.follow_redirects is False
    served = servers(proxy)
    for stream in (True, False):
        with pytest.raises(openai.InternalServerError) as info:
            _openai(served.url).chat.completions.create(model="m", messages=MESSAGES, stream=stream)
        assert info.value.status_code == 502
        assert info.value.message == (
            "Error code: 502 - upstream answered with a redirect (HTTP 302), which the proxy "
            "does not follow"
        )
    assert upstream.hits == 2


# -- non-JSON upstream error bodies ---------------------------------------------------------

NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n" + b"<!-- a padding to disable MSIE friendly error page -->\r\n" * 6
)


@pytest.mark.parametrize("content_type", [b"text/html", b"text/plain", b""])
def test_html_error_page_is_described_not_quoted(
    servers: ServerFactory, content_type: bytes
) -> None:
    """A load balancer's HTML error page (whatever its declared type) never reaches the client
    as its message: the message names the status, the type and the size; the status stays."""
    upstream = _Answer(502, NGINX_502, content_type)
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="openai-chat"))
    for path, body in (
        ("/v1/chat/completions", {"model": "m", "messages": MESSAGES}),
        ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": MESSAGES}),
    ):
        response = httpx2.post(proxy.url + path, json=body)
        assert response.status_code == 502
        assert b"<" not in response.content
        assert b"nginx" not in response.content
        message = response.json()["error"]["message"]
        assert message.startswith("upstream returned HTTP 502 (")
        assert f"{len(NGINX_502)} bytes)" in message
        if content_type == b"text/html":
            assert message == f"upstream returned HTTP 502 (text/html body, {len(NGINX_502)} bytes)"


def test_short_plain_text_error_is_quoted(servers: ServerFactory) -> None:
    """A short plain-text error body (no markup) is the message as it is; an empty one is
    described."""
    upstream = _Answer(503, b"upstream connect error or disconnect/reset before headers\n")
    upstream.content_type = b"text/plain"
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages"))
    body = {"model": "m", "messages": MESSAGES}
    response = httpx2.post(proxy.url + "/v1/chat/completions", json=body)
    assert response.status_code == 503
    message = response.json()["error"]["message"]
    assert message == "upstream connect error or disconnect/reset before headers"
    upstream.body = b""
    response = httpx2.post(proxy.url + "/v1/chat/completions", json=body)
    assert response.json()["error"]["message"] == "upstream returned HTTP 503 (empty body)"


@pytest.mark.parametrize("fmt", ["openai-chat", "anthropic-messages"])
def test_parse_error_body_never_quotes_markup_or_long_text(fmt: str) -> None:
    """Without a content type (the middleware's case) the formats' own rule holds: text with
    markup, or longer than a short message, is described by its size, never quoted."""
    from asgi_sse_adapter.formats import get_format

    parse = get_format(fmt).parse_error_body
    assert parse(500, "boom").message == "boom"
    page = "<!DOCTYPE html><title>Error</title>"
    assert (
        parse(502, page).message == f"upstream returned HTTP 502 (non-JSON body, {len(page)} bytes)"
    )
    long = "x" * 1000
    assert parse(502, long).message == "upstream returned HTTP 502 (non-JSON body, 1000 bytes)"
    assert parse(504, "").message == "upstream returned HTTP 504 (empty body)"
    # A JSON error's own message is quoted, but never a megabyte of it.
    huge = {"error": {"type": "invalid_request_error", "message": "y" * 1_000_000}}
    message = parse(400, huge).message
    assert message == "y" * 4096 + "…"


def test_a_huge_upstream_error_message_reaches_the_client_cut(servers: ServerFactory) -> None:
    """Through the proxy: the client's error carries at most 4096 characters of the
    upstream's message."""
    body = json.dumps({"type": "error", "error": {"type": "api_error", "message": "z" * 500_000}})
    upstream = _Answer(500, body.encode(), b"application/json")
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages"))
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.body["message"] == "z" * 4096 + "…"  # type: ignore[index]


# -- the client gets what it asked for ------------------------------------------------------


class _FlipStream:
    """An upstream that answers the other way than it was asked: streamed when the request did
    not ask for a stream, whole JSON when it did (the fake LLM behind, rendering each)."""

    def __init__(self, app: FakeUpstream) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        payload = json.loads(body)
        if payload.pop("stream", False):
            payload.pop("stream_options", None)
        else:
            payload["stream"] = True
            if scope["path"] in ("/v1/chat/completions", "/v1/completions"):
                payload["stream_options"] = {"include_usage": True}
        flipped = json.dumps(payload).encode()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(flipped)).encode()))
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": flipped, "more_body": False}
            return await receive()

        await self.app({**scope, "headers": headers}, replay, send)


def _flipping_proxy(servers: ServerFactory, fake: FakeUpstream, upstream_format: str) -> LiveServer:
    upstream = servers(_FlipStream(fake))
    return servers(
        UpstreamProxy(upstream.url, upstream_format=upstream_format, heartbeat_interval=None)
    )


def _assert_tools(message: anthropic.types.Message, upstream_format: str) -> None:
    """``assert_tools_message`` for either upstream (a Messages upstream's own call ids)."""
    if upstream_format == "openai-chat":
        assert_tools_message(message)
        return
    script = SCRIPTS["tools"]
    assert [b.text for b in message.content if b.type == "text"] == [script.text]
    uses = [b for b in message.content if b.type == "tool_use"]
    assert [(u.id, u.name, u.input) for u in uses] == [
        (t.tool_use_id, t.name, t.input) for t in script.tool_calls
    ]
    assert message.stop_reason == "tool_use"


@pytest.mark.parametrize("upstream_format", ["openai-chat", "anthropic-messages"])
def test_streaming_request_answered_with_json_gets_a_stream(
    servers: ServerFactory, fake: FakeUpstream, upstream_format: str
) -> None:
    """The client asked for a stream, the upstream answered whole JSON: the answer is written
    as the client format's event stream (never a JSON body the SDK's stream reads as empty):
    every SDK's stream helper gets the whole turn, tool calls included."""
    proxy = _flipping_proxy(servers, fake, upstream_format)
    tools = {"x-fake-scenario": "tools"}
    with _anthropic(proxy.url, **tools).messages.stream(
        model="m", max_tokens=100, messages=MESSAGES
    ) as stream:
        _assert_tools(stream.get_final_message(), upstream_format)
        assert stream.response.headers["content-type"].startswith("text/event-stream")
    assert fake.last_json is not None
    assert not fake.last_json.get("stream")  # the upstream really answered JSON
    with _openai(proxy.url, **tools).chat.completions.stream(model="m", messages=MESSAGES) as chat:
        final = chat.get_final_completion()
    script = SCRIPTS["tools"]
    assert final.choices[0].message.content == script.text
    calls = final.choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [t.input for t in script.tool_calls]
    assert final.choices[0].finish_reason == "tool_calls"
    with _openai(proxy.url).responses.stream(model="m", input="hi") as responses:
        assert responses.get_final_response().output_text == TEXT
    chunks = list(_openai(proxy.url).completions.create(model="m", prompt="hi", stream=True))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT


def test_streaming_request_answered_with_json_error_gets_an_error(
    servers: ServerFactory,
) -> None:
    """A whole JSON answer that is no response (unreadable) to a streaming request: the
    client format's error, 502, not an empty stream."""
    upstream = _Answer(200, b"not json", b"application/json")
    proxy = servers(UpstreamProxy(servers(upstream).url, upstream_format="anthropic-messages"))
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.status_code == 502
    assert "invalid JSON" in info.value.message


@pytest.mark.parametrize(
    ("upstream_format", "what"),
    [
        ("anthropic-messages", "not a message (no content)"),
        ("openai-chat", "not a chat.completion"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_2xx_json_of_another_shape_is_a_502_not_an_empty_answer(
    servers: ServerFactory, stream: bool, upstream_format: str, what: str
) -> None:
    """A 2xx JSON body that is not the upstream format's response (an ``upstream_path`` that
    names the model list): the client's 502, never an empty answer that looks complete, the
    same format on both sides included; ``on_complete`` says what the client got."""
    upstream = _Answer(200, b'{"object": "list", "data": []}', b"application/json")
    proxy, reports = _reporting_proxy(servers, upstream, upstream_format)
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, stream=stream)
    assert info.value.status_code == 502
    assert what in info.value.message
    report = _one_report(reports)
    assert report.outcome == "failed"
    assert report.error is not None
    assert what in report.error.message


@pytest.mark.parametrize("upstream_format", ["openai-chat", "anthropic-messages"])
def test_non_streaming_request_answered_with_sse_gets_json(
    servers: ServerFactory, fake: FakeUpstream, upstream_format: str
) -> None:
    """The client did not ask for a stream, the upstream streamed: the events are read whole
    into the client format's response object (``create()`` returns a typed response, not the
    raw event text)."""
    proxy = _flipping_proxy(servers, fake, upstream_format)
    tools = {"x-fake-scenario": "tools"}
    message = _anthropic(proxy.url, **tools).messages.create(
        model="m", max_tokens=100, messages=MESSAGES
    )
    _assert_tools(message, upstream_format)
    assert fake.last_json is not None
    assert fake.last_json["stream"] is True  # the upstream really streamed
    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert isinstance(completion, openai.types.chat.ChatCompletion)
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == SCRIPTS["text"].usage.output_tokens
    response = _openai(proxy.url).responses.create(model="m", input="hi")
    assert response.output_text == TEXT
    assert response.status == "completed"


@pytest.mark.parametrize(
    ("knob", "openai_status", "anthropic_status", "message"),
    [
        ({"x-fake-fail-after": "3"}, 502, 502, "upstream failed (RemoteProtocolError)"),
        ({"x-fake-truncate-after": "3"}, 502, 502, "truncated"),
        ({"x-fake-error-after": "3"}, 503, 529, "Overloaded"),
    ],
)
def test_non_streaming_request_answered_with_failed_sse_gets_an_error(
    servers: ServerFactory,
    fake: FakeUpstream,
    knob: dict[str, str],
    openai_status: int,
    anthropic_status: int,
    message: str,
) -> None:
    """A stream read whole for a non-streaming request that breaks, is cut off or carries an
    error: the client format's error JSON with a status the SDKs retry, never a partial
    answer dressed up as complete."""
    proxy = _flipping_proxy(servers, fake, "anthropic-messages")
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url, **knob).chat.completions.create(model="m", messages=MESSAGES)
    assert info.value.status_code == openai_status
    assert message in info.value.message
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        _anthropic(proxy.url, **knob).messages.create(model="m", max_tokens=100, messages=MESSAGES)
    assert ainfo.value.status_code == anthropic_status
    assert message in ainfo.value.message


def test_client_leaving_while_a_stream_is_read_whole_closes_upstream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """The client of a non-streaming request leaves while the upstream's stream is being read
    whole: the upstream connection closes at once."""
    proxy = _flipping_proxy(servers, fake, "anthropic-messages")
    with httpx2.Client(timeout=0.5) as http, pytest.raises(httpx2.ReadTimeout):
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-fake-stall": "3"},
        )
    left = time.monotonic()
    assert fake.wait_for(lambda f: len(f.disconnects) == 1, timeout=3)
    assert fake.disconnects[0].at - left < 0.5


# -- the upstream connection pool -----------------------------------------------------------------


def test_a_request_cancelled_as_it_gets_a_connection_leaves_no_pool_slot_behind(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """httpcore keeps a connection it made for a waiting request that is cancelled just then
    (a client leaving, the first-byte limit) in its pool, unconnected and never used, holding a
    ``max_connections`` slot for good (encode/httpcore#1093): under contention, clients that
    leave early exhausted the pool and every later request failed with ``PoolTimeout``. The
    proxy reclaims such connections after a cancelled upstream request."""
    upstream = servers(fake)
    url = upstream.url + "/v1/messages"
    body = {"model": "m", "max_tokens": 10, "messages": MESSAGES}

    async def next_request_gets_through(reclaim: bool) -> bool:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(5, pool=0.5)) as client:
            stalled = {**body, "stream": True}
            first = await client.send(
                client.build_request("POST", url, json=stalled, headers={"x-fake-stall": "1"}),
                stream=True,
            )
            waiting = asyncio.ensure_future(
                client.send(client.build_request("POST", url, json=body), stream=True)
            )
            await asyncio.sleep(0.05)  # queued for the only connection
            behind = asyncio.ensure_future(client.post(url, json=body))
            await asyncio.sleep(0.05)  # queued behind it
            # The first response closes its connection; the pool makes a new one for the
            # waiting request, which is cancelled before it could use it.
            await first.aclose()
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            if reclaim:
                await _reclaim_pool(client)
            try:
                # The request queued behind gets the freed slot, and so does a later one.
                response = await behind
                later = await client.post(url, json=body)
            except httpx.PoolTimeout:
                return False
            return response.status_code == later.status_code == 200

    assert asyncio.run(next_request_gets_through(reclaim=False)) is False  # the defect
    assert asyncio.run(next_request_gets_through(reclaim=True)) is True


def test_a_close_cut_by_a_cancellation_gives_the_connection_back(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """httpx closes a response's stream when its body ends; httpcore's close marks itself done,
    then closes the connection's stream under a shield that a plain ``Task.cancel()`` (the
    proxy's client watch, a client leaving just then) goes through, and only then gives its
    pool request back. Cut there, the request, its connection and an upstream socket stayed
    held for good (7 of 600 early leavers in a soak; ``max_connections`` requests later, every
    request a ``PoolTimeout``). The cut is made here where the race made it: in the connection
    stream's close."""
    upstream = servers(fake)
    url = upstream.url + "/v1/messages"
    body = {"model": "m", "max_tokens": 10, "messages": MESSAGES, "stream": True}

    async def next_request_gets_through(release: bool) -> bool:
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(5, pool=0.5)) as client:
            response = await client.send(client.build_request("POST", url, json=body), stream=True)
            bound: Any = response.stream  # (httpx's and httpcore's internals, as the race met them)
            connection_stream = bound._stream._httpcore_stream._stream

            async def cut() -> None:
                raise asyncio.CancelledError

            connection_stream.aclose = cut
            with contextlib.suppress(asyncio.CancelledError):
                async for _ in response.aiter_raw():  # (it closes the stream at the end)
                    pass
            if release:
                await _close_response(response)
            else:
                await response.aclose()  # (does nothing: the stream says it is closed)
            try:
                later = await client.post(url, json={**body, "stream": False})
            except httpx.PoolTimeout:
                return False
            return later.status_code == 200

    assert asyncio.run(next_request_gets_through(release=False)) is False  # the defect
    assert asyncio.run(next_request_gets_through(release=True)) is True


def test_clients_leaving_early_under_contention_do_not_exhaust_the_pool(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Through the proxy: bursts of clients that leave while their request waits for one of two
    upstream connections; afterwards the pool holds no connection it will never use, and a
    request gets through."""
    upstream = servers(fake)
    proxy = UpstreamProxy(
        upstream.url,
        upstream_format="anthropic-messages",
        max_connections=2,
        heartbeat_interval=None,
        connect_timeout=2.0,
    )
    live = servers(proxy)
    port = int(live.url.rsplit(":", 1)[1])
    payload = json.dumps({"model": "m", "max_tokens": 10, "stream": True, "messages": MESSAGES})
    head = (
        "POST /v1/messages HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"x-fake-header-delay: 5\r\ncontent-length: {len(payload)}\r\n\r\n{payload}"
    ).encode()

    async def burst() -> None:
        async def one(k: int) -> None:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head)
            await writer.drain()
            await asyncio.sleep(k % 5 * 0.001)
            writer.transport.abort()

        await asyncio.gather(*(one(k) for k in range(30)))

    for _ in range(20):
        asyncio.run(burst())
        time.sleep(0.05)

    async def unused() -> int:
        pool = proxy.client._transport._pool  # type: ignore[attr-defined]
        return sum(1 for c in pool.connections if not c.is_idle() and not c.is_available())

    assert fake.wait_for(lambda f: f.streams_in_progress == 0, timeout=10)
    time.sleep(0.2)
    assert live.call(unused) == 0
    response = httpx.post(live.url + "/v1/messages", json={**json.loads(payload), "stream": False})
    assert response.status_code == 200


# -- an error before any content ----------------------------------------------------------------


@pytest.mark.parametrize("after", ["0", "1"])
def test_an_error_before_any_content_is_an_http_error_the_sdks_retry(
    servers: ServerFactory, fake: FakeUpstream, after: str
) -> None:
    """The upstream answers 200 and then, before any content (at once, or after its
    ``message_start``), an overload error: the client gets the HTTP status of its format
    (formats.md §9.4), which the SDKs retry, instead of a 200 and an in-band error they raise
    at once. The retried request then streams normally."""
    # (The head is held only with heartbeats, which bound the hold.)
    _, proxy = _proxy(servers, fake, "anthropic-messages", heartbeat_interval=15.0)
    failing = {"x-fake-error-after": after}
    client = openai.OpenAI(
        base_url=proxy.url + "/v1", api_key="k", max_retries=0, default_headers=failing
    )
    _open_clients.append(client)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.status_code == 503
    assert "Overloaded" in info.value.message
    assert info.value.response.headers["content-type"] == "application/json"
    before = fake.requests
    retrying = openai.OpenAI(
        base_url=proxy.url + "/v1", api_key="k", max_retries=1, default_headers=failing
    )
    _open_clients.append(retrying)
    with pytest.raises(openai.InternalServerError):
        retrying.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert fake.requests - before == 2  # the SDK retried the status
    # The same from a Chat upstream to an Anthropic client.
    _, chat_upstream = _proxy(servers, fake, "openai-chat", heartbeat_interval=15.0)
    anthropic_client = anthropic.Anthropic(
        base_url=chat_upstream.url, api_key="k", max_retries=0, default_headers=failing
    )
    _open_clients.append(anthropic_client)
    with pytest.raises(anthropic.APIStatusError) as ainfo:
        anthropic_client.messages.create(model="m", max_tokens=10, messages=MESSAGES, stream=True)
    assert ainfo.value.status_code == 500  # OpenAI's server_error: Anthropic's api_error
    assert ainfo.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    assert ainfo.value.response.headers["content-type"] == "application/json"


def test_an_error_after_content_stays_in_the_stream(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Once content went out, the head is out with it: a later error is the stream's error
    tail, the content before it kept."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    raw = _raw_stream(
        proxy.url,
        "/v1/chat/completions",
        {"model": "m", "stream": True, "messages": MESSAGES},
        {"x-fake-error-after": "4"},
    )
    events = [e.data for e in SSEDecoder().feed(raw)]
    assert events[-1] == "[DONE]"
    assert "Overloaded" in events[-2]
    assert any('"content"' in e for e in events[:-2])


def test_a_held_head_goes_out_with_the_first_keep_alive(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A stream that stays silent after its preamble is not held past the keep-alive interval:
    the head, the preamble and the keep-alive go out then (the report counts the preamble as
    sent)."""
    reports: list[StreamReport] = []
    _, proxy = _proxy(
        servers, fake, "anthropic-messages", heartbeat_interval=0.2, on_complete=reports.append
    )
    with httpx2.Client(timeout=5) as http:
        started = time.monotonic()
        with http.stream(
            "POST",
            proxy.url + "/v1/chat/completions",
            json={"model": "m", "stream": True, "messages": MESSAGES},
            headers={"x-fake-stall": "1"},  # silent after message_start
        ) as response:
            assert response.status_code == 200
            first = next(response.iter_bytes())
            waited = time.monotonic() - started
    assert 0.15 < waited < 1.5
    assert first.endswith(b": ping\n\n")
    report = _one_report(reports)
    assert report.outcome == "disconnected"
    assert report.bytes_sent == len(first) - len(b": ping\n\n") > 0
    assert report.time_to_first_event is not None


# -- on_complete ------------------------------------------------------------------------------


def _reporting_proxy(
    servers: ServerFactory, upstream: Any, upstream_format: str
) -> tuple[LiveServer, list[StreamReport]]:
    reports: list[StreamReport] = []
    proxy = UpstreamProxy(
        servers(upstream).url,
        upstream_format=upstream_format,
        heartbeat_interval=None,
        on_complete=reports.append,
    )
    return servers(proxy), reports


def _one_report(reports: list[StreamReport]) -> StreamReport:
    deadline = time.monotonic() + 3
    while not reports and time.monotonic() < deadline:
        time.sleep(0.01)  # the hook runs on the server's loop after the answer went out
    time.sleep(0.05)  # (and only once: a second report would arrive by now)
    assert len(reports) == 1, reports
    return reports.pop()


@pytest.mark.parametrize("flip", [False, True], ids=["as-asked", "flipped"])
def test_on_complete_reports_every_kind_of_answer(
    servers: ServerFactory, fake: FakeUpstream, flip: bool
) -> None:
    """``on_complete`` is the place usage is counted: it is called once for every answer the
    upstream gave on a translated endpoint, streamed or not, whichever way the upstream chose
    to answer (a stream read whole, JSON written as a stream), with the usage the upstream
    reported and the response the client got."""
    app: Any = _FlipStream(fake) if flip else fake
    proxy, reports = _reporting_proxy(servers, app, "anthropic-messages")
    usage = SCRIPTS["text"].usage
    kinds = {  # what the upstream sent: events, or none (whole JSON)
        "stream": not flip,
        "json": flip,
    }

    chunks = list(
        _openai(proxy.url).chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    report = _one_report(reports)
    assert (report.upstream_format, report.client_format) == ("anthropic-messages", "openai-chat")
    assert report.outcome == "complete"
    assert report.usage is not None
    assert report.usage.output_tokens == usage.output_tokens
    # (canonical input counts, as OpenAI's, include the cached tokens)
    cached = usage.cache_read_input_tokens + usage.cache_creation_input_tokens
    assert report.usage.input_tokens == usage.input_tokens + cached
    assert report.response is not None
    assert report.response["choices"][0]["message"]["content"] == TEXT
    assert report.response["id"] == chunks[0].id
    assert ((report.events or 0) > 0) is kinds["stream"]
    assert report.bytes_sent > 0
    assert report.time_to_first_event is not None
    assert report.error is None

    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    report = _one_report(reports)
    assert report.outcome == "complete"
    assert report.usage is not None
    assert report.usage.output_tokens == usage.output_tokens
    assert report.response == completion.model_dump(exclude_unset=True)
    assert ((report.events or 0) > 0) is kinds["json"]  # flipped: the upstream streamed
    assert report.bytes_sent == len(json.dumps(report.response).encode())

    message = _anthropic(proxy.url).messages.create(model="m", max_tokens=10, messages=MESSAGES)
    report = _one_report(reports)
    assert report.client_format == "anthropic-messages"
    assert report.outcome == "complete"
    assert report.response is not None
    assert report.response["id"] == message.id
    assert report.usage is not None
    assert report.usage.cache_read_tokens == usage.cache_read_input_tokens


def test_on_complete_reports_failed_and_abandoned_answers(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A stream read whole that failed, and one whose client left, are reported too (the
    upstream may have billed them): ``failed`` with the error the client got,
    ``disconnected``."""
    proxy, reports = _reporting_proxy(servers, _FlipStream(fake), "anthropic-messages")
    for knob, cause in (("x-fake-error-after", "Overloaded"), ("x-fake-fail-after", "Remote")):
        with pytest.raises(openai.InternalServerError):
            _openai(proxy.url, **{knob: "3"}).chat.completions.create(model="m", messages=MESSAGES)
        report = _one_report(reports)
        assert report.outcome == "failed"
        assert report.error is not None
        assert cause in report.error.message

    with httpx2.Client(timeout=0.5) as http, pytest.raises(httpx2.ReadTimeout):
        http.post(
            proxy.url + "/v1/chat/completions",
            json={"model": "m", "messages": MESSAGES},
            headers={"x-fake-stall": "3"},
        )
    report = _one_report(reports)
    assert report.outcome == "disconnected"
    assert report.bytes_sent == 0
    assert report.time_to_first_event is None


def test_identity_json_holding_a_state_or_an_error_passes_untouched(
    servers: ServerFactory,
) -> None:
    """Same format both sides: a Responses background request's ``queued`` answer, and a
    Chat completion whose choice finished with ``error`` (OpenRouter), are the upstream's own
    answers: the client gets them as they are, not an error of ours."""
    queued = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "status": "queued",
        "model": "m",
        "output": [],
        "background": True,
    }
    proxy, reports = _reporting_proxy(
        servers, _Answer(200, json.dumps(queued).encode()), "openai-responses"
    )
    response = _openai(proxy.url).responses.create(model="m", input="hi", background=True)
    assert (response.id, response.status) == ("resp_1", "queued")
    assert _one_report(reports).response == queued
    errored = {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "partial"},
                "finish_reason": "error",
            }
        ],
    }
    proxy, _ = _reporting_proxy(servers, _Answer(200, json.dumps(errored).encode()), "openai-chat")
    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "partial"


def test_identity_error_body_with_a_2xx_status_is_an_error(servers: ServerFactory) -> None:
    """Same format both sides, a 2xx answer that is an error body: the SDK would build a
    completion without choices (a ``TypeError`` at ``choices[0]``) or a message without
    content. The client gets the upstream's own error JSON with its error's status, as on a
    translated pair, and the SDK raises the matching class."""
    rate = {"error": {"message": "slow down", "type": "rate_limit_error", "code": "rate"}}
    proxy, _ = _reporting_proxy(servers, _Answer(200, json.dumps(rate).encode()), "openai-chat")
    with pytest.raises(openai.RateLimitError) as openai_error:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert openai_error.value.body == rate["error"]
    overload = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    proxy, _ = _reporting_proxy(
        servers, _Answer(200, json.dumps(overload).encode()), "anthropic-messages"
    )
    with pytest.raises(anthropic.OverloadedError) as anthropic_error:
        _anthropic(proxy.url).messages.create(model="m", max_tokens=5, messages=MESSAGES)
    assert anthropic_error.value.status_code == 529


def test_a_json_answer_over_the_limit_says_so(
    servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole answer beyond ``MAX_AGGREGATED_BODY`` (64 MiB) is a 502 that names the limit,
    not "invalid JSON" from parsing the part that was read."""
    monkeypatch.setattr(proxy_module, "MAX_AGGREGATED_BODY", 1024)
    big = {"id": "c", "object": "chat.completion", "choices": [], "pad": "x" * 4096}
    proxy, _ = _reporting_proxy(servers, _Answer(200, json.dumps(big).encode()), "openai-chat")
    with pytest.raises(openai.APIStatusError) as error:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert error.value.status_code == 502
    assert "larger than 1024 bytes" in error.value.message


@pytest.mark.parametrize("upstream_format", ["anthropic-messages", "anthropic-text"])
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "answered-whole"])
def test_text_completions_2023_01_01_clients_get_their_versions_stream(
    servers: ServerFactory, fake: FakeUpstream, upstream_format: str, stream: bool
) -> None:
    """A ``/v1/complete`` client pinned to ``anthropic-version: 2023-01-01`` reads data-only
    events that each carry the whole completion so far, then ``data: [DONE]`` (formats.md
    §4.4); the upstream is asked in the proxy's version, whatever answer form it picks."""
    upstream = servers(fake if stream else _FlipStream(fake))
    proxy = servers(UpstreamProxy(upstream.url, upstream_format=upstream_format))
    body = {"model": "m", "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 50}
    raw = _raw_stream(
        proxy.url,
        "/v1/complete",
        {**body, "stream": True},
        {"anthropic-version": "2023-01-01", "x-fake-scenario": "text"},
    )
    events = SSEDecoder().feed(raw)
    assert events[-1].data == "[DONE]"
    assert b"event:" not in raw  # (data-only)
    completions = [json.loads(event.data)["completion"] for event in events[:-1]]
    assert completions[-1] == SCRIPTS["text"].text
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(completions))
    assert fake.last_headers is not None
    assert fake.last_headers["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"[1, 2]", "non-object JSON body"), (b"{not json", "invalid JSON")],
)
@pytest.mark.parametrize("stream", [False, True])
def test_an_unreadable_2xx_answer_is_a_502_and_reported(
    servers: ServerFactory, body: bytes, message: str, stream: bool
) -> None:
    proxy, reports = _reporting_proxy(servers, _Answer(200, body), "anthropic-messages")
    with pytest.raises(openai.InternalServerError) as info:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, stream=stream)
    assert info.value.status_code == 502
    report = _one_report(reports)
    assert report.outcome == "failed"
    assert report.error is not None
    assert message in report.error.message
    assert report.bytes_sent > 0


def test_on_complete_for_identity_json_reads_usage(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """Same format both sides, whole JSON: the upstream's body goes out as it is, and the
    report still carries its usage."""
    proxy, reports = _reporting_proxy(servers, fake, "openai-chat")
    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    report = _one_report(reports)
    assert report.outcome == "complete"
    assert report.response is not None
    assert report.response["id"] == completion.id
    assert report.usage is not None
    assert completion.usage is not None
    assert report.usage.output_tokens == completion.usage.completion_tokens


# -- tool names OpenAI refuses ----------------------------------------------------------------


def test_long_tool_names_reach_an_openai_upstream_short_and_come_back_whole(
    servers: ServerFactory,
) -> None:
    """Claude Code's MCP tools are often named beyond OpenAI's 64 characters (a 400 there): the
    upstream gets a short name, and the Anthropic client's call, streamed or whole, carries the
    name it knows."""
    long = "mcp__kubernetes-mcp-server__resources_list_namespaced_custom_objects"
    seen: list[str] = []

    async def upstream(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = json.loads(body)
        name = request["tools"][0]["function"]["name"]
        seen.append(name)
        call = {"index": 0, "id": "call_1", "type": "function"}
        call["function"] = {"name": name, "arguments": '{"ns": "default"}'}
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        if request.get("stream"):
            events = [
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant",
                                                             "tool_calls": [call]}}]},
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
            ]  # fmt: skip
            data = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
            data += b"data: [DONE]\n\n"
            kind = b"text/event-stream"
        else:
            message = {"role": "assistant", "content": None, "tool_calls": [
                {k: v for k, v in call.items() if k != "index"}]}  # fmt: skip
            data = json.dumps(
                {**chunk, "object": "chat.completion", "choices": [
                    {"index": 0, "message": message, "finish_reason": "tool_calls"}]},
            ).encode()  # fmt: skip
            kind = b"application/json"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", kind)]})  # fmt: skip
        await send({"type": "http.response.body", "body": data})

    served = servers(
        UpstreamProxy(servers(upstream).url, upstream_format="openai-chat", heartbeat_interval=None)
    )
    client = _anthropic(served.url)
    tools: Any = [{"name": long, "input_schema": {"type": "object"}}]
    request: Any = {"model": "m", "max_tokens": 64, "messages": MESSAGES, "tools": tools}
    with client.messages.stream(**request) as stream:
        streamed = stream.get_final_message()
    whole = client.messages.create(**request)
    for message in (streamed, whole):
        (block,) = message.content
        assert isinstance(block, anthropic.types.ToolUseBlock)
        assert (block.name, block.input) == (long, {"ns": "default"})
    assert len(seen) == 2
    assert all(len(name) <= 64 and name.startswith(long[:55]) for name in seen)


# -- Responses clients that refer to earlier output ---------------------------------------------


def test_responses_clients_may_refer_to_the_items_the_proxy_wrote(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A Responses client that stores its responses (the Vercel AI SDK, by default) sends its
    earlier output back as ``item_reference``s to the items' ids. With a translated upstream
    OpenAI never saw those items: the proxy keeps them, streamed or whole, and sends the
    upstream the items themselves (a tool loop included). ``store: false`` keeps nothing, and a
    reference the proxy cannot resolve is a 400 that says what to do."""
    _, proxy = _proxy(servers, fake, "anthropic-messages")
    client = _openai(proxy.url, **{"x-fake-scenario": "tools"})
    first = client.responses.create(model="m", input="weather?")
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls
    with client.responses.stream(model="m", input="and now?") as stream:
        streamed = stream.get_final_response()
    assert any(item.type == "function_call" for item in streamed.output)
    references: Any = [
        {"role": "user", "content": "weather?"},
        *({"type": "item_reference", "id": item.id} for item in first.output),
        *(
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
            for call in calls
        ),
        *({"type": "item_reference", "id": getattr(item, "id", None)} for item in streamed.output),
        {"role": "user", "content": "thanks"},
    ]
    client.responses.create(model="m", input=references)
    sent = fake.last_json
    assert sent is not None

    def blocks(role: str, kind: str) -> list[dict[str, Any]]:
        return [
            block
            for message in sent["messages"]
            if message["role"] == role and isinstance(message["content"], list)
            for block in message["content"]
            if block["type"] == kind
        ]

    uses = blocks("assistant", "tool_use")
    assert [use["name"] for use in uses][: len(calls)] == [call.name for call in calls]
    assert len(uses) == len(calls) + sum(i.type == "function_call" for i in streamed.output)
    results = blocks("user", "tool_result")
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses[: len(calls)]]
    unstored = client.responses.create(model="m", input="x", store=False)
    reference: Any = [{"type": "item_reference", "id": getattr(unstored.output[0], "id", None)}]
    with pytest.raises(openai.BadRequestError, match="store = false") as refused:
        client.responses.create(model="m", input=reference)
    assert refused.value.status_code == 400


def test_the_item_store_is_bounded() -> None:
    """The items are kept by their size as JSON, the least recently used dropped first."""
    store = proxy_module._ItemStore(300)
    items = [{"id": f"msg_{n}", "type": "message", "text": "x" * 50} for n in range(5)]
    store.keep(items[:3])
    assert list(store) == ["msg_0", "msg_1", "msg_2"]
    assert store.get("msg_0") == items[0]  # (a use)
    store.keep(items[3:])
    assert list(store) == ["msg_0", "msg_3", "msg_4"]  # (each about 86 bytes)
    store.keep([{"id": "huge", "text": "x" * 400}, {"type": "no id"}])
    assert list(store) == ["msg_0", "msg_3", "msg_4"]
    nothing = proxy_module._ItemStore(0)
    nothing.keep(items)
    assert len(nothing) == 0


# -- end_streams: the server shutting down ----------------------------------------------------


def _assert_ended_and_reported(reports: list[StreamReport]) -> None:
    """The one answer was reported failed with the reason (once it went out: reports follow)."""
    deadline = time.monotonic() + 3
    while not reports and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(r.outcome, r.error.message if r.error else None) for r in reports] == [
        ("failed", "maintenance")
    ]


def _ends(proxy: UpstreamProxy, reason: str) -> Any:
    """``proxy.end_streams(reason)`` as ``LiveServer.call`` runs it, on the server's loop."""

    async def end() -> int:
        return proxy.end_streams(reason)

    return end


def test_end_streams_ends_translated_streams_and_leaves_relays(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """A translated stream gets its client format's error tail with the reason, is reported
    failed and its upstream request closed; a relayed (untranslated) stream is the server's to
    end, and goes on."""
    reports: list[StreamReport] = []
    upstream = servers(fake)
    proxy = UpstreamProxy(
        upstream.url,
        upstream_format="anthropic-messages",
        client_format="openai-chat",  # /v1/messages is relayed
        heartbeat_interval=None,
        on_complete=reports.append,
    )
    served = servers(proxy)
    chat = {"model": "m", "messages": MESSAGES, "stream": True}
    messages = {"model": "m", "max_tokens": 64, "messages": MESSAGES, "stream": True}
    stall = {"x-fake-stall": "3"}
    url = served.url
    with (
        httpx2.stream("POST", url + "/v1/chat/completions", json=chat, headers=stall) as translated,
        httpx2.stream("POST", url + "/v1/messages", json=messages, headers=stall) as relayed,
    ):
        translated_bytes = translated.iter_raw()
        head = next(translated_bytes)
        relayed_bytes = relayed.iter_raw()
        next(relayed_bytes)
        assert fake.wait_for(lambda f: f.streams_in_progress == 2, timeout=3)
        assert served.call(_ends(proxy, "maintenance")) == 1
        events = SSEDecoder().feed(head + b"".join(translated_bytes))  # (ends: the body is whole)
        assert fake.wait_for(lambda f: len(f.disconnects) == 1, timeout=3)
        assert fake.disconnects[0].path == "/v1/messages"  # (the translated request's path)
        assert fake.streams_in_progress == 1  # the relayed stream goes on
        assert served.call(_ends(proxy, "again")) == 0
    assert events[-1].data == "[DONE]"
    error = json.loads(events[-2].data)["error"]
    assert (error["message"], error["type"]) == ("maintenance", "api_error")
    _assert_ended_and_reported(reports)


def _half_answer(content_type: bytes, body: bytes, asked: threading.Event) -> Any:
    """An upstream that answers 200 with the start of ``body`` and then nothing until the
    client leaves."""

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": True})
        asked.set()
        while (await receive())["type"] != "http.disconnect":
            pass

    return app


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        (b"application/json", b'{"id": "msg_1", "type": "message", "content": ['),
        (b"text/event-stream", b'event: message_start\ndata: {"type": "message_start", '),
    ],
    ids=["json", "event stream"],
)
def test_end_streams_answers_a_whole_read_with_503(
    servers: ServerFactory, content_type: bytes, body: bytes
) -> None:
    """A non-streaming request whose upstream answer is being read whole (JSON, or an event
    stream read into the response) gets its client format's 503, which the SDKs retry; the
    answer is reported failed."""
    reports: list[StreamReport] = []
    asked = threading.Event()
    upstream = servers(_half_answer(content_type, body, asked))
    proxy = UpstreamProxy(
        upstream.url, upstream_format="anthropic-messages", on_complete=reports.append
    )
    served = servers(proxy)
    answers: list[httpx2.Response] = []
    request = {"model": "m", "messages": MESSAGES}
    client = threading.Thread(
        target=lambda: answers.append(
            httpx2.post(served.url + "/v1/chat/completions", json=request, timeout=10)
        )
    )
    client.start()
    assert asked.wait(5)
    time.sleep(0.1)  # (the proxy is reading the rest)
    assert served.call(_ends(proxy, "maintenance")) == 1
    client.join(5)
    assert answers[0].status_code == 503
    error = answers[0].json()["error"]
    assert (error["message"], error["type"]) == ("maintenance", "api_error")
    _assert_ended_and_reported(reports)


# -- a query in the upstream URL ------------------------------------------------------------


CHAT_COMPLETION = json.dumps(
    {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
    }
).encode()


def test_upstream_url_query_is_kept_and_merged(servers: ServerFactory) -> None:
    """A query in ``upstream_url`` (Azure's ``api-version``) goes on every upstream request,
    first; the client's parameters follow, except one the base URL sets (the configured value
    wins)."""
    upstream = _Answer(200, CHAT_COMPLETION)
    base = servers(upstream).url + "/openai/deployments/d?api-version=2024-06-01"
    proxy = servers(
        UpstreamProxy(base, upstream_format="openai-chat", upstream_path="/chat/completions")
    )
    completion = _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES)
    assert completion.choices[0].message.content == "ok"
    assert upstream.target == ("/openai/deployments/d/chat/completions", b"api-version=2024-06-01")
    httpx2.post(
        proxy.url + "/v1/chat/completions?beta=true&api-version=evil&x=1",
        json={"model": "m", "messages": MESSAGES},
    )
    assert upstream.target == (
        "/openai/deployments/d/chat/completions",
        b"api-version=2024-06-01&beta=true&x=1",
    )
    httpx2.get(proxy.url + "/models?limit=2")
    assert upstream.target == ("/openai/deployments/d/models", b"api-version=2024-06-01&limit=2")
    plain = UpstreamProxy("http://h/v1?k=1", upstream_format="openai-chat")
    assert plain.upstream_url_for("/v1/chat/completions", b"") == "http://h/v1/chat/completions?k=1"
    with pytest.raises(ValueError, match="fragment"):
        UpstreamProxy("http://h/v1#x", upstream_format="openai-chat")


class _WithoutRawPath:
    """A dispatcher that gives the app a scope without ``raw_path`` (ASGI makes it optional)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app({k: v for k, v in scope.items() if k != "raw_path"}, receive, send)


@pytest.mark.parametrize("serving", ["direct", "mounted", "no-raw-path"])
def test_escaped_path_characters_stay_escaped(servers: ServerFactory, serving: str) -> None:
    """A relayed path goes upstream as the client escaped it: ``%3F`` adds no query parameter
    (the pinned ``api-version`` stays the only one), ``%23`` cuts no query off, ``%2F`` is no
    separator; mounted under a prefix too. Where the server gives no ``raw_path`` the decoded
    path is escaped again (``%2F`` is then a ``/``: nothing tells them apart). Escaped dot
    segments still cannot climb out of the base path."""
    upstream = _Answer(200, b"{}")
    base = servers(upstream).url + "/openai?api-version=2024-06-01"
    proxy: Any = UpstreamProxy(base, upstream_format="openai-chat")
    prefix = ""
    if serving == "mounted":
        mounted = proxy

        @contextlib.asynccontextmanager
        async def lifespan(app: Starlette) -> AsyncIterator[None]:
            yield
            await mounted.aclose()  # (a mounted app gets no lifespan events of its own)

        proxy = Starlette(routes=[Mount("/llm", app=mounted)], lifespan=lifespan)
        prefix = "/llm"
    elif serving == "no-raw-path":
        proxy = _WithoutRawPath(proxy)
    url = servers(proxy).url + prefix
    # (Without ``raw_path``, what the client escaped but need not have is not escaped again.)
    slash, amp = ("/", "&") if serving == "no-raw-path" else ("%2F", "%26")
    for path, sent in (
        ("/v1/models%3Fapi-version=evil", "/v1/models%3Fapi-version=evil"),
        ("/v1/models%23frag", "/v1/models%23frag"),
        ("/v1/models/a%2Fb", f"/v1/models/a{slash}b"),
    ):
        response = httpx2.get(url + path)
        assert response.status_code == 200, response.text
        assert upstream.raw_path == b"/openai" + sent.encode()
        assert upstream.target is not None
        assert upstream.target[1] == b"api-version=2024-06-01"
    httpx2.get(url + "/v1/models%3Fx=1%26api-version=evil?limit=2")
    assert upstream.raw_path == f"/openai/v1/models%3Fx=1{amp}api-version=evil".encode()
    assert upstream.target == (
        "/openai/v1/models?x=1&api-version=evil",
        b"api-version=2024-06-01&limit=2",
    )
    hits = upstream.hits
    for path in ("/v1/..%2F..%2Fadmin", "/v1/%2e%2e/%2e%2e/admin"):
        assert httpx2.get(url + path).status_code == 400
    assert upstream.hits == hits


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heartbeat_interval": 0}, "heartbeat_interval must be a positive finite number"),
        ({"heartbeat_interval": -1}, "heartbeat_interval must be a positive finite number"),
        ({"heartbeat_interval": float("nan")}, "heartbeat_interval must be a positive finite"),
        ({"heartbeat_interval": float("inf")}, "heartbeat_interval must be a positive finite"),
        ({"connect_timeout": 0}, "connect_timeout must be a positive finite number of seconds"),
        ({"first_byte_timeout": -1}, "first_byte_timeout must be a positive finite number"),
        ({"first_byte_timeout": float("nan")}, "first_byte_timeout must be a positive finite"),
        ({"idle_timeout": float("inf")}, "idle_timeout must be a positive finite number"),
        ({"write_timeout": None}, "write_timeout must be a positive finite number of seconds,"),
        ({"max_connections": 0}, "max_connections must be a positive int or None"),
        ({"max_connections": 1.5}, "max_connections must be a positive int or None"),
        ({"max_keepalive_connections": -1}, "max_keepalive_connections must be an int >= 0"),
        ({"max_request_body": 0}, "max_request_body must be a positive int, not 0"),
        ({"max_request_body": None}, "max_request_body must be a positive int, not None"),
        ({"max_event_size": -1}, "max_event_size must be a positive int or None"),
        ({"max_event_size": float("nan")}, "max_event_size must be a positive int or None"),
        ({"upstream_path": "chat/completions"}, "upstream_path must start with '/'"),
        ({"upstream_path": ""}, "upstream_path must start with '/'"),
        ({"upstream_path": "/../../x"}, "upstream_path must be a path under upstream_url"),
        ({"on_unsupported": "Error"}, "on_unsupported must be one of 'drop', 'error'"),
        ({"default_max_tokens": 0}, "default_max_tokens must be a positive int, not 0"),
    ],
)
def test_options_that_make_no_sense_are_refused_at_construction(
    options: dict[str, Any], message: str
) -> None:
    """A keep-alive flood (interval -1 or 0), a heartbeat timer that raises (NaN), every
    request a 504 (a negative first-byte timeout), a pool that can never connect (0), a path
    that every request would fail on: refused when the proxy is built, not per request."""
    with pytest.raises(ValueError, match=re.escape(message)):
        UpstreamProxy("http://h/openai/deployments/d", upstream_format="openai-chat", **options)


def test_upstream_url_checked_and_documented_nones_accepted() -> None:
    """An upstream URL httpx cannot parse is a ``ValueError`` too (it was ``httpx.InvalidURL``),
    and so is a port no connection can use; ``None`` stays "off" or "no limit" where the option
    documents it, and keeping no idle connections is a pool choice."""
    for url, message in [
        ("http://[::1", "upstream_url must be a valid URL"),
        ("http://h:99999", "upstream_url must have a port from 1 to 65535"),
        ("http://h:0", "upstream_url must have a port from 1 to 65535"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            UpstreamProxy(url, upstream_format="openai-chat")
    proxy = UpstreamProxy(
        "http://h:8080/openai/deployments/d?api-version=1",
        upstream_format="openai-chat",
        upstream_path="/chat/completions",
        heartbeat_interval=None,
        max_connections=None,
        max_keepalive_connections=0,
        max_event_size=None,
        first_byte_timeout=0.5,
    )
    assert proxy.heartbeat_interval is None
    assert proxy.limits.max_keepalive_connections == 0
    assert proxy.upstream_url_for("/chat/completions", b"") == (
        "http://h:8080/openai/deployments/d/chat/completions?api-version=1"
    )


def test_reasoning_options_checked_at_construction() -> None:
    """A reasoning field the Chat delta uses for something else fails at startup, not on each
    request."""
    with pytest.raises(ValueError, match="reasoning_field"):
        UpstreamProxy("http://h", upstream_format="openai-chat", reasoning_field="role")


def test_unsupported_field_refused_with_its_param(
    servers: ServerFactory, fake: FakeUpstream
) -> None:
    """With ``on_unsupported="error"`` a field the upstream cannot take is a 400 in the client's
    format that names the field as OpenAI does (``param``), and the upstream hears nothing."""
    _, proxy = _proxy(servers, fake, "anthropic-messages", on_unsupported="error")
    with pytest.raises(openai.BadRequestError) as raised:
        _openai(proxy.url).chat.completions.create(model="m", messages=MESSAGES, n=2)
    assert raised.value.param == "n"
    assert "field n is not supported" in raised.value.message
    assert fake.requests == 0


# -- browsers: CORS in front of the proxy -----------------------------------------------------


def test_cors_middleware_in_front_of_the_proxy(servers: ServerFactory, fake: FakeUpstream) -> None:
    """The README's composition for browsers: Starlette's ``CORSMiddleware`` around the proxy
    answers the preflight itself (the upstream hears nothing of it), and a real streamed request
    gets the translated stream with the CORS headers and the exposed request id."""
    origin = "https://chat.example.com"
    proxy = UpstreamProxy(
        servers(fake).url, upstream_format="anthropic-messages", heartbeat_interval=None
    )
    app = CORSMiddleware(
        proxy,
        allow_origins=[origin],
        allow_methods=["POST"],
        allow_headers=["*"],
        expose_headers=["x-request-id", "request-id", "retry-after", "x-should-retry"],
    )
    url = servers(app).url + "/v1/chat/completions"
    preflight = httpx2.options(
        url,
        headers={
            "origin": origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type, x-stainless-os",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == origin
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "x-stainless-os" in preflight.headers["access-control-allow-headers"]
    assert fake.requests == 0
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    with httpx2.stream("POST", url, json=body, headers={"origin": origin}) as response:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == origin
        assert "request-id" in response.headers["access-control-expose-headers"]
        events = SSEDecoder().feed(b"".join(response.iter_bytes()))
    assert events[-1].data == "[DONE]"
    text = "".join(
        (json.loads(e.data)["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for e in events[:-1]
    )
    assert text == TEXT
    assert fake.requests == 1


@pytest.mark.anyio
async def test_the_idle_timer_does_not_cut_a_bounded_error_tail(
    servers: ServerFactory, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream breaks mid-stream and the error tail's send waits on a client that stopped
    reading: the idle timer, still armed, fired inside that bounded send and its cancellation
    escaped the app (no one took it for its own). The timers are off before the ending: the
    send is abandoned at its own bound, and the app returns."""
    monkeypatch.setattr(session_module, "HEARTBEAT_SEND_TIMEOUT", 1.0)
    upstream = servers(fake)
    proxy = UpstreamProxy(
        upstream.url, upstream_format="openai-chat", heartbeat_interval=None, idle_timeout=0.3
    )
    body = json.dumps({"model": "m", "max_tokens": 5, "stream": True, "messages": MESSAGES})
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": body.encode(), "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.body" and b"event: error" in message["body"]:
            await asyncio.Event().wait()  # and stops reading: the error tail's send waits

    headers = [(b"content-type", b"application/json"), (b"x-fake-fail-after", b"3")]
    started = time.monotonic()
    await asyncio.wait_for(proxy(http_scope("/v1/messages", headers=headers), receive, send), 5)
    assert time.monotonic() - started < 4
    await proxy.aclose()
