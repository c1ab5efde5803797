"""What the Anthropic formats (Messages, legacy Text Completions) share: usage, stop reasons and
the error envelope (formats.md §2.4, §5, §6, §9)."""

from __future__ import annotations

import logging
from typing import Any

from ..parts import FinishReason, StreamError, Usage
from .base import ERROR_STATUS, as_dict, as_int, as_str, detail_message, frame, text_message

logger = logging.getLogger("asgi_sse_adapter")

STOP_IN: dict[str, FinishReason] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "tool_use": "tool_use",
    "pause_turn": "pause_turn",
    "refusal": "refusal",
    "model_context_window_exceeded": "context_window_exceeded",
}

STOP_OUT: dict[FinishReason, str] = {
    "end_turn": "end_turn",
    "stop_sequence": "stop_sequence",
    "max_tokens": "max_tokens",
    "context_window_exceeded": "model_context_window_exceeded",
    "tool_use": "tool_use",
    "refusal": "refusal",
    "content_filter": "refusal",
    "pause_turn": "pause_turn",
}


def stop_in(value: str) -> FinishReason:
    """An Anthropic ``stop_reason`` as a canonical reason (unknown: ``end_turn``, logged)."""
    reason = STOP_IN.get(value)
    if reason is None:
        logger.info("unknown stop_reason %r treated as end_turn", value[:40])
        return "end_turn"
    return reason


class UsageState:
    """Anthropic usage as reported so far: values are cumulative, later non-null values win."""

    __slots__ = ("cache_read", "cache_write", "input", "output", "thinking")

    def __init__(self) -> None:
        self.input: int | None = None
        self.output: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.thinking: int | None = None

    def update(self, obj: dict[str, Any]) -> Usage:
        """Merge one usage object; return the canonical usage (input includes the cache)."""
        for attr, key in (
            ("input", "input_tokens"),
            ("output", "output_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
        ):
            value = as_int(obj.get(key))
            if value is not None:
                setattr(self, attr, value)
        thinking = as_int(as_dict(obj.get("output_tokens_details")).get("thinking_tokens"))
        if thinking is not None:
            self.thinking = thinking
        total_input = None
        if self.input is not None or self.cache_read is not None or self.cache_write is not None:
            total_input = (self.input or 0) + (self.cache_read or 0) + (self.cache_write or 0)
        return Usage(total_input, self.output, self.cache_read, self.cache_write, self.thinking)


def usage_out(usage: Usage) -> dict[str, Any]:
    """A canonical usage as an Anthropic usage object (input excludes cache reads and writes)."""
    read = usage.cache_read_tokens or 0
    write = usage.cache_write_tokens or 0
    out: dict[str, Any] = {
        "input_tokens": max(0, (usage.input_tokens or 0) - read - write),
        "output_tokens": usage.output_tokens or 0,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
    }
    if usage.reasoning_tokens is not None:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def error_type(error: StreamError) -> str:
    """An Anthropic error type for ``error`` (OpenAI types are mapped through the status; a 4xx
    the table does not know is ``invalid_request_error``)."""
    status = error.status
    if error.type == "invalid_request_error" and status is not None and 400 <= status < 500:
        # OpenAI types every 4xx so (a wrong key's 401, an unknown model's 404); Anthropic has
        # a type per status (formats.md §9.4), and its API answers each status with its own.
        return _type_for(status)
    if error.type in ERROR_STATUS:
        return error.type
    if status is not None:
        for type_, (anthropic_status, openai_status, _) in ERROR_STATUS.items():
            if status in (anthropic_status, openai_status):
                return type_
    if error.type in ("rate_limit_exceeded", "insufficient_quota"):
        return "rate_limit_error"
    if status is not None and 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"


def error_object(error: StreamError) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}``."""
    return {"type": "error", "error": {"type": error_type(error), "message": error.message}}


def error_event(error: StreamError) -> bytes:
    """The in-band ``event: error`` both Anthropic SDKs raise on."""
    return frame(error_object(error), "error")


def error_body(error: StreamError) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of an Anthropic API error for ``error``.

    The status is the upstream's own when it had an HTTP error status (400-599): the SDKs pick
    the exception class and whether to retry from it (408, 409, 429 and 5xx are retried), so a
    422 stays a 422 and a 504 a 504; an overload is 529, as Anthropic's API answers it. Without
    an upstream status: the type's status (formats.md §9.4).
    """
    type_ = error_type(error)
    status = error.status
    if status is None or not 400 <= status <= 599 or type_ == "overloaded_error":
        status = ERROR_STATUS[type_][0]
    return status, error_object(error)


def error_from(obj: dict[str, Any], status: int | None = None) -> StreamError:
    """Read ``{"type": "error", "error": {...}}`` (or a bare ``{"error": {...}}``, an
    ``{"error": "text"}``, FastAPI's ``{"detail": ...}``)."""
    raw = obj.get("error")
    inner = as_dict(raw)
    # {"error": "Overloaded"} too
    message = as_str(inner.get("message")) or as_str(raw) or detail_message(obj.get("detail"))
    return StreamError(
        type=as_str(inner.get("type")) or (_type_for(status) if status else "api_error"),
        message=message or (f"upstream returned HTTP {status}" if status else "upstream error"),
        status=status,
    )


def parse_error_body(status: int, body: Any) -> StreamError:
    """An Anthropic-format non-2xx body (decoded JSON, or text) as an error."""
    if isinstance(body, dict):
        err = error_from(body, status)
        if not isinstance(body.get("error"), dict):
            err = StreamError(_type_for(status), err.message, None, status)
        return err
    return StreamError(_type_for(status), text_message(status, body), None, status)


def _type_for(status: int) -> str:
    for type_, (anthropic_status, _, _) in ERROR_STATUS.items():
        if status == anthropic_status:
            return type_
    if 400 <= status < 500:
        return "invalid_request_error"
    return "api_error"
