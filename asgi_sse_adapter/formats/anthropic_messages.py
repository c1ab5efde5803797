"""``anthropic-messages``: Anthropic Messages streams, formats.md §2.4.

Writer contract (§13 "Messages"): an ``event:`` line equal to the JSON ``type`` on every event;
exactly one ``message_start`` first, with ``content: []`` and full ``usage``; blocks strictly
start → deltas → stop with indexes 0, 1, 2… and never more than one open; tool blocks start with
``input: {}`` and carry arguments only as ``input_json_delta``; one ``message_delta`` with the
stop reason and cumulative usage after the last stop; ``message_stop``; no ``[DONE]``.

Parallel tool calls from a source that interleaves them (Chat) are queued: a call that starts
while another call's block is open waits until that block stops, so the client never sees two
open blocks (farion1231/cc-switch#2303) and never loses an argument fragment. Text and reasoning
that arrive while a call is open or queued (a Chat upstream may send a content delta between two
argument fragments) wait in the same queue, in arrival order: stopping the call's block for them
would cut its arguments. If the stream then fails while the call is open, that content is not
shown, for the same reason (``result.response`` still holds everything read).

The error tail is the ``error`` event alone: a block the error interrupted is not stopped, since
a stopped tool_use block is a finished call. So ``visible_errors`` text, which needs a text block
of its own, is left out while a tool block is open (``MessagesWriter.error_text``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .._json import decode_strings, dumps, dumps_fallback, dumps_lenient, loads, loads_lenient
from ..content import ChoiceContent, Content, Segment
from ..parts import (
    ArgumentsRun,
    Done,
    Extension,
    Finish,
    MessageStart,
    Part,
    ReasoningDelta,
    ReasoningSignature,
    RedactedReasoning,
    RefusalDelta,
    StreamError,
    TextDelta,
    TextRun,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
    text_delta,
    tool_call_delta,
)
from . import _anthropic
from ._tool_input import ArgumentsError, ToolInputCheck, repaired
from .base import (
    CallQueue,
    Format,
    JSONReader,
    Unwritable,
    Writer,
    as_dict,
    as_int,
    as_str,
    block_strings,
    check_response,
    frame,
    frame_strings,
    string_bodies,
    strip_prefix,
)

logger = logging.getLogger("asgi_sse_adapter")

PREFIX = "msg_"
_TEXT_KINDS = ("text", "refusal")
_REASONING_KINDS = frozenset({"reasoning", "redacted_reasoning"})
_PING = frame({"type": "ping"}, "ping")
# ``frame`` of a content_block_delta (at index %d) whose delta holds one string, up to that
# string: ``_emit_string_delta`` then encodes only the string (the same bytes).
_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":'
_TEXT_DELTA = _DELTA_HEAD + b'{"type":"text_delta","text":'
_JSON_DELTA = _DELTA_HEAD + b'{"type":"input_json_delta","partial_json":'
_TEXT_PARTS = (TextDelta, RefusalDelta)  # what goes into text blocks
_TOOL_PARTS = (ToolCallStart, ToolCallDelta, ToolCallEnd)
# Finishes that cut the answer short: a call's arguments may stop short too (as Anthropic's own
# streams at ``max_tokens``).
_CUT = frozenset({"max_tokens", "context_window_exceeded"})
# What waits behind an open or queued call (``MessagesWriter._waits``).
_HELD_PARTS = (TextDelta, RefusalDelta, ReasoningDelta, ReasoningSignature, RedactedReasoning)
# A text delta's ``data`` as the API sends it (compact JSON, keys in this order) for the block at
# index %d, up to the text (see ``MessagesReader.read_data``).
_TEXT_DELTA_DATA = '{"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":'
# The same for an argument fragment of a tool block (``MessagesReader.read_data``).
_JSON_DELTA_DATA = (
    '{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":'
)
# The lines before such ``data`` as the API sends them (``MessagesReader.read_blocks``).
_DELTA_LINE = "event: content_block_delta\ndata: "


def _string_after(head: bytes, block: bytes) -> str | None:
    """The string of a block that is ``head`` (up to the string's opening quote), a JSON string's
    inside and ``"}}`` and a blank line, decoded; ``None`` for anything else. (No LF is in the
    string's body: a raw one fails to decode, so nothing but this one block is taken.)"""
    # (The length: the head's opening quote must not be the tail's closing one.)
    if not (block.startswith(head) and block.endswith(b'"}}\n\n') and len(block) >= len(head) + 5):
        return None
    try:
        # Strictly: invalid UTF-8 is the SSE decoder's to replace.
        body = block[len(head) : -5].decode()
    except UnicodeDecodeError:
        return None
    if '"' in body or "\\" in body or not body.isprintable():
        # Escapes, or a raw character JSON forbids in a string (a LF among them: another
        # line): decoded only if it is exactly one string literal, as ``read_data`` does.
        try:
            text: str = loads('"' + body + '"')  # (a whole literal parses only into a str)
        except ValueError:
            return None
        return text
    return body


_SHAPES: dict[int, tuple[str, str, str, bytes]] = {}
_SHAPES_KEPT = 64


def _text_shapes(index: int) -> tuple[str, str, str, bytes]:
    """A text delta's ``data`` up to the text for the block at ``index``, the same with the
    text's opening quote, as raw SSE lines, and those as bytes. Shared by every stream (kept for
    the first indexes only, which every stream uses: an upstream cannot grow the table), so that
    an open stream does not hold its own copies."""
    shapes = _SHAPES.get(index)
    if shapes is None:
        data = _TEXT_DELTA_DATA % index
        lines = _DELTA_LINE + data + '"'
        shapes = (data, data + '"', lines, lines.encode())
        if 0 <= index < _SHAPES_KEPT:
            _SHAPES[index] = shapes
    return shapes


class MessagesReader(JSONReader):
    """Messages events → parts. The JSON ``type`` decides (the event name is a fallback);
    ``ping`` is consumed; server-executed tool blocks become extensions, never tool calls."""

    done_ends_stream = False  # foreign to Messages: message_stop ends it

    def __init__(self) -> None:
        # block index → ("text" | "thinking" | "tool" | "other", tool index, args seen, input,
        # id)
        self._blocks: dict[int, list[Any]] = {}
        self._tools = 0
        self._tool_ids: set[str] | None = None  # made at the first tool block: most have none
        self._usage = _anthropic.UsageState()
        self._text_data = ""  # for the last text block started (see ``_text_shape``)
        self._text_open = ""  # the same with the text's opening quote
        self._text_lines = ""  # the same as raw SSE lines (``read_blocks``)
        self._text_block = b""  # the same as bytes (``read_text_block``)
        self._text_shape(0)
        # The same for the arguments of the tool block started last (``None``: the block
        # started last is no tool block), and that block's state.
        self._json_data: str | None = None
        self._json_bytes = b""  # the same as bytes with the opening quote (``""``: none)
        self._json_block: list[Any] = []

    def _text_shape(self, index: int) -> None:
        """Text deltas from now on are for the block at ``index``: their shape."""
        self._text_data, self._text_open, self._text_lines, self._text_block = _text_shapes(index)

    def read_data(self, data: str, name: str | None) -> list[Part]:
        """``read`` of an event given by its ``data`` and ``event`` fields."""
        head = self._text_data
        if data.startswith(head) and data.endswith('"}}'):
            # Most events: a text delta, recognised by its exact shape, and only its text decoded
            # (a third of the cost). Everything around the text being fixed, the text parsing as
            # one JSON string means the whole event parses into what ``_delta`` reads: the same
            # parts. Anything else (``"text":"a","more":1``, say) is read whole.
            try:
                text = loads(data[len(head) : -2])
            except ValueError:
                text = None
            if isinstance(text, str):
                return [text_delta(text)] if text else []
        json_head = self._json_data
        if json_head is not None and data.startswith(json_head) and data.endswith('"}}'):
            # An argument fragment of the tool block started last, by the same reasoning.
            try:
                partial = loads(data[len(json_head) : -2])
            except ValueError:
                partial = None
            block = self._json_block
            if isinstance(partial, str) and block[0] == "tool":
                if not partial:
                    return []
                block[2] = True
                return [tool_call_delta(block[1], partial)]
        return super().read_data(data, name)

    def read_text_block(self, block: bytes) -> str | None:
        """A text delta of the last started text block in exactly the lines the API sends
        (``event: content_block_delta``, then the ``data`` line ``read_data`` recognises), read
        straight from its bytes; ``None`` for anything else."""
        return _string_after(self._text_block, block)

    def read_arguments_block(self, block: bytes) -> ToolCallDelta | None:
        """An argument fragment of the tool block started last, the same way."""
        head = self._json_bytes
        if not head:
            return None
        fragment = _string_after(head, block)
        entry = self._json_block
        if not fragment or entry[0] != "tool":
            return None
        entry[2] = True
        return tool_call_delta(entry[1], fragment)

    def read_text_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[list[str], int]:
        """The text deltas of the last started text block from ``values[start]`` on, by the
        exact shape ``read_data`` recognises (so each reads into the same part there)."""
        texts = decode_strings(string_bodies(values, start, self._text_open, '"}}'))
        end = start + len(texts)
        return (list(filter(None, texts)) if "" in texts else texts), end

    def read_arguments_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[ArgumentsRun | None, int]:
        """The argument fragments of the tool block started last from ``values[start]`` on, by
        the exact shape ``read_data`` recognises (so each reads into the same part there)."""
        head = self._json_data
        if head is None or self._json_block[0] != "tool":
            return None, start
        fragments = decode_strings(string_bodies(values, start, head + '"', '"}}'))
        return self._arguments_run(fragments), start + len(fragments)

    def _arguments_run(self, fragments: list[str]) -> ArgumentsRun | None:
        """The run of the tool block started last for its decoded ``fragments``."""
        if "" in fragments:
            fragments = list(filter(None, fragments))
        if not fragments:
            return None
        block = self._json_block
        block[2] = True
        return ArgumentsRun(block[1], fragments)

    def read_blocks(self, text: str) -> tuple[TextRun | ArgumentsRun | None, int, int]:
        """``read_text_run`` and ``read_arguments_run`` for blocks of exactly the lines the API
        sends: ``event: content_block_delta``, then the ``data`` line they recognise."""
        texts, end = block_strings(text, self._text_lines, '"}}')
        if end:
            count = len(texts)
            if "" in texts:
                texts = list(filter(None, texts))
            return (TextRun(texts) if texts else None), count, end
        data = self._json_data
        if data is None or self._json_block[0] != "tool":
            return None, 0, 0
        fragments, end = block_strings(text, _DELTA_LINE + data + '"', '"}}')
        return (self._arguments_run(fragments) if end else None), len(fragments), end

    def read_object(self, obj: dict[str, Any], name: str | None = None) -> list[Part]:
        """Parts for one decoded event (``name``: its ``event:`` line, the fallback type)."""
        kind = as_str(obj.get("type")) or name
        if kind == "content_block_delta":
            return self._delta(obj)
        if kind == "content_block_start":
            return self._block_start(obj)
        if kind == "content_block_stop":
            return self._block_stop(obj)
        if kind == "message_delta":
            # The message is over: a tool block a relay never stopped is whole (its start
            # block's input included), as the stop would have said.
            parts: list[Part] = []
            for block in self._blocks.values():
                if block[0] == "tool":
                    self._end_tool(block, parts)
            usage = obj.get("usage")
            if isinstance(usage, dict):
                parts.append(UsageUpdate(self._usage.update(usage)))
            delta = as_dict(obj.get("delta"))
            stop = as_str(delta.get("stop_reason"))
            if stop:
                parts.append(Finish(_anthropic.stop_in(stop), as_str(delta.get("stop_sequence"))))
            return parts
        if kind == "message_start":
            message = as_dict(obj.get("message"))
            usage = message.get("usage")
            return [
                MessageStart(
                    id=strip_prefix(as_str(message.get("id")), PREFIX),
                    model=as_str(message.get("model")),
                    usage=self._usage.update(usage) if isinstance(usage, dict) else None,
                )
            ]
        if kind == "message_stop":
            return [Done()]
        if kind == "error" or name == "error":
            return [_anthropic.error_from(obj)]
        if kind != "ping":
            logger.debug("anthropic-messages reader skips event %r", (kind or "")[:60])
        return []

    def _block_start(self, obj: dict[str, Any]) -> list[Part]:
        index = as_int(obj.get("index"))
        block = as_dict(obj.get("content_block"))
        btype = as_str(block.get("type"))
        key = len(self._blocks) if index is None else index
        self._json_data = None  # a block at this index may replace the tool block there
        self._json_bytes = b""
        if btype == "text":
            self._blocks[key] = ["text"]
            if index is not None:
                self._text_shape(index)
            text = as_str(block.get("text"))
            return [TextDelta(text)] if text else []
        if btype == "thinking":
            self._blocks[key] = ["thinking"]
            parts: list[Part] = []
            thinking = as_str(block.get("thinking"))
            if thinking:
                parts.append(ReasoningDelta(thinking))
            signature = as_str(block.get("signature"))
            if signature:
                parts.append(ReasoningSignature(signature))
            return parts
        if btype == "redacted_thinking":
            self._blocks[key] = ["other"]
            return [RedactedReasoning(as_str(block.get("data")) or "")]
        if btype == "tool_use":
            tool_id = as_str(block.get("id"))
            known = self._blocks.get(key)
            if known is not None and known[0] in ("tool", "done") and known[4] == tool_id:
                logger.info("repeated tool_use block start in the upstream stream skipped")
                return []  # a relay's duplicate: the call would be run twice
            if self._tool_ids is None:
                self._tool_ids = set()
            if tool_id in self._tool_ids:
                # Clients match results to calls by id (``responses.stream()`` refuses two items
                # with one ``call_id``): the writer makes a fresh one, as for Chat upstreams.
                logger.info(
                    "tool call id %.40r repeated in the upstream stream; a new one made", tool_id
                )
                tool_id = None
            elif tool_id:
                self._tool_ids.add(tool_id)
            tool = self._tools
            self._tools += 1
            entry = self._blocks[key] = ["tool", tool, False, block.get("input"), tool_id]
            if index is not None:
                self._json_data = _JSON_DELTA_DATA % index
                self._json_bytes = _JSON_DELTA % index + b'"'
                self._json_block = entry
            return [ToolCallStart(tool, tool_id, as_str(block.get("name")) or "")]
        # server_tool_use, *_tool_result, container_upload…: executed by Anthropic, so an
        # OpenAI client must never see them as calls to run.
        self._blocks[key] = ["other"]
        return [Extension("anthropic.block", block)]

    def _delta(self, obj: dict[str, Any]) -> list[Part]:
        delta = as_dict(obj.get("delta"))
        dtype = delta.get("type")
        if dtype == "text_delta":  # most events of a stream
            text = delta.get("text")
            return [text_delta(text)] if isinstance(text, str) and text else []
        if dtype == "input_json_delta":
            block = self._blocks.get(as_int(obj.get("index")) or 0)
            partial = as_str(delta.get("partial_json"))
            if block is None or block[0] != "tool" or not partial:
                return []  # tool-result blocks carry it too (BerriAI/litellm#17254)
            block[2] = True
            return [tool_call_delta(block[1], partial)]
        if dtype == "thinking_delta":
            thinking = as_str(delta.get("thinking"))
            return [ReasoningDelta(thinking)] if thinking else []
        if dtype == "signature_delta":
            signature = as_str(delta.get("signature"))
            return [ReasoningSignature(signature)] if signature else []
        if dtype == "citations_delta":
            return [Extension("anthropic.citation", delta.get("citation"))]
        logger.debug("anthropic-messages reader skips delta %r", str(dtype)[:60])
        return []

    def _block_stop(self, obj: dict[str, Any]) -> list[Part]:
        block = self._blocks.get(as_int(obj.get("index")) or 0)
        parts: list[Part] = []
        if block is not None and block[0] == "tool":
            self._end_tool(block, parts)
        return parts

    @staticmethod
    def _end_tool(block: list[Any], parts: list[Part]) -> None:
        start_input = block[3]
        if not block[2] and isinstance(start_input, dict) and start_input:
            # Arguments that came whole in the start block (formats.md §4.1).
            parts.append(ToolCallDelta(block[1], dumps_lenient(start_input).decode()))
        parts.append(ToolCallEnd(block[1]))
        block[0] = "done"


class MessagesWriter(Writer):
    """Parts → Messages events (module docstring: the contract)."""

    def __init__(self, options: Any, content: Content) -> None:
        super().__init__(options, content)
        self._started = False
        self._next = 0
        # The open block: its kind ("text", "thinking", "tool") and, for tools, the call index.
        self._open: tuple[str, int] | None = None
        # While a text block is open: its text deltas up to the text (see ``_emit_string_delta``),
        # so that a text delta, most of a stream, costs no more than this check.
        self._text_head: bytes | None = None
        self._signed = False
        self._queued = CallQueue()  # what waits for the open call's block to stop
        self._closed_tools: set[int] = set()
        self._tool_ids: dict[int, str] = {}
        # Each call's name and the check of its arguments as they arrive (``_tool_input``).
        self._inputs: dict[int, tuple[str, ToolInputCheck]] = {}
        self._id = ""
        self._model = ""

    # -- helpers ----------------------------------------------------------------------------

    def _identity(self) -> None:
        if not self._id:
            c = self.content
            self._id = PREFIX + (c.id if c.id is not None else self.options.new_id())
            self._model = c.model if c.model is not None else "unknown"

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        self._identity()
        message: dict[str, Any] = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self._model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(),
        }
        out.append(frame({"type": "message_start", "message": message}, "message_start"))

    def _usage(self) -> dict[str, Any]:
        """The usage so far; until the upstream said any, the caller's estimate of the input:
        clients read the prompt's size from ``message_start`` (Claude Code's context meter,
        the Vercel AI SDK: 0 from an upstream that says it only at the end broke them,
        router-for-me/CLIProxyAPI#1700), and the SDK copies ``message_delta``'s over it."""
        usage = _anthropic.usage_out(self.content.usage)
        estimate = self.options.input_tokens_estimate
        if estimate is not None and not self.content.usage_reported:
            usage["input_tokens"] = estimate
        return usage

    def _block(self, kind: str, block: dict[str, Any], out: list[bytes], tool: int = -1) -> None:
        # Only the open block stops: what is queued stays queued (text and reasoning are
        # written only with nothing queued, or in their turn from the queue).
        self._close(out)
        self._start(out)
        self._open = (kind, tool)
        self._text_head = _TEXT_DELTA % self._next if kind == "text" else None
        self._signed = False
        event = {"type": "content_block_start", "index": self._next, "content_block": block}
        out.append(frame(event, "content_block_start"))

    def _emit_delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        event = {"type": "content_block_delta", "index": self._next, "delta": delta}
        out.append(frame(event, "content_block_delta"))

    def _emit_string_delta(self, head: bytes, value: str, out: list[bytes]) -> None:
        """``_emit_delta`` for the hottest deltas (text, tool arguments): the same bytes, but only
        ``value`` goes through ``dumps`` (stdlib json is slow on whole dicts)."""
        try:
            out.append(head % self._next + dumps(value) + b"}}\n\n")
        except TypeError:  # what orjson refuses (``_json``): as without it
            out.append(head % self._next + dumps_fallback(value) + b"}}\n\n")

    def _close(self, out: list[bytes]) -> None:
        """Stop the open block, if any."""
        if self._open is None:
            return
        kind, tool = self._open
        self._open = None
        self._text_head = None
        out.append(frame({"type": "content_block_stop", "index": self._next}, "content_block_stop"))
        self._next += 1
        if kind == "tool":
            self._closed_tools.add(tool)

    def _close_all(self, out: list[bytes]) -> None:
        """Stop the open block and play everything queued through, in order, to its stop."""
        self._close(out)
        while self._queued:
            self._play_next(out)
            self._close(out)

    def _advance_queue(self, out: list[bytes]) -> None:
        """After a call's block stopped, play what waited behind it in order, up to the next
        queued call, which then streams live on."""
        while self._queued and not self._tool_open():
            self._play_next(out)

    def _play_next(self, out: list[bytes]) -> None:
        call, parts = self._queued.pop()
        for part in parts:
            if call:
                self._write_tool(part, out)
            else:
                self._write_content(part, out)

    def _tool_open(self) -> bool:
        return self._open is not None and self._open[0] == "tool"

    def _waits(self) -> bool:
        """Whether text or reasoning must wait in the queue (``CallQueue``): a call is open or
        queued (an open text block means neither, at the least cost)."""
        return self._text_head is None and (bool(self._queued) or self._tool_open())

    def _text_block(self, out: list[bytes]) -> bytes:
        """Start a text block; return its ``_text_head``."""
        self._block("text", {"type": "text", "text": ""}, out)
        assert self._text_head is not None
        return self._text_head

    def _thinking(self, out: list[bytes]) -> None:
        if self._open is None or self._open[0] != "thinking" or self._signed:
            self._block("thinking", {"type": "thinking", "thinking": "", "signature": ""}, out)

    # -- Writer -----------------------------------------------------------------------------

    def write_text(self, text: str) -> bytes:
        head = self._text_head
        if head is not None:
            return head + dumps(text) + b"}}\n\n"
        return super().write_text(text)  # a text block to start first

    def write_run(self, run: TextRun | ArgumentsRun, out: list[bytes]) -> None:
        # The events ``write`` makes for each text (fragment), as one piece, the strings encoded
        # in one call.
        if run.choice != 0:
            logger.debug("anthropic-messages has no choices: choice %s dropped", run.choice)
            return
        if isinstance(run, TextRun):
            if self._waits():
                for text in run.texts:
                    self._queued.hold(text_delta(text))
                return
            head = self._text_head or self._text_block(out)
            out.append(frame_strings(head, run.texts, b"}}\n\n"))
        else:
            tool = run.index
            queued = tool in self._queued
            if not queued and self._open != ("tool", tool):
                # For a closed call: as ``write`` does each.
                for fragment in run.fragments:
                    self._write_tool(ToolCallDelta(tool, fragment), out)
                return
            strings, refused = self._checked(tool, run.fragments)
            if queued:
                for fragment in strings:
                    self._write_tool(ToolCallDelta(tool, fragment), out)
            elif strings:
                out.append(frame_strings(_JSON_DELTA % self._next, strings, b"}}\n\n"))
            if refused is not None:  # after what came before it, as event by event
                raise refused

    def write(self, part: Part, out: list[bytes]) -> None:
        if getattr(part, "choice", 0) != 0:
            logger.debug("anthropic-messages has no choices: choice %s dropped", part.choice)  # type: ignore[union-attr]
            return
        if isinstance(part, _TOOL_PARTS):
            if isinstance(part, ToolCallStart):
                self._inputs[part.index] = (part.name, ToolInputCheck())
            elif isinstance(part, ToolCallDelta) and (
                part.index in self._queued or self._open == ("tool", part.index)
            ):
                checked, refused = self._checked(part.index, (part.arguments,))
                if refused is not None:
                    raise refused
                if not checked:
                    return
                if checked[0] is not part.arguments:
                    part = tool_call_delta(part.index, checked[0], part.choice)
            self._write_tool(part, out)
        elif isinstance(part, _HELD_PARTS):
            if self._waits():
                self._queued.hold(part)
            else:
                self._write_content(part, out)
        elif isinstance(part, MessageStart):
            self._start(out)
        elif isinstance(part, Finish):
            if part.reason not in _CUT:
                self._check_complete()
            self._close_all(out)
        elif isinstance(part, Extension | UsageUpdate):
            logger.debug("anthropic-messages writer holds/skips %s", type(part).__name__)

    def _check_complete(self) -> None:
        """At a finish other than a cut: a call whose arguments stopped short of their object's
        end is ``Unwritable`` (its block is still open: ``_write_tool``). Stopped, the SDK
        would hand the tool the object's prefix as its input."""
        for name, check in self._inputs.values():
            if not check.complete:
                message = f"upstream tool call {name!r}: arguments ended before their object did"
                error = StreamError(
                    type="api_error", message=message, code="malformed_tool_arguments", status=502
                )
                raise Unwritable(error)

    def _checked(self, tool: int, fragments: Sequence[str]) -> tuple[list[str], Unwritable | None]:
        """What to send of argument fragments of call ``tool`` (``ToolInputCheck.feed``, the
        empty ones left out), and, if the arguments can no longer become a JSON object, the
        refusal to raise once the fragments before it are written: the SDK would fail on them
        by itself, with no error event (module ``_tool_input``)."""
        entry = self._inputs.get(tool)
        if entry is None:
            entry = self._inputs[tool] = ("", ToolInputCheck())
        feed = entry[1].feed
        checked: list[str] = []
        refused = None
        try:
            for fragment in fragments:
                checked.append(feed(fragment))
        except ArgumentsError as exc:
            error = StreamError(
                type="api_error",
                message=f"upstream tool call {entry[0]!r}: {exc}",
                code="malformed_tool_arguments",
                status=502,
            )
            refused = Unwritable(error, len(fragments) - len(checked) - 1)
        return (checked if all(checked) else [c for c in checked if c]), refused

    def _write_content(self, part: Part, out: list[bytes]) -> None:
        """Text, refusal or reasoning, with no call open or queued ahead of it."""
        if isinstance(part, _TEXT_PARTS):
            # ``_emit_string_delta`` with the head ready (or made once per block).
            head = self._text_head or self._text_block(out)
            try:
                out.append(head + dumps(part.text) + b"}}\n\n")
            except TypeError:  # what orjson refuses (``_json``): as without it
                out.append(head + dumps_fallback(part.text) + b"}}\n\n")
        elif isinstance(part, ReasoningDelta):
            self._thinking(out)
            self._emit_delta({"type": "thinking_delta", "thinking": part.text}, out)
        elif isinstance(part, ReasoningSignature):
            if self._open is None or self._open[0] != "thinking" or self._signed:
                self._thinking(out)
            self._emit_delta({"type": "signature_delta", "signature": part.signature}, out)
            self._signed = True
        elif isinstance(part, RedactedReasoning):
            self._block("redacted", {"type": "redacted_thinking", "data": part.data}, out)
            self._close(out)

    def _write_tool(
        self, part: ToolCallStart | ToolCallDelta | ToolCallEnd, out: list[bytes]
    ) -> None:
        tool = part.index
        open_tool = self._open[1] if self._open is not None and self._open[0] == "tool" else None
        if tool in self._queued or (isinstance(part, ToolCallStart) and open_tool is not None):
            self._queued.add_call_part(tool, part)
            return
        if isinstance(part, ToolCallStart):
            tool_id = part.id or "toolu_" + self.options.new_id()
            self._tool_ids[tool] = tool_id
            block = {"type": "tool_use", "id": tool_id, "name": part.name, "input": {}}
            self._block("tool", block, out, tool)
        elif tool != open_tool:
            if tool in self._closed_tools and isinstance(part, ToolCallDelta):
                logger.warning("arguments for an already closed tool call dropped")
        elif isinstance(part, ToolCallDelta):
            if part.arguments:
                self._emit_string_delta(_JSON_DELTA, part.arguments, out)
        elif tool not in self._inputs or self._inputs[tool][1].complete:
            self._close(out)
            self._advance_queue(out)
        # Else its arguments stopped short: the block stays open until the finish says whether
        # the call was cut (``_check_complete``).

    def end(self, out: list[bytes]) -> None:
        self._start(out)
        self._close_all(out)
        choice = self.content.choices.get(0)
        stop_reason = "end_turn"
        stop_sequence = None
        if choice is not None and choice.finish_reason is not None:
            stop_reason = self._stop_reason(choice.finish_reason, choice)
            stop_sequence = choice.stop_sequence
        delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence}
        usage = self._usage()
        out.append(
            frame({"type": "message_delta", "delta": delta, "usage": usage}, "message_delta")
        )
        out.append(frame({"type": "message_stop"}, "message_stop"))

    @staticmethod
    def _stop_reason(reason: Any, choice: ChoiceContent) -> str:
        # A tool call ending in a plain stop would not be run by Claude Code
        # (anthropics/claude-code#16785): it is a tool_use turn.
        if choice.tools and reason in ("end_turn", "stop_sequence"):
            return "tool_use"
        if reason == "tool_use" and not choice.tools:
            # (A ``tool_calls`` finish with no call in the stream: a client branching on
            # ``tool_use`` would look for a block that is not there.)
            return "end_turn"
        # OpenAI ends a refusal with a plain "stop": a turn whose only answer is a refusal is a
        # refusal (§4.2 row 8), whatever reasoning came before it (reasoning is no answer).
        if reason == "end_turn":
            kinds = {s.kind for s in choice.segments}
            if kinds - _REASONING_KINDS == {"refusal"}:
                return "refusal"
        return _anthropic.STOP_OUT[reason]

    def error_text(self, text: str, out: list[bytes]) -> None:
        if self._open is not None and self._open[0] == "tool":
            # Blocks are strictly sequential: a text block would first stop the tool block,
            # and a stopped tool_use block is a finished call (MessageStream hands it on as a
            # ToolUseBlock; Claude Code runs tools at their stop), here with cut arguments. No
            # visible text then: the error event that follows carries the message, and the
            # SDKs raise it. (Calls queued behind the open one are never started either.)
            return
        super().error_text(text, out)

    def error(self, error: StreamError, out: list[bytes]) -> None:
        out.append(_anthropic.error_event(error))
        if self.options.done_after_error:
            out.append(b"data: [DONE]\n\n")

    def keepalive(self) -> bytes | None:
        return _PING if self._started else None

    def response(self) -> dict[str, Any]:
        self._identity()
        choice = self.content.choices.get(0)
        blocks: list[dict[str, Any]] = []
        stop_reason = None
        stop_sequence = None
        if choice is not None:
            previous: Segment | None = None
            for seg in choice.segments:
                block = self._block_json(seg)
                if block is None:
                    pass
                elif (
                    previous is not None
                    and previous.kind in _TEXT_KINDS
                    and seg.kind in _TEXT_KINDS
                ):
                    # Text next to refusal text streams as one text block (``_text``).
                    blocks[-1] = {"type": "text", "text": blocks[-1]["text"] + block["text"]}
                else:
                    blocks.append(block)
                previous = seg
            if choice.finish_reason is not None:
                stop_reason = self._stop_reason(choice.finish_reason, choice)
                stop_sequence = choice.stop_sequence
        return {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": _anthropic.usage_out(self.content.usage),
        }

    def _block_json(self, seg: Segment) -> dict[str, Any] | None:
        if seg.kind in ("text", "refusal"):
            return {"type": "text", "text": seg.text}
        if seg.kind == "reasoning":
            return {"type": "thinking", "thinking": seg.text, "signature": seg.signature or ""}
        if seg.kind == "redacted_reasoning":
            return {"type": "redacted_thinking", "data": seg.data}
        if seg.kind == "tool_call":
            arguments = _arguments(seg.text)
            return {
                "type": "tool_use",
                "id": self._tool_ids.get(seg.tool_index) or seg.tool_id or "",
                "name": seg.tool_name,
                "input": arguments if isinstance(arguments, dict) else {},
            }
        return None


def _arguments(text: str) -> Any:
    """A tool call's JSON arguments decoded as the stream sent them (``repaired``; ``{}`` if
    there are none or they are no JSON), the way the standard library reads them (``_json``:
    orjson refuses a lone surrogate escape)."""
    if not text:
        return {}
    try:
        return loads_lenient(repaired(text))
    except (ValueError, RecursionError):
        return {}


def response_parts(response: dict[str, Any]) -> list[Part]:
    """A non-streamed ``message`` (or error body) as canonical parts: the stream it would have
    been, read by the same reader (a ``message_start``, each block whole, the ``message_delta``)."""
    if response.get("type") == "error" or "error" in response:
        return [_anthropic.error_from(response)]
    response = check_response(response, "content", list, "a message")
    reader = MessagesReader()
    message = {**response, "content": []}
    parts = reader.read_object({"type": "message_start", "message": message})
    content = response.get("content")
    for index, block in enumerate(content if isinstance(content, list) else []):
        block = as_dict(block)
        start = dict(block)
        if start.get("type") == "tool_use":
            start["input"] = {}
            whole = block.get("input") if isinstance(block.get("input"), dict) else {}
            partial = dumps_lenient(whole)
            delta: dict[str, Any] | None = {
                "type": "input_json_delta",
                "partial_json": partial.decode(),
            }
        else:
            delta = None
        parts += reader.read_object(
            {"type": "content_block_start", "index": index, "content_block": start}
        )
        if delta is not None:
            parts += reader.read_object(
                {"type": "content_block_delta", "index": index, "delta": delta}
            )
        parts += reader.read_object({"type": "content_block_stop", "index": index})
    stop = {
        "stop_reason": response.get("stop_reason"),
        "stop_sequence": response.get("stop_sequence"),
    }
    usage = as_dict(response.get("usage"))
    parts += reader.read_object({"type": "message_delta", "delta": stop, "usage": usage})
    parts.append(Done())
    return parts


FORMAT = Format(
    name="anthropic-messages",
    family="anthropic",
    reader=MessagesReader,
    writer=MessagesWriter,
    error_body=_anthropic.error_body,
    parse_error_body=_anthropic.parse_error_body,
    endpoint="/v1/messages",
    terminator=frame({"type": "message_stop"}, "message_stop"),
    terminator_prefixes=(b"event: message_stop", b"event:message_stop"),
    response_parts=response_parts,
)
