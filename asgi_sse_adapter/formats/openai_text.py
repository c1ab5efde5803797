"""``openai-text``: OpenAI legacy Completions streams (``text_completion``), formats.md §2.2.

Writer contract (§13 "Completions"): data-only events; every chunk is
``{"id": "cmpl-…", "object": "text_completion", "created", "model", "choices": [{"text", "index",
"logprobs": null, "finish_reason"}]}`` with the same ``id``/``created``/``model``; choice indexes
first appear in ascending order; ``finish_reason`` is null until one final chunk per choice
(``text: ""`` and ``stop``, ``length`` or ``content_filter``); the usage chunk (``choices: []``)
only when asked for and reported; then ``data: [DONE]``.

What Completions cannot say (§4.3): refusal text is sent as ordinary ``text``; reasoning is
dropped (logged at debug); tool calls are dropped with one warning per stream, and a
``tool_use`` finish becomes ``stop``. Per-chunk ``logprobs`` are read but not carried (no other
format's writer has a place for them; logged at debug), so every written chunk has
``logprobs: null``.
"""

from __future__ import annotations

import logging
from typing import Any

from .._json import dumps, dumps_fallback
from ..content import ChoiceContent, Content
from ..parts import (
    MAX_CHOICES,
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
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    UsageUpdate,
)
from . import _openai
from .base import (
    Format,
    JSONReader,
    as_int,
    as_str,
    as_timestamp,
    check_response,
    frame,
    strip_prefix,
)

__all__ = ["FORMAT", "PREFIX", "CompletionsReader", "CompletionsWriter", "response_parts"]

logger = logging.getLogger("asgi_sse_adapter")

PREFIX = "cmpl-"
_DONE = b"data: [DONE]\n\n"


class CompletionsReader(JSONReader):
    """Completions chunks → parts. Lenient like the Chat reader: missing ``index`` (the position
    is used), ``choices: null``, usage on any chunk, text and finish in one chunk, a choice that
    keeps talking after its finish (ignored), no ``[DONE]``.

    A chunk that has neither id nor choices before the stream started (Azure's content-filter
    preamble) starts nothing, as in the Chat reader.
    """

    def __init__(self) -> None:
        self._started = False
        self._seen: set[int] = set()
        self._finished: set[int] = set()

    def complete(self) -> bool:
        return self._seen <= self._finished

    def read_object(self, obj: dict[str, Any], event: str | None = None) -> list[Part]:
        """Parts for one decoded chunk (or a whole non-streamed ``text_completion``)."""
        if obj.get("error") or obj.get("object") == "error" or event == "error":
            return [_openai.error_from(obj)]
        parts: list[Part] = []
        usage = obj.get("usage")
        if not self._started and (obj.get("id") or obj.get("choices")):
            self._started = True
            parts.append(
                MessageStart(
                    id=strip_prefix(as_str(obj.get("id")) or None, PREFIX),
                    model=as_str(obj.get("model")) or None,
                    created=as_timestamp(obj.get("created")),
                    # Usage in the first chunk is known at the start (``ChatReader``).
                    usage=_openai.usage_in(usage) if isinstance(usage, dict) else None,
                )
            )
            usage = None
        choices = obj.get("choices")
        if isinstance(choices, list):
            for position, choice in enumerate(choices):
                # Anything but an object is not a choice.
                if isinstance(choice, dict) and self._choice(choice, position, parts):
                    return parts
        if isinstance(usage, dict):
            parts.append(UsageUpdate(_openai.usage_in(usage)))
        return parts

    def _choice(self, choice: dict[str, Any], position: int, parts: list[Part]) -> bool:
        """Read one choice into ``parts``; ``True`` if it reported an error (stop reading)."""
        raw_index = choice.get("index")
        index = as_int(raw_index)
        if raw_index is not None and index is None:
            return False  # not a choice: an index of the wrong type
        c = position if index is None else index
        if not 0 <= c < MAX_CHOICES or c in self._finished:
            return False
        self._seen.add(c)
        text = as_str(choice.get("text"))
        if text:
            parts.append(TextDelta(text, c))
        if choice.get("logprobs") is not None:
            logger.debug("openai-text reader drops logprobs (no canonical field)")
        finish = as_str(choice.get("finish_reason"))
        if finish:
            if finish == "error":
                parts.append(StreamError("api_error", "upstream finished the choice with an error"))
                return True
            self._finished.add(c)
            parts.append(_openai.finish_part(finish, choice, c))
        return False


class CompletionsWriter(_openai.EnvelopeWriter):
    """Parts → Completions chunks (module docstring: the contract)."""

    id_prefix = PREFIX
    chunk_object = "text_completion"

    def __init__(self, options: Any, content: Content) -> None:
        super().__init__(options, content)
        self._choices: set[int] = set()
        self._finished: set[int] = set()
        self._warned_tools = False

    def _emit(self, c: int, text: str, finish: str | None, out: list[bytes]) -> None:
        self._identity()
        choice = {"text": text, "index": c, "logprobs": None, "finish_reason": finish}
        try:
            out.append(self._prefix + dumps(choice) + b"]}\n\n")
        except TypeError:  # what orjson refuses (``_json``): as without it
            out.append(self._prefix + dumps_fallback(choice) + b"]}\n\n")

    def _chunk(self, c: int, text: str, finish: str | None, out: list[bytes]) -> None:
        """One choice chunk; lower indexes not seen yet first appear with an empty text."""
        if c not in self._choices:
            for k in range(c):
                if k not in self._choices:
                    self._choices.add(k)
                    self._emit(k, "", None, out)
            self._choices.add(c)
        self._emit(c, text, finish, out)

    def write(self, part: Part, out: list[bytes]) -> None:
        if isinstance(part, TextDelta | RefusalDelta):
            if part.text and part.choice >= 0 and part.choice not in self._finished:
                self._chunk(part.choice, part.text, None, out)
        elif isinstance(part, Finish):
            if part.choice < 0 or part.choice in self._finished:
                return
            self._finished.add(part.choice)
            self._chunk(part.choice, "", _openai.finish_out(part.reason, False, tools=False), out)
        elif isinstance(part, ToolCallStart | ToolCallDelta | ToolCallEnd):
            if not self._warned_tools:
                self._warned_tools = True
                logger.warning("openai-text cannot carry tool calls: dropped from this stream")
        elif isinstance(part, ReasoningDelta | ReasoningSignature | RedactedReasoning):
            logger.debug("openai-text has no reasoning field: %s dropped", type(part).__name__)
        elif not isinstance(part, UsageUpdate | MessageStart | Done):
            # UsageUpdate is held for the usage chunk; MessageStart only fixes the identity.
            logger.debug("openai-text writer skips %s", type(part).__name__)

    def end(self, out: list[bytes]) -> None:
        # Choices announced only to fill a gap the upstream left end too, exactly once each.
        for c in sorted(self._choices - self._finished):
            self._chunk(c, "", "stop", out)
            self._finished.add(c)
        if self.options.include_usage and self.content.usage_reported:
            self._identity()
            chunk = {
                "id": self._id,
                "object": "text_completion",
                "created": self._created,
                "model": self._model,
                "choices": [],
                "usage": _openai.usage_out(self.content.usage),
            }
            out.append(frame(chunk))
        out.append(_DONE)

    def error(self, error: StreamError, out: list[bytes]) -> None:
        out.append(frame({"error": _openai.error_object(error)}))
        if self.options.done_after_error:
            out.append(_DONE)

    def response(self) -> dict[str, Any]:
        self._identity()
        response: dict[str, Any] = {
            "id": self._id,
            "object": "text_completion",
            "created": self._created,
            "model": self._model,
            "choices": [self._choice_response(c) for _, c in sorted(self.content.choices.items())],
        }
        if self.content.usage_reported:
            response["usage"] = _openai.usage_out(self.content.usage)
        return response

    @staticmethod
    def _choice_response(c: ChoiceContent) -> dict[str, Any]:
        # Refusal text was streamed as text, in order: the response says the same.
        text = "".join(s.text for s in c.segments if s.kind in ("text", "refusal"))
        finish = None
        if c.finish_reason is not None:
            finish = _openai.finish_out(c.finish_reason, False, tools=False)
        return {"text": text, "index": c.index, "logprobs": None, "finish_reason": finish}


def response_parts(response: dict[str, Any]) -> list[Part]:
    """A non-streamed ``text_completion`` (or error body) as canonical parts: it has the shape
    of one chunk carrying every choice's whole text, its finish reason and the usage."""
    response = check_response(response, "choices", list, "a text_completion")
    return CompletionsReader().read_object(response)


FORMAT = Format(
    name="openai-text",
    family="openai",
    reader=CompletionsReader,
    writer=CompletionsWriter,
    error_body=_openai.error_body,
    parse_error_body=_openai.parse_error_body,
    endpoint="/v1/completions",
    terminator=b"data: [DONE]\n\n",
    done_after_error=True,
    response_parts=response_parts,
    choices=True,
    terminator_prefixes=(b"data: [DONE]", b"data:[DONE]"),
)
