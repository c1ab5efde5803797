"""Fault at every offset: the upstream (an app in middleware mode, the upstream server in proxy
mode) fails after any number of bytes of any scenario stream, for every format pair.

The client must receive every event that was complete before the cut, translated, exactly once
(byte for byte what a fresh ``StreamAdapter`` makes of those complete events alone); then exactly
one error tail in its own format carrying our message; then the end of the response; nothing
after it; never a hang. A stream whose terminal event went through before the fault stays
complete, with no error tail.

The exhaustive sweeps drive the ASGI callables in-process (the middleware around an app that
sends ``bytes[:k]`` then raises; the proxy over an ``httpx.MockTransport`` whose body reads
``bytes[:k]`` then raise ``httpx.ReadError``). Real uvicorn servers then cover every event
boundary and every mid-event cut with the fake LLM's ``fail_after`` / ``cut_mid_event``, and the
official SDKs check the error they raise on a sample.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from asgi_sse_adapter import SSEAdapterMiddleware, UpstreamProxy
from asgi_sse_adapter.formats import FORMATS
from asgi_sse_adapter.session import StreamReport
from example_app.fake_upstream import FakeUpstream
from tests.reliability._support import (
    PAIR_IDS,
    PAIRS,
    SCENARIOS,
    CutApp,
    CutStream,
    DeterministicAdapters,
    Source,
    check_error_tail,
    check_responses_lifecycle,
    client_request,
    cut_points,
    drive,
    endpoint,
    http_client,
    http_scope,
    mock_upstream,
    reference_adapter,
    source,
)
from tests.servers import ServerFactory

MIDDLEWARE_MESSAGE = "the application failed mid-stream (RuntimeError)"
PROXY_MESSAGE = "upstream stream failed (ReadError)"
# What httpx raises when uvicorn drops the connection in the middle of a chunked body.
ABORT_MESSAGE = "upstream stream failed (RemoteProtocolError)"


@dataclass
class FaultOracle:
    """What the client of one stream must receive when the upstream fails at ``cut``.

    The expected head (the complete events before the cut, translated) comes from a reference
    adapter with the very options the middleware or proxy used, fed only those events; it is
    cached per event boundary.
    """

    src: Source
    client: str
    message: str
    heads: dict[int, tuple[bytes, bool]] = field(default_factory=dict)
    checked: int = 0

    def head(self, options: dict[str, Any], boundary: int) -> tuple[bytes, bool]:
        """The reference client bytes for ``raw[:boundary]`` and whether that ended the stream."""
        if boundary not in self.heads:
            adapter = reference_adapter(options)
            self.heads[boundary] = (adapter.feed(self.src.raw[:boundary]), adapter.ended)
        return self.heads[boundary]

    def check(self, cut: int, body: bytes, options: dict[str, Any]) -> str:
        """Assert the client body for a fault at ``cut``; return the expected outcome."""
        src = self.src
        identity = src.fmt == self.client
        boundary = src.complete_prefix(cut)
        head, ended = self.head(options, boundary)
        terminated = src.terminated_at is not None and boundary >= src.terminated_at
        where = f"{src.fmt}->{self.client} {src.scenario} cut {cut}/{len(src.raw)}"
        if identity:
            # Passthrough: exactly the upstream's complete events, untouched.
            assert head == src.raw[:boundary], where
        else:
            # The reference ends the stream exactly when the upstream's terminal event is in.
            assert ended is terminated, where
        assert body[: len(head)] == head, where
        rest = body[len(head) :]
        self.checked += 1
        if self.client == "openai-responses":
            check_responses_lifecycle(body)
        if terminated:
            assert rest == b"", where
            return "complete"
        try:
            check_error_tail(self.client, rest, self.message, opening=not head)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}\n{rest!r}") from exc
        return "failed"


# -- middleware, in-process ------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_middleware_app_failure_at_every_offset(
    upstream: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app streams ``bytes[:k]`` (in two messages) and raises, for every ``k`` of every
    scenario (sampled above 2.5 kB: all boundaries, inside every multi-byte character, 600
    more): complete events exactly once, one error tail, one final message, outcome
    ``failed`` (``complete`` once the terminal event went through)."""
    adapters = DeterministicAdapters(monkeypatch)
    for scenario in SCENARIOS:
        src = source(upstream, scenario)
        oracle = FaultOracle(src, client, MIDDLEWARE_MESSAGE)
        app = CutApp(b"")
        reports: list[StreamReport] = []

        async def record(report: StreamReport, reports: list[StreamReport] = reports) -> None:
            reports.append(report)  # async: a sync hook would cost a thread hop per case

        mw = SSEAdapterMiddleware(
            app,
            upstream_format=upstream,
            client_format=client,
            heartbeat_interval=None,
            include_usage=True,
            on_complete=record,
        )
        for cut in cut_points(src):
            app.data = src.raw[:cut]
            exchange = await drive(mw, http_scope(endpoint(client)))
            exchange.assert_well_formed()
            outcome = oracle.check(cut, exchange.body, adapters.last())
            assert reports.pop().outcome == outcome
            assert not reports
        assert oracle.checked >= min(len(src.raw), 600)


# -- proxy, in-process -----------------------------------------------------------------------


class ScriptedUpstream:
    """``httpx.MockTransport`` responder: a 200 event stream of ``data``, failing or not."""

    def __init__(self) -> None:
        self.data = b""
        self.fail = True
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request``."""
        self.requests.append(request)
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=CutStream(self.data, fail=self.fail),
        )


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_proxy_upstream_failure_at_every_offset(
    upstream: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream body breaks (``httpx.ReadError``) after ``bytes[:k]``: every event
    boundary, its neighbours, inside every multi-byte character and 150 more offsets per
    scenario, through the proxy's request translation and httpx streaming: the same
    guarantees as in middleware mode."""
    adapters = DeterministicAdapters(monkeypatch)
    responder = ScriptedUpstream()
    http = mock_upstream(responder)
    proxy = UpstreamProxy(
        "http://upstream.invalid", upstream_format=upstream, client=http, heartbeat_interval=None
    )
    body = json.dumps(client_request(client)).encode()
    try:
        for scenario in SCENARIOS:
            src = source(upstream, scenario)
            oracle = FaultOracle(src, client, PROXY_MESSAGE)
            for cut in cut_points(src, limit=0, sample=150, seed=1):
                responder.data = src.raw[:cut]
                exchange = await drive(proxy, http_scope(endpoint(client)), body)
                assert exchange.status == 200
                exchange.assert_well_formed()
                oracle.check(cut, exchange.body, adapters.last())
    finally:
        await http.aclose()
    assert {r.url.path for r in responder.requests} == {endpoint(upstream)}


# -- proxy over uvicorn ----------------------------------------------------------------------


def _stream_body(http: Any, url: str, client: str, headers: dict[str, str]) -> tuple[int, bytes]:
    with http.stream(
        "POST", url + endpoint(client), json=client_request(client), headers=headers
    ) as response:
        return response.status_code, response.read()


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("upstream", FORMATS)
def test_proxy_over_uvicorn_upstream_abort_at_every_event(
    upstream: str, servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake LLM drops its connection after every event (``fail_after``) and in the middle
    of every event (``cut_mid_event``), for each client format: over real sockets the client
    gets the complete events exactly once, then one error tail naming the broken upstream
    body, then the end of the response."""
    adapters = DeterministicAdapters(monkeypatch)
    fake = FakeUpstream()
    upstream_server = servers(fake)
    proxy = servers(
        UpstreamProxy(upstream_server.url, upstream_format=upstream, heartbeat_interval=None)
    )
    src = source(upstream, "text")
    starts = (0, *src.ends)
    cases = [("fail-after", n, starts[n]) for n in range(len(src.events) + 1)]
    cases += [
        ("cut-mid-event", n, starts[n] + len(src.events[n]) // 2) for n in range(len(src.events))
    ]
    with http_client(timeout=10) as http:
        for client in FORMATS:
            oracle = FaultOracle(src, client, ABORT_MESSAGE)
            for knob, n, cut in cases:
                status, body = _stream_body(http, proxy.url, client, {f"x-fake-{knob}": str(n)})
                assert status == 200
                oracle.check(cut, body, adapters.last())
    assert fake.aborts == 5 * (2 * len(src.events) + 1)


# -- the official SDKs -------------------------------------------------------------------------


def _sdk_stream(client: str, url: str, headers: dict[str, str]) -> None:
    """Consume one streamed answer with the official SDK of ``client``'s format (its client is
    closed at once: pooled sockets must not outlive the call)."""
    if client.startswith("openai"):
        oai = openai.OpenAI(
            api_key="k", base_url=url + "/v1", max_retries=0, default_headers=headers
        )
        with oai:
            _openai_stream(oai, client)
    else:
        ant = anthropic.Anthropic(api_key="k", base_url=url, max_retries=0, default_headers=headers)
        with ant:
            _anthropic_stream(ant, client)


def _openai_stream(oai: openai.OpenAI, client: str) -> None:
    """Stream one answer from the OpenAI endpoint of ``client``'s format."""
    if client == "openai-chat":
        for _ in oai.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    elif client == "openai-text":
        for _ in oai.completions.create(model="m", prompt="hi", stream=True):
            pass
    else:
        for _ in oai.responses.create(model="m", input="hi", stream=True):
            pass


def _anthropic_stream(ant: anthropic.Anthropic, client: str) -> None:
    """Stream one answer from the Anthropic endpoint of ``client``'s format."""
    if client == "anthropic-messages":
        for _ in ant.messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass
    else:
        # anthropic-python no longer wraps Text Completions: the same SSE ``Stream`` class,
        # through the client's generic POST.
        stream = ant.post(
            "/v1/complete",
            cast_to=object,
            body=client_request("anthropic-text"),
            stream=True,
            stream_cls=anthropic.Stream[object],
        )
        for _ in stream:
            pass


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("client", FORMATS)
def test_sdk_raises_api_error_with_our_message(client: str, servers: ServerFactory) -> None:
    """For every upstream format and three cut points (before the first event, mid-event,
    after an event boundary), the official SDK of the client's format raises its API error
    (openai ``APIError``, anthropic ``APIStatusError``) carrying our message."""
    fake = FakeUpstream()
    upstream_url = servers(fake).url
    for upstream in FORMATS:
        proxy = servers(
            UpstreamProxy(upstream_url, upstream_format=upstream, heartbeat_interval=None)
        )
        for knob, n in (("fail-after", 0), ("cut-mid-event", 3), ("fail-after", 5)):
            headers = {f"x-fake-{knob}": str(n)}
            if client.startswith("openai"):
                with pytest.raises(openai.APIError) as caught:
                    _sdk_stream(client, proxy.url, headers)
                assert caught.value.message == ABORT_MESSAGE
            else:
                with pytest.raises(anthropic.APIStatusError) as raised:
                    _sdk_stream(client, proxy.url, headers)
                body: Any = raised.value.body
                assert body["error"]["message"] == ABORT_MESSAGE
                assert ABORT_MESSAGE in raised.value.message


def test_every_pair_and_scenario_is_swept() -> None:
    """The sweeps above cover all 25 directed pairs and every scenario, and the oracle is not
    vacuous: each scenario stream has several events and a terminal event where the format has
    one."""
    assert len(PAIRS) == 25
    for fmt in FORMATS:
        for scenario in SCENARIOS:
            src = source(fmt, scenario)
            assert len(src.events) >= 4
            assert src.ends[-1] == len(src.raw)
            if fmt != "anthropic-text":
                assert src.terminated_at == len(src.raw)


# -- non-streamed answers and passthrough paths ----------------------------------------------


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("status", [200, 500])
async def test_proxy_broken_non_streamed_body_is_a_502(status: int) -> None:
    """A non-streamed answer (a JSON completion, or an error body) that breaks while the proxy
    reads it: every client gets a 502 in its own format naming the failure, not an exception
    (which the server would turn into a bare 500)."""
    broken = b'{"id": "chatcmpl-1", "object": "chat.comp'

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status, headers={"content-type": "application/json"}, stream=CutStream(broken)
        )

    http = mock_upstream(respond)
    proxy = UpstreamProxy("http://upstream.invalid", upstream_format="openai-chat", client=http)
    try:
        for client in FORMATS:
            body = json.dumps(client_request(client, stream=False)).encode()
            exchange = await drive(proxy, http_scope(endpoint(client)), body)
            assert exchange.status == 502
            payload = json.loads(exchange.body)
            assert payload["error"]["message"] == "upstream failed (ReadError)"
    finally:
        await http.aclose()


@pytest.mark.usefixtures("quiet")
def test_proxy_relay_failure_is_not_a_clean_end(servers: ServerFactory) -> None:
    """A passthrough path (not one of the proxy's client endpoints) whose upstream body breaks:
    the client sees an incomplete body, never a complete-looking response."""
    fake = FakeUpstream()
    upstream = servers(fake)
    proxy = servers(
        UpstreamProxy(upstream.url, upstream_format="openai-chat", client_format="openai-chat")
    )
    with http_client(timeout=5) as http:
        complete = http.post(proxy.url + "/v1/messages", json=client_request("anthropic-messages"))
        assert complete.status_code == 200
        assert complete.content == source("anthropic-messages", "text").raw
        with pytest.raises(httpx2.RemoteProtocolError):
            http.post(
                proxy.url + "/v1/messages",
                json=client_request("anthropic-messages"),
                headers={"x-fake-fail-after": "3"},
            )
