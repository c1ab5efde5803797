"""``anthropic-text``: Anthropic legacy Text Completions streams (/v1/complete), formats.md §2.5.

The version is chosen by the request's ``anthropic-version`` header:

- ``2023-06-01``: named events. ``event: completion`` with
  ``{"type": "completion", "id", "completion": <delta>, "stop_reason", "stop", "model"}``,
  ``event: ping``, ``event: error``; the last ``completion`` event has a ``stop_reason``.
- ``2023-01-01``: data-only. Every event carries the **whole** completion so far plus
  ``stop_reason``, ``truncated``, ``stop``, ``exception``, ``log_id`` and ``model``; the stream
  ends with ``data: [DONE]``.

The reader accepts both, event by event: an event is cumulative when it has no ``type`` and
carries one of the legacy keys ``log_id``, ``truncated``, ``exception`` (or when the reader was
built for ``2023-01-01``). A cumulative event's new text is what extends the text seen so far.
If the upstream revised earlier text (the event does not start with it), the revision is not
sent (the client already has the old text, and re-sending the whole text would duplicate it):
a warning is logged and the revised text becomes the base for the next events. Text never
appears twice; after a revision the client's text may differ from the upstream's final text.

``stop_reason`` ``stop_sequence`` becomes a ``stop_sequence`` finish carrying ``stop``, or
``end_turn`` when no sequence is named or it is the API's own turn delimiter ``"\n\nHuman:"``
(Text Completions has no other word for a natural end);
``max_tokens`` stays ``max_tokens``; a ``2023-01-01`` ``truncated: true`` without a stop reason is
``max_tokens``; a non-null ``exception`` is an error. There is no usage in this format.

``FORMAT`` (registered as ``anthropic-text``) writes ``2023-06-01``. Contract (§13 "Text
Completions 2023-06-01"): ``event: completion`` events with ``type: "completion"``, one per text
delta with ``stop_reason: null``; exactly one final ``completion`` event, at the end, with
``completion: ""``, the ``stop_reason`` (``stop_sequence`` or ``max_tokens``) and ``stop`` (the
matched sequence or null); ``event: ping`` keep-alives; the error tail is ``event: error`` with
``{"type": "error", "error": {"type", "message"}}``; no ``[DONE]`` unless asked for.

``FORMAT_2023_01_01`` (not registered: reachable as
``asgi_sse_adapter.formats.anthropic_text.FORMAT_2023_01_01``, for old clients that send
``anthropic-version: 2023-01-01``) writes the cumulative form: data-only events with the whole
``completion`` so far and the legacy fields (``truncated: false``, ``exception: null``,
``log_id``, ``stop``, ``model``), then ``data: [DONE]``; its error tail is a data event with
``exception`` set to the message, then ``data: [DONE]`` (the format's own terminator, always
sent).

What Text Completions cannot say: tool calls and reasoning are dropped (one warning per stream
and kind); refusal text is sent as text; only choice 0 is written (others are dropped, logged at
debug). Finish reasons: ``end_turn``, ``stop_sequence``, ``pause_turn``, ``refusal``,
``content_filter`` and ``tool_use`` → ``stop_sequence``; ``max_tokens`` and
``context_window_exceeded`` → ``max_tokens`` (§5).
"""

from __future__ import annotations

import dataclasses
import logging
from abc import abstractmethod
from typing import Any

from ..content import Content
from ..parts import (
    Done,
    Finish,
    FinishReason,
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
)
from . import _anthropic
from .base import (
    Format,
    JSONReader,
    Writer,
    as_dict,
    as_str,
    check_response,
    frame,
    strip_prefix,
)

__all__ = [
    "FORMAT",
    "FORMAT_2023_01_01",
    "PREFIX",
    "TextCompletionsCumulativeWriter",
    "TextCompletionsReader",
    "TextCompletionsWriter",
    "response_parts",
]

logger = logging.getLogger("asgi_sse_adapter")

PREFIX = "compl_"
# The legacy API's turn delimiter: always a stop sequence, the one a normal answer ends at.
HUMAN_TURN = "\n\nHuman:"
_LEGACY_KEYS = ("log_id", "truncated", "exception")
_PING = frame({"type": "ping"}, "ping")
_DONE = b"data: [DONE]\n\n"

STOP_OUT: dict[FinishReason, str] = {
    "end_turn": "stop_sequence",
    "stop_sequence": "stop_sequence",
    "pause_turn": "stop_sequence",
    "refusal": "stop_sequence",
    "content_filter": "stop_sequence",
    "tool_use": "stop_sequence",
    "max_tokens": "max_tokens",
    "context_window_exceeded": "max_tokens",
}
"""Canonical finish reason → Text Completions ``stop_reason`` (formats.md §5)."""


class TextCompletionsReader(JSONReader):
    """Text Completions events (both versions) → parts (module docstring: the rules).

    ``cumulative=True`` reads every completion event as ``2023-01-01`` (whole text so far);
    ``None`` (the default) decides per event.
    """

    def __init__(self, cumulative: bool | None = None) -> None:
        self._cumulative = cumulative
        self._started = False
        self._finished = False
        self._text = ""  # cumulative mode: the text the client has been given so far

    def read_object(self, obj: dict[str, Any], event: str | None = None) -> list[Part]:
        """Parts for one decoded event (or a whole non-streamed completion)."""
        kind = as_str(obj.get("type")) or event
        if (
            kind == "error"
            or event == "error"
            or (isinstance(obj.get("error"), dict) and "completion" not in obj)
        ):
            return [_anthropic.error_from(obj)]
        if kind == "completion" or (kind is None and "completion" in obj):
            return self._completion(obj)
        if kind != "ping":
            logger.debug("anthropic-text reader skips event %r", (kind or "")[:60])
        return []

    def _completion(self, obj: dict[str, Any]) -> list[Part]:
        parts: list[Part] = []
        if not self._started:
            self._started = True
            ident = as_str(obj.get("id")) or as_str(obj.get("log_id"))
            parts.append(
                MessageStart(id=strip_prefix(ident, PREFIX), model=as_str(obj.get("model")))
            )
        cumulative = self._cumulative
        if cumulative is None:
            cumulative = "type" not in obj and any(k in obj for k in _LEGACY_KEYS)
        text = as_str(obj.get("completion"))
        if text and not self._finished:
            delta = self._delta(text) if cumulative else text
            if delta:
                parts.append(TextDelta(delta))
        exception = obj.get("exception")
        if exception:  # null, "", false: no exception
            parts.append(StreamError("api_error", _exception_message(exception)))
            return parts
        if not self._finished:
            finish = self._finish(obj)
            if finish is not None:
                self._finished = True
                parts.append(finish)
        return parts

    def _delta(self, text: str) -> str:
        """The new part of a cumulative ``text`` (revisions are not re-sent, see module doc)."""
        seen = self._text
        self._text = text
        if text.startswith(seen):
            return text[len(seen) :]
        logger.warning(
            "anthropic-text upstream revised text it had already sent (%d characters before, "
            "%d now); the revision is not forwarded",
            len(seen),
            len(text),
        )
        return ""

    @staticmethod
    def _finish(obj: dict[str, Any]) -> Finish | None:
        stop_reason = as_str(obj.get("stop_reason"))
        if stop_reason == "stop_sequence":
            matched = as_str(obj.get("stop"))
            # The API's own turn delimiter, always in force, ends every normal answer: an end of
            # turn (the writer says ``end_turn`` as that stop, the other way round), not a stop
            # sequence the client asked for.
            if not matched or matched == HUMAN_TURN:
                return Finish("end_turn")
            return Finish("stop_sequence", matched)
        if stop_reason:
            return Finish(_anthropic.stop_in(stop_reason))
        if obj.get("truncated") is True:
            return Finish("max_tokens")
        return None


def _exception_message(exception: Any) -> str:
    if isinstance(exception, str) and exception:
        return exception
    if isinstance(exception, dict):
        message = as_str(exception.get("message")) or as_str(
            as_dict(exception.get("error")).get("message")
        )
        if message:
            return message
    return "upstream reported an exception"


class _TextWriterBase(Writer):
    """What both Text Completions writers share: identity, dropping, the final response."""

    def __init__(self, options: Any, content: Content) -> None:
        super().__init__(options, content)
        self._id = ""
        self._model = ""
        self._finished = False
        self._warned: set[str] = set()

    def _identity(self) -> None:
        if not self._id:
            c = self.content
            self._id = PREFIX + (c.id if c.id is not None else self.options.new_id())
            self._model = c.model if c.model is not None else "unknown"

    @abstractmethod
    def _text(self, text: str, out: list[bytes]) -> None:
        """Emit one text delta (choice 0, before its finish)."""

    def write(self, part: Part, out: list[bytes]) -> None:
        if getattr(part, "choice", 0) != 0:
            logger.debug("anthropic-text has no choices: choice %s dropped", part.choice)  # type: ignore[union-attr]
            return
        if isinstance(part, TextDelta | RefusalDelta):
            if part.text and not self._finished:
                self._identity()
                self._text(part.text, out)
        elif isinstance(part, Finish):
            # Recorded in ``content``; the single final event is written at ``end``.
            self._finished = True
        elif isinstance(part, ToolCallStart | ToolCallDelta | ToolCallEnd):
            self._warn("tool calls")
        elif isinstance(part, ReasoningDelta | ReasoningSignature | RedactedReasoning):
            self._warn("reasoning")
        elif not isinstance(part, MessageStart | Done):
            logger.debug("anthropic-text writer skips %s", type(part).__name__)

    def _warn(self, kind: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            logger.warning("anthropic-text cannot carry %s: dropped from this stream", kind)

    def _stop(self) -> tuple[str, str | None]:
        """The final ``stop_reason`` and ``stop``."""
        choice = self.content.choices.get(0)
        if choice is None or choice.finish_reason is None:
            return "stop_sequence", None
        reason = STOP_OUT[choice.finish_reason]
        return reason, choice.stop_sequence if reason == "stop_sequence" else None

    def _full_text(self) -> str:
        choice = self.content.choices.get(0)
        if choice is None:
            return ""
        return "".join(s.text for s in choice.segments if s.kind in ("text", "refusal"))

    def _final_stop(self) -> tuple[str | None, str | None]:
        """Stop reason and sequence for the response: ``None`` while the choice has not ended."""
        choice = self.content.choices.get(0)
        if choice is None or choice.finish_reason is None:
            return None, None
        return self._stop()


class TextCompletionsWriter(_TextWriterBase):
    """Parts → Text Completions ``2023-06-01`` events (module docstring: the contract)."""

    def _event(self, completion: str, out: list[bytes], final: bool = False) -> None:
        self._identity()
        stop_reason, stop = self._stop() if final else (None, None)
        event: dict[str, Any] = {
            "type": "completion",
            "id": self._id,
            "completion": completion,
            "stop_reason": stop_reason,
            "model": self._model,
        }
        if final:
            event["stop"] = stop
        out.append(frame(event, "completion"))

    def _text(self, text: str, out: list[bytes]) -> None:
        self._event(text, out)

    def end(self, out: list[bytes]) -> None:
        self._event("", out, final=True)

    def error(self, error: StreamError, out: list[bytes]) -> None:
        out.append(_anthropic.error_event(error))
        if self.options.done_after_error:
            out.append(_DONE)

    def keepalive(self) -> bytes | None:
        return _PING

    def response(self) -> dict[str, Any]:
        self._identity()
        stop_reason, stop = self._final_stop()
        return {
            "type": "completion",
            "id": self._id,
            "completion": self._full_text(),
            "stop_reason": stop_reason,
            "stop": stop,
            "model": self._model,
        }


class TextCompletionsCumulativeWriter(_TextWriterBase):
    """Parts → Text Completions ``2023-01-01`` events: cumulative text, then ``data: [DONE]``."""

    def __init__(self, options: Any, content: Content) -> None:
        super().__init__(options, content)
        self._so_far = ""

    def _event(
        self,
        stop_reason: str | None,
        stop: str | None,
        exception: str | None,
        out: list[bytes],
    ) -> None:
        self._identity()
        event = {
            "completion": self._so_far,
            "stop_reason": stop_reason,
            "truncated": False,
            "stop": stop,
            "exception": exception,
            "log_id": self._id,
            "model": self._model,
        }
        out.append(frame(event))

    def _text(self, text: str, out: list[bytes]) -> None:
        self._so_far += text
        self._event(None, None, None, out)

    def end(self, out: list[bytes]) -> None:
        stop_reason, stop = self._stop()
        self._event(stop_reason, stop, None, out)
        out.append(_DONE)

    def error(self, error: StreamError, out: list[bytes]) -> None:
        self._event(None, None, error.message, out)
        out.append(_DONE)

    def response(self) -> dict[str, Any]:
        self._identity()
        stop_reason, stop = self._final_stop()
        return {
            "completion": self._full_text(),
            "stop_reason": stop_reason,
            "truncated": False,
            "stop": stop,
            "exception": None,
            "log_id": self._id,
            "model": self._model,
        }


def response_parts(response: dict[str, Any]) -> list[Part]:
    """A non-streamed completion (either version) or error body as canonical parts."""
    response = check_response(response, "completion", str, "a completion")
    if "type" not in response and "completion" in response:
        return TextCompletionsReader(cumulative=True).read_object(response)
    return TextCompletionsReader().read_object(response)


def _cumulative_reader() -> TextCompletionsReader:
    return TextCompletionsReader(cumulative=True)


FORMAT = Format(
    name="anthropic-text",
    family="anthropic",
    reader=TextCompletionsReader,
    writer=TextCompletionsWriter,
    error_body=_anthropic.error_body,
    parse_error_body=_anthropic.parse_error_body,
    endpoint="/v1/complete",
    response_parts=response_parts,
)

FORMAT_2023_01_01 = dataclasses.replace(
    FORMAT,
    reader=_cumulative_reader,
    writer=TextCompletionsCumulativeWriter,
    terminator=b"data: [DONE]\n\n",
    terminator_prefixes=(b"data: [DONE]", b"data:[DONE]"),
)
"""The ``2023-01-01`` (cumulative) variant; not in the registry (module docstring)."""
