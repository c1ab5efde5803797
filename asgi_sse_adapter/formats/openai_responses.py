"""``openai-responses``: OpenAI Responses API streams, formats.md §2.3.

Reader (§4.5, §4.7): ``response.*`` events → parts. A function call's ``call_id`` (not the
item's ``id``) becomes the canonical tool-call id; argument deltas are keyed by ``item_id``;
text, refusal, reasoning and arguments that arrive only in ``*.done`` events (or only in the
terminal ``response.output``) are emitted there, once. ``response.completed`` → ``Finish``
(``tool_use`` when any function call was seen, else ``end_turn``); ``response.incomplete`` →
``Finish`` ``max_tokens`` / ``content_filter``, never a normal stop; ``response.failed`` and
``error`` (nested ``error{}`` or flat fields) → ``StreamError``. Reasoning summary parts are
paragraphs (each under its own bold heading): they are joined with a blank line. Unknown events
are skipped.

Writer contract (§13 "Responses"): an ``event:`` line equal to ``type`` on every event;
``sequence_number`` strictly increasing from 0; ``response.created`` first, then
``response.in_progress``, the same ``resp_…`` id in every lifecycle event; every item announced
by ``output_item.added`` (``output_index`` = its position) and every content/summary part by its
``*.added`` event before any delta, one stable ``msg_…``/``fc_…``/``rs_…`` id per item; a done
event for everything opened; exactly one terminal event, held until the stream's end so late
usage is included, whose ``response.output`` holds every item in full and whose ``usage`` is
filled. Text after a reasoning item opens a message item (BerriAI/litellm#41185); a tool call
closes the open text or reasoning item. A call that starts while another call's item is still
open (interleaved parallel calls from a Chat upstream) is queued until that item closes, so
items never interleave and no argument fragment is lost; text and reasoning that arrive while a
call is open or queued (a Chat upstream's content delta between two argument fragments) wait in
the same queue, in arrival order. A call's item closes only when what follows its end shows
how: the stream's finish reason, if it comes next, says whether it was cut (``max_tokens``: its
status is ``incomplete``, so agents do not run cut arguments), anything else that it was
complete. The error tail is an ``error`` event
with nested and flat fields, then ``response.failed`` with the items so far, those still open
``incomplete``: an interrupted item gets no done event, even when ``visible_errors`` adds its
text first (in a message item of its own if the open item is a call or reasoning).

``[DONE]`` is foreign to Responses: the writer appends ``data: [DONE]`` after the error tail only
when ``WriterOptions.done_after_error`` is set explicitly (the format's default is off,
formats.md §9.3), and never after a normal end. In identity mode the adapter calls ``error``
on a writer that saw none of the passed-through events: when the content was collected
(``collect_response``) the tail reuses the upstream's response id and opens no second
response; without it the writer cannot tell, and opens one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from .._json import dumps, loads_lenient
from ..content import Content, Segment
from ..parts import (
    Done,
    Extension,
    Finish,
    FinishReason,
    MessageStart,
    Part,
    ReasoningDelta,
    RefusalDelta,
    StreamError,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Unrepresentable,
    Usage,
    UsageUpdate,
    text_delta,
)
from ..sse import SSEDecoder
from . import _openai
from .base import (
    CallQueue,
    Format,
    JSONReader,
    Writer,
    WriterOptions,
    as_dict,
    as_int,
    as_str,
    as_timestamp,
    check_response,
    frame,
    strip_prefix,
)

__all__ = [
    "FORMAT",
    "ResponsesReader",
    "ResponsesWriter",
    "response_parts",
    "usage_in",
    "usage_out",
]

logger = logging.getLogger("asgi_sse_adapter")

PREFIX = "resp_"

# Canonical reasons that end a Responses stream with ``response.incomplete`` (formats.md §5).
_INCOMPLETE: dict[FinishReason, str] = {
    "max_tokens": "max_output_tokens",
    "context_window_exceeded": "max_output_tokens",
    "content_filter": "content_filter",
    "refusal": "content_filter",
}
# Output items the client must act on (run a tool, approve an MCP call; the openai SDK's
# ``ResponseOutputItem`` union): only a Responses client can (``Unrepresentable``).
_CLIENT_ITEMS = frozenset(
    {
        "custom_tool_call",
        "computer_call",
        "local_shell_call",
        "shell_call",
        "apply_patch_call",
        "mcp_approval_request",
    }
)
# What shows a call whose end was read complete (``ResponsesWriter._settle``).
_SETTLES = (TextDelta, RefusalDelta, ReasoningDelta, ToolCallStart, ToolCallDelta, ToolCallEnd)
_INCOMPLETE_IN: dict[str, FinishReason] = {
    "max_output_tokens": "max_tokens",
    "content_filter": "content_filter",
}
# ``Response.error.code`` is an enum in the API (openai.types.responses.ResponseError).
_FAILED_CODES = frozenset(
    {
        "server_error",
        "rate_limit_exceeded",
        "invalid_prompt",
        "vector_store_timeout",
        "invalid_image",
        "invalid_image_format",
        "invalid_base64_image",
        "invalid_image_url",
        "image_too_large",
        "image_too_small",
        "image_parse_error",
        "image_content_policy_violation",
        "invalid_image_mode",
        "image_file_too_large",
        "unsupported_image_media_type",
        "empty_image_file",
        "failed_to_download_image",
        "image_file_not_found",
    }
)


# -- usage ------------------------------------------------------------------------------------


def usage_in(obj: dict[str, Any]) -> Usage:
    """A Responses usage object (``input_tokens`` includes cached, ``output_tokens`` reasoning)."""
    details_in = as_dict(obj.get("input_tokens_details"))
    details_out = as_dict(obj.get("output_tokens_details"))
    return Usage(
        input_tokens=as_int(obj.get("input_tokens")),
        output_tokens=as_int(obj.get("output_tokens")),
        cache_read_tokens=as_int(details_in.get("cached_tokens")),
        cache_write_tokens=as_int(details_in.get("cache_write_tokens")),
        reasoning_tokens=as_int(details_out.get("reasoning_tokens")),
    )


def usage_out(usage: Usage) -> dict[str, Any]:
    """A canonical usage as a Responses usage object, every field present (openai-python's
    ``ResponseUsage`` requires the details objects, ``cache_write_tokens`` included)."""
    input_tokens = usage.input_tokens or 0
    output_tokens = usage.output_tokens or 0
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens or 0,
            "cache_write_tokens": usage.cache_write_tokens or 0,
        },
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": input_tokens + output_tokens,
    }


def _error_in(obj: dict[str, Any]) -> StreamError:
    """An ``error`` event (nested ``error{}``, as the live API sends it, or the documented flat
    fields) or a failed response's ``error`` object as a ``StreamError``."""
    inner = obj.get("error")
    err = inner if isinstance(inner, dict) else obj
    code = as_str(err.get("code")) or as_str(obj.get("code"))
    message = as_str(err.get("message")) or as_str(obj.get("message"))
    type_ = as_str(err.get("type")) if err is inner else None
    if not type_ or type_ == "error":
        type_ = "rate_limit_error" if code == "rate_limit_exceeded" else "api_error"
    return StreamError(type=type_, message=message or "upstream error", code=code)


# -- reader -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Seen:
    """What the reader knows about one upstream output item."""

    type: str
    tool: int = -1  # canonical tool index once started
    name: str = ""
    call_id: str | None = None
    args_seen: bool = False
    pending: list[str] = field(default_factory=list)
    ended: bool = False
    done: bool = False


class ResponsesReader(JSONReader):
    """Responses events → parts (module docstring). The JSON ``type`` decides; the ``event:``
    name is a fallback. Lenient about missing ids, wrong types and events it does not know."""

    done_ends_stream = False  # foreign to Responses: the terminal event says how it ended

    def __init__(self) -> None:
        self._started = False
        self._items: dict[str, _Seen] = {}
        self._by_index: dict[int, str] = {}
        self._tools = 0
        # (item key, kind, part index) whose text already reached the canonical stream.
        self._streamed: set[tuple[str, str, int]] = set()

    def read_object(self, obj: dict[str, Any], event: str | None = None) -> list[Part]:
        kind = as_str(obj.get("type")) or event or ""
        parts: list[Part] = []
        if kind in ("response.created", "response.in_progress", "response.queued"):
            self._start(as_dict(obj.get("response")), parts)
        elif kind == "response.output_text.delta":
            self._delta(obj, "text", "content_index", parts)
        elif kind == "response.function_call_arguments.delta":
            self._arguments(obj, parts)
        elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
            index_key = "summary_index" if "summary" in kind else "content_index"
            self._delta(obj, "summary" if "summary" in kind else "reasoning", index_key, parts)
        elif kind == "response.refusal.delta":
            self._delta(obj, "refusal", "content_index", parts)
        elif kind == "response.output_item.added":
            self._item_added(obj, parts)
        elif kind == "response.output_item.done":
            self._item_done(obj, parts)
        elif kind == "response.output_text.done":
            self._late(
                self._key(obj), "text", as_int(obj.get("content_index")), obj.get("text"), parts
            )
        elif kind == "response.refusal.done":
            self._late(
                self._key(obj),
                "refusal",
                as_int(obj.get("content_index")),
                obj.get("refusal"),
                parts,
            )
        elif kind == "response.reasoning_summary_text.done":
            self._late(
                self._key(obj), "summary", as_int(obj.get("summary_index")), obj.get("text"), parts
            )
        elif kind == "response.reasoning_text.done":
            self._late(
                self._key(obj),
                "reasoning",
                as_int(obj.get("content_index")),
                obj.get("text"),
                parts,
            )
        elif kind in ("response.content_part.done", "response.reasoning_summary_part.done"):
            part = as_dict(obj.get("part"))
            ptype = as_str(part.get("type"))
            late = _PART_KINDS.get(ptype or "")
            if late is not None:
                index_key = "summary_index" if "summary" in kind else "content_index"
                text = part.get("refusal" if ptype == "refusal" else "text")
                self._late(self._key(obj), late, as_int(obj.get(index_key)), text, parts)
        elif kind == "response.function_call_arguments.done":
            self._arguments_done(obj, parts)
        elif kind in ("response.completed", "response.incomplete"):
            self._terminal(kind, as_dict(obj.get("response")), parts)
        elif kind == "response.failed":
            response = as_dict(obj.get("response"))
            error = response.get("error")
            if isinstance(error, dict):
                parts.append(_error_in({"error": error}))
            else:
                parts.append(StreamError("api_error", "upstream response failed"))
        elif kind == "error" or event == "error":
            parts.append(_error_in(obj))
        elif kind == "response.output_text.annotation.added":
            parts.append(Extension("openai.annotation", obj.get("annotation")))
        else:
            # content_part.added, reasoning_summary_part.added, built-in tool progress events…
            logger.debug("openai-responses reader skips event %r", kind[:60])
        return parts

    def read_response(self, response: dict[str, Any]) -> list[Part]:
        """A non-streamed ``response`` object (or an OpenAI error body) as parts."""
        parts: list[Part] = []
        status = response.get("status")
        if response.get("object") != "response" and isinstance(response.get("error"), dict):
            parts.append(_openai.error_from(response))
        elif status == "failed":
            error = response.get("error")
            parts.append(
                _error_in({"error": error})
                if isinstance(error, dict)
                else StreamError("api_error", "upstream response failed")
            )
        elif status in ("queued", "in_progress"):
            # A background response that has not finished: nothing to translate yet.
            parts.append(StreamError("api_error", f"upstream response is still {status}"))
        else:
            kind = "response.incomplete" if status == "incomplete" else "response.completed"
            self._terminal(kind, response, parts)
        return parts

    # -- helpers ------------------------------------------------------------------------------

    def _start(self, response: dict[str, Any], parts: list[Part]) -> None:
        if self._started:
            return
        self._started = True
        parts.append(
            MessageStart(
                id=strip_prefix(as_str(response.get("id")), PREFIX),
                model=as_str(response.get("model")),
                created=as_timestamp(response.get("created_at")),
            )
        )

    def _key(self, obj: dict[str, Any]) -> str:
        """The item an event refers to: its ``item_id``, else its ``output_index``."""
        item_id = as_str(obj.get("item_id"))
        if item_id is not None and item_id in self._items:
            return item_id
        index = as_int(obj.get("output_index"))
        if index is not None and index in self._by_index:
            return self._by_index[index]
        return item_id if item_id is not None else f"#{index}"

    def _delta(self, obj: dict[str, Any], kind: str, index_key: str, parts: list[Part]) -> None:
        text = as_str(obj.get("delta"))
        if not text:
            return
        mark = (self._key(obj), kind, as_int(obj.get(index_key)) or 0)
        if mark not in self._streamed:
            self._open_part(mark, parts)
        parts.append(_text_part(kind, text))

    def _late(self, key: str, kind: str, index: int | None, text: Any, parts: list[Part]) -> None:
        """Text that only a done event carries: emit it unless its deltas already came."""
        mark = (key, kind, index or 0)
        if mark in self._streamed or not isinstance(text, str) or not text:
            return
        self._open_part(mark, parts)
        parts.append(_text_part(kind, text))

    def _open_part(self, mark: tuple[str, str, int], parts: list[Part]) -> None:
        """The first text of a part: a summary part after another of its item starts a new
        paragraph."""
        key, kind, index = mark
        if kind == "summary" and index > 0 and (key, kind, index - 1) in self._streamed:
            parts.append(_text_part(kind, "\n\n"))
        self._streamed.add(mark)

    def _register(self, item: dict[str, Any], index: int | None) -> tuple[str, _Seen]:
        key = as_str(item.get("id")) or f"#{index}"
        seen = self._items.get(key)
        if seen is None:
            seen = self._items[key] = _Seen(as_str(item.get("type")) or "")
        if index is not None:
            self._by_index.setdefault(index, key)
        return key, seen

    def _item_added(self, obj: dict[str, Any], parts: list[Part]) -> None:
        item = as_dict(obj.get("item"))
        _, seen = self._register(item, as_int(obj.get("output_index")))
        if seen.type == "function_call":
            seen.call_id = seen.call_id or as_str(item.get("call_id"))
            seen.name = seen.name or as_str(item.get("name")) or ""
            self._start_tool(seen, parts)
            arguments = as_str(item.get("arguments"))
            if arguments:
                self._tool_args(seen, arguments, parts)

    def _start_tool(self, seen: _Seen, parts: list[Part], force: bool = False) -> None:
        """Start the call once its name is known (or at its end, named or not)."""
        if seen.tool >= 0 or not (seen.name or force):
            return
        if not seen.name:
            logger.info("function call without a name in the upstream stream; name left empty")
        seen.tool = self._tools
        self._tools += 1
        parts.append(ToolCallStart(seen.tool, seen.call_id, seen.name))
        if seen.pending:
            parts.append(ToolCallDelta(seen.tool, "".join(seen.pending)))
            seen.pending.clear()

    def _tool_args(self, seen: _Seen, arguments: str, parts: list[Part]) -> None:
        seen.args_seen = True
        if seen.tool >= 0:
            parts.append(ToolCallDelta(seen.tool, arguments))
        else:
            seen.pending.append(arguments)

    def _tool(self, obj: dict[str, Any]) -> _Seen:
        key = self._key(obj)
        seen = self._items.get(key)
        if seen is None:  # deltas for an item that was never announced
            seen = self._items[key] = _Seen("function_call")
            index = as_int(obj.get("output_index"))
            if index is not None:
                self._by_index.setdefault(index, key)
        if not seen.name:
            seen.name = as_str(obj.get("name")) or ""
        return seen

    def _arguments(self, obj: dict[str, Any], parts: list[Part]) -> None:
        delta = as_str(obj.get("delta"))
        if delta:
            self._tool_args(self._tool(obj), delta, parts)

    def _arguments_done(self, obj: dict[str, Any], parts: list[Part]) -> None:
        seen = self._tool(obj)
        self._start_tool(seen, parts)
        arguments = as_str(obj.get("arguments"))
        if not seen.args_seen and arguments:
            # Arguments only in the done event (BerriAI/litellm#27144, Gitlawb/openclaude#1259).
            self._tool_args(seen, arguments, parts)

    def _item_done(self, obj: dict[str, Any], parts: list[Part]) -> None:
        item = as_dict(obj.get("item"))
        key, seen = self._register(item, as_int(obj.get("output_index")))
        if seen.done:
            return
        seen.done = True
        self._item_content(key, seen, item, parts)

    def _item_content(self, key: str, seen: _Seen, item: dict[str, Any], parts: list[Part]) -> None:
        """Whatever a finished item holds that its deltas did not bring."""
        if seen.type == "message":
            content = item.get("content")
            for k, part in enumerate(content if isinstance(content, list) else []):
                part = as_dict(part)
                ptype = as_str(part.get("type")) or ""
                if ptype in ("output_text", "refusal"):
                    text = part.get("refusal" if ptype == "refusal" else "text")
                    self._late(key, _PART_KINDS[ptype], k, text, parts)
        elif seen.type == "function_call":
            seen.call_id = seen.call_id or as_str(item.get("call_id"))
            seen.name = seen.name or as_str(item.get("name")) or ""
            self._start_tool(seen, parts, force=True)
            arguments = as_str(item.get("arguments"))
            if not seen.args_seen and arguments:
                self._tool_args(seen, arguments, parts)
            if not seen.ended:
                seen.ended = True
                parts.append(ToolCallEnd(seen.tool))
        elif seen.type == "reasoning":
            for kind, field_name in (("summary", "summary"), ("reasoning", "content")):
                entries = item.get(field_name)
                for k, entry in enumerate(entries if isinstance(entries, list) else []):
                    self._late(key, kind, k, as_dict(entry).get("text"), parts)
            encrypted = as_str(item.get("encrypted_content"))
            if encrypted:
                # Valid only for OpenAI: kept for writers that can carry it, never re-encoded.
                data = {"id": as_str(item.get("id")), "encrypted_content": encrypted}
                parts.append(Extension("openai.reasoning_encrypted", data))
        elif seen.type in _CLIENT_ITEMS:
            name = as_str(item.get("name")) or as_str(item.get("server_label"))
            parts.append(Unrepresentable(f"a {seen.type} item{f' ({name})' if name else ''}"))
        else:
            # Built-in tools (web_search_call, file_search_call, mcp_call…) ran on OpenAI's side:
            # an extension, never a call for the client to run.
            parts.append(Extension("openai.output_item", item))

    def _terminal(self, kind: str, response: dict[str, Any], parts: list[Part]) -> None:
        self._start(response, parts)
        output = response.get("output")
        for position, item in enumerate(output if isinstance(output, list) else []):
            # Items the stream never showed (a backend that sends only the terminal event).
            item = as_dict(item)
            key = as_str(item.get("id")) or f"#{position}"
            if key not in self._items and position not in self._by_index:
                key, seen = self._register(item, position)
                if seen.type == "function_call":
                    seen.call_id = as_str(item.get("call_id"))
                    seen.name = as_str(item.get("name")) or ""
                seen.done = True
                self._item_content(key, seen, item, parts)
        had_calls = False
        for seen in self._items.values():
            if seen.type != "function_call":
                continue
            had_calls = True
            self._start_tool(seen, parts, force=True)
            if not seen.ended:
                seen.ended = True
                parts.append(ToolCallEnd(seen.tool))
        if kind == "response.incomplete":
            reason = as_str(as_dict(response.get("incomplete_details")).get("reason")) or ""
            finish = _INCOMPLETE_IN.get(reason)
            if finish is None:
                # Still cut short: never a normal stop.
                logger.info("unknown incomplete reason %r treated as max_tokens", reason[:40])
                finish = "max_tokens"
        else:
            finish = "tool_use" if had_calls else "end_turn"
        if isinstance(output, list):
            # The response object itself, for a Responses client (identity): its item ids,
            # encrypted reasoning and request echoes are the upstream's (formats.md §11).
            parts.append(Extension(RESPONSE_EXTENSION, response))
        parts.append(Finish(finish))
        usage = response.get("usage")
        if isinstance(usage, dict):
            parts.append(UsageUpdate(usage_in(usage)))
        parts.append(Done())


_PART_KINDS = {"output_text": "text", "refusal": "refusal", "summary_text": "summary"}
# The ``Extension`` holding a terminal event's whole response object.
RESPONSE_EXTENSION = "openai.response"


def _text_part(kind: str, text: str) -> Part:
    if kind == "text":
        return TextDelta(text)
    if kind == "refusal":
        return RefusalDelta(text)
    return ReasoningDelta(text)


# -- writer -----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    """One content part of a message item (``output_text``/``refusal``) or a reasoning item's
    summary part (``summary_text``): the canonical segments whose text it shows."""

    type: str
    segments: list[Segment]

    @property
    def text(self) -> str:
        return "".join(s.text for s in self.segments)

    def json(self) -> dict[str, Any]:
        if self.type == "refusal":
            return {"type": "refusal", "refusal": self.text}
        if self.type == "summary_text":
            return {"type": "summary_text", "text": self.text}
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": self.text}

    def empty(self) -> dict[str, Any]:
        if self.type == "refusal":
            return {"type": "refusal", "refusal": ""}
        if self.type == "summary_text":
            return {"type": "summary_text", "text": ""}
        return {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}


@dataclass(slots=True)
class _Item:
    """One output item as the client sees it."""

    type: str  # "message" | "reasoning" | "function_call"
    id: str
    index: int
    parts: list[_Part] = field(default_factory=list)
    call: Segment | None = None
    call_id: str = ""
    tool: int = -1
    status: str = "in_progress"

    def json(self, status: str | None = None) -> dict[str, Any]:
        status = status or self.status
        if self.type == "message":
            content = [p.json() for p in self.parts]
            return {
                "id": self.id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": content,
            }
        if self.type == "reasoning":
            return {"id": self.id, "type": "reasoning", "summary": [p.json() for p in self.parts]}
        assert self.call is not None
        return {
            "id": self.id,
            "type": "function_call",
            "status": status,
            "arguments": self.call.text or "{}",
            "call_id": self.call_id,
            "name": self.call.tool_name,
        }


_ITEM_PREFIX = {"message": "msg_", "reasoning": "rs_", "function_call": "fc_"}
_TEXT_DELTA = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta",'
    b'"sequence_number":'
)
_TEXT_TAIL = b',"logprobs":[]}\n\n'


class ResponsesWriter(Writer):
    """Parts → Responses events (module docstring: the contract)."""

    def __init__(self, options: WriterOptions, content: Content) -> None:
        super().__init__(options, content)
        self._seq = 0
        self._started = False
        self._id = ""
        self._created = 0
        self._model = ""
        self._items: list[_Item] = []
        self._open: _Item | None = None
        self._close_status = "completed"
        # What waits for the open call's item to close; held content with its segment.
        self._queued = CallQueue()
        self._replaying: Segment | None = None  # the held part's segment while it is played
        # The open call's end was read; its item closes on the next part (see the docstring).
        self._closing = False
        self._closed_tools: set[int] = set()
        self._final: dict[str, Any] | None = None
        self._derived_ids: list[str] = []
        # ``write_text``'s event for the text part it last wrote to: the part, and the bytes
        # between the sequence number and the text.
        self._text_part: _Part | None = None
        self._text_fields = b""

    # -- events -------------------------------------------------------------------------------

    def _emit(self, type_: str, fields: dict[str, Any], out: list[bytes]) -> None:
        out.append(frame({"type": type_, "sequence_number": self._seq, **fields}, type_))
        self._seq += 1

    def _identity(self) -> None:
        if self._id:
            return
        c = self.content
        self._id = PREFIX + (c.id if c.id is not None else self.options.new_id())
        self._created = c.created if c.created is not None else self.options.now()
        self._model = c.model if c.model is not None else "unknown"

    def _response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._identity()
        return {
            "id": self._id,
            "object": "response",
            "created_at": self._created,
            "status": status,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": None,
            "metadata": {},
            "model": self._model,
            "output": output,
            "parallel_tool_calls": True,
            "temperature": None,
            "tool_choice": "auto",
            "tools": [],
            "top_p": None,
            "usage": usage,
        }

    def _start(self, out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        response = self._response("in_progress", [])
        self._emit("response.created", {"response": response}, out)
        self._emit("response.in_progress", {"response": response}, out)

    # -- items --------------------------------------------------------------------------------

    def _new_item(self, type_: str, out: list[bytes], **extra: Any) -> _Item:
        self._start(out)
        item = _Item(type_, _ITEM_PREFIX[type_] + self.options.new_id(), len(self._items), **extra)
        self._items.append(item)
        self._open = item
        if type_ == "message":
            added: dict[str, Any] = {
                "id": item.id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        elif type_ == "reasoning":
            added = {"id": item.id, "type": "reasoning", "summary": []}
        else:
            assert item.call is not None
            added = {
                "id": item.id,
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": item.call_id,
                "name": item.call.tool_name,
            }
        self._emit("response.output_item.added", {"output_index": item.index, "item": added}, out)
        return item

    def _add_part(self, item: _Item, type_: str, seg: Segment, out: list[bytes]) -> _Part:
        part = _Part(type_, [seg])
        item.parts.append(part)
        where = {"item_id": item.id, "output_index": item.index}
        if type_ == "summary_text":
            fields = {**where, "summary_index": len(item.parts) - 1, "part": part.empty()}
            self._emit("response.reasoning_summary_part.added", fields, out)
        else:
            fields = {**where, "content_index": len(item.parts) - 1, "part": part.empty()}
            self._emit("response.content_part.added", fields, out)
        return part

    def _close_part(self, item: _Item, k: int, out: list[bytes]) -> None:
        part = item.parts[k]
        text = part.text
        where = {"item_id": item.id, "output_index": item.index}
        if part.type == "summary_text":
            self._emit(
                "response.reasoning_summary_text.done",
                {**where, "summary_index": k, "text": text},
                out,
            )
            fields = {**where, "summary_index": k, "part": part.json()}
            self._emit("response.reasoning_summary_part.done", fields, out)
            return
        if part.type == "refusal":
            fields = {**where, "content_index": k, "refusal": text}
            self._emit("response.refusal.done", fields, out)
        else:
            fields = {**where, "content_index": k, "text": text, "logprobs": []}
            self._emit("response.output_text.done", fields, out)
        self._emit(
            "response.content_part.done", {**where, "content_index": k, "part": part.json()}, out
        )

    def _close(self, out: list[bytes]) -> None:
        """Finish the open item: its parts' done events, then ``output_item.done``."""
        item = self._open
        if item is None:
            return
        self._open = None
        if item.type == "function_call":
            assert item.call is not None
            self._closed_tools.add(item.tool)
            where = {"item_id": item.id, "output_index": item.index}
            if not item.call.text:
                # Clients json.loads the arguments: "{}" rather than nothing.
                self._emit("response.function_call_arguments.delta", {**where, "delta": "{}"}, out)
            fields = {**where, "arguments": item.call.text or "{}", "name": item.call.tool_name}
            self._emit("response.function_call_arguments.done", fields, out)
        elif item.parts:  # message or reasoning: only the last part is still open
            self._close_part(item, len(item.parts) - 1, out)
        item.status = self._close_status
        fields = {"output_index": item.index, "item": item.json()}
        self._emit("response.output_item.done", fields, out)

    def _close_all(self, out: list[bytes]) -> None:
        """Finish the open item and play everything queued through, in order, to its end."""
        self._closing = False
        self._close(out)
        while self._queued:
            self._play_next(out)
            self._closing = False
            self._close(out)

    def _advance_queue(self, out: list[bytes]) -> None:
        """After a call's item closed, play what waited behind it in order, up to the next
        queued call, which then streams live on."""
        while self._queued and not self._call_open():
            self._play_next(out)

    def _play_next(self, out: list[bytes]) -> None:
        call, entries = self._queued.pop()
        if call:
            for part in entries:
                self._write_tool(part, out)
        else:
            self._play_held(entries, out)

    def _play_held(self, entries: list[Any], out: list[bytes]) -> None:
        """Held content, each part written with the segment it belonged to."""
        for part, seg in entries:
            self._replaying = seg
            self._write_content(part, out)
        self._replaying = None

    def _interrupt(self, out: list[bytes]) -> None:
        """The stream fails. A call whose end was read was complete: it closes as such. An
        open call stays unfinished (no done event; "incomplete" in ``response.failed``: its
        done events would present cut arguments as complete), and the content held behind it
        goes out after it, in items of its own, without closing it. Calls queued behind it
        were never announced and are not now."""
        while self._closing:  # (settling plays the next queued call, whose end may be read)
            self._settle(out)
        if self._call_open():
            self._open = None
        while self._queued:
            call, entries = self._queued.pop()
            if not call:
                self._play_held(entries, out)

    def _call_open(self) -> bool:
        return self._open is not None and self._open.type == "function_call"

    def _settle(self, out: list[bytes]) -> None:
        """The open call's end was followed by more content: it was complete."""
        self._closing = False
        self._close(out)
        self._advance_queue(out)

    def _segment(self) -> Segment:
        if self._replaying is not None:
            return self._replaying
        return self.content.choice(0).segments[-1]

    def _content(self, type_: str, out: list[bytes]) -> tuple[_Item, int]:
        """The open message item and the index of its current ``type_`` part, opened on demand."""
        seg = self._segment()
        item = self._open
        if item is None or item.type != "message":
            self._close(out)  # (nothing is queued: content waits behind calls, ``_hold``)
            item = self._new_item("message", out)
        last = item.parts[-1] if item.parts else None
        if last is None or last.type != type_:
            if last is not None:
                self._close_part(item, len(item.parts) - 1, out)
            self._add_part(item, type_, seg, out)
        elif last.segments[-1] is not seg:
            last.segments.append(seg)
        return item, len(item.parts) - 1

    def _reasoning(self, out: list[bytes]) -> _Item:
        seg = self._segment()
        item = self._open
        previous = item.parts[-1].segments[-1] if item is not None and item.parts else None
        if (
            item is None
            or item.type != "reasoning"
            or previous is None
            or (previous is not seg and previous.signature is not None)
        ):
            # A signed segment ended a reasoning block: the next one is a new item.
            self._close(out)
            item = self._new_item("reasoning", out)
            self._add_part(item, "summary_text", seg, out)
        elif previous is not seg:
            item.parts[-1].segments.append(seg)
        return item

    # -- Writer -------------------------------------------------------------------------------

    def write_text(self, text: str) -> bytes:
        # ``write``'s ``output_text`` delta while the text goes on in the open text part (the
        # same segment): the event's bytes around the sequence number and the text are kept.
        item = self._open
        if text and item is not None and item.parts:
            part = item.parts[-1]
            if part is self._text_part and part.segments[-1] is self._segment():
                seq = self._seq
                self._seq = seq + 1
                return b"".join(
                    (_TEXT_DELTA, str(seq).encode(), self._text_fields, dumps(text), _TEXT_TAIL)
                )
        out: list[bytes] = []
        self.write(text_delta(text), out)
        item = self._open
        if text and item is not None and item.type == "message" and item.parts:
            part = item.parts[-1]
            if part.type == "output_text":
                self._text_part = part
                self._text_fields = (
                    b',"item_id":'
                    + dumps(item.id)
                    + b',"output_index":'
                    + dumps(item.index)
                    + b',"content_index":'
                    + dumps(len(item.parts) - 1)
                    + b',"delta":'
                )
        return b"".join(out)

    def write(self, part: Part, out: list[bytes]) -> None:
        if getattr(part, "choice", 0) != 0:
            logger.debug("openai-responses has no choices: choice %s dropped", part.choice)  # type: ignore[union-attr]
            return
        if self._closing and isinstance(part, _SETTLES):
            self._settle(out)
        if isinstance(part, TextDelta | RefusalDelta | ReasoningDelta):
            if self._queued or self._call_open():
                self._queued.hold((part, self._segment()))
            else:
                self._write_content(part, out)
        elif isinstance(part, ToolCallStart | ToolCallDelta | ToolCallEnd):
            self._write_tool(part, out)
        elif isinstance(part, MessageStart):
            self._start(out)
        elif isinstance(part, Finish):
            if part.reason in _INCOMPLETE:
                self._close_status = "incomplete"
            self._close_all(out)
        else:
            # UsageUpdate is held for the terminal event; signatures, redacted reasoning and
            # extensions belong to other providers or have no Responses event.
            logger.debug("openai-responses writer holds/skips %s", type(part).__name__)

    def _write_content(
        self, part: TextDelta | RefusalDelta | ReasoningDelta, out: list[bytes]
    ) -> None:
        """Text, refusal or reasoning, with no call open or queued ahead of it."""
        if not part.text:
            return
        if isinstance(part, ReasoningDelta):
            item = self._reasoning(out)
            fields = {
                "item_id": item.id,
                "output_index": item.index,
                "summary_index": len(item.parts) - 1,
                "delta": part.text,
            }
            self._emit("response.reasoning_summary_text.delta", fields, out)
            return
        refusal = isinstance(part, RefusalDelta)
        item, k = self._content("refusal" if refusal else "output_text", out)
        where = {"item_id": item.id, "output_index": item.index, "content_index": k}
        if refusal:
            self._emit("response.refusal.delta", {**where, "delta": part.text}, out)
        else:
            fields = {**where, "delta": part.text, "logprobs": []}
            self._emit("response.output_text.delta", fields, out)

    def _write_tool(
        self, part: ToolCallStart | ToolCallDelta | ToolCallEnd, out: list[bytes]
    ) -> None:
        tool = part.index
        open_item = self._open
        open_tool = (
            open_item.tool if open_item is not None and open_item.type == "function_call" else None
        )
        if tool in self._queued or (isinstance(part, ToolCallStart) and open_tool is not None):
            self._queued.add_call_part(tool, part)
            return
        if isinstance(part, ToolCallStart):
            seg = self.content.choice(0).tools.get(tool)
            if seg is None:  # pragma: no cover - the adapter adds every part to content first
                return
            self._close(out)  # a tool call closes the open text or reasoning item
            call_id = part.id or "call_" + self.options.new_id()
            self._new_item("function_call", out, call=seg, call_id=call_id, tool=tool)
        elif tool != open_tool:
            if tool in self._closed_tools and isinstance(part, ToolCallDelta):
                logger.warning("arguments for an already closed function call dropped")
        elif isinstance(part, ToolCallDelta):
            if part.arguments:
                assert open_item is not None
                fields = {
                    "item_id": open_item.id,
                    "output_index": open_item.index,
                    "delta": part.arguments,
                }
                self._emit("response.function_call_arguments.delta", fields, out)
        else:
            self._closing = True  # closed by what comes next (``write``)

    def end(self, out: list[bytes]) -> None:
        self._start(out)
        self._close_all(out)
        choice = self.content.choices.get(0)
        reason = choice.finish_reason if choice is not None else None
        incomplete = _INCOMPLETE.get(reason) if reason is not None else None
        # No usage is no usage (an Anthropic Text upstream has none): ``null``, as Responses
        # allows, rather than counts of 0 that billing would take at their word.
        usage = usage_out(self.content.usage) if self.content.usage_reported else None
        output = [item.json() for item in self._items]
        if incomplete is None:
            self._final = self._response("completed", output, usage)
            self._emit("response.completed", {"response": self._final}, out)
        else:
            details = {"reason": incomplete}
            self._final = self._response("incomplete", output, usage, incomplete=details)
            self._emit("response.incomplete", {"response": self._final}, out)

    def error_text(self, text: str, out: list[bytes]) -> None:
        self._interrupt(out)
        if self._open is not None and self._open.type != "message":
            # The text goes into a message item of its own, after the open reasoning item.
            self._open = None
        super().error_text(text, out)

    def error(self, error: StreamError, out: list[bytes]) -> None:
        self._interrupt(out)
        if not self._started and self.content.id is None:
            self._start(out)  # nothing reached the client yet: open the response first
        # (Content known but nothing written: identity mode, where the upstream's own
        # ``response.created`` already went through.)
        nested = _openai.error_object(error)
        fields = {
            "error": nested,
            "code": nested["code"],
            "message": nested["message"],
            "param": nested["param"],
        }
        self._emit("error", fields, out)
        code = nested["code"] if nested["code"] in _FAILED_CODES else None
        if code is None:
            code = "rate_limit_exceeded" if error.type == "rate_limit_error" else "server_error"
        usage = usage_out(self.content.usage) if self.content.usage_reported else None
        failed = {"code": code, "message": error.message}
        self._final = self._response("failed", self._output("incomplete"), usage, error=failed)
        self._emit("response.failed", {"response": self._final}, out)
        if self.options.done_after_error:
            out.append(b"data: [DONE]\n\n")

    def keepalive(self) -> bytes | None:
        if not (self.options.native_keepalive and self._started) or self._final is not None:
            return None
        out: list[bytes] = []
        self._emit("response.in_progress", {"response": self._response("in_progress", [])}, out)
        return out[0]

    # -- final response -----------------------------------------------------------------------

    def _output(self, open_status: str) -> list[dict[str, Any]]:
        """Every item so far, in full (items still open get ``open_status``)."""
        items = self._items if self._items or self._started else self._derive()
        return [i.json(open_status if i.status == "in_progress" else None) for i in items]

    def _derive(self) -> list[_Item]:
        """Items grouped from the accumulated content by the writer's own rules (identity mode:
        the writer saw no parts). Ids are made once per item and kept across calls."""
        choice = self.content.choices.get(0)
        items: list[_Item] = []
        for seg in choice.segments if choice is not None else []:
            last = items[-1] if items else None
            if seg.kind in ("text", "refusal"):
                type_ = "output_text" if seg.kind == "text" else "refusal"
                if last is None or last.type != "message":
                    last = self._derived("message", items)
                if last.parts and last.parts[-1].type == type_:
                    last.parts[-1].segments.append(seg)
                else:
                    last.parts.append(_Part(type_, [seg]))
            elif seg.kind == "reasoning":
                previous = last.parts[-1].segments[-1] if last is not None and last.parts else None
                if (
                    last is None
                    or last.type != "reasoning"
                    or previous is None
                    or previous.signature is not None
                ):
                    last = self._derived("reasoning", items)
                    last.parts.append(_Part("summary_text", [seg]))
                else:
                    last.parts[-1].segments.append(seg)
            elif seg.kind == "tool_call":
                item = self._derived("function_call", items)
                item.call = seg
                item.call_id = seg.tool_id or "call_" + item.id[len("fc_") :]
                item.tool = seg.tool_index
        status = "completed" if self.content.finished else "in_progress"
        for item in items:
            item.status = status
        return items

    def _derived(self, type_: str, items: list[_Item]) -> _Item:
        k = len(items)
        if k == len(self._derived_ids):
            self._derived_ids.append(self.options.new_id())
        item = _Item(type_, _ITEM_PREFIX[type_] + self._derived_ids[k], k)
        items.append(item)
        return item

    def response(self) -> dict[str, Any]:
        if self._final is not None:
            return self._final
        c = self.content
        choice = c.choices.get(0)
        for name, data in choice.extensions if choice is not None else ():
            if name == RESPONSE_EXTENSION:  # a Responses upstream's own (identity)
                return data  # type: ignore[no-any-return]
        usage = usage_out(c.usage) if c.usage_reported else None
        if c.error is not None:
            failed = {"code": "server_error", "message": c.error.message}
            return self._response("failed", self._output("incomplete"), usage, error=failed)
        reason = choice.finish_reason if choice is not None else None
        if reason is None:
            return self._response("in_progress", self._output("in_progress"), usage)
        incomplete = _INCOMPLETE.get(reason)
        if incomplete is not None:
            details = {"reason": incomplete}
            return self._response(
                "incomplete", self._output("incomplete"), usage, incomplete=details
            )
        return self._response("completed", self._output("completed"), usage)


def response_parts(response: dict[str, Any]) -> list[Part]:
    """A non-streamed Responses reply (or error body) as canonical parts, read like the
    terminal event of a stream that showed nothing else."""
    if response.get("object") != "response":  # (a queued one has no output yet)
        response = check_response(response, "output", list, "a response")
    return ResponsesReader().read_response(response)


def _loads_or_none(data: str) -> Any:
    """``data`` decoded as the standard library reads it (``_json``), or ``None``."""
    try:
        return loads_lenient(data)
    except (ValueError, RecursionError):
        return None


def resume_error(error: StreamError, head: bytes, tail: bytes, options: WriterOptions) -> bytes:
    """Identity-mode error tail that continues the upstream's own response: its id, model and
    creation time from the first event chunk, the next ``sequence_number`` after the last
    chunk's. A fresh ``response.created`` here would make ``responses.stream()`` raise
    "Lifecycle response identity changed." instead of the API error."""
    writer = ResponsesWriter(options, Content())
    for event in SSEDecoder(max_event_size=None).feed(head):
        obj = _loads_or_none(event.data)
        response = as_dict(obj).get("response")
        if isinstance(response, dict) and as_str(response.get("id")):
            writer._id = str(response["id"])
            writer._model = as_str(response.get("model")) or "unknown"
            writer._created = as_timestamp(response.get("created_at")) or options.now()
            writer._started = True
            break
    last = -1
    for event in SSEDecoder(max_event_size=None).feed(tail):
        seq = as_int(as_dict(_loads_or_none(event.data)).get("sequence_number"))
        if seq is not None and seq > last:
            last = seq
    writer._seq = last + 1
    out: list[bytes] = []
    writer.error(error, out)
    return b"".join(out)


FORMAT = Format(
    name="openai-responses",
    family="openai",
    reader=ResponsesReader,
    writer=ResponsesWriter,
    error_body=_openai.error_body,
    parse_error_body=_openai.parse_error_body,
    endpoint="/v1/responses",
    response_parts=response_parts,
    resume_error=resume_error,
    terminator_prefixes=(
        b"event: response.completed",
        b"event:response.completed",
        b"event: response.incomplete",
        b"event:response.incomplete",
    ),
)
