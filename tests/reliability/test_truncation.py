"""Truncation without error: the upstream closes cleanly, but before the event that says how
the stream ends. At every event boundary of every scenario and pair, that is reported as a
truncation (``result.outcome`` / ``StreamReport.outcome == "truncated"``) and the client gets the
error tail, never a normal end; from the finishing event on (finish reason, ``stop_reason``,
``response.completed``) a clean close is a complete stream and the missing terminator is added.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_sse_adapter import SSEAdapterMiddleware, StreamAdapter, UpstreamProxy
from asgi_sse_adapter.formats import FORMATS
from asgi_sse_adapter.session import StreamReport
from example_app.fake_upstream import FakeUpstream
from tests.reliability._support import (
    PAIR_IDS,
    PAIRS,
    SCENARIOS,
    CutApp,
    DeterministicAdapters,
    Source,
    check_error_tail,
    check_responses_lifecycle,
    client_request,
    decode,
    drive,
    endpoint,
    http_client,
    http_scope,
    is_error_event,
    reference_adapter,
    source,
    wait_until,
)
from tests.servers import ServerFactory

TRUNCATED = "upstream stream ended before it finished (truncated)"


def check_complete_end(client: str, body: bytes) -> None:
    """A complete client stream: no error event, and it ends the way its format ends."""
    events = decode(body)
    assert events
    assert not [e for e in events if is_error_event(e)], body[-300:]
    last = events[-1]
    if client in ("openai-chat", "openai-text"):
        assert last.data == "[DONE]"
    elif client == "openai-responses":
        assert last.event in ("response.completed", "response.incomplete")
        check_responses_lifecycle(body)
    elif client == "anthropic-messages":
        assert last.event == "message_stop"
    else:
        assert last.event == "completion"
        assert json.loads(last.data)["stop_reason"]


def check_truncation(src: Source, client: str, boundary: int, body: bytes, head: bytes) -> str:
    """Assert the client body of a clean close at ``boundary``; return the expected outcome."""
    assert body[: len(head)] == head
    if boundary >= src.finished_at:
        check_complete_end(client, body)
        return "complete"
    check_error_tail(client, body[len(head) :], TRUNCATED, opening=not head)
    if client == "openai-responses":
        check_responses_lifecycle(body)
    return "truncated"


@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
def test_adapter_truncation_at_every_boundary(upstream: str, client: str) -> None:
    """Sans-IO: ``StreamAdapter`` fed the events up to any boundary, then ``close()``:
    ``result.outcome`` is ``truncated`` with the error tail before the finishing event,
    ``complete`` with the format's proper ending from it on."""
    options: dict[str, Any] = {"upstream_format": upstream, "client_format": client}
    for scenario in SCENARIOS:
        src = source(upstream, scenario)
        for boundary in (0, *src.ends):
            adapter = reference_adapter(options)
            head = adapter.feed(src.raw[:boundary])
            body = head + adapter.close()
            if src.terminated_at is not None and boundary >= src.terminated_at:
                assert adapter.ended
            outcome = check_truncation(src, client, boundary, body, head)
            assert adapter.result.outcome == outcome, (scenario, boundary)
            if outcome == "truncated":
                assert adapter.result.error is not None
                assert adapter.result.error.code == "stream_truncated"


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize(("upstream", "client"), PAIRS, ids=PAIR_IDS)
async def test_middleware_truncation_at_every_boundary(
    upstream: str, client: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app ends its body cleanly (a final empty message, or returning without one) after
    any event boundary: ``StreamReport.outcome`` is ``truncated`` and the error tail follows the
    complete events until the finishing event went through, ``complete`` after it."""
    adapters = DeterministicAdapters(monkeypatch)
    reports: list[StreamReport] = []

    async def record(report: StreamReport) -> None:
        reports.append(report)

    for scenario in SCENARIOS:
        src = source(upstream, scenario)
        for n, boundary in enumerate((0, *src.ends)):
            app = CutApp(src.raw[:boundary], pieces=3, ending="end" if n % 2 else "return")
            mw = SSEAdapterMiddleware(
                app,
                upstream_format=upstream,
                client_format=client,
                heartbeat_interval=None,
                include_usage=True,
                on_complete=record,
            )
            exchange = await drive(mw, http_scope(endpoint(client)))
            exchange.assert_well_formed()
            head = reference_adapter(adapters.last()).feed(src.raw[:boundary])
            outcome = check_truncation(src, client, boundary, exchange.body, head)
            (report,) = reports
            reports.clear()
            assert report.outcome == outcome, (scenario, boundary)
            if outcome == "truncated":
                assert report.error is not None
                assert report.error.message == TRUNCATED


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("upstream", FORMATS)
def test_proxy_truncation_over_uvicorn(
    upstream: str, servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fake LLM ends its body cleanly after N events (``truncate_after``), for every N and
    every client format, over real sockets: the report says ``truncated`` and the client gets
    the error tail, until the finishing event went through."""
    adapters = DeterministicAdapters(monkeypatch)
    reports: list[StreamReport] = []

    async def record(report: StreamReport) -> None:
        reports.append(report)

    fake = FakeUpstream()
    url = servers(fake).url
    proxy = servers(
        UpstreamProxy(url, upstream_format=upstream, heartbeat_interval=None, on_complete=record)
    )
    src = source(upstream, "tools")
    with http_client(timeout=10) as http:
        for client in FORMATS:
            for n, boundary in enumerate((0, *src.ends)):
                response = http.post(
                    proxy.url + endpoint(client),
                    json=client_request(client),
                    headers={"x-fake-truncate-after": str(n), "x-fake-scenario": "tools"},
                )
                assert response.status_code == 200
                head = reference_adapter(adapters.last()).feed(src.raw[:boundary])
                outcome = check_truncation(src, client, boundary, response.content, head)
                # The report follows the last body message: the client may be faster.
                assert wait_until(lambda: bool(reports))
                (report,) = reports
                reports.clear()
                assert report.outcome == outcome, (client, n)
    # The fake counts a stream complete just after its last body message: allow it a moment.
    expected = 5 * (len(src.events) + 1)
    assert fake.wait_for(lambda f: f.streams_completed == expected), fake.streams_completed


def test_truncation_oracle_is_independent() -> None:
    """The finishing offsets the tests rely on are read from the events, not the adapter: for
    every scenario the finishing event comes before (or is) the terminal event, and a plain
    ``StreamAdapter`` agrees with the oracle on both sides of it."""
    for fmt in FORMATS:
        for scenario in SCENARIOS:
            src = source(fmt, scenario)
            assert 0 < src.finished_at <= len(src.raw)
            index = src.ends.index(src.finished_at)
            for boundary, expected in (
                (src.ends[index - 1], "truncated"),
                (src.finished_at, "complete"),
            ):
                adapter = StreamAdapter(upstream_format=fmt, client_format="openai-chat")
                adapter.feed(src.raw[:boundary])
                adapter.close()
                assert adapter.result.outcome == expected, (fmt, scenario, boundary)
