"""JSON in one place: orjson when installed (the ``fast`` extra), the standard library otherwise.

Both produce compact one-line JSON (what SSE ``data:`` needs, formats.md §1.1 rule 3) as UTF-8
bytes; non-ASCII characters are written as themselves.

orjson refuses some JSON the standard library reads (a lone surrogate escape such as
``"\\ud83d"``, ``NaN``, integers beyond 64 bits) and some values the standard library writes (a
lone surrogate, such integers). The client SDKs parse with the standard library, and the ``fast``
extra must not change what a stream accepts: where ``loads`` or ``dumps`` raised, callers retry
with ``loads_fallback`` / ``dumps_fallback`` (the standard library's), on that error path only,
so the usual path costs nothing more. ``loads``, ``dumps`` and the batched helpers below stay
exact mirrors of the backend (their callers decide what an error means).

Where the fallback is needed: values read by ``loads_fallback``, which only a whole event's
parse uses (``JSONReader.read_data``); the readers' shortcuts (one-event reads, runs) decode
with ``loads``, and a string ``loads`` made always encodes with ``dumps``. So ``dumps`` needs
its fallback where whole parts are written (``frame``, the writers' ``write``), not in the
shortcuts' writers (``write_text``, ``write_run``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

__all__ = [
    "BACKEND",
    "decode_strings",
    "dump_strings",
    "dumps",
    "dumps_fallback",
    "dumps_lenient",
    "load_strings",
    "loads",
    "loads_fallback",
    "loads_lenient",
]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(separators=(",", ":")).encode


def _dumps_stdlib(obj: Any) -> bytes:
    text = _encode(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate, which the stdlib reads from an upstream's "\ud83d" (with orjson,
        # the readers' ``loads_fallback``): written as its escape again, the way it came, which
        # the SDKs' stdlib parsers read back into the same string.
        return _encode_ascii(obj).encode()


dumps_fallback: Callable[[Any], bytes] = _dumps_stdlib
"""The standard library's ``dumps``: for a value ``dumps`` refused (``TypeError``)."""
loads_fallback: Callable[[str | bytes], Any] = json.loads
"""The standard library's ``loads``: for input ``loads`` refused (``ValueError``)."""

dumps: Callable[[Any], bytes]
loads: Callable[[str | bytes], Any]
try:
    import orjson

    BACKEND = "orjson"
    dumps = orjson.dumps
    loads = orjson.loads
except ImportError:  # pragma: no cover - the min env runs without the ``fast`` extra
    BACKEND = "json"
    dumps = _dumps_stdlib
    loads = json.loads


def loads_lenient(data: str | bytes) -> Any:
    """``loads``, or ``loads_fallback`` for what it refused (raising as that does): for cooler
    paths (a whole event's parse repeats this inline)."""
    try:
        return loads(data)
    except ValueError:
        return loads_fallback(data)


def dumps_lenient(obj: Any) -> bytes:
    """``dumps``, or ``dumps_fallback`` for what it refused: for the writers' cooler paths (the
    hottest repeat this inline, a call level cheaper)."""
    try:
        return dumps(obj)
    except TypeError:
        return dumps_fallback(obj)


def dump_strings(texts: Sequence[str]) -> list[bytes]:
    """``[dumps(t)[1:-1] for t in texts]`` (each string's JSON encoding without its quotes) in one
    encoder call, for writers that emit many text events at once.

    The texts are joined with NUL, which every JSON encoder writes as the escape ``\\u0000``,
    and the encoding is cut there. That is exact unless a text holds a NUL itself, or a
    backslash followed by ``u0000`` (encoded ``\\\\u0000``, which holds the cut mark): those,
    and a lone surrogate (stdlib: ``dumps`` would fall back to ASCII escapes for the whole text;
    orjson: an error), are encoded one by one, exactly as ``dumps`` alone writes each.
    """
    if not texts:
        return []
    joined = "\x00".join(texts)
    if joined.count("\x00") == len(texts) - 1 and "\\u0000" not in joined:
        try:
            # A lone surrogate: stdlib ``dumps`` would escape the whole joined text to ASCII, so
            # refuse it here (UnicodeEncodeError); orjson refuses it itself (TypeError).
            joined.encode()
            return dumps(joined)[1:-1].split(b"\\u0000")
        except (UnicodeEncodeError, TypeError):
            pass
    return [dumps(text)[1:-1] for text in texts]


def load_strings(bodies: list[str]) -> list[str] | None:
    """``[loads('"' + b + '"') for b in bodies]`` in at most one decoder call, or ``None`` where
    that is not certain to equal reading each body alone (a body that is not exactly the inside
    of one JSON string literal, or that fails to decode): the caller then reads them one by one.

    A body with no quote, no backslash and nothing ``str.isprintable`` rejects is its own text.
    Otherwise every body must end without a backslash and hold no unescaped quote (after
    removing escaped backslashes, every quote left is preceded by a backslash); then each body
    is one string literal's inside, and the bodies decode together as one JSON array.
    """
    joined = "".join(bodies)
    if '"' not in joined and "\\" not in joined and joined.isprintable():
        return bodies
    if any(map(str.endswith, bodies, repeat("\\"))):
        return None
    # Joined with a quote, which no body's end can escape now: pairs never straddle two bodies.
    bare = '"'.join(bodies).replace("\\\\", "")
    if bare.count('"') - bare.count('\\"') != len(bodies) - 1:
        return None
    try:
        texts = loads('["' + '","'.join(bodies) + '"]')
    except (ValueError, RecursionError):
        return None
    return texts if len(texts) == len(bodies) else None


def decode_strings(bodies: list[str]) -> list[str]:
    """The strings of ``bodies`` (string literals' insides) in order, up to the first that does
    not decode alone as ``loads('"' + body + '"')``, to a ``str``: ``load_strings``, or one by
    one where it cannot be certain."""
    strings = load_strings(bodies)
    if strings is not None:
        return strings
    strings = []
    for body in bodies:
        try:
            string = loads('"' + body + '"')
        except (ValueError, RecursionError):
            break
        if type(string) is not str:
            break
        strings.append(string)
    return strings
