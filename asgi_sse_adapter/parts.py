"""The canonical stream model: the one internal language every format reads into and writes from.

A format's reader turns upstream events into these parts; another format's writer turns them into
client events. Two formats never meet except here (``shared/reference/formats.md`` §3).

Conventions:
- ``choice`` is the ``n > 1`` choice index (0 for formats that have no choices).
- ``ToolCallStart.index`` is dense per choice: 0, 1, 2… in order of first appearance. Every started
  call gets exactly one ``ToolCallEnd`` before its choice's ``Finish``.
- Usage fields use OpenAI's totals: ``input_tokens`` includes cache reads and writes,
  ``output_tokens`` includes reasoning. ``None`` means "not reported"; an update overwrites only
  the fields it reports (Anthropic's cumulative ``message_delta`` semantics).
- Ids are stored without their format's prefix where the reader knows it (``msg_``,
  ``chatcmpl-``, ``resp_``…), so each writer can apply its own prefix rule; tool-call ids are kept
  exactly as the upstream sent them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = [
    "FINISH_REASONS",
    "MAX_CHOICES",
    "ArgumentsRun",
    "Done",
    "Extension",
    "Finish",
    "FinishReason",
    "MessageStart",
    "Part",
    "ReasoningDelta",
    "ReasoningSignature",
    "RedactedReasoning",
    "RefusalDelta",
    "StreamError",
    "TextDelta",
    "TextRun",
    "ToolCallDelta",
    "ToolCallEnd",
    "ToolCallStart",
    "Unrepresentable",
    "Usage",
    "UsageUpdate",
    "text_delta",
]

FinishReason: TypeAlias = Literal[
    "end_turn",
    "stop_sequence",
    "max_tokens",
    "context_window_exceeded",
    "tool_use",
    "refusal",
    "content_filter",
    "pause_turn",
]
"""Why a choice ended, in terms every format can map to its own (formats.md §5)."""

MAX_CHOICES = 128
"""Choice indexes at or above this are refused by readers: OpenAI's ``n`` allows at most 128,
and a writer must announce every lower choice before a higher one (an upstream index of 10**7
would otherwise cost millions of filler chunks)."""

FINISH_REASONS: frozenset[str] = frozenset(FinishReason.__args__)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; ``None`` = not reported. Totals as OpenAI: cache and reasoning included."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def updated(self, newer: Usage) -> Usage:
        """This usage with every field ``newer`` reports overwritten (last value wins)."""
        return Usage(
            self.input_tokens if newer.input_tokens is None else newer.input_tokens,
            self.output_tokens if newer.output_tokens is None else newer.output_tokens,
            self.cache_read_tokens if newer.cache_read_tokens is None else newer.cache_read_tokens,
            self.cache_write_tokens
            if newer.cache_write_tokens is None
            else newer.cache_write_tokens,
            self.reasoning_tokens if newer.reasoning_tokens is None else newer.reasoning_tokens,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output, counting what was not reported as 0."""
        return (self.input_tokens or 0) + (self.output_tokens or 0)


@dataclass(frozen=True, slots=True)
class MessageStart:
    """The upstream announced its response: identity and, maybe, input usage."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Assistant text."""

    text: str
    choice: int = 0


# The slot descriptors of the frozen dataclass. Setting them directly skips the frozen
# ``__init__``'s ``object.__setattr__`` per field: about half the cost of ``TextDelta(...)``.
_new_object = object.__new__
_set_text: Callable[[object, str], None] = TextDelta.__dict__["text"].__set__
_set_choice: Callable[[object, int], None] = TextDelta.__dict__["choice"].__set__


def text_delta(text: str, choice: int = 0) -> TextDelta:
    """``TextDelta(text, choice)``, for the readers' hot path (one per text event of a stream)."""
    part: TextDelta = _new_object(TextDelta)
    _set_text(part, text)
    _set_choice(part, choice)
    return part


@dataclass(frozen=True, slots=True)
class TextRun:
    """Consecutive text deltas of one choice, as one part: ``TextDelta(text, choice)`` for each
    of ``texts`` in order (none empty). A reader hands on a run when one read completes many
    text events (most of a stream at speed); a writer still emits one client event per text, so
    the client's bytes are the same as for the deltas one by one."""

    texts: list[str]
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ArgumentsRun:
    """Consecutive argument fragments of one started call, as one part: ``ToolCallDelta(index,
    fragment, choice)`` for each of ``fragments`` in order (none empty). The counterpart of
    ``TextRun`` for a call whose arguments stream in many small events."""

    index: int
    fragments: list[str]
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning/thinking text. A delta after a ``ReasoningSignature`` starts a new segment."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ReasoningSignature:
    """The provider's signature closing the current reasoning segment (opaque, assigned)."""

    signature: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class RedactedReasoning:
    """An encrypted reasoning segment (Anthropic ``redacted_thinking``), complete in one part."""

    data: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class RefusalDelta:
    """Refusal text (OpenAI ``refusal``)."""

    text: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A function/tool call begins. ``id`` is the upstream's call id, ``None`` if it had none."""

    index: int
    id: str | None
    name: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A fragment of a call's JSON arguments."""

    index: int
    arguments: str
    choice: int = 0


_set_index: Callable[[object, int], None] = ToolCallDelta.__dict__["index"].__set__
_set_arguments: Callable[[object, str], None] = ToolCallDelta.__dict__["arguments"].__set__
_set_call_choice: Callable[[object, int], None] = ToolCallDelta.__dict__["choice"].__set__


def tool_call_delta(index: int, arguments: str, choice: int = 0) -> ToolCallDelta:
    """``ToolCallDelta(index, arguments, choice)`` the way ``text_delta`` makes its part, for the
    readers' argument fragments (one per event while a call's arguments stream)."""
    part: ToolCallDelta = _new_object(ToolCallDelta)
    _set_index(part, index)
    _set_arguments(part, arguments)
    _set_call_choice(part, choice)
    return part


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    """A call's arguments are complete."""

    index: int
    choice: int = 0


@dataclass(frozen=True, slots=True)
class UsageUpdate:
    """Usage reported (fields not reported are ``None`` and leave earlier values alone)."""

    usage: Usage


@dataclass(frozen=True, slots=True)
class Finish:
    """A choice ended normally, for ``reason``. ``stop_sequence`` is the matched string if known."""

    reason: FinishReason
    stop_sequence: str | None = None
    choice: int = 0


MAX_ERROR_MESSAGE = 4096
"""The longest error message passed on (``StreamError``), in characters."""


@dataclass(frozen=True, slots=True)
class StreamError:
    """The upstream reported an error in-band (or the adapter detected one).

    ``type`` uses Anthropic/OpenAI error-type strings (``api_error``, ``overloaded_error``…),
    ``status`` the HTTP status the error would have had before the stream started, ``param`` the
    request field it is about (OpenAI's ``param``; Anthropic's errors have none). The message is
    cut to ``MAX_ERROR_MESSAGE`` characters: an upstream's is quoted to the client, and an
    error body may be a megabyte.
    """

    type: str
    message: str
    code: str | None = None
    status: int | None = None
    param: str | None = None

    def __post_init__(self) -> None:
        if len(self.message) > MAX_ERROR_MESSAGE:
            object.__setattr__(self, "message", self.message[:MAX_ERROR_MESSAGE] + "…")


@dataclass(frozen=True, slots=True)
class Extension:
    """What one format carries that the canonical model has no field for (kept, not lost).

    ``name`` is namespaced by the format that produced it (``anthropic.citation``,
    ``anthropic.server_tool_block``, ``openai.logprobs``…); a writer that can express it does,
    the others skip it (logged at debug).
    """

    name: str
    data: Any
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Unrepresentable:
    """Something in the upstream's answer that its client must act on and the canonical model
    has no form for (a Responses ``custom_tool_call`` or ``mcp_approval_request``, a Chat custom
    tool call): left out, the turn would end as if answered. A translated stream ends there
    with the error tail; ``what`` says what it was. Like any part of choice ``choice``, it is
    dropped for a client that shows another choice only."""

    what: str
    choice: int = 0


@dataclass(frozen=True, slots=True)
class Done:
    """The upstream's explicit end of stream (``[DONE]``, ``message_stop``, a terminal event)."""


Part: TypeAlias = (
    MessageStart
    | TextDelta
    | TextRun
    | ArgumentsRun
    | ReasoningDelta
    | ReasoningSignature
    | RedactedReasoning
    | RefusalDelta
    | ToolCallStart
    | ToolCallDelta
    | ToolCallEnd
    | UsageUpdate
    | Finish
    | StreamError
    | Extension
    | Unrepresentable
    | Done
)
