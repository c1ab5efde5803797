"""Client disconnects in proxy mode: the upstream connection closes at once, and 1 000 of them
leave no task, socket, pool connection or memory behind.

The fake LLM's ``stall`` knob sends N events and then waits, silent, until its client leaves:
the test client reads exactly what the proxy makes of those N events, closes its connection,
and the fake records when it saw its own connection close.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections import Counter
from typing import Any

import httpx2
import pytest

from asgi_sse_adapter import StreamAdapter, UpstreamProxy
from asgi_sse_adapter.formats import FORMATS
from asgi_sse_adapter.session import StreamReport
from example_app.fake_upstream import FakeUpstream
from tests.reliability._support import (
    PAIRS,
    DeterministicAdapters,
    client_request,
    endpoint,
    http_client,
    reference_adapter,
    rss_bytes,
    settle,
    socket_fds,
    source,
    wait_until,
)
from tests.servers import LiveServer, ServerFactory

#: The upstream must see its connection closed this soon after the client closed its own.
CLOSE_WITHIN = 0.1
HELD_WAIT = 0.05  # seconds a client waits for a held head before it leaves
DISCONNECTS = 1000
WARMUP = 150
KEEPALIVE = 4


def pool_state(server: LiveServer, proxy: UpstreamProxy) -> tuple[int, int, int]:
    """(pooled connections, of which not idle, requests waiting) of the proxy's httpx pool,
    read on the server's own loop."""

    async def probe() -> tuple[int, int, int]:
        pool: Any = proxy.client._transport._pool  # type: ignore[attr-defined]
        connections = list(pool.connections)
        busy = sum(1 for c in connections if not c.is_idle())
        return len(connections), busy, len(pool._requests)

    return server.call(probe)


@pytest.mark.usefixtures("quiet")
def test_client_disconnect_at_every_boundary_closes_upstream_and_leaks_nothing(
    servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """For every format pair and every event boundary of the text scenario, cycled to 1 000
    disconnects after a warm-up: the client reads exactly the translation of the events sent so
    far, closes (or, where the proxy holds the head because no content came yet, leaves while
    it waits for it); the fake upstream sees its connection closed within 100 ms every time; every
    report says ``disconnected``. Afterwards the servers run as many tasks as before, the
    process holds as many sockets, no pooled upstream connection is in use or waited for, and
    the live-object count and RSS are back on their plateau."""
    adapters = DeterministicAdapters(monkeypatch)
    outcomes: Counter[str] = Counter()

    async def record(report: StreamReport) -> None:
        outcomes[report.outcome] += 1

    fake = FakeUpstream(log_size=8)
    upstream = servers(fake)
    proxies = {
        fmt: UpstreamProxy(
            upstream.url,
            upstream_format=fmt,
            heartbeat_interval=5.0,
            on_complete=record,
            max_keepalive_connections=KEEPALIVE,
        )
        for fmt in FORMATS
    }
    live = {fmt: servers(proxy) for fmt, proxy in proxies.items()}
    cases = [(u, c, n) for u, c in PAIRS for n in range(len(source(u, "text").events))]
    heads: dict[tuple[str, str, int], bytes] = {}
    latencies: list[float] = []

    def disconnect(http: Any, case: tuple[str, str, int]) -> None:
        upstream_format, client, n = case
        seen = len(fake.disconnects)
        if held(upstream_format, client, n):
            # No content yet: the proxy holds the head (an error now would be an HTTP status),
            # so the client leaves while it waits for it.
            with pytest.raises(httpx2.ReadTimeout):
                http.post(
                    live[upstream_format].url + endpoint(client),
                    json=client_request(client),
                    headers={"x-fake-stall": str(n)},
                    timeout=HELD_WAIT,
                )
            closing = time.monotonic()
        else:
            closing = read_head_and_leave(http, case)
        assert fake.wait_for(lambda f: len(f.disconnects) > seen, timeout=2.0), case
        gone = fake.disconnects[-1]
        assert gone.events_sent == n
        latencies.append(gone.at - closing)
        if len(fake.disconnects) > 50:
            fake.reset()

    def read_head_and_leave(http: Any, case: tuple[str, str, int]) -> float:
        """Read the translation of the events sent so far, then close; when it closed."""
        upstream_format, client, n = case
        with http.stream(
            "POST",
            live[upstream_format].url + endpoint(client),
            json=client_request(client),
            headers={"x-fake-stall": str(n)},
        ) as response:
            assert response.status_code == 200
            if case not in heads:
                src = source(upstream_format, "text")
                adapter = reference_adapter(adapters.last())
                heads[case] = adapter.feed(src.raw[: src.ends[n - 1] if n else 0])
            head = heads[case]
            received = b""
            if head:
                for chunk in response.iter_raw():
                    received += chunk
                    if len(received) >= len(head):
                        break
            assert received == head, case
            return time.monotonic()

    def quiescent() -> bool:
        return fake.streams_in_progress == 0 and sum(outcomes.values()) == count

    count = 0
    with http_client(timeout=5) as http:
        for case in cases[:WARMUP]:
            disconnect(http, case)
            count += 1
        assert wait_until(quiescent)
        settle()
        tasks = sum(server.task_count() for server in (upstream, *live.values()))
        sockets = socket_fds()
        objects = len(gc.get_objects())
        rss = rss_bytes()
        for i in range(DISCONNECTS):
            disconnect(http, cases[(WARMUP + i) % len(cases)])
            count += 1
        assert wait_until(quiescent)
    assert outcomes == {"disconnected": WARMUP + DISCONNECTS}
    assert max(latencies) < CLOSE_WITHIN, sorted(latencies)[-5:]
    # Nothing left behind (connections finish closing asynchronously: allow them a moment).
    assert wait_until(lambda: socket_fds() <= sockets, timeout=2.0), (socket_fds(), sockets)
    assert wait_until(
        lambda: sum(server.task_count() for server in (upstream, *live.values())) <= tasks,
        timeout=2.0,
    )
    for fmt, proxy in proxies.items():
        pooled, busy, waiting = pool_state(live[fmt], proxy)
        assert busy == 0
        assert waiting == 0
        assert pooled <= KEEPALIVE
    settle()
    grown = len(gc.get_objects()) - objects
    assert grown < DISCONNECTS, grown  # less than one object per disconnect
    assert rss_bytes() - rss < 8 * 1024 * 1024, (rss_bytes() - rss) / 1e6
    print(
        f"\n{DISCONNECTS} disconnects: upstream closed after p50 "
        f"{sorted(latencies)[len(latencies) // 2] * 1000:.2f} ms, max {max(latencies) * 1000:.2f}"
        f" ms; objects {grown:+d}, RSS {(rss_bytes() - rss) / 1e6:+.2f} MB"
    )


@pytest.mark.usefixtures("quiet")
@pytest.mark.parametrize("stream", [True, False], ids=["streaming", "non-streaming"])
def test_disconnect_while_upstream_thinks_closes_upstream(
    stream: bool, servers: ServerFactory
) -> None:
    """The client leaves while the upstream has not even sent its response head (a reasoning
    model thinking, any non-streamed request): the upstream connection closes within 100 ms,
    not when the upstream finally answers."""
    fake = FakeUpstream()
    upstream = servers(fake)
    proxy = servers(UpstreamProxy(upstream.url, upstream_format="anthropic-messages"))
    for client in FORMATS:
        seen = len(fake.disconnects)
        body = client_request(client, stream=stream)
        with http_client(timeout=0.3) as http:
            started = time.monotonic()
            with pytest.raises(Exception, match="timed out"):
                http.post(
                    proxy.url + endpoint(client), json=body, headers={"x-fake-header-delay": "3"}
                )
            closing = time.monotonic()
        assert closing - started < 1.0
        count = seen + 1
        assert fake.wait_for(lambda f: len(f.disconnects) >= count, timeout=2.0)  # noqa: B023
        assert fake.disconnects[-1].at - closing < CLOSE_WITHIN
    assert wait_until(lambda: fake.streams_in_progress == 0)


@pytest.mark.usefixtures("quiet")
def test_disconnect_on_relayed_path_closes_upstream(servers: ServerFactory) -> None:
    """A proxy serving one client format relays the other endpoints untranslated: a client
    leaving such a path mid-stream closes the upstream connection within 100 ms, as on a
    translated path, and leaves no task behind. uvicorn's ``send`` succeeds after a
    disconnect: only ``receive`` tells."""
    fake = FakeUpstream()
    upstream = servers(fake)
    live = servers(
        UpstreamProxy(upstream.url, upstream_format="openai-chat", client_format="openai-chat")
    )
    tasks = live.task_count()
    for fmt in [f for f in FORMATS if f != "openai-chat"]:
        seen = len(fake.disconnects)
        with (
            http_client(timeout=5) as http,
            http.stream(
                "POST",
                live.url + endpoint(fmt),
                json=client_request(fmt),
                headers={"x-fake-stall": "2"},
            ) as response,
        ):
            assert response.status_code == 200
            next(response.iter_raw())
            closing = time.monotonic()
        count = seen + 1
        assert fake.wait_for(lambda f: len(f.disconnects) >= count, timeout=2.0), fmt  # noqa: B023
        assert fake.disconnects[-1].path == endpoint(fmt)
        assert fake.disconnects[-1].at - closing < CLOSE_WITHIN, fmt
    assert wait_until(lambda: fake.streams_in_progress == 0)
    assert wait_until(lambda: live.task_count() <= tasks, timeout=2.0)


def test_probes_see_what_they_measure() -> None:
    """The leak probes are not blind: an extra socket, task and object are counted."""
    import socket

    before = socket_fds()
    with socket.socket():
        assert socket_fds() == before + 1
    assert socket_fds() == before

    async def count() -> tuple[int, int]:
        first = len(asyncio.all_tasks())
        task = asyncio.get_running_loop().create_task(asyncio.sleep(0.01))
        second = len(asyncio.all_tasks())
        await task
        return first, second

    first, second = asyncio.run(count())
    assert second == first + 1
    objects = len(gc.get_objects())
    keep = [[] for _ in range(100)]  # type: list[list[int]]
    assert len(gc.get_objects()) >= objects + 100
    del keep


def held(upstream_format: str, client: str, n: int) -> bool:
    """Whether the proxy holds the response head after the first ``n`` events of the text
    scenario: a translated stream that shows no content yet (``StreamSession.start``)."""
    if upstream_format == client:
        return False
    src = source(upstream_format, "text")
    probe = StreamAdapter(upstream_format=upstream_format, client_format=client)
    probe.feed(src.raw[: src.ends[n - 1] if n else 0])
    return not probe.content.choices
