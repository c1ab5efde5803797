"""Coverage-guided fuzzing of the SSE codec and every format reader, with atheris (libFuzzer).

The same oracle as ``tests/reliability/test_fuzz.py`` (``adapt_and_check`` in
``tests/reliability/_contracts.py``), for runs far longer than CI allows: nothing raises out of
``StreamAdapter``, every ``feed`` returns whole events, an unfinished stream ends with exactly
one error tail, a translated stream keeps its client format's contract; the codec raises nothing
but ``EventTooLarge``.

Setup and runs (from the repository root, in the dev virtualenv)::

    pip install atheris
    python bench/fuzz_atheris.py --seed-corpus fuzz-corpus        # real streams as seeds
    python bench/fuzz_atheris.py fuzz-corpus -max_total_time=3600 -rss_limit_mb=2048
    python bench/fuzz_atheris.py fuzz-corpus -runs=200000 -jobs=2  # a fixed budget
    python bench/fuzz_atheris.py crash-<sha1>                      # replay one finding

Everything after the script's own options goes to libFuzzer (``-help=1`` lists them). A finding
is written as ``crash-<sha1>`` with the traceback; replaying it prints the upstream format, the
client format and the input.

Input layout: byte 0 picks the upstream format, byte 1 the client format, byte 2 the read size
(1..255 bytes, 0 = everything at once), byte 3 selects the codec-only target (odd) with
``max_event_size`` taken from byte 4; the rest is the upstream stream.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# asgi_sse_adapter.formats.FORMATS, spelled out: importing the package here, before
# ``atheris.instrument_imports``, would leave it uninstrumented.
FORMATS = (
    "openai-chat",
    "openai-text",
    "openai-responses",
    "anthropic-messages",
    "anthropic-text",
)


def _load_atheris() -> Any:
    try:
        return importlib.import_module("atheris")
    except ImportError:
        sys.exit("atheris is not installed: pip install atheris")


def seed_corpus(directory: str) -> int:
    """Write every scenario stream of every format pair, read whole and in small reads."""
    from tests.reliability._support import SCENARIOS, source

    os.makedirs(directory, exist_ok=True)
    count = 0
    for u, upstream in enumerate(FORMATS):
        for c in range(len(FORMATS)):
            for scenario in (*SCENARIOS, "long"):
                raw = source(upstream, scenario, 8).raw
                for read in (0, 7):
                    name = f"{upstream}-{FORMATS[c]}-{scenario}-{read}"
                    with open(os.path.join(directory, name), "wb") as out:
                        out.write(bytes([u, c, read, 0, 0]) + raw)
                    count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed-corpus", metavar="DIR", help="write seed inputs to DIR and exit")
    options, rest = parser.parse_known_args()
    if options.seed_corpus:
        print(f"{seed_corpus(options.seed_corpus)} seeds written to {options.seed_corpus}")
        return
    atheris = _load_atheris()
    with atheris.instrument_imports(include=["asgi_sse_adapter"]):
        from asgi_sse_adapter import SSEDecoder, SSEFramer
        from asgi_sse_adapter.errors import EventTooLarge
    import logging

    from tests.reliability._contracts import adapt_and_check

    logging.disable(logging.CRITICAL)  # malformed input logs a warning per stream

    def codec(data: bytes, read: int, limit: int | None) -> None:
        for cls in (SSEDecoder, SSEFramer):
            decoder: Any = cls(max_event_size=limit)
            broken = False
            for start in range(0, len(data), read or len(data) or 1):
                try:
                    out = decoder.feed(data[start : start + (read or len(data))])
                except EventTooLarge:
                    assert limit is not None, "EventTooLarge without a limit"
                    assert not broken, "EventTooLarge twice"
                    broken = True
                    continue
                assert not (broken and out), "output after EventTooLarge"
            decoder.close()

    def test_one_input(data: bytes) -> None:
        if len(data) < 5:
            return
        upstream = FORMATS[data[0] % len(FORMATS)]
        client = FORMATS[data[1] % len(FORMATS)]
        read = data[2]
        stream = data[5:]
        if data[3] % 2:
            codec(stream, read, None if data[4] == 0 else data[4] * 16)
            return
        pieces = [stream[i : i + read] for i in range(0, len(stream), read)] if read else [stream]
        try:
            adapt_and_check(upstream, client, pieces)
        except AssertionError:
            print(f"\n{upstream} -> {client}, reads of {read or 'all'}: {stream[:2000]!r}")
            raise

    atheris.Setup([sys.argv[0], *rest], test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
