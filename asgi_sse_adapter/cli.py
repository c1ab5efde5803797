"""``asgi-sse-adapter``: serve an ``UpstreamProxy`` from the command line (uvicorn, the ``cli``
extra)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import os
import sys
from collections.abc import Sequence
from typing import Any

from .formats import FORMATS

__all__ = ["build_parser", "main"]

_EPILOG = """\
examples:
  # OpenAI SDKs talk to Claude: point them at base_url=http://127.0.0.1:8080/v1
  ANTHROPIC_API_KEY=sk-ant-... asgi-sse-adapter --upstream https://api.anthropic.com \\
      --upstream-format anthropic-messages --api-key-env ANTHROPIC_API_KEY

  # Anthropic SDKs and Claude Code talk to a local vLLM/Ollama OpenAI-compatible server
  asgi-sse-adapter --upstream http://localhost:8000/v1 --upstream-format openai-chat

Every client format is served on its own endpoint: /v1/chat/completions, /v1/completions,
/v1/responses, /v1/messages, /v1/complete. Other paths are forwarded unchanged.
"""


def _seconds(text: str) -> float:
    """A positive finite number of seconds (argparse ``type``)."""
    value = _number(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _seconds_or_zero(text: str) -> float:
    """A finite number of seconds, 0 or more (argparse ``type``)."""
    value = _number(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(
            f"expected 0 or a positive number of seconds, got {text!r}"
        )
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None


def _positive_int(text: str) -> int:
    """A whole number of at least 1 (argparse ``type``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _port(text: str) -> int:
    """A TCP port, 0 to 65535 (argparse ``type``; 0: one the OS picks)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="asgi-sse-adapter",
        description=(
            "An LLM gateway: forwards each request to one upstream and translates requests and "
            "streamed answers between OpenAI and Anthropic wire formats, with heartbeats and "
            "proper error endings."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--upstream", required=True, help="upstream base URL, e.g. https://api.anthropic.com"
    )
    parser.add_argument(
        "--upstream-format", required=True, choices=FORMATS, help="the format the upstream speaks"
    )
    parser.add_argument(
        "--upstream-path",
        metavar="PATH",
        default=None,
        help=(
            "send translated requests to this path under --upstream instead of the upstream "
            "format's endpoint (Azure OpenAI: --upstream "
            "'https://R.openai.azure.com/openai/deployments/D?api-version=...' "
            "--upstream-path /chat/completions)"
        ),
    )
    parser.add_argument(
        "--client-format",
        choices=FORMATS,
        default=None,
        help=(
            "translate only this client format's endpoint (default: every format on its own "
            "endpoint); the other endpoints are then forwarded untranslated, like any path"
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=8080,
        help="port to listen on (default 8080; 0: any free port)",
    )
    parser.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="environment variable holding the upstream API key (never pass keys as arguments)",
    )
    parser.add_argument(
        "--forward-credentials",
        action="store_true",
        help="forward the client's own Authorization / x-api-key headers to the upstream "
        "(not with --api-key-env)",
    )
    parser.add_argument(
        "--heartbeat",
        type=_seconds_or_zero,
        default=15.0,
        metavar="SECONDS",
        help="seconds of silence before a keep-alive (default 15; 0: off)",
    )
    parser.add_argument(
        "--first-byte-timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="seconds to wait for the upstream to answer (default 300)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="seconds of upstream silence while it answers before failing (default 300)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        type=_seconds_or_zero,
        default=10.0,
        metavar="SECONDS",
        help=(
            "on Ctrl-C/SIGTERM, seconds open answers get to finish before they are ended "
            "with the client's error (default 10; 0: at once)"
        ),
    )
    parser.add_argument(
        "--default-max-tokens",
        type=_positive_int,
        default=4096,
        metavar="N",
        help=(
            "token limit sent to an Anthropic upstream (which requires one) when the client "
            "gave none (default 4096)"
        ),
    )
    parser.add_argument(
        "--model-map",
        action="append",
        default=[],
        metavar="CLIENT=UPSTREAM",
        help="rename a model on the way upstream (repeatable)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments and serve the gateway until interrupted."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        import uvicorn
        from uvicorn.config import STARTUP_FAILURE
    except ImportError:  # pragma: no cover - depends on the installed extras
        sys.exit("asgi-sse-adapter needs uvicorn: pip install 'asgi-sse-adapter[cli]'")
    from .proxy import UpstreamProxy
    from .session import CUT_SEND_TIMEOUT

    api_key = None
    if args.api_key_env and args.forward_credentials:
        # The proxy forwards clients' credentials only without a key of its own: both would
        # quietly mean the key.
        parser.error("argument --forward-credentials: not allowed with --api-key-env")
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            parser.error(f"argument --api-key-env: {args.api_key_env} is empty or unset")
    model_map = {}
    for item in args.model_map:
        client, sep, upstream = item.partition("=")
        if not sep or not client or not upstream:
            parser.error(f"--model-map expects CLIENT=UPSTREAM, got {item!r}")
        model_map[client] = upstream
    try:
        app = UpstreamProxy(
            args.upstream,
            upstream_format=args.upstream_format,
            client_format=args.client_format,
            upstream_path=args.upstream_path,
            api_key=api_key,
            forward_credentials=args.forward_credentials,
            heartbeat_interval=args.heartbeat or None,
            first_byte_timeout=args.first_byte_timeout,
            idle_timeout=args.idle_timeout,
            model_map=model_map,
            default_max_tokens=args.default_max_tokens,
        )
    except ValueError as exc:  # --upstream or --upstream-path (the numbers are checked above)
        message = str(exc)
        for name, flag in (("upstream_url ", "--upstream"), ("upstream_path ", "--upstream-path")):
            if message.startswith(name):
                message = f"argument {flag}: {message.removeprefix(name)}"
        parser.error(message)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    deadline = args.shutdown_timeout

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Any = None) -> None:
            # At uvicorn's own deadline it cancels what is still open: a stream's body cut off
            # (the SDKs see a broken connection), a traceback logged for each. The proxy ends
            # those answers itself just before, as each client's format says, and reports
            # them; uvicorn's cancellation stays the backstop.
            timer = asyncio.get_running_loop().call_later(deadline, app.end_streams)
            try:
                await super().shutdown(sockets)
            finally:
                timer.cancel()

    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=deadline + CUT_SEND_TIMEOUT + 1.0,
    )
    server = Server(config)
    with contextlib.suppress(KeyboardInterrupt):  # (as ``uvicorn.run``)
        server.run()
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # (as ``uvicorn.run``: the port taken, say)
