"""JSON in one place: orjson when installed (the ``fast`` extra), the standard library otherwise.

Both produce compact one-line JSON (what SSE ``data:`` needs, formats.md §1.1 rule 3) as UTF-8
bytes; non-ASCII characters are written as themselves.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "dumps", "loads"]

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
