"""``UpstreamProxy``: an ASGI app that forwards LLM requests to one upstream with httpx.

Clients call their own format's endpoint (``/v1/chat/completions``, ``/v1/completions``,
``/v1/responses``, ``/v1/messages``, ``/v1/complete``); the proxy translates the request into the
upstream format, forwards it to the upstream format's endpoint, and translates the answer back:
SSE through ``StreamAdapter`` as it arrives, JSON replies whole. The client gets the kind of
answer it asked for whatever the upstream chose: an event stream answering a non-streaming
request is read whole into the client format's response object, a JSON reply to a streaming
request is written as the client format's event stream. Other paths are forwarded as they are.
The proxy only ever contacts its configured upstream (no URL or Host taken from the client).

sse-and-asgi.md §4 is the reference for httpx as a proxy client: one ``AsyncClient`` per proxy,
created lazily (Django never sends lifespan events) or injected; a cookie jar that stores nothing;
``trust_env`` off; hop-by-hop headers stripped both ways; an allow-list of upstream response
headers; upstream closed as soon as the client leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.cookiejar
import json
import logging
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
)
from typing import Any, Literal

import httpx

try:
    # httpx has no public name for the codings it decodes (br and zstd need optional packages);
    # this one exists from 0.27, our lowest, to today.
    from httpx._decoders import SUPPORTED_DECODERS
except ImportError:  # pragma: no cover - should httpx move it: what it always decodes
    SUPPORTED_DECODERS = dict.fromkeys(("identity", "gzip", "deflate"))  # type: ignore[assignment]

from ._checks import check_choice, check_count, check_seconds
from .adapter import MALFORMED_RESPONSE, StreamAdapter, check_reasoning_options
from .formats import FORMATS, get_format
from .formats.anthropic_text import FORMAT_2023_01_01
from .formats.base import MAX_QUOTED, Format
from .parts import StreamError
from .requests import RequestTranslationError, estimate_input_tokens, translate_request
from .session import OnComplete, StreamReport, StreamSession, publish, uncancel, within
from .sse import DEFAULT_MAX_EVENT_SIZE

__all__ = ["UpstreamProxy"]

logger = logging.getLogger("asgi_sse_adapter")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Header names are the lowercased bytes of the ASGI scope; values stay the bytes the client
# sent (RFC 9110 §5.5 obs-text, a latin-1 ``X-Title: Café``, included).

# RFC 9110 §7.6.1 (plus Trailer and the Proxy-* pair, sse-and-asgi.md §4.7).
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"transfer-encoding",
        b"upgrade",
        b"trailer",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
# The client's API credentials: forwarded only with ``forward_credentials``.
CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"api-key"})
# Never forwarded: the client's cookies belong to the gateway's origin, not the upstream's.
NEVER_FORWARDED = frozenset({b"host", b"content-length", b"accept-encoding", b"cookie"})
# Each vendor's own request headers (OpenAI's organization and project ids, Anthropic's
# version and betas): never sent to the other vendor's upstream, which has no use for them.
VENDOR_HEADER_PREFIXES = {"openai": b"openai-", "anthropic": b"anthropic-"}
# Upstream response headers a client may see: request ids, rate-limit information and the
# retry advice the SDKs read before the status (``x-should-retry``).
RESPONSE_HEADER_ALLOW = (
    b"x-request-id",
    b"request-id",
    b"retry-after",
    b"retry-after-ms",
    b"x-should-retry",
    b"openai-processing-ms",
)
RESPONSE_HEADER_PREFIXES = (b"x-ratelimit-", b"anthropic-ratelimit-")
MAX_ERROR_BODY = 1024 * 1024
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
# What is read of an upstream body after its last event ended the client's stream (``_drain``).
DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024
# The most of an upstream answer read whole: JSON, or an event stream answering a request that
# did not ask for one (``_aggregate``).
MAX_AGGREGATED_BODY = 64 * MAX_ERROR_BODY
_SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


# ``_Exchange._whole_json``: no answer to translate, the client already has its error.
_ANSWERED = object()


class _NoCookies(http.cookiejar.DefaultCookiePolicy):
    """A jar policy that stores nothing: a shared client must not carry one user's cookies to
    another (GHSA-7vwr-g6pm-9hc8)."""

    def set_ok(self, cookie: http.cookiejar.Cookie, request: Any) -> bool:
        return False


class UpstreamProxy:
    """Forward LLM API requests to ``upstream_url`` and translate between formats.

    Args:
        upstream_url: the upstream's base URL (``https://api.anthropic.com``, or with ``/v1``).
            A query in it (Azure's ``?api-version=…``) is sent on every upstream request, before
            the client's own parameters; a client parameter of a name it sets is dropped.
        upstream_format: the format the upstream speaks.
        client_format: translate only this client format's endpoint (default: every format,
            each on its own endpoint); the other formats' endpoints are then forwarded
            untranslated, like any other path.
        upstream_path: override the upstream endpoint path.
        api_key: the upstream key, injected as ``Authorization: Bearer`` (OpenAI family) or
            ``x-api-key`` (Anthropic); clients' own credentials are then never forwarded.
        forward_credentials: forward the client's ``Authorization``/``x-api-key``/``api-key``
            (only when no ``api_key`` is configured; its ``Cookie`` never is).
        anthropic_version: ``anthropic-version`` sent to Anthropic upstreams when the client
            sent none, and always on a translated request (the client's names its own API).
        client: an ``httpx.AsyncClient`` the caller owns: its limits, connect and write timeouts
            are then the caller's; the first-byte and idle timeouts below still apply, and its
            own read timeout as well (give it ``read=None``).
        connect_timeout, first_byte_timeout, idle_timeout, write_timeout: seconds; the
            first-byte timeout covers the model's thinking before it answers.
        max_connections, max_keepalive_connections: the connection pool (``None``: unbounded).
        max_request_body: bytes; larger request bodies get 413 before anything is forwarded.
        model_map: client model name → upstream model name.
        on_unsupported: a request field the upstream format cannot express is ``"drop"``-ped
            (named in the ``x-sse-adapter-dropped-fields`` response header) or an ``"error"``
            (400).
        default_max_tokens: the token limit sent to an Anthropic upstream (which requires one)
            when the client's request has none (OpenAI's formats do not require it).
        heartbeat_interval, and the ``StreamAdapter`` options: as in the middleware.
        stored_items_bytes: the Responses output items the proxy wrote for a translated
            upstream, kept (by their size as JSON, the least recently used dropped first) for
            clients that refer to them in a later request (``item_reference``: the Vercel AI SDK
            does unless ``store: false``); 0 keeps none. Per process: with several workers a
            reference can reach one that never held the item (a 400 that says so).
        on_complete: called once for every answer the upstream gave on a translated endpoint,
            streamed or whole JSON, whatever the client got (a stream read whole, JSON written
            as a stream), with a ``StreamReport``: usage counted there misses nothing.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        upstream_format: str,
        client_format: str | None = None,
        upstream_path: str | None = None,
        api_key: str | None = None,
        forward_credentials: bool = False,
        anthropic_version: str = "2023-06-01",
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = 10.0,
        first_byte_timeout: float = 300.0,
        idle_timeout: float = 300.0,
        write_timeout: float = 60.0,
        max_connections: int | None = 1000,
        max_keepalive_connections: int | None = 100,
        max_request_body: int = 16 * 1024 * 1024,
        model_map: Mapping[str, str] | None = None,
        on_unsupported: Literal["drop", "error"] = "drop",
        default_max_tokens: int = 4096,
        heartbeat_interval: float | None = 15.0,
        stored_items_bytes: int = 64 * 1024 * 1024,
        on_complete: OnComplete | None = None,
        reasoning: Literal["emit", "drop"] = "emit",
        reasoning_field: str = "reasoning_content",
        done_after_error: bool | None = None,
        visible_errors: bool = False,
        native_keepalive: bool = False,
        max_event_size: int | None = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        try:
            url = httpx.URL(upstream_url)
        except httpx.InvalidURL as exc:  # (not a ValueError)
            raise ValueError(
                f"upstream_url must be a valid URL ({exc}), got {upstream_url!r}"
            ) from None
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"upstream_url must be an http(s) URL, got {upstream_url!r}")
        if url.port is not None and not 0 < url.port < 65536:
            raise ValueError(f"upstream_url must have a port from 1 to 65535, got {upstream_url!r}")
        if url.fragment:
            raise ValueError(f"upstream_url must not have a fragment, got {upstream_url!r}")
        self.upstream_url = upstream_url.rstrip("/")
        # A query in the base URL (Azure's ``?api-version=``) goes on every upstream request,
        # merged with the client's (``_query``); paths are joined to the URL without it.
        self._base = str(url.copy_with(query=None)).rstrip("/")
        self._base_query = url.query.decode("ascii")
        self._base_names = frozenset(_query_names(self._base_query))
        self._root = httpx.URL(self._base)
        self._endpoint_urls: dict[str, httpx.URL] = {}  # parsed targets of the format endpoints
        self.upstream = get_format(upstream_format)
        names = FORMATS if client_format is None else (client_format,)
        self.clients: dict[str, Format] = {get_format(n).endpoint: get_format(n) for n in names}
        if upstream_path is not None:
            if not isinstance(upstream_path, str) or not upstream_path.startswith("/"):
                raise ValueError(f"upstream_path must start with '/', got {upstream_path!r}")
            try:
                self._target(upstream_path, b"")
            except ValueError:
                raise ValueError(
                    f"upstream_path must be a path under upstream_url, got {upstream_path!r}"
                ) from None
        self.upstream_path = upstream_path
        self.api_key = api_key
        self.forward_credentials = forward_credentials
        self.anthropic_version = anthropic_version
        for name, seconds in (
            ("connect_timeout", connect_timeout),
            ("first_byte_timeout", first_byte_timeout),
            ("idle_timeout", idle_timeout),
            ("write_timeout", write_timeout),
        ):
            check_seconds(name, seconds)
        check_count("max_connections", max_connections, minimum=1, optional=True)
        check_count(
            "max_keepalive_connections", max_keepalive_connections, minimum=0, optional=True
        )
        check_count("max_request_body", max_request_body, minimum=1)
        check_seconds("heartbeat_interval", heartbeat_interval, optional=True)
        check_count("max_event_size", max_event_size, minimum=1, optional=True)
        self.timeouts = (connect_timeout, first_byte_timeout, idle_timeout, write_timeout)
        self.limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_keepalive_connections
        )
        self.max_request_body = max_request_body
        self.model_map = dict(model_map or {})
        check_choice("on_unsupported", on_unsupported, ("drop", "error"))
        self.on_unsupported = on_unsupported
        check_count("default_max_tokens", default_max_tokens, minimum=1)
        self.default_max_tokens = default_max_tokens
        self.heartbeat_interval = heartbeat_interval
        self.on_complete = on_complete
        check_count("stored_items_bytes", stored_items_bytes, minimum=0)
        self.stored_items = _ItemStore(stored_items_bytes)
        check_reasoning_options(reasoning, reasoning_field)
        self.adapter_options: dict[str, Any] = {
            "reasoning": reasoning,
            "reasoning_field": reasoning_field,
            "done_after_error": done_after_error,
            "visible_errors": visible_errors,
            "native_keepalive": native_keepalive,
            "max_event_size": max_event_size,
        }
        self._client = client
        self._owns_client = client is None
        # What ``end_streams`` may end now: the task serving each exchange (``cuttable``).
        self._cuttable: dict[asyncio.Task[Any], _Exchange] = {}

    def end_streams(self, reason: str = "the server is shutting down") -> int:
        """End every translated answer still waiting on the upstream, now: a stream with its
        client format's error tail (``reason`` as its message), an answer not begun with that
        format's 503 error JSON, which the SDKs retry; each upstream request is closed and each
        answer reported (outcome ``failed``). Call it when the server's graceful shutdown is
        about to run out (the CLI does, at ``--shutdown-timeout``): the server's own
        cancellation cuts the response body instead, which the client sees as a broken
        connection. Untranslated paths are left to the server. Returns how many were ended."""
        cut = list(self._cuttable.items())
        self._cuttable.clear()
        for task, exchange in cut:
            exchange.cut = reason
            task.cancel()
        return len(cut)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def client(self) -> httpx.AsyncClient:
        """The upstream client, created on first use unless one was injected."""
        if self._client is None:
            connect, _, _, write = self.timeouts
            self._client = httpx.AsyncClient(
                # No read timeout: the first-byte and idle limits are the proxy's own watchdogs
                # (``_Idle``, one lazily re-armed timer per request), where httpx would arm and
                # cancel a timer around every read of the body.
                timeout=httpx.Timeout(connect=connect, read=None, write=write, pool=connect),
                limits=self.limits,
                trust_env=False,
                follow_redirects=False,
                cookies=http.cookiejar.CookieJar(policy=_NoCookies()),
            )
        return self._client

    async def aclose(self) -> None:
        """Close the upstream client if the proxy created it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await _Exchange(self, scope, receive, send).run()
        else:
            # Websockets and anything else are not LLM API traffic.
            if scope["type"] == "websocket":
                await receive()
                await send({"type": "websocket.close", "code": 1000})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing ----------------------------------------------------------------------------

    def upstream_url_for(self, path: str, query: bytes) -> str:
        """The upstream URL for a client path (only ever under ``upstream_url``).

        ``path`` is the path as the client wrote it (ASGI's ``raw_path``), escapes and all: they
        stay escaped upstream, so ``/v1/models%3Fapi-version=x`` cannot add a query parameter,
        ``%23`` cannot cut the query off and ``%2F`` is no separator.

        Raises ``ValueError`` for a target that is not a path or would leave the upstream: a
        server that passes the request target through (uvicorn's h11 does) makes
        ``@evil.example/x`` a path, and ``upstream_url + path`` would then name another host;
        dot segments, written out or escaped (``%2e%2e``, ``..%2F``), must not climb out of the
        upstream's base path either.
        """
        return str(self._target(path, query))

    def _target(self, path: str, query: bytes) -> httpx.URL:
        """``upstream_url_for`` as a parsed URL (what the request is built from)."""
        if not path.startswith("/"):
            raise ValueError("the request target is not a path")
        base = self._base
        if base.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        if "%" in path:
            # The upstream routes on the path decoded: the dot segments and slashes that
            # decoding makes must stay under the base path too.
            self._under_base(base + urllib.parse.quote(urllib.parse.unquote(path), safe="/"))
        url = base + path
        merged = self._query(query.decode("latin-1"))
        if merged:
            url += "?" + merged
        return self._under_base(url)

    def _under_base(self, url: str) -> httpx.URL:
        """``url`` parsed (dot segments removed), if it is under ``upstream_url``'s scheme,
        host, port and base path; ``ValueError`` otherwise."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL:
            raise ValueError("the request target is not a valid path") from None
        root = self._root
        prefix = root.path.rstrip("/")
        if (parsed.scheme, parsed.host, parsed.port) != (root.scheme, root.host, root.port) or (
            parsed.path != prefix and not parsed.path.startswith(prefix + "/")
        ):
            raise ValueError("the request target leaves the upstream")
        return parsed

    def _query(self, client: str) -> str:
        """The upstream query: ``upstream_url``'s own parameters first, then the client's,
        except those the base URL sets (the configured value wins: an operator's pinned
        ``api-version`` is not the client's to change, and a name sent twice is read
        differently by different servers)."""
        if not self._base_query:
            return client
        if not client:
            return self._base_query
        names = self._base_names
        kept = [p for p in client.split("&") if p and _query_name(p) not in names]
        return "&".join([self._base_query, *kept])

    def _endpoint_target(self, path: str, query: bytes) -> httpx.URL:
        """``_target`` for the upstream format's endpoint: parsed once when there is no query
        (the usual case; other paths come from clients and are not kept)."""
        if query:
            return self._target(path, query)
        url = self._endpoint_urls.get(path)
        if url is None:
            url = self._endpoint_urls[path] = self._target(path, b"")
        return url


class _Exchange:
    """One proxied request."""

    def __init__(self, proxy: UpstreamProxy, scope: Scope, receive: Receive, send: Send) -> None:
        self.proxy = proxy
        self.scope = scope
        self.receive = receive
        self.send = send
        self.started_at = time.monotonic()
        path = scope.get("path", "/")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            # Mounted under a prefix (Starlette's Mount keeps the full path, sets root_path).
            path = path[len(root) :] or "/"
        else:
            root = ""
        self.path = path  # decoded: what the endpoints are matched on
        self.root = root  # the prefix taken off ``path``
        client_format = proxy.clients.get(path) if scope.get("method") == "POST" else None
        if client_format is not None and client_format.name == "anthropic-text":
            version = dict(scope.get("headers", [])).get(b"anthropic-version", b"").strip()
            if version == b"2023-01-01":
                # That version's stream repeats the whole completion in each event, then says
                # ``[DONE]`` (formats.md §4.4); the upstream is asked for ours and translated.
                client_format = FORMAT_2023_01_01
        self.client_format = client_format
        # Anthropic's token count, for an upstream without one (``_count_tokens``).
        self.counts_tokens = (
            path == COUNT_TOKENS_PATH
            and scope.get("method") == "POST"
            and proxy.upstream.family == "openai"
            and "/v1/messages" in proxy.clients
        )
        self.bytes_sent = 0  # of the answers sent whole (``_json``, ``_synthesize``)
        # An Anthropic client's prompt size for its ``message_start``, when the upstream (of
        # another format) says it only at the end.
        self.input_estimate: int | None = None
        # Tools the upstream knows by other names (``TranslatedRequest.tool_names``).
        self.tool_names: Mapping[str, str] | None = None
        self.cut: str | None = None  # why ``end_streams`` ended this exchange
        self.keeps_items = False  # (``run``)

    @contextlib.contextmanager
    def cuttable(self) -> Iterator[None]:
        """A wait for the upstream that ``end_streams`` may end: it cancels this task and sets
        ``cut``, which the handler of that cancellation looks at. Left before the handler runs,
        so nothing cancels the answer it then sends."""
        task = asyncio.current_task()
        assert task is not None
        cuttable = self.proxy._cuttable
        cuttable[task] = self
        try:
            yield
        finally:
            cuttable.pop(task, None)

    async def run(self) -> None:
        proxy = self.proxy
        client_format = self.client_format
        body = await self._read_body()
        if body is None:
            return
        if self.counts_tokens:
            await self._count_tokens(body)
            return
        headers = self._forward_headers(rewritten=client_format is not None)
        dropped: tuple[str, ...] = ()
        stream = False
        include_usage = False
        if client_format is None:
            try:
                path = _raw_path(self.scope, self.path, self.root)
                url = proxy._target(path, self.scope.get("query_string", b""))
            except ValueError as exc:
                logger.warning("rejected request target: %s", exc)
                await self._error(400, "invalid_request_error", str(exc))
                return
            content = body
        else:
            try:
                payload = json.loads(body) if body else {}
            except (ValueError, RecursionError):  # (the stdlib's answer to hostile nesting)
                await self._error(400, "invalid_request_error", "request body is not valid JSON")
                return
            if not isinstance(payload, dict):
                await self._error(
                    400, "invalid_request_error", "request body must be a JSON object"
                )
                return
            try:
                translated = translate_request(
                    payload,
                    client_format.name,
                    proxy.upstream.name,
                    model_map=proxy.model_map,
                    on_unsupported=proxy.on_unsupported,
                    default_max_tokens=proxy.default_max_tokens,
                    stored_items=proxy.stored_items,
                )
            except RequestTranslationError as exc:
                await self._error(400, "invalid_request_error", str(exc), param=exc.param)
                return
            dropped = translated.dropped
            self.tool_names = translated.tool_names or None
            # Items a Responses client may refer to later, where OpenAI never saw them.
            self.keeps_items = (
                client_format.name == "openai-responses"
                and client_format is not proxy.upstream
                and payload.get("store") is not False
            )
            stream = translated.stream
            include_usage = translated.include_usage
            if (
                client_format.name == "anthropic-messages"
                and stream
                and client_format is not proxy.upstream
            ):
                self.input_estimate = estimate_input_tokens(payload)
            path = proxy.upstream_path or proxy.upstream.endpoint
            url = proxy._endpoint_target(path, self.scope.get("query_string", b""))
            content = json.dumps(translated.body).encode()
            headers.append((b"content-type", b"application/json"))
        await self._forward(url, headers, content, client_format, stream, include_usage, dropped)

    async def _count_tokens(self, body: bytes) -> None:
        """Anthropic's ``/v1/messages/count_tokens`` for an OpenAI-family upstream, which has no
        such endpoint: answered here with ``estimate_input_tokens``, the estimate the stream's
        ``message_start`` states. Claude Code calls it often (BerriAI/litellm#13252; dozens at
        a VS Code start, Wei-Shaw/claude-relay-service#731); forwarded, each call would be a
        404 that costs the upstream's rate limit."""
        self.client_format = get_format("anthropic-messages")  # errors in its form
        try:
            payload = json.loads(body) if body else None
        except (ValueError, RecursionError):
            payload = None
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            message = "request body must be a JSON object with a messages list"
            await self._error(400, "invalid_request_error", message)
            return
        await self._json(200, {"input_tokens": estimate_input_tokens(payload)}, [])

    # -- request ----------------------------------------------------------------------------

    async def _read_body(self) -> bytes | None:
        """The whole request body, bounded; ``None`` if the client left or it was too large."""
        chunks: list[bytes] = []
        size = 0
        limit = self.proxy.max_request_body
        declared = _header(self.scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large()
            return None
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large()
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self) -> None:
        await self._error(
            413,
            "request_too_large",
            f"request body larger than {self.proxy.max_request_body} bytes",
        )

    def _forward_headers(self, *, rewritten: bool) -> list[tuple[bytes, bytes]]:
        """The request headers for the upstream: the client's, as the bytes it sent (httpx
        would encode a ``str`` value as ASCII and fail on obs-text), minus what stays behind."""
        proxy = self.proxy
        family = proxy.upstream.family
        raw = [(bytes(k).lower(), bytes(v)) for k, v in self.scope.get("headers", [])]
        named = {t.strip().lower() for k, v in raw if k == b"connection" for t in v.split(b",")}
        drop = HOP_BY_HOP | named | NEVER_FORWARDED
        if rewritten:
            drop |= {b"content-type"}
        if self.client_format is not None and self.client_format is not proxy.upstream:
            # A translated request: the client's API version names its own API (a legacy
            # ``/v1/complete`` client's 2023-01-01), not the upstream's; the upstream gets ours.
            drop |= {b"anthropic-version"}
        keep_credentials = proxy.forward_credentials and proxy.api_key is None
        foreign = VENDOR_HEADER_PREFIXES["openai" if family == "anthropic" else "anthropic"]
        out = [
            (k, v)
            for k, v in raw
            if k not in drop
            and (keep_credentials or k not in CREDENTIAL_HEADERS)
            and not k.startswith(foreign)
        ]
        if proxy.api_key is not None:
            if family == "anthropic":
                out.append((b"x-api-key", proxy.api_key.encode()))
            else:
                out.append((b"authorization", f"Bearer {proxy.api_key}".encode()))
        if family == "anthropic" and not any(k == b"anthropic-version" for k, _ in out):
            out.append((b"anthropic-version", proxy.anthropic_version.encode()))
        return out

    # -- response ---------------------------------------------------------------------------

    async def _forward(
        self,
        url: httpx.URL,
        headers: list[tuple[bytes, bytes]],
        content: bytes,
        client_format: Format | None,
        stream: bool,
        include_usage: bool,
        dropped: tuple[str, ...],
    ) -> None:
        proxy = self.proxy
        method = self.scope.get("method", "GET")
        request = proxy.client.build_request(method, url, headers=headers, content=content)
        task = asyncio.current_task()
        assert task is not None
        _, first_byte, _, _ = proxy.timeouts
        # httpx reads without a timeout of its own: the wait for the response head is held to
        # the first-byte limit here, the body's reads to the idle limit (``_stream``, ``_idle``).
        head = _Idle(first_byte, first_byte, task)
        try:
            with self.cuttable():
                response = await self._send_upstream(request)
        except asyncio.CancelledError:
            if self.cut is not None:
                uncancel(task)
                head.cancel()
                await self._answer_cut()
                return
            if not head.fired:
                raise
            uncancel(task)
            logger.warning("upstream timed out before answering (%gs)", first_byte)
            await self._error(504, "api_error", f"upstream did not answer within {first_byte:g} s")
            return
        except httpx.TimeoutException as exc:
            logger.warning("upstream %s: %s", "timed out before answering", exc.__class__.__name__)
            await self._error(504, "api_error", f"upstream timed out ({exc.__class__.__name__})")
            return
        except httpx.HTTPError as exc:
            logger.warning("upstream unreachable: %s", exc.__class__.__name__)
            await self._error(502, "api_error", f"upstream unreachable ({exc.__class__.__name__})")
            return
        finally:
            head.cancel()
        if response is None:
            return  # the client left while the upstream was thinking: nothing to answer
        try:
            extra = (
                [(b"x-sse-adapter-dropped-fields", ",".join(dropped).encode())] if dropped else []
            )
            sse = _media_type(response) == "text/event-stream"
            # The client gets what it asked for, whatever the upstream chose to answer.
            if client_format is None:
                await self._relay(response)
            elif response.status_code >= 400:
                await self._translate_error(response, client_format)
            elif response.status_code >= 300:
                await self._redirected(response)
            elif (coding := _undecodable(response)) is not None:
                await self._undecodable_answer(client_format, coding)
            elif sse and stream:
                await self._stream(response, client_format, include_usage, extra)
            elif sse:
                await self._aggregate(response, client_format, extra)
            elif stream:
                await self._synthesize(response, client_format, include_usage, extra)
            else:
                await self._translate_json(response, client_format, extra)
        finally:
            await _close_response(response)

    async def _send_upstream(self, request: httpx.Request) -> httpx.Response | None:
        """Send the upstream request; ``None`` if the client left before the upstream answered.

        The upstream may think for minutes before its response head (a reasoning model, any
        non-streamed request): a client leaving meanwhile cancels the request at once, which
        closes the upstream connection (sse-and-asgi.md §3.4 rule 5), instead of letting the
        upstream generate an answer nobody reads.
        """
        task = asyncio.current_task()
        assert task is not None
        watch = _ClientWatch(self.receive, task)
        client = self.proxy.client
        try:
            return await client.send(request, stream=True)
        except asyncio.CancelledError:
            # (The client leaving, the first-byte limit, or the server's shutdown.)
            await _reclaim_pool(client)
            if watch.left:
                uncancel(task)
                logger.info("client disconnected before the upstream answered")
                return None
            raise
        finally:
            watch.stop()

    def _response_headers(self, response: httpx.Response) -> list[tuple[bytes, bytes]]:
        """The allow-listed upstream response headers, as the bytes the upstream sent."""
        out = []
        for k, v in response.headers.raw:
            name = k.lower()
            if name in RESPONSE_HEADER_ALLOW or name.startswith(RESPONSE_HEADER_PREFIXES):
                out.append((name, v))
        return out

    async def _read_whole(self, response: httpx.Response, limit: int) -> bytes | StreamError | None:
        """A whole (bounded) upstream body; if reading it fails, answer 502 (504 on a timeout,
        or when the upstream is silent for the idle timeout) in the client's format and return
        the error answered; ``None`` if the client left."""
        idle = self._idle()
        watch = _ClientWatch(self.receive, idle.task)
        failure: httpx.HTTPError | None = None
        try:
            with self.cuttable():
                return await _read_bounded(response, limit, idle)
        except asyncio.CancelledError:
            cause = _cancelled_by(watch, idle, "while the upstream answered", self.cut)
            if cause is None:
                raise
            if cause == "client":
                return None
        except httpx.HTTPError as exc:
            failure = exc
        finally:
            watch.stop()  # before any answer: after it uvicorn's ``receive`` says disconnect
        return await self._upstream_failed(failure, idle)

    async def _upstream_failed(self, exc: httpx.HTTPError | None, idle: _Idle) -> StreamError:
        """The upstream broke (``exc``) or went silent (``idle`` fired) while its answer was
        read whole: 504 on a timeout or silence, else 502; or ``end_streams`` ended the read.
        Returns the error answered."""
        if self.cut is not None:
            return await self._answer_cut()
        if exc is None:
            logger.warning("upstream idle for %gs while answering", idle.limit)
            return await self._error(
                504, "api_error", f"upstream sent nothing for {idle.limit:g} seconds"
            )
        name = exc.__class__.__name__
        logger.warning("upstream failed while answering: %s", name)
        if isinstance(exc, httpx.TimeoutException):
            return await self._error(504, "api_error", f"upstream timed out ({name})")
        return await self._error(502, "api_error", f"upstream failed ({name})")

    async def _relay(self, response: httpx.Response) -> None:
        """A path the proxy does not translate: status and body as they are (safe headers)."""
        headers = self._response_headers(response)
        ctype = response.headers.get("content-type")
        if ctype:
            headers.append((b"content-type", ctype.encode("latin-1")))
        chunks = response.aiter_bytes()
        if _undecodable(response) is not None:
            # Passed on as the upstream encoded it, with the header that says how: the client
            # may be able to decode what httpx cannot.
            chunks = response.aiter_raw()
            headers += [
                (b"content-encoding", v)
                for k, v in response.headers.raw
                if k.lower() == b"content-encoding"
            ]
        await self.send(
            {"type": "http.response.start", "status": response.status_code, "headers": headers}
        )
        idle = self._idle()
        # The proxy owns ``receive`` once the body is read: the client leaving closes the
        # upstream at once (uvicorn's ``send`` succeeds silently after a disconnect, so only
        # ``receive`` tells), as on the translated endpoints (``_stream``).
        watch = _ClientWatch(self.receive, idle.task)
        try:
            async for chunk in chunks:
                idle.touch()
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (httpx.HTTPError, asyncio.CancelledError) as exc:
            if isinstance(exc, asyncio.CancelledError):
                cause = _cancelled_by(watch, idle, "while relaying")
                if cause is None:
                    raise
                if cause == "client":
                    return
            # Not a clean end: return without the final message, so the server drops the
            # connection and the client sees an incomplete body instead of a complete one.
            logger.warning("upstream failed while relaying: %s", exc.__class__.__name__)
            return
        finally:
            # Before the final message: after it uvicorn's ``receive`` says ``http.disconnect``.
            watch.stop()
            idle.cancel()
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    def _idle(self) -> _Idle:
        """The watchdog of a body read after the response head: the idle timeout."""
        task = asyncio.current_task()
        assert task is not None
        idle = self.proxy.timeouts[2]
        return _Idle(idle, idle, task)

    async def _translate_error(self, response: httpx.Response, client_format: Format) -> None:
        raw = await self._read_whole(response, MAX_ERROR_BODY)
        if not isinstance(raw, bytes):
            return
        try:
            decoded: Any = json.loads(raw)
        except (ValueError, RecursionError):
            decoded = _describe_body(response, raw)
        error = self.proxy.upstream.parse_error_body(response.status_code, decoded)
        logger.warning("upstream answered %d (%s)", response.status_code, error.type)
        status, payload = client_format.error_body(error)
        await self._json(status, payload, self._response_headers(response))

    async def _redirected(self, response: httpx.Response) -> None:
        """A 3xx answer: a 502 that says so. Redirects are not followed (``follow_redirects``
        is off): the request, with the configured key, goes to the configured upstream only."""
        status = response.status_code
        location = response.headers.get("location", "")
        logger.warning("upstream answered %d (redirect to %.200r): not followed", status, location)
        message = (
            f"upstream answered with a redirect (HTTP {status}), which the proxy does not follow"
        )
        await self._error(502, "api_error", message)

    async def _undecodable_answer(self, client_format: Format, coding: str) -> None:
        """A 2xx answer in a ``Content-Encoding`` httpx cannot decode: a 502 that names it
        (read on, its compressed bytes would be reported as a truncated stream or invalid
        JSON), reported like any other answer."""
        logger.warning(
            "upstream answered in Content-Encoding %.40r, which cannot be decoded", coding
        )
        message = (
            f"upstream answered in Content-Encoding {coding[:40]}, which the proxy cannot decode"
        )
        adapter = self._adapter(client_format)
        try:
            adapter.fail(await self._error(502, "api_error", message))
        finally:
            await self._report(adapter, "response")

    async def _whole_json(self, response: httpx.Response, adapter: StreamAdapter) -> Any:
        """The upstream's whole JSON answer, a JSON object; ``_ANSWERED`` if it could not be
        read or is no object (the client has had its error answer then, and ``adapter`` ends
        with it) or the client left."""
        limit = MAX_AGGREGATED_BODY
        raw = await self._read_whole(response, limit)
        if not isinstance(raw, bytes):
            if raw is not None:
                adapter.fail(raw)
            return _ANSWERED
        if len(raw) > limit:
            message = f"upstream answer larger than {limit} bytes"
            adapter.fail(await self._error(502, "api_error", message))
            return _ANSWERED
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            adapter.fail(await self._error(502, "api_error", "upstream answered with invalid JSON"))
            return _ANSWERED
        if not isinstance(payload, dict):
            message = "upstream answered with a non-object JSON body"
            adapter.fail(await self._error(502, "api_error", message))
            return _ANSWERED
        return payload

    def _adapter(self, client_format: Format, **options: Any) -> StreamAdapter:
        """The ``StreamAdapter`` of this exchange's answer, with the proxy's options."""
        proxy = self.proxy
        return StreamAdapter(
            upstream_format=proxy.upstream,
            client_format=client_format,
            tool_names=self.tool_names,
            **{**proxy.adapter_options, **options},
        )

    async def _report(
        self, adapter: StreamAdapter, what: str, response: dict[str, Any] | None = None
    ) -> None:
        """``on_complete`` and the INFO line for an answer sent whole (a stream has its
        session's): the upstream answered, so its usage counts whatever the client got.
        ``response``: the response the client got, where it is not the adapter's."""
        self._keep_items(adapter)
        on_complete = self.proxy.on_complete
        if on_complete is None and not logger.isEnabledFor(logging.INFO):
            return
        result = adapter.result
        elapsed = time.monotonic() - self.started_at
        report = StreamReport(
            upstream_format=adapter.upstream_format.name,
            client_format=adapter.client_format.name,
            outcome=result.outcome or "disconnected",
            response=result.response if response is None else response,
            usage=result.usage,
            error=result.error,
            events=result.events,
            bytes_sent=self.bytes_sent,
            time_to_first_event=elapsed if self.bytes_sent else None,
            duration=elapsed,
        )
        await publish(report, on_complete, what)

    async def _translate_json(
        self, response: httpx.Response, client_format: Format, extra: list[tuple[bytes, bytes]]
    ) -> None:
        """A JSON answer to a JSON request: the client format's response object; with the same
        format on both sides the upstream's own, untouched (a queued background response or an
        error inside a response included), unless it is not this format's response at all or
        an error body, which gets its error's status. Such a body, or an error one to
        translate, is the client format's error."""
        adapter = self._adapter(client_format)
        passed: dict[str, Any] | None = None
        try:
            payload = await self._whole_json(response, adapter)
            if payload is _ANSWERED:
                return
            adapter.feed_response(payload)
            result = adapter.result
            headers = self._response_headers(response)
            error = result.error
            # Passed as it is: the upstream's own response, even one holding an error (a failed
            # choice, a queued background response); not a body of another shape, nor an error
            # body with a 2xx status (the SDK would read a response with no choices or content).
            malformed = error is not None and error.code == MALFORMED_RESPONSE
            failed = (
                error is not None and bool(payload.get("error")) and not adapter.content.choices
            )
            if adapter.identity and not (malformed or failed):
                await self._json(response.status_code, payload, headers + extra)
                passed = payload
            elif error is not None:
                status, body = client_format.error_body(error)
                if adapter.identity and not malformed:
                    body = payload  # (the upstream's own error JSON, every field kept)
                await self._json(status, body, headers)
            else:
                await self._json(200, result.response, headers + extra)
        finally:
            await self._report(adapter, "response", passed)

    async def _aggregate(
        self, response: httpx.Response, client_format: Format, extra: list[tuple[bytes, bytes]]
    ) -> None:
        """An event stream answering a request that did not ask for one: read whole through a
        ``StreamAdapter`` that builds the final response, answered as the client format's JSON
        (a stream that failed or was cut off: the client format's error, 502 unless the
        upstream's error says otherwise)."""
        adapter = self._adapter(client_format, visible_errors=False, collect_response=True)
        try:
            await self._read_stream_whole(response, adapter, extra)
        finally:
            await self._report(adapter, "aggregated stream")

    async def _read_stream_whole(
        self, response: httpx.Response, adapter: StreamAdapter, extra: list[tuple[bytes, bytes]]
    ) -> None:
        """``_aggregate``'s read and answer."""
        client_format = adapter.client_format
        task = asyncio.current_task()
        assert task is not None
        _, first_byte, idle_timeout, _ = self.proxy.timeouts
        # As a stream: the model may think for the first-byte limit before its first event.
        idle = _Idle(first_byte, idle_timeout, task)
        watch = _ClientWatch(self.receive, task)
        failure: httpx.HTTPError | None = None
        limit = MAX_AGGREGATED_BODY
        size = 0
        try:
            with self.cuttable():
                async for chunk in response.aiter_bytes():
                    idle.touch()
                    size += len(chunk)
                    if size > limit:
                        adapter.fail(f"upstream answer larger than {limit} bytes")
                        break
                    adapter.feed(chunk)
                    if adapter.ended:
                        break
            adapter.close()
        except asyncio.CancelledError:
            cause = _cancelled_by(watch, idle, "while the upstream answered", self.cut)
            if cause is None:
                raise
            if cause == "client":
                return
        except httpx.HTTPError as exc:
            failure = exc
        finally:
            watch.stop()  # before any answer: after it uvicorn's ``receive`` says disconnect
            idle.cancel()
        if not adapter.ended:
            adapter.fail(await self._upstream_failed(failure, idle))
            return
        result = adapter.result
        headers = self._response_headers(response)
        if result.outcome != "complete" or result.response is None:
            error = result.error or StreamError("api_error", "upstream stream failed", status=502)
            logger.warning("upstream stream for a non-streaming request failed: %s", error.type)
            status, payload = client_format.error_body(error)
            await self._json(status, payload, headers)
        else:
            await self._json(200, result.response, headers + extra)

    async def _synthesize(
        self,
        response: httpx.Response,
        client_format: Format,
        include_usage: bool,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        """A whole JSON answer to a request that asked for a stream: written as the client
        format's event stream by the adapter, as a streamed answer would be, and sent at once
        (never an empty stream); an error it holds is answered as the client format's error."""
        adapter = self._adapter(client_format, include_usage=include_usage)
        try:
            payload = await self._whole_json(response, adapter)
            if payload is _ANSWERED:
                return
            body = adapter.feed_response(payload)
            error = adapter.result.error
            if error is not None:
                status, error_payload = client_format.error_body(error)
                await self._json(status, error_payload, self._response_headers(response))
                return
            headers = [*_SSE_HEADERS, *self._response_headers(response), *extra]
            await self.send({"type": "http.response.start", "status": 200, "headers": headers})
            await self.send({"type": "http.response.body", "body": body, "more_body": False})
            self.bytes_sent += len(body)
        finally:
            await self._report(adapter, "synthesized stream")

    async def _stream(
        self,
        response: httpx.Response,
        client_format: Format,
        include_usage: bool,
        extra: list[tuple[bytes, bytes]],
    ) -> None:
        proxy = self.proxy
        adapter = self._adapter(
            client_format,
            include_usage=include_usage,
            collect_response=True if proxy.on_complete is not None else None,
            input_tokens_estimate=self.input_estimate,
        )
        session = StreamSession(
            adapter,
            self.send,
            heartbeat_interval=proxy.heartbeat_interval,
            on_complete=proxy.on_complete,
            started_at=self.started_at,
        )
        headers = [*_SSE_HEADERS, *self._response_headers(response), *extra]
        task = asyncio.current_task()
        assert task is not None
        watch = _ClientWatch(self.receive, task, session)
        _, first_byte, idle_timeout, _ = proxy.timeouts
        idle = _Idle(first_byte, idle_timeout, task)
        chunks = response.aiter_bytes()
        drain = False
        pushing = False
        try:
            with self.cuttable():
                # Held until the stream shows content: an error before it is then an HTTP error.
                await session.start(200, headers, hold=True)
                async for chunk in chunks:
                    idle.touch()
                    pushing = True
                    await session.push(chunk)
                    pushing = False
                    if session.finished:
                        # The upstream's own last event ended the client's stream: the rest of
                        # its body (normally just the chunked terminator) is read below, so that
                        # the connection goes back to the pool instead of being closed.
                        drain = not session.disconnected
                        break
            await session.close()
        except asyncio.CancelledError:
            if idle.fired and pushing:
                # Not the upstream but the client went quiet: the send waited the whole idle
                # limit for it to read. Treated as gone (no farewell, which would wait too),
                # so the upstream is closed instead of held open, generating, indefinitely.
                uncancel(task)
                logger.warning("client read nothing for %gs: stream abandoned", idle.limit)
                session.mark_disconnected()
            elif idle.fired:
                uncancel(task)
                logger.warning("upstream idle for %gs: stream ended", idle.limit)
                reason = f"upstream sent nothing for {idle.limit:g} seconds"
                watch.stop()  # (the ending's send is bounded: no other cancellation of ours)
                await session.bounded(session.fail(reason))
            elif session.disconnected:
                uncancel(task)  # our watcher's cancellation: the client left
            elif self.cut is not None:
                uncancel(task)
                logger.warning("stream ended before the upstream's: %s", self.cut)
                idle.cancel()  # (the ending's send is bounded: no other cancellation of ours)
                watch.stop()
                await session.cut(self.cut)
            else:
                raise
        except httpx.HTTPError as exc:
            # Mid-stream failures are expected conditions in a proxy: tell the client, log.
            logger.warning("upstream failed mid-stream: %s", exc.__class__.__name__)
            idle.cancel()  # (the ending's send is bounded: no other cancellation of ours)
            watch.stop()
            await session.bounded(
                session.fail(f"upstream stream failed ({exc.__class__.__name__})")
            )
        except OSError:
            session.mark_disconnected()
        finally:
            idle.cancel()
            watch.stop()
            self._keep_items(adapter)
            await session.report()
        if drain:
            await _drain(chunks)

    def _keep_items(self, adapter: StreamAdapter) -> None:
        """Keep the output items of a complete Responses answer (``UpstreamProxy.stored_items``)."""
        if self.keeps_items and adapter.result.outcome == "complete":
            response = adapter.result.response
            if response is not None:
                self.proxy.stored_items.keep(response.get("output") or ())

    # -- error answers ----------------------------------------------------------------------

    async def _answer_cut(self) -> StreamError:
        """``end_streams`` ended this exchange before its answer began: the client format's
        503, which the SDKs retry (on another server, behind a load balancer)."""
        assert self.cut is not None
        logger.warning("request ended before the upstream answered: %s", self.cut)
        return await self._error(503, "api_error", self.cut)

    async def _error(
        self, status: int, type_: str, message: str, *, param: str | None = None
    ) -> StreamError:
        """An error before the stream, in the client's format (OpenAI JSON on other paths);
        returns the error answered."""
        error = StreamError(type=type_, message=message, status=status, param=param)
        fmt = self.client_format or get_format("openai-chat")
        # (``error_body`` keeps an HTTP error status: 502/504 keep their gateway meaning.)
        mapped_status, payload = fmt.error_body(error)
        await self._json(mapped_status, payload, [])
        return error

    async def _json(
        self, status: int, payload: Any, headers: Iterable[tuple[bytes, bytes]]
    ) -> None:
        body = json.dumps(payload).encode()
        self.bytes_sent += len(body)
        all_headers = [
            *headers,
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        await self.send({"type": "http.response.start", "status": status, "headers": all_headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


class _ItemStore(Mapping[str, Mapping[str, Any]]):
    """Responses output items by id, bounded by their size as JSON: the least recently used
    (written or read) go first. A lookup (``get``) counts as a use."""

    def __init__(self, max_bytes: int) -> None:
        self._items: OrderedDict[str, tuple[Mapping[str, Any], int]] = OrderedDict()
        self._max = max_bytes
        self._size = 0

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        item, _ = self._items[key]
        self._items.move_to_end(key)
        return item

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keep(self, items: Iterable[Any]) -> None:
        """Add ``items`` (those with an id), then drop the oldest beyond the bound."""
        if not self._max:
            return
        for item in items:
            key = item.get("id") if isinstance(item, dict) else None
            if not isinstance(key, str):
                continue
            size = len(json.dumps(item))
            if size > self._max:
                continue
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._items[key] = (item, size)
            self._size += size
        while self._size > self._max:
            _, (_, size) = self._items.popitem(last=False)
            self._size -= size


class _ClientWatch:
    """Cancels ``task`` when the client disconnects, until ``stop()``: once the request body is
    read the proxy owns ``receive`` (sse-and-asgi.md §3.4, proxy mode), and the client leaving
    closes the upstream at once instead of letting it generate an answer nobody reads. ``left``
    tells the cancellation it caused from any other. ``stop()`` before the response's last
    message: after it uvicorn's ``receive`` reports ``http.disconnect`` at once. With a
    ``session`` (a stream), the session is marked disconnected, and a stream already finished
    (its rest being drained) is left alone."""

    __slots__ = ("left", "session", "task", "watcher")

    def __init__(
        self, receive: Receive, task: asyncio.Task[Any], session: StreamSession | None = None
    ) -> None:
        self.left = False
        self.task = task
        self.session = session
        self.watcher = asyncio.get_running_loop().create_task(self._run(receive))

    async def _run(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        session = self.session
        if session is not None:
            if session.finished:
                return
            session.mark_disconnected()
        self.left = True
        self.task.cancel()

    def stop(self) -> None:
        # A watcher cancelled here never cancels the task later (``_run`` resumes at no await).
        self.watcher.cancel()


class _Idle:
    """Read watchdog without a task (one lazily re-armed timer, like the heartbeat): the
    first-byte timeout until the first chunk arrives, then the idle timeout between chunks."""

    def __init__(self, first_byte: float, idle: float, task: asyncio.Task[Any]) -> None:
        self.limit = first_byte
        self.idle = idle
        self.task = task
        self.fired = False
        self.loop = asyncio.get_running_loop()
        self.last = self.loop.time()
        self.handle: asyncio.TimerHandle | None = self.loop.call_at(
            self.last + first_byte, self._check
        )

    def touch(self) -> None:
        self.last = self.loop.time()
        if self.limit != self.idle:
            # First chunk: from now on the (usually shorter) idle limit applies.
            self.limit = self.idle
            self.cancel()
            self.handle = self.loop.call_at(self.last + self.idle, self._check)

    def _check(self) -> None:
        deadline = self.last + self.limit
        if deadline > self.loop.time():
            self.handle = self.loop.call_at(deadline, self._check)
            return
        self.handle = None
        self.fired = True
        self.task.cancel()

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read what is left of an upstream body after the client's stream ended, bounded by
    ``DRAIN_SECONDS`` and ``DRAIN_BYTES``: a body read to its end keeps its pooled connection
    (closing it early costs the next request a new TCP and TLS handshake)."""

    async def read() -> None:
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > DRAIN_BYTES:
                return

    with contextlib.suppress(httpx.HTTPError):
        await within(DRAIN_SECONDS, read())


def _cancelled_by(
    watch: _ClientWatch, idle: _Idle, doing: str, cut: str | None = None
) -> Literal["client", "idle", "cut"] | None:
    """Which of ours cancelled a read that ``watch`` and ``idle`` guarded, its cancellation then
    taken back: the client leaving (logged), the idle timeout, ``end_streams`` (``cut``: its
    reason), or none (``None``: the caller re-raises, the cancellation is someone else's)."""
    if watch.left:
        uncancel(idle.task)
        logger.info("client disconnected %s", doing)
        return "client"
    if idle.fired:
        uncancel(idle.task)
        return "idle"
    if cut is not None:
        uncancel(idle.task)
        return "cut"
    return None


async def _reclaim_pool(client: httpx.AsyncClient) -> None:
    """Close the connections httpcore's pool keeps but will never use again after a request
    waiting for one was cancelled (encode/httpcore#1093, open in httpcore 1.0.9; fixed in the
    httpx2 fork): one created for the request and left unconnected, or connected and left
    ``NEW``, no longer any request's. Each holds a ``max_connections`` slot (and maybe an
    upstream socket) for good: clients that leave early would otherwise exhaust the pool, every
    later request failing with ``PoolTimeout``. Reads httpcore's internals; does nothing where
    they are not what it knows (another transport, another version)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    connections = getattr(pool, "_connections", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(connections, list) or not isinstance(requests, list):
        return
    claimed = {id(getattr(request, "connection", None)) for request in requests}
    orphans = [c for c in connections if id(c) not in claimed and _never_used(c)]
    if not orphans:
        return
    for connection in orphans:
        connections.remove(connection)
    logger.debug("%d unused upstream connections reclaimed from the pool", len(orphans))
    await _close_and_reassign(pool, orphans)


async def _close_response(response: httpx.Response) -> None:
    """``response.aclose()``, then what a cancellation may have cut short in an earlier one.

    httpcore's ``PoolByteStream.aclose`` marks itself closed, then closes the connection's
    stream under a shield that holds off anyio's cancellations but not a plain
    ``Task.cancel()`` (our client watch's), and only then gives its pool request back. A client
    leaving just as the body ended (httpx closes the stream at its end) cut it there: the
    request, its connection and an upstream socket were held for good, and further closes do
    nothing (7 of 600 early leavers in a soak). The request is then released here and its
    connection, in whatever state the cut left it, closed. Reads httpcore's internals; does
    nothing where they are not what it knows."""
    try:
        await response.aclose()
    finally:
        await _release_held(response)


async def _release_held(response: httpx.Response) -> None:
    """``_close_response``'s release (also when the close itself is cut)."""
    bound = getattr(response.stream, "_stream", None)
    stream = getattr(bound, "_httpcore_stream", None)
    pool = getattr(stream, "_pool", None)
    request = getattr(stream, "_pool_request", None)
    requests = getattr(pool, "_requests", None)
    if not isinstance(requests, list) or not any(r is request for r in requests):
        return
    logger.debug("an upstream connection left held by a cut close released")
    requests.remove(request)
    connection = getattr(request, "connection", None)
    await _close_and_reassign(pool, [connection] if connection is not None else [])


async def _close_and_reassign(pool: Any, connections: list[Any]) -> None:
    """Close ``connections`` (no request's any more), then hand the freed slots to requests
    queued for one, as httpcore does when a connection closes (closed first: a half-closed
    one must not be handed on; the pool drops closed connections as it assigns)."""
    for connection in connections:
        with contextlib.suppress(Exception):
            await connection.aclose()
    assign = getattr(pool, "_assign_requests_to_connections", None)
    for closing in list(assign()) if callable(assign) else []:
        with contextlib.suppress(Exception):
            await closing.aclose()


def _never_used(connection: Any) -> bool:
    """An httpcore ``AsyncHTTPConnection`` that never carried a request: not connected (and
    not failed), or connected over HTTP/1.1 and still ``NEW``."""
    if not hasattr(connection, "_connect_failed"):
        return False
    inner = getattr(connection, "_connection", False)
    if inner is None:
        return connection._connect_failed is False
    state = getattr(inner, "_state", None)
    return getattr(state, "name", None) == "NEW" and getattr(inner, "_request_count", 1) == 0


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if bytes(k).lower() == name:
            return bytes(v).decode("latin-1")
    return None


async def _read_bounded(response: httpx.Response, limit: int, idle: _Idle) -> bytes:
    """The body, or its first chunks up to the one that passes ``limit`` (so that a body over
    the limit is longer than it: at most a chunk more is held)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in response.aiter_bytes():
            idle.touch()
            size += len(chunk)
            chunks.append(chunk)
            if size > limit:
                break
    finally:
        idle.cancel()
    return b"".join(chunks)


# What a raw path keeps as it is: every visible ASCII character but the two that would end the
# path (``%`` included: the client's escapes stay escapes).
_RAW_PATH_KEPT = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "?#")
# What a decoded path keeps when it is escaped again: RFC 3986 ``pchar`` and ``/``.
_PATH_KEPT = "/:@!$&'()*+,;="


def _raw_path(scope: Scope, path: str, root: str) -> str:
    """``path`` (decoded, ``root`` taken off) as the client wrote it, from ``raw_path``: an
    escaped ``?``, ``#`` or ``/`` stays escaped (bytes beyond ASCII are escaped). Where the
    server gives no ``raw_path``, or one that does not decode to this path (a dispatcher that
    rewrote only ``path``), ``path`` escaped again."""
    raw = scope.get("raw_path")
    if isinstance(raw, bytes):
        text = urllib.parse.quote(raw, safe=_RAW_PATH_KEPT)
        if root:
            # The root path's share of the raw path: as many segments as it has.
            depth = root.count("/")
            parts = text.split("/", depth + 1)
            text = "/" + parts[-1] if len(parts) == depth + 2 else ""
        if urllib.parse.unquote(text) == path:
            return text
    return urllib.parse.quote(path, safe=_PATH_KEPT)


def _query_name(param: str) -> str:
    """The decoded name of one ``name=value`` query parameter."""
    return urllib.parse.unquote_plus(param.partition("=")[0])


def _query_names(query: str) -> list[str]:
    return [_query_name(p) for p in query.split("&") if p]


def _media_type(response: httpx.Response) -> str:
    ctype: str = response.headers.get("content-type", "")
    return ctype.split(";")[0].strip().lower()


def _describe_body(response: httpx.Response, raw: bytes) -> str:
    """A non-JSON upstream error body as the text its error message may hold: a short
    plain-text body as it is (the format's ``parse_error_body`` still refuses markup), any other
    (an HTML page from a load balancer, a body still encoded…) only by its type and size, never
    its content."""
    media = _media_type(response)
    coding = _undecodable(response)
    if coding is None and media in ("", "text/plain") and len(raw) <= MAX_QUOTED:
        return raw.decode("utf-8", "replace")
    kind = media or "untyped"
    if coding is not None:
        kind += f" in Content-Encoding {coding[:40]}"
    return f"upstream returned HTTP {response.status_code} ({kind} body, {len(raw)} bytes)"


def _undecodable(response: httpx.Response) -> str | None:
    """The response's ``Content-Encoding`` if httpx cannot decode it (``br`` without brotli
    installed, ``zstd`` without zstandard, anything unknown): httpx then hands the body on
    still encoded."""
    value: str = response.headers.get("content-encoding", "")
    codings = (c.strip().lower() for c in value.split(","))
    if any(c and c not in SUPPORTED_DECODERS for c in codings):
        return value.strip()
    return None
