"""What the OpenAI-family formats (Chat, Completions, Responses) share: usage objects, finish
reasons, and the error envelope (formats.md §2.1, §5, §6, §9)."""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from .._json import dumps_lenient
from ..content import Content
from ..parts import Finish, FinishReason, StreamError, Usage
from .base import (
    ERROR_STATUS,
    Writer,
    WriterOptions,
    as_dict,
    as_int,
    as_str,
    detail_message,
    text_message,
)

logger = logging.getLogger("asgi_sse_adapter")

FINISH_IN: dict[str, FinishReason] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "content_filter",
}

FINISH_OUT: dict[FinishReason, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "content_filter": "content_filter",
}


def finish_in(value: str) -> FinishReason:
    """An OpenAI ``finish_reason`` as a canonical reason (unknown values: ``end_turn``, logged)."""
    reason = FINISH_IN.get(value)
    if reason is None:
        logger.info("unknown finish_reason %r treated as a normal stop", value[:40])
        return "end_turn"
    return reason


def finish_part(finish: str, choice: dict[str, Any], c: int) -> Finish:
    """The ``Finish`` of choice ``c``. A ``stop`` that names the matched string in vLLM's
    ``stop_reason`` extension (on Chat and Completions chunks alike; a token id there is no
    string) is a ``stop_sequence`` finish carrying it (formats.md §5), for Anthropic clients."""
    matched = choice.get("stop_reason")
    if finish == "stop" and isinstance(matched, str) and matched:
        return Finish("stop_sequence", matched, c)
    return Finish(finish_in(finish), choice=c)


def finish_out(reason: FinishReason, had_tool_calls: bool, *, tools: bool = True) -> str:
    """A canonical reason as an OpenAI ``finish_reason``.

    A plain stop after tool calls becomes ``tool_calls`` (some providers say ``stop``; clients
    only run tools on ``tool_calls``), and ``tool_use`` without any call (or without tool support:
    Completions) is ``stop``.
    """
    if had_tool_calls and reason in ("end_turn", "stop_sequence") and tools:
        return "tool_calls"
    out = FINISH_OUT[reason]
    if out == "tool_calls" and not (tools and had_tool_calls):
        return "stop"
    return out


def usage_in(obj: dict[str, Any]) -> Usage:
    """An OpenAI Chat/Completions usage object (also litellm's cache extension fields)."""
    prompt = as_dict(obj.get("prompt_tokens_details"))
    completion = as_dict(obj.get("completion_tokens_details"))
    cache_write = as_int(prompt.get("cache_write_tokens"))
    if cache_write is None:
        cache_write = as_int(obj.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=as_int(obj.get("prompt_tokens")),
        output_tokens=as_int(obj.get("completion_tokens")),
        cache_read_tokens=as_int(prompt.get("cached_tokens")),
        cache_write_tokens=cache_write,
        reasoning_tokens=as_int(completion.get("reasoning_tokens")),
    )


def usage_out(usage: Usage) -> dict[str, Any]:
    """A canonical usage as an OpenAI Chat/Completions usage object."""
    prompt = usage.input_tokens or 0
    completion = usage.output_tokens or 0
    out: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if usage.cache_read_tokens is not None or usage.cache_write_tokens:
        details: dict[str, Any] = {"cached_tokens": usage.cache_read_tokens or 0}
        if usage.cache_write_tokens:
            details["cache_write_tokens"] = usage.cache_write_tokens
        out["prompt_tokens_details"] = details
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return out


def error_object(error: StreamError) -> dict[str, Any]:
    """The ``{"message", "type", "param", "code"}`` object OpenAI puts under ``error``."""
    code = error.code
    if code is None and error.type in ERROR_STATUS:
        code = ERROR_STATUS[error.type][2]
    return {"message": error.message, "type": error.type, "param": error.param, "code": code}


def error_body(error: StreamError) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of an OpenAI API error for ``error``.

    The status is the upstream's own when it had an HTTP error status (400-599): the SDKs pick
    the exception class and whether to retry from it (408, 409, 429 and 5xx are retried), so a
    422 stays a 422 and a 504 a 504. Anthropic's 529 (overloaded), which no OpenAI API answers,
    is 503. Without an upstream status: the type's status (formats.md §9.4), else 500.
    """
    status = error.status
    if status is None or not 400 <= status <= 599:
        known = ERROR_STATUS.get(error.type)
        status = known[1] if known is not None else 500
    elif status == 529:
        status = 503
    return status, {"error": error_object(error)}


def error_from(obj: dict[str, Any], status: int | None = None) -> StreamError:
    """Read an OpenAI-style error object (``{"error": {...}}``, vLLM's flat form, TGI's
    ``{"error": "text"}`` or FastAPI's ``{"detail": ...}``)."""
    inner = obj.get("error")
    err = inner if isinstance(inner, dict) else obj
    message = (
        as_str(err.get("message"))
        or (inner if isinstance(inner, str) else None)
        or detail_message(obj.get("detail"))
    )
    type_ = as_str(err.get("type"))
    code = as_str(err.get("code"))
    if code == "rate_limit_exceeded" or type_ in _RATE_LIMIT_TYPES:
        # OpenAI types a rate limit by what ran out ("requests", "tokens"): the canonical
        # type gives its status (429, which the SDKs retry) where no HTTP status came with it.
        type_ = "rate_limit_error"
    return StreamError(
        type=type_ or _type_for_status(status),
        message=message or (f"upstream returned HTTP {status}" if status else "upstream error"),
        code=code,
        status=status,
        param=as_str(err.get("param")),
    )


_RATE_LIMIT_TYPES = frozenset({"requests", "tokens"})


def parse_error_body(status: int, body: Any) -> StreamError:
    """An OpenAI-format non-2xx body (decoded JSON, or text) as an error."""
    if isinstance(body, dict):
        return error_from(body, status)
    return StreamError(_type_for_status(status), text_message(status, body), None, status)


def _type_for_status(status: int | None) -> str:
    for type_, (anthropic_status, openai_status, _) in ERROR_STATUS.items():
        if status in (anthropic_status, openai_status) and type_ not in ("billing_error",):
            return type_
    if status is not None and 400 <= status < 500:
        return "invalid_request_error"  # a 4xx the table does not know: still the client's
    return "api_error"


class Envelope:
    """What every chunk of one OpenAI Chat/Completions stream repeats: ``id`` (``prefix`` + the
    upstream's id, or a fresh one), ``created`` and ``model``, and those fields pre-serialised as
    the bytes that open each chunk up to its ``choices`` list."""

    __slots__ = ("created", "head", "id", "model")

    def __init__(self, content: Content, options: WriterOptions, prefix: str, object_: str) -> None:
        self.id = prefix + (content.id if content.id is not None else options.new_id())
        self.created = content.created if content.created is not None else options.now()
        self.model = content.model if content.model is not None else "unknown"
        self.head = (
            b'data: {"id":'
            + dumps_lenient(self.id)
            + f',"object":"{object_}","created":{self.created},"model":'.encode()
            + dumps_lenient(self.model)
            + b',"choices":['
        )


class EnvelopeWriter(Writer):
    """A Chat or Completions writer: every chunk opens with the stream's ``Envelope``, made when
    the first chunk is written (``_identity``) and kept as ``_id``, ``_created``, ``_model`` and
    ``_prefix`` (the chunk's bytes up to its ``choices`` list)."""

    id_prefix: ClassVar[str]
    chunk_object: ClassVar[str]

    def __init__(self, options: WriterOptions, content: Content) -> None:
        super().__init__(options, content)
        self._prefix = b""
        self._id = ""
        self._created = 0
        self._model = ""

    def _identity(self) -> None:
        if self._prefix:
            return
        env = Envelope(self.content, self.options, self.id_prefix, self.chunk_object)
        self._id, self._created, self._model, self._prefix = (
            env.id,
            env.created,
            env.model,
            env.head,
        )
