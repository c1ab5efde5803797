"""``python -m example_app``: the demo — a fake LLM upstream and the gateway, in one process.

Two uvicorn servers share one asyncio loop: the fake upstream (``fake_upstream.FakeUpstream``,
speaking Anthropic Messages here) on ``--upstream-port`` (default 8081) and the gateway
(``demo.build_app``: the page at ``/`` plus an ``UpstreamProxy`` for the LLM endpoints) on
``--port`` (default 8080), both on ``--host`` (default 127.0.0.1). Ctrl-C (or SIGTERM) stops
both; open streams get one second to finish, then the gateway ends them with each client's
error (``UpstreamProxy.end_streams``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any

from asgi_sse_adapter import StreamReport
from asgi_sse_adapter.cli import _port, _seconds_or_zero

from .demo import MODEL, UPSTREAM_FORMAT, build_app
from .fake_upstream import FakeUpstream, InjectedFailure

GRACEFUL_SHUTDOWN = 1
"""Seconds open streams get after Ctrl-C before the gateway ends them."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m example_app",
        description="The asgi_sse_adapter demo: a fake LLM upstream and the gateway on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface for both servers")
    # (The command line's own checks: a bad number is a usage error, not a surprise.)
    parser.add_argument("--port", type=_port, default=8080, help="the gateway and the page")
    parser.add_argument("--upstream-port", type=_port, default=8081, help="the fake LLM upstream")
    parser.add_argument(
        "--heartbeat",
        type=_seconds_or_zero,
        default=1.0,
        metavar="SECONDS",
        help="idle seconds before the gateway sends a keep-alive comment (default 1.0; 0: off)",
    )
    parser.add_argument(
        "--log-level",
        default="warning",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (info shows every request)",
    )
    return parser


def _url_host(host: str) -> str:
    """The host to put in URLs: loopback for the wildcard addresses, IPv6 in brackets."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _listen(host: str, port: int) -> socket.socket:
    """Bind the listening socket up front, so a busy port is one clear line, not a traceback."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


class _QuietInjectedFailures(logging.Filter):
    """The fake upstream's "drop the connection" knob raises ``InjectedFailure`` on purpose;
    uvicorn would log each as "Exception in ASGI application" with a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, InjectedFailure)


def _banner(gateway: str, upstream: str, heartbeat: float | None) -> str:
    beat = "off" if heartbeat is None else f"after {heartbeat:g} s of silence"
    fake = f"fake LLM upstream ({UPSTREAM_FORMAT})"
    proxy = "gateway (UpstreamProxy)"
    width = max(len(fake), len(proxy)) + 2
    return f"""\
asgi_sse_adapter demo
  {fake:<{width}}{upstream}
  {proxy:<{width}}{gateway}  (heartbeat {beat})

Open the page: {gateway}/

Stream through the gateway with curl (OpenAI Chat in, Anthropic Messages upstream):
  curl -N {gateway}/v1/chat/completions -H 'content-type: application/json' \\
    -H 'x-fake-pace: 0.3' -H 'x-fake-delay: 2.5' \\
    -d '{{"model": "{MODEL}", "stream": true, "messages": [{{"role": "user", "content": "Hi"}}]}}'

Or with the openai SDK (pip install openai):
  from openai import OpenAI
  client = OpenAI(base_url="{gateway}/v1", api_key="unused")
  stream = client.chat.completions.create(
      model="{MODEL}", messages=[{{"role": "user", "content": "Hi"}}], stream=True
  )
  for chunk in stream:
      print(chunk.choices[0].delta.content or "", end="", flush=True)

The fake's knobs travel as headers through the gateway: x-fake-scenario (text, thinking, tools,
long), x-fake-pace and x-fake-delay (seconds), x-fake-error-after / x-fake-fail-after (events).
Ctrl-C stops both servers."""


def _report(report: StreamReport) -> None:
    """``on_complete``: one line per stream on the console."""
    line = (
        f"  stream {report.upstream_format} -> {report.client_format}: {report.outcome}, "
        f"{report.events} upstream events, {report.duration:.2f} s"
    )
    if report.error is not None:
        line += f" ({report.error.message})"
    print(line, flush=True)


class _Server:
    """A ``uvicorn.Server`` that leaves signal handling to ``_run`` (uvicorn's own handler is
    process-wide: with two servers, the second would replace the first's). ``end_streams``: called
    ``GRACEFUL_SHUTDOWN`` seconds into its shutdown, as the command line does (uvicorn's own
    cancellation, later, would cut the streams' bodies)."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        log_level: str,
        end_streams: Callable[[], object] | None = None,
    ) -> None:
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

            async def shutdown(self, sockets: Any = None) -> None:
                loop = asyncio.get_running_loop()
                ending = end_streams
                timer = None if ending is None else loop.call_later(GRACEFUL_SHUTDOWN, ending)
                try:
                    await super().shutdown(sockets)
                finally:
                    if timer is not None:
                        timer.cancel()

        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            # (Later than ``end_streams``: the ended streams' last sends take up to a second.)
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN + 2,
        )
        self.server = Server(config)
        self.sock = sock

    async def serve(self) -> None:
        await self.server.serve(sockets=[self.sock])


async def _run(args: argparse.Namespace) -> int:
    host = _url_host(args.host)
    try:
        upstream_sock = _listen(args.host, args.upstream_port)
    except OSError as exc:
        print(f"cannot listen on {host}:{args.upstream_port}: {exc.strerror or exc}")
        print("choose another port with --upstream-port")
        return 1
    try:
        gateway_sock = _listen(args.host, args.port)
    except OSError as exc:
        upstream_sock.close()
        print(f"cannot listen on {host}:{args.port}: {exc.strerror or exc}")
        print("choose another port with --port")
        return 1
    upstream_url = f"http://{host}:{upstream_sock.getsockname()[1]}"
    gateway_url = f"http://{host}:{gateway_sock.getsockname()[1]}"
    heartbeat = args.heartbeat or None
    gateway_app = build_app(upstream_url, heartbeat_interval=heartbeat, on_complete=_report)
    servers = [
        _Server(FakeUpstream(), upstream_sock, args.log_level),
        _Server(gateway_app, gateway_sock, args.log_level, gateway_app.proxy.end_streams),
    ]
    # After uvicorn configured logging (creating a Config does).
    logging.getLogger("uvicorn.error").addFilter(_QuietInjectedFailures())

    def stop(signum: int, frame: FrameType | None) -> None:
        for each in servers:
            if each.server.should_exit:  # the second Ctrl-C: do not wait for open streams
                each.server.force_exit = True
            each.server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        tasks = [asyncio.ensure_future(each.serve()) for each in servers]
        while not all(each.server.started for each in servers):
            if any(task.done() for task in tasks):
                break
            await asyncio.sleep(0.02)
        else:
            print(_banner(gateway_url, upstream_url, heartbeat), flush=True)
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [r for r in results if isinstance(r, BaseException)]
    for failure in failed:
        print(f"server failed: {failure!r}", file=sys.stderr)
    started = all(each.server.started for each in servers)
    if started:
        print("demo stopped", flush=True)
    return 1 if failed or not started else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo until Ctrl-C; the exit status is 0 after a clean stop."""
    args = _parser().parse_args(argv)
    try:
        import uvicorn  # noqa: F401  (the demo extra)
    except ImportError:
        print("the demo needs uvicorn: pip install -e '.[demo]'", file=sys.stderr)
        return 2
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
