"""Hostile and malformed input: the codec and every format reader fed arbitrary bytes and
structure-aware mutations of real streams (bad JSON, wrong types, missing fields, absurd
indices, huge numbers, deep nesting, lone surrogates, foreign and reordered events, oversized
events and a 100 MB line).

What must hold: no exception escapes (the codec raises only its documented ``EventTooLarge``;
``StreamAdapter`` never raises for upstream input); every ``feed`` returns whole client events;
a stream that did not complete ends with exactly one error tail in the client format; a
translated client stream keeps its format's contract (formats.md §13) whatever came in; memory
stays within the configured ``max_event_size``. Longer coverage-guided runs:
``bench/fuzz_atheris.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_sse_adapter import SSEDecoder, SSEFramer, StreamAdapter, UpstreamProxy
from asgi_sse_adapter.errors import EventTooLarge
from asgi_sse_adapter.formats import FORMATS
from tests.reliability._contracts import adapt_and_check, check_contract
from tests.reliability._support import (
    LOGGER,
    SCENARIOS,
    CutStream,
    check_error_tail,
    client_request,
    decode,
    drive,
    endpoint,
    http_scope,
    is_error_event,
    mock_upstream,
    source,
)

#: Examples per property; ``RELIABILITY_EXAMPLES=5000 pytest tests/reliability/test_fuzz.py`` for
#: a long local run.
EXAMPLES = int(os.environ.get("RELIABILITY_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(autouse=True)
def _quiet_adapter(caplog: pytest.LogCaptureFixture) -> None:
    """Malformed input logs a warning per stream; keep the fuzz loop's records out."""
    caplog.set_level(logging.CRITICAL + 1, LOGGER)


# -- strategies ------------------------------------------------------------------------------


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([10**30, -1, 2**63, -(2**63) - 1, 0]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["\ud800", "\x00", "\u2028", "data: [DONE]\n\n", "🚀" * 10]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
#: Raw JSON texts no encoder would write: what a broken or hostile upstream can send.
ODDITIES = (
    "1e999",
    "-1e999",
    "NaN",
    "Infinity",
    "9" * 5000,
    "[" * 50_000 + "]" * 50_000,
    '{"a":' * 5000 + "1" + "}" * 5000,
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"' + "x" * 200_000 + '"',
    "",
    "{",
    "nul",
    '{"type": "message_start"',
)
ODDITY_IDS = [
    "inf",
    "-inf",
    "nan",
    "infinity",
    "5000-digits",
    "deep-array",
    "deep-object",
    "lone-surrogate",
    "reversed-surrogates",
    "200k-string",
    "empty",
    "open-brace",
    "nul",
    "cut-object",
]
raw_json_oddities = st.sampled_from(ODDITIES)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (the root excluded)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*prefix, key)
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield (*prefix, i)
            yield from _paths(item, (*prefix, i))


def _replace(doc: Any, path: tuple[Any, ...], value: Any, *, delete: bool = False) -> Any:
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _event_parts(event: bytes) -> tuple[list[bytes], bytes]:
    """(non-data lines, data value) of one LF-encoded fake event."""
    lines = event.rstrip(b"\n").split(b"\n")
    head = [line for line in lines if not line.startswith(b"data: ")]
    data = b"\n".join(line[6:] for line in lines if line.startswith(b"data: "))
    return head, data


@st.composite
def mutated_streams(draw: st.DrawFn, fmt: str) -> list[bytes]:
    """A real stream of ``fmt`` with one to four structure-aware mutations."""
    scenario = draw(st.sampled_from((*SCENARIOS, "long")))
    events = list(source(fmt, scenario, 6).events)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(events) - 1))
        head, data = _event_parts(events[i])
        kind = draw(
            st.sampled_from(
                [
                    "value",
                    "delete",
                    "raw",
                    "truncate",
                    "drop",
                    "duplicate",
                    "swap",
                    "rename",
                    "foreign",
                    "crlf",
                ]
            )
        )
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError):  # an earlier mutation broke it
            doc = None
        paths = list(_paths(doc)) if doc is not None else []
        if kind in ("value", "delete", "raw") and paths:
            path = draw(st.sampled_from(paths))
            if kind == "value":
                doc = _replace(doc, path, draw(json_values))
                data = json.dumps(doc).encode()
            elif kind == "delete":
                doc = _replace(doc, path, None, delete=True)
                data = json.dumps(doc).encode()
            else:
                marker = "\x00MARK\x00"
                text = json.dumps(_replace(doc, path, marker))
                data = text.replace(json.dumps(marker), draw(raw_json_oddities)).encode()
        elif kind == "truncate":
            data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
        elif kind == "drop":
            del events[i]
            continue
        elif kind == "duplicate":
            events.insert(i, events[i])
            continue
        elif kind == "swap":
            j = draw(st.integers(0, len(events) - 1))
            events[i], events[j] = events[j], events[i]
            continue
        elif kind == "rename":
            name = draw(st.sampled_from(["error", "ping", "message_stop", "", "x" * 300]))
            head = [b"event: " + name.encode()]
        elif kind == "foreign":
            other = draw(st.sampled_from([f for f in FORMATS if f != fmt]))
            events.insert(i, draw(st.sampled_from(source(other, "tools").events)))
            continue
        else:
            events[i] = events[i].replace(b"\n", b"\r\n")
            continue
        events[i] = b"".join(line + b"\n" for line in [*head, b"data: " + data]) + b"\n"
    return events


# -- the codec ---------------------------------------------------------------------------------


@FUZZ
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(0, 4000), max_size=12),
    limit=st.sampled_from([None, 8, 64, 1024]),
)
def test_decoder_and_framer_survive_arbitrary_bytes(
    data: bytes, cuts: list[int], limit: int | None
) -> None:
    """Any bytes, split anywhere: ``SSEDecoder`` and ``SSEFramer`` raise nothing but
    ``EventTooLarge`` (and only with a limit), give the same events however the input is split,
    and after ``EventTooLarge`` discard everything."""
    whole = SSEDecoder(max_event_size=None).feed(data)
    for cls in (SSEDecoder, SSEFramer):
        codec: Any = cls(max_event_size=limit)
        out: list[Any] = []
        raised = False
        for piece in _split(data, cuts):
            try:
                got = codec.feed(piece)
            except EventTooLarge as exc:
                assert limit is not None
                assert not raised, "raised twice"
                raised = True
                out.extend(exc.complete)
            else:
                assert not (raised and got), "output after EventTooLarge"
                out.extend(got)
        codec.close()
        if cls is SSEDecoder and not raised:
            assert out == whole
        if cls is SSEDecoder and raised:
            assert out == whole[: len(out)]


# -- StreamAdapter -----------------------------------------------------------------------------


def run_adapter(upstream: str, client: str, pieces: list[bytes], **options: Any) -> bytes:
    """``adapt_and_check``: the adapter's output for ``pieces``, checked against the client
    format's contract."""
    return adapt_and_check(upstream, client, pieces, **options)


@pytest.mark.parametrize("upstream", FORMATS)
@FUZZ
@given(
    data=st.binary(max_size=2000),
    cuts=st.lists(st.integers(0, 3000), max_size=8),
    client=st.sampled_from(FORMATS),
)
def test_adapter_survives_arbitrary_bytes(
    upstream: str, data: bytes, cuts: list[int], client: str
) -> None:
    """Arbitrary bytes as an upstream stream of each format, split anywhere, to any client:
    nothing raises, whole events only, the client format's contract holds, and an unfinished
    stream ends with exactly one error tail."""
    run_adapter(upstream, client, _split(data, cuts))


@pytest.mark.parametrize("upstream", FORMATS)
@FUZZ
@given(data=st.data(), client=st.sampled_from(FORMATS), cuts=st.lists(st.integers(0, 9000)))
def test_adapter_survives_mutated_streams(
    upstream: str, data: st.DataObject, client: str, cuts: list[int]
) -> None:
    """Real streams of each upstream format with structure-aware mutations (wrong types,
    missing fields, absurd indices, huge numbers, deep nesting, bad JSON, lone surrogates,
    dropped, duplicated, swapped, renamed and foreign events, CRLF): the same guarantees."""
    events = data.draw(mutated_streams(upstream))
    run_adapter(upstream, client, _split(b"".join(events), cuts))


@pytest.mark.parametrize("upstream", FORMATS)
@FUZZ
@given(
    payloads=st.lists(
        st.fixed_dictionaries(
            {
                "type": st.sampled_from(
                    [
                        "message_start",
                        "content_block_start",
                        "content_block_delta",
                        "content_block_stop",
                        "message_delta",
                        "message_stop",
                        "response.created",
                        "response.output_item.added",
                        "response.output_text.delta",
                        "response.function_call_arguments.delta",
                        "response.completed",
                        "completion",
                        "error",
                    ]
                )
            },
            optional={
                "index": json_values,
                "delta": json_values,
                "content_block": json_values,
                "message": json_values,
                "choices": st.lists(
                    st.fixed_dictionaries(
                        {"index": json_values},
                        optional={
                            "delta": json_values,
                            "text": json_values,
                            "finish_reason": json_values,
                        },
                    ),
                    max_size=3,
                ),
                "usage": json_values,
                "response": json_values,
                "item": json_values,
                "output_index": json_values,
                "completion": json_values,
                "stop_reason": json_values,
                "error": json_values,
            },
        ),
        max_size=12,
    ),
    named=st.booleans(),
    client=st.sampled_from(FORMATS),
)
def test_adapter_survives_wrong_shapes(
    upstream: str, payloads: list[dict[str, Any]], named: bool, client: str
) -> None:
    """Events of the right names whose fields have any JSON type or are missing: the same
    guarantees (the readers' shape checks, not luck)."""
    raw = b""
    for payload in payloads:
        head = f"event: {payload['type']}\n" if named else ""
        raw += (head + "data: " + json.dumps(payload) + "\n\n").encode()
    run_adapter(upstream, client, [raw])


@pytest.mark.parametrize("upstream", FORMATS)
@pytest.mark.parametrize("text", ODDITIES, ids=ODDITY_IDS)
def test_adapter_survives_json_oddities(upstream: str, text: str) -> None:
    """Each raw JSON oddity (1e999, NaN, 5000-digit integers, 50 000-deep nesting, lone
    surrogates, a 200 kB string, empty and cut JSON) in place of every value of a real stream's
    second event, to every client: never an exception, never an invalid client stream."""
    src = source(upstream, "tools")
    head, data = _event_parts(src.events[1])
    doc = json.loads(data)
    for path in list(_paths(doc))[:8]:
        marker = "\x00MARK\x00"
        mutated = json.dumps(_replace(json.loads(data), path, marker)).replace(
            json.dumps(marker), text
        )
        event = b"".join(line + b"\n" for line in [*head, b"data: " + mutated.encode()]) + b"\n"
        raw = src.events[0] + event + b"".join(src.events[2:])
        for client in FORMATS:
            run_adapter(upstream, client, [raw])


# -- oversized input ---------------------------------------------------------------------------


def _line(size: int) -> Iterator[bytes]:
    """``data: xxx…`` without an end, ``size`` bytes in 1 MiB reads."""
    block = b"x" * (1024 * 1024)
    yield b"data: "
    for _ in range(size // len(block)):
        yield block


@pytest.mark.parametrize("upstream", FORMATS)
def test_100mb_line_ends_with_error_tail_in_bounded_memory(upstream: str) -> None:
    """A 100 MB line (no event end) after a few real events, to every client: the stream
    ends with the error tail once the line passes ``max_event_size``, every later read is
    ignored at once, and the adapter never holds much more than the limit."""
    limit = 1024 * 1024
    src = source(upstream, "text")
    for client in FORMATS:
        adapter = StreamAdapter(upstream_format=upstream, client_format=client)
        tracemalloc.start()
        try:
            out = [adapter.feed(src.raw[: src.ends[2]])]
            base, _ = tracemalloc.get_traced_memory()
            reads = 0
            for block in _line(100 * limit):
                out.append(adapter.feed(block))
                reads += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert reads == 101
        assert adapter.ended
        assert adapter.result.outcome == "failed"
        assert adapter.result.error is not None
        assert adapter.result.error.code == "upstream_event_too_large"
        assert peak - base < 3 * limit, (peak - base) / 1e6
        body = b"".join(out)
        events = decode(body)
        if client != upstream:
            check_contract(client, events, body)
        assert len([e for e in events if is_error_event(e)]) == 1


@pytest.mark.anyio
async def test_proxy_stops_reading_an_oversized_upstream_event() -> None:
    """Through the proxy, an upstream sending a 100 MB line: the client gets the error tail
    after about ``max_event_size`` bytes, and the proxy stops reading the upstream there."""
    sent: list[int] = []

    class Endless(CutStream):
        async def __aiter__(self) -> Any:
            for block in _line(100 * 1024 * 1024):
                sent.append(len(block))
                yield block

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=Endless(b"")
        )

    http = mock_upstream(respond)
    proxy = UpstreamProxy(
        "http://upstream.invalid",
        upstream_format="openai-chat",
        client=http,
        heartbeat_interval=None,
        max_event_size=1024 * 1024,
    )
    body = json.dumps(client_request("anthropic-messages")).encode()
    try:
        exchange = await drive(proxy, http_scope(endpoint("anthropic-messages")), body)
    finally:
        await http.aclose()
    exchange.assert_well_formed()
    check_error_tail(
        "anthropic-messages", exchange.body, "upstream event larger than 1048576 bytes"
    )
    assert sum(sent) < 4 * 1024 * 1024
