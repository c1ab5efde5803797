"""Codec benchmark: ``SSEDecoder`` and ``SSEFramer`` against the SSE decoders of the Python SDKs.

Run ``python bench/decoder.py`` (``--quick`` for a shorter smoke run). Every contender decodes the
same list of byte chunks in the same timing loop; the loop is repeated and the medians are reported.

Contenders, each driven the way its library drives it:

- ``SSEDecoder.feed`` per chunk, then ``close()`` (this package, full decode to events);
- ``SSEFramer.feed_joined`` and ``SSEFramer.feed`` per chunk (this package, raw framing only);
- openai-python: ``openai._streaming.SSEDecoder().iter_bytes(chunks)``, which is exactly what
  ``openai.Stream._iter_events`` does with ``response.iter_bytes()``;
- httpx-sse: ``httpx_sse._api._iter_sse_lines`` re-created over the chunks (httpx's incremental
  ``TextDecoder`` as in ``Response.iter_text()``, then ``SSELineDecoder.decode``), then
  ``line.rstrip("\\n")`` and ``SSEDecoder.decode(line)`` as in ``EventSource.iter_sse``.

A second part feeds one 16 MiB event and one 1 MiB event in small pieces and prints the time ratio
(linear cost gives about 16). Each of those runs starts after glibc's ``malloc_trim(0)``, so both
sizes get fresh pages: otherwise the allocator recycles already-mapped memory for the 1 MiB event
but maps (and page-faults) new memory for the 16 MiB one, which on this VM costs as much as the
decoding itself and says nothing about the codec. The warm figure is printed too.

Times are CPU time of this process (``time.process_time``), so that time spent descheduled on a
shared machine does not count; each figure is the median over the repeats.
"""

from __future__ import annotations

import ctypes
import json
import platform
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence

from _common import (
    arg_parser,
    interleaved,
    nproc,
    print_header,
    split,
    summary_line,
    verdict,
    versions_line,
)
from httpx._decoders import TextDecoder
from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder
from httpx_sse._decoders import SSELineDecoder
from openai._streaming import SSEDecoder as OpenAISSEDecoder

from asgi_sse_adapter.sse import SSEDecoder, SSEFramer

MiB = 1024 * 1024

# Targets (docs/performance.md).
TARGET_VS_OPENAI = 3.0
TARGET_VS_HTTPX_SSE = 1.5
TARGET_FRAMING_MB_S = 300.0
TARGET_LARGE_RATIO = 20.0

Runner = Callable[[Sequence[bytes]], int]
"""Decodes a whole list of chunks, returns the number of events (or blocks) it produced."""


# --------------------------------------------------------------------------------------------
# Corpus


def _words(rng: random.Random) -> Iterator[str]:
    vocab = ["the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was"]
    vocab += ["on", "be", "by", "this", "are", "or", "an", "at", "from", "which", "stream"]
    vocab += ["event", "token", "model", "response", "chunk", "delta", "latency", "proxy"]
    while True:
        word = rng.choice(vocab)
        yield " " + word if rng.random() < 0.9 else word + ","


def openai_stream(n_events: int, seed: int = 1) -> bytes:
    """An OpenAI ``chat.completion.chunk`` stream: one ``data:`` line per event, then ``[DONE]``."""
    rng = random.Random(seed)
    words = _words(rng)
    out: list[bytes] = []
    base = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741570283,
        "model": "gpt-4o-2024-08-06",
        "service_tier": "default",
        "system_fingerprint": "fp_eb9dce56a8",
    }
    first = {
        **base,
        "choices": [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
    }
    out.append(b"data: " + json.dumps(first, separators=(",", ":")).encode() + b"\n\n")
    for _ in range(n_events - 3):
        text = "".join(next(words) for _ in range(rng.randint(1, 3)))
        chunk = {
            **base,
            "choices": [
                {"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}
            ],
        }
        out.append(b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n")
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
    }
    out.append(b"data: " + json.dumps(last, separators=(",", ":")).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def anthropic_stream(n_events: int, seed: int = 2) -> bytes:
    """An Anthropic Messages stream: ``event:`` + ``data:`` lines, pings, text deltas."""
    rng = random.Random(seed)
    words = _words(rng)

    def ev(name: str, payload: dict[str, object]) -> bytes:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return b"event: " + name.encode() + b"\ndata: " + body + b"\n\n"

    out = [
        ev(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude-sonnet-4-5",
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 472, "output_tokens": 2},
                },
            },
        ),
        ev(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        ),
        ev("ping", {"type": "ping"}),
    ]
    for _ in range(n_events - 6):
        text = "".join(next(words) for _ in range(rng.randint(1, 4)))
        out.append(
            ev(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": text},
                },
            )
        )
    out.append(ev("content_block_stop", {"type": "content_block_stop", "index": 0}))
    out.append(
        ev(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": 15},
            },
        )
    )
    out.append(ev("message_stop", {"type": "message_stop"}))
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# Contenders


def run_ours(chunks: Sequence[bytes]) -> int:
    """This package's decoder: full WHATWG decode into ``ServerSentEvent`` objects."""
    decoder = SSEDecoder(max_event_size=None)
    n = 0
    for chunk in chunks:
        n += len(decoder.feed(chunk))
    decoder.close()
    return n


def run_framer_joined(chunks: Sequence[bytes]) -> int:
    """The passthrough path: complete blocks as one ``bytes`` per read (counts blank lines)."""
    framer = SSEFramer(max_event_size=None)
    n = 0
    for chunk in chunks:
        n += framer.feed_joined(chunk).count(b"\n\n")
    framer.close()
    return n


def run_framer_blocks(chunks: Sequence[bytes]) -> int:
    """Raw framing split into one ``bytes`` per event block."""
    framer = SSEFramer(max_event_size=None)
    n = 0
    for chunk in chunks:
        n += len(framer.feed(chunk))
    framer.close()
    return n


def run_openai(chunks: Sequence[bytes]) -> int:
    """openai-python: ``Stream._iter_events`` is ``decoder.iter_bytes(response.iter_bytes())``."""
    decoder = OpenAISSEDecoder()
    n = 0
    for _ in decoder.iter_bytes(iter(chunks)):
        n += 1
    return n


def run_httpx_sse(chunks: Sequence[bytes]) -> int:
    """httpx-sse 0.4: ``_iter_sse_lines`` over ``iter_text()``, then ``EventSource.iter_sse``."""
    text_decoder = TextDecoder("utf-8")  # what Response.iter_text() uses
    lines = SSELineDecoder()
    decoder = HttpxSSEDecoder()
    n = 0

    def handle(line: str) -> None:
        nonlocal n
        line = line.rstrip("\n")
        if decoder.decode(line) is not None:
            n += 1

    for chunk in chunks:
        text = text_decoder.decode(chunk)
        if text:  # TextChunker(chunk_size=None) drops empty strings
            for line in lines.decode(text):
                handle(line)
    tail = text_decoder.flush()
    if tail:
        for line in lines.decode(tail):
            handle(line)
    for line in lines.flush():
        handle(line)
    return n


CONTENDERS: dict[str, Runner] = {
    "SSEDecoder.feed": run_ours,
    "SSEFramer.feed_joined": run_framer_joined,
    "SSEFramer.feed": run_framer_blocks,
    "openai-python SSEDecoder": run_openai,
    "httpx-sse SSEDecoder": run_httpx_sse,
}


# --------------------------------------------------------------------------------------------
# Timing


def measure(runners: dict[str, Runner], chunks: Sequence[bytes], repeats: int) -> dict[str, float]:
    """Median seconds per full decode, contenders interleaved in each round (order shuffled)."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for name in interleaved(runners, repeats, seed=0):
        run = runners[name]
        t0 = time.process_time()
        run(chunks)
        times[name].append(time.process_time() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or ``None`` where there is no glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    trim: Callable[[int], int] = libc.malloc_trim
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _decode_once(chunks: Sequence[bytes], *, cold: bool) -> tuple[float, int]:
    """CPU seconds and page faults for a fresh unbounded ``SSEDecoder`` to decode ``chunks``.

    ``cold``: first hand all free heap memory back to the OS (``malloc_trim``), so that every
    run, whatever its size, gets fresh pages and pays their page faults.
    """
    if cold and _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)
    decoder = SSEDecoder(max_event_size=None)
    got = 0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.process_time()
    for chunk in chunks:
        got += len(decoder.feed(chunk))
    elapsed = time.process_time() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    assert got == 1
    return elapsed, faults


def large_event_seconds(piece: int, rounds: int, *, cold: bool) -> tuple[float, float, int, int]:
    """Median seconds and page faults for one 1 MiB and one 16 MiB event in ``piece``-byte reads.

    Interleaved: every round decodes the 1 MiB event four times and the 16 MiB event once, after
    one untimed warm-up of each. Returns (1 MiB s, 16 MiB s, 1 MiB faults, 16 MiB faults).
    """
    small = split(b"data: " + b"x" * (MiB - 8) + b"\n\n", piece)
    big = split(b"data: " + b"x" * (16 * MiB - 8) + b"\n\n", piece)
    _decode_once(small, cold=cold)
    _decode_once(big, cold=cold)
    smalls: list[tuple[float, int]] = []
    bigs: list[tuple[float, int]] = []
    for _ in range(rounds):
        smalls += [_decode_once(small, cold=cold) for _ in range(4)]
        bigs.append(_decode_once(big, cold=cold))
    return (
        statistics.median(t for t, _ in smalls),
        statistics.median(t for t, _ in bigs),
        int(statistics.median(f for _, f in smalls)),
        int(statistics.median(f for _, f in bigs)),
    )


def main(argv: list[str] | None = None) -> int:
    parser = arg_parser(__doc__, quick="fewer repeats, smaller corpus")
    args = parser.parse_args(argv)
    repeats = 5 if args.quick else 21
    n_events = 2000 if args.quick else 8000

    print(f"python {platform.python_version()} ({platform.machine()}), {nproc()} CPU(s)")
    print("versions: " + versions_line("asgi-sse-adapter", "openai", "httpx-sse"))
    print(f"{repeats} interleaved repeats, medians\n")

    corpora = {
        "openai": openai_stream(n_events),
        "anthropic": anthropic_stream(n_events),
    }
    failures: list[str] = []
    header = (
        f"{'corpus':<10} {'read':>6} {'contender':<26} {'MB/s':>8} {'events/s':>11} {'ratio':>7}"
    )
    print_header(header)
    for corpus_name, stream in corpora.items():
        for read in (16384, 1460):
            chunks = split(stream, read)
            counts = {name: run(chunks) for name, run in CONTENDERS.items()}
            expected = counts["SSEDecoder.feed"]
            for name in ("openai-python SSEDecoder", "httpx-sse SSEDecoder"):
                assert counts[name] == expected, (name, counts[name], expected)
            medians = measure(CONTENDERS, chunks, repeats)
            ours = medians["SSEDecoder.feed"]
            for name, seconds in medians.items():
                mb_s = len(stream) / seconds / 1e6
                ev_s = expected / seconds
                ratio = seconds / ours
                print(
                    f"{corpus_name:<10} {read:>6} {name:<26} {mb_s:>8.1f} {ev_s:>11,.0f} "
                    f"{ratio:>6.2f}x"
                )
            vs_openai = medians["openai-python SSEDecoder"] / ours
            vs_httpx = medians["httpx-sse SSEDecoder"] / ours
            framing = len(stream) / medians["SSEFramer.feed_joined"] / 1e6
            checks = [
                (
                    f"SSEDecoder vs openai {vs_openai:.2f}x >= {TARGET_VS_OPENAI}x",
                    vs_openai >= TARGET_VS_OPENAI,
                ),
                (
                    f"SSEDecoder vs httpx-sse {vs_httpx:.2f}x >= {TARGET_VS_HTTPX_SSE}x",
                    vs_httpx >= TARGET_VS_HTTPX_SSE,
                ),
            ]
            if read == 16384:
                checks.append(
                    (
                        f"feed_joined {framing:.0f} MB/s >= {TARGET_FRAMING_MB_S:.0f} MB/s",
                        framing >= TARGET_FRAMING_MB_S,
                    )
                )
            for label, ok in checks:
                print(f"    {verdict(ok)}  {corpus_name}/{read}: {label}")
                if not ok:
                    failures.append(f"{corpus_name}/{read}: {label}")
            print()

    print("One large event (SSEDecoder, max_event_size=None), medians:")
    rounds = 3 if args.quick else 9
    cold = _MALLOC_TRIM is not None
    for piece in (64, 1460):
        small, big, small_faults, big_faults = large_event_seconds(piece, rounds, cold=cold)
        ratio = big / small
        ok = ratio <= TARGET_LARGE_RATIO
        print(
            f"  {piece:>5}-byte pieces: 1 MiB {small * 1e3:7.1f} ms ({small_faults} page faults), "
            f"16 MiB {big * 1e3:7.1f} ms ({big_faults} page faults), "
            f"ratio {ratio:5.1f} (<= {TARGET_LARGE_RATIO:.0f}: {verdict(ok)})"
        )
        if not ok:
            failures.append(f"16 MiB / 1 MiB ratio in {piece}-byte pieces: {ratio:.1f}")
    if cold:
        print("  (each run after malloc_trim(0): both sizes start on fresh pages)")
        small, big, small_faults, big_faults = large_event_seconds(1460, rounds, cold=False)
        print(
            f"  for comparison, 1460-byte pieces with the allocator left warm: 1 MiB "
            f"{small * 1e3:.1f} ms ({small_faults} faults), 16 MiB {big * 1e3:.1f} ms "
            f"({big_faults} faults), ratio {big / small:.1f} (information only)"
        )
    else:
        print("  (no glibc malloc_trim here: runs reuse warm memory, the 1 MiB run more so)")

    print()
    print(summary_line(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
