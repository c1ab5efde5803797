"""The examples run: each one serves real streaming requests under uvicorn, and the demo runs as
``python -m example_app`` and stops on Ctrl-C.

The in-process examples are served by ``tests.servers.serve`` (uvicorn on a free loopback port in
a background thread). The Django example and the demo run as subprocesses: Django's settings can
be configured once per process (the middleware tests configure the test project's), and the demo
is a command.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from example_app import fastapi_app, gateway, mounted, starlette_app
from example_app.demo import build_app, page_config
from example_app.fake_upstream import SCRIPTS, FakeUpstream
from tests.servers import running, serve

ROOT = Path(__file__).resolve().parent.parent
TEXT = SCRIPTS["text"].text
MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "Hi"}]
MODEL = "claude-sonnet-4-6"
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0


# -- helpers ------------------------------------------------------------------------------------


def chat_text(base_url: str, model: str = MODEL) -> str:
    """Stream one OpenAI Chat completion with the openai SDK and return its text."""
    with openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0) as client:
        stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def messages_text(base_url: str) -> str:
    """Stream one Anthropic Messages answer with the anthropic SDK and return its text."""
    messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Hi"}]
    with (
        anthropic.Anthropic(base_url=base_url, api_key="unused", max_retries=0) as client,
        client.messages.stream(model=MODEL, max_tokens=256, messages=messages) as stream,
    ):
        return "".join(stream.text_stream)


def sse_lines(url: str, body: dict[str, object], headers: dict[str, str]) -> list[str]:
    """POST ``body`` and return the event-stream's lines (blank lines dropped)."""
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line for line in response.iter_lines() if line]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_up(url: str, process: subprocess.Popen[str]) -> float:
    """Poll ``GET url`` until it answers 200; return the seconds it took."""
    started = time.monotonic()
    while True:
        assert process.poll() is None, f"exited early with {process.returncode}"
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url, timeout=1).status_code == 200:
                return time.monotonic() - started
        assert time.monotonic() - started < STARTUP_TIMEOUT, f"{url} did not answer in time"
        time.sleep(0.05)


def interrupt(process: subprocess.Popen[str]) -> tuple[int, float, str]:
    """Send SIGINT (Ctrl-C); return the exit status, the seconds it took and the output."""
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=STOP_TIMEOUT)
    return process.returncode, time.monotonic() - started, output


@pytest.fixture
def fake() -> Iterator[tuple[FakeUpstream, str]]:
    """A fake LLM upstream under uvicorn: the instance and its base URL."""
    upstream = FakeUpstream()
    with serve(upstream) as url:
        yield upstream, url


# -- middleware examples ------------------------------------------------------------------------


@pytest.mark.parametrize("app", [starlette_app.app, fastapi_app.app], ids=["starlette", "fastapi"])
def test_middleware_example_translates_anthropic_to_openai_chat(app: Any) -> None:
    with serve(app) as base_url:
        assert chat_text(base_url + "/v1") == TEXT
        lines = sse_lines(
            base_url + "/v1/chat/completions", {"model": "m", "stream": True, "messages": []}, {}
        )
    assert lines[-1] == "data: [DONE]"
    assert not any(line.startswith("event:") for line in lines)  # no Anthropic events left


def test_fastapi_example_leaves_other_routes_alone() -> None:
    with serve(fastapi_app.app) as base_url:
        response = httpx.get(base_url + "/health")
    assert response.json() == {"status": "ok"}


# -- gateway examples ---------------------------------------------------------------------------


def test_gateway_example_serves_openai_and_anthropic_clients(
    fake: tuple[FakeUpstream, str],
) -> None:
    upstream, upstream_url = fake
    with serve(gateway.create_app(upstream_url)) as base_url:
        assert chat_text(base_url + "/v1", model="gpt-4o-mini") == TEXT
        assert upstream.last_path == "/v1/messages"
        assert upstream.last_json is not None
        assert upstream.last_json["model"] == MODEL  # model_map
        assert messages_text(base_url) == TEXT


def test_mounted_example_serves_its_routes_and_the_gateway(
    fake: tuple[FakeUpstream, str],
) -> None:
    upstream, upstream_url = fake
    with serve(mounted.create_app(upstream_url)) as base_url:
        assert httpx.get(base_url + "/health").json() == {"status": "ok"}
        me = httpx.get(base_url + "/api/me").json()
        assert me["llm_base_url"] == base_url + "/llm/v1"
        assert chat_text(base_url + "/llm/v1") == TEXT
        assert upstream.last_path == "/v1/messages"
        assert messages_text(base_url + "/llm") == TEXT


def test_django_example_translates_its_view_and_mounts_the_gateway(
    fake: tuple[FakeUpstream, str],
) -> None:
    upstream, upstream_url = fake
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    app = "example_app.django_project.asgi:application"
    args = ["-m", "uvicorn", app, "--port", str(port), "--log-level", "warning"]
    with running(args, env={"LLM_UPSTREAM_URL": upstream_url}) as process:
        wait_until_up(base_url + "/", process)
        assert "gateway" in httpx.get(base_url + "/").json()  # a plain Django view
        assert chat_text(base_url + "/v1") == TEXT  # Django's own stream, translated
        assert upstream.requests == 0
        assert chat_text(base_url + "/gateway/v1") == TEXT  # the gateway beside Django
        assert messages_text(base_url + "/gateway") == TEXT
        assert upstream.last_path == "/v1/messages"
        status, seconds, output = interrupt(process)
    assert status == 0, output
    assert seconds < STOP_TIMEOUT


# -- the demo -----------------------------------------------------------------------------------


def test_demo_app_serves_the_page_and_the_gateway(fake: tuple[FakeUpstream, str]) -> None:
    _, upstream_url = fake
    with serve(build_app(upstream_url, heartbeat_interval=0.2)) as base_url:
        page = httpx.get(base_url + "/")
        script = httpx.get(base_url + "/static/demo.js")
        style = httpx.get(base_url + "/static/demo.css")
        # A heartbeat while the upstream "thinks", then the translated stream.
        thinking = sse_lines(
            base_url + "/v1/messages",
            {"model": "m", "stream": True, "max_tokens": 64, "messages": MESSAGES},
            {"x-fake-delay": "0.7", "x-fake-scenario": "thinking"},
        )
        midway = page_config(upstream_url, 0.2)["scenarios"]["text"]["midway"]
        failed = sse_lines(
            base_url + "/v1/responses",
            {"model": "m", "stream": True, "input": "Hi"},
            {"x-fake-error-after": str(midway)},
        )
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '"upstreamFormat": "anthropic-messages"' in page.text
    assert "__DEMO_CONFIG__" not in page.text
    assert script.status_code == 200
    assert "class SSEParser" in script.text
    assert style.status_code == 200
    assert thinking[0] == ": ping"  # before the first event
    assert "event: message_stop" in thinking
    assert any('"thinking_delta"' in line for line in thinking)
    assert "event: error" in failed
    assert failed[-2:] == ["event: response.failed", failed[-1]]
    assert '"Overloaded"' in failed[-1]


def test_demo_midway_lets_some_text_through_in_every_scenario() -> None:
    scenarios = page_config("http://127.0.0.1:1", 1.0)["scenarios"]
    assert set(scenarios) == set(SCRIPTS)
    assert scenarios["text"]["midway"] == 9  # 3 head events and 6 of the 8 text deltas


def test_python_m_example_app_serves_and_stops_on_ctrl_c() -> None:
    port, upstream_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    args = ["-m", "example_app", "--port", str(port), "--upstream-port", str(upstream_port)]
    with running(args) as process:
        startup = wait_until_up(base_url + "/", process)
        assert startup < STARTUP_TIMEOUT
        assert chat_text(base_url + "/v1") == TEXT
        # The page's knobs reach the fake upstream through the gateway.
        lines = sse_lines(
            base_url + "/v1/chat/completions",
            {"model": "m", "stream": True, "messages": MESSAGES},
            {"x-fake-error-after": "5"},
        )
        assert json.loads(lines[-2].removeprefix("data: "))["error"]["message"] == "Overloaded"
        status, seconds, output = interrupt(process)
    assert status in (0, 130), output
    assert seconds < STOP_TIMEOUT
    assert f"curl -N {base_url}/v1/chat/completions" in output
    assert f'base_url="{base_url}/v1"' in output
    assert f"Open the page: {base_url}/" in output
    assert f"http://127.0.0.1:{upstream_port}" in output
    assert "Traceback" not in output


def test_python_m_example_app_stops_on_ctrl_c_with_a_stream_open() -> None:
    port, upstream_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    args = ["-m", "example_app", "--port", str(port), "--upstream-port", str(upstream_port)]
    with running(args) as process:
        wait_until_up(base_url + "/", process)
        body = {"model": "m", "stream": True, "messages": MESSAGES}
        headers = {"x-fake-stall": "true"}  # the upstream goes silent until the client leaves
        with httpx.stream(
            "POST", base_url + "/v1/chat/completions", json=body, headers=headers, timeout=10
        ) as response:
            assert response.status_code == 200
            lines = response.iter_lines()  # kept: a dropped iterator closes the connection
            next(lines)  # the stream is open
            status, seconds, output = interrupt(process)
            rest = [line for line in lines if line]
    assert status in (0, 130), output
    assert 1 <= seconds < STOP_TIMEOUT
    # Ended by the gateway, as the client's format says (not cut by uvicorn), and reported.
    assert rest[-1] == "data: [DONE]"
    assert json.loads(rest[-2].removeprefix("data: "))["error"]["message"] == (
        "the server is shutting down"
    )
    assert "failed" in output
    assert "(the server is shutting down)" in output


def test_python_m_example_app_reports_a_busy_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["-m", "example_app", "--port", str(port), "--upstream-port", str(free_port())]
        with running(args) as process:
            output, _ = process.communicate(timeout=STARTUP_TIMEOUT)
    assert process.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in output
    assert "--port" in output


@pytest.mark.parametrize(
    ("option", "value"), [("--heartbeat", "-1"), ("--heartbeat", "nan"), ("--port", "70000")]
)
def test_python_m_example_app_refuses_nonsense_numbers(option: str, value: str) -> None:
    """As the command line does: a usage error (exit 2) naming the option, before serving."""
    with running(["-m", "example_app", option, value]) as process:
        output, _ = process.communicate(timeout=STARTUP_TIMEOUT)
    assert process.returncode == 2
    assert f"argument {option}" in output
