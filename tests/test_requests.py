"""Request-body translation (``asgi_sse_adapter.requests``).

Concrete expected bodies for every direction, round trips compared on normalised canonical
forms, unsupported fields in both modes, the effort ↔ budget table, and the produced bodies
checked against the official SDKs' TypedDict request params.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import itertools
import json
from typing import Any, Literal

import pytest
from anthropic.types import (
    Base64ImageSourceParam,
    Base64PDFSourceParam,
    DocumentBlockParam,
    ImageBlockParam,
    MessageCreateParams,
    TextBlockParam,
    ThinkingBlockParam,
    ToolParam,
    ToolResultBlockParam,
    ToolUseBlockParam,
    URLImageSourceParam,
    URLPDFSourceParam,
)
from anthropic.types import PlainTextSourceParam as AnthropicTextSourceParam
from anthropic.types.message_create_params import MessageCreateParamsBase
from openai.types import completion_create_params
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionContentPartImageParam,
    ChatCompletionContentPartTextParam,
    ChatCompletionDeveloperMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionSystemMessageParam,
    ChatCompletionToolMessageParam,
    ChatCompletionUserMessageParam,
)
from openai.types.chat import (
    completion_create_params as chat_params,
)
from openai.types.chat.chat_completion_content_part_param import File as ChatFilePart
from openai.types.chat.chat_completion_content_part_param import FileFile as ChatFile
from openai.types.responses import (
    EasyInputMessageParam,
    FunctionToolParam,
    ResponseFunctionToolCallParam,
    ResponseInputFileParam,
    ResponseInputImageParam,
    ResponseInputTextParam,
    ResponseOutputTextParam,
    response_create_params,
)
from openai.types.responses.response_input_param import FunctionCallOutput

from asgi_sse_adapter.errors import SSEAdapterError, UnknownFormat
from asgi_sse_adapter.requests import (
    EFFORT_BUDGETS,
    CanonicalRequest,
    Message,
    RequestTranslationError,
    Text,
    Thinking,
    TranslatedRequest,
    budget_to_effort,
    estimate_input_tokens,
    parse_request,
    render_request,
    translate_request,
)

CHAT = "openai-chat"
TEXT = "openai-text"
RESPONSES = "openai-responses"
MESSAGES = "anthropic-messages"
ATEXT = "anthropic-text"
ALL = (CHAT, TEXT, RESPONSES, MESSAGES, ATEXT)

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
PNG = "iVBORw0KGgo="
# The assistant's answer that closes the rich requests' tool loop (with thinking on, Anthropic
# needs an open tool loop to start with its own signed thinking block: see the thinking tests).
ANSWER = "It is 18C and sunny; the time is 14:05."

# ---------------------------------------------------------------------------------------------
# Rich requests, one per format, all saying the same thing


CHAT_RICH: dict[str, Any] = {
    "model": "gpt-4.1",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather too.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {"type": "function", "function": {"name": "get_time"}},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_completion_tokens": 20000,
    "temperature": 1,
    "stop": "END",
    "stream": True,
    "stream_options": {"include_usage": True},
    "reasoning_effort": "medium",
    "user": "user-42",
}

MESSAGES_FROM_CHAT_RICH: dict[str, Any] = {
    "model": "gpt-4.1",
    "max_tokens": 20000,
    "system": "You are terse.\n\nAnswer in French.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check the weather too."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "14:05"},
            ],
        },
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {"name": "get_weather", "description": "Weather by city", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 1,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "user-42"},
    "stream": True,
    "thinking": {"type": "enabled", "budget_tokens": 4096},
}

MESSAGES_RICH: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 20000,
    "system": [
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in French."},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Weather needed.", "signature": "c2ln"},
                {"type": "text", "text": "Let me check the weather too."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "14:05"}],
                },
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks!"}]},
    ],
    "tools": [
        {"name": "get_weather", "description": "Weather by city", "input_schema": WEATHER_SCHEMA},
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "temperature": 1,
    "stop_sequences": ["END", "STOP"],
    "stream": True,
    "thinking": {"type": "enabled", "budget_tokens": 16384},
    "metadata": {"user_id": "user-42"},
}

CHAT_FROM_MESSAGES_RICH: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "messages": [
        {"role": "system", "content": "You are terse.\n\nAnswer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather too.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "toolu_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "14:05"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
        },
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_completion_tokens": 20000,
    "temperature": 1,
    "user": "user-42",
    "stop": ["END", "STOP"],
    "stream": True,
    "stream_options": {"include_usage": True},
    "reasoning_effort": "high",
}

RESPONSES_RICH: dict[str, Any] = {
    "model": "gpt-5",
    "instructions": "You are terse.",
    "input": [
        {"role": "developer", "content": "Answer in French."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in these pictures?"},
                {
                    "type": "input_image",
                    "image_url": "https://example.com/cat.png",
                    "detail": "auto",
                },
                {
                    "type": "input_image",
                    "image_url": f"data:image/png;base64,{PNG}",
                    "detail": "auto",
                },
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "Let me check the weather too.", "annotations": []}
            ],
        },
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
        {
            "type": "function_call_output",
            "call_id": "call_2",
            "output": [{"type": "input_text", "text": "14:05"}],
        },
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": WEATHER_SCHEMA,
            "strict": False,
        },
        {"type": "function", "name": "get_time", "parameters": None, "strict": False},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_output_tokens": 20000,
    "temperature": 1,
    "stream": True,
    "reasoning": {"effort": "low"},
    "user": "user-42",
}

CHAT_FROM_RESPONSES_RICH: dict[str, Any] = {
    "model": "gpt-5",
    "messages": [
        {"role": "system", "content": "You are terse.\n\nAnswer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.com/cat.png", "detail": "auto"},
                },
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check the weather too.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
                "strict": False,
            },
        },
        {"type": "function", "function": {"name": "get_time", "strict": False}},
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "max_completion_tokens": 20000,
    "temperature": 1,
    "user": "user-42",
    "stream": True,
    "stream_options": {"include_usage": True},
    "reasoning_effort": "low",
}


# ---------------------------------------------------------------------------------------------
# Helpers


def canonical(body: dict[str, Any], fmt: str, *, thinking: bool = True) -> dict[str, Any]:
    """The canonical form of ``body``, normalised for comparison across formats.

    Normalised: the system parts joined, tool arguments parsed, an image ``detail`` of
    ``"auto"`` equal to none, ``store`` at the format's default equal to none, tool ids as
    given, the reasoning reduced to what it asks for (an effort level; thinking off equals no
    setting), parallel tool calls reduced to "one at a time or not", ``include_usage`` and
    ``source`` left out (the upstream is always asked for usage; the source is the format).
    """
    request, _ = parse_request(copy.deepcopy(body), fmt)
    return normalise(request, thinking=thinking)


# What each format does with no ``store`` at all: Chat keeps nothing, Responses keeps the response.
STORE_DEFAULT = {CHAT: False, RESPONSES: True}


def normalise(request: CanonicalRequest, *, thinking: bool = True) -> dict[str, Any]:
    """See ``canonical``; ``thinking=False`` also leaves out thinking parts."""
    messages = []
    for message in request.messages:
        parts = []
        for part in message.parts:
            if isinstance(part, Thinking) and not thinking:
                continue
            entry = {"kind": type(part).__name__, **dataclasses.asdict(part)}
            if "arguments" in entry:
                entry["arguments"] = json.loads(entry["arguments"] or "{}")
            if entry.get("detail") == "auto":
                entry["detail"] = None
            for item in entry.get("content", []):
                if item.get("detail") == "auto":
                    item["detail"] = None
            parts.append(entry)
        messages.append({"role": message.role, "parts": parts})
    reasoning = request.reasoning
    effort: str | None = None
    if reasoning is not None:
        if reasoning.effort is not None:
            effort = reasoning.effort
        elif reasoning.budget is not None:
            effort = budget_to_effort(reasoning.budget)
        else:
            effort = reasoning.mode
    if effort in ("none", "disabled"):
        effort = None  # thinking off is no setting at all once it crossed (a documented limit)
    choice = request.tool_choice
    # Parallel calls are the default, and moot when no tool may be called.
    serial = request.parallel_tool_calls is False and not (choice and choice.kind == "none")
    tools = []
    for tool in request.tools:
        spec = dataclasses.asdict(tool)
        if spec["parameters"] in (None, {"type": "object", "properties": {}}):
            spec["parameters"] = None
        spec["strict"] = bool(spec["strict"])
        tools.append(spec)
    extras = dict(request.extras)
    if request.source in STORE_DEFAULT and extras.get("store") is STORE_DEFAULT[request.source]:
        del extras["store"]
    return {
        "model": request.model,
        "system": "\n\n".join(request.system),
        "messages": messages,
        "tools": tools,
        "tool_choice": request.tool_choice,
        "serial_tool_calls": serial,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "top_k": request.top_k,
        "stop": request.stop,
        "stream": request.stream,
        "effort": effort,
        "user": request.user,
        "response_format": request.response_format,
        "verbosity": request.verbosity,
        "extras": extras,
    }


def via(body: dict[str, Any], *formats: str) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Translate ``body`` through each consecutive pair of ``formats``; all dropped names."""
    dropped: list[str] = []
    for source, target in itertools.pairwise(formats):
        result = translate_request(copy.deepcopy(body), source, target)
        body = result.body
        dropped.extend(result.dropped)
    return body, tuple(dropped)


def typed_keys(typed: Any) -> tuple[frozenset[str], frozenset[str]]:
    """(required keys, all keys) of a TypedDict class."""
    required = frozenset(typed.__required_keys__)
    return required, required | frozenset(typed.__optional_keys__)


def assert_typed(
    obj: dict[str, Any], typed: Any, *, wire_only: frozenset[str] = frozenset()
) -> None:
    """``obj`` has every required key of ``typed`` and no key it does not declare."""
    required, allowed = typed_keys(typed)
    assert required <= obj.keys(), (typed.__name__, required - obj.keys())
    assert obj.keys() <= allowed | wire_only, (typed.__name__, obj.keys() - allowed)


# anthropic 1.0 took the sampling parameters out of the typed signature; the wire API still
# takes them (models that reject them answer 400): formats.md, the SDK's MIGRATION.md.
ANTHROPIC_WIRE_ONLY = frozenset({"temperature", "top_p", "top_k"})


def assert_valid_messages_body(body: dict[str, Any]) -> None:
    """Top level, messages and blocks of an Anthropic Messages body match the SDK params."""
    assert_typed(body, MessageCreateParamsBase, wire_only=ANTHROPIC_WIRE_ONLY | {"stream"})
    assert MessageCreateParams is not None
    roles = [message["role"] for message in body["messages"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "roles must alternate"
    blocks = {
        "text": TextBlockParam,
        "image": ImageBlockParam,
        "tool_use": ToolUseBlockParam,
        "tool_result": ToolResultBlockParam,
        "thinking": ThinkingBlockParam,
        "document": DocumentBlockParam,
    }
    for message in body["messages"]:
        content = message["content"]
        if isinstance(content, str):
            assert content.strip(), "Anthropic rejects blank text"
            continue
        seen_other = False
        for block in content:
            assert_typed(block, blocks[block["type"]])
            if block["type"] == "image":
                source = {"url": URLImageSourceParam, "base64": Base64ImageSourceParam}
                assert_typed(block["source"], source[block["source"]["type"]])
            if block["type"] == "document":
                assert message["role"] == "user"
                source = {
                    "url": URLPDFSourceParam,
                    "base64": Base64PDFSourceParam,
                    "text": AnthropicTextSourceParam,
                }
                assert_typed(block["source"], source[block["source"]["type"]])
                if block["source"]["type"] == "base64":
                    assert block["source"]["media_type"] == "application/pdf"
            if block["type"] == "tool_result":
                assert not seen_other, "tool results must open the user message"
            else:
                seen_other = True
            if block["type"] == "text":
                assert block["text"].strip(), "Anthropic rejects empty or blank text blocks"
    for stop in body.get("stop_sequences", []):
        assert stop.strip(), "Anthropic rejects empty or blank stop sequences"
    for tool in body.get("tools", []):
        assert_typed(tool, ToolParam)
    last = body["messages"][-1]
    if last["role"] == "assistant":
        thinking = body.get("thinking", {"type": "disabled"})
        assert thinking["type"] == "disabled", "Anthropic takes no thinking with a prefill"
        content = last["content"]
        texts = (
            [content]
            if isinstance(content, str)
            else [block["text"] for block in content if block["type"] == "text"]
        )
        assert not texts or texts[-1] == texts[-1].rstrip(), "a prefill ends in non-whitespace"


def assert_valid_chat_body(body: dict[str, Any]) -> None:
    """Top level and messages of a Chat Completions body match the SDK params."""
    assert_typed(body, chat_params.CompletionCreateParamsBase, wire_only=frozenset({"stream"}))
    roles = {
        "system": ChatCompletionSystemMessageParam,
        "developer": ChatCompletionDeveloperMessageParam,
        "user": ChatCompletionUserMessageParam,
        "assistant": ChatCompletionAssistantMessageParam,
        "tool": ChatCompletionToolMessageParam,
    }
    for message in body["messages"]:
        assert_typed(message, roles[message["role"]])
        if isinstance(message.get("content"), list):
            for part in message["content"]:
                kind = {
                    "text": ChatCompletionContentPartTextParam,
                    "image_url": ChatCompletionContentPartImageParam,
                    "file": ChatFilePart,
                }
                assert_typed(part, kind[part["type"]])
                if part["type"] == "file":
                    assert_typed(part["file"], ChatFile)
    for tool in body.get("tools", []):
        assert_typed(tool, ChatCompletionFunctionToolParam)


def assert_valid_responses_body(body: dict[str, Any]) -> None:
    """Top level and input items of a Responses body match the SDK params."""
    assert_typed(
        body, response_create_params.ResponseCreateParamsBase, wire_only=frozenset({"stream"})
    )
    for item in body["input"]:
        kind = item.get("type", "message")
        if kind == "message":
            assert_typed(item, EasyInputMessageParam)
            if isinstance(item["content"], list):
                for part in item["content"]:
                    parts = {
                        "input_text": ResponseInputTextParam,
                        "input_image": ResponseInputImageParam,
                        "input_file": ResponseInputFileParam,
                        # assistant history as sent by clients (Codex): accepted on the wire
                        "output_text": ResponseOutputTextParam,
                    }
                    assert_typed(part, parts[part["type"]])
        elif kind == "function_call":
            assert_typed(item, ResponseFunctionToolCallParam)
        else:
            assert kind == "function_call_output"
            assert_typed(item, FunctionCallOutput)
    for tool in body.get("tools", []):
        assert_typed(tool, FunctionToolParam)


# ---------------------------------------------------------------------------------------------
# Identity and model mapping


@pytest.mark.parametrize(
    ("fmt", "body"),
    [(CHAT, CHAT_RICH), (MESSAGES, MESSAGES_RICH), (RESPONSES, RESPONSES_RICH)],
)
def test_identity_returns_the_body_unchanged(fmt: str, body: dict[str, Any]) -> None:
    """Same format both sides: the body goes out as it came, unknown fields and all."""
    original = {**copy.deepcopy(body), "x_vendor_field": 1}
    result = translate_request(copy.deepcopy(original), fmt, fmt)
    assert result.body == original
    assert result.stream is True
    assert result.model == original["model"]
    assert result.dropped == ()
    assert result.include_usage is (fmt == CHAT)


def test_identity_maps_the_model_only() -> None:
    """Same format both sides with a model map: only ``model`` changes; the input is not mutated."""
    body = {"model": "fast", "prompt": "\n\nHuman: hi\n\nAssistant:", "max_tokens_to_sample": 5}
    result = translate_request(body, ATEXT, ATEXT, model_map={"fast": "claude-2.1"})
    assert result.body == {**body, "model": "claude-2.1"}
    assert body["model"] == "fast"
    assert result.model == "fast"
    assert result.stream is False


def test_model_map_applies_when_translating() -> None:
    """The model maps through ``model_map``; ``TranslatedRequest.model`` is the client's name."""
    result = translate_request(CHAT_RICH, CHAT, MESSAGES, model_map={"gpt-4.1": "claude-opus-4-1"})
    assert result.body["model"] == "claude-opus-4-1"
    assert result.model == "gpt-4.1"


@pytest.mark.parametrize("model_map", [None, {}, {"other": "x"}])
def test_model_passes_through_without_a_mapping(model_map: dict[str, str] | None) -> None:
    """No map, or no entry for the model: the client's model name goes upstream unchanged."""
    result = translate_request(CHAT_RICH, CHAT, RESPONSES, model_map=model_map)
    assert result.body["model"] == "gpt-4.1"


def test_unknown_format_is_rejected() -> None:
    """A format name nobody registered raises ``UnknownFormat`` (a ``ValueError``)."""
    with pytest.raises(UnknownFormat):
        translate_request({}, CHAT, "gemini")
    with pytest.raises(ValueError, match="unknown format"):
        translate_request({}, "gemini", CHAT)


def test_translated_request_is_frozen() -> None:
    """``TranslatedRequest`` is an immutable value."""
    result = translate_request(CHAT_RICH, CHAT, MESSAGES)
    assert isinstance(result, TranslatedRequest)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.stream = False  # type: ignore[misc]


def test_error_class_is_a_package_error() -> None:
    """``RequestTranslationError`` derives from the package's base exception."""
    assert issubclass(RequestTranslationError, SSEAdapterError)


# ---------------------------------------------------------------------------------------------
# Concrete outputs for rich requests


def test_chat_to_messages_rich() -> None:
    """Chat → Messages: every field of a rich request lands where Anthropic expects it."""
    result = translate_request(copy.deepcopy(CHAT_RICH), CHAT, MESSAGES)
    assert result.body == MESSAGES_FROM_CHAT_RICH
    assert result.dropped == ()
    assert result.stream is True
    assert result.include_usage is True
    assert_valid_messages_body(result.body)


def test_messages_to_chat_rich() -> None:
    """Messages → Chat: the signed thinking block cannot travel and is named; the rest maps."""
    result = translate_request(copy.deepcopy(MESSAGES_RICH), MESSAGES, CHAT)
    assert result.body == CHAT_FROM_MESSAGES_RICH
    assert result.dropped == ("messages.thinking",)
    assert result.include_usage is False
    assert_valid_chat_body(result.body)


def test_responses_to_chat_rich() -> None:
    """Responses → Chat: instructions and developer items join the system prompt; items map."""
    result = translate_request(copy.deepcopy(RESPONSES_RICH), RESPONSES, CHAT)
    assert result.body == CHAT_FROM_RESPONSES_RICH
    assert result.dropped == ()
    assert result.include_usage is False
    assert_valid_chat_body(result.body)


def test_chat_to_responses_rich() -> None:
    """Chat → Responses: flat tools (strict false, Chat's default), items, ``max_output_tokens``."""
    body = copy.deepcopy(CHAT_RICH)
    del body["stop"]
    result = translate_request(body, CHAT, RESPONSES)
    assert result.dropped == ()
    assert result.body == {
        "model": "gpt-4.1",
        "store": False,
        "instructions": "You are terse.\n\nAnswer in French.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these pictures?"},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/cat.png",
                        "detail": "auto",
                    },
                    {
                        "type": "input_image",
                        "image_url": f"data:image/png;base64,{PNG}",
                        "detail": "auto",
                    },
                ],
            },
            {"type": "message", "role": "assistant", "content": "Let me check the weather too."},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city": "Paris"}',
            },
            {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
            {"type": "function_call_output", "call_id": "call_2", "output": "14:05"},
            {"type": "message", "role": "assistant", "content": ANSWER},
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "Thanks!"}],
            },
        ],
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": WEATHER_SCHEMA,
                "strict": False,
            },
            {"type": "function", "name": "get_time", "parameters": None, "strict": False},
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "max_output_tokens": 20000,
        "temperature": 1,
        "user": "user-42",
        "stream": True,
        "reasoning": {"effort": "medium"},
    }
    assert_valid_responses_body(result.body)


def test_responses_to_messages_rich() -> None:
    """Responses → Messages: call ids become tool_use ids; list outputs become text results."""
    result = translate_request(copy.deepcopy(RESPONSES_RICH), RESPONSES, MESSAGES)
    assert result.dropped == ()
    expected = copy.deepcopy(MESSAGES_FROM_CHAT_RICH)
    expected["model"] = "gpt-5"
    expected["thinking"] = {"type": "enabled", "budget_tokens": 1024}
    del expected["stop_sequences"]  # Responses has no stop sequences
    assert result.body == expected
    assert_valid_messages_body(result.body)


def test_messages_to_responses_rich() -> None:
    """Messages → Responses: stop sequences cannot travel; thinking history is Anthropic's own."""
    result = translate_request(copy.deepcopy(MESSAGES_RICH), MESSAGES, RESPONSES)
    assert result.dropped == ("messages.thinking", "stop_sequences")
    body = result.body
    assert body["instructions"] == "You are terse.\n\nAnswer in French."
    assert body["input"][1:5] == [
        {"type": "message", "role": "assistant", "content": "Let me check the weather too."},
        {
            "type": "function_call",
            "call_id": "toolu_1",
            "name": "get_weather",
            "arguments": '{"city":"Paris"}',
        },
        {"type": "function_call", "call_id": "toolu_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "18C, sunny"},
    ]
    assert body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is False
    assert body["reasoning"] == {"effort": "high"}
    assert body["max_output_tokens"] == 20000
    assert body["user"] == "user-42"
    assert "stop" not in body
    assert "stop_sequences" not in body
    assert_valid_responses_body(body)


def test_openai_text_to_chat() -> None:
    """Completions → Chat: the prompt becomes one user message; sampling and n/seed carry over."""
    body = {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": "Say hi",
        "max_tokens": 7,
        "temperature": 0.2,
        "top_p": 0.5,
        "stop": ["\n"],
        "n": 2,
        "seed": 9,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "user": "u",
        "stream": True,
    }
    result = translate_request(body, TEXT, CHAT)
    assert result.body == {
        "model": "gpt-3.5-turbo-instruct",
        "messages": [{"role": "user", "content": "Say hi"}],
        "max_completion_tokens": 7,
        "temperature": 0.2,
        "top_p": 0.5,
        "user": "u",
        "stop": "\n",
        "stream": True,
        "stream_options": {"include_usage": True},
        "n": 2,
        "seed": 9,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
    }
    assert result.dropped == ()
    assert result.include_usage is False
    assert_valid_chat_body(result.body)


def test_openai_text_to_messages() -> None:
    """Completions → Messages: default max tokens; OpenAI-only knobs named as dropped."""
    body = {
        "model": "m",
        "prompt": ["Say hi"],
        "temperature": 0.2,
        "stop": "END",
        "seed": 1,
        "n": 1,
        "echo": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = translate_request(body, TEXT, MESSAGES, default_max_tokens=256)
    assert result.body == {
        "model": "m",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Say hi"}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "stream": True,
    }
    assert result.dropped == ("seed",)
    assert result.include_usage is True
    assert_valid_messages_body(result.body)


def test_anthropic_text_to_messages() -> None:
    """Text Completions → Messages: text before the first turn is the system prompt; turns parse."""
    body = {
        "model": "claude-2.1",
        "prompt": (
            "You are kind.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: How are you?\n\nAssistant:"
        ),
        "max_tokens_to_sample": 300,
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 40,
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    result = translate_request(body, ATEXT, MESSAGES)
    assert result.body == {
        "model": "claude-2.1",
        "max_tokens": 300,
        "system": "You are kind.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "How are you?"},
        ],
        "temperature": 0.5,
        "top_k": 40,
        "stop_sequences": ["\n\nHuman:"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
    }
    assert result.dropped == ("top_p",)  # (not with temperature: the sampling tests)
    assert_valid_messages_body(result.body)


def test_anthropic_text_to_chat() -> None:
    """Text Completions → Chat: turns become messages; ``top_k`` has no OpenAI equivalent."""
    body = {
        "model": "claude-2.1",
        "prompt": "\n\nHuman: Hi\n\nAssistant: Well,",
        "max_tokens_to_sample": 50,
        "top_k": 5,
    }
    result = translate_request(body, ATEXT, CHAT)
    assert result.body == {
        "model": "claude-2.1",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Well,"},
        ],
        "max_completion_tokens": 50,
    }
    # (OpenAI answers after the final assistant message rather than continuing it.)
    assert result.dropped == ("prompt.prefill", "top_k")
    assert result.stream is False
    assert_valid_chat_body(result.body)


def test_messages_to_anthropic_text() -> None:
    """Messages → Text Completions: turns rendered; only text travels, the rest is named."""
    body = copy.deepcopy(MESSAGES_RICH)
    result = translate_request(body, MESSAGES, ATEXT)
    assert result.body == {
        "model": "claude-sonnet-4-5",
        "prompt": (
            "You are terse.\n\nAnswer in French.\n\nHuman: What is in these pictures?"
            f"\n\nAssistant: Let me check the weather too.\n\n{ANSWER}\n\nHuman: Thanks!"
            "\n\nAssistant:"
        ),
        "max_tokens_to_sample": 20000,
        "temperature": 1,
        "stop_sequences": ["END", "STOP"],
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }
    assert result.dropped == (
        "messages.image",
        "messages.thinking",
        "messages.tool_calls",
        "messages.tool_results",
        "tools",
        "tool_choice",
        "tool_choice.disable_parallel_tool_use",
        "thinking",
    )


def test_chat_to_anthropic_text_with_prefill() -> None:
    """Chat → Text Completions: a final assistant message is a prefill (no trailing marker)."""
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be kind."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
        ],
        "max_tokens": 10,
    }
    result = translate_request(body, CHAT, ATEXT)
    assert result.body == {
        "model": "m",
        "prompt": "Be kind.\n\nHuman: Hi\n\nAssistant: Hello",
        "max_tokens_to_sample": 10,
    }
    assert result.dropped == ()


def test_chat_to_openai_text_single_turn() -> None:
    """Chat → Completions: a single user turn becomes the prompt."""
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "Complete: 1, 2, 3,"}],
        "max_tokens": 5,
        "stream": True,
    }
    result = translate_request(body, CHAT, TEXT)
    assert result.body == {
        "model": "m",
        "prompt": "Complete: 1, 2, 3,",
        "max_tokens": 5,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert_typed(
        result.body,
        completion_create_params.CompletionCreateParamsBase,
        wire_only=frozenset({"stream"}),
    )


def test_multi_turn_to_openai_text_is_refused() -> None:
    """A conversation cannot become a Completions prompt: refused even in ``drop`` mode."""
    with pytest.raises(RequestTranslationError, match="single user turn"):
        translate_request(CHAT_RICH, CHAT, TEXT)


# ---------------------------------------------------------------------------------------------
# Round trips: meaning survives


ROUND_TRIP_CHAT_VARIANTS: list[dict[str, Any]] = [
    {},
    {"tool_choice": "auto"},
    {"tool_choice": "none"},
    # Anthropic takes no thinking with a forced tool call (see the thinking tests).
    {"tool_choice": "required", "reasoning_effort": None},
    {
        "tool_choice": {"type": "function", "function": {"name": "get_time"}},
        "reasoning_effort": None,
    },
    {"parallel_tool_calls": True},
    {"reasoning_effort": "low"},
    {"reasoning_effort": "high"},
    {"reasoning_effort": "none"},
    {"temperature": 0.3, "reasoning_effort": None},
    {"temperature": None, "top_p": 0.8, "reasoning_effort": None},
    {"stream": False, "stream_options": None},
    {"stop": ["a", "b", "c", "d"]},
    {"max_completion_tokens": None, "max_tokens": 20000},
]


def _variant(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


@pytest.mark.parametrize("changes", ROUND_TRIP_CHAT_VARIANTS)
def test_round_trip_chat_messages_chat(changes: dict[str, Any]) -> None:
    """Chat → Messages → Chat keeps the meaning of every field."""
    body = _variant(CHAT_RICH, changes)
    back, dropped = via(body, CHAT, MESSAGES, CHAT)
    assert dropped == ()
    assert canonical(back, CHAT) == canonical(body, CHAT)
    assert_valid_chat_body(back)


@pytest.mark.parametrize("changes", ROUND_TRIP_CHAT_VARIANTS)
def test_round_trip_chat_responses_chat(changes: dict[str, Any]) -> None:
    """Chat → Responses → Chat keeps the meaning of every field Responses can carry."""
    body = _variant(CHAT_RICH, {"stop": None, **changes})
    body.pop("stop", None)
    back, dropped = via(body, CHAT, RESPONSES, CHAT)
    assert dropped == ()
    assert canonical(back, CHAT) == canonical(body, CHAT)


ROUND_TRIP_MESSAGES_VARIANTS: list[dict[str, Any]] = [
    {},
    {"tool_choice": {"type": "auto"}},
    {"tool_choice": {"type": "none"}},
    {"tool_choice": {"type": "any"}, "thinking": None},
    {"tool_choice": {"type": "tool", "name": "get_time"}, "thinking": None},
    {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}},
    {"thinking": {"type": "enabled", "budget_tokens": 4096}},
    {"thinking": None, "temperature": 0.3},
    {"thinking": None, "temperature": None, "top_p": 0.8},
    {"thinking": None, "stream": None, "metadata": None, "stop_sequences": None},
]


@pytest.mark.parametrize("changes", ROUND_TRIP_MESSAGES_VARIANTS)
def test_round_trip_messages_chat_messages(changes: dict[str, Any]) -> None:
    """Messages → Chat → Messages keeps everything but the provider-bound thinking history."""
    body = _variant(MESSAGES_RICH, changes)
    back, dropped = via(body, MESSAGES, CHAT, MESSAGES)
    assert dropped == ("messages.thinking",)
    assert canonical(back, MESSAGES) == canonical(body, MESSAGES, thinking=False)
    assert_valid_messages_body(back)


@pytest.mark.parametrize("changes", ROUND_TRIP_MESSAGES_VARIANTS)
def test_round_trip_messages_responses_messages(changes: dict[str, Any]) -> None:
    """Messages → Responses → Messages keeps everything Responses can carry."""
    body = _variant(MESSAGES_RICH, {"stop_sequences": None, **changes})
    body.pop("stop_sequences", None)
    back, dropped = via(body, MESSAGES, RESPONSES, MESSAGES)
    assert dropped == ("messages.thinking",)
    assert canonical(back, MESSAGES) == canonical(body, MESSAGES, thinking=False)


def test_round_trip_responses_chat_responses() -> None:
    """Responses → Chat → Responses keeps the meaning (the items' own ids are not needed).

    Only Responses' default storage does not come back: Chat (by default) and Anthropic keep
    nothing, so the request that returns to Responses asks for no storage.
    """
    back, dropped = via(RESPONSES_RICH, RESPONSES, CHAT, RESPONSES)
    assert dropped == ()
    expected = {**canonical(RESPONSES_RICH, RESPONSES), "extras": {"store": False}}
    assert canonical(back, RESPONSES) == expected
    assert_valid_responses_body(back)


def test_round_trip_responses_messages_responses() -> None:
    """Responses → Messages → Responses keeps the meaning (storage: as through Chat)."""
    back, dropped = via(RESPONSES_RICH, RESPONSES, MESSAGES, RESPONSES)
    assert dropped == ()
    expected = {**canonical(RESPONSES_RICH, RESPONSES), "extras": {"store": False}}
    assert canonical(back, RESPONSES) == expected


def test_round_trip_anthropic_text_messages_anthropic_text() -> None:
    """Text Completions → Messages → Text Completions reproduces the prompt."""
    body = {
        "model": "claude-2.1",
        "prompt": "Sys.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:",
        "max_tokens_to_sample": 300,
        "stop_sequences": ["X"],
        "temperature": 0.5,
        "top_k": 3,
        "metadata": {"user_id": "u"},
        "stream": True,
    }
    back, dropped = via(body, ATEXT, MESSAGES, ATEXT)
    assert dropped == ()
    assert back == body
    back_chat, dropped_chat = via(body, ATEXT, CHAT, ATEXT)
    assert dropped_chat == ("top_k",)
    assert canonical(back_chat, ATEXT) == {**canonical(body, ATEXT), "top_k": None}


def test_round_trip_text_messages_through_anthropic_text() -> None:
    """A text-only Messages request survives a trip through Text Completions."""
    body = {
        "model": "m",
        "max_tokens": 100,
        "system": "Sys.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "More"},
        ],
        "temperature": 0.1,
        "stop_sequences": ["Z"],
    }
    back, dropped = via(body, MESSAGES, ATEXT, MESSAGES)
    assert dropped == ()
    assert back == body


# ---------------------------------------------------------------------------------------------
# Fields one by one


def test_max_tokens_default_for_anthropic_targets() -> None:
    """Anthropic requires max tokens: ``default_max_tokens`` when the client gave none."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    assert translate_request(chat, CHAT, MESSAGES).body["max_tokens"] == 4096
    assert translate_request(chat, CHAT, MESSAGES, default_max_tokens=99).body["max_tokens"] == 99
    assert (
        translate_request(chat, CHAT, ATEXT, default_max_tokens=7).body["max_tokens_to_sample"] == 7
    )
    assert "max_completion_tokens" not in translate_request(chat, CHAT, RESPONSES).body
    assert "max_output_tokens" not in translate_request(chat, CHAT, RESPONSES).body


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    """Chat with both limits: ``max_completion_tokens`` is the one that counts."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 10,
        "max_completion_tokens": 20,
    }
    assert translate_request(chat, CHAT, MESSAGES).body["max_tokens"] == 20
    assert translate_request(chat, CHAT, RESPONSES).body["max_output_tokens"] == 20


@pytest.mark.parametrize("target", [CHAT, TEXT])
def test_streaming_openai_targets_always_ask_for_usage(target: str) -> None:
    """Streaming to Chat/Completions: ``include_usage: true`` upstream, whatever the client said."""
    body = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    streaming = translate_request({**body, "stream": True}, MESSAGES, target)
    assert streaming.body["stream_options"] == {"include_usage": True}
    assert streaming.include_usage is False
    quiet = translate_request(body, MESSAGES, target)
    assert "stream_options" not in quiet.body
    assert "stream" not in quiet.body


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (None, False),
        ({}, False),
        ({"include_usage": False}, False),
        ({"include_usage": True}, True),
    ],
)
def test_include_usage_reports_what_the_client_asked(
    options: dict[str, Any] | None, expected: bool
) -> None:
    """``include_usage`` is the client's own ``stream_options.include_usage``."""
    body: dict[str, Any] = {
        "model": "m",
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    if options is not None:
        body["stream_options"] = options
    result = translate_request(body, CHAT, MESSAGES)
    assert result.include_usage is expected
    assert "stream_options" not in result.body


def test_stop_string_and_list() -> None:
    """``stop`` (string or list) ↔ ``stop_sequences`` (list); more than four cannot go to OpenAI."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END"}
    assert translate_request(chat, CHAT, MESSAGES).body["stop_sequences"] == ["END"]
    messages = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    two = translate_request({**messages, "stop_sequences": ["a", "b"]}, MESSAGES, CHAT)
    assert two.body["stop"] == ["a", "b"]
    five = translate_request({**messages, "stop_sequences": list("abcde")}, MESSAGES, CHAT)
    assert "stop" not in five.body
    assert five.dropped == ("stop_sequences",)


def test_blank_stop_sequences_are_not_sent_to_anthropic() -> None:
    """Anthropic refuses an empty or whitespace-only stop sequence: those are named, others kept."""
    text = {"model": "m", "prompt": "Q: 1+1\nA:", "stop": ["\n", "END", "", " \t"]}
    result = translate_request(text, TEXT, MESSAGES)
    assert result.body["stop_sequences"] == ["END"]
    assert result.dropped == ("stop",)
    assert_valid_messages_body(result.body)
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "\n"}
    alone = translate_request(chat, CHAT, MESSAGES)
    assert "stop_sequences" not in alone.body
    assert alone.dropped == ("stop",)
    with pytest.raises(
        RequestTranslationError,
        match=r"field stop is not supported by anthropic-messages: .*non-whitespace",
    ):
        translate_request(text, TEXT, MESSAGES, on_unsupported="error")
    # OpenAI takes them as they are.
    assert translate_request(text, TEXT, CHAT).body["stop"] == text["stop"]


def test_user_and_metadata_user_id() -> None:
    """OpenAI ``user`` ↔ Anthropic ``metadata.user_id``; other metadata keys are named."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "user": "abc"}
    assert translate_request(chat, CHAT, MESSAGES).body["metadata"] == {"user_id": "abc"}
    messages = {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "metadata": {"user_id": "abc", "team": "t"},
    }
    result = translate_request(messages, MESSAGES, RESPONSES)
    assert result.body["user"] == "abc"
    assert result.dropped == ("metadata.team",)


def test_openai_metadata_is_not_anthropic_metadata() -> None:
    """OpenAI's free-form ``metadata`` travels between OpenAI formats only."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "metadata": {"k": "v"},
        "store": True,
        "service_tier": "flex",
    }
    assert translate_request(chat, CHAT, RESPONSES).body["metadata"] == {"k": "v"}
    assert translate_request(chat, CHAT, RESPONSES).body["service_tier"] == "flex"
    result = translate_request(chat, CHAT, MESSAGES)
    assert "metadata" not in result.body
    assert "service_tier" not in result.body
    assert result.dropped == ("metadata", "store", "service_tier")


def test_several_system_messages_are_joined() -> None:
    """System and developer messages anywhere in the list join, in order, into one prompt."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "A"},
            {"role": "user", "content": "x"},
            {"role": "developer", "content": "B"},
        ],
    }
    assert translate_request(chat, CHAT, MESSAGES).body["system"] == "A\n\nB"
    assert translate_request(chat, CHAT, RESPONSES).body["instructions"] == "A\n\nB"


def test_consecutive_same_role_messages_merge_for_anthropic() -> None:
    """Anthropic needs alternating roles: consecutive user (and assistant) turns merge."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "user", "content": [{"type": "text", "text": "two"}]},
            {"role": "assistant", "content": "a"},
            {"role": "assistant", "content": "b"},
        ],
    }
    body = translate_request(chat, CHAT, MESSAGES).body
    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    ]
    assert_valid_messages_body(body)


def test_tool_results_open_the_user_message() -> None:
    """A user turn holding tool results and text puts the tool results first (Anthropic rule)."""
    responses = {
        "model": "m",
        "input": [
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"role": "user", "content": "note"},
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
        ],
    }
    body = translate_request(responses, RESPONSES, MESSAGES).body
    assert body["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "c1", "content": "done"},
            {"type": "text", "text": "note"},
        ],
    }
    assert_valid_messages_body(body)


def test_empty_assistant_text_is_not_sent_to_anthropic() -> None:
    """An empty assistant content (tool calls only) gives no empty text block."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": ""}}
                ],
            },
        ],
    }
    body = translate_request(chat, CHAT, MESSAGES).body
    assert body["messages"][1]["content"] == [
        {"type": "tool_use", "id": "c", "name": "f", "input": {}}
    ]


def test_whitespace_only_text_is_not_sent_to_anthropic() -> None:
    """Anthropic refuses a whitespace-only text block: such text is left out like empty text.

    A turn left with nothing is left out and its neighbours merge (roles must alternate).
    """
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": " "},
            {
                "role": "user",
                "content": [{"type": "text", "text": "again"}, {"type": "text", "text": "\n"}],
            },
            {"role": "assistant", "content": "\n\n", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c", "content": " "},
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c", "name": "f", "input": {}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "c"}]},
    ]
    assert result.dropped == ()
    assert_valid_messages_body(result.body)


def test_tool_ids_are_made_valid_for_anthropic() -> None:
    """Tool ids with characters Anthropic rejects are rewritten the same way on both sides."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call.1:a",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call.1:a", "content": "ok"},
        ],
    }
    body = translate_request(chat, CHAT, MESSAGES).body
    assert body["messages"][1]["content"][0]["id"] == "call_1_a"
    assert body["messages"][2]["content"][0]["tool_use_id"] == "call_1_a"


def test_tool_results_with_error_and_images() -> None:
    """Anthropic ``is_error`` has no Chat equivalent: named. A Chat tool message holds only text:
    the result's images go in a user message right after the tool messages."""
    messages = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "boom"},
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/png",
                                    "data": PNG,
                                },
                            },
                        ],
                    }
                ],
            },
        ],
    }
    chat = translate_request(messages, MESSAGES, CHAT)
    assert chat.body["messages"][-2:] == [
        {"role": "tool", "tool_call_id": "t", "content": "boom"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
            ],
        },
    ]
    assert chat.dropped == ("tool_result.is_error",)
    assert_valid_chat_body(chat.body)
    responses = translate_request(messages, MESSAGES, RESPONSES)
    assert responses.body["input"][-1] == {
        "type": "function_call_output",
        "call_id": "t",
        "output": [
            {"type": "input_text", "text": "boom"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "auto"},
        ],
    }
    assert responses.dropped == ("tool_result.is_error",)


def test_tool_results_keep_is_error_between_anthropic_formats() -> None:
    """``is_error`` survives canonical form to Anthropic Messages."""
    chat_like = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t", "is_error": True}],
            }
        ],
    }
    request, _ = parse_request(chat_like, MESSAGES)
    body, dropped = render_request(request, MESSAGES)
    assert body["messages"][0]["content"] == [
        {"type": "tool_result", "tool_use_id": "t", "is_error": True}
    ]
    assert dropped == ()


def test_image_detail_is_named_when_it_matters() -> None:
    """An image ``detail`` other than ``auto`` cannot go to Anthropic; ``auto`` is a no-op."""

    def chat(detail: str) -> dict[str, Any]:
        url = {"url": "https://x/y.png", "detail": detail}
        return {
            "model": "m",
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": url}]}],
        }

    assert translate_request(chat("auto"), CHAT, MESSAGES).dropped == ()
    assert translate_request(chat("high"), CHAT, MESSAGES).dropped == ("image.detail",)
    responses = translate_request(chat("high"), CHAT, RESPONSES)
    assert responses.body["input"][0]["content"][0]["detail"] == "high"


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        (f"data:image/png;charset=utf-8;base64,{PNG}", "image/png"),
        (f"data:image/jpeg;name=x.jpg;base64,{PNG}", "image/jpeg"),
        (f"data:IMAGE/WEBP;BASE64,{PNG}", "image/webp"),
        (f"data:image/gif;base64,{PNG}", "image/gif"),
    ],
)
def test_data_urls_with_parameters_become_base64_images(url: str, media_type: str) -> None:
    """RFC 2397 data URLs may carry media-type parameters: the image goes to Anthropic as base64
    with the bare media type, never as a ``url`` source (Anthropic fetches only http(s))."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    source = {"type": "base64", "media_type": media_type, "data": PNG}
    assert result.body["messages"][0]["content"] == [{"type": "image", "source": source}]
    assert result.dropped == ()
    assert_valid_messages_body(result.body)
    responses = {
        "model": "m",
        "input": [{"role": "user", "content": [{"type": "input_image", "image_url": url}]}],
    }
    result = translate_request(responses, RESPONSES, MESSAGES)
    assert result.body["messages"][0]["content"] == [{"type": "image", "source": source}]


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png,%89PNG%0D%0A",  # not base64
        "data:image/svg+xml;base64,PHN2Zz4=",  # a type Anthropic does not decode
        "data:;base64,aGk=",  # no media type: text/plain (RFC 2397)
        "file:///tmp/x.png",  # not fetchable
    ],
)
def test_images_anthropic_cannot_take_are_named(url: str) -> None:
    """An image Anthropic would refuse is named (``messages.image``), never sent as a URL; in a
    tool result it is ``tool_result.image``. OpenAI targets get it as it was."""
    part = {"type": "image_url", "image_url": {"url": url, "detail": "high"}}
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "see"}, part]}],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.body["messages"] == [{"role": "user", "content": "see"}]
    assert result.dropped == ("messages.image",)  # (its detail goes with it)
    with pytest.raises(
        RequestTranslationError,
        match=r"field messages\.image is not supported by anthropic-messages: .*base64",
    ):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    responses = translate_request(chat, CHAT, RESPONSES)
    expected = url if url != "data:;base64,aGk=" else "data:text/plain;base64,aGk="
    assert responses.body["input"][0]["content"][1]["image_url"] == expected
    tool_output = {
        "model": "m",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [{"type": "input_image", "image_url": url}],
            },
        ],
    }
    result = translate_request(tool_output, RESPONSES, MESSAGES)
    assert result.body["messages"][-1]["content"] == [{"type": "tool_result", "tool_use_id": "c"}]
    assert result.dropped == ("tool_result.image",)


def test_a_refused_field_carries_its_name_as_param() -> None:
    """In error mode the refusal names the field in ``param`` too (for OpenAI's error JSON)."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "seed": 1}
    with pytest.raises(RequestTranslationError) as info:
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    assert info.value.param == "seed"
    assert str(info.value) == "field seed is not supported by anthropic-messages"
    with pytest.raises(RequestTranslationError) as info:
        translate_request({**chat, "temperature": "hot"}, CHAT, MESSAGES)
    assert info.value.param is None  # a malformed body: no field the target lacks


def test_tool_arguments_that_are_no_object_go_to_anthropic_as_an_empty_input() -> None:
    """A call cut by the token limit leaves arguments that are no JSON object in the client's
    history. Refused, every later turn of that conversation failed with a 400; OpenAI takes any
    string there. Anthropic gets ``input: {}``, named (a 400 in error mode); Responses the text
    as it is."""
    for arguments in ('{"path": "a.py", "content": "import os\\nprint(', "[1, 2]"):
        chat = {
            "model": "m",
            "messages": [
                {"role": "user", "content": "write a.py"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c9",
                            "type": "function",
                            "function": {"name": "write", "arguments": arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c9", "content": "error: arguments cut off"},
            ],
        }
        result = translate_request(chat, CHAT, MESSAGES)
        assert result.body["messages"][1]["content"] == [
            {"type": "tool_use", "id": "c9", "name": "write", "input": {}}
        ]
        assert result.dropped == ("messages.tool_calls.arguments",)
        assert_valid_messages_body(result.body)
        with pytest.raises(RequestTranslationError, match=r"messages\.tool_calls\.arguments"):
            translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
        body = translate_request(chat, CHAT, RESPONSES).body
        assert body["input"][1]["arguments"] == arguments


@pytest.mark.parametrize(
    ("source", "target", "user", "sent"),
    [
        (MESSAGES, CHAT, "user_" + "ab" * 32 + "_account_x_session_y", "hash"),
        (MESSAGES, RESPONSES, "u" * 65, "hash"),
        (MESSAGES, CHAT, "u" * 64, "same"),
        (CHAT, MESSAGES, "ada@example.com", "hash"),
        (CHAT, MESSAGES, "ada-1_2", "same"),
        (CHAT, MESSAGES, "", "absent"),
        (MESSAGES, CHAT, "", "absent"),
    ],
)
def test_end_user_ids_go_in_a_form_the_target_takes(
    source: str, target: str, user: str, sent: str
) -> None:
    """OpenAI refuses a ``user`` over 64 characters (Claude Code's ``metadata.user_id`` is
    about 150), Anthropic a ``user_id`` outside ``^[a-zA-Z0-9_-]+$`` (an e-mail address): such
    an id goes as its SHA-256 in hex, stable per user, which both take."""
    if source == MESSAGES:
        body: dict[str, Any] = {
            "model": "m",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": "x"}],
            "metadata": {"user_id": user},
        }
    else:
        body = {"model": "m", "messages": [{"role": "user", "content": "x"}], "user": user}
    result = translate_request(body, source, target)
    assert result.dropped == ()
    if sent == "absent":  # (an empty id names no one: a hash of it would be everyone's)
        assert "metadata" not in result.body
        assert "user" not in result.body
        return
    got = result.body["metadata"]["user_id"] if target == MESSAGES else result.body["user"]
    expected = user if sent == "same" else hashlib.sha256(user.encode()).hexdigest()
    assert got == expected


def test_parallel_tool_calls_and_disable_parallel_tool_use() -> None:
    """``parallel_tool_calls: false`` ↔ ``disable_parallel_tool_use: true``, only with tools."""
    base = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "parallel_tool_calls": False,
    }
    without_tools = translate_request(base, CHAT, MESSAGES).body
    assert "tool_choice" not in without_tools
    tools = [{"type": "function", "function": {"name": "f"}}]
    with_tools = translate_request({**base, "tools": tools}, CHAT, MESSAGES).body
    assert with_tools["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    none = translate_request({**base, "tools": tools, "tool_choice": "none"}, CHAT, MESSAGES).body
    assert none["tool_choice"] == {"type": "none"}
    back = translate_request(with_tools, MESSAGES, CHAT).body
    assert back["parallel_tool_calls"] is False
    assert back["tool_choice"] == "auto"
    parallel = translate_request(
        {**base, "parallel_tool_calls": True, "tools": tools}, CHAT, MESSAGES
    )
    assert "tool_choice" not in parallel.body


def test_serial_tool_calls_are_named_by_the_clients_own_field() -> None:
    """Dropped serial tool calls are named as the client wrote them (nested: a dotted path)."""
    messages = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    }
    for target in (TEXT, ATEXT):
        result = translate_request(messages, MESSAGES, target)
        assert result.dropped == ("tools", "tool_choice", "tool_choice.disable_parallel_tool_use")
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "parallel_tool_calls": False,
    }
    assert translate_request(chat, CHAT, ATEXT).dropped == ("tools", "parallel_tool_calls")


@pytest.mark.parametrize(
    ("chat_choice", "anthropic_choice", "responses_choice"),
    [
        ("auto", {"type": "auto"}, "auto"),
        ("none", {"type": "none"}, "none"),
        ("required", {"type": "any"}, "required"),
        (
            {"type": "function", "function": {"name": "f"}},
            {"type": "tool", "name": "f"},
            {"type": "function", "name": "f"},
        ),
    ],
)
def test_tool_choice_each_kind(
    chat_choice: Any, anthropic_choice: dict[str, Any], responses_choice: Any
) -> None:
    """Every tool choice kind maps Chat ↔ Messages ↔ Responses."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": chat_choice,
    }
    messages = translate_request(chat, CHAT, MESSAGES).body
    assert messages["tool_choice"] == anthropic_choice
    assert translate_request(chat, CHAT, RESPONSES).body["tool_choice"] == responses_choice
    assert translate_request(messages, MESSAGES, CHAT).body["tool_choice"] == chat_choice


def test_strict_tools() -> None:
    """A strict Chat tool stays strict in Responses and Messages."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": WEATHER_SCHEMA, "strict": True},
            }
        ],
    }
    assert translate_request(chat, CHAT, RESPONSES).body["tools"][0]["strict"] is True
    assert translate_request(chat, CHAT, MESSAGES).body["tools"][0]["strict"] is True


def test_non_function_tools_are_named() -> None:
    """Built-in/server tools exist only in their own API."""
    responses = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f", "parameters": {}}],
        "tool_choice": {"type": "web_search"},
    }
    result = translate_request(responses, RESPONSES, MESSAGES)
    assert [tool["name"] for tool in result.body["tools"]] == ["f"]
    assert result.dropped == ("tools.web_search", "tool_choice")
    messages = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    assert translate_request(messages, MESSAGES, CHAT).dropped == ("tools.web_search_20250305",)


def test_temperature_above_anthropic_range_is_named() -> None:
    """Anthropic's temperature stops at 1: a higher one is not clamped but named."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 1.5}
    result = translate_request(chat, CHAT, MESSAGES)
    assert "temperature" not in result.body
    assert result.dropped == ("temperature",)
    with pytest.raises(RequestTranslationError, match="field temperature is not supported"):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")


def test_sampling_limits_with_thinking() -> None:
    """With thinking on, Anthropic takes temperature 1 only, top_p >= 0.95 and no top_k."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0.2,
        "top_p": 0.5,
        "reasoning_effort": "low",
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert "temperature" not in result.body
    assert "top_p" not in result.body
    assert result.dropped == ("temperature", "top_p")
    messages = {
        "model": "m",
        "max_tokens": 5000,
        "messages": [{"role": "user", "content": "x"}],
        "top_k": 5,
        "thinking": {"type": "adaptive"},
    }
    request, _ = parse_request(messages, MESSAGES)
    body, dropped = render_request(request, MESSAGES)
    assert "top_k" not in body
    assert dropped == ("top_k",)


# ---------------------------------------------------------------------------------------------
# Reasoning ↔ thinking


@pytest.mark.parametrize(("effort", "budget"), sorted(EFFORT_BUDGETS.items()))
def test_effort_to_budget_table(effort: str, budget: int) -> None:
    """Each OpenAI effort maps to its documented Anthropic budget (Chat and Responses alike)."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": effort,
        "max_completion_tokens": 100000,
    }
    assert translate_request(chat, CHAT, MESSAGES).body["thinking"] == {
        "type": "enabled",
        "budget_tokens": budget,
    }
    responses = {
        "model": "m",
        "input": "x",
        "reasoning": {"effort": effort},
        "max_output_tokens": 100000,
    }
    assert (
        translate_request(responses, RESPONSES, MESSAGES).body["thinking"]["budget_tokens"]
        == budget
    )


def test_documented_budgets() -> None:
    """The table is the documented one: low/medium/high ↔ 1024/4096/16384."""
    assert EFFORT_BUDGETS["low"] == 1024
    assert EFFORT_BUDGETS["medium"] == 4096
    assert EFFORT_BUDGETS["high"] == 16384
    assert min(EFFORT_BUDGETS.values()) >= 1024  # Anthropic's minimum budget


@pytest.mark.parametrize(
    ("budget", "effort"),
    [
        (1024, "low"),
        (2047, "low"),
        (2048, "medium"),
        (4096, "medium"),
        (8191, "medium"),
        (8192, "high"),
        (16384, "high"),
        (64000, "high"),
    ],
)
def test_budget_to_effort(budget: int, effort: str) -> None:
    """An Anthropic budget maps to the nearest effort; table budgets map back to their effort."""
    assert budget_to_effort(budget) == effort
    messages = {
        "model": "m",
        "max_tokens": 100000,
        "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "enabled", "budget_tokens": budget},
    }
    assert translate_request(messages, MESSAGES, CHAT).body["reasoning_effort"] == effort
    assert translate_request(messages, MESSAGES, RESPONSES).body["reasoning"] == {"effort": effort}


def test_table_budgets_round_trip() -> None:
    """low, medium and high survive effort → budget → effort."""
    for effort in ("low", "medium", "high"):
        assert budget_to_effort(EFFORT_BUDGETS[effort]) == effort


@pytest.mark.parametrize(
    ("max_tokens", "expected"),
    [(None, 4096 + 16384), (1000, 1000 + 16384), (16384, 32768), (16385, 16385)],
)
def test_max_tokens_raised_above_the_budget(max_tokens: int | None, expected: int) -> None:
    """Anthropic needs budget < max_tokens: otherwise max_tokens = budget + the asked allowance."""
    chat: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "high",
    }
    if max_tokens is not None:
        chat["max_completion_tokens"] = max_tokens
    body = translate_request(chat, CHAT, MESSAGES).body
    assert body["max_tokens"] == expected
    assert body["thinking"]["budget_tokens"] < body["max_tokens"]


def test_effort_none_disables_thinking() -> None:
    """``reasoning_effort: "none"`` is an explicit ``thinking: disabled``."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "none",
    }
    assert translate_request(chat, CHAT, MESSAGES).body["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize("kind", ["disabled", "adaptive"])
def test_disabled_and_adaptive_thinking_send_no_effort(kind: str) -> None:
    """Anthropic ``disabled``/``adaptive`` thinking: OpenAI gets no effort (its default applies)."""
    messages = {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": kind},
    }
    result = translate_request(messages, MESSAGES, CHAT)
    assert "reasoning_effort" not in result.body
    assert result.dropped == ()
    assert translate_request(messages, MESSAGES, ATEXT).dropped == (
        ("thinking",) if kind == "adaptive" else ()
    )


def test_unknown_effort_is_named_for_anthropic() -> None:
    """An effort without a budget in the table cannot become a thinking budget."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "ultra",
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert "thinking" not in result.body
    assert result.dropped == ("reasoning_effort",)


def test_reasoning_summary() -> None:
    """Responses ``reasoning.summary``: kept for Responses, fine for Anthropic, named for Chat."""
    responses = {"model": "m", "input": "x", "reasoning": {"effort": "high", "summary": "auto"}}
    chat = translate_request(responses, RESPONSES, CHAT)
    assert chat.body["reasoning_effort"] == "high"
    assert chat.dropped == ("reasoning.summary",)
    assert translate_request(responses, RESPONSES, MESSAGES).dropped == ()
    request, _ = parse_request(responses, RESPONSES)
    body, _ = render_request(request, RESPONSES)
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}


def test_thinking_history_is_provider_bound() -> None:
    """Signed thinking goes only to Anthropic; Responses reasoning items only to Responses."""
    chat: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {
                "role": "assistant",
                "content": "answer",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                    {"type": "redacted_thinking", "data": "opaque"},
                ],
            },
        ],
    }
    body = translate_request(chat, CHAT, MESSAGES).body
    assert body["messages"][1]["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "answer"},
    ]
    unsigned = copy.deepcopy(chat)
    del unsigned["messages"][1]["thinking_blocks"]
    unsigned["messages"][1]["reasoning_content"] = "hmm"
    result = translate_request(unsigned, CHAT, MESSAGES)
    assert result.body["messages"][1]["content"] == "answer"
    assert result.dropped == ("messages.thinking",)

    item = {
        "type": "reasoning",
        "id": "rs_1",
        "summary": [{"type": "summary_text", "text": "thought"}],
        "encrypted_content": "gAAA",
    }
    responses = {"model": "m", "input": [{"role": "user", "content": "x"}, item]}
    request, _ = parse_request(responses, RESPONSES)
    assert request.messages[1] == Message("assistant", [Thinking("thought", item=item)])
    back, dropped = render_request(request, RESPONSES)
    assert back["input"][1] == item
    assert dropped == ()
    to_messages = translate_request(responses, RESPONSES, MESSAGES)
    assert to_messages.dropped == ("input.reasoning",)
    assert len(to_messages.body["messages"]) == 1


FORCED_CHOICES: list[tuple[Any, Any, dict[str, Any]]] = [
    ("required", "required", {"type": "any"}),
    (
        {"type": "function", "function": {"name": "f"}},
        {"type": "function", "name": "f"},
        {"type": "tool", "name": "f"},
    ),
]


@pytest.mark.parametrize(("chat_choice", "responses_choice", "anthropic_choice"), FORCED_CHOICES)
def test_a_forced_tool_call_wins_over_thinking(
    chat_choice: Any, responses_choice: Any, anthropic_choice: dict[str, Any]
) -> None:
    """Anthropic takes no thinking with a forced tool call: the tool choice is kept (the client's
    code depends on the call) and the reasoning setting, a quality hint, is named."""
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": chat_choice,
        "reasoning_effort": "high",
        "temperature": 0.2,
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.body["tool_choice"] == anthropic_choice
    assert "thinking" not in result.body
    assert result.body["max_tokens"] == 4096  # no thinking budget to make room for
    assert result.body["temperature"] == 0.2  # no thinking: any temperature goes
    assert result.dropped == ("reasoning_effort",)
    assert_valid_messages_body(result.body)
    with pytest.raises(
        RequestTranslationError,
        match=r"field reasoning_effort is not supported by anthropic-messages: .*forces a tool",
    ):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    responses = {
        "model": "m",
        "input": "x",
        "tools": [{"type": "function", "name": "f", "parameters": {}}],
        "tool_choice": responses_choice,
        "reasoning": {"effort": "low"},
    }
    result = translate_request(responses, RESPONSES, MESSAGES)
    assert result.body["tool_choice"] == anthropic_choice
    assert "thinking" not in result.body
    assert result.dropped == ("reasoning",)


@pytest.mark.parametrize(("effort", "thinking"), [("none", {"type": "disabled"}), ("low", None)])
def test_thinking_that_fits_a_tool_choice_is_kept(effort: str, thinking: Any) -> None:
    """Thinking off goes with any tool choice; thinking on with ``auto`` and ``none``."""
    chat: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "reasoning_effort": effort,
    }
    for choice in ("auto", "none", "required"):
        if choice == "required" and thinking is None:
            continue
        result = translate_request({**chat, "tool_choice": choice}, CHAT, MESSAGES)
        expected = thinking or {"type": "enabled", "budget_tokens": EFFORT_BUDGETS[effort]}
        assert result.body["thinking"] == expected
        assert result.dropped == ()


def _tool_loop(*after: dict[str, Any], thinking_blocks: bool = False) -> list[dict[str, Any]]:
    """A Chat conversation in a tool loop (the results sent back), then ``after``."""
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    assistant: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
    if thinking_blocks:
        assistant["thinking_blocks"] = [{"type": "thinking", "thinking": "t", "signature": "s"}]
    return [
        {"role": "user", "content": "weather?"},
        assistant,
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        *after,
    ]


def test_thinking_is_left_out_of_a_tool_loop_without_its_thinking_block() -> None:
    """With thinking on, Anthropic needs a tool loop in progress to open with its signed thinking
    block; an OpenAI client never has one: thinking is left out and the reasoning named."""
    tools = [{"type": "function", "function": {"name": "f"}}]
    chat = {"model": "m", "reasoning_effort": "medium", "tools": tools, "messages": _tool_loop()}
    result = translate_request(chat, CHAT, MESSAGES)
    assert "thinking" not in result.body
    assert result.body["max_tokens"] == 4096
    assert result.dropped == ("reasoning_effort",)
    with pytest.raises(
        RequestTranslationError,
        match=r"field reasoning_effort is not supported by anthropic-messages: .*thinking block",
    ):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    # Tool results sent with new user text: still taken as the same turn (the stricter reading).
    more = {**chat, "messages": _tool_loop({"role": "user", "content": "and tomorrow?"})}
    assert translate_request(more, CHAT, MESSAGES).dropped == ("reasoning_effort",)
    responses = {
        "model": "m",
        "reasoning": {"effort": "medium"},
        "tools": [{"type": "function", "name": "f", "parameters": {}}],
        "input": [
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ],
    }
    result = translate_request(responses, RESPONSES, MESSAGES)
    assert "thinking" not in result.body
    assert result.dropped == ("reasoning",)


def test_thinking_is_kept_when_the_conversation_allows_it() -> None:
    """A tool loop that ended (answered in text) needs no thinking block; one that opens with
    a signed thinking block keeps thinking on, over several rounds of tool calls."""
    tools = [{"type": "function", "function": {"name": "f"}}]
    chat: dict[str, Any] = {"model": "m", "reasoning_effort": "medium", "tools": tools}
    enabled = {"type": "enabled", "budget_tokens": 4096}
    ended = _tool_loop(
        {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "Thanks"}
    )
    second_call = {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    signed = _tool_loop(
        {"role": "assistant", "content": None, "tool_calls": [second_call]},
        {"role": "tool", "tool_call_id": "call_2", "content": "windy"},
        thinking_blocks=True,
    )
    for messages in (ended, signed):
        result = translate_request({**chat, "messages": messages}, CHAT, MESSAGES)
        assert result.body["thinking"] == enabled
        assert result.dropped == ()
        assert_valid_messages_body(result.body)
    off = {**chat, "reasoning_effort": "none", "messages": _tool_loop()}
    assert translate_request(off, CHAT, MESSAGES).body["thinking"] == {"type": "disabled"}


PREFILL_CASES: list[tuple[str, dict[str, Any], str]] = [
    (
        CHAT,
        {
            "model": "m",
            "reasoning_effort": "high",
            "messages": [
                {"role": "user", "content": "Name a colour."},
                {"role": "assistant", "content": "The colour is "},
            ],
        },
        "reasoning_effort",
    ),
    (
        RESPONSES,
        {
            "model": "m",
            "reasoning": {"effort": "low"},
            "input": [
                {"role": "user", "content": "Name a colour."},
                {
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "The colour is "}],
                },
            ],
        },
        "reasoning",
    ),
]


@pytest.mark.parametrize(("source", "body", "name"), PREFILL_CASES)
def test_a_prefill_wins_over_thinking(source: str, body: dict[str, Any], name: str) -> None:
    """Anthropic takes no thinking with a prefill (a final assistant message): the prefill, the
    client's own content, is kept and the reasoning setting named; its trailing whitespace, which
    Anthropic refuses, is stripped without a mention."""
    result = translate_request(body, source, MESSAGES)
    assert result.body["messages"][-1] == {"role": "assistant", "content": "The colour is"}
    assert "thinking" not in result.body
    assert result.body["max_tokens"] == 4096  # no thinking budget to make room for
    assert result.dropped == (name,)
    assert_valid_messages_body(result.body)
    with pytest.raises(
        RequestTranslationError,
        match=rf"field {name} is not supported by anthropic-messages: .*prefill",
    ):
        translate_request(body, source, MESSAGES, on_unsupported="error")


def test_a_prefill_loses_its_trailing_whitespace_only() -> None:
    """Without thinking nothing is named; only the last text of the final assistant message is
    stripped (earlier turns and the user's text keep their whitespace)."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "a "},
            {"role": "assistant", "content": "b \n"},
            {"role": "user", "content": "c "},
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "d "}, {"type": "text", "text": "e\n\t "}],
            },
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert [message["content"] for message in result.body["messages"]] == [
        "a ",
        "b \n",
        "c ",
        [{"type": "text", "text": "d "}, {"type": "text", "text": "e"}],
    ]
    assert result.dropped == ()
    assert_valid_messages_body(result.body)
    # Thinking off and a prefill go together.
    off = translate_request({**chat, "reasoning_effort": "none"}, CHAT, MESSAGES)
    assert off.body["thinking"] == {"type": "disabled"}
    assert off.dropped == ()
    # The user having the last word: thinking stays, the text is left as it is.
    last_user = {**chat, "messages": chat["messages"][:3], "reasoning_effort": "low"}
    kept = translate_request(last_user, CHAT, MESSAGES)
    assert kept.body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert kept.body["messages"][-1]["content"] == "c "


# ---------------------------------------------------------------------------------------------
# Responses specifics


def test_responses_string_input_and_instructions() -> None:
    """A string ``input`` is one user message; ``instructions`` is the system prompt."""
    responses = {
        "model": "m",
        "input": "hello",
        "instructions": "be brief",
        "max_output_tokens": 64,
    }
    assert translate_request(responses, RESPONSES, MESSAGES).body == {
        "model": "m",
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello"}],
    }


@pytest.mark.parametrize("target", [CHAT, MESSAGES])
def test_responses_state_fields_cannot_be_honoured(target: str) -> None:
    """``background``, ``include``, ``truncation`` need Responses: named."""
    responses = {
        "model": "m",
        "input": "x",
        "background": True,
        "include": ["reasoning.encrypted_content"],
        "truncation": "auto",
    }
    result = translate_request(responses, RESPONSES, target)
    for key in ("background", "include", "truncation"):
        assert key not in result.body
    assert result.dropped == ("background", "include", "truncation")
    with pytest.raises(RequestTranslationError, match="field background is not supported"):
        translate_request(responses, RESPONSES, target, on_unsupported="error")


@pytest.mark.parametrize("target", [CHAT, MESSAGES, TEXT])
@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("previous_response_id", "resp_1", "previous_response_id"),
        ("conversation", "conv_1", "conversation"),
        ("conversation", {"id": "conv_1"}, "conversation"),
        ("prompt", {"id": "pmpt_1", "variables": {"city": "Oslo"}}, "prompt"),
        ("input", [{"type": "item_reference", "id": "msg_1"}, "x"], "input"),
    ],
)
def test_responses_stored_state_is_refused_in_either_mode(
    target: str, field: str, value: Any, param: str
) -> None:
    """What an earlier response, a conversation, a stored prompt or an item reference holds lives
    at OpenAI: sent without it, the model would answer something else. A 400, never a drop."""
    body = {"model": "m", "input": "And tomorrow?", field: value}
    if field == "input":
        body["input"] = [value[0], {"role": "user", "content": value[1]}]
    modes: tuple[Literal["drop", "error"], ...] = ("drop", "error")
    for mode in modes:
        with pytest.raises(RequestTranslationError, match="stored by OpenAI") as info:
            translate_request(body, RESPONSES, target, on_unsupported=mode)
        assert info.value.param == param
        assert target in str(info.value)


def test_responses_defaults_are_not_losses() -> None:
    """Default values carry no meaning: ``store: false``, ``background: false``, null ids."""
    responses = {
        "model": "m",
        "input": "x",
        "store": False,
        "background": False,
        "previous_response_id": None,
        "truncation": "disabled",
        "include": [],
        "stream_options": {"include_obfuscation": False},
    }
    result = translate_request(responses, RESPONSES, MESSAGES, on_unsupported="error")
    assert result.dropped == ()
    assert translate_request(responses, RESPONSES, CHAT).body["store"] is False


def test_requests_into_responses_are_not_stored_unless_asked() -> None:
    """Responses stores by default; Chat does not and the other formats cannot: a request
    translated into Responses says ``store: false`` unless the client asked for storage."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert translate_request(chat, CHAT, RESPONSES).body["store"] is False
    assert translate_request({**chat, "store": True}, CHAT, RESPONSES).body["store"] is True
    messages = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    assert translate_request(messages, MESSAGES, RESPONSES).body["store"] is False
    text = {"model": "m", "prompt": "x"}
    assert translate_request(text, TEXT, RESPONSES).body["store"] is False
    atext = {"model": "m", "prompt": "\n\nHuman: x\n\nAssistant:", "max_tokens_to_sample": 5}
    assert translate_request(atext, ATEXT, RESPONSES).body["store"] is False
    # A Responses request rendered back to Responses keeps its own default.
    request, _ = parse_request({"model": "m", "input": "x"}, RESPONSES)
    body, _ = render_request(request, RESPONSES)
    assert "store" not in body


def test_responses_storage_is_no_loss_where_nothing_is_stored() -> None:
    """Responses ``store: true`` is its default: a target that keeps nothing loses no meaning
    (into Chat, which can store, it is carried)."""
    responses = {"model": "m", "input": "x", "store": True}
    for target in (MESSAGES, ATEXT):
        result = translate_request(responses, RESPONSES, target, on_unsupported="error")
        assert "store" not in result.body
        assert result.dropped == ()
    assert translate_request(responses, RESPONSES, CHAT).body["store"] is True
    assert "store" not in translate_request({**responses, "store": None}, RESPONSES, CHAT).body


def test_response_format_between_chat_and_responses() -> None:
    """Chat ``response_format`` ↔ Responses ``text.format``; Anthropic cannot take it."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": schema, "strict": True},
        },
        "verbosity": "low",
    }
    responses = translate_request(chat, CHAT, RESPONSES).body
    assert responses["text"] == {
        "format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True},
        "verbosity": "low",
    }
    back = translate_request(responses, RESPONSES, CHAT).body
    assert back["response_format"] == chat["response_format"]
    assert back["verbosity"] == "low"
    result = translate_request(chat, CHAT, MESSAGES)
    assert "response_format" not in result.body
    closed = {**schema, "additionalProperties": False}  # (Anthropic's rule: the schema tests)
    assert result.body["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
    assert result.dropped == ("verbosity",)
    json_mode = {**chat, "response_format": {"type": "json_object"}}
    assert translate_request(json_mode, CHAT, RESPONSES).body["text"]["format"] == {
        "type": "json_object"
    }
    text_mode = {**chat, "response_format": {"type": "text"}, "verbosity": None}
    assert translate_request(text_mode, CHAT, MESSAGES).dropped == ()


# ---------------------------------------------------------------------------------------------
# Unsupported fields, both modes


UNSUPPORTED_FOR_ANTHROPIC: list[tuple[str, Any]] = [
    ("n", 3),
    ("response_format", {"type": "json_object"}),
    ("logprobs", True),
    ("top_logprobs", 3),
    ("seed", 7),
    ("presence_penalty", 0.5),
    ("frequency_penalty", 0.5),
    ("logit_bias", {"1": 2}),
    ("audio", {"voice": "alloy", "format": "wav"}),
    ("modalities", ["text", "audio"]),
    ("prediction", {"type": "content", "content": "x"}),
    ("x_unknown_field", 1),
]


@pytest.mark.parametrize(("field", "value"), UNSUPPORTED_FOR_ANTHROPIC)
def test_unsupported_field_dropped_and_named(field: str, value: Any) -> None:
    """``drop`` mode: a field Anthropic cannot express is removed and named in ``dropped``."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    result = translate_request(chat, CHAT, MESSAGES)
    assert field not in result.body
    assert result.dropped == (field,)


@pytest.mark.parametrize(("field", "value"), UNSUPPORTED_FOR_ANTHROPIC)
def test_unsupported_field_refused_in_error_mode(field: str, value: Any) -> None:
    """``error`` mode: the same field raises with a client-safe message naming it and the target."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    with pytest.raises(RequestTranslationError) as info:
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    assert str(info.value).startswith(f"field {field} is not supported by anthropic-messages")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n", 1),
        ("logprobs", False),
        ("presence_penalty", 0),
        ("frequency_penalty", 0.0),
        ("seed", None),
    ],
)
def test_default_values_are_not_losses(field: str, value: Any) -> None:
    """A field at its API default (or null) says nothing: dropped silently, even in error mode."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    result = translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    assert field not in result.body
    assert result.dropped == ()


@pytest.mark.parametrize(
    ("field", "value"), [("suffix", "tail"), ("echo", True), ("best_of", 3), ("logprobs", 2)]
)
def test_openai_text_only_fields(field: str, value: Any) -> None:
    """Completions' ``suffix``/``echo``/``best_of``/``logprobs`` exist nowhere else."""
    body = {"model": "m", "prompt": "x", field: value}
    for target in (CHAT, MESSAGES):
        result = translate_request(body, TEXT, target)
        assert field not in result.body
        assert result.dropped == (field,)
        with pytest.raises(
            RequestTranslationError, match=f"field {field} is not supported by {target}"
        ):
            translate_request(body, TEXT, target, on_unsupported="error")


def test_n_above_one_to_anthropic_is_never_silently_one() -> None:
    """``n: 3`` cannot be honoured by Anthropic: named, never quietly turned into one answer."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 3}
    assert translate_request(chat, CHAT, MESSAGES).dropped == ("n",)
    assert translate_request(chat, CHAT, ATEXT).dropped == ("n",)
    assert translate_request(chat, CHAT, RESPONSES).dropped == ("n",)


def test_top_k_to_openai_is_named() -> None:
    """``top_k`` has no OpenAI equivalent."""
    messages = {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "top_k": 4,
    }
    for target in (CHAT, RESPONSES):
        result = translate_request(messages, MESSAGES, target)
        assert "top_k" not in result.body
        assert result.dropped == ("top_k",)


def test_anthropic_only_fields_are_named() -> None:
    """Anthropic's own top-level fields do not go to OpenAI; ``cache_control`` is only a hint."""
    messages = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}],
            }
        ],
        "cache_control": {"type": "ephemeral"},
        "service_tier": "standard_only",
        "container": "c",
        "output_config": {"effort": "low", "task_budget": 3},
    }
    result = translate_request(messages, MESSAGES, CHAT)
    assert result.dropped == ("output_config.task_budget", "service_tier", "container")
    assert result.body["messages"] == [{"role": "user", "content": "x"}]
    assert result.body["reasoning_effort"] == "low"  # (output_config.effort)


def test_unsupported_content_parts_are_named() -> None:
    """Audio, uploaded files and documents no source can carry: named by their part type."""
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "name": "bob",
                "content": [
                    {"type": "text", "text": "x"},
                    {"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "f"}},
                ],
            }
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.body["messages"] == [{"role": "user", "content": "x"}]
    # (An OpenAI upload id is good at OpenAI only.)
    assert result.dropped == ("messages.name", "messages.input_audio", "messages.document")
    messages = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "file", "file_id": "f"}},
                    {"type": "image", "source": {"type": "file", "file_id": "f"}},
                    {"type": "text", "text": "x"},
                ],
            }
        ],
    }
    assert translate_request(messages, MESSAGES, CHAT).dropped == (
        "messages.document.file",
        "messages.image.file",
    )


PDF = "JVBERi0xLjQK"


def test_documents_travel_between_every_format_that_takes_them() -> None:
    """A PDF (base64 or by URL) and a text document: Chat ``file``, Responses ``input_file`` and
    Anthropic ``document`` carry the same thing, each in the shape its SDK declares."""
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {
                            "filename": "report.pdf",
                            "file_data": f"data:application/pdf;base64,{PDF}",
                        },
                    },
                    {"type": "text", "text": "Summarize the report"},
                ],
            }
        ],
    }
    messages = translate_request(chat, CHAT, MESSAGES)
    assert messages.dropped == ()
    assert messages.body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
            "title": "report.pdf",
        },
        {"type": "text", "text": "Summarize the report"},
    ]
    assert_valid_messages_body(messages.body)
    responses = translate_request(messages.body, MESSAGES, RESPONSES)
    assert responses.dropped == ()
    assert responses.body["input"][0]["content"][0] == {
        "type": "input_file",
        "file_data": f"data:application/pdf;base64,{PDF}",
        "filename": "report.pdf",
    }
    assert_valid_responses_body(responses.body)
    back = translate_request(responses.body, RESPONSES, CHAT)
    assert back.dropped == ()
    assert back.body["messages"] == chat["messages"]
    assert_valid_chat_body(back.body)

    anthropic = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}},
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
                        "title": "notes.txt",
                    },
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                    {"type": "text", "text": "Compare them"},
                ],
            }
        ],
    }
    into_responses = translate_request(anthropic, MESSAGES, RESPONSES)
    assert into_responses.dropped == ("messages.document.title",)  # (the text's title)
    assert into_responses.body["input"][0]["content"] == [
        {"type": "input_file", "file_url": "https://x/a.pdf"},
        {"type": "input_text", "text": "notes"},  # (a text document is its text)
        {
            "type": "input_file",
            "file_data": f"data:application/pdf;base64,{PDF}",
            "filename": "document.pdf",  # (OpenAI wants a file name with file_data)
        },
        {"type": "input_text", "text": "Compare them"},
    ]
    assert_valid_responses_body(into_responses.body)
    into_messages = translate_request(into_responses.body, RESPONSES, MESSAGES)
    assert into_messages.body["messages"][0]["content"][0] == {
        "type": "document",
        "source": {"type": "url", "url": "https://x/a.pdf"},
    }
    assert_valid_messages_body(into_messages.body)
    # Chat takes no file by URL: that one is named, the others go.
    into_chat = translate_request(anthropic, MESSAGES, CHAT)
    assert into_chat.dropped == ("messages.document", "messages.document.title")
    assert [part["type"] for part in into_chat.body["messages"][0]["content"]] == [
        "text",
        "file",
        "text",
    ]
    assert_valid_chat_body(into_chat.body)
    with pytest.raises(RequestTranslationError, match="no file by URL"):
        translate_request(anthropic, MESSAGES, CHAT, on_unsupported="error")


def test_documents_anthropic_cannot_read_are_named() -> None:
    """Anthropic reads PDFs and plain text: another file type is named, not sent; a base64 text
    file becomes a text document; an upload id (OpenAI's) is named."""
    text_file = base64.b64encode("día 1".encode()).decode()
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {
                            "filename": "a.docx",
                            "file_data": "data:application/msword;base64,AAAA",
                        },
                    },
                    {
                        "type": "file",
                        "file": {"file_data": f"data:text/plain;base64,{text_file}"},
                    },
                    {"type": "file", "file": {"file_id": "file-1"}},
                    {"type": "text", "text": "x"},
                ],
            }
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.dropped == ("messages.document",)
    assert result.body["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "día 1"},
        },
        {"type": "text", "text": "x"},
    ]
    assert_valid_messages_body(result.body)
    for target in (TEXT, ATEXT):
        assert "messages.document" in translate_request(chat, CHAT, target).dropped


def test_openai_file_ids_travel_between_the_openai_formats() -> None:
    """An upload id is good at OpenAI: Chat ``file.file_id`` ↔ Responses ``input_file.file_id``."""
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "file", "file": {"file_id": "file-abc"}},
                    {"type": "text", "text": "Summarize"},
                ],
            }
        ],
    }
    responses = translate_request(chat, CHAT, RESPONSES)
    assert responses.dropped == ()
    assert responses.body["input"][0]["content"][0] == {"type": "input_file", "file_id": "file-abc"}
    assert_valid_responses_body(responses.body)
    back = translate_request(responses.body, RESPONSES, CHAT)
    assert back.body["messages"] == chat["messages"]


def test_file_data_in_every_spelling() -> None:
    """A data URL not in base64 is text by RFC 2397 (percent-decoded) unless it names another
    type, which cannot be read and is named; line-wrapped base64 text decodes; bare base64
    takes its type from the file name."""
    wrapped = base64.encodebytes(("line " * 30).encode()).decode()  # (76-column lines)
    assert "\n" in wrapped.strip()

    def document(file: dict[str, Any]) -> tuple[Any, tuple[str, ...]]:
        body = {
            "model": "m",
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "file", "file": file}, {"type": "text", "text": "x"}],
                }
            ],
        }
        result = translate_request(body, CHAT, MESSAGES)
        return result.body["messages"][0]["content"][0], result.dropped

    text_source = {"type": "text", "media_type": "text/plain", "data": "hello world"}
    assert document({"file_data": "data:,hello%20world"}) == (
        {"type": "document", "source": text_source},
        (),
    )
    # (Only the text left: the content is that string, whose first character is its "x".)
    assert document({"file_data": "data:application/pdf,%25PDF"}) == ("x", ("messages.file",))
    wrapped_url = f"data:text/plain;base64,{wrapped}"
    block, dropped = document({"file_data": wrapped_url, "filename": "a.txt"})
    assert (block["source"]["data"], dropped) == ("line " * 30, ())
    block, dropped = document({"file_data": PDF, "filename": "report.pdf"})
    assert (block["source"]["media_type"], dropped) == ("application/pdf", ())
    latin1 = base64.b64encode("café".encode("latin-1")).decode()
    block, _ = document({"file_data": latin1, "filename": "notes.txt"})
    assert block["source"]["data"] == "caf\ufffd"  # (what UTF-8 cannot read is marked)


def test_tool_result_images_reach_chat_clients_after_the_tool_messages() -> None:
    """A Responses ``function_call_output`` with a screenshot into Chat: the tool message holds
    the text, the image follows in a user message, before the user's own words."""
    responses = {
        "model": "m",
        "input": [
            {"role": "user", "content": "click OK"},
            {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "log", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c1",
                "output": [
                    {"type": "input_text", "text": "screen:"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
                ],
            },
            {"type": "function_call_output", "call_id": "c2", "output": "ok"},
            {"role": "user", "content": "and now?"},
        ],
    }
    result = translate_request(responses, RESPONSES, CHAT)
    assert result.dropped == ()
    assert result.body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "c1", "content": "screen:"},
        {"role": "tool", "tool_call_id": "c2", "content": "ok"},
        {
            "role": "user",
            "content": [
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/png;base64,{PNG}"},
                },
                {"type": "text", "text": "and now?"},
            ],
        },
    ]
    assert_valid_chat_body(result.body)


AUDIO = [{"type": "input_audio", "input_audio": {}}]
SEARCH_RESULT = [{"type": "search_result", "source": "s", "title": "t"}]


def ending_with(source: str, last: Any) -> dict[str, Any]:
    """A conversation in ``source`` (Chat or Messages) whose last user turn is ``last``."""
    turns = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! "},
        {"role": "user", "content": last},
    ]
    if source == MESSAGES:
        return {"model": "m", "max_tokens": 50, "messages": turns}
    return {"model": "m", "messages": turns}


@pytest.mark.parametrize(
    ("source", "body", "target", "expected"),
    [
        (CHAT, ending_with(CHAT, AUDIO), MESSAGES, "dropped: messages.input_audio"),
        (CHAT, ending_with(CHAT, "   "), MESSAGES, "it is blank"),
        (CHAT, ending_with(CHAT, AUDIO), ATEXT, "dropped: messages.input_audio"),
        (
            RESPONSES,
            {
                "model": "m",
                "input": [
                    {"role": "user", "content": "fix the bug"},
                    {"role": "assistant", "content": "I'll patch main.py now."},
                    {"type": "custom_tool_call", "call_id": "c", "name": "patch", "input": "x"},
                    {"type": "custom_tool_call_output", "call_id": "c", "output": "Done"},
                ],
            },
            MESSAGES,
            "input.custom_tool_call_output",
        ),
        (MESSAGES, ending_with(MESSAGES, SEARCH_RESULT), CHAT, "dropped: messages.search_result"),
        (
            MESSAGES,
            ending_with(MESSAGES, SEARCH_RESULT),
            RESPONSES,
            "dropped: messages.search_result",
        ),
        (
            CHAT,
            {"model": "m", "messages": [{"role": "user", "content": AUDIO}]},
            TEXT,
            "dropped: messages.input_audio",
        ),
    ],
)
def test_a_last_user_turn_left_empty_is_refused(
    source: str, body: dict[str, Any], target: str, expected: str
) -> None:
    """Without its last user turn the request would ask for another answer: at Anthropic the
    assistant's last message would become a prefill to continue, elsewhere the model would
    answer the turn before. A 400 saying what was dropped, in either mode."""
    with pytest.raises(RequestTranslationError, match="nothing in the last user turn") as info:
        translate_request(body, source, target)
    assert expected in str(info.value)
    assert target in str(info.value)


def test_results_of_dropped_tool_calls_are_dropped_with_them() -> None:
    """A Chat custom tool call cannot be sent; its result, sent alone, would be refused by
    Anthropic and Responses (no call to answer)."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "fix it"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "custom", "custom": {"name": "patch", "input": "x"}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "done"},
            {"role": "user", "content": "now run the tests"},
        ],
    }
    messages = translate_request(chat, CHAT, MESSAGES)
    assert messages.body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "fix it"},
                {"type": "text", "text": "now run the tests"},
            ],
        }
    ]
    assert messages.dropped == ("messages.tool_calls.custom", "messages.tool_results")
    responses = translate_request(chat, CHAT, RESPONSES)
    assert [item.get("type") for item in responses.body["input"]] == ["message", "message"]
    assert_valid_responses_body(responses.body)


@pytest.mark.parametrize(
    ("source", "body", "name"),
    [
        (
            MESSAGES,
            {
                "model": "m",
                "max_tokens": 50,
                "messages": [
                    {"role": "user", "content": "JSON for Oslo"},
                    {"role": "assistant", "content": "{"},
                ],
            },
            "messages.prefill",
        ),
        (
            ATEXT,
            {"model": "m", "prompt": "\n\nHuman: JSON for Oslo\n\nAssistant: {"},
            "prompt.prefill",
        ),
    ],
)
@pytest.mark.parametrize("target", [CHAT, RESPONSES])
def test_a_prefill_for_openai_is_named(
    source: str, body: dict[str, Any], name: str, target: str
) -> None:
    """OpenAI answers after a final assistant message instead of continuing it: a client
    joining the prefill to the answer would get another text than it expects. Named (the
    message still goes, as history), refused in error mode."""
    result = translate_request(body, source, target)
    assert result.dropped == (name,)
    assert "{" in json.dumps(result.body)
    with pytest.raises(RequestTranslationError, match="instead of continuing it") as info:
        translate_request(body, source, target, on_unsupported="error")
    assert info.value.param == name


@pytest.mark.parametrize(
    ("source", "body", "dropped"),
    [
        (
            MESSAGES,
            {
                "model": "m",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                "tool_choice": {"type": "auto"},
            },
            ("tools.web_search_20250305",),
        ),
        (
            MESSAGES,
            {
                "model": "m",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [
                    {"type": "web_search_20250305", "name": "web_search"},
                    {"name": "f", "input_schema": {"type": "object"}},
                ],
                "tool_choice": {"type": "tool", "name": "web_search"},
            },
            ("tools.web_search_20250305", "tool_choice"),
        ),
        (
            CHAT,
            {
                "model": "m",
                "messages": [{"role": "user", "content": "hi"}],
                "tools": [{"type": "custom", "custom": {"name": "x"}}],
                "tool_choice": "required",
            },
            ("tools.custom", "tool_choice"),
        ),
        (
            RESPONSES,
            {
                "model": "m",
                "input": "hi",
                "tools": [{"type": "web_search"}],
                "tool_choice": "none",
            },
            ("tools.web_search",),
        ),
    ],
)
def test_no_tool_choice_without_the_tools_it_is_about(
    source: str, body: dict[str, Any], dropped: tuple[str, ...]
) -> None:
    """OpenAI and Anthropic refuse ``tool_choice`` without ``tools``, as is left when every tool
    was one the target cannot take. ``auto``/``none`` then mean nothing; a forced call to a
    tool that is not sent is named."""
    for target in {CHAT, RESPONSES, MESSAGES} - {source}:
        result = translate_request(body, source, target)
        assert "tool_choice" not in result.body
        assert result.dropped == dropped
        validate = {
            CHAT: assert_valid_chat_body,
            RESPONSES: assert_valid_responses_body,
            MESSAGES: assert_valid_messages_body,
        }
        validate[target](result.body)


def test_structured_output_between_openai_and_anthropic() -> None:
    """Chat ``response_format`` / Responses ``text.format`` JSON schema ↔ Anthropic
    ``output_config.format`` (always enforced); OpenAI's format needs a name, Anthropic's has
    none; JSON mode without a schema has no Anthropic form."""
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    anthropic = {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "max"},
    }
    chat = translate_request(anthropic, MESSAGES, CHAT)
    assert chat.dropped == ()
    assert chat.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert chat.body["reasoning_effort"] == "max"
    assert_valid_chat_body(chat.body)
    responses = translate_request(anthropic, MESSAGES, RESPONSES)
    assert responses.body["text"] == {
        "format": {"type": "json_schema", "name": "response", "schema": schema}
    }
    assert_valid_responses_body(responses.body)
    back = translate_request(responses.body, RESPONSES, MESSAGES)
    closed = {**schema, "additionalProperties": False}  # (Anthropic's rule: the next test)
    assert back.body["output_config"] == {"format": {"type": "json_schema", "schema": closed}}
    assert_valid_messages_body(back.body)
    described = {
        "model": "m",
        "input": "x",
        "text": {
            "format": {"type": "json_schema", "name": "n", "schema": schema, "description": "d"}
        },
    }
    assert translate_request(described, RESPONSES, MESSAGES).dropped == ("text.format.description",)
    json_mode = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
    }
    result = translate_request(json_mode, CHAT, MESSAGES)
    assert "output_config" not in result.body
    assert result.dropped == ("response_format",)
    bad = {**anthropic, "output_config": {"format": {"type": "regex"}}}
    with pytest.raises(RequestTranslationError, match="unknown type"):
        translate_request(bad, MESSAGES, CHAT)


def test_schemas_anthropic_enforces_are_in_its_subset() -> None:
    """Anthropic's structured output (and strict tools) refuse what its subset of JSON Schema
    lacks (a 400: every object needs ``additionalProperties: false``; ``minimum``, ``pattern``,
    ``minItems`` above 1, an unknown string ``format`` are not supported): each object is
    closed, ``oneOf`` is ``anyOf``, and the rest is written into the description and named."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": "A person",
        "properties": {
            "age": {"type": "integer", "minimum": 0},
            "email": {"type": "string", "format": "email"},
            "code": {"type": "string", "pattern": "^[A-Z]+$"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "pet": {"oneOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}]},
            "kind": {"enum": ["a", "b"]},
        },
        "required": ["age"],
        "$defs": {"Pet": {"type": "object", "properties": {"name": {"type": "string"}}}},
    }
    chat = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": schema}},
        "tools": [
            {
                "type": "function",
                "function": {"name": "f", "parameters": schema, "strict": True},
            },
            {"type": "function", "function": {"name": "g", "parameters": schema}},
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    closed = {
        "$defs": {
            "Pet": {
                "type": "object",
                "properties": {"name": {"type": "string"}},
                "additionalProperties": False,
            }
        },
        "type": "object",
        "description": "A person",
        "properties": {
            "age": {"type": "integer", "description": "{minimum: 0}"},
            "email": {"type": "string", "format": "email"},
            "code": {"type": "string", "description": '{pattern: "^[A-Z]+$"}'},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "{minItems: 2}"},
            "pet": {"anyOf": [{"$ref": "#/$defs/Pet"}, {"type": "null"}]},
            "kind": {"enum": ["a", "b"]},
        },
        "additionalProperties": False,
        "required": ["age"],
    }
    assert result.body["output_config"]["format"]["schema"] == closed
    strict, loose = result.body["tools"]
    assert strict["input_schema"] == closed
    assert loose["input_schema"] == schema  # (a tool that is not strict: as it came)
    assert result.dropped == ("tools.parameters", "response_format.schema")
    assert_valid_messages_body(result.body)
    with pytest.raises(RequestTranslationError, match="only part of JSON Schema"):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="error")
    # What the subset has needs no mention.
    simple = {**chat, "tools": [], "response_format": {"type": "json_schema", "json_schema": {
        "name": "p", "schema": {"type": "object", "properties": {"a": {"type": "string"}}},
    }}}  # fmt: skip
    assert translate_request(simple, CHAT, MESSAGES).dropped == ()
    assert schema["properties"]["age"] == {"type": "integer", "minimum": 0}  # (not mutated)


def test_tool_names_openai_refuses_are_shortened_and_given_back() -> None:
    """OpenAI takes tool names of at most 64 characters, Anthropic 128 (Claude Code's MCP tools
    often pass 64): a longer name goes as a short one, the same in the tools, the tool choice
    and the conversation's calls, and ``tool_names`` gives the client's name back."""
    long = "mcp__kubernetes-mcp-server__resources_list_namespaced_custom_objects_v2"
    assert len(long) > 64
    body: dict[str, Any] = {
        "model": "m",
        "max_tokens": 100,
        "tools": [
            {"name": long, "input_schema": {"type": "object"}},
            {"name": "short", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "tool", "name": long},
        "messages": [
            {"role": "user", "content": "list them"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": long, "input": {}}],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "[]"}],
            },
        ],
    }
    for target in (CHAT, RESPONSES):
        result = translate_request(body, MESSAGES, target)
        ((sent, name),) = result.tool_names.items()
        assert name == long
        assert len(sent) == 64
        assert sent.startswith(long[:55])
        assert result.dropped == ()
        text = json.dumps(result.body)
        assert long not in text
        assert text.count(sent) == 3  # the tool, the choice, the call
        again = translate_request(body, MESSAGES, target)
        assert again.tool_names == result.tool_names  # (the same in every turn)
    chat = translate_request(body, MESSAGES, CHAT).body
    # An object schema without properties, as MCP servers write it, gets an empty one.
    assert chat["tools"][0]["function"]["parameters"] == {"type": "object", "properties": {}}
    assert_valid_chat_body(chat)
    assert translate_request(body, MESSAGES, MESSAGES).tool_names == {}  # (passed as it is)
    short = {**body, "tools": body["tools"][1:], "tool_choice": {"type": "auto"}}
    short["messages"] = body["messages"][:1]
    assert translate_request(short, MESSAGES, CHAT).tool_names == {}


@pytest.mark.parametrize(
    ("source", "body", "dropped"),
    [
        (CHAT, {"temperature": 0.3, "top_p": 0.9}, ("top_p",)),
        (CHAT, {"temperature": 0.3, "top_p": 1}, ()),  # (top_p's default: nothing lost)
        (CHAT, {"top_p": 0.9}, ()),
    ],
)
def test_temperature_and_top_p_are_not_both_sent_to_anthropic(
    source: str, body: dict[str, Any], dropped: tuple[str, ...]
) -> None:
    """Anthropic's models since Sonnet 4.5 answer 400 to both ("cannot both be specified"):
    the temperature is sent, top_p dropped (named unless it is its default)."""
    request = {"model": "m", "messages": [{"role": "user", "content": "x"}], **body}
    result = translate_request(request, source, MESSAGES)
    assert not ("temperature" in result.body and "top_p" in result.body)
    assert result.body.get("top_p") == (0.9 if "temperature" not in body else None)
    assert result.dropped == dropped


def test_safety_identifier_is_anthropics_user_id() -> None:
    """OpenAI's ``safety_identifier`` (its successor to ``user``: a stable id of the end user)
    goes to Anthropic as ``metadata.user_id`` when there is no ``user``; with both, ``user``
    wins and the other is named."""
    body = {"model": "m", "input": "x", "safety_identifier": "user-42"}
    result = translate_request(body, RESPONSES, MESSAGES)
    assert result.body["metadata"] == {"user_id": "user-42"}
    assert result.dropped == ()
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "user": "u-1"}
    both = translate_request({**chat, "safety_identifier": "s-2"}, CHAT, MESSAGES)
    assert both.body["metadata"] == {"user_id": "u-1"}
    assert both.dropped == ("safety_identifier",)


def test_responses_metadata_goes_to_chat_only_with_storage() -> None:
    """Chat takes ``metadata`` only for a stored completion (a 400 otherwise); Responses stores
    by default, so its clients send metadata freely."""
    body = {"model": "m", "input": "x", "metadata": {"run": "1"}}
    result = translate_request(body, RESPONSES, CHAT)
    assert "metadata" not in result.body
    assert result.dropped == ("metadata",)
    stored = translate_request({**body, "store": True}, RESPONSES, CHAT)
    assert stored.body["metadata"] == {"run": "1"}
    assert stored.body["store"] is True
    assert stored.dropped == ()


def test_arguments_given_as_an_object_are_carried() -> None:
    """A call's arguments sent as an object instead of its text (a common client slip) are
    carried; another non-string is named, not replaced silently."""
    responses = {
        "model": "m",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": {"path": "a.py"}},
            {"type": "function_call_output", "call_id": "c", "output": "ok"},
        ],
    }
    result = translate_request(responses, RESPONSES, MESSAGES)
    assert result.body["messages"][1]["content"][0]["input"] == {"path": "a.py"}
    assert result.dropped == ()
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": 5}},
            ]},
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
    }  # fmt: skip
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.body["messages"][1]["content"][0]["input"] == {}
    assert "messages.tool_calls.arguments" in result.dropped


def test_hostile_values_deep_in_a_request_are_refused_not_crashed() -> None:
    """Found by mutation: a non-string ``tool_use_id`` and a non-list reasoning ``summary``
    raised ``TypeError`` (through the proxy: a 500 and no answer in the client's format)."""
    with pytest.raises(RequestTranslationError, match="tool_use_id"):
        translate_request(
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "tool_result", "tool_use_id": ["t"]},
                        ],
                    }
                ],
            },
            MESSAGES,
            CHAT,
        )
    with pytest.raises(RequestTranslationError, match="summary must be an array"):
        translate_request(
            {
                "model": "m",
                "input": [{"type": "reasoning", "summary": 1}, {"role": "user", "content": "x"}],
            },
            RESPONSES,
            CHAT,
        )
    with pytest.raises(RequestTranslationError, match="needs the tool's name"):
        translate_request(
            {"model": "m", "max_tokens": 5, "messages": [], "tool_choice": {"type": "tool"}},
            MESSAGES,
            CHAT,
        )
    with pytest.raises(RequestTranslationError, match="openai-chat needs at least one message"):
        translate_request({"model": "m", "max_tokens": 5, "messages": []}, MESSAGES, CHAT)


def test_image_jpg_is_sent_to_anthropic_as_jpeg() -> None:
    """``image/jpg`` is no registered type, but it is what many clients write for JPEG."""
    chat = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/"}}
                ],
            }
        ],
    }
    result = translate_request(chat, CHAT, MESSAGES)
    assert result.dropped == ()
    assert result.body["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
    ]


@pytest.mark.parametrize(
    ("source", "body"),
    [
        (
            RESPONSES,
            {
                "model": "m",
                "input": "x",
                "tools": [
                    {"type": "function", "name": "f", "parameters": {}, "defer_loading": True}
                ],
            },
        ),
        (
            CHAT,
            {
                "model": "m",
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"type": "function", "function": {"name": "f", "defer_loading": True}}],
            },
        ),
        (
            MESSAGES,
            {
                "model": "m",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "x"}],
                "tools": [{"name": "f", "input_schema": {}, "defer_loading": True}],
            },
        ),
    ],
)
def test_tool_fields_the_model_does_not_carry_are_named(source: str, body: dict[str, Any]) -> None:
    """A field the canonical model has no place for is named, unless it is ``false`` (the
    default of every such flag)."""
    target = MESSAGES if source != MESSAGES else CHAT
    assert translate_request(body, source, target).dropped == ("tools.defer_loading",)
    off = json.loads(json.dumps(body).replace('"defer_loading": true', '"defer_loading": false'))
    assert translate_request(off, source, target).dropped == ()


def test_thinking_disabled_wins_over_an_output_effort() -> None:
    """Anthropic ``thinking: disabled`` with ``output_config.effort``: an OpenAI effort would
    turn reasoning on, which the client turned off; no effort goes, and it is named."""
    body = {
        "model": "m",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": "x"}],
        "thinking": {"type": "disabled"},
        "output_config": {"effort": "high"},
    }
    for target, key in ((CHAT, "reasoning_effort"), (RESPONSES, "reasoning")):
        result = translate_request(body, MESSAGES, target)
        assert key not in result.body
        assert result.dropped == ("output_config.effort",)


def test_results_of_server_tool_calls_do_not_go_alone() -> None:
    """A ``tool_result`` answering a server tool's call (which OpenAI formats cannot carry)
    would reach OpenAI without a call to answer: it goes with its call."""
    body = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {"role": "user", "content": "search"},
            {
                "role": "assistant",
                "content": [
                    {"type": "server_tool_use", "id": "srv1", "name": "web_search", "input": {}}
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "srv1", "content": "r"},
                    {"type": "text", "text": "and?"},
                ],
            },
        ],
    }
    result = translate_request(body, MESSAGES, CHAT)
    assert [m["role"] for m in result.body["messages"]] == ["user", "user"]
    assert result.dropped == ("messages.server_tool_use", "messages.tool_results")


def test_an_empty_conversation_names_what_was_dropped() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}],
    }
    with pytest.raises(RequestTranslationError, match=r"dropped: messages\.input_audio"):
        translate_request(body, CHAT, MESSAGES)


def test_error_mode_raises_at_the_first_loss_only_if_there_is_one() -> None:
    """``error`` mode translates a fully expressible request exactly like ``drop`` mode."""
    strict = translate_request(copy.deepcopy(CHAT_RICH), CHAT, MESSAGES, on_unsupported="error")
    assert strict.body == MESSAGES_FROM_CHAT_RICH
    with pytest.raises(RequestTranslationError, match=r"messages\.thinking"):
        translate_request(copy.deepcopy(MESSAGES_RICH), MESSAGES, CHAT, on_unsupported="error")


# ---------------------------------------------------------------------------------------------
# Bodies that cannot be translated


@pytest.mark.parametrize(
    ("source", "body", "message"),
    [
        (CHAT, {"model": "m"}, "messages is required"),
        (CHAT, {"model": "m", "messages": "hi"}, "messages must be an array"),
        (
            CHAT,
            {"model": "m", "messages": [{"role": "robot", "content": "x"}]},
            "unknown message role",
        ),
        (CHAT, {"model": 5, "messages": []}, "model must be a string"),
        (
            CHAT,
            {"model": "m", "messages": [], "temperature": "hot"},
            "temperature must be a number",
        ),
        (CHAT, {"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "tool_call_id"),
        (TEXT, {"model": "m", "prompt": ["a", "b"]}, "single string prompt"),
        (TEXT, {"model": "m", "prompt": [1, 2, 3]}, "single string prompt"),
        (MESSAGES, {"model": "m", "max_tokens": 1}, "messages is required"),
        (MESSAGES, {"model": "m", "messages": [], "tool_choice": {"type": "maybe"}}, "tool_choice"),
        (ATEXT, {"model": "m"}, "prompt must be a string"),
        (RESPONSES, {"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "call_id"),
    ],
)
def test_malformed_bodies_are_refused(source: str, body: dict[str, Any], message: str) -> None:
    """A malformed body raises ``RequestTranslationError`` (a 400), never a crash."""
    target = MESSAGES if source != MESSAGES else CHAT
    with pytest.raises(RequestTranslationError, match=message):
        translate_request(body, source, target)


@pytest.mark.parametrize(
    ("source", "body"),
    [
        (CHAT, {"model": "m", "messages": [{"role": "system", "content": "s"}]}),
        (
            CHAT,
            {
                "model": "m",
                "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": ""}],
            },
        ),
        (CHAT, {"model": "m", "messages": [{"role": "user", "content": " \n"}]}),
        (RESPONSES, {"model": "m", "instructions": "s"}),
        (RESPONSES, {"model": "m", "instructions": "s", "input": []}),
        (TEXT, {"model": "m", "prompt": ""}),
        (ATEXT, {"model": "m", "prompt": "", "max_tokens_to_sample": 5}),
    ],
)
def test_an_empty_conversation_is_refused_for_anthropic(source: str, body: dict[str, Any]) -> None:
    """Anthropic needs at least one message: a request with none is refused clearly (a 400), by
    Messages and by Text Completions (whose prompt would have no Human turn)."""
    for target in (MESSAGES, ATEXT):
        if target == source:
            continue  # the same format is passed through as it is
        with pytest.raises(RequestTranslationError, match="at least one non-empty") as info:
            translate_request(body, source, target)
        assert info.value.param is None  # the body as a whole, not one field
        with pytest.raises(RequestTranslationError, match="at least one non-empty"):
            translate_request(body, source, target, on_unsupported="error")


def test_text_completions_prompt_opens_with_a_human_turn() -> None:
    """Anthropic Text Completions refuses a prompt whose first turn is not ``Human:``: blank
    text makes no turn, and a conversation the assistant opens is refused clearly."""

    def chat(first: str) -> dict[str, Any]:
        return {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": first}]},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": "x"},
            ],
        }

    with pytest.raises(RequestTranslationError, match="open with a Human turn"):
        translate_request(chat(" "), CHAT, ATEXT)
    assert translate_request(chat("Hello"), CHAT, ATEXT).body["prompt"] == (
        "\n\nHuman: Hello\n\nAssistant: Hi.\n\nHuman: x\n\nAssistant:"
    )
    blank = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}],
            }
        ],
    }
    assert translate_request(blank, CHAT, ATEXT).body["prompt"] == "\n\nHuman: x\n\nAssistant:"


def test_body_must_be_an_object() -> None:
    """A JSON array or string is not a request."""
    with pytest.raises(RequestTranslationError, match="JSON object"):
        translate_request([], CHAT, MESSAGES)  # type: ignore[arg-type]


def test_input_is_not_mutated() -> None:
    """Translation never modifies the caller's body."""
    for source, body in ((CHAT, CHAT_RICH), (MESSAGES, MESSAGES_RICH), (RESPONSES, RESPONSES_RICH)):
        before = copy.deepcopy(body)
        for target in ALL:
            if target in (TEXT,):
                continue
            translate_request(body, source, target)
        assert body == before


# ---------------------------------------------------------------------------------------------
# Anthropic Text Completions prompt parsing


@pytest.mark.parametrize(
    ("prompt", "system", "turns"),
    [
        ("\n\nHuman: Hi\n\nAssistant:", [], [("user", "Hi")]),
        ("Human: Hi\n\nAssistant:", [], [("user", "Hi")]),
        ("Rules.\n\nHuman: Hi\n\nAssistant:", ["Rules."], [("user", "Hi")]),
        ("\n\nHuman: a\nb\n\nc\n\nAssistant:", [], [("user", "a\nb\n\nc")]),
        ("\n\nHuman: Hi\n\nAssistant: Sure", [], [("user", "Hi"), ("assistant", "Sure")]),
        ("just text", [], [("user", "just text")]),
        ("\n\nHuman: Hi", [], [("user", "Hi")]),
    ],
)
def test_anthropic_text_prompt_parsing(
    prompt: str, system: list[str], turns: list[tuple[str, str]]
) -> None:
    """Human/Assistant turns are parsed; a final empty ``Assistant:`` asks for the completion."""
    request, dropped = parse_request(
        {"model": "m", "prompt": prompt, "max_tokens_to_sample": 1}, ATEXT
    )
    assert request.system == system
    assert [(m.role, m.parts) for m in request.messages] == [
        (role, [Text(text)]) for role, text in turns
    ]
    assert dropped == ()


def test_anthropic_text_target_merges_turns_left_by_dropped_parts() -> None:
    """Dropping tool turns never leaves two ``Human:`` turns in a row."""
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "a"},
            {
                "role": "assistant",
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "r"},
            {"role": "user", "content": "b"},
        ],
    }
    result = translate_request(chat, CHAT, ATEXT)
    assert result.body["prompt"] == "\n\nHuman: a\n\nb\n\nAssistant:"
    assert result.dropped == ("messages.tool_calls", "messages.tool_results")


# ---------------------------------------------------------------------------------------------
# Every direction


TEXT_RICH: dict[str, Any] = {
    "model": "gpt-3.5-turbo-instruct",
    "prompt": "Say hi",
    "max_tokens": 7,
    "temperature": 0.2,
    "stop": ["\n"],
    "user": "u",
    "stream": True,
    "stream_options": {"include_usage": True},
}
ATEXT_RICH: dict[str, Any] = {
    "model": "claude-2.1",
    "prompt": "Sys.\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Bye\n\nAssistant:",
    "max_tokens_to_sample": 300,
    "stop_sequences": ["X"],
    "temperature": 0.5,
    "metadata": {"user_id": "u"},
    "stream": True,
}
RICH = {CHAT: CHAT_RICH, TEXT: TEXT_RICH, RESPONSES: RESPONSES_RICH, MESSAGES: MESSAGES_RICH}
RICH[ATEXT] = ATEXT_RICH


def assert_valid_body(body: dict[str, Any], fmt: str) -> None:
    """``body`` matches the SDK request params of ``fmt`` (Text Completions: its required keys)."""
    if fmt == CHAT:
        assert_valid_chat_body(body)
    elif fmt == RESPONSES:
        assert_valid_responses_body(body)
    elif fmt == MESSAGES:
        assert_valid_messages_body(body)
    elif fmt == TEXT:
        params = completion_create_params.CompletionCreateParamsBase
        assert_typed(body, params, wire_only=frozenset({"stream"}))
    else:
        assert {"model", "prompt", "max_tokens_to_sample"} <= body.keys()
        allowed = {"stream", "stop_sequences", "temperature", "top_p", "top_k", "metadata"}
        assert body.keys() <= {"model", "prompt", "max_tokens_to_sample"} | allowed
        assert body["prompt"].endswith("\n\nAssistant:")


@pytest.mark.parametrize("target", ALL)
@pytest.mark.parametrize("source", ALL)
def test_every_direction_gives_a_valid_body(source: str, target: str) -> None:
    """Each source's rich request translates to each target into a body its SDK accepts."""
    body = copy.deepcopy(RICH[source])
    single_turn = source == TEXT
    if target == TEXT and not single_turn and source != target:
        with pytest.raises(RequestTranslationError, match="single user turn"):
            translate_request(body, source, target)
        return
    result = translate_request(body, source, target)
    assert result.stream is True
    assert result.model == body["model"]
    assert len(set(result.dropped)) == len(result.dropped)
    assert_valid_body(result.body, target)
    assert json.loads(json.dumps(result.body)) == result.body  # plain JSON, nothing shared


def test_tool_arguments_with_a_lone_surrogate_translate_both_ways() -> None:
    """A lone surrogate escape, which the shells' standard-library parse reads (and the client's
    SDK wrote), travels in tool-call arguments both ways, under either JSON backend."""
    lone = "\ud83d"
    chat = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": "\\ud83d"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"},
        ],
    }
    messages = translate_request(copy.deepcopy(chat), CHAT, MESSAGES).body
    blocks = [
        b for m in messages["messages"] if isinstance(m["content"], list) for b in m["content"]
    ]
    (use,) = [b for b in blocks if b["type"] == "tool_use"]
    assert use["input"] == {"a": lone}
    back = translate_request(copy.deepcopy(messages), MESSAGES, CHAT).body
    (call,) = [c for m in back["messages"] for c in m.get("tool_calls") or []]
    assert json.loads(call["function"]["arguments"]) == {"a": lone}


def test_max_output_tokens_into_responses_is_at_least_16() -> None:
    """OpenAI Responses refuses ``max_output_tokens`` below 16 (a health check's one-token
    probe): a smaller limit is raised to 16 and named, or refused in ``error`` mode."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 1}
    result = translate_request(chat, CHAT, RESPONSES)
    assert result.body["max_output_tokens"] == 16
    assert result.dropped == ("max_tokens",)
    messages = {"model": "m", "max_tokens": 15, "messages": [{"role": "user", "content": "x"}]}
    assert translate_request(messages, MESSAGES, RESPONSES).body["max_output_tokens"] == 16
    exact = {**chat, "max_completion_tokens": 16}
    result = translate_request(exact, CHAT, RESPONSES)
    assert result.body["max_output_tokens"] == 16
    assert result.dropped == ()
    with pytest.raises(RequestTranslationError, match="at least 16") as info:
        translate_request(chat, CHAT, RESPONSES, on_unsupported="error")
    assert info.value.param == "max_tokens"
    # Other targets take small limits as they are.
    assert translate_request(chat, CHAT, MESSAGES).body["max_tokens"] == 1


def test_nonsense_options_are_refused() -> None:
    """A typo in ``on_unsupported`` must not quietly mean "drop"."""
    chat = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    with pytest.raises(ValueError, match="on_unsupported must be one of 'drop', 'error'"):
        translate_request(chat, CHAT, MESSAGES, on_unsupported="Error")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="default_max_tokens must be a positive int"):
        translate_request(chat, CHAT, MESSAGES, default_max_tokens=0)


def test_estimate_input_tokens_counts_text_and_images() -> None:
    """Four characters a token over the system prompt, messages and tool definitions as JSON
    (rounded up); an image, inline or by URL, as 1,600; a PDF's bytes are not text and count
    nothing. (A tool's schema counted only by its strings missed its property names: a tool of
    200 properties came to an eighth of its size.)"""
    body = {
        "model": "a-model-name-not-counted",
        "max_tokens": 10_000,
        "system": "abcd",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "x" * 40},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG * 99},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    },
                ],
            }
        ],
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
    }
    tools = json.dumps(body["tools"], separators=(",", ":"))
    strings = "abcd" + "user" + "text" + "x" * 40 + "document" + tools
    assert estimate_input_tokens(body) == -(-len(strings) // 4) + 2 * 1600
    schema = {"type": "object", "properties": {f"p{n:03}": {"type": "string"} for n in range(200)}}
    many = {"messages": [], "tools": [{"name": "f", "input_schema": schema}]}
    assert estimate_input_tokens(many) >= len(json.dumps(schema)) // 5
    assert estimate_input_tokens({"messages": []}) == 0


def test_item_references_resolve_to_the_stored_items() -> None:
    """``stored_items``: an ``item_reference`` to an item the caller holds (the proxy keeps the
    Responses items it wrote) reads as that item; to any other, it is refused as before."""
    stored: dict[str, Any] = {
        "msg_1": {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}],
        },
        "fc_1": {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "lookup",
            "arguments": '{"q": "x"}',
        },
        "rs_1": {"id": "rs_1", "type": "reasoning", "summary": []},
    }
    body = {
        "model": "m",
        "input": [
            {"role": "user", "content": "find x"},
            {"type": "item_reference", "id": "rs_1"},
            {"type": "item_reference", "id": "msg_1"},
            {"type": "item_reference", "id": "fc_1"},
            {"type": "function_call_output", "call_id": "call_1", "output": "found"},
        ],
    }
    result = translate_request(body, RESPONSES, MESSAGES, stored_items=stored)
    assert result.body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "x"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "found"}],
        },
    ]
    assert result.dropped == ("input.reasoning",)  # (provider-bound: formats.md §8)
    known: dict[str, Any] | None
    for known in (None, {}):
        with pytest.raises(RequestTranslationError, match="store = false") as info:
            translate_request(body, RESPONSES, MESSAGES, stored_items=known)
        assert info.value.param == "input"


def test_caching_breakpoints_reach_anthropic() -> None:
    """Prompt-caching breakpoints in an OpenAI-format request (``cache_control`` on a content
    part, a message, or a tool: LiteLLM's and OpenRouter's convention, which Cline sends) reach
    Anthropic where they were, at most the last four of them (Anthropic refuses more); no
    other target has them, and they are hints: never named."""
    ephemeral = {"type": "ephemeral"}
    chat: dict[str, Any] = {
        "model": "m",
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "rules"},
                {"type": "text", "text": "more rules", "cache_control": ephemeral},
            ]},
            {"role": "user", "content": "a long document", "cache_control": ephemeral},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": [
                {"type": "text", "text": "result", "cache_control": ephemeral},
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "question", "cache_control": {"type": "ephemeral",
                                                                       "ttl": "1h"}},
            ]},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {
            "type": "object", "properties": {}}}, "cache_control": ephemeral}],
    }  # fmt: skip
    result = translate_request(chat, CHAT, MESSAGES)
    body = result.body
    assert result.dropped == ()
    assert body["system"] == [
        {"type": "text", "text": "rules\n\nmore rules", "cache_control": ephemeral}
    ]
    user, _, results = body["messages"]
    assert user["content"] == [
        {"type": "text", "text": "a long document", "cache_control": ephemeral}
    ]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "c1", "content": [
            {"type": "text", "text": "result", "cache_control": ephemeral}]},
        {"type": "text", "text": "question", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]  # fmt: skip
    assert_valid_messages_body(body)
    # Five breakpoints: the first (the tool's) gives way.
    assert json.dumps(body).count('"cache_control"') == 4
    assert "cache_control" not in body["tools"][0]
    assert "cache_control" not in json.dumps(translate_request(chat, CHAT, RESPONSES).body)


def test_a_tool_result_of_several_texts_goes_to_responses_as_parts() -> None:
    """Responses takes a tool's output as a list of parts: several text blocks go as they are,
    rather than joined with whitespace the client never sent."""
    body = {
        "model": "m",
        "max_tokens": 50,
        "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t1", "name": "f", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
                {"type": "text", "text": "abc"}, {"type": "text", "text": "def"}]}]},
        ],
    }  # fmt: skip
    result = translate_request(body, MESSAGES, RESPONSES)
    (output,) = [i for i in result.body["input"] if i.get("type") == "function_call_output"]
    assert output["output"] == [
        {"type": "input_text", "text": "abc"},
        {"type": "input_text", "text": "def"},
    ]
    assert_valid_responses_body(result.body)
    back = translate_request(result.body, RESPONSES, MESSAGES)
    assert back.body["messages"][2]["content"][0]["content"] == [
        {"type": "text", "text": "abc"},
        {"type": "text", "text": "def"},
    ]
