"""Translation benchmark: ``StreamAdapter`` CPU per event against a JSON re-serialisation floor.

Run ``python bench/translate.py`` (``--quick`` for a shorter smoke run). The main run re-invokes
this script once per JSON backend (``--json orjson`` if orjson is installed, and ``--json stdlib``
with orjson blocked before ``asgi_sse_adapter`` is imported, so ``asgi_sse_adapter._json`` falls
back to the standard library), prints each run's tables and a summary with PASS/FAIL.

What is measured, on one realistic stream per format built below (a few hundred small text deltas,
then a tool call with streamed arguments, then usage), fed as network reads of 1460 and 16384
bytes:

- translation, both directions (anthropic-messages → openai-chat with ``include_usage`` and
  openai-chat → anthropic-messages), default options otherwise: ``feed`` per read, then
  ``close()``. Reported as CPU µs per upstream event;
- the floor: for every upstream event's ``data`` (already split out), ``loads``, ``dumps`` with
  the same JSON functions the adapter uses, then ``b"data: " + out + b"\\n\\n"`` (a non-JSON
  ``[DONE]`` is framed as-is). Target: adapter <= 2x floor;
- the same translation fed one event per read, for information (no target): how a live stream
  arrives, and what an app streaming one event per body message hands the middleware; and, per
  kind, one text delta or argument fragment fed alone over and over after the stream's start
  (µs per ``feed``, the difference to the same run without the repeats);
- identity (same format both sides, ``collect_response`` left at its default) against the raw
  framing path of the codec, ``SSEFramer.feed_joined``, on the same reads. Target: identity
  throughput >= 0.9x the framer's.

Timing: CPU time (``time.process_time``) so that time spent descheduled on a shared machine does
not count; each sample runs a contender's whole stream enough times to last about 20 ms;
contenders of one comparison are interleaved in a shuffled order in every round; medians over the
rounds. The garbage collector stays on, as in a server.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from _common import (
    arg_parser,
    dist_version,
    interleaved,
    machine_line,
    print_header,
    split,
    summary_line,
    verdict,
    write_report,
)

if TYPE_CHECKING:  # (imported at run time only once the JSON backend is chosen)
    from asgi_sse_adapter import StreamAdapter

# Targets (docs/performance.md).
TARGET_VS_FLOOR = 2.0
TARGET_IDENTITY = 0.9

READS = (1460, 16384)
# Translation is also fed one event per read (information, no target): how a live stream arrives,
# and how an app that streams one event per body message feeds the middleware.
EVENT_READ = "event"
SAMPLE_SECONDS = 0.02
REPEATS = 2000  # feeds of one event per sample in the one-event part

Runner = Callable[[], int]
"""Processes a whole stream once; returns a count used as a sanity check."""


# --------------------------------------------------------------------------------------------
# Corpus


def _words(rng: random.Random) -> Iterator[str]:
    vocab = [
        *("the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was", "on"),
        *("be", "by", "this", "are", "or", "an", "at", "from", "which", "stream", "event"),
        *("token", "model", "response", "chunk", "delta", "latency", "proxy", "adapter"),
        *("buffer", "café", "naïve", "weather", "forecast", "Zürich", "東京", "température"),
    ]
    while True:
        word = rng.choice(vocab)
        yield " " + word if rng.random() < 0.9 else word + ","


def _text_deltas(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = _words(rng)
    return ["".join(next(words) for _ in range(rng.randint(1, 3))) for _ in range(n)]


def _argument_fragments() -> list[str]:
    """A tool call's JSON arguments cut into the small pieces both APIs stream them in."""
    args = json.dumps(
        {
            "location": "Zürich, Switzerland",
            "unit": "celsius",
            "days": 5,
            "include": ["humidity", "wind_speed", "precipitation", "uv_index"],
            "language": "en",
        },
        ensure_ascii=False,
    )
    rng = random.Random(7)
    pieces: list[str] = []
    pos = 0
    while pos < len(args):
        step = rng.randint(2, 6)
        pieces.append(args[pos : pos + step])
        pos += step
    return pieces


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def anthropic_stream(n_text: int) -> bytes:
    """A Messages stream as the API sends it: message_start, a text block with ``n_text`` deltas
    (and a ping), a tool_use block with streamed ``input_json_delta``, message_delta with usage,
    message_stop."""
    out: list[bytes] = []

    def ev(payload: dict[str, Any]) -> None:
        out.append(b"event: " + str(payload["type"]).encode() + b"\ndata: " + _compact(payload))
        out.append(b"\n\n")

    ev(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-sonnet-4-5-20250929",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 472,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 1024,
                    "output_tokens": 2,
                },
            },
        }
    )
    ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}})
    ev({"type": "ping"})
    for text in _text_deltas(n_text, seed=2):
        ev(
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": text},
            }
        )
    ev({"type": "content_block_stop", "index": 0})
    ev(
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        }
    )
    for fragment in ["", *_argument_fragments()]:
        ev(
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": fragment},
            }
        )
    ev({"type": "content_block_stop", "index": 1})
    ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 503},
        }
    )
    ev({"type": "message_stop"})
    return b"".join(out)


def openai_stream(n_text: int) -> bytes:
    """A Chat Completions stream as the API sends it with ``stream_options.include_usage``: a role
    chunk, ``n_text`` content chunks, a tool call whose arguments are streamed, the finish chunk,
    the usage chunk (``choices: []``), ``[DONE]``."""
    base = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_eb9dce56a8",
    }
    out: list[bytes] = []

    def chunk(delta: dict[str, Any], finish: str | None = None) -> None:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        out.append(b"data: " + _compact({**base, "choices": [choice], "usage": None}) + b"\n\n")

    chunk({"role": "assistant", "content": "", "refusal": None})
    for text in _text_deltas(n_text, seed=1):
        chunk({"content": text})
    chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    )
    for fragment in _argument_fragments():
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
    chunk({}, "tool_calls")
    usage = {
        "prompt_tokens": 1496,
        "completion_tokens": 503,
        "total_tokens": 1999,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    out.append(b"data: " + _compact({**base, "choices": [], "usage": usage}) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def event_data(stream: bytes) -> list[str]:
    """Every event's ``data`` value (the corpus has one ``data:`` line per event)."""
    values: list[str] = []
    for block in stream.decode().split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                values.append(line[6:])
    return values


def events_of(stream: bytes) -> list[bytes]:
    """The stream one event per read (the corpus's events end in a blank line, none holds one)."""
    blocks = [block + b"\n\n" for block in stream.split(b"\n\n")[:-1]]
    assert b"".join(blocks) == stream
    return blocks


def lengthen(stream: bytes, size: int) -> bytes:
    """``stream`` grown to about ``size`` bytes by repeating its middle events (identity never
    looks inside them; the first and the last two events stay where they are)."""
    events = stream.split(b"\n\n")[:-1]
    head, middle, tail = events[:1], events[1:-2], events[-2:]
    body = b"\n\n".join(middle) + b"\n\n"
    times = max(1, size // max(1, len(body)))
    return b"\n\n".join(head) + b"\n\n" + body * times + b"\n\n".join(tail) + b"\n\n"


# --------------------------------------------------------------------------------------------
# Contenders (asgi_sse_adapter is imported only after the JSON backend was chosen)


def new_adapter(upstream: str, client: str) -> StreamAdapter:
    """The adapter every contender uses: default options, ``include_usage`` for Chat clients of
    a translation, the benchmark's fixed clock and ids."""
    from asgi_sse_adapter import StreamAdapter

    return StreamAdapter(
        upstream_format=upstream,
        client_format=client,
        include_usage=client == "openai-chat" and upstream != client,
        clock=_clock,
        id_factory=_ids,
    )


def adapter_runner(upstream: str, client: str, chunks: Sequence[bytes]) -> Runner:
    """``StreamAdapter`` as the middleware drives it: ``feed`` per read, then ``close()``."""

    def run() -> int:
        adapter = new_adapter(upstream, client)
        n = 0
        for chunk in chunks:
            n += len(adapter.feed(chunk))
        n += len(adapter.close())
        return n

    return run


def repeat_runner(
    upstream: str, client: str, head: Sequence[bytes], event: bytes, n: int
) -> Runner:
    """A stream's ``head`` events, then ``event`` fed alone ``n`` times (one event per read, as a
    live stream's reads are), on one adapter."""

    def run() -> int:
        feed = new_adapter(upstream, client).feed
        for chunk in head:
            feed(chunk)
        total = 0
        for _ in range(n):
            total += len(feed(event))
        return total

    return run


def framer_runner(chunks: Sequence[bytes]) -> Runner:
    """The codec's raw framing path, as identity mode uses it (same default size bound)."""
    from asgi_sse_adapter.sse import SSEFramer

    def run() -> int:
        framer = SSEFramer()
        n = 0
        for chunk in chunks:
            n += len(framer.feed_joined(chunk))
        framer.close()
        return n

    return run


def floor_runner(values: Sequence[str]) -> Runner:
    """Parse and re-serialise every event with the adapter's JSON functions, framed."""
    from asgi_sse_adapter._json import dumps, loads

    def run() -> int:
        out: list[bytes] = []
        append = out.append
        for value in values:
            if value == "[DONE]":
                append(b"data: [DONE]\n\n")
            else:
                append(b"data: " + dumps(loads(value)) + b"\n\n")
        return len(b"".join(out))

    return run


def _clock() -> float:
    return 1741570283.0


def _ids() -> str:
    return "0123456789abcdef01234567"


# --------------------------------------------------------------------------------------------
# Timing


def calibrate(run: Runner) -> int:
    """How many whole runs make one sample of about ``SAMPLE_SECONDS`` of CPU."""
    run()  # warm up (imports, caches)
    n = 1
    while True:
        t0 = time.process_time()
        for _ in range(n):
            run()
        elapsed = time.process_time() - t0
        if elapsed >= SAMPLE_SECONDS / 4 or n >= 1 << 16:
            return max(1, math.ceil(n * SAMPLE_SECONDS / max(elapsed, 1e-9)))
        n *= 4


def measure(runners: dict[str, Runner], repeats: int, seed: int) -> dict[str, float]:
    """Median CPU seconds per run of each contender, interleaved in a shuffled order each round."""
    loops = {name: calibrate(run) for name, run in runners.items()}
    times: dict[str, list[float]] = {name: [] for name in runners}
    for name in interleaved(runners, repeats, seed):
        run = runners[name]
        n = loops[name]
        t0 = time.process_time()
        for _ in range(n):
            run()
        times[name].append((time.process_time() - t0) / n)
    return {name: statistics.median(ts) for name, ts in times.items()}


# --------------------------------------------------------------------------------------------
# One backend (child process)


def check_outputs(streams: dict[str, bytes]) -> None:
    """The contenders do what they claim on this corpus (translation completes, identity is the
    same bytes, the floor and the adapter see the same events)."""
    from asgi_sse_adapter.sse import SSEDecoder

    for upstream, stream in streams.items():
        for client in streams:
            outputs = set()
            for chunks in [split(stream, read) for read in READS] + [events_of(stream)]:
                adapter = new_adapter(upstream, client)
                read = len(chunks[0])
                body = b"".join(adapter.feed(c) for c in chunks) + adapter.close()
                outputs.add(body)
                result = adapter.result
                assert result.outcome == "complete", (upstream, client, read, result)
                if upstream == client:
                    assert body == stream, (upstream, read)
                else:
                    events = SSEDecoder().feed(body)
                    assert result.events == len(event_data(stream)), (upstream, result.events)
                    assert len(events) > len(event_data(stream)) // 2, (upstream, client)
                    assert result.response is not None
                    assert result.usage is not None
            assert len(outputs) == 1, (upstream, client)  # the same bytes for every read size


def run_backend(backend: str, quick: bool, report: str | None) -> int:
    if backend == "stdlib":
        sys.modules["orjson"] = None  # type: ignore[assignment]  # makes `import orjson` fail
    from asgi_sse_adapter import _json

    expected = {"stdlib": "json", "orjson": "orjson"}[backend]
    in_use = _json.BACKEND
    if in_use != expected:
        print(f"asgi_sse_adapter._json.BACKEND is {in_use!r}, wanted {expected!r}")
        return 2

    repeats = 5 if quick else 15
    n_text = 300
    streams = {
        "anthropic-messages": anthropic_stream(n_text),
        "openai-chat": openai_stream(n_text),
    }
    check_outputs(streams)
    short = {"anthropic-messages": "anthropic", "openai-chat": "openai"}

    print(f"JSON backend: {backend} (asgi_sse_adapter._json.BACKEND = {_json.BACKEND!r})")
    print(f"{repeats} interleaved rounds, medians of CPU time per run\n")
    results: dict[str, Any] = {"backend": backend, "translate": [], "identity": []}
    failures: list[str] = []

    header = (
        f"{'direction':<22} {'events':>6} {'read':>6} {'adapter µs/ev':>14} "
        f"{'floor µs/ev':>12} {'ratio':>7}"
    )
    print_header(header)
    for upstream, client in (
        ("anthropic-messages", "openai-chat"),
        ("openai-chat", "anthropic-messages"),
    ):
        stream = streams[upstream]
        values = event_data(stream)
        n_events = len(values)
        runners: dict[str, Runner] = {"floor": floor_runner(values)}
        reads: list[int | str] = [*READS, EVENT_READ]
        for read in reads:
            chunks = events_of(stream) if read == EVENT_READ else split(stream, int(read))
            runners[f"adapter {read}"] = adapter_runner(upstream, client, chunks)
        medians = measure(runners, repeats, seed=1)
        floor_us = medians["floor"] / n_events * 1e6
        direction = f"{short[upstream]} → {short[client]}"
        for read in reads:
            adapter_us = medians[f"adapter {read}"] / n_events * 1e6
            ratio = adapter_us / floor_us
            target = read != EVENT_READ
            ok = ratio <= TARGET_VS_FLOOR
            print(
                f"{direction:<22} {n_events:>6} {read:>6} {adapter_us:>14.2f} {floor_us:>12.2f} "
                f"{ratio:>6.2f}x  {verdict(ok) if target else '(information)'}"
            )
            results["translate"].append(
                {
                    "direction": direction,
                    "events": n_events,
                    "read": read,
                    "adapter_us": adapter_us,
                    "floor_us": floor_us,
                    "ratio": ratio,
                    "ok": ok,
                    "target": target,
                }
            )
            if target and not ok:
                failures.append(f"{direction}/{read}: {ratio:.2f}x floor > {TARGET_VS_FLOOR}x")
    print()

    header = (
        f"{'identity':<22} {'bytes':>8} {'read':>6} {'adapter MB/s':>14} "
        f"{'framer MB/s':>12} {'ratio':>7}  {'fixed µs/stream':>15}"
    )
    print_header(header)
    for fmt, stream in streams.items():
        # The target compares the two paths per read, on a long answer (~1 MiB): the stream's
        # middle repeated. The fixed cost per stream (construction, reading the last events at
        # close) is measured on the short stream and shown beside it, not hidden.
        long_stream = lengthen(stream, 1 << 20)
        runners = {}
        for read in READS:
            for name, body in (("short", stream), ("long", long_stream)):
                chunks = split(body, read)
                runners[f"identity {name} {read}"] = adapter_runner(fmt, fmt, chunks)
                runners[f"framer {name} {read}"] = framer_runner(chunks)
        medians = measure(runners, repeats, seed=2)
        for read in READS:
            ident = len(long_stream) / medians[f"identity long {read}"] / 1e6
            framer = len(long_stream) / medians[f"framer long {read}"] / 1e6
            fixed_us = (medians[f"identity short {read}"] - medians[f"framer short {read}"]) * 1e6
            ratio = ident / framer
            ok = ratio >= TARGET_IDENTITY
            label = f"{short[fmt]} → {short[fmt]}"
            print(
                f"{label:<22} {len(long_stream):>8} {read:>6} {ident:>14.1f} {framer:>12.1f} "
                f"{ratio:>6.2f}x  {fixed_us:>15.1f}  {verdict(ok)}"
            )
            results["identity"].append(
                {
                    "format": short[fmt],
                    "bytes": len(long_stream),
                    "read": read,
                    "identity_mb_s": ident,
                    "framer_mb_s": framer,
                    "ratio": ratio,
                    "fixed_us": fixed_us,
                    "ok": ok,
                }
            )
            if not ok:
                failures.append(f"identity {short[fmt]}/{read}: {ratio:.2f}x < {TARGET_IDENTITY}x")
    print()

    # One event per feed, the same event over and over after the stream's start: a text delta
    # and an argument fragment of each upstream, into each client that reads from it here.
    header = f"{'one event per feed':<52} {'µs/feed':>8}  (information)"
    print_header(header)
    results["one_event"] = []
    for upstream, mark, clients in (
        ("anthropic-messages", b'"text_delta"', ("openai-chat",)),
        ("anthropic-messages", b'"input_json_delta"', ("openai-chat",)),
        (
            "openai-chat",
            b'{"content":"',
            ("anthropic-messages", "openai-responses", "openai-text", "anthropic-text"),
        ),
        ("openai-chat", b'"arguments":"', ("anthropic-messages",)),
    ):
        events = events_of(streams[upstream])
        # The third such event: the first ones may be read whole (to learn their shape).
        at = [i for i, e in enumerate(events) if mark in e and not e.endswith(b'""}}\n\n')][2]
        kind = "text delta" if b"text" in mark or b"content" in mark else "argument fragment"
        runners = {}
        for client in clients:
            for n in (0, REPEATS):
                runners[f"{client} {n}"] = repeat_runner(
                    upstream, client, events[:at], events[at], n
                )
        medians = measure(runners, repeats, seed=3)
        for client in clients:
            us = (medians[f"{client} {REPEATS}"] - medians[f"{client} 0"]) / REPEATS * 1e6
            label = f"{kind}, {upstream} → {client}"
            print(f"{label:<52} {us:>8.2f}")
            results["one_event"].append(
                {"upstream": upstream, "client": client, "kind": kind, "us": us}
            )
    print()
    results["failures"] = failures
    if report is not None:
        write_report(report, results, indent=None)
    print(summary_line(failures, passed=f"PASS ({backend})"))
    return 1 if failures else 0


# --------------------------------------------------------------------------------------------
# Main run: one child per backend, then the summary


def _has_orjson() -> bool:
    try:
        import orjson  # noqa: F401
    except ImportError:
        return False
    return True


def run_all(quick: bool) -> int:
    backends = (["orjson"] if _has_orjson() else []) + ["stdlib"]
    print(machine_line(load_average=False))
    print(
        f"asgi-sse-adapter {dist_version('asgi-sse-adapter')}, "
        f"orjson {dist_version('orjson', 'not installed')}; backends: {', '.join(backends)}"
    )
    print(f"targets: adapter <= {TARGET_VS_FLOOR}x floor, identity >= {TARGET_IDENTITY}x framer\n")

    reports: list[dict[str, Any]] = []
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            print(f"=== --json {backend} " + "=" * 60)
            sys.stdout.flush()
            path = os.path.join(tmp, f"{backend}.json")
            cmd = [sys.executable, os.path.abspath(__file__), "--json", backend, "--report", path]
            if quick:
                cmd.append("--quick")
            code = subprocess.run(cmd, check=False).returncode
            print()
            if code not in (0, 1) or not os.path.exists(path):
                print(f"--json {backend} did not complete (exit {code})")
                status = 2
                continue
            with open(path, encoding="utf-8") as fh:
                reports.append(json.load(fh))

    print("=== summary " + "=" * 70)
    for report in reports:
        for row in report["translate"]:
            target = f"<= {TARGET_VS_FLOOR}x" if row["target"] else "information"
            print(
                f"{verdict(row['ok']) if row['target'] else 'INFO'}  "
                f"{report['backend']:<6} {row['direction']:<20} "
                f"read {row['read']:>5}: adapter {row['adapter_us']:.2f} µs/event, floor "
                f"{row['floor_us']:.2f} µs/event, {row['ratio']:.2f}x ({target})"
            )
        for row in report["identity"]:
            print(
                f"{verdict(row['ok'])}  {report['backend']:<6} identity {row['format']:<11} "
                f"read {row['read']:>5}: {row['identity_mb_s']:.0f} MB/s vs framer "
                f"{row['framer_mb_s']:.0f} MB/s, {row['ratio']:.2f}x (>= {TARGET_IDENTITY}x)"
            )
    failed = [f"{r['backend']}: {f}" for r in reports for f in r["failures"]]
    if failed or not status:
        print("\n" + summary_line(failed))
    return 1 if failed else status


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__)
    parser.add_argument(
        "--json",
        choices=("orjson", "stdlib"),
        help="measure with this JSON backend only, in this process (the main run re-invokes "
        "the script with each backend)",
    )
    parser.add_argument("--report", help=argparse.SUPPRESS)  # machine-readable results (child)
    args = parser.parse_args(argv)
    if args.json is None:
        return run_all(args.quick)
    return run_backend(args.json, args.quick, args.report)


if __name__ == "__main__":
    sys.exit(main())
