"""``openai-chat``: OpenAI Chat Completions streams (``chat.completion.chunk``), formats.md §2.1.

Writer contract (§13 "Chat"): data-only events; the same ``id``/``created``/``model`` and
``object`` on every chunk; ``role`` once per choice in its first chunk, choices first appearing in
ascending order; tool-call ``index`` dense from 0, ``id``/``type``/``name`` only in a call's first
delta, a ``function`` object in every tool delta, arguments that concatenate to JSON (``"{}"``
if none); one finish chunk per choice; the usage chunk (``choices: []``) last and only when
asked for; then ``data: [DONE]``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._json import decode_strings, dumps, dumps_fallback, dumps_lenient, loads
from ..content import ChoiceContent, Content
from ..parts import (
    MAX_CHOICES,
    ArgumentsRun,
    Done,
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
    Unrepresentable,
    UsageUpdate,
    text_delta,
    tool_call_delta,
)
from . import _openai
from .base import (
    Format,
    JSONReader,
    as_dict,
    as_int,
    as_str,
    as_timestamp,
    check_response,
    frame,
    frame_strings,
    string_bodies,
    strip_prefix,
)

logger = logging.getLogger("asgi_sse_adapter")

PREFIX = "chatcmpl-"
# The delta fields that need no more than a look at ``content`` (``ChatReader._choice``).
_PLAIN_DELTA = frozenset({"content", "role"})
# ``ChatReader._plain`` while a signature is held: no delta is plain (content must release it).
_NO_PLAIN: frozenset[str] = frozenset()
# The reasoning items that carry signatures and encrypted reasoning (formats.md §8): litellm
# ``thinking_blocks[]`` and OpenRouter/vLLM ``reasoning_details[]``. Text item type → its text key.
_TEXT_ITEMS = {"thinking": "thinking", "reasoning.text": "text"}
_DATA_ITEMS = frozenset({"redacted_thinking", "reasoning.encrypted"})
# Whose signatures and encrypted data an item holds. Such blobs are valid only for the provider
# that issued them (formats.md §8), and the canonical parts carry Anthropic's: an item's blob is
# read only if its ``format`` is absent or null (litellm ``thinking_blocks``, vLLM: Anthropic's
# fields) or names Anthropic (starts with ``anthropic-``, any version). OpenRouter's
# ``reasoning_details[].format`` is one of ``unknown``, ``openai-responses-v1``,
# ``azure-openai-responses-v1``, ``xai-responses-v1``, ``anthropic-claude-v1``,
# ``google-gemini-v1`` (OpenRouter's ``ReasoningFormat``,
# openrouter.ai/docs/sdks/go/api-reference/models/reasoningformat); ``unknown`` (issuer not
# known), the others and non-strings are dropped. The item's text is read whatever its format.
_ANTHROPIC_FORMAT = "anthropic-"
# What a plain content chunk holds, in OpenAI's key order (``ChatReader.read_text_run``).
_CONTENT_MARK = '"delta":{"content":'
# The field OpenAI adds to every chunk by default, a random alphanumeric value
# (``stream_options.include_obfuscation``).
_OBFUSCATION = '"obfuscation":"'
# What an argument fragment of a call holds, in OpenAI's key order (``ChatReader.read_data``).
_ARGUMENTS_MARK = '"function":{"arguments":'
# Plain chunks that may fail to fit the template before a stream stops making templates.
_MAX_MISFITS = 8
# An argument chunk after its fragment (see ``ChatWriter.write``).
_ARGS_TAIL = b'}}]},"logprobs":null,"finish_reason":null}]}\n\n'
# A content chunk after its text (see ``ChatWriter._content_head``).
_CONTENT_TAIL = b'},"logprobs":null,"finish_reason":null}]}\n\n'


@dataclass(slots=True)
class _Call:
    id: str | None
    name: str | None
    index: int = -1
    pending: list[str] = field(default_factory=list)


def _reasoning_items(items: Any) -> list[tuple[str, str, str]]:
    """A ``thinking_blocks``/``reasoning_details`` list as ``(text, signature, data)`` entries
    in order: a text item has no data, an encrypted one only data. Empty placeholders are ``""``;
    malformed items, other types (``reasoning.summary``…) and encrypted items of another
    provider are skipped; a text item of another provider keeps its text, without signature
    (``_ANTHROPIC_FORMAT``)."""
    entries: list[tuple[str, str, str]] = []
    if not isinstance(items, list):
        return entries
    for item in items:
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if not isinstance(kind, str):
            continue
        origin = item.get("format")
        anthropic = origin is None or (
            isinstance(origin, str) and origin.startswith(_ANTHROPIC_FORMAT)
        )
        if kind in _DATA_ITEMS:
            data = item.get("data")
            if anthropic and isinstance(data, str) and data:
                entries.append(("", "", data))
        elif kind in _TEXT_ITEMS:
            text = item.get(_TEXT_ITEMS[kind])
            signature = None
            if anthropic:
                signature = item.get("signature")
                if not isinstance(signature, str) or not signature:
                    signature = item.get("signature_delta")  # litellm before 1.63
            entries.append(
                (
                    text if isinstance(text, str) else "",
                    signature if isinstance(signature, str) else "",
                    "",
                )
            )
    return entries


class _Template:
    """A chunk as a template: the bytes before one JSON string (its text, or a call's argument
    fragment), and after it (with the ``obfuscation`` value OpenAI adds to every chunk left
    open, alphanumeric).

    A chunk that fits it is the template's chunk with another string (one JSON string, checked
    by decoding it alone) and another obfuscation value: it reads into the same part as the
    template's chunk did, with the new string, so only the string needs decoding."""

    __slots__ = ("block_head", "block_tail", "block_tail_end", "head", "tail", "tail_end")

    def __init__(self, head: str, tail: str, tail_end: str) -> None:
        self.head = head
        self.tail = tail  # up to the obfuscation value (the whole rest if there is none)
        self.tail_end = tail_end  # after it ("" if there is none)
        # The same as the bytes of a block whose one line is ``data: `` and such a chunk
        # (``text_of_block``); ``None`` if the template's own chunk spans lines.
        self.block_head: bytes | None = None
        self.block_tail = self.block_tail_end = b""
        if not any("\n" in part or "\r" in part for part in (head, tail, tail_end)):
            self.block_head = b"data: " + head.encode()
            if tail_end:
                self.block_tail = tail.encode()
                self.block_tail_end = tail_end.encode() + b"\n\n"
            else:  # the whole rest
                self.block_tail_end = tail.encode() + b"\n\n"

    @classmethod
    def of(cls, data: str, value: str, mark: str, locate: Callable[[Any], Any]) -> _Template | None:
        """The template of a chunk that read whole into exactly one part carrying ``value``, the
        JSON string right after the first ``mark``; ``None`` if it cannot be located for certain.

        The first ``mark`` need not be where the part's string came from (a foreign field before
        ``choices``, choice 1 listed first, a repeated key): so a probe, the chunk with another
        string in that place, must parse with exactly that string where ``locate`` looks."""
        start = data.find(mark) + len(mark)
        end = _string_end(data, start)
        if end < 0:
            return None
        head, tail = data[:start], data[end:]
        probe = value + "\x00"  # any other string
        try:
            if locate(loads(head + json.dumps(probe) + tail)) != probe:
                return None
        except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError):
            return None
        cut = tail.rfind(_OBFUSCATION)
        if cut < 0:
            return cls(head, tail, "")
        cut += len(_OBFUSCATION)
        close = tail.find('"', cut)
        if close < 0 or not (tail[cut:close].isalnum() or close == cut):
            return cls(head, tail, "")
        return cls(head, tail[:cut], tail[close:])

    def bodies(self, values: Sequence[str], start: int) -> list[str]:
        """The string bodies, still encoded, of the values from ``values[start]`` on that fit
        the template with a string literal in its place: up to the first that does not."""
        head = self.head + '"'
        size = len(head)
        tail_end = self.tail_end
        if not tail_end:
            return string_bodies(values, start, head, '"' + self.tail)
        tail = self.tail
        bodies: list[str] = []
        after = len(tail_end)
        for data in values[start:] if start else values:
            if not (data.startswith(head) and data.endswith(tail_end)):
                break
            cut = data.rfind(tail)
            value = data[cut + len(tail) : len(data) - after]
            # The string's closing quote before the tail, after the head's opening one.
            if cut <= size or data[cut - 1] != '"' or not (value.isalnum() or not value):
                break
            bodies.append(data[size : cut - 1])
        return bodies

    def text_of_block(self, block: bytes) -> str | None:
        """``text_of`` for a whole block, undecoded: the text if ``block`` is one line,
        ``data: `` and a chunk that fits the template, then a blank line; else ``None``. (Only
        the string literal is decoded, strictly, quote to quote: JSON has no raw LF or CR in a
        string, so a block holding one there, which SSE would read as two lines, fails; the
        whitespace JSON allows around the string, which may hold a LF, is not taken.)"""
        head = self.block_head
        if head is None or not block.startswith(head):
            return None
        end = self.block_tail_end
        if not block.endswith(end):
            return None
        if self.tail_end:
            tail = self.block_tail
            cut = block.rfind(tail)
            value = block[cut + len(tail) : len(block) - len(end)]
            if cut < len(head) or not (value.isalnum() or not value):
                return None
        else:
            cut = len(block) - len(end)
        literal = block[len(head) : cut]
        if literal[:1] != b'"' or literal[-1:] != b'"':
            return None
        try:
            text = loads(literal.decode())
        except (ValueError, RecursionError):  # (UnicodeDecodeError: the SSE decoder's to replace)
            return None
        return text if type(text) is str else None

    def text_of(self, data: str) -> str | None:
        """The text of ``data`` if it fits the template, else ``None``."""
        head = self.head
        if not data.startswith(head):
            return None
        if self.tail_end:
            if not data.endswith(self.tail_end):
                return None
            cut = data.rfind(self.tail)
            value = data[cut + len(self.tail) : len(data) - len(self.tail_end)]
            if cut < len(head) or not (value.isalnum() or not value):
                return None
        else:
            if not data.endswith(self.tail):
                return None
            cut = len(data) - len(self.tail)
        try:
            text = loads(data[len(head) : cut])
        except (ValueError, RecursionError):  # read whole, such a chunk fails there
            return None
        return text if type(text) is str else None


def _content_at(obj: Any) -> Any:
    """Choice 0's text in a chunk whose first choice is choice 0 (else ``None``)."""
    choice = obj["choices"][0]
    return choice["delta"]["content"] if choice.get("index", 0) == 0 else None


def _arguments_at(obj: Any) -> Any:
    """The argument fragment of the one call, with an explicit index, in choice 0's delta (else
    ``None``): without an index a call is matched by the reader's state, which moves on."""
    choice = obj["choices"][0]
    (call,) = choice["delta"]["tool_calls"]
    if choice.get("index", 0) != 0 or type(call["index"]) is not int:
        return None
    return call["function"]["arguments"]


def _string_end(data: str, start: int) -> int:
    """The index after the JSON string literal opening at ``data[start]`` (-1 if none)."""
    if data[start : start + 1] != '"':
        return -1
    i = start + 1
    while True:
        i = data.find('"', i)
        if i < 0:
            return -1
        backslashes = 0
        while data[i - 1 - backslashes] == "\\":
            backslashes += 1
        if backslashes % 2 == 0:
            return i + 1
        i += 1


class ChatReader(JSONReader):
    """Chat chunks → parts. Accepts missing ``index``, resent ``id``/``name``, content and finish
    in one chunk, ``choices: null``, usage on any chunk, and no ``[DONE]`` (formats.md §4.2)."""

    def __init__(self) -> None:
        self._started = False
        self._calls: dict[tuple[int, int], _Call] = {}
        self._next_call: dict[int, int] = {}
        self._seen: set[int] = set()
        self._finished: set[int] = set()
        self._implicit: dict[int, int] = {}  # choice → key of the last call without ``index``
        # (choice, upstream index) → the key of the call that index now means (``_explicit_key``)
        self._moved: dict[tuple[int, int], int] = {}
        # Choice → the signature of its open reasoning segment, held until the segment ends
        # (more reasoning after it, content, a call, a finish): signatures come last in a
        # segment and a later one replaces it (the Anthropic SDKs assign ``signature_delta``).
        self._held: dict[int, str] = {}
        # The fast path's fields (``_NO_PLAIN`` while a signature is held, see ``_choice``).
        self._plain = _PLAIN_DELTA
        # The last plain content chunk read whole, around its text (``read_data``), and how
        # many plain chunks did not fit the template before it.
        self._template: _Template | None = None
        self._misfits = 0
        # The same for the last argument fragment of a call read whole, and the call's index.
        self._args_template: _Template | None = None
        self._args_index = -1

    def complete(self) -> bool:
        return self._seen <= self._finished

    def end(self) -> list[Part]:
        parts: list[Part] = []
        for c in list(self._held):
            self._release(c, parts)
        return parts

    def read_data(self, data: str, event: str | None) -> list[Part]:
        """``read`` of a chunk given by its ``data`` and ``event`` fields.

        A plain content chunk of choice 0, or an argument fragment of one of its calls, that fits
        the last such chunk read whole (``_Template``) decodes only its string, as the Messages
        reader does with its text deltas; any other chunk is parsed whole, and one that reads
        into exactly such a part becomes the template."""
        hold = self._templates_hold(event)
        if hold and self._template is not None:
            text = self._template.text_of(data)
            if text is not None:
                return [text_delta(text)] if text else []
        if hold and self._args_template is not None:
            args = self._args_template.text_of(data)
            if args is not None:
                return [tool_call_delta(self._args_index, args)] if args else []
        parts = super().read_data(data, event)
        if self._args_template is not None and any(type(p) is ToolCallStart for p in parts):
            # A new call may come at the index the template names (every call at index 0:
            # ``_explicit_key``): its fragments must not read as the old call's.
            self._args_template = None
        if len(parts) == 1 and self._misfits < _MAX_MISFITS and hold:
            part = parts[0]
            if type(part) is TextDelta and part.choice == 0 and _CONTENT_MARK in data:
                if self._template is not None:
                    # A plain chunk the template did not fit: chunks that vary beyond their
                    # text (per-chunk logprobs, say) would otherwise pay a probe parse each.
                    self._misfits += 1
                self._template = _Template.of(data, part.text, _CONTENT_MARK, _content_at)
            elif type(part) is ToolCallDelta and part.choice == 0 and _ARGUMENTS_MARK in data:
                if self._args_template is not None and self._args_index == part.index:
                    self._misfits += 1
                self._args_template = _Template.of(
                    data, part.arguments, _ARGUMENTS_MARK, _arguments_at
                )
                self._args_index = part.index
        return parts

    def read_text_block(self, block: bytes) -> str | None:
        """A plain content chunk that fits the template (``read_data``) as the one block of a
        read, ``data: `` and the chunk on one line, read from its bytes."""
        template = self._template
        if template is None or not self._templates_hold(None):
            return None
        return template.text_of_block(block)

    def read_arguments_block(self, block: bytes) -> ToolCallDelta | None:
        """An argument fragment that fits the argument template (``read_data``), the same way."""
        template = self._args_template
        if template is None or not self._templates_hold(None):
            return None
        fragment = template.text_of_block(block)
        return tool_call_delta(self._args_index, fragment) if fragment else None

    def read_text_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[list[str], int]:
        """The chunks from ``values[start]`` on that fit the template (``read_data``)."""
        template = self._template
        if template is None:
            return [], start
        texts = decode_strings(self._fitting(template, values, types, start))
        return (list(filter(None, texts)) if "" in texts else texts), start + len(texts)

    def read_arguments_run(
        self, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> tuple[ArgumentsRun | None, int]:
        """The chunks from ``values[start]`` on that fit the argument template (``read_data``)."""
        template = self._args_template
        if template is None:
            return None, start
        fragments = decode_strings(self._fitting(template, values, types, start))
        end = start + len(fragments)
        if "" in fragments:
            fragments = list(filter(None, fragments))
        return (ArgumentsRun(self._args_index, fragments) if fragments else None), end

    def _fitting(
        self, template: _Template, values: Sequence[str], types: Sequence[str | None], start: int
    ) -> list[str]:
        """``template.bodies`` of the chunks from ``start`` on, while templates hold for them."""
        if not self._templates_hold(None):
            return []
        bodies = template.bodies(values, start)
        if "error" in types:  # an ``event: error`` chunk is read whole
            end = start + len(bodies)
            if "error" in types[start:end]:
                del bodies[list(types[start:end]).index("error") :]
        return bodies

    def _templates_hold(self, event: str | None) -> bool:
        """Whether a chunk fitting a template reads as its template did: not an ``error``
        event, choice 0 still open, and no signature held (the chunk would end its segment)."""
        return event != "error" and self._plain is _PLAIN_DELTA and 0 not in self._finished

    def read_object(self, obj: dict[str, Any], event: str | None = None) -> list[Part]:
        """Parts for one decoded chunk (an error also when it came as ``event: error``)."""
        if obj.get("error") or obj.get("object") == "error" or event == "error":
            return [_openai.error_from(obj)]
        parts: list[Part] = []
        usage = obj.get("usage")
        # Azure opens with a chunk that has neither id nor choices (``id: ""``, ``model: ""``,
        # ``created: 0``, ``prompt_filter_results``): the stream starts with the next one.
        if not self._started and (obj.get("id") or obj.get("choices")):
            self._started = True
            parts.append(
                MessageStart(
                    id=strip_prefix(as_str(obj.get("id")) or None, PREFIX),
                    model=as_str(obj.get("model")) or None,
                    created=as_timestamp(obj.get("created")),
                    # Usage in the first chunk (vLLM's continuous usage stats, gateways that
                    # send it on every chunk) is known at the start: a writer that states the
                    # input tokens there (Messages ``message_start``) gets them.
                    usage=_openai.usage_in(usage) if isinstance(usage, dict) else None,
                )
            )
            usage = None
        choices = obj.get("choices")
        if isinstance(choices, list):
            for position, choice in enumerate(choices):
                if isinstance(choice, dict):  # anything else is not a choice
                    self._choice(choice, position, parts)
        if isinstance(usage, dict):
            parts.append(UsageUpdate(_openai.usage_in(usage)))
        return parts

    def _choice(self, choice: dict[str, Any], position: int, parts: list[Part]) -> None:
        raw_index = choice.get("index")
        index = as_int(raw_index)
        if raw_index is not None and index is None:
            return  # not a choice: an index of the wrong type
        c = position if index is None else index
        if not 0 <= c < MAX_CHOICES or c in self._finished:
            return
        self._seen.add(c)
        delta = choice.get("delta")
        if isinstance(delta, dict):
            get = delta.get
            # Most deltas hold content alone: the other fields are looked for only if present
            # (or a signature is held: the content ends its segment, ``_signed_reasoning``).
            rich = not self._plain.issuperset(delta)
            if rich:
                reasoning = get("reasoning_content")
                if not isinstance(reasoning, str) or not reasoning:
                    reasoning = get("reasoning")
                items = get("thinking_blocks") or get("reasoning_details")
                if items or self._held:
                    self._signed_reasoning(delta, reasoning, items, c, parts)
                elif isinstance(reasoning, str) and reasoning:
                    parts.append(ReasoningDelta(reasoning, c))
            text = get("content")
            if isinstance(text, str) and text:
                parts.append(text_delta(text, c))
            if rich:
                self._after_content(delta, c, parts)
        finish = choice.get("finish_reason")
        if finish and isinstance(finish, str):
            if finish == "error":
                parts.append(StreamError("api_error", "upstream finished the choice with an error"))
                return
            if self._held:
                self._release(c, parts)
            self._end_calls(c, parts)
            self._finished.add(c)
            parts.append(_openai.finish_part(finish, choice, c))

    def _signed_reasoning(
        self, delta: dict[str, Any], text: Any, items: Any, c: int, parts: list[Part]
    ) -> None:
        """The reasoning of a delta with ``thinking_blocks``/``reasoning_details`` items, or of
        any rich delta while a signature is held."""
        text = text if isinstance(text, str) else ""
        entries = _reasoning_items(items)
        # The text counts once. litellm and OpenRouter repeat each reasoning fragment in the
        # text field and in an item (formats.md §8: one convention, text plus signature carrier),
        # so reading both would double the thinking, and re-encoded thinking text no longer
        # matches its signature. The items' text is read when it joins to exactly the field's
        # text (their boundaries then split a chunk holding several signed blocks) or when the
        # field is empty; otherwise the field is the text and the items give only signatures
        # and encrypted data.
        item_text = "".join(entry[0] for entry in entries)
        from_items = bool(item_text) and (not text or item_text == text)
        if text and not from_items:
            self._reason(text, "", c, parts)
        for piece, signature, data in entries:
            if data:
                self._release(c, parts)
                parts.append(RedactedReasoning(data, c))
                continue
            if from_items and piece:
                self._reason(piece, signature, c, parts)
            if signature:
                self._held[c] = signature
                self._plain = _NO_PLAIN
        get = delta.get
        if c in self._held and (
            get("content") or get("refusal") or get("tool_calls") or get("function_call")
        ):
            self._release(c, parts)

    def _reason(self, text: str, signature: str, c: int, parts: list[Part]) -> None:
        """A reasoning delta: after a held signature it starts a new segment, unless it comes
        with that same signature (a provider repeating it on every fragment)."""
        held = self._held.get(c)
        if held is not None and held != signature:
            self._release(c, parts)
        parts.append(ReasoningDelta(text, c))

    def _release(self, c: int, parts: list[Part]) -> None:
        """Emit choice ``c``'s held signature, if any: its reasoning segment ended."""
        signature = self._held.pop(c, None)
        if signature is not None:
            parts.append(ReasoningSignature(signature, c))
            if not self._held:
                self._plain = _PLAIN_DELTA

    def _after_content(self, delta: dict[str, Any], c: int, parts: list[Part]) -> None:
        """The fields of a (rich) delta read after its content: refusal, tool calls."""
        get = delta.get
        refusal = get("refusal")
        if isinstance(refusal, str) and refusal:
            parts.append(RefusalDelta(refusal, c))
        tool_calls = get("tool_calls")
        if isinstance(tool_calls, list):
            for pos, call in enumerate(tool_calls):
                call = as_dict(call)
                if call.get("type") == "custom" or "custom" in call:
                    # A custom tool's call (free-form input): no canonical form carries it.
                    name = as_str(as_dict(call.get("custom")).get("name"))
                    what = f"a custom tool call{f' ({name})' if name else ''}"
                    parts.append(Unrepresentable(what, c))
                    continue
                up = as_int(call.get("index"))
                if up is None:
                    up = self._implicit_key(c, as_str(call.get("id")), pos)
                else:
                    up = self._explicit_key(c, up, call)
                self._call(c, up, call, parts)
        function_call = get("function_call")
        if isinstance(function_call, dict):  # legacy single-call form
            self._call(c, -1, {"function": function_call}, parts)

    def _explicit_key(self, c: int, index: int, call: dict[str, Any]) -> int:
        """The key of a tool delta with ``index``: that index's call, unless the delta names
        another call. Some servers send every parallel call at index 0 (formats.md §14): a
        delta there with a known call's id is that call's, and one with a new id and a name is
        a new call, its fragments after it (no id) its own. A new id without a name continues
        the call (servers that change the id on every chunk: poolsideai/pool#9, early vLLM)."""
        key = self._moved.get((c, index), index)
        state = self._calls.get((c, key))
        call_id = as_str(call.get("id"))
        if state is None or not call_id or not state.id or call_id == state.id:
            return key
        known = next(
            (
                k
                for (choice, k), other in self._calls.items()
                if choice == c and other.id == call_id
            ),
            None,
        )
        if known is not None:
            return known
        if as_str(as_dict(call.get("function")).get("name")):
            # (Negative keys: never an upstream index; -1 is the legacy ``function_call``.)
            key = min(-1, *(k for choice, k in self._calls if choice == c)) - 1
            self._moved[(c, index)] = key
            # The argument template names the index's old call: its fragments are no longer it.
            self._args_template = None
        return key

    def _implicit_key(self, c: int, call_id: str | None, pos: int) -> int:
        """The key of a tool delta without ``index`` (Ollama and others send whole calls that
        way, one per chunk): a new id is a new call, a known id or no id continues a call."""
        keys = [k for choice, k in self._calls if choice == c]
        if call_id:
            key = next((k for k in keys if self._calls[(c, k)].id == call_id), None)
            if key is None:
                key = max(keys, default=-1) + 1
            self._implicit[c] = key
            return key
        return self._implicit.get(c, pos)

    def _call(self, c: int, up: int, call: dict[str, Any], parts: list[Part]) -> None:
        fn = as_dict(call.get("function"))
        name = as_str(fn.get("name"))
        raw = fn.get("arguments")
        # Some OpenAI-compatible servers send the arguments as a JSON object, not its text
        # (sipeed/picoclaw#1287): the call's arguments all the same.
        args = dumps_lenient(raw).decode() if isinstance(raw, dict) else as_str(raw)
        state = self._calls.get((c, up))
        if state is None:
            state = self._calls[(c, up)] = _Call(as_str(call.get("id")), name or None)
        elif state.index < 0:
            # Before the call could start, a later delta may bring the id or name it lacked.
            state.id = state.id or as_str(call.get("id"))
            state.name = state.name or name or None
        if state.index < 0 and state.name:
            self._start(c, state, parts)
        if args:
            if state.index >= 0:
                parts.append(ToolCallDelta(state.index, args, c))
            else:
                state.pending.append(args)

    def _start(self, c: int, state: _Call, parts: list[Part]) -> None:
        state.index = self._next_call.get(c, 0)
        self._next_call[c] = state.index + 1
        if state.id and any(
            other is not state and other.id == state.id and other.index >= 0
            for (choice, _), other in self._calls.items()
            if choice == c
        ):
            # Some OpenAI-compatible servers repeat an id: the client matches results to calls
            # by id (the SDK's ``responses.stream()`` refuses two items with one ``call_id``,
            # Anthropic two ``tool_use`` blocks with one id), so the writer makes a fresh one.
            logger.info(
                "tool call id %.40r repeated in the upstream stream; a new one made", state.id
            )
            state.id = None
        parts.append(ToolCallStart(state.index, state.id, state.name or "", c))
        if state.pending:
            parts.append(ToolCallDelta(state.index, "".join(state.pending), c))
            state.pending.clear()

    def _end_calls(self, c: int, parts: list[Part]) -> None:
        for (choice, _), state in self._calls.items():
            if choice != c:
                continue
            if state.index < 0:
                logger.info("tool call without a name in the upstream stream; name left empty")
                self._start(c, state, parts)
            parts.append(ToolCallEnd(state.index, c))


class _StartedCall:
    """A tool call the writer started: its id, its argument chunk up to the fragment (made on its
    first fragment), and whether any arguments went out."""

    __slots__ = ("args", "head", "id")

    def __init__(self, call_id: str) -> None:
        self.id = call_id
        self.head: bytes | None = None
        self.args = False


class ChatWriter(_openai.EnvelopeWriter):
    """Parts → Chat chunks (module docstring: the contract)."""

    id_prefix = PREFIX
    chunk_object = "chat.completion.chunk"

    def __init__(self, options: Any, content: Content) -> None:
        super().__init__(options, content)
        # Choice → its content chunk up to the text, for the choices open and not finished: a
        # text delta, most of a stream, then costs one lookup (``write``).
        self._content_heads: dict[int, bytes] = {}
        # The choices announced, in order, and those finished (a writer lives as long as its
        # stream and idle streams are held by the thousand: a list of one choice is a quarter of
        # a set, an empty dict a third).
        self._choices: list[int] = []
        self._finished: dict[int, None] = {}
        # (choice, call) → the call's state, for the calls started.
        self._started: dict[tuple[int, int], _StartedCall] = {}

    def _open(self, c: int, out: list[bytes]) -> None:
        """Choices first appear in ascending order, each with its one role chunk."""
        if c not in self._choices:
            for k in range(c + 1):
                if k not in self._choices:
                    self._choices.append(k)
                    self._emit(k, {"role": "assistant", "content": ""}, None, out)

    def _chunk(self, c: int, delta: dict[str, Any], finish: str | None, out: list[bytes]) -> None:
        self._open(c, out)
        self._emit(c, delta, finish, out)

    def _emit(self, c: int, delta: dict[str, Any], finish: str | None, out: list[bytes]) -> None:
        self._identity()
        choice = {"index": c, "delta": delta, "logprobs": None, "finish_reason": finish}
        try:
            out.append(self._prefix + dumps(choice) + b"]}\n\n")
        except TypeError:  # what orjson refuses (``_json``): as without it
            out.append(self._prefix + dumps_fallback(choice) + b"]}\n\n")

    def _content_head(self, c: int, out: list[bytes]) -> bytes | None:
        """Choice ``c``'s ``_content_heads`` entry, made on its first text (``None``: finished)."""
        if c in self._finished:
            return None
        self._open(c, out)
        head = self._prefix + b'{"index":' + dumps(c) + b',"delta":{"content":'
        self._content_heads[c] = head
        return head

    def write_text(self, text: str) -> bytes:
        head = self._content_heads.get(0)
        if head is not None:
            return head + dumps(text) + _CONTENT_TAIL
        return super().write_text(text)  # the first text, or after the finish

    def write_run(self, run: TextRun | ArgumentsRun, out: list[bytes]) -> None:
        # The chunks ``write`` makes for each text (fragment), as one piece, the strings encoded
        # in one call.
        if isinstance(run, TextRun):
            head = self._content_heads.get(run.choice) or self._content_head(run.choice, out)
            if head is None:
                return
            tail = _CONTENT_TAIL
            strings = run.texts
        else:
            head = self._arguments_head(run.choice, run.index)
            if head is None:
                return
            tail = _ARGS_TAIL
            strings = run.fragments
        out.append(frame_strings(head, strings, tail))

    def _call_id(self, c: int, index: int) -> str | None:
        call = self._started.get((c, index))
        return None if call is None else call.id

    def _arguments_head(self, c: int, index: int) -> bytes | None:
        """The chunk of an argument fragment for call ``index`` of choice ``c``, up to the
        fragment (``None``: the call never started or the choice finished: nothing to write)."""
        call = self._started.get((c, index))
        if call is None or c in self._finished:
            return None
        call.args = True
        # ``_chunk(c, {"tool_calls": [{"index": i, "function": {"arguments": a}}]})`` up to
        # ``a``: its call has started, so the choice is open and the envelope made.
        head = call.head
        if head is None:
            head = call.head = (
                self._prefix
                + b'{"index":'
                + dumps(c)
                + b',"delta":{"tool_calls":[{"index":'
                + dumps(index)
                + b',"function":{"arguments":'
            )
        return head

    def write(self, part: Part, out: list[bytes]) -> None:
        if isinstance(part, TextDelta):
            # ``_emit(c, {"content": text}, None, out)``: the same bytes, but only the text goes
            # through ``dumps`` (the hottest path of a stream; stdlib json is slow on whole dicts).
            head = self._content_heads.get(part.choice) or self._content_head(part.choice, out)
            if head is not None:
                try:
                    out.append(head + dumps(part.text) + _CONTENT_TAIL)
                except TypeError:  # what orjson refuses (``_json``): as without it
                    out.append(head + dumps_fallback(part.text) + _CONTENT_TAIL)
        elif isinstance(part, ToolCallDelta):
            if part.arguments:
                head = self._arguments_head(part.choice, part.index)
                if head is not None:
                    try:
                        out.append(head + dumps(part.arguments) + _ARGS_TAIL)
                    except TypeError:  # what orjson refuses (``_json``): as without it
                        out.append(head + dumps_fallback(part.arguments) + _ARGS_TAIL)
        elif isinstance(part, ReasoningDelta):
            if part.choice not in self._finished:
                self._chunk(part.choice, {self.options.reasoning_field: part.text}, None, out)
        elif isinstance(part, MessageStart):
            self._open(0, out)
        elif isinstance(part, ToolCallStart):
            if part.choice in self._finished:
                return
            call_id = part.id or "call_" + self.options.new_id()
            self._started[(part.choice, part.index)] = _StartedCall(call_id)
            started = {
                "index": part.index,
                "id": call_id,
                "type": "function",
                "function": {"name": part.name, "arguments": ""},
            }
            self._chunk(part.choice, {"tool_calls": [started]}, None, out)
        elif isinstance(part, ToolCallEnd):
            ended = self._started.get((part.choice, part.index))
            if ended is not None and not ended.args and part.choice not in self._finished:
                ended.args = True
                empty = {"index": part.index, "function": {"arguments": "{}"}}
                self._chunk(part.choice, {"tool_calls": [empty]}, None, out)
        elif isinstance(part, RefusalDelta):
            if part.choice not in self._finished:
                self._chunk(part.choice, {"refusal": part.text}, None, out)
        elif isinstance(part, Finish):
            if part.choice in self._finished:
                return
            had_tools = any(c == part.choice for c, _ in self._started)
            reason = _openai.finish_out(part.reason, had_tools)
            self._chunk(part.choice, {}, reason, out)
            self._finished[part.choice] = None
            self._content_heads.pop(part.choice, None)
        else:
            # UsageUpdate is held for the usage chunk; signatures, redacted reasoning and
            # extensions have no Chat field.
            if not isinstance(part, UsageUpdate):
                logger.debug("openai-chat writer skips %s", type(part).__name__)

    def end(self, out: list[bytes]) -> None:
        # Choices announced only to fill a gap the upstream left (an index skipped) never got
        # a finish of their own; each announced choice ends exactly once.
        for c in sorted(c for c in self._choices if c not in self._finished):
            self._emit(c, {}, "stop", out)
            self._finished[c] = None
        if self.options.include_usage and self.content.usage_reported:
            self._identity()
            chunk = {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": _openai.usage_out(self.content.usage),
            }
            out.append(frame(chunk))
        out.append(b"data: [DONE]\n\n")

    def error(self, error: StreamError, out: list[bytes]) -> None:
        out.append(frame({"error": _openai.error_object(error)}))
        if self.options.done_after_error:
            out.append(b"data: [DONE]\n\n")

    def response(self) -> dict[str, Any]:
        self._identity()
        choices = [self._choice_response(c) for _, c in sorted(self.content.choices.items())]
        response: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self.content.usage_reported:
            response["usage"] = _openai.usage_out(self.content.usage)
        return response

    def _choice_response(self, c: ChoiceContent) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": c.text_of("text"),
            "refusal": c.text_of("refusal"),
        }
        reasoning = c.text_of("reasoning")
        if reasoning is not None:
            message[self.options.reasoning_field] = reasoning
        calls = c.tool_calls
        if calls:
            message["tool_calls"] = [
                {
                    "id": self._call_id(c.index, s.tool_index) or s.tool_id or "",
                    "type": "function",
                    "function": {"name": s.tool_name, "arguments": s.text or "{}"},
                }
                for s in calls
            ]
        finish = None
        if c.finish_reason is not None:
            finish = _openai.finish_out(c.finish_reason, bool(calls))
        return {"index": c.index, "message": message, "logprobs": None, "finish_reason": finish}


def response_parts(response: dict[str, Any]) -> list[Part]:
    """A non-streamed ``chat.completion`` (or error body) as canonical parts: read as one chunk
    whose choices carry their whole message as the delta."""
    response = check_response(response, "choices", list, "a chat.completion")
    choices = response.get("choices")
    chunk = dict(response)
    if isinstance(choices, list):
        chunk["choices"] = [
            {**as_dict(c), "delta": as_dict(as_dict(c).get("message"))} for c in choices
        ]
    reader = ChatReader()
    # The reader's end parts: a signature it holds when no finish reason ends its choice.
    return [*reader.read_object(chunk), *reader.end(), Done()]


FORMAT = Format(
    name="openai-chat",
    family="openai",
    reader=ChatReader,
    writer=ChatWriter,
    error_body=_openai.error_body,
    parse_error_body=_openai.parse_error_body,
    endpoint="/v1/chat/completions",
    terminator=b"data: [DONE]\n\n",
    done_after_error=True,
    terminator_prefixes=(b"data: [DONE]", b"data:[DONE]"),
    response_parts=response_parts,
    choices=True,
)
