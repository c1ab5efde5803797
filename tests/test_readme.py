"""The README is the contract: its Python examples name only what they import or define, import
nothing they do not use, and the self-contained ones run as written."""

from __future__ import annotations

import asyncio
import builtins
import json
import re
import symtable
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from asgi_sse_adapter import SSEDecoder

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def _names(table: symtable.SymbolTable) -> tuple[set[str], set[str]]:
    """(module-level names a block reads without defining them, names it reads anywhere)."""
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    missing: set[str] = set()
    used: set[str] = set()

    def walk(scope: symtable.SymbolTable) -> None:
        for symbol in scope.get_symbols():
            name = symbol.get_name()
            if not symbol.is_referenced():
                continue
            if scope is table or symbol.is_global() or symbol.is_free():
                used.add(name)
                if name not in defined and not hasattr(builtins, name):
                    missing.add(name)
        for child in scope.get_children():
            walk(child)

    walk(table)
    return missing, used


def test_readme_has_python_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("source", BLOCKS, ids=[b.splitlines()[0][:40] for b in BLOCKS])
def test_examples_name_only_what_they_define(source: str) -> None:
    """No undefined name (a missing ``import os``), no unused import."""
    table = symtable.symtable(source, "README", "exec")
    missing, used = _names(table)
    assert missing == set()
    imported = {s.get_name() for s in table.get_symbols() if s.is_imported()}
    assert imported - used == set()


def _block(defining: str) -> dict[str, Any]:
    """Run the README block that defines ``defining``; return its namespace."""
    (source,) = [b for b in BLOCKS if f"def {defining}(" in b]
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(source, "README.md", "exec"), namespace)  # (our own README)
    return namespace


CHAT_STREAM = b"".join(
    b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
    for chunk in [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {"content": "Hello, world"}}]},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
         "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
    ]
) + b"data: [DONE]\n\n"  # fmt: skip


def test_stream_adapter_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    """The sans-IO example relays an OpenAI Chat stream, cut anywhere, as Anthropic events."""
    relay = _block("relay")["relay"]
    written: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, len(CHAT_STREAM), 7):
            yield CHAT_STREAM[at : at + 7]

    async def write(data: bytes) -> None:
        written.append(data)

    asyncio.run(relay(body(), write))
    events = SSEDecoder().feed(b"".join(written))
    assert events[0].event == "message_start"
    assert events[-1].event == "message_stop"
    text = "".join(
        json.loads(e.data)["delta"].get("text", "")
        for e in events
        if e.event == "content_block_delta"
    )
    assert text == "Hello, world"
    assert capsys.readouterr().out.startswith("complete ")


def test_codec_example_runs() -> None:
    """The codec example reads events split anywhere and tells a cut stream from a whole one."""
    read = _block("read")["read"]
    seen: list[tuple[str, str]] = []
    stream = b'\xef\xbb\xbfevent: delta\r\ndata: {"x": "\xc3\xa9"}\r\n\r\n'
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert read(pieces, lambda event, data: seen.append((event, data))) is True
    assert seen == [("delta", '{"x": "é"}')]
    assert read([b"data: cut"], lambda event, data: None) is False
