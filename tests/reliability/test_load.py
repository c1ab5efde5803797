"""Load: 200 concurrent streams through the proxy to the fake LLM, every format pair, each
stream's content checked against its source (the full 1 000-stream run with figures is
``bench/load.py``; see ``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import anyio
import httpx
import pytest

from asgi_sse_adapter import UpstreamProxy
from asgi_sse_adapter.formats import FORMATS
from example_app.fake_upstream import FakeUpstream
from tests.reliability._support import (
    PAIRS,
    DeterministicAdapters,
    check_long_answer,
    client_request,
    endpoint,
    reference_adapter,
    source,
    wait_until,
)
from tests.servers import ServerFactory

STREAMS = 200
DELTAS = 24
PACE = 0.01
DEADLINE = 60.0


def _reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` (Linux ``clear_refs`` 5); whether it worked."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def _vm(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)


@pytest.mark.anyio
@pytest.mark.usefixtures("quiet")
async def test_200_concurrent_streams_lose_nothing(
    servers: ServerFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 paced streams at once, the 25 format pairs in turn: every stream's bytes equal what
    a ``StreamAdapter`` makes of its source (so no event lost, duplicated or reordered, and none
    leaked from one stream into another), its words count 0…N-1 in order, nothing failed, and
    the servers are back to their task count afterwards. Prints p50/p99 time to first event
    and the process's peak memory."""
    adapters = DeterministicAdapters(monkeypatch)
    fake = FakeUpstream(log_size=8)
    upstream = servers(fake)
    live = {
        fmt: servers(UpstreamProxy(upstream.url, upstream_format=fmt, heartbeat_interval=5.0))
        for fmt in FORMATS
    }
    tasks_before = sum(s.task_count() for s in (upstream, *live.values()))
    knobs = {"x-fake-scenario": "long", "x-fake-deltas": str(DELTAS), "x-fake-pace": str(PACE)}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)

    async def one(http: httpx.AsyncClient, n: int) -> tuple[str, str, float, bytes]:
        upstream_format, client = PAIRS[n % len(PAIRS)]
        started = time.perf_counter()
        first = 0.0
        chunks: list[bytes] = []
        async with http.stream(
            "POST",
            live[upstream_format].url + endpoint(client),
            json=client_request(client),
            headers=knobs,
        ) as response:
            assert response.status_code == 200
            async for chunk in response.aiter_raw():
                if not chunks:
                    first = time.perf_counter() - started  # whole events only: the first one
                chunks.append(chunk)
        return upstream_format, client, first, b"".join(chunks)

    peak_reset = _reset_peak_rss()
    rss_before = _vm("VmRSS")
    started = time.perf_counter()
    async with httpx.AsyncClient(limits=limits, timeout=30) as http:
        with anyio.fail_after(DEADLINE):
            results = await asyncio.gather(*(one(http, n) for n in range(STREAMS)))
    elapsed = time.perf_counter() - started
    peak = _vm("VmHWM")

    expected: dict[tuple[str, str], bytes] = {}
    for options in adapters.made:
        pair = (options["upstream_format"], options["client_format"])
        if pair not in expected:
            adapter = reference_adapter(options)
            raw = source(pair[0], "long", DELTAS).raw
            expected[pair] = adapter.feed(raw) + adapter.close()
    assert len(adapters.made) == STREAMS
    for upstream_format, client, _, body in results:
        check_long_answer(client, body, DELTAS)
        assert body == expected[upstream_format, client]
    assert fake.wait_for(lambda f: f.streams_completed == STREAMS), fake.streams_completed
    assert wait_until(
        lambda: sum(s.task_count() for s in (upstream, *live.values())) <= tasks_before
    )
    ttfe = sorted(r[2] for r in results)
    p99 = ttfe[min(len(ttfe) - 1, round(0.99 * len(ttfe)))]
    print(
        f"\n{STREAMS} concurrent streams in {elapsed:.2f}s: time to first event p50 "
        f"{statistics.median(ttfe) * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms; process RSS "
        f"{rss_before / 1e6:.0f} MB before, peak {(peak - rss_before) / 1e6:+.1f} MB"
        + ("" if peak_reset else " (peak since process start)")
    )
    assert elapsed < DEADLINE
