"""JSON in one place: orjson when installed (the ``fast`` extra), the standard library otherwise.

Both produce compact one-line JSON (what SSE ``data:`` needs, formats.md §1.1 rule 3) as UTF-8
bytes; non-ASCII characters are written as themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from itertools import repeat
from typing import Any

__all__ = ["BACKEND", "decode_strings", "dump_strings", "dumps", "load_strings", "loads"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_encode_ascii = json.JSONEncoder(separators=(",", ":")).encode


def _dumps_stdlib(obj: Any) -> bytes:
    text = _encode(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate, which the stdlib reads from an upstream's "\ud83d" (orjson refuses
        # the event instead): written as its escape again, the way it came.
        return _encode_ascii(obj).encode()


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
