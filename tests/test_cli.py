"""The ``asgi-sse-adapter`` command: bad arguments are one-line usage errors (exit 2) before
anything is served, ``--upstream-path`` reaches the upstream, and Ctrl-C/SIGTERM with a stream
open stops the gateway after ``--shutdown-timeout``.

Argument errors are checked through ``main(argv)`` in-process, with ``--port`` on a port this
test holds: a value the parser let through would make uvicorn fail to bind (exit 1) instead of
serving. Serving runs the command as a subprocess (``python -m asgi_sse_adapter``) against the
fake upstream under uvicorn in a thread.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from asgi_sse_adapter.cli import build_parser, main
from example_app.fake_upstream import SCRIPTS, FakeUpstream
from tests.servers import running, serve

ROOT = Path(__file__).resolve().parent.parent
TEXT = SCRIPTS["text"].text
STARTUP_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
CHAT = {"model": "m", "stream": True, "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something already listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def fake() -> Iterator[tuple[FakeUpstream, str]]:
    """A fake LLM upstream under uvicorn: the instance and its base URL."""
    upstream = FakeUpstream()
    with serve(upstream) as url:
        yield upstream, url


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``, expect a usage error (exit 2); return its one-line message."""
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2, err
    assert "Traceback" not in err
    assert err.startswith("usage: asgi-sse-adapter")
    message = err.splitlines()[-1]
    assert message.startswith("asgi-sse-adapter: error: ")
    return message.removeprefix("asgi-sse-adapter: error: ")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def gateway(args: list[str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Run ``python -m asgi_sse_adapter <args> --port <free>`` until it listens; yield the
    process and its base URL; kill it if the test left it running."""
    port = free_port()
    with running(["-m", "asgi_sse_adapter", *args, "--port", str(port)]) as process:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"exited early with {process.returncode}: {output}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() - started < STARTUP_TIMEOUT, "the gateway did not start"
            time.sleep(0.05)
        yield process, f"http://127.0.0.1:{port}"


# -- argument errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--heartbeat", "-1"),  # was accepted: a keep-alive flood
        ("--heartbeat", "nan"),  # was accepted: every stream failed in the heartbeat timer
        ("--heartbeat", "inf"),
        ("--heartbeat", "soon"),
        ("--first-byte-timeout", "-1"),  # was accepted: every request a 504
        ("--first-byte-timeout", "0"),
        ("--first-byte-timeout", "nan"),
        ("--idle-timeout", "-5"),
        ("--idle-timeout", "inf"),
        ("--shutdown-timeout", "-1"),
        ("--shutdown-timeout", "nan"),
        ("--default-max-tokens", "0"),
        ("--default-max-tokens", "lots"),
    ],
)
def test_a_number_out_of_range_is_a_usage_error(
    option: str, value: str, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--upstream", "http://127.0.0.1:1", "--upstream-format", "openai-chat"]
    argv += ["--port", str(busy_port)]
    message = usage_error([*argv, option, value], capsys)
    assert message.startswith(f"argument {option}: expected ")
    assert repr(value) in message


def test_forwarded_credentials_and_a_key_of_its_own_are_a_usage_error(
    busy_port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy forwards clients' credentials only without a key of its own: given both, the
    upstream got the key and the flag was quietly ignored."""
    monkeypatch.setenv("SERVER_KEY", "server-key")
    argv = ["--upstream", "http://127.0.0.1:1", "--upstream-format", "openai-chat"]
    argv += ["--port", str(busy_port), "--api-key-env", "SERVER_KEY", "--forward-credentials"]
    message = usage_error(argv, capsys)
    assert message == "argument --forward-credentials: not allowed with --api-key-env"


@pytest.mark.parametrize("port", ["99999", "-5", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str) -> None:
    """(A subprocess: an out-of-range port used to get as far as uvicorn, which failed with a
    traceback.)"""
    argv = ["--upstream", "http://127.0.0.1:1", "--upstream-format", "openai-chat"]
    done = subprocess.run(
        [sys.executable, "-m", "asgi_sse_adapter", *argv, "--port", port],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    expected = (
        f"asgi-sse-adapter: error: argument --port: expected a port from 0 to 65535, got {port!r}"
    )
    assert done.stderr.splitlines()[-1] == expected


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("127.0.0.1:8081", "must be an http(s) URL"),
        ("localhost", "must be an http(s) URL"),
        ("ftp://x", "must be an http(s) URL"),
        ("", "must be an http(s) URL"),
        ("http://127.0.0.1:8081/v1#frag", "must not have a fragment"),
        ("http://[::1", "must be a valid URL"),
        ("http://127.0.0.1:99999", "must have a port from 1 to 65535"),
    ],
)
def test_a_bad_upstream_is_a_usage_error(
    upstream: str, expected: str, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--upstream", upstream, "--upstream-format", "openai-chat", "--port", str(busy_port)]
    message = usage_error(argv, capsys)
    assert message.startswith(f"argument --upstream: {expected}")
    assert repr(upstream) in message


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("chat/completions", "must start with '/'"),
        ("", "must start with '/'"),
        ("/../../elsewhere", "must be a path under upstream_url"),
    ],
)
def test_a_bad_upstream_path_is_a_usage_error(
    path: str, expected: str, busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--upstream", "http://127.0.0.1:1/openai/deployments/d", "--upstream-format"]
    argv += ["openai-chat", "--upstream-path", path, "--port", str(busy_port)]
    message = usage_error(argv, capsys)
    assert message == f"argument --upstream-path: {expected}, got {path!r}"


def test_a_model_map_without_equals_is_a_usage_error(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--upstream", "http://127.0.0.1:1", "--upstream-format", "openai-chat"]
    argv += ["--port", str(busy_port), "--model-map", "foo"]
    assert usage_error(argv, capsys) == "--model-map expects CLIENT=UPSTREAM, got 'foo'"


def test_an_empty_api_key_variable_is_a_usage_error(
    busy_port: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASGI_SSE_TEST_EMPTY_KEY", "")
    argv = ["--upstream", "http://127.0.0.1:1", "--upstream-format", "openai-chat"]
    argv += ["--port", str(busy_port), "--api-key-env", "ASGI_SSE_TEST_EMPTY_KEY"]
    message = usage_error(argv, capsys)
    assert message == "argument --api-key-env: ASGI_SSE_TEST_EMPTY_KEY is empty or unset"


def test_defaults_zeroes_and_help() -> None:
    """``--heartbeat 0`` is off (as the help says), ``--port 0`` any free port, and
    ``--shutdown-timeout`` (default 10) and ``--upstream-path`` are documented."""
    parser = build_parser()
    required = ["--upstream", "http://h", "--upstream-format", "openai-chat"]
    defaults = parser.parse_args(required)
    assert (defaults.heartbeat, defaults.shutdown_timeout, defaults.upstream_path) == (15, 10, None)
    zeroes = parser.parse_args(
        [*required, "--heartbeat", "0", "--shutdown-timeout", "0", "--port", "0"]
    )
    assert (zeroes.heartbeat, zeroes.shutdown_timeout, zeroes.port) == (0, 0, 0)
    text = " ".join(parser.format_help().split())
    assert "--shutdown-timeout SECONDS" in text
    assert "ended with the client's error (default 10; 0: at once)" in text
    assert "--upstream-path PATH" in text
    assert "seconds of silence before a keep-alive (default 15; 0: off)" in text
    assert defaults.default_max_tokens == 4096
    assert "--default-max-tokens N" in text


# -- serving ------------------------------------------------------------------------------------


def test_upstream_path_replaces_the_format_endpoint(fake: tuple[FakeUpstream, str]) -> None:
    """The Azure layout: the deployment URL plus ``--upstream-path /completions`` (without it the
    request would go to ``…/v1/chat/v1/chat/completions``)."""
    upstream, upstream_url = fake
    args = ["--upstream", upstream_url + "/v1/chat", "--upstream-format", "openai-chat"]
    args += ["--upstream-path", "/completions", "--log-level", "warning"]
    with gateway(args) as (_, base_url):
        with openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0) as client:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        # A Messages client, translated, goes to the same path.
        httpx.post(
            base_url + "/v1/messages",
            json={"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]},
            timeout=10,
        ).raise_for_status()
    assert text == TEXT
    assert upstream.last_path == "/v1/chat/completions"
    assert upstream.requests == 2


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_ends_open_answers_at_the_shutdown_timeout(
    fake: tuple[FakeUpstream, str], signum: signal.Signals
) -> None:
    """uvicorn alone waits for open streams until its graceful deadline, then cancels them: the
    client saw a cut body (an SDK connection error), uvicorn logged a traceback for each, and
    with SIGTERM the process could die before reporting them. At ``--shutdown-timeout`` the
    proxy ends each open answer itself, the way its client's format says, closes its upstream
    request and reports it; the process then exits. Four answers open at once: an OpenAI Chat
    stream and an Anthropic Messages stream (identity) that have sent text, a Responses stream
    whose upstream has sent no event yet (its head held: a 503 the SDK would retry), and a
    non-streaming Chat request whose upstream has not answered (503 too)."""
    upstream, upstream_url = fake
    args = ["--upstream", upstream_url, "--upstream-format", "anthropic-messages"]
    args += ["--shutdown-timeout", "0.5"]
    stall = {"x-fake-stall": "4"}  # silent after the first text, until the client leaves
    outcomes: dict[str, Any] = {}

    def chat(base_url: str) -> None:
        with openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0) as client:
            stream = client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "Hi"}],
                stream=True,
                extra_headers=stall,
            )
            text = ""
            try:
                for chunk in stream:
                    text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            except openai.APIError as exc:
                outcomes["chat"] = (type(exc), exc.message, text)

    def messages(base_url: str) -> None:
        with anthropic.Anthropic(base_url=base_url, api_key="k", max_retries=0) as client:
            text = ""
            try:
                with client.messages.stream(
                    model="m",
                    max_tokens=64,
                    messages=[{"role": "user", "content": "Hi"}],
                    extra_headers=stall,
                ) as stream:
                    for piece in stream.text_stream:
                        text += piece
            except anthropic.APIStatusError as exc:
                outcomes["messages"] = (type(exc), exc.body, text)

    def responses(base_url: str) -> None:
        with openai.OpenAI(base_url=base_url + "/v1", api_key="k", max_retries=0) as client:
            try:
                for _ in client.responses.create(
                    model="m", input="Hi", stream=True, extra_headers={"x-fake-delay": "30"}
                ):
                    pass
            except openai.APIStatusError as exc:
                outcomes["responses"] = (exc.status_code, exc.body)

    def whole(base_url: str) -> None:
        response = httpx.post(
            base_url + "/v1/chat/completions",
            json={**CHAT, "stream": False},
            headers={"x-fake-header-delay": "30"},
            timeout=10,
        )
        outcomes["whole"] = (response.status_code, response.json())

    with gateway(args) as (process, base_url):
        answers = (chat, messages, responses, whole)
        clients = [threading.Thread(target=f, args=(base_url,)) for f in answers]
        for thread in clients:
            thread.start()
        started = time.monotonic()
        while upstream.requests < 4 or upstream.streams_in_progress < 3:
            assert time.monotonic() - started < STARTUP_TIMEOUT, "the answers did not start"
            time.sleep(0.05)
        time.sleep(0.3)  # the two stalled streams have sent their first text
        started = time.monotonic()
        process.send_signal(signum)
        output, _ = process.communicate(timeout=STOP_TIMEOUT)
        seconds = time.monotonic() - started
        for thread in clients:
            thread.join(STOP_TIMEOUT)
    assert process.returncode in (0, -signum, 128 + signum), output
    assert 0.5 <= seconds < 2.5, output
    reason = "the server is shutting down"
    chat_error, chat_message, chat_text = outcomes["chat"]
    assert (chat_error, chat_message) == (openai.APIError, reason)
    assert chat_text  # (what came before the end is kept)
    messages_error, body, messages_text = outcomes["messages"]
    assert messages_error is anthropic.APIStatusError
    assert body == {"type": "error", "error": {"type": "api_error", "message": reason}}
    assert messages_text
    status, error = outcomes["responses"]
    assert (status, error["message"], error["type"]) == (503, reason, "api_error")
    status, payload = outcomes["whole"]
    assert (status, payload["error"]["message"], payload["error"]["type"]) == (
        503,
        reason,
        "api_error",
    )
    # Each upstream request was closed, each answer ended by the proxy and reported.
    assert len(upstream.disconnects) == 4
    assert upstream.streams_in_progress == 0
    assert "Traceback" not in output
    assert "timeout graceful shutdown exceeded" not in output
    assert output.count("stream ended before the upstream's: " + reason) == 3
    assert output.count("request ended before the upstream answered: " + reason) == 1
    assert output.count(": failed, ") == 3, output
