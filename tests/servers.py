"""Run an ASGI app under a real uvicorn server on loopback, for streaming tests.

The in-process clients (Starlette's ``TestClient``, httpx's ``ASGITransport``) buffer bodies and
cannot deliver a mid-stream disconnect (sse-and-asgi.md §5.1), so timing, disconnect and SDK
tests run the app under uvicorn on ``127.0.0.1`` in a background thread, on a port the OS picks.

Usage::

    with serve(app) as base_url:  # "http://127.0.0.1:54321"
        httpx2.get(base_url + "/ping")

    with live_server(app) as server:  # the same, plus the server's event loop
        before = server.task_count()

With ``pytest_plugins = ["tests.servers"]`` in the root conftest, the ``server_factory`` fixture
starts any number of servers and stops them at teardown (``server_pool()`` is the same as a
context manager)::

    def test_x(server_factory: ServerFactory) -> None:
        base_url = server_factory(app).url

Uvicorn's logging configuration is left alone (``log_config=None``): its ``uvicorn.error``
records propagate to the root logger, so ``caplog`` sees "Exception in ASGI application".
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvicorn

__all__ = [
    "LiveServer",
    "ServerFactory",
    "live_server",
    "running",
    "serve",
    "server_factory",
    "server_pool",
]

T = TypeVar("T")

#: Seconds to wait for the server to start or stop before failing the test.
STARTUP_TIMEOUT = 10.0
#: Passed to uvicorn: streams still open at teardown are cancelled after this many seconds.
GRACEFUL_SHUTDOWN = 1.0


@dataclass
class LiveServer:
    """A running uvicorn server: its base URL, its ``uvicorn.Server`` and its event loop."""

    url: str
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread = field(repr=False)

    def call(self, func: Callable[[], Awaitable[T]], timeout: float = 5.0) -> T:
        """Run ``func()`` on the server's loop (from the test thread) and return its result."""

        async def run() -> T:
            return await func()

        future: Future[T] = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return future.result(timeout)

    def task_count(self) -> int:
        """How many tasks are alive on the server's loop (not counting the probe itself)."""

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        return self.call(count)


@contextlib.contextmanager
def live_server(app: Any, **config: Any) -> Iterator[LiveServer]:
    """Serve ``app`` under uvicorn on ``127.0.0.1`` in a daemon thread; stop it on exit.

    ``config`` goes to ``uvicorn.Config`` (``lifespan="off"``, ``ws="websockets-sansio"``…);
    ``loop="uvloop"`` runs the server on uvloop (Python 3.11+).
    Open streams are given ``GRACEFUL_SHUTDOWN`` seconds at teardown, then cancelled.
    """
    options: dict[str, Any] = {
        "log_config": None,
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN,
        "lifespan": "auto",
    }
    options.update(config)
    # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP; without it small events wait for the client's delayed ACK (40 ms).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    loop_ready: Future[asyncio.AbstractEventLoop] = Future()
    failure: list[BaseException] = []

    async def main() -> None:
        loop_ready.set_result(asyncio.get_running_loop())
        await server.serve(sockets=[sock])

    def target() -> None:
        try:
            if options.get("loop") == "uvloop":
                # ``Server.serve()`` runs on our loop: uvicorn's ``loop`` option is ours to honour.
                import uvloop

                runner_class = asyncio.Runner  # type: ignore[attr-defined,unused-ignore]
                with runner_class(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(main())
            else:
                asyncio.run(main())
        except BaseException as exc:  # SystemExit on a failed startup, too
            failure.append(exc)

    thread = threading.Thread(target=target, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        loop = loop_ready.result(STARTUP_TIMEOUT)
        waited = 0.0
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"uvicorn failed to start: {failure!r}")
            if waited > STARTUP_TIMEOUT:
                raise RuntimeError("uvicorn did not start in time")
            thread.join(0.01)
            waited += 0.01
        yield LiveServer(f"http://127.0.0.1:{port}", server, loop, thread)
    finally:
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STARTUP_TIMEOUT)
        sock.close()


@contextlib.contextmanager
def serve(app: Any, **config: Any) -> Iterator[str]:
    """Serve ``app`` like ``live_server`` and yield only its base URL."""
    with live_server(app, **config) as server:
        yield server.url


ServerFactory = Callable[..., LiveServer]
"""``server_factory(app, **uvicorn_config) -> LiveServer``."""


@contextlib.contextmanager
def server_pool() -> Iterator[ServerFactory]:
    """Yield ``start(app, **config) -> LiveServer``; every server started is stopped on exit."""
    with contextlib.ExitStack() as stack:

        def start(app: Any, **config: Any) -> LiveServer:
            return stack.enter_context(live_server(app, **config))

        yield start


@pytest.fixture
def server_factory() -> Iterator[ServerFactory]:
    """Start uvicorn servers on demand (``server_factory(app, **config)``); stop all at teardown.

    Importing a fixture into a test module trips ruff's F811; register this module as a plugin
    instead (``pytest_plugins = ["tests.servers"]`` in the root conftest) or wrap
    ``server_pool()`` in a local fixture.
    """
    with server_pool() as start:
        yield start


ROOT = Path(__file__).resolve().parent.parent
KILL_TIMEOUT = 5.0


@contextlib.contextmanager
def running(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    """Run ``python <args>`` from the repository root (output unbuffered, stderr into stdout);
    kill it if the test left it running."""
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(KILL_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
