"""The fake LLM upstream (``example_app.fake_upstream``) speaks each format as the SDKs expect.

The fake is served by uvicorn on a free local port in a background thread, and the official
openai / anthropic SDKs are pointed at it; raw checks go through httpx and ``SSEDecoder``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest
import uvicorn
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from asgi_sse_adapter import ServerSentEvent, SSEDecoder
from example_app.fake_upstream import (
    CHAT_ID,
    CREATED,
    MESSAGE_ID,
    RESPONSE_ID,
    SCRIPTS,
    FakeUpstream,
    Knobs,
    long_script,
    render_response,
    render_stream,
)

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
CLAUDE_USER: list[MessageParam] = [{"role": "user", "content": "hi"}]


class _Served:
    """A ``FakeUpstream`` served by uvicorn on 127.0.0.1 in a daemon thread."""

    def __init__(self) -> None:
        self.fake = FakeUpstream()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port: int = sock.getsockname()[1]
        config = uvicorn.Config(
            self.fake, log_level="critical", lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self._sock = sock
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> _Served:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(5)
        self._sock.close()


@pytest.fixture(scope="module")
def served() -> Iterator[_Served]:
    with _Served() as running:
        yield running


@pytest.fixture
def fake(served: _Served) -> FakeUpstream:
    served.fake.reset()
    return served.fake


@pytest.fixture
def oai(served: _Served) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{served.url}/v1", api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture
def claude(served: _Served) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=served.url, api_key="x", max_retries=0) as client:
        yield client


@pytest.fixture
def http(served: _Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=10) as client:
        yield client


def _knob(**knobs: object) -> dict[str, str]:
    return {f"x-fake-{name.replace('_', '-')}": str(value) for name, value in knobs.items()}


def _read_events(
    http: httpx.Client, path: str, body: dict[str, Any], **kwargs: Any
) -> tuple[bytes, list[ServerSentEvent]]:
    """POST, read the whole (healthy) body, return its bytes and decoded events."""
    response = http.post(path, json=body, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    decoder = SSEDecoder()
    events = decoder.feed(response.content)
    decoder.close()
    assert not decoder.truncated
    return response.content, events


def _feed_all(response: httpx.Response, decoder: SSEDecoder, events: list[ServerSentEvent]) -> None:
    for data in response.iter_bytes():
        events += decoder.feed(data)


# --- OpenAI Chat -------------------------------------------------------------------------------


def test_chat_stream_through_the_sdk_helper(fake: FakeUpstream, oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="gpt-test", messages=USER, stream_options={"include_usage": True}
    ) as stream:
        completion = stream.get_final_completion()
    script = SCRIPTS["text"]
    assert completion.id == CHAT_ID
    assert completion.created == CREATED
    assert completion.model == "gpt-test"
    assert completion.choices[0].message.content == script.text
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == script.usage.prompt_tokens
    assert completion.usage.completion_tokens == script.usage.output_tokens
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == (
        script.usage.cache_read_input_tokens
    )
    assert fake.last_path == "/v1/chat/completions"
    assert fake.last_json is not None
    assert fake.last_json["stream"] is True
    # The client can hold the whole stream a moment before the server's task finishes.
    assert fake.wait_for(lambda f: f.streams_completed == 1, timeout=5)
    assert fake.streams_started == fake.streams_completed == 1


def test_chat_usage_chunk_only_when_asked(oai: openai.OpenAI) -> None:
    chunks = list(oai.chat.completions.create(model="m", messages=USER, stream=True))
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)
    with_usage = list(
        oai.chat.completions.create(
            model="m", messages=USER, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].choices == []
    assert with_usage[-1].usage is not None
    assert len(with_usage) == len(chunks) + 1


def test_chat_thinking_and_tools(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
        model="m", messages=USER, extra_headers=_knob(scenario="thinking")
    ) as stream:
        thinking = stream.get_final_completion().choices[0].message
    assert getattr(thinking, "reasoning_content", None) == SCRIPTS["thinking"].thinking
    assert thinking.content == SCRIPTS["thinking"].text

    with oai.chat.completions.stream(
        model="m", messages=USER, extra_headers=_knob(scenario="tools")
    ) as stream:
        choice = stream.get_final_completion().choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    expected = SCRIPTS["tools"].tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        (e.call_id, e.name, e.arguments) for e in expected
    ]


def test_chat_non_stream(oai: openai.OpenAI) -> None:
    completion = oai.chat.completions.create(
        model="m", messages=USER, extra_headers=_knob(scenario="tools")
    )
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.content == SCRIPTS["tools"].text
    assert [c.id for c in message.tool_calls or []] == [
        c.call_id for c in SCRIPTS["tools"].tool_calls
    ]
    assert completion.usage is not None
    assert completion.usage.total_tokens == SCRIPTS["tools"].usage.total_tokens


def test_long_scenario_has_the_requested_number_of_deltas(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.chat.completions.create(
            model="m", messages=USER, stream=True, extra_query={"scenario": "long", "deltas": 5}
        )
    )
    contents = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(contents) == long_script(5).text
    assert len(contents) == 5


# --- OpenAI Completions and Responses ----------------------------------------------------------


def test_completions_stream_and_non_stream(oai: openai.OpenAI) -> None:
    chunks = list(
        oai.completions.create(
            model="m", prompt="hi", stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == SCRIPTS["text"].text
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == SCRIPTS["text"].usage.output_tokens
    whole = oai.completions.create(model="m", prompt="hi")
    assert whole.choices[0].text == SCRIPTS["text"].text


@pytest.mark.parametrize("scenario", ["text", "thinking", "tools"])
def test_responses_stream(oai: openai.OpenAI, scenario: str) -> None:
    with oai.responses.stream(
        model="m", input="hi", extra_headers=_knob(scenario=scenario)
    ) as stream:
        response = stream.get_final_response()
    script = SCRIPTS[scenario]
    assert response.id == RESPONSE_ID
    assert response.output_text == script.text
    assert response.usage is not None
    assert response.usage.input_tokens == script.usage.prompt_tokens
    assert response.usage.output_tokens_details.reasoning_tokens == script.usage.reasoning_tokens
    kinds = [item.type for item in response.output]
    if scenario == "thinking":
        assert kinds == ["reasoning", "message"]
        reasoning = response.output[0]
        assert reasoning.type == "reasoning"
        assert reasoning.summary[0].text == script.thinking
    if scenario == "tools":
        assert kinds == ["message", "function_call", "function_call"]
        calls = [item for item in response.output if item.type == "function_call"]
        assert [(c.call_id, c.name, c.arguments) for c in calls] == [
            (t.call_id, t.name, t.arguments) for t in script.tool_calls
        ]


def test_responses_non_stream(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model="m", input="hi")
    assert response.status == "completed"
    assert response.output_text == SCRIPTS["text"].text


# --- Anthropic Messages and Text Completions ---------------------------------------------------


@pytest.mark.parametrize("scenario", ["text", "thinking", "tools"])
def test_messages_stream(claude: anthropic.Anthropic, scenario: str) -> None:
    with claude.messages.stream(
        model="claude-test",
        max_tokens=100,
        messages=CLAUDE_USER,
        extra_headers=_knob(scenario=scenario),
    ) as stream:
        message = stream.get_final_message()
    script = SCRIPTS[scenario]
    assert message.id == MESSAGE_ID
    assert message.model == "claude-test"
    assert message.stop_reason == script.stop_reason
    assert message.usage.output_tokens == script.usage.output_tokens
    assert message.usage.input_tokens == script.usage.input_tokens
    assert message.usage.cache_read_input_tokens == script.usage.cache_read_input_tokens
    assert message.usage.cache_creation_input_tokens == script.usage.cache_creation_input_tokens
    whole = claude.messages.create(
        model="claude-test",
        max_tokens=100,
        messages=CLAUDE_USER,
        extra_headers=_knob(scenario=scenario),
    )
    assert [b.model_dump(exclude={"parsed_output"}) for b in message.content] == [
        b.model_dump() for b in whole.content
    ]
    texts = [block.text for block in message.content if block.type == "text"]
    assert texts == [script.text]
    if scenario == "thinking":
        block = message.content[0]
        assert block.type == "thinking"
        assert block.thinking == script.thinking
        assert block.signature == script.signature
    if scenario == "tools":
        uses = [block for block in message.content if block.type == "tool_use"]
        assert [(u.id, u.name, u.input) for u in uses] == [
            (t.tool_use_id, t.name, t.input) for t in script.tool_calls
        ]


def test_anthropic_text_completions(http: httpx.Client) -> None:
    _, events = _read_events(http, "/v1/complete", {"prompt": "x", "stream": True})
    completions = [json.loads(e.data) for e in events if e.event == "completion"]
    assert "".join(c["completion"] for c in completions) == SCRIPTS["text"].text
    assert [c["stop_reason"] for c in completions][-2:] == [None, "stop_sequence"]
    assert {e.event for e in events} == {"completion", "ping"}

    legacy_headers = {"anthropic-version": "2023-01-01"}
    _, legacy = _read_events(
        http, "/v1/complete", {"prompt": "x", "stream": True}, headers=legacy_headers
    )
    assert all(e.event is None for e in legacy)
    assert legacy[-1].data == "[DONE]"
    assert json.loads(legacy[-2].data)["completion"] == SCRIPTS["text"].text

    whole = http.post("/v1/complete", json={"prompt": "x"}).json()
    assert whole["completion"] == SCRIPTS["text"].text
    assert whole["stop_reason"] == "stop_sequence"


# --- Bytes on the wire -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"]
)
def test_wire_bytes_are_deterministic_and_match_render_stream(
    http: httpx.Client, path: str
) -> None:
    body = {"model": "m", "stream": True}
    first, _ = _read_events(http, path, body, headers=_knob(scenario="tools"))
    second, _ = _read_events(http, path, body, params={"scenario": "tools", "chunk": 7})
    assert first == second == b"".join(render_stream(path, body, Knobs(scenario="tools")))


def test_crlf_and_ids(http: httpx.Client) -> None:
    body = {"stream": True}
    _, plain_events = _read_events(http, "/v1/messages", body)
    raw, events = _read_events(http, "/v1/messages", body, params={"crlf": "true", "ids": "1"})
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert [(e.event, e.data) for e in events] == [(e.event, e.data) for e in plain_events]
    assert events[-1].id == str(len(events))


def test_non_stream_json_matches_render_response(http: httpx.Client) -> None:
    body = {"model": "m"}
    got = http.post("/v1/responses", json=body, params={"scenario": "thinking", "chunk": 3})
    assert got.json() == render_response("/v1/responses", body, Knobs(scenario="thinking"))


# --- Knobs -------------------------------------------------------------------------------------


def test_status_returns_the_format_error(
    oai: openai.OpenAI, claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    with pytest.raises(openai.RateLimitError) as rate:
        oai.chat.completions.create(
            model="m", messages=USER, stream=True, extra_headers=_knob(status=429)
        )
    assert rate.value.code == "rate_limit_exceeded"
    with pytest.raises(anthropic.OverloadedError) as overloaded:
        claude.messages.create(
            model="m", max_tokens=5, messages=CLAUDE_USER, extra_headers=_knob(status=529)
        )
    assert overloaded.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with pytest.raises(anthropic.InternalServerError) as internal:
        claude.messages.create(
            model="m",
            max_tokens=5,
            messages=CLAUDE_USER,
            stream=True,
            extra_headers=_knob(status=500),
        )
    assert internal.value.type == "api_error"
    error = http.post("/v1/responses?status=500", json={"stream": True}).json()["error"]
    assert set(error) == {"message", "type", "param", "code"}


def test_error_after_sends_the_in_band_error(
    oai: openai.OpenAI, claude: anthropic.Anthropic, http: httpx.Client
) -> None:
    with pytest.raises(openai.APIError, match="error while processing"):
        list(
            oai.chat.completions.create(
                model="m", messages=USER, stream=True, extra_headers=_knob(error_after=3)
            )
        )
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        claude.messages.stream(
            model="m", max_tokens=5, messages=CLAUDE_USER, extra_headers=_knob(error_after=3)
        ) as stream,
    ):
        stream.get_final_message()
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    with (
        pytest.raises(openai.APIError, match="error while processing"),
        oai.responses.stream(model="m", input="hi", extra_headers=_knob(error_after=4)) as rs,
    ):
        rs.get_final_response()
    _, events = _read_events(http, "/v1/responses?error_after=4", {"stream": True})
    assert [e.event for e in events[-2:]] == ["error", "response.failed"]
    error = json.loads(events[-2].data)
    assert error["error"]["code"] == error["code"] == "server_error"
    assert json.loads(events[-1].data)["response"]["status"] == "failed"


def test_truncate_after_ends_cleanly_without_terminal_event(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    _, events = _read_events(http, "/v1/chat/completions?truncate_after=3", {"stream": True})
    assert len(events) == 3
    assert all(json.loads(e.data)["choices"][0]["finish_reason"] is None for e in events)
    assert fake.wait_for(lambda f: f.streams_completed == 1, timeout=5)


@pytest.mark.parametrize("knob", ["fail_after", "cut_mid_event"])
def test_fail_after_breaks_the_body(fake: FakeUpstream, http: httpx.Client, knob: str) -> None:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    with http.stream("POST", "/v1/messages", json={"stream": True}, params={knob: 2}) as response:
        with pytest.raises(httpx.RemoteProtocolError):
            _feed_all(response, decoder, events)
        decoder.close()
    assert [e.event for e in events] == ["message_start", "content_block_start"]
    assert decoder.truncated is (knob == "cut_mid_event")
    assert fake.wait_for(lambda f: f.streams_in_progress == 0)
    assert fake.aborts == 1
    assert fake.streams_completed == 0


def test_disconnect_is_recorded_and_stops_the_stream(
    fake: FakeUpstream, http: httpx.Client
) -> None:
    with http.stream(
        "POST", "/v1/chat/completions", json={"stream": True}, params={"stall": "true"}
    ) as response:
        first = next(response.iter_bytes())
        assert first.endswith(b"\n\n")
    assert fake.wait_for(lambda f: len(f.disconnects) == 1)
    (gone,) = fake.disconnects
    assert (gone.path, gone.stream, gone.events_sent) == ("/v1/chat/completions", True, 1)

    with http.stream(
        "POST", "/v1/responses", json={"stream": True}, params={"pace": 0.05, "scenario": "long"}
    ) as response:
        next(response.iter_bytes())
    assert fake.wait_for(lambda f: len(f.disconnects) == 2)
    assert fake.disconnects[1].events_sent < 5
    assert fake.wait_for(lambda f: f.streams_in_progress == 0)
    assert fake.streams_completed == 0


def test_delay_and_pace(http: httpx.Client) -> None:
    started = time.monotonic()
    _read_events(http, "/v1/messages?delay=0.2&pace=0.01", {"stream": True})
    assert time.monotonic() - started >= 0.2 + 0.01 * 8


def test_bad_knobs_are_rejected_in_the_format(fake: FakeUpstream, http: httpx.Client) -> None:
    typo = http.post("/v1/messages", json={}, headers={"x-fake-scenaro": "tools"})
    assert typo.status_code == 400
    assert typo.json()["error"]["type"] == "invalid_request_error"
    bad = http.post("/v1/chat/completions?fail_after=soon", json={})
    assert bad.status_code == 400
    assert "fail_after" in bad.json()["error"]["message"]
    assert http.post("/v1/nowhere", json={}).status_code == 404
    assert fake.requests == 3
    assert fake.last_headers is not None
    assert fake.last_path == "/v1/nowhere"


def test_knob_parsing() -> None:
    knobs = Knobs.from_request(
        [("X-Fake-Fail-After", "3"), ("x-fake-crlf", "yes"), ("x-fake-scenario", "long")],
        [("scenario", "tools"), ("stall", "true"), ("cut_mid_event", "true")],
    )
    assert knobs == Knobs(scenario="tools", fail_after=3, crlf=True, stall=1, cut_mid_event=True)
    with pytest.raises(ValueError, match="status"):
        Knobs.from_mapping({"status": "200"})
