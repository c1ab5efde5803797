"""Request-body translation between the five wire formats, through one canonical request model.

``translate_request(body, source, target)`` reads a client's request body in ``source`` format
into a ``CanonicalRequest`` and renders it as a ``target`` body. Same format on both sides skips
all of that: the body goes out as it came, only ``model`` mapped.

What the canonical model carries: the system prompt, user/assistant messages made of parts
(text; images by URL or base64 with a media type; documents (a PDF or text file by base64, URL or
text, with its file name); assistant tool calls with id, name and the
JSON arguments text; tool results with the call id, text/image content and ``is_error``;
thinking/reasoning with its provider-specific signature or item), tools (name, description,
JSON-schema parameters, strict), tool choice (auto / none / required / one function), parallel
tool calls, max tokens, temperature, top_p, top_k, stop sequences, stream and include_usage,
reasoning settings, the end-user id, the structured-output format, verbosity, and a few
same-meaning OpenAI fields carried verbatim (``_SHARED``).

Nothing is changed in meaning silently. A field (or a value, or a content part) the target cannot
express is either dropped and named in ``TranslatedRequest.dropped`` (``on_unsupported="drop"``)
or refused with ``RequestTranslationError("field X is not supported by <target>")``, followed by
the reason where it is not obvious (``on_unsupported="error"``). Unknown top-level fields are
treated the same way: never forwarded.
Values equal to the API default (``n: 1``, ``echo: false``, ``presence_penalty: 0``,
``store: false`` …) and ``null`` values carry no meaning and are dropped without a mention; so
are pure hints: Anthropic ``cache_control`` and an image ``detail`` of ``"auto"``. (The other way
round, the ``cache_control`` breakpoints OpenAI-format clients put on content parts, messages and
tools for Anthropic models, LiteLLM's and OpenRouter's convention, reach Anthropic where they
were, the last four: Anthropic refuses more.)

Some requests cannot be translated at all, in either mode (a 400 for the client): a malformed
body, a batch or token prompt in OpenAI Completions, a multi-turn
conversation for OpenAI Completions, no message at all for Anthropic Messages or Text
Completions (only system text, or only empty or blank text: Anthropic requires at least one
message), for Text Completions a conversation the assistant opens (its prompt must open
with a ``Human:`` turn), a conversation whose last user turn has nothing the target can take (it
would ask for another answer: at Anthropic the assistant's last message would become a prefill
to continue), and Responses ``previous_response_id``, ``conversation``, a stored ``prompt`` or an
``item_reference`` input (their content is stored at OpenAI; ``param`` names the field). In error
mode the refusal of a field also carries the client's name for it as
``RequestTranslationError.param``.

Mappings that are not one-to-one:

- Reasoning effort ↔ Anthropic thinking budget (``EFFORT_BUDGETS``)::

      effort      budget_tokens          budget_tokens      effort
      minimal     1024                   < 2048             low
      low         1024                   2048 … 8191        medium
      medium      4096                   >= 8192            high
      high        16384
      xhigh       32768
      max         32768
      none        thinking {"type": "disabled"}

  Anthropic needs ``budget_tokens < max_tokens``: when it is not, ``max_tokens`` becomes
  ``budget_tokens + max_tokens`` (the thinking budget plus the answer allowance asked for).
  Anthropic ``thinking: disabled`` sends no ``reasoning_effort`` to OpenAI (an
  ``output_config.effort`` with it is named), ``adaptive`` only an ``output_config.effort`` if
  one is given (else the model's default applies). Responses ``reasoning.summary`` is satisfied
  by Anthropic's summarised thinking. Thinking gives way (the reasoning field is named) where
  Anthropic would refuse it: with a ``tool_choice`` that forces a tool call (the forced call is
  what the client's code depends on), when the tool-use turn in progress does not open with its
  signed thinking block (always so for OpenAI clients, whose reasoning cannot travel), and when
  the conversation ends with an assistant message (a prefill for the model to continue: the
  client's own content is kept).
- Max tokens: Chat ``max_completion_tokens`` (preferred over ``max_tokens`` when both are
  given; written as ``max_completion_tokens``), Completions ``max_tokens``, Responses
  ``max_output_tokens``, Messages ``max_tokens`` and Text Completions ``max_tokens_to_sample``
  (both required: ``default_max_tokens`` when the client gave none). Responses takes no fewer
  than 16: a smaller value is raised to 16 and named.
- System: every Chat ``system``/``developer`` message, Responses ``instructions`` and
  system/developer items, Messages ``system`` (string or text blocks) and the text before the
  first ``Human:`` turn become one prompt, parts joined with a blank line.
- Roles: Anthropic targets get consecutive same-role messages merged and tool results first in
  their user message; Chat targets get one ``role: "tool"`` message per tool result, all before
  the rest of the user's turn, and, since a Chat tool message holds only text, a tool result's
  images open the user message that follows them. Empty or
  whitespace-only text is not sent to Anthropic (it refuses such a block); a turn left with
  nothing is left out, its neighbours merged. A final assistant message (a prefill) loses its
  trailing whitespace, which Anthropic refuses, without a mention; sent to OpenAI, which answers
  after it instead of continuing it, it is named (``messages.prefill``, ``prompt.prefill``).
- Tools: a ``tool_choice`` goes only with the tools it is about (OpenAI and Anthropic refuse it
  alone): when no tool it could pick is sent, ``auto`` and ``none`` are left out and a forced call
  is named. A tool call left out while reading (a Chat custom tool) takes its result with it.
  Into OpenAI, a name over 64 characters is shortened (``_shorten_tool_names``; the client's
  names come back through ``TranslatedRequest.tool_names``) and an object schema without
  ``properties`` gets an empty one. A call's arguments given as an object are carried as its
  text.
- Structured output: a JSON schema (Chat ``response_format``, Responses ``text.format``) ↔
  Anthropic ``output_config.format``, always enforced there; OpenAI needs a name, ``response``
  where the client gave none; JSON mode without a schema has no Anthropic form. Anthropic
  ``output_config.effort`` is OpenAI's reasoning effort (the same words), except with thinking
  disabled, which sends no effort (named). Into Anthropic the schema (and a strict tool's) is put
  in the subset Anthropic enforces (``_anthropic_schema``; what moves is named).
- Documents: Chat ``file`` (``file_data`` as a base64 data URL, OpenAI's form) ↔ Responses
  ``input_file`` (also ``file_url``) ↔ Anthropic ``document`` (a PDF, base64 or by URL, or
  plain text; its ``title`` is the file name). An OpenAI upload's ``file_id`` travels between
  the OpenAI formats and is named for Anthropic; a text document goes to OpenAI as text (its
  title named), a ``text/plain`` data URL not in base64 is text (RFC 2397; another type not in
  base64 is named); Chat takes no file by URL.
- Images: a base64 data URL (RFC 2397, media-type parameters allowed and not kept) becomes base64
  data with its bare media type. Anthropic takes only http(s) URLs and base64 JPEG, PNG, GIF and
  WebP; any other image (a data URL not in base64, another type, another scheme) is named.
  ``image/jpg`` (no registered type, but common) is sent as ``image/jpeg``.
- Thinking history is provider-bound (formats.md §8): Anthropic signed thinking and redacted
  thinking go only to Anthropic Messages, Responses reasoning items only to Responses; anything
  else is dropped and named.
- Sampling: Anthropic's temperature stops at 1 (a higher one is named, not clamped); with
  thinking on (``enabled`` or ``adaptive``) Anthropic takes only temperature 1, top_p >= 0.95
  and no top_k, so other values are named; into Messages temperature and top_p do not go
  together (top_p is named unless 1). ``top_k`` exists only at Anthropic. Stop sequences:
  at most four for Chat/Completions, none at all in Responses, none empty or whitespace-only in
  Anthropic Messages (the others are kept). The Anthropic SDK dropped temperature/top_p/top_k
  from its typed parameters in 1.0; the wire API still takes them on models that sample (newer
  models answer a non-default value with a 400, passed to the client).
- Storage: a request translated into Responses (which stores by default) says ``store: false``
  unless the client asked for storage (Chat ``store: true``). Responses' own ``store`` is no
  loss where the target never stores; its ``metadata`` goes to Chat only with ``store: true``.
- Tool-call ids sent to Anthropic are made to match ``^[a-zA-Z0-9_-]+$`` (other characters
  become ``_``), the same way in ``tool_use`` and ``tool_result``. Tool-call arguments that are
  no JSON object (a call cut by the token limit) go to Anthropic as ``{}``, named
  (``messages.tool_calls.arguments``): refused, they would fail every later turn.
- End-user ids: one the target would refuse (OpenAI ``user`` over 64 characters, such as Claude
  Code's ``metadata.user_id``; an Anthropic ``user_id`` outside ``^[a-zA-Z0-9_-]+$``, such as
  an e-mail address) goes as its SHA-256 in hex, as stable per end user as the id itself.
  OpenAI's ``safety_identifier`` is Anthropic's ``user_id`` where there is no ``user``.

Names in ``dropped``: the client's own top-level field name (``n``, ``seed``, ``top_k``,
``stop``, ``reasoning_effort`` …), a nested field as a dotted path (``text.format``,
``metadata.user_id``, ``tool_choice.disable_parallel_tool_use`` …) or a content path:
``messages.image``, ``messages.tool_calls``, ``messages.tool_results``, ``messages.thinking``,
``messages.name``, ``messages.document``, ``messages.prefill`` (``prompt.prefill`` from Text
Completions), ``messages.tool_calls.arguments``, ``messages.<part type>``, ``input.<item
type>``, ``tool_result.is_error``, ``tool_result.image``, ``tool_result.content``,
``image.detail``, ``tools.<tool type>``, ``tools.<field>``, ``output_config.<field>``.
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from . import _json
from ._checks import check_choice, check_count
from .errors import SSEAdapterError, UnknownFormat

__all__ = [
    "EFFORT_BUDGETS",
    "CanonicalRequest",
    "Content",
    "Document",
    "Image",
    "Message",
    "Reasoning",
    "RequestTranslationError",
    "ResponseFormat",
    "Text",
    "Thinking",
    "Tool",
    "ToolCall",
    "ToolChoice",
    "ToolResult",
    "TranslatedRequest",
    "budget_to_effort",
    "estimate_input_tokens",
    "parse_request",
    "render_request",
    "translate_request",
]

CHAT = "openai-chat"
TEXT = "openai-text"
RESPONSES = "openai-responses"
MESSAGES = "anthropic-messages"
ATEXT = "anthropic-text"
_FORMATS = (CHAT, TEXT, RESPONSES, MESSAGES, ATEXT)
# OpenAI Responses refuses a smaller ``max_output_tokens`` (vectorize-io/hindsight#58 quotes
# the error; braintrustdata/lingua#186 clamps it the same way).
RESPONSES_MIN_OUTPUT_TOKENS = 16
# OpenAI's longest tool name (``^[a-zA-Z0-9_-]{1,64}$``, the SDK's ``FunctionDefinition``);
# Anthropic takes 128 (mrexodia/ida-pro-mcp#129: Claude Code's MCP tools through a proxy).
MAX_OPENAI_TOOL_NAME = 64

EFFORT_BUDGETS: Mapping[str, int] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32768,
    "max": 32768,
}
"""OpenAI reasoning effort → Anthropic ``thinking.budget_tokens`` (``none`` disables thinking)."""


# ``estimate_input_tokens``: text at about four characters a token; an image as Anthropic counts
# a full-size one (about 1,600 tokens: width * height / 750 at 1.15 megapixels).
_CHARS_PER_TOKEN = 4
_IMAGE_TOKENS = 1600


def estimate_input_tokens(body: Mapping[str, Any]) -> int:
    """A rough count of an Anthropic Messages request's prompt tokens, for ``message_start``
    when the upstream says the real count only at the end, and for ``count_tokens`` where the
    upstream has none (never for billing): every string of its system prompt and messages, and
    the tool definitions as JSON (a schema's property names are read too), at four characters a
    token; an image, inline or by URL, as 1,600; other inline data (a PDF) not counted."""
    chars = images = 0
    tools = body.get("tools")
    if isinstance(tools, list):
        chars += len(_json.dumps_lenient(tools))
    stack: list[Any] = [body.get("system"), body.get("messages")]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            chars += len(value)
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, dict):
            kind = value.get("type")
            if kind == "image":
                images += 1
            elif kind != "base64" or not isinstance(value.get("data"), str):
                stack.extend(value.values())
    return -(-chars // _CHARS_PER_TOKEN) + images * _IMAGE_TOKENS


def budget_to_effort(budget: int) -> str:
    """The OpenAI reasoning effort nearest (log scale) to an Anthropic thinking budget."""
    if budget < 2048:
        return "low"
    if budget < 8192:
        return "medium"
    return "high"


class RequestTranslationError(SSEAdapterError):
    """A field the target cannot express, with on_unsupported="error"; message is client-safe.

    Also raised, in either mode, for a body that cannot be translated at all (see the module
    docstring). The proxy answers it with a 400. ``param`` is the client's name for the field
    refused (as named in ``TranslatedRequest.dropped``), for OpenAI's error ``param``; ``None``
    for a body that cannot be translated.
    """

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class TranslatedRequest:
    """The outcome of ``translate_request``.

    Fields:
        body: the request body for the upstream format.
        stream: whether the client asked to stream.
        include_usage: whether the client (OpenAI family) asked for
            ``stream_options.include_usage``.
        model: the model the client asked for (before mapping).
        dropped: fields dropped because the target cannot express them (for a warning header).
        tool_names: the names tools were sent by where the target could not take the client's
            (longer than OpenAI's 64 characters) → the client's names: give it to
            ``StreamAdapter(tool_names=...)``, so the client's calls carry its own names.
    """

    body: dict[str, Any]
    stream: bool
    include_usage: bool
    model: str | None
    dropped: tuple[str, ...]
    tool_names: Mapping[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# The canonical request model


@dataclass
class Text:
    """Plain text; ``cache_control``: an Anthropic prompt-caching breakpoint after it."""

    text: str
    cache_control: dict[str, Any] | None = None


@dataclass
class Image:
    """An image by ``url``, or by base64 ``data`` with its ``media_type``; ``detail``: OpenAI's."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None
    detail: str | None = None


@dataclass
class Document:
    """A file the client attached (a PDF, a text file): base64 ``data`` with its ``media_type``,
    a ``url``, plain ``text``, or an OpenAI upload's ``file_id`` (good at OpenAI only);
    ``filename`` (Anthropic's ``title``)."""

    media_type: str | None = None
    data: str | None = None
    url: str | None = None
    text: str | None = None
    file_id: str | None = None
    filename: str | None = None


Content = Text | Image | Document
"""What a user message holds besides tool results."""


@dataclass
class ToolCall:
    """A tool call made by the assistant; ``arguments`` is the JSON text (OpenAI's shape)."""

    id: str
    name: str
    arguments: str


@dataclass
class ToolResult:
    """The result of the tool call ``tool_call_id``, sent back by the client."""

    tool_call_id: str
    content: list[Text | Image] = field(default_factory=list)
    is_error: bool = False


@dataclass
class Thinking:
    """Reasoning from an earlier assistant turn.

    ``signature`` (Anthropic ``thinking``) and ``redacted`` (Anthropic ``redacted_thinking.data``)
    are only valid for Anthropic; ``item`` is a Responses ``reasoning`` input item kept verbatim,
    only valid for OpenAI Responses.
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    item: dict[str, Any] | None = None


Part = Text | Image | Document | ToolCall | ToolResult | Thinking


@dataclass
class Message:
    """One turn. Tool results are parts of ``user`` messages (Anthropic's shape)."""

    role: Literal["user", "assistant"]
    parts: list[Part] = field(default_factory=list)


@dataclass
class Tool:
    """A function the model may call."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None


@dataclass
class ToolChoice:
    """``auto``, ``none``, ``required`` (Anthropic ``any``) or one ``function`` by ``name``."""

    kind: Literal["auto", "none", "required", "function"]
    name: str | None = None


@dataclass
class Reasoning:
    """Reasoning: OpenAI ``effort``, Anthropic ``budget``/``mode``, Responses ``summary``."""

    effort: str | None = None
    budget: int | None = None
    mode: Literal["enabled", "disabled", "adaptive"] | None = None
    summary: str | None = None


@dataclass
class ResponseFormat:
    """Structured output: ``type`` ``json_object``, or ``json_schema`` with the schema fields."""

    type: str
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None


@dataclass
class CanonicalRequest:
    """A request in no particular format. ``extras`` holds fields carried verbatim (``_SHARED``)."""

    source: str
    model: str | None = None
    system: list[str] = field(default_factory=list)
    system_cache: dict[str, Any] | None = None  # a caching breakpoint after the system prompt
    messages: list[Message] = field(default_factory=list)
    tools: list[Tool] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    reasoning: Reasoning | None = None
    user: str | None = None
    response_format: ResponseFormat | None = None
    verbosity: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)


# Fields carried verbatim: name → the formats in which it exists with the same name and meaning.
_SHARED: dict[str, frozenset[str]] = {
    "n": frozenset({CHAT, TEXT}),
    "seed": frozenset({CHAT, TEXT}),
    "presence_penalty": frozenset({CHAT, TEXT}),
    "frequency_penalty": frozenset({CHAT, TEXT}),
    "logit_bias": frozenset({CHAT, TEXT}),
    "store": frozenset({CHAT, RESPONSES}),
    "metadata": frozenset({CHAT, RESPONSES}),
    "service_tier": frozenset({CHAT, RESPONSES}),
    "prompt_cache_key": frozenset({CHAT, RESPONSES}),
    "prompt_cache_retention": frozenset({CHAT, RESPONSES}),
    "safety_identifier": frozenset({CHAT, RESPONSES}),
}

# Values equal to the API default: dropping them loses nothing.
_NOOP: dict[str, Any] = {
    "n": 1,
    "best_of": 1,
    "echo": False,
    "logprobs": False,
    "suffix": "",
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "store": False,
    "background": False,
    "truncation": "disabled",
    "include": [],
    "service_tier": "auto",
    "modalities": ["text"],
}

# A source's own defaults where they differ from ``_NOOP``. Responses stores by default
# (``store: true``). Storage changes nothing in the answer: it only lets the provider keep the
# response, which a client that did not ask for it cannot be relying on, and a target that keeps
# nothing (Anthropic, Completions; Chat when ``store`` is absent) holds less data than allowed,
# never more. What does depend on it (``previous_response_id``, ``background``) is named on its
# own. So a Responses ``store`` (absent or true) is nothing to name; into Chat, which can store,
# a ``store`` given is carried as it is (``_SHARED``).
_SOURCE_NOOP: dict[str, dict[str, Any]] = {RESPONSES: {"store": True}}

# The client's name for a canonical field, per source format (default: the canonical name).
_NAMES: dict[str, dict[str, str]] = {
    CHAT: {"system": "messages.system", "reasoning": "reasoning_effort"},
    TEXT: {},
    RESPONSES: {
        "system": "instructions",
        "reasoning": "reasoning",
        "response_format": "text.format",
        "verbosity": "text.verbosity",
    },
    MESSAGES: {
        "prefill": "messages.prefill",
        "response_format": "output_config.format",
        "stop": "stop_sequences",
        "reasoning": "thinking",
        "user": "metadata.user_id",
        "parallel_tool_calls": "tool_choice.disable_parallel_tool_use",
    },
    ATEXT: {"prefill": "prompt.prefill", "stop": "stop_sequences", "user": "metadata.user_id"},
}

# RFC 2397: ``data:[<media type>][;<attribute>=<value>]*[;base64],<data>``.
_DATA_URL = re.compile(r"data:([^;,]*)((?:;[^;,]*)*?)(;base64)?,(.*)", re.DOTALL | re.IGNORECASE)
# The image types Anthropic takes as a base64 source.
_ANTHROPIC_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
_TURN = re.compile(r"(?:^|\n\n)(Human|Assistant):")
_BAD_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")


class _Losses:
    """Collects what the target cannot express; raises at the first one in ``error`` mode. (Also
    what reading needs to know across the body: the calls left out, the items stored.)"""

    def __init__(
        self,
        target: str,
        on_unsupported: str,
        stored_items: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.target = target
        self.error = on_unsupported == "error"
        self.names: dict[str, None] = {}
        # Ids of tool calls left out while reading: their results go with them.
        self.dropped_calls: set[str] = set()
        self.stored_items = stored_items

    def add(self, name: str, why: str | None = None) -> None:
        """Record ``name``; ``why`` (said only when refusing) explains a non-obvious loss."""
        if self.error:
            reason = f": {why}" if why else ""
            raise RequestTranslationError(
                f"field {name} is not supported by {self.target}{reason}", param=name
            )
        self.names.setdefault(name)


# --------------------------------------------------------------------------------------------
# Public entry points


def translate_request(
    body: dict[str, Any],
    source: str,
    target: str,
    *,
    model_map: Mapping[str, str] | None = None,
    on_unsupported: Literal["drop", "error"] = "drop",
    default_max_tokens: int = 4096,
    stored_items: Mapping[str, Mapping[str, Any]] | None = None,
) -> TranslatedRequest:
    """Translate a ``source``-format request body into a ``target``-format one.

    ``stored_items``: Responses output items by id, as the caller gave them to its clients; a
    Responses ``item_reference`` input to one of them is read as the item itself (clients that
    store responses refer to their earlier output this way: the Vercel AI SDK does unless told
    ``store: false``). A reference to any other item is refused.

    Raises ``UnknownFormat`` for an unknown format name and ``RequestTranslationError`` (a
    client error: its message can be shown) for a body that cannot be translated, or for any
    unsupported field when ``on_unsupported="error"``.
    """
    for name in (source, target):
        if name not in _FORMATS:
            raise UnknownFormat(f"unknown format {name!r}; expected one of: {', '.join(_FORMATS)}")
    check_choice("on_unsupported", on_unsupported, ("drop", "error"))
    check_count("default_max_tokens", default_max_tokens, minimum=1)
    if not isinstance(body, dict):
        raise RequestTranslationError("the request body must be a JSON object")
    model = body.get("model")
    model = model if isinstance(model, str) else None
    stream = body.get("stream") is True
    include_usage = False
    if source in (CHAT, TEXT):
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
    if source == target:
        out = dict(body)
        if model is not None and model_map and model in model_map:
            out["model"] = model_map[model]
        return TranslatedRequest(out, stream, include_usage, model, ())
    losses = _Losses(target, on_unsupported, stored_items)
    canonical = _parse(body, source, losses)
    if model is not None and model_map:
        canonical.model = model_map.get(model, model)
    names = _shorten_tool_names(canonical) if target in (CHAT, RESPONSES) else {}
    out = _render(canonical, target, losses, default_max_tokens)
    return TranslatedRequest(out, stream, include_usage, model, tuple(losses.names), names)


def parse_request(body: dict[str, Any], source: str) -> tuple[CanonicalRequest, tuple[str, ...]]:
    """Read a ``source`` body into the canonical model; also return what it could not carry."""
    losses = _Losses("the canonical model", "drop")
    return _parse(body, source, losses), tuple(losses.names)


def render_request(
    request: CanonicalRequest, target: str, *, default_max_tokens: int = 4096
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Render a canonical request as a ``target`` body; also return what was dropped."""
    losses = _Losses(target, "drop")
    return _render(request, target, losses, default_max_tokens), tuple(losses.names)


def _parse(body: dict[str, Any], source: str, losses: _Losses) -> CanonicalRequest:
    if source not in _FORMATS:
        raise UnknownFormat(f"unknown format {source!r}")
    rest = dict(body)
    req = CanonicalRequest(source=source)
    req.model = _opt_str(rest.pop("model", None), "model")
    req.stream = rest.pop("stream", None) is True
    {
        CHAT: _parse_chat,
        TEXT: _parse_openai_text,
        RESPONSES: _parse_responses,
        MESSAGES: _parse_messages,
        ATEXT: _parse_anthropic_text,
    }[source](rest, req, losses)
    for key, value in rest.items():
        if value is not None:
            req.extras[key] = value
    return req


def _render(
    req: CanonicalRequest, target: str, losses: _Losses, default_max_tokens: int
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if req.model is not None:
        out["model"] = req.model
    safety = req.extras.get("safety_identifier")
    if target in (MESSAGES, ATEXT) and req.user is None and isinstance(safety, str):
        # OpenAI's successor to ``user`` (an end user's stable id) is Anthropic's ``user_id``.
        req.user = req.extras.pop("safety_identifier")
    if target == CHAT:
        _render_chat(req, out, losses)
    elif target == TEXT:
        _render_openai_text(req, out, losses)
    elif target == RESPONSES:
        _render_responses(req, out, losses)
    elif target == MESSAGES:
        _render_messages(req, out, losses, default_max_tokens)
    elif target == ATEXT:
        _render_anthropic_text(req, out, losses, default_max_tokens)
    else:
        raise UnknownFormat(f"unknown format {target!r}")
    for key, value in req.extras.items():
        formats = _SHARED.get(key, frozenset())
        if req.source in formats and target in formats:
            out[key] = value
        elif not _is_noop(key, value, req.source):
            losses.add(key)
    if target == CHAT and "metadata" in out and out.get("store") is not True:
        # Chat answers 400 "The 'metadata' parameter is only allowed when 'store' is enabled"
        # (spiceai/spiceai#5231); Responses stores by default, so its clients send it freely.
        del out["metadata"]
        losses.add("metadata", "Chat takes metadata only with store: true")
    return out


def _is_noop(key: str, value: Any, source: str) -> bool:
    for defaults in (_NOOP, _SOURCE_NOOP.get(source, {})):
        if key in defaults:
            default = defaults[key]
            if value == default and isinstance(value, bool) == isinstance(default, bool):
                return True
    return False


def _name(req: CanonicalRequest, canonical: str) -> str:
    return _NAMES.get(req.source, {}).get(canonical, canonical)


# --------------------------------------------------------------------------------------------
# Small readers of untrusted JSON


def _bad(message: str) -> RequestTranslationError:
    return RequestTranslationError(message)


def _opt_str(value: Any, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise _bad(f"{what} must be a string")


def _opt_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _bad(f"{what} must be an integer")


def _opt_num(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise _bad(f"{what} must be a number")


def _opt_bool(value: Any, what: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise _bad(f"{what} must be a boolean")


def _obj(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise _bad(f"{what} must be an object")


def _list(value: Any, what: str) -> list[Any]:
    if isinstance(value, list):
        return value
    raise _bad(f"{what} must be an array")


def _stop_list(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items = _list(value, what)
    if not all(isinstance(item, str) for item in items):
        raise _bad(f"{what} must be a string or an array of strings")
    return list(items)


def _append(req: CanonicalRequest, role: Literal["user", "assistant"], parts: list[Part]) -> None:
    """Add parts as a turn, merged into the previous turn when it has the same role."""
    if req.messages and req.messages[-1].role == role:
        req.messages[-1].parts.extend(parts)
    else:
        req.messages.append(Message(role, list(parts)))


def _image_from_url(url: str, detail: str | None) -> Image:
    """An image by URL; a base64 data URL becomes the data and its bare media type.

    The media type's parameters (``charset``, ``name`` …) say nothing about an image's pixels
    and are not kept. A data URL that is not base64 stays a URL (Anthropic cannot take it).
    """
    match = _DATA_URL.fullmatch(url)
    if match and match.group(3):
        media_type = match.group(1).strip().lower() or "text/plain"  # RFC 2397's default
        return Image(media_type=media_type, data=match.group(4), detail=detail)
    return Image(url=url, detail=detail)


def _document_from(data: Any, url: Any, file_id: Any, filename: Any, what: str) -> Document | None:
    """An OpenAI file input (Chat ``file``, Responses ``input_file``). ``file_data`` is a base64
    data URL (OpenAI's documented form) or bare base64, whose type the file name tells; a data
    URL not in base64 is text (RFC 2397), unless it says it is something else (``None``: it
    cannot be read, the caller names it)."""
    name = _opt_str(filename, f"{what}.filename")
    if isinstance(url, str):
        return Document(url=url, filename=name)
    if isinstance(data, str):
        match = _DATA_URL.fullmatch(data)
        if match is None:
            guessed = mimetypes.guess_type(name)[0] if name else None
            return Document(media_type=guessed, data=data, filename=name)
        media_type = match.group(1).strip().lower() or "text/plain"  # RFC 2397's default
        if match.group(3):
            return Document(media_type=media_type, data=match.group(4), filename=name)
        if media_type == "text/plain":
            return Document(text=urllib.parse.unquote(match.group(4)), filename=name)
        return None
    if isinstance(file_id, str):
        return Document(file_id=file_id, filename=name)
    raise _bad(f"{what} needs file_data, file_url or file_id")


def _document_name(document: Document) -> str:
    # (OpenAI wants a file name with file_data.)
    if document.filename:
        return document.filename
    return "document.pdf" if document.media_type == "application/pdf" else "document"


def _image_url(image: Image) -> str:
    return image.url if image.url is not None else _data_url(image)


def _data_url(part: Image | Document) -> str:
    """A base64 part as an RFC 2397 data URL."""
    return f"data:{part.media_type or 'application/octet-stream'};base64,{part.data}"


def _cache_hint(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """An OpenAI-format part's ``cache_control`` (the Anthropic prompt-caching breakpoint that
    LiteLLM and OpenRouter take in OpenAI requests, and clients such as Cline send), if it is
    one Anthropic knows."""
    value = item.get("cache_control")
    if isinstance(value, dict) and value.get("type") == "ephemeral":
        return dict(value)
    return None


def _last_cache_hint(content: Any) -> dict[str, Any] | None:
    """The last ``_cache_hint`` of a content list whose text is read joined (``_text_of``): the
    breakpoint goes after the whole text."""
    if not isinstance(content, list):
        return None
    hints = [_cache_hint(item) for item in content if isinstance(item, dict)]
    return next((hint for hint in reversed(hints) if hint), None)


def _text_of(value: Any, what: str, losses: _Losses, loss_prefix: str) -> str:
    """A string, or the text parts of a content list joined (other parts are losses)."""
    if isinstance(value, str):
        return value
    texts: list[str] = []
    for item in _list(value, what):
        item = _obj(item, what)
        if item.get("type") in ("text", "input_text", "output_text"):
            texts.append(_opt_str(item.get("text"), f"{what} text") or "")
        else:
            losses.add(f"{loss_prefix}.{item.get('type')}")
    return "\n\n".join(texts)


def _dumps(value: Any) -> str:
    # (The shells parse request bodies with the standard library, which reads a lone surrogate
    # escape that orjson refuses to write: ``_json``.)
    return _json.dumps_lenient(value).decode()


def _arguments_text(value: Any, losses: _Losses) -> str:
    """A call's arguments as the JSON text the model carries: an object given as one (a common
    client slip, and some servers' shape) as its text; anything else that is no string is named
    (``messages.tool_calls.arguments``) and sent as no arguments."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _dumps(value)
    if value is not None:
        losses.add("messages.tool_calls.arguments", "a tool call's arguments are JSON text")
    return ""


def _arguments_object(call: ToolCall, losses: _Losses) -> dict[str, Any]:
    """A call's arguments as the JSON object Anthropic's ``tool_use.input`` needs. Arguments
    that are no JSON object (a call cut by the token limit: ``{"path": "a.py", "con``) become
    ``{}``, named: refused, they would fail every later turn of the conversation that holds
    them, and OpenAI itself takes any string there."""
    text = call.arguments.strip()
    if not text:
        return {}
    try:
        # (Lenient: what orjson refuses but the standard library, and the client's SDK, reads.)
        value = _json.loads_lenient(text)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        losses.add(
            "messages.tool_calls.arguments", "Anthropic takes a tool call's input as a JSON object"
        )
        return {}
    return value


def _tool_choice_from_openai(value: Any, req: CanonicalRequest, losses: _Losses) -> None:
    if value is None:
        return
    if value in ("auto", "none", "required"):
        req.tool_choice = ToolChoice(value)
        return
    if isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else value.get("name")
        if isinstance(name, str):
            req.tool_choice = ToolChoice("function", name)
            return
    losses.add("tool_choice")


def _response_format_from(value: dict[str, Any], flat: bool, what: str) -> ResponseFormat | None:
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    if kind == "json_schema":
        spec = value if flat else _obj(value.get("json_schema"), f"{what}.json_schema")
        schema = spec.get("schema")
        return ResponseFormat(
            "json_schema",
            name=_opt_str(spec.get("name"), f"{what} name"),
            schema=_obj(schema, f"{what} schema") if schema is not None else None,
            description=_opt_str(spec.get("description"), f"{what} description"),
            strict=_opt_bool(spec.get("strict"), f"{what} strict"),
        )
    raise _bad(f"{what} has an unknown type {kind!r}")


def _openai_effort(value: Any, req: CanonicalRequest, what: str) -> None:
    effort = _opt_str(value, what)
    if effort is not None:
        req.reasoning = req.reasoning or Reasoning()
        req.reasoning.effort = effort


# --------------------------------------------------------------------------------------------
# Readers


def _parse_chat(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    messages = rest.pop("messages", None)
    if messages is None:
        raise _bad("messages is required")
    for message in _list(messages, "messages"):
        _chat_message(_obj(message, "each message"), req, losses)
    for tool in _list(rest.pop("tools", None) or [], "tools"):
        tool = _obj(tool, "each tool")
        if tool.get("type") != "function":
            losses.add(f"tools.{tool.get('type')}")
            continue
        for key in tool.keys() - {"type", "function", "cache_control"}:
            losses.add(f"tools.{key}")
        function = _obj(tool.get("function"), "tools[].function")
        spec = _tool(function, "parameters", losses)
        spec.cache_control = _cache_hint(tool) or _cache_hint(function)
        req.tools.append(spec)
    _tool_choice_from_openai(rest.pop("tool_choice", None), req, losses)
    req.parallel_tool_calls = _opt_bool(
        rest.pop("parallel_tool_calls", None), "parallel_tool_calls"
    )
    max_completion = _opt_int(rest.pop("max_completion_tokens", None), "max_completion_tokens")
    max_tokens = _opt_int(rest.pop("max_tokens", None), "max_tokens")
    req.max_tokens = max_completion if max_completion is not None else max_tokens
    _openai_sampling(rest, req)
    _openai_effort(rest.pop("reasoning_effort", None), req, "reasoning_effort")
    response_format = rest.pop("response_format", None)
    if response_format is not None:
        req.response_format = _response_format_from(
            _obj(response_format, "response_format"), False, "response_format"
        )
    req.verbosity = _opt_str(rest.pop("verbosity", None), "verbosity")


def _openai_sampling(rest: dict[str, Any], req: CanonicalRequest) -> None:
    """The fields Chat and Completions share: sampling, stop, user, stream_options."""
    req.temperature = _opt_num(rest.pop("temperature", None), "temperature")
    req.top_p = _opt_num(rest.pop("top_p", None), "top_p")
    req.stop = _stop_list(rest.pop("stop", None), "stop")
    req.user = _opt_str(rest.pop("user", None), "user")
    options = rest.pop("stream_options", None)
    if isinstance(options, dict):
        req.include_usage = options.get("include_usage") is True


def _tool(spec: dict[str, Any], schema_key: str, losses: _Losses, wrapper: str = "type") -> Tool:
    """A function tool; any field besides the ones the canonical model carries is named."""
    for key, value in spec.items():
        known = (wrapper, "name", "description", schema_key, "strict", "cache_control")
        if key not in known and value is not None and value is not False:
            losses.add(f"tools.{key}")  # (``false``: the default of every such flag)
    name = spec.get("name")
    if not isinstance(name, str):
        raise _bad("every tool needs a name")
    parameters = spec.get(schema_key)
    return Tool(
        name,
        description=_opt_str(spec.get("description"), f"tool {name} description"),
        parameters=_obj(parameters, f"tool {name} {schema_key}")
        if parameters is not None
        else None,
        strict=_opt_bool(spec.get("strict"), f"tool {name} strict"),
    )


def _chat_message(message: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    role = message.get("role")
    content = message.get("content")
    if message.get("name") is not None:
        losses.add("messages.name")
    if isinstance(content, str) and _cache_hint(message) is not None:
        # (LiteLLM's spelling of a breakpoint on a whole message's text.)
        content = [{"type": "text", "text": content, "cache_control": message["cache_control"]}]
        message = {**message, "content": content}
    if role in ("system", "developer"):
        req.system.append(_text_of(content, "system content", losses, "messages.system"))
        req.system_cache = _last_cache_hint(content) or req.system_cache
    elif role == "user":
        _append(req, "user", _chat_user_parts(content, losses))
    elif role == "assistant":
        _append(req, "assistant", _chat_assistant_parts(message, losses))
    elif role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise _bad("a tool message needs a tool_call_id")
        if call_id in losses.dropped_calls:
            # Sent without its call, the result would be refused (Anthropic, Responses).
            losses.add("messages.tool_results", "its tool call is not sent")
            _append(req, "user", [])  # (still the client's turn: see ``_check_last_turn``)
            return
        text = _text_of(content if content is not None else "", "tool content", losses, "tool")
        result = ToolResult(call_id, [Text(text, _last_cache_hint(content))] if text else [])
        _append(req, "user", [result])
    elif role == "function":
        losses.add("messages.function")
        _append(req, "user", [])
    else:
        raise _bad(f"unknown message role {role!r}")


def _chat_user_parts(content: Any, losses: _Losses) -> list[Part]:
    if content is None:
        return []
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Part] = []
    for item in _list(content, "user content"):
        item = _obj(item, "user content part")
        kind = item.get("type")
        if kind == "text":
            parts.append(Text(_opt_str(item.get("text"), "text") or "", _cache_hint(item)))
        elif kind == "image_url":
            image = _obj(item.get("image_url"), "image_url")
            url = image.get("url")
            if not isinstance(url, str):
                raise _bad("image_url.url must be a string")
            parts.append(_image_from_url(url, _opt_str(image.get("detail"), "image_url.detail")))
        elif kind == "file":
            spec = _obj(item.get("file"), "file")
            document = _document_from(
                spec.get("file_data"), None, spec.get("file_id"), spec.get("filename"), "file"
            )
            if document is None:
                losses.add("messages.file", "a data URL neither in base64 nor text")
            else:
                parts.append(document)
        else:
            losses.add(f"messages.{kind}")
    return parts


def _chat_assistant_parts(message: dict[str, Any], losses: _Losses) -> list[Part]:
    parts: list[Part] = []
    for block in _list(message.get("thinking_blocks") or [], "thinking_blocks"):
        parts.extend(_anthropic_thinking(_obj(block, "thinking block")))
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning and not parts:
        parts.append(Thinking(reasoning))
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append(Text(content))
    elif content is not None:
        for item in _list(content, "assistant content"):
            item = _obj(item, "assistant content part")
            if item.get("type") == "text":
                parts.append(Text(_opt_str(item.get("text"), "text") or "", _cache_hint(item)))
            elif item.get("type") == "refusal":
                parts.append(Text(_opt_str(item.get("refusal"), "refusal") or ""))
            else:
                losses.add(f"messages.{item.get('type')}")
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append(Text(refusal))
    for call in _list(message.get("tool_calls") or [], "tool_calls"):
        call = _obj(call, "tool call")
        if call.get("type", "function") != "function":
            losses.add(f"messages.tool_calls.{call.get('type')}")
            if isinstance(call.get("id"), str):
                losses.dropped_calls.add(call["id"])
            continue
        function = _obj(call.get("function"), "tool_calls[].function")
        call_id, name = call.get("id"), function.get("name")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise _bad("every tool call needs an id and a function name")
        parts.append(ToolCall(call_id, name, _arguments_text(function.get("arguments"), losses)))
    if message.get("function_call") is not None:
        losses.add("messages.function_call")
    if message.get("audio") is not None:
        losses.add("messages.audio")
    return parts


def _parse_openai_text(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    prompt = rest.pop("prompt", None)
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad("only a single string prompt can be translated (not a batch or tokens)")
    req.messages.append(Message("user", [Text(prompt)]))
    req.max_tokens = _opt_int(rest.pop("max_tokens", None), "max_tokens")
    _openai_sampling(rest, req)


# Responses fields whose content lives at OpenAI (an earlier response, a conversation, a stored
# prompt): translated without them, the request would ask for an answer to something else.
_RESPONSES_STATE = ("previous_response_id", "conversation", "prompt")


def _parse_responses(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    for key in _RESPONSES_STATE:
        if rest.get(key) is not None:
            raise RequestTranslationError(
                f"{key} refers to state stored by OpenAI, which {losses.target} cannot read: "
                "send the whole conversation in input",
                param=key,
            )
    instructions = _opt_str(rest.pop("instructions", None), "instructions")
    if instructions:
        req.system.append(instructions)
    data = rest.pop("input", None)
    if isinstance(data, str):
        req.messages.append(Message("user", [Text(data)]))
    elif data is not None:
        for item in _list(data, "input"):
            _responses_item(_obj(item, "input item"), req, losses)
    for tool in _list(rest.pop("tools", None) or [], "tools"):
        tool = _obj(tool, "each tool")
        if tool.get("type") != "function":
            losses.add(f"tools.{tool.get('type')}")
            continue
        req.tools.append(_tool(tool, "parameters", losses))
    _tool_choice_from_openai(rest.pop("tool_choice", None), req, losses)
    req.parallel_tool_calls = _opt_bool(
        rest.pop("parallel_tool_calls", None), "parallel_tool_calls"
    )
    req.max_tokens = _opt_int(rest.pop("max_output_tokens", None), "max_output_tokens")
    req.temperature = _opt_num(rest.pop("temperature", None), "temperature")
    req.top_p = _opt_num(rest.pop("top_p", None), "top_p")
    req.user = _opt_str(rest.pop("user", None), "user")
    rest.pop("stream_options", None)
    reasoning = rest.pop("reasoning", None)
    if reasoning is not None:
        reasoning = dict(_obj(reasoning, "reasoning"))
        _openai_effort(reasoning.pop("effort", None), req, "reasoning.effort")
        summary = reasoning.pop("summary", None)
        legacy_summary = reasoning.pop("generate_summary", None)
        summary = summary if summary is not None else legacy_summary
        if summary is not None:
            req.reasoning = req.reasoning or Reasoning()
            req.reasoning.summary = _opt_str(summary, "reasoning.summary")
        for key, value in reasoning.items():
            if value is not None:
                losses.add(f"reasoning.{key}")
    text = rest.pop("text", None)
    if text is not None:
        text = dict(_obj(text, "text"))
        fmt = text.pop("format", None)
        if fmt is not None:
            req.response_format = _response_format_from(
                _obj(fmt, "text.format"), True, "text.format"
            )
        req.verbosity = _opt_str(text.pop("verbosity", None), "text.verbosity")
        for key, value in text.items():
            if value is not None:
                losses.add(f"text.{key}")


def _responses_item(item: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        content = item.get("content")
        if role in ("system", "developer"):
            req.system.append(_text_of(content, "system content", losses, "input.system"))
        elif role == "user":
            _append(req, "user", _responses_parts(content, losses))
        elif role == "assistant":
            _append(req, "assistant", _responses_parts(content, losses))
        else:
            raise _bad(f"unknown input message role {role!r}")
    elif kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        arguments = item.get("arguments")
        if not isinstance(call_id, str) or not isinstance(name, str):
            raise _bad("every function_call item needs a call_id and a name")
        call = ToolCall(call_id, name, _arguments_text(arguments, losses))
        _append(req, "assistant", [call])
    elif kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise _bad("every function_call_output item needs a call_id")
        output = item.get("output")
        parts = _responses_parts(output if output is not None else "", losses)
        result = ToolResult(call_id)
        for part in parts:
            if isinstance(part, (Text, Image)):
                result.content.append(part)
            else:
                losses.add("tool_result.content")
        _append(req, "user", [result])
    elif kind == "item_reference":
        ref = item.get("id")
        stored = losses.stored_items
        found = stored.get(ref) if stored is not None and isinstance(ref, str) else None
        if found is None or found.get("type") == "item_reference":
            raise RequestTranslationError(
                f"input item_reference {str(ref)[:64]!r} refers to an item stored by OpenAI (or "
                f"one this proxy no longer holds), which {losses.target} cannot read: send the "
                "item itself (the Vercel AI SDK does with providerOptions.openai.store = false)",
                param="input",
            )
        _responses_item(dict(found), req, losses)
    elif kind == "reasoning":
        summary = [
            entry.get("text", "")
            for entry in _list(item.get("summary") or [], "reasoning summary")
            if isinstance(entry, dict) and isinstance(entry.get("text"), str)
        ]
        _append(req, "assistant", [Thinking("\n\n".join(summary), item=dict(item))])
    else:
        losses.add(f"input.{kind}")
        if isinstance(kind, str) and kind.endswith("_output"):  # (a tool's answer: the client's)
            _append(req, "user", [])


def _responses_parts(content: Any, losses: _Losses) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)] if content else []
    parts: list[Part] = []
    for item in _list(content, "content"):
        item = _obj(item, "content part")
        kind = item.get("type")
        if kind in ("input_text", "output_text", "text"):
            parts.append(Text(_opt_str(item.get("text"), "text") or ""))
        elif kind == "refusal":
            parts.append(Text(_opt_str(item.get("refusal"), "refusal") or ""))
        elif kind == "input_image" and isinstance(item.get("image_url"), str):
            detail = _opt_str(item.get("detail"), "detail")
            parts.append(_image_from_url(item["image_url"], detail))
        elif kind == "input_image":
            losses.add("messages.image.file_id")
        elif kind == "input_file":
            document = _document_from(
                item.get("file_data"),
                item.get("file_url"),
                item.get("file_id"),
                item.get("filename"),
                "input_file",
            )
            if document is None:
                losses.add("messages.input_file", "a data URL neither in base64 nor text")
            else:
                parts.append(document)
        else:
            losses.add(f"messages.{kind}")
    return parts


def _parse_messages(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    system = rest.pop("system", None)
    if system is not None:
        req.system.append(_text_of(system, "system", losses, "system"))
    messages = rest.pop("messages", None)
    if messages is None:
        raise _bad("messages is required")
    for message in _list(messages, "messages"):
        message = _obj(message, "each message")
        role = message.get("role")
        content = message.get("content")
        if role == "system":
            req.system.append(_text_of(content, "system content", losses, "system"))
        elif role in ("user", "assistant"):
            _append(req, role, _anthropic_parts(content, losses))
        else:
            raise _bad(f"unknown message role {role!r}")
    for tool in _list(rest.pop("tools", None) or [], "tools"):
        tool = _obj(tool, "each tool")
        if tool.get("type", "custom") not in ("custom", None):
            losses.add(f"tools.{tool.get('type')}")
            continue
        req.tools.append(_tool(tool, "input_schema", losses))
    choice = rest.pop("tool_choice", None)
    if choice is not None:
        choice = _obj(choice, "tool_choice")
        kind = choice.get("type")
        if kind in ("auto", "none"):
            req.tool_choice = ToolChoice(kind)
        elif kind == "any":
            req.tool_choice = ToolChoice("required")
        elif kind == "tool":
            if not isinstance(choice.get("name"), str):
                raise _bad("tool_choice of type 'tool' needs the tool's name")
            req.tool_choice = ToolChoice("function", choice["name"])
        else:
            raise _bad(f"tool_choice has an unknown type {kind!r}")
        if choice.get("disable_parallel_tool_use") is True:
            req.parallel_tool_calls = False
    req.max_tokens = _opt_int(rest.pop("max_tokens", None), "max_tokens")
    _anthropic_sampling(rest, req, losses)
    _parse_output_config(rest.pop("output_config", None), req, losses)
    thinking = rest.pop("thinking", None)
    if thinking is not None:
        thinking = _obj(thinking, "thinking")
        kind = thinking.get("type")
        effort = req.reasoning.effort if req.reasoning is not None else None
        if kind == "enabled":
            budget = _opt_int(thinking.get("budget_tokens"), "thinking.budget_tokens")
            req.reasoning = Reasoning(effort=effort, budget=budget, mode="enabled")
        elif kind == "disabled":
            if effort is not None:
                # An OpenAI effort would turn reasoning on, which the client turned off.
                losses.add("output_config.effort", "thinking is disabled")
            req.reasoning = Reasoning(mode=kind)
        elif kind == "adaptive":
            req.reasoning = Reasoning(effort=effort, mode=kind)
        else:
            losses.add("thinking")
        if thinking.get("display") is not None:
            losses.add("thinking.display")


def _parse_output_config(value: Any, req: CanonicalRequest, losses: _Losses) -> None:
    """Messages ``output_config``: ``format`` (structured output: a JSON schema) and ``effort``
    (how much the model spends on the answer, OpenAI's reasoning effort)."""
    if value is None:
        return
    config = dict(_obj(value, "output_config"))
    fmt = config.pop("format", None)
    if fmt is not None:
        fmt = _obj(fmt, "output_config.format")
        if fmt.get("type") != "json_schema":
            raise _bad(f"output_config.format has an unknown type {fmt.get('type')!r}")
        req.response_format = ResponseFormat(
            "json_schema", schema=_obj(fmt.get("schema"), "output_config.format.schema")
        )
    _openai_effort(config.pop("effort", None), req, "output_config.effort")
    for key, item in config.items():
        if item is not None:
            losses.add(f"output_config.{key}")


def _anthropic_sampling(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    """The fields Messages and Text Completions share."""
    req.temperature = _opt_num(rest.pop("temperature", None), "temperature")
    req.top_p = _opt_num(rest.pop("top_p", None), "top_p")
    req.top_k = _opt_int(rest.pop("top_k", None), "top_k")
    req.stop = _stop_list(rest.pop("stop_sequences", None), "stop_sequences")
    metadata = rest.pop("metadata", None)
    if metadata is not None:
        metadata = _obj(metadata, "metadata")
        req.user = _opt_str(metadata.get("user_id"), "metadata.user_id")
        for key, value in metadata.items():
            if key != "user_id" and value is not None:
                losses.add(f"metadata.{key}")
    rest.pop("cache_control", None)  # a caching hint: nothing to say about the answer


def _anthropic_thinking(block: dict[str, Any]) -> list[Part]:
    if block.get("type") == "redacted_thinking" and isinstance(block.get("data"), str):
        return [Thinking(redacted=block["data"])]
    text = block.get("thinking")
    signature = block.get("signature")
    return [
        Thinking(
            text if isinstance(text, str) else "",
            signature=signature if isinstance(signature, str) and signature else None,
        )
    ]


def _anthropic_parts(content: Any, losses: _Losses) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    parts: list[Part] = []
    for block in _list(content, "content"):
        block = _obj(block, "content block")
        kind = block.get("type")
        if kind == "text":
            parts.append(Text(_opt_str(block.get("text"), "text") or ""))
        elif kind == "image":
            image = _anthropic_image(block, losses)
            if image is not None:
                parts.append(image)
        elif kind == "tool_use":
            call_id, name = block.get("id"), block.get("name")
            if not isinstance(call_id, str) or not isinstance(name, str):
                raise _bad("every tool_use block needs an id and a name")
            parts.append(ToolCall(call_id, name, _dumps(block.get("input") or {})))
        elif kind == "document":
            document = _anthropic_document(block, losses)
            if document is not None:
                parts.append(document)
        elif kind == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise _bad("every tool_result block needs a tool_use_id")
            if block["tool_use_id"] in losses.dropped_calls:
                # Sent without its call, the result would be refused (Chat, Responses).
                losses.add("messages.tool_results", "its tool call is not sent")
            else:
                parts.append(_anthropic_tool_result(block, losses))
        elif kind in ("thinking", "redacted_thinking"):
            parts.extend(_anthropic_thinking(block))
        else:
            losses.add(f"messages.{kind}")
            if isinstance(block.get("id"), str):  # (a server or MCP tool's call)
                losses.dropped_calls.add(block["id"])
    return parts


def _anthropic_image(block: dict[str, Any], losses: _Losses) -> Image | None:
    source = _obj(block.get("source"), "image source")
    kind = source.get("type")
    if kind == "url" and isinstance(source.get("url"), str):
        return Image(url=source["url"])
    if kind == "base64" and isinstance(source.get("data"), str):
        return Image(
            media_type=_opt_str(source.get("media_type"), "media_type"), data=source["data"]
        )
    losses.add(f"messages.image.{kind}")
    return None


def _anthropic_document(block: dict[str, Any], losses: _Losses) -> Document | None:
    source = _obj(block.get("source"), "document source")
    kind = source.get("type")
    title = _opt_str(block.get("title"), "document title")
    if block.get("context") is not None:
        losses.add("messages.document.context")
    citations = block.get("citations")
    if isinstance(citations, dict) and citations.get("enabled") is True:
        losses.add("messages.document.citations")
    if kind == "base64" and isinstance(source.get("data"), str):
        media_type = _opt_str(source.get("media_type"), "document media_type")
        return Document(media_type=media_type, data=source["data"], filename=title)
    if kind == "url" and isinstance(source.get("url"), str):
        return Document(url=source["url"], filename=title)
    if kind == "text" and isinstance(source.get("data"), str):
        return Document(media_type="text/plain", text=source["data"], filename=title)
    losses.add(f"messages.document.{kind}")
    return None


def _anthropic_tool_result(block: dict[str, Any], losses: _Losses) -> ToolResult:
    call_id = block["tool_use_id"]  # (a string: ``_anthropic_parts``)
    content: list[Text | Image] = []
    for part in _anthropic_parts(block.get("content") or [], losses):
        if isinstance(part, (Text, Image)):
            content.append(part)
        else:
            losses.add("tool_result.content")
    return ToolResult(call_id, content, block.get("is_error") is True)


def _parse_anthropic_text(rest: dict[str, Any], req: CanonicalRequest, losses: _Losses) -> None:
    prompt = rest.pop("prompt", None)
    if not isinstance(prompt, str):
        raise _bad("prompt must be a string")
    req.max_tokens = _opt_int(rest.pop("max_tokens_to_sample", None), "max_tokens_to_sample")
    _anthropic_sampling(rest, req, losses)
    matches = list(_TURN.finditer(prompt))
    if not matches:
        req.messages.append(Message("user", [Text(prompt.strip())]))
        return
    head = prompt[: matches[0].start()].strip()
    if head:
        req.system.append(head)
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(prompt)
        text = prompt[match.end() : end].strip()
        role: Literal["user", "assistant"] = "user" if match.group(1) == "Human" else "assistant"
        if role == "assistant" and i == len(matches) - 1 and not text:
            break  # the final "Assistant:" asks for the completion
        _append(req, role, [Text(text)])


# --------------------------------------------------------------------------------------------
# Writers


def _chat_content(parts: list[Content], losses: _Losses) -> str | list[dict[str, Any]]:
    if len(parts) == 1 and isinstance(parts[0], Text):
        return parts[0].text
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, Image):
            image_url: dict[str, Any] = {"url": _image_url(part)}
            if part.detail is not None:
                image_url["detail"] = part.detail
            out.append({"type": "image_url", "image_url": image_url})
        elif part.text is not None:
            out.append({"type": "text", "text": part.text})
            if part.filename:
                losses.add("messages.document.title", "OpenAI takes a text document as text")
        elif part.file_id is not None:
            out.append({"type": "file", "file": {"file_id": part.file_id}})
        elif part.data is not None:
            spec = {"file_data": _data_url(part), "filename": _document_name(part)}
            out.append({"type": "file", "file": spec})
        else:
            losses.add("messages.document", "OpenAI Chat takes no file by URL")
    return out


def _render_chat(req: CanonicalRequest, out: dict[str, Any], losses: _Losses) -> None:
    messages: list[dict[str, Any]] = []
    if req.system:
        messages.append({"role": "system", "content": "\n\n".join(req.system)})
    turn: list[dict[str, Any]] = []
    for message in req.messages:
        if message.role == "assistant":
            turn = _chat_assistant(message, losses)
        else:
            turn = _chat_user(message, losses)
        messages.extend(turn)
    if not messages:
        # OpenAI refuses an empty ``messages``; saying so here is clearer than its 400.
        dropped = f" (dropped: {', '.join(losses.names)})" if losses.names else ""
        raise _bad(f"{CHAT} needs at least one message{dropped}")
    _check_last_turn(req, bool(turn), losses)
    _prefill_loss(req, losses)
    out["messages"] = messages
    _openai_tools(req, out, losses, flat=False)
    if req.max_tokens is not None:
        out["max_completion_tokens"] = req.max_tokens
    _openai_common(req, out, losses)
    _openai_stop(req, out, losses)
    if req.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    effort = _effort_for_openai(req)
    if effort is not None:
        out["reasoning_effort"] = effort
    if req.reasoning is not None and req.reasoning.summary is not None:
        losses.add("reasoning.summary")
    if req.response_format is not None:
        out["response_format"] = _chat_response_format(req.response_format)
    if req.verbosity is not None:
        out["verbosity"] = req.verbosity


def _chat_user(message: Message, losses: _Losses) -> list[dict[str, Any]]:
    """One ``tool`` message per tool result, then one user message with the rest.

    The tool messages come first: OpenAI takes them only right after the assistant message
    that made the calls. A Chat tool message holds only text, so the images of tool results
    (a computer-use screenshot) go at the head of the user message after them.
    """
    out: list[dict[str, Any]] = []
    images: list[Content] = []
    rest: list[Content] = []
    for part in message.parts:
        if isinstance(part, ToolResult):
            out.append(_chat_tool_message(part, losses))
            images.extend(p for p in part.content if isinstance(p, Image))
        elif isinstance(part, (Text, Image, Document)):
            rest.append(part)
        else:
            losses.add(_part_loss(part))
    content = _chat_content(images + rest, losses) if images or rest else []
    if content:
        out.append({"role": "user", "content": content})
    return out


def _chat_tool_message(result: ToolResult, losses: _Losses) -> dict[str, Any]:
    texts = [part.text for part in result.content if isinstance(part, Text)]
    if result.is_error:
        losses.add("tool_result.is_error")
    content: str | list[dict[str, Any]] = (
        texts[0] if len(texts) == 1 else [{"type": "text", "text": text} for text in texts]
    )
    return {"role": "tool", "tool_call_id": result.tool_call_id, "content": content or ""}


def _chat_assistant(message: Message, losses: _Losses) -> list[dict[str, Any]]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, Text):
            texts.append(part.text)
        elif isinstance(part, ToolCall):
            calls.append(
                {
                    "id": part.id,
                    "type": "function",
                    "function": {"name": part.name, "arguments": part.arguments or "{}"},
                }
            )
        else:
            losses.add(_part_loss(part))
    if not texts and not calls:
        return []
    out: dict[str, Any] = {"role": "assistant"}
    if len(texts) == 1:
        out["content"] = texts[0]
    elif texts:
        out["content"] = [{"type": "text", "text": text} for text in texts]
    else:
        out["content"] = None
    if calls:
        out["tool_calls"] = calls
    return [out]


def _prefill_loss(req: CanonicalRequest, losses: _Losses) -> None:
    """Name an Anthropic prefill sent to OpenAI, which answers after a final assistant message
    instead of continuing it (the message is still sent, as history)."""
    if (
        req.source in (MESSAGES, ATEXT)
        and req.messages
        and req.messages[-1].role == "assistant"
        and any(isinstance(part, Text) and part.text.strip() for part in req.messages[-1].parts)
    ):
        losses.add(
            _name(req, "prefill"),
            "OpenAI models answer after a final assistant message instead of continuing it",
        )


def _check_last_turn(req: CanonicalRequest, sent: bool, losses: _Losses) -> None:
    """Refuse a request whose last user turn (``sent``: whether any of it was rendered) is
    all gone: the model would answer an earlier turn instead, or, at Anthropic, continue the
    assistant's last message as a prefill."""
    if sent or not req.messages or req.messages[-1].role != "user":
        return
    why = f"dropped: {', '.join(losses.names)}" if losses.names else "it is blank"
    raise _bad(f"nothing in the last user turn can be sent to {losses.target} ({why})")


def _part_loss(part: Part) -> str:
    if isinstance(part, Image):
        return "messages.image"
    if isinstance(part, Document):
        return "messages.document"
    if isinstance(part, ToolCall):
        return "messages.tool_calls"
    if isinstance(part, ToolResult):
        return "messages.tool_results"
    if isinstance(part, Thinking):
        return "input.reasoning" if part.item is not None else "messages.thinking"
    return "messages.text"  # pragma: no cover - text is expressible everywhere


def _shorten_tool_names(req: CanonicalRequest) -> dict[str, str]:
    """Give the tools whose names OpenAI refuses (over 64 characters; Anthropic takes 128, and
    Claude Code's MCP tools, ``mcp__<server>__<tool>``, often pass 64) a name it takes: the
    first 55 characters, ``_`` and 8 hex digits of the name's SHA-256, the same in every turn.
    Renamed in the tools, the tool choice and the conversation's calls; returns the names sent
    → the client's."""
    long = {tool.name for tool in req.tools if len(tool.name) > MAX_OPENAI_TOOL_NAME}
    for message in req.messages:
        long.update(
            part.name
            for part in message.parts
            if isinstance(part, ToolCall) and len(part.name) > MAX_OPENAI_TOOL_NAME
        )
    if not long:
        return {}
    short = {name: f"{name[:55]}_{hashlib.sha256(name.encode()).hexdigest()[:8]}" for name in long}
    for tool in req.tools:
        tool.name = short.get(tool.name, tool.name)
    for message in req.messages:
        for part in message.parts:
            if isinstance(part, ToolCall):
                part.name = short.get(part.name, part.name)
    choice = req.tool_choice
    if choice is not None and choice.name is not None:
        choice.name = short.get(choice.name, choice.name)
    return {sent: name for name, sent in short.items()}


def _openai_parameters(schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """A tool's parameters as OpenAI takes them: an object schema without ``properties`` (a tool
    that takes nothing, as MCP servers describe it; Anthropic takes it) is refused ("object
    schema missing properties"), so it gets an empty one."""
    if schema is not None and schema.get("type") == "object" and "properties" not in schema:
        return {**schema, "properties": {}}
    return schema


def _openai_tools(req: CanonicalRequest, out: dict[str, Any], losses: _Losses, flat: bool) -> None:
    if req.tools:
        tools: list[dict[str, Any]] = []
        for tool in req.tools:
            spec: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                spec["description"] = tool.description
            parameters = _openai_parameters(tool.parameters)
            if flat:
                spec["parameters"] = parameters
                spec["strict"] = bool(tool.strict)  # Responses defaults to strict; Chat does not
                tools.append({"type": "function", **spec})
            else:
                if parameters is not None:
                    spec["parameters"] = parameters
                if tool.strict is not None:
                    spec["strict"] = tool.strict
                tools.append({"type": "function", "function": spec})
        out["tools"] = tools
    choice = _sent_tool_choice(req, losses)
    if choice is not None:
        if choice.kind != "function":
            out["tool_choice"] = choice.kind
        elif flat:
            out["tool_choice"] = {"type": "function", "name": choice.name}
        else:
            out["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    if req.parallel_tool_calls is not None and req.tools:
        out["parallel_tool_calls"] = req.parallel_tool_calls


def _sent_tool_choice(req: CanonicalRequest, losses: _Losses) -> ToolChoice | None:
    """The tool choice to send: only with the tools it is about.

    OpenAI and Anthropic both refuse a ``tool_choice`` without ``tools`` (a 400), which is
    what is left when every tool the client sent was one the target has no place for
    (a server tool, a custom tool). ``auto`` and ``none`` then mean what sending no tools
    means; a choice that forces a tool that is not sent cannot be kept, and is named.
    """
    choice = req.tool_choice
    if choice is None:
        return None
    if choice.kind == "function":
        if any(tool.name == choice.name for tool in req.tools):
            return choice
    elif req.tools:
        return choice
    if choice.kind in ("required", "function"):
        losses.add("tool_choice", "it forces a call to a tool that is not sent")
    return None


def _openai_common(req: CanonicalRequest, out: dict[str, Any], losses: _Losses) -> None:
    if req.temperature is not None:
        out["temperature"] = req.temperature
    if req.top_p is not None:
        out["top_p"] = req.top_p
    if req.top_k is not None:
        losses.add(_name(req, "top_k"))
    if req.user:  # (an empty id names no one: not sent)
        out["user"] = _user_id(req.user, _OPENAI_USER)


def _openai_stop(req: CanonicalRequest, out: dict[str, Any], losses: _Losses) -> None:
    if not req.stop:
        return
    if len(req.stop) > 4:  # OpenAI takes at most four
        losses.add(_name(req, "stop"))
    else:
        out["stop"] = req.stop[0] if len(req.stop) == 1 else list(req.stop)


def _effort_for_openai(req: CanonicalRequest) -> str | None:
    reasoning = req.reasoning
    if reasoning is None:
        return None
    if reasoning.effort is not None:
        return reasoning.effort
    if reasoning.mode == "enabled" and reasoning.budget is not None:
        return budget_to_effort(reasoning.budget)
    return None  # disabled / adaptive: the OpenAI model's default applies


def _chat_response_format(fmt: ResponseFormat) -> dict[str, Any]:
    if fmt.type != "json_schema":
        return {"type": fmt.type}
    return {"type": "json_schema", "json_schema": _schema_fields(fmt)}


def _schema_fields(fmt: ResponseFormat) -> dict[str, Any]:
    # OpenAI requires a name; Anthropic's format has none to give.
    spec: dict[str, Any] = {"name": fmt.name or "response"}
    for key, value in (
        ("description", fmt.description),
        ("schema", fmt.schema),
        ("strict", fmt.strict),
    ):
        if value is not None:
            spec[key] = value
    return spec


def _render_openai_text(req: CanonicalRequest, out: dict[str, Any], losses: _Losses) -> None:
    if len(req.messages) != 1 or req.messages[0].role != "user":
        raise _bad("only a single user turn can be expressed as an openai-text prompt")
    if req.system:
        losses.add(_name(req, "system"))
    texts: list[str] = []
    for part in req.messages[0].parts:
        if isinstance(part, Text):
            texts.append(part.text)
        else:
            losses.add(_part_loss(part))
    _check_last_turn(req, bool(texts), losses)
    out["prompt"] = "\n\n".join(texts)
    if req.max_tokens is not None:
        out["max_tokens"] = req.max_tokens
    _openai_common(req, out, losses)
    _openai_stop(req, out, losses)
    if req.stream:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    _no_tools_or_reasoning(req, losses)


def _no_tools_or_reasoning(req: CanonicalRequest, losses: _Losses) -> None:
    """Losses for a text-only target (Completions, Text Completions)."""
    if req.tools:
        losses.add("tools")
    if req.tool_choice is not None and (
        req.tool_choice.kind in ("required", "function")
        or (req.tools and req.tool_choice.kind == "auto")
    ):
        losses.add("tool_choice")
    if req.parallel_tool_calls is False and req.tools:
        losses.add(_name(req, "parallel_tool_calls"))
    reasoning = req.reasoning
    if reasoning is not None and (
        reasoning.mode in ("enabled", "adaptive")
        or reasoning.budget is not None
        or (reasoning.effort not in (None, "none"))
    ):
        losses.add(_name(req, "reasoning"))
    if req.response_format is not None:
        losses.add(_name(req, "response_format"))
    if req.verbosity is not None:
        losses.add(_name(req, "verbosity"))


def _render_responses(req: CanonicalRequest, out: dict[str, Any], losses: _Losses) -> None:
    if req.source != RESPONSES:
        # Responses stores every response by default (30 days); Chat does not, and the other
        # formats never do. A client that did not ask for storage does not get it: a Chat
        # ``store: true`` overrides this through ``_SHARED`` (``_render``). (From Responses the
        # client's own default stands.)
        out["store"] = False
    if req.system:
        out["instructions"] = "\n\n".join(req.system)
    items: list[dict[str, Any]] = []
    turn: list[dict[str, Any]] = []
    for message in req.messages:
        turn = _responses_items(message, losses)
        items.extend(turn)
    _check_last_turn(req, bool(turn), losses)
    _prefill_loss(req, losses)
    out["input"] = items
    _openai_tools(req, out, losses, flat=True)
    if req.max_tokens is not None:
        out["max_output_tokens"] = max(req.max_tokens, RESPONSES_MIN_OUTPUT_TOKENS)
        if req.max_tokens < RESPONSES_MIN_OUTPUT_TOKENS:
            # A 400 from OpenAI otherwise ("integer below minimum value"): common with the
            # one-token probes health checks send.
            why = f"OpenAI Responses takes at least {RESPONSES_MIN_OUTPUT_TOKENS}"
            losses.add(_name(req, "max_tokens"), why)
    _openai_common(req, out, losses)
    if req.stop:
        losses.add(_name(req, "stop"))
    if req.stream:
        out["stream"] = True
    reasoning: dict[str, Any] = {}
    effort = _effort_for_openai(req)
    if effort is not None:
        reasoning["effort"] = effort
    if req.reasoning is not None and req.reasoning.summary is not None:
        reasoning["summary"] = req.reasoning.summary
    if reasoning:
        out["reasoning"] = reasoning
    text: dict[str, Any] = {}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema" and fmt.schema is None:
        # (Optional in Chat's ``json_schema``, required in Responses' ``text.format``.)
        losses.add(_name(req, "response_format"), "Responses needs the JSON schema itself")
    elif fmt is not None:
        text["format"] = (
            {"type": "json_schema", **_schema_fields(fmt)}
            if fmt.type == "json_schema"
            else {"type": fmt.type}
        )
    if req.verbosity is not None:
        text["verbosity"] = req.verbosity
    if text:
        out["text"] = text


def _responses_content(
    parts: Sequence[Content], assistant: bool, losses: _Losses
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            if assistant:
                out.append({"type": "output_text", "text": part.text, "annotations": []})
            else:
                out.append({"type": "input_text", "text": part.text})
        elif isinstance(part, Image):
            out.append(
                {
                    "type": "input_image",
                    "image_url": _image_url(part),
                    "detail": part.detail or "auto",
                }
            )
        elif part.text is not None:
            out.append({"type": "input_text", "text": part.text})
            if part.filename:
                losses.add("messages.document.title", "OpenAI takes a text document as text")
        else:
            item: dict[str, Any] = {"type": "input_file"}
            if part.url is not None:
                item["file_url"] = part.url
            elif part.file_id is not None:
                item["file_id"] = part.file_id
            else:
                item["file_data"] = _data_url(part)
            if part.filename or part.data is not None:
                item["filename"] = _document_name(part)
            out.append(item)
    return out


def _responses_items(message: Message, losses: _Losses) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    assistant = message.role == "assistant"
    pending: list[Content] = []

    def flush() -> None:
        if pending:
            content: str | list[dict[str, Any]]
            if assistant and len(pending) == 1 and isinstance(pending[0], Text):
                content = pending[0].text  # EasyInputMessage: no output item id needed
            else:
                content = _responses_content(pending, assistant, losses)
            out.append({"type": "message", "role": message.role, "content": content})
            pending.clear()

    for part in message.parts:
        if isinstance(part, (Image, Document)) and assistant:
            losses.add(_part_loss(part))
        elif isinstance(part, (Text, Image, Document)):
            pending.append(part)
        elif isinstance(part, ToolCall):
            flush()
            out.append(
                {
                    "type": "function_call",
                    "call_id": part.id,
                    "name": part.name,
                    "arguments": part.arguments or "{}",
                }
            )
        elif isinstance(part, ToolResult):
            flush()
            if part.is_error:
                losses.add("tool_result.is_error")
            output: str | list[dict[str, Any]]
            first = part.content[0] if part.content else Text("")
            if len(part.content) <= 1 and isinstance(first, Text):
                output = first.text
            else:  # (as parts: joined, they would hold whitespace the client never sent)
                output = _responses_content(part.content, False, losses)
            out.append(
                {"type": "function_call_output", "call_id": part.tool_call_id, "output": output}
            )
        elif isinstance(part, Thinking) and part.item is not None:
            flush()
            out.append(part.item)
        else:
            losses.add(_part_loss(part))
    flush()
    return out


def _render_messages(
    req: CanonicalRequest, out: dict[str, Any], losses: _Losses, default_max_tokens: int
) -> None:
    thinking = _thinking_for_anthropic(req, losses)
    messages = _anthropic_messages(req, losses)
    choice = _anthropic_tool_choice(req, losses)
    thinking = _thinking_allowed(req, thinking, choice, messages, losses)
    max_tokens = req.max_tokens if req.max_tokens is not None else default_max_tokens
    if (
        thinking is not None
        and thinking["type"] == "enabled"
        and thinking["budget_tokens"] >= max_tokens
    ):
        max_tokens += thinking["budget_tokens"]
    out["max_tokens"] = max_tokens
    if req.system:
        system = "\n\n".join(req.system)
        cache = req.system_cache
        out["system"] = (
            system if cache is None else [{"type": "text", "text": system, "cache_control": cache}]
        )
    out["messages"] = messages
    if req.tools:
        tools: list[dict[str, Any]] = []
        for tool in req.tools:
            spec: dict[str, Any] = {"name": tool.name}
            if tool.description is not None:
                spec["description"] = tool.description
            schema = tool.parameters or {"type": "object", "properties": {}}
            if tool.strict:
                # Strict tool use takes the structured-output subset of JSON Schema.
                schema, moved = _anthropic_schema(schema)
                if moved:
                    losses.add("tools.parameters", _SCHEMA_MOVED)
                spec["strict"] = True
            spec["input_schema"] = schema
            if tool.cache_control is not None:
                spec["cache_control"] = tool.cache_control
            tools.append(spec)
        out["tools"] = tools
    _cap_cache_points(out)
    if choice is not None:
        out["tool_choice"] = choice
    enabled = thinking is not None and thinking["type"] != "disabled"
    stops = _messages_stops(req, losses)
    _anthropic_sampling_out(req, out, losses, thinking=enabled, stops=stops, exclusive=True)
    if req.stream:
        out["stream"] = True
    if thinking is not None:
        out["thinking"] = thinking
    output_config = _anthropic_output_format(req, losses)
    if output_config:
        out["output_config"] = output_config
    if req.verbosity is not None:
        losses.add(_name(req, "verbosity"))


# Anthropic refuses a request with more prompt-caching breakpoints than this.
MAX_CACHE_POINTS = 4


def _cap_cache_points(out: dict[str, Any]) -> None:
    """Keep the last ``MAX_CACHE_POINTS`` caching breakpoints, in Anthropic's order of the
    prompt (tools, system, messages): a later one caches everything before it, so the earlier
    are the ones to spare. (A hint: none is named.)"""
    marked: list[dict[str, Any]] = [t for t in out.get("tools", ()) if "cache_control" in t]
    system = out.get("system")
    if isinstance(system, list):
        marked += [block for block in system if "cache_control" in block]
    for message in out["messages"]:
        content = message["content"]
        if isinstance(content, list):
            for block in content:
                inner = block.get("content")  # (a tool result's blocks)
                for each in [block, *inner] if isinstance(inner, list) else [block]:
                    if "cache_control" in each:
                        marked.append(each)
    for block in marked[: max(0, len(marked) - MAX_CACHE_POINTS)]:
        del block["cache_control"]


def _anthropic_output_format(req: CanonicalRequest, losses: _Losses) -> dict[str, Any]:
    """Structured output as Anthropic's ``output_config.format``: a JSON schema, always
    enforced (OpenAI's ``strict``). JSON mode without a schema has no Anthropic form."""
    fmt = req.response_format
    if fmt is None:
        return {}
    if fmt.type != "json_schema" or fmt.schema is None:
        losses.add(
            _name(req, "response_format"), "Anthropic takes structured output only as a JSON schema"
        )
        return {}
    if fmt.description is not None:
        losses.add(f"{_name(req, 'response_format')}.description")
    schema, moved = _anthropic_schema(fmt.schema)
    if moved:
        losses.add(f"{_name(req, 'response_format')}.schema", _SCHEMA_MOVED)
    return {"format": {"type": "json_schema", "schema": schema}}


# Anthropic's structured outputs (and strict tools) take a subset of JSON Schema and refuse the
# rest with a 400 ("For 'object' type, 'additionalProperties' must be explicitly set to false",
# "property 'minimum' is not supported": BerriAI/litellm#35808, agentjido/req_llm#302). The
# Anthropic SDK rewrites the schemas it makes the same way (``lib/_parse/_transform.py``).
_SCHEMA_MOVED = "Anthropic enforces only part of JSON Schema: the rest is in descriptions"
_SCHEMA_STRING_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6", "uuid"}
)
_SCHEMA_KEPT = frozenset({"description", "title"})


def _anthropic_schema(schema: Any) -> tuple[dict[str, Any], bool]:
    """``schema`` in the subset Anthropic enforces, and whether anything had to move: every
    object closed (``additionalProperties: false``), ``oneOf`` as ``anyOf``, and what the subset
    lacks (``minimum``, ``pattern``, another string ``format``, ``minItems`` above 1…) written
    into the ``description`` for the model to follow, as the Anthropic SDK does."""
    if not isinstance(schema, dict):
        return {}, True
    rest = dict(schema)
    out: dict[str, Any] = {}
    moved = False

    def sub(value: Any) -> dict[str, Any]:
        nonlocal moved
        converted, inner = _anthropic_schema(value)
        moved = moved or inner
        return converted

    defs = rest.pop("$defs", None)
    if isinstance(defs, dict):
        out["$defs"] = {name: sub(value) for name, value in defs.items()}
    ref = rest.pop("$ref", None)
    if isinstance(ref, str):
        out["$ref"] = ref
    kind = rest.pop("type", None)
    for key in ("enum", "const"):
        if key in rest and _primitive_values(rest[key], key):
            out[key] = rest.pop(key)
    variants = rest.pop("anyOf", None) or rest.pop("oneOf", None)
    if isinstance(variants, list):
        out["anyOf"] = [sub(variant) for variant in variants]
    every = rest.pop("allOf", None)
    if isinstance(every, list):
        out["allOf"] = [sub(variant) for variant in every]
    if kind is not None and not ("enum" in out or "const" in out):
        out["type"] = kind
    for key in _SCHEMA_KEPT:
        if key in rest:
            out[key] = rest.pop(key)
    if kind == "object":
        properties = rest.pop("properties", {})
        if isinstance(properties, dict):
            out["properties"] = {name: sub(value) for name, value in properties.items()}
        extra = rest.pop("additionalProperties", False)
        if extra is not False:
            rest["additionalProperties"] = extra  # (closed now: said in the description)
        out["additionalProperties"] = False
        if "required" in rest:
            out["required"] = rest.pop("required")
    elif kind == "string" and rest.get("format") in _SCHEMA_STRING_FORMATS:
        out["format"] = rest.pop("format")
    elif kind == "array":
        if "items" in rest:
            out["items"] = sub(rest.pop("items"))
        if rest.get("minItems") in (0, 1):
            out["minItems"] = rest.pop("minItems")
    if rest:
        moved = True
        said = ", ".join(f"{key}: {_dumps(value)}" for key, value in rest.items())
        description = out.get("description")
        out["description"] = f"{description}\n\n{{{said}}}" if description else f"{{{said}}}"
    return out, moved


def _primitive_values(value: Any, key: str) -> bool:
    if key == "const":
        return value is None or isinstance(value, (str, int, float, bool))
    return (
        isinstance(value, list)
        and bool(value)
        and all(v is None or isinstance(v, (str, int, float, bool)) for v in value)
    )


def _anthropic_messages(req: CanonicalRequest, losses: _Losses) -> list[dict[str, Any]]:
    """The turns as Anthropic takes them: roles alternating, tool results first, none empty."""
    messages: list[dict[str, Any]] = []
    blocks: list[dict[str, Any]] = []
    for message in req.messages:
        blocks = _anthropic_blocks(message, losses)
        if not blocks:
            continue  # nothing left to say (blank text, dropped parts): its neighbours merge
        if messages and messages[-1]["role"] == message.role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": message.role, "content": blocks})
    if not messages:
        # Anthropic requires at least one message; saying so here is clearer than its 400.
        dropped = f" (dropped: {', '.join(losses.names)})" if losses.names else ""
        raise _bad(f"{MESSAGES} needs at least one non-empty user or assistant message{dropped}")
    _check_last_turn(req, bool(blocks), losses)
    if messages and messages[-1]["role"] == "assistant":
        _strip_prefill_end(messages[-1]["content"])
    for turn in messages:
        # Tool results must open their user message; a stable sort keeps the rest in order.
        content = turn["content"]
        content.sort(key=lambda block: block["type"] != "tool_result")
        text = _lone_text(content)
        if text is not None:
            turn["content"] = text
    return messages


def _strip_prefill_end(content: list[dict[str, Any]]) -> None:
    """Strip trailing whitespace from the last text block of a final assistant message.

    Anthropic refuses a prefill whose content ends with whitespace (a 400). Left as it is, the
    request fails; stripped, the model continues right after the client's last word and writes
    the space itself, as it would anyway: nothing it sees changes in practice, so this is not
    named. (The block is not blank: ``_anthropic_content`` leaves those out.)
    """
    for block in reversed(content):
        if block["type"] == "text":
            block["text"] = block["text"].rstrip()
            return


def _thinking_allowed(
    req: CanonicalRequest,
    thinking: dict[str, Any] | None,
    choice: dict[str, Any] | None,
    messages: list[dict[str, Any]],
    losses: _Losses,
) -> dict[str, Any] | None:
    """``thinking``, unless Anthropic would refuse it with this tool choice or conversation.

    Then the thinking setting gives way (named as the client's reasoning field): what the
    client asked of the tools, or the conversation it sent, is not changed for it.
    """
    if thinking is None or thinking["type"] == "disabled":
        return thinking
    # Manual thinking ("enabled") takes only tool_choice auto or none. A client that forces a
    # tool call depends on getting one (its code reads the call); reasoning effort is a quality
    # hint. So the forced choice is kept and the thinking left out. (Adaptive thinking accepts a
    # forced tool.)
    if thinking["type"] == "enabled" and choice is not None and choice["type"] in ("any", "tool"):
        losses.add(
            _name(req, "reasoning"),
            "Anthropic takes no thinking with a tool_choice that forces a tool call",
        )
        return None
    # A final assistant message is a prefill: the client wants the model to continue it, and
    # its own text is what it sent. Anthropic takes no thinking with a prefill, so the prefill
    # is kept and the thinking (a quality hint) left out.
    if messages[-1]["role"] == "assistant":
        losses.add(
            _name(req, "reasoning"),
            "Anthropic takes no thinking with a final assistant message (a prefill)",
        )
        return None
    if _tool_turn_without_thinking(messages):
        losses.add(
            _name(req, "reasoning"),
            "with thinking on, Anthropic needs the tool-use turn in progress to start with the "
            "signed thinking block it was generated with, and this conversation has none",
        )
        return None
    return thinking


def _tool_turn_without_thinking(messages: list[dict[str, Any]]) -> bool:
    """Whether the assistant turn still in progress (a tool-use loop) opens without thinking.

    With thinking on, Anthropic refuses a conversation whose final assistant turn, the one that
    made the last tool calls and gets their results, does not start with a thinking (or
    redacted thinking) block. That turn may be several messages: tool calls, results, more
    calls; only its first message carries the thinking. A turn that ended in text (the user
    spoke since) needs none. Tool results sent with user text in one message are taken as still
    the same turn (the stricter reading: at worst thinking is left out when it could stay).
    """
    assistants = [i for i, message in enumerate(messages) if message["role"] == "assistant"]
    if not assistants or not _has_block(messages[assistants[-1]], "tool_use"):
        return False
    start = assistants[-1]
    while (
        start >= 2
        and _only_tool_results(messages[start - 1])
        and _has_block(messages[start - 2], "tool_use")
    ):
        start -= 2
    content = messages[start]["content"]
    return content[0]["type"] not in ("thinking", "redacted_thinking")


def _has_block(message: dict[str, Any], kind: str) -> bool:
    content = message["content"]
    return not isinstance(content, str) and any(block["type"] == kind for block in content)


def _only_tool_results(message: dict[str, Any]) -> bool:
    content = message["content"]
    return not isinstance(content, str) and all(block["type"] == "tool_result" for block in content)


def _anthropic_tool_choice(req: CanonicalRequest, losses: _Losses) -> dict[str, Any] | None:
    choice = _sent_tool_choice(req, losses)
    serial = req.parallel_tool_calls is False and bool(req.tools)
    if choice is None and not serial:
        return None
    kind = choice.kind if choice is not None else "auto"
    if kind == "none":
        return {"type": "none"}  # no tool use at all: parallelism is moot
    out: dict[str, Any] = {"type": {"auto": "auto", "required": "any", "function": "tool"}[kind]}
    if kind == "function" and choice is not None:
        out["name"] = choice.name
    if serial:
        out["disable_parallel_tool_use"] = True
    return out


def _anthropic_sampling_out(
    req: CanonicalRequest,
    out: dict[str, Any],
    losses: _Losses,
    *,
    thinking: bool,
    stops: list[str],
    exclusive: bool = False,
) -> None:
    """Sampling fields; with thinking on, Anthropic takes only temperature 1 and top_p >= 0.95.
    ``exclusive`` (Messages): temperature and top_p not both (below)."""
    if req.temperature is not None:
        if req.temperature > 1 or (thinking and req.temperature != 1):  # Anthropic's range: 0…1
            losses.add(_name(req, "temperature"))
        else:
            out["temperature"] = req.temperature
    if req.top_p is not None:
        if thinking and req.top_p < 0.95:
            losses.add(_name(req, "top_p"))
        elif exclusive and "temperature" in out:
            # Anthropic's models since Sonnet 4.5 refuse the two together ("`temperature` and
            # `top_p` cannot both be specified for this model", BerriAI/litellm#15097), and
            # OpenAI clients often send both: the temperature is sent, top_p dropped (named
            # unless it is the default, 1).
            if req.top_p != 1:
                losses.add(_name(req, "top_p"), "Anthropic takes temperature or top_p, not both")
        else:
            out["top_p"] = req.top_p
    if req.top_k is not None:
        if thinking:
            losses.add(_name(req, "top_k"))
        else:
            out["top_k"] = req.top_k
    if stops:
        out["stop_sequences"] = stops
    if req.user:  # (an empty id names no one: not sent)
        out["metadata"] = {"user_id": _user_id(req.user, _ANTHROPIC_USER)}


def _messages_stops(req: CanonicalRequest, losses: _Losses) -> list[str]:
    """The stop sequences Anthropic Messages takes: it refuses an empty or whitespace-only one."""
    stops = [stop for stop in req.stop if stop.strip()]
    if len(stops) < len(req.stop):
        losses.add(_name(req, "stop"), "each stop sequence must contain non-whitespace")
    return stops


def _thinking_for_anthropic(req: CanonicalRequest, losses: _Losses) -> dict[str, Any] | None:
    reasoning = req.reasoning
    if reasoning is None:
        return None
    if reasoning.mode == "disabled" or reasoning.effort == "none":
        return {"type": "disabled"}
    if reasoning.mode == "adaptive":
        return {"type": "adaptive"}
    budget = reasoning.budget
    if budget is None and reasoning.effort is not None:
        budget = EFFORT_BUDGETS.get(reasoning.effort)
        if budget is None:
            losses.add(_name(req, "reasoning"))
            return None
    if budget is None:
        return None  # a summary setting alone: Anthropic's thinking is summarised anyway
    return {"type": "enabled", "budget_tokens": budget}


# End-user ids each API takes: OpenAI ``user`` up to 64 characters (longer ones are refused:
# maximhq/bifrost#1000; Claude Code's ``metadata.user_id`` is about 150), Anthropic
# ``metadata.user_id`` only ``^[a-zA-Z0-9_-]+$`` (aattaran/deepclaude#17: an e-mail address fails).
_OPENAI_USER = re.compile(r".{1,64}", re.DOTALL)
_ANTHROPIC_USER = re.compile(r"[a-zA-Z0-9_-]+")


def _user_id(value: str, accepted: re.Pattern[str]) -> str:
    """``value`` as the target takes it: as it is, or its SHA-256 in hex (64 characters of
    ``[0-9a-f]``), which both take and which is as stable per end user as the id it stands for:
    what the field is for (abuse monitoring per end user) holds, nothing is named."""
    if accepted.fullmatch(value):
        return value
    return hashlib.sha256(value.encode()).hexdigest()


def _tool_id(value: str) -> str:
    return _BAD_TOOL_ID.sub("_", value)


def _anthropic_content(
    parts: list[Text | Image], losses: _Losses, image_loss: str
) -> list[dict[str, Any]]:
    """Text and image blocks; an image Anthropic cannot take is named as ``image_loss``."""
    out: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, Text):
            if part.text.strip():  # Anthropic refuses an empty or whitespace-only text block
                out.append({"type": "text", "text": part.text})
                if part.cache_control is not None:
                    out[-1]["cache_control"] = part.cache_control
            continue
        source = _anthropic_image_source(part)
        if source is None:
            losses.add(
                image_loss,
                "Anthropic takes images by http(s) URL or as base64 JPEG, PNG, GIF or WebP",
            )
        else:
            out.append({"type": "image", "source": source})
    return out


def _lone_text(blocks: list[dict[str, Any]]) -> str | None:
    """The text of ``blocks`` when they are one text block and nothing more (no caching
    breakpoint): Anthropic takes it as a plain string."""
    if len(blocks) == 1 and blocks[0].keys() == {"type", "text"} and blocks[0]["type"] == "text":
        text: str = blocks[0]["text"]
        return text
    return None


def _anthropic_image_source(image: Image) -> dict[str, Any] | None:
    """The Anthropic image source for ``image``, or ``None`` where Anthropic would refuse it.

    Anthropic fetches only http(s) URLs (a data URL that is not base64 is not one) and decodes
    only the four image types of ``_ANTHROPIC_IMAGE_TYPES``.
    """
    if image.url is not None:
        if image.url.lower().startswith(("http://", "https://")):
            return {"type": "url", "url": image.url}
        return None
    # ``image/jpg`` is no registered type, but browsers and SDK users write it for JPEG.
    media_type = "image/jpeg" if image.media_type == "image/jpg" else image.media_type
    if media_type not in _ANTHROPIC_IMAGE_TYPES:
        return None
    return {"type": "base64", "media_type": media_type, "data": image.data}


def _anthropic_document_block(document: Document) -> dict[str, Any] | None:
    """The Anthropic ``document`` block for ``document``, or ``None`` where Anthropic has no
    source for it: it reads PDFs (base64 or by URL) and plain text."""
    text = document.text
    if text is None and document.data is not None and document.media_type == "text/plain":
        try:
            # (Line-wrapped base64 is common; a file not in UTF-8 keeps what it can.)
            text = base64.b64decode(document.data).decode("utf-8", "replace")
        except ValueError:  # binascii.Error: not base64 at all
            return None
    source: dict[str, Any]
    if text is not None:
        source = {"type": "text", "media_type": "text/plain", "data": text}
    elif document.url is not None:
        source = {"type": "url", "url": document.url}
    elif document.media_type == "application/pdf" and document.data is not None:
        source = {"type": "base64", "media_type": "application/pdf", "data": document.data}
    else:
        return None
    block: dict[str, Any] = {"type": "document", "source": source}
    if document.filename:
        block["title"] = document.filename
    return block


def _anthropic_blocks(message: Message, losses: _Losses) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, (Text, Image)):
            if (
                isinstance(part, Image)
                and part.detail not in (None, "auto")
                and _anthropic_image_source(part) is not None  # (else the image is named)
            ):
                losses.add("image.detail")
            out.extend(_anthropic_content([part], losses, "messages.image"))
        elif isinstance(part, Document):
            document = _anthropic_document_block(part) if message.role == "user" else None
            if document is None:
                losses.add(
                    _part_loss(part),
                    "Anthropic takes documents from the user, as PDF (base64 or URL) or text",
                )
            else:
                out.append(document)
        elif isinstance(part, ToolCall):
            out.append(
                {
                    "type": "tool_use",
                    "id": _tool_id(part.id),
                    "name": part.name,
                    "input": _arguments_object(part, losses),
                }
            )
        elif isinstance(part, ToolResult):
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": _tool_id(part.tool_call_id),
            }
            content = _anthropic_content(part.content, losses, "tool_result.image")
            text = _lone_text(content)
            if text is not None:
                block["content"] = text
            elif content:
                block["content"] = content
            if part.is_error:
                block["is_error"] = True
            out.append(block)
        elif part.signature is not None:
            out.append({"type": "thinking", "thinking": part.text, "signature": part.signature})
        elif part.redacted is not None:
            out.append({"type": "redacted_thinking", "data": part.redacted})
        else:
            losses.add(_part_loss(part))
    return out


def _render_anthropic_text(
    req: CanonicalRequest, out: dict[str, Any], losses: _Losses, default_max_tokens: int
) -> None:
    turns: list[tuple[str, list[str]]] = []
    texts: list[str] = []
    for message in req.messages:
        texts = []
        for part in message.parts:
            if isinstance(part, Text):
                if part.text.strip():  # blank text would make an empty turn, as for Messages
                    texts.append(part.text)
            else:
                losses.add(_part_loss(part))
        if not texts:
            continue
        label = "Human" if message.role == "user" else "Assistant"
        if turns and turns[-1][0] == label:
            turns[-1][1].extend(texts)
        else:
            turns.append((label, texts))
    if not turns or turns[0][0] != "Human":
        # Anthropic refuses a prompt whose first turn is not "\n\nHuman:" (with no message at
        # all the prompt would be the system text and "\n\nAssistant:" alone); saying so here
        # is clearer than its 400.
        raise _bad(
            f"{ATEXT} needs at least one non-empty user message, before any assistant message "
            "(its prompt must open with a Human turn)"
        )
    _check_last_turn(req, bool(texts), losses)
    prompt = "\n\n".join(req.system)
    for label, texts in turns:
        prompt += f"\n\n{label}: " + "\n\n".join(texts)
    if not turns or turns[-1][0] != "Assistant":
        prompt += "\n\nAssistant:"
    out["prompt"] = prompt
    out["max_tokens_to_sample"] = (
        req.max_tokens if req.max_tokens is not None else default_max_tokens
    )
    _anthropic_sampling_out(req, out, losses, thinking=False, stops=list(req.stop))
    if req.stream:
        out["stream"] = True
    _no_tools_or_reasoning(req, losses)
