"""Thinking signatures and redacted thinking carried by Chat streams (formats.md §4.2 row 3, §8).

Chat has no reasoning field of its own; two widespread conventions carry Anthropic's signatures:

- litellm: ``reasoning_content`` plus ``thinking_blocks[]`` (``{type: "thinking", thinking,
  signature}``, ``{type: "redacted_thinking", data}``);
- OpenRouter / vLLM: ``reasoning`` plus ``reasoning_details[]`` (``{type: "reasoning.text", text,
  signature}``, ``{type: "reasoning.encrypted", data}``).

Each upstream below is fed through ``StreamAdapter`` to an Anthropic Messages client: the events
must put the signature in a ``signature_delta`` before the thinking block stops, and the official
``anthropic`` SDK must accumulate the thinking text once (never doubled) with its signature.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from asgi_sse_adapter.adapter import StreamAdapter
from asgi_sse_adapter.content import Content
from asgi_sse_adapter.formats import get_format
from asgi_sse_adapter.formats.base import WriterOptions
from asgi_sse_adapter.formats.openai_chat import ChatReader
from asgi_sse_adapter.parts import (
    Done,
    ReasoningDelta,
    ReasoningSignature,
    StreamError,
    TextDelta,
)
from tests.fixtures import CHAT_ID, CHAT_MODEL, CREATED, SIGNATURE, THOUGHT
from tests.test_format_responses import check_responses
from tests.test_translate import (
    CLOCK,
    check_messages_contract,
    counter_ids,
    final_message,
    openai_client,
)

SIGNATURE_2 = "ErUBCkYIBhgCIkD2nd+sig+of+the+second+block=="
REDACTED = "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIwxtE3rAFBa8cr3qpPkNRj2YfWXGmKDx=="
ANSWER = ("It is ", "sunny.")


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    """One Chat chunk holding ``delta`` for choice 0."""
    obj = {
        "id": CHAT_ID,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": CHAT_MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def chat(*deltas: dict[str, Any], finish: str = "stop") -> bytes:
    """A whole Chat upstream: the role chunk, ``deltas``, the finish chunk and ``[DONE]``."""
    body = [chunk({"role": "assistant", "content": ""})]
    body += [chunk(d) for d in deltas]
    body.append(chunk({}, finish))
    body.append(b"data: [DONE]\n\n")
    return b"".join(body)


def answer() -> list[dict[str, Any]]:
    """Plain content deltas (the reader's fast path)."""
    return [{"content": c} for c in ANSWER]


def translate(
    upstream: bytes, client: str = "anthropic-messages", *, pieces: int = 0
) -> tuple[bytes, StreamAdapter]:
    """The client bytes for a Chat ``upstream`` (fed whole, or ``pieces`` bytes at a time)."""
    adapter = StreamAdapter(
        upstream_format="openai-chat",
        client_format=client,
        clock=lambda: CLOCK,
        id_factory=counter_ids(),
        collect_response=True,
    )
    step = pieces or len(upstream)
    out = [adapter.feed(upstream[i : i + step]) for i in range(0, len(upstream), step)]
    out.append(adapter.close())
    assert adapter.ended
    return b"".join(out), adapter


def thinking_blocks(out: bytes) -> list[dict[str, Any]]:
    """Every block of a Messages stream as its deltas add up, checking the §13 contract and that a
    signature is its thinking block's last delta, sent before the block's stop."""
    blocks: list[dict[str, Any]] = []
    for event in check_messages_contract(out):
        if event["type"] == "content_block_start":
            blocks.append({**event["content_block"], "signatures": 0, "stopped": False})
        elif event["type"] == "content_block_delta":
            block, delta = blocks[event["index"]], event["delta"]
            assert not block["stopped"]
            if delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] = delta["signature"]
                block["signatures"] += 1
            elif delta["type"] == "text_delta":
                block["text"] += delta["text"]
        elif event["type"] == "content_block_stop":
            blocks[event["index"]]["stopped"] = True
    assert all(b["stopped"] for b in blocks)
    return [{k: v for k, v in b.items() if k != "stopped"} for b in blocks]


def sdk_content(out: bytes, adapter: StreamAdapter) -> list[dict[str, Any]]:
    """The content the anthropic SDK accumulates (``get_final_message``); the adapter's own
    final response must say the same."""
    content = [
        {k: v for k, v in block.items() if v is not None} for block in final_message(out)["content"]
    ]
    response = adapter.result.response
    assert response is not None
    assert response["content"] == content
    return content


def thought(text: str, signature: str) -> dict[str, Any]:
    return {"type": "thinking", "thinking": text, "signature": signature}


TEXT_BLOCK = {"type": "text", "text": "".join(ANSWER)}


# -- litellm: reasoning_content + thinking_blocks ---------------------------------------------


def litellm_thought(signature: str | None = SIGNATURE) -> list[dict[str, Any]]:
    """litellm's rendering of Anthropic thinking: each fragment in both ``reasoning_content`` and
    a thinking block; the signature alone in a last one (``reasoning_content`` empty)."""
    deltas: list[dict[str, Any]] = [
        {
            "reasoning_content": c,
            "thinking_blocks": [{"type": "thinking", "thinking": c, "signature": None}],
        }
        for c in THOUGHT.chunks
    ]
    if signature is not None:
        deltas.append(
            {
                "reasoning_content": "",
                "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": signature}],
            }
        )
    return deltas


def openrouter_thought(signature: str | None = SIGNATURE) -> list[dict[str, Any]]:
    """OpenRouter's rendering: each fragment in ``reasoning`` and a ``reasoning.text`` detail;
    the signature in a last detail with empty text."""

    def detail(text: str, sig: str | None) -> dict[str, Any]:
        return {
            "type": "reasoning.text",
            "text": text,
            "signature": sig,
            "format": "anthropic-claude-v1",
            "index": 0,
        }

    deltas: list[dict[str, Any]] = [
        {"reasoning": c, "reasoning_details": [detail(c, None)]} for c in THOUGHT.chunks
    ]
    if signature is not None:
        deltas.append({"reasoning": "", "reasoning_details": [detail("", signature)]})
    return deltas


CONVENTIONS = {"litellm": litellm_thought, "openrouter": openrouter_thought}


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize("pieces", [0, 1, 7])
def test_signature_reaches_the_thinking_block(convention: str, pieces: int) -> None:
    """The signature is the thinking block's last delta; the SDK gets the text once with it."""
    upstream = chat(*CONVENTIONS[convention](), *answer())
    out, adapter = translate(upstream, pieces=pieces)
    blocks = thinking_blocks(out)
    assert blocks == [
        {**thought(THOUGHT.text, SIGNATURE), "signatures": 1},
        {**TEXT_BLOCK, "signatures": 0},
    ]
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]
    assert final_message(out)["stop_reason"] == "end_turn"


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_text_never_doubled(convention: str) -> None:
    """The same fragment in the text field and in an item counts once (thinking deltas = the
    upstream fragments, one each)."""
    out, _ = translate(chat(*CONVENTIONS[convention](), *answer()))
    deltas = [
        e["delta"]["thinking"]
        for e in check_messages_contract(out)
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "thinking_delta"
    ]
    assert deltas == list(THOUGHT.chunks)


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_signature_in_the_last_text_chunk(convention: str) -> None:
    """A signature on the item of the last fragment (text and signature in one chunk)."""
    deltas = CONVENTIONS[convention](None)
    key = "thinking_blocks" if convention == "litellm" else "reasoning_details"
    deltas[-1][key][0]["signature"] = SIGNATURE
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


@pytest.mark.parametrize(
    ("key", "item"),
    [
        ("thinking_blocks", lambda c, s: {"type": "thinking", "thinking": c, "signature": s}),
        ("reasoning_details", lambda c, s: {"type": "reasoning.text", "text": c, "signature": s}),
    ],
    ids=["litellm", "openrouter"],
)
def test_items_without_text_field(key: str, item: Any) -> None:
    """Items alone (no ``reasoning_content``/``reasoning``) give both the text and signature."""
    deltas = [{key: [item(c, None)]} for c in THOUGHT.chunks]
    deltas.append({key: [item("", SIGNATURE)]})
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


def test_legacy_litellm_signature_delta_key() -> None:
    """litellm before v1.63.0 named the item's signature ``signature_delta`` (formats.md §8)."""
    deltas = litellm_thought(None)
    deltas.append(
        {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature_delta": SIGNATURE}]}
    )
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


def test_field_text_wins_when_items_differ() -> None:
    """Items whose text is not the field's (a summary, say) add no text: the field is read."""
    deltas = [
        {
            "reasoning": c,
            "reasoning_details": [
                {"type": "reasoning.text", "text": c.upper()},
                {"type": "reasoning.summary", "summary": c},
            ],
        }
        for c in THOUGHT.chunks
    ]
    deltas.append({"reasoning_details": [{"type": "reasoning.text", "signature": SIGNATURE}]})
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


# -- whose blobs: OpenRouter's ``format`` ------------------------------------------------------

# Blobs of other providers: a Gemini thought signature, an OpenAI ``encrypted_content``.
FOREIGN_SIGNATURE = "CiQB0e2Kb7gemini+thought+signature+not+for+anthropic=="
FOREIGN_DATA = "gAAAAABoOpenAIencryptedContentNotForAnthropic=="
# ``reasoning_details[].format`` values that do not name Anthropic (OpenRouter's
# ``ReasoningFormat``), and shapes that are no format at all.
FOREIGN_FORMATS: list[Any] = [
    "openai-responses-v1",
    "azure-openai-responses-v1",
    "xai-responses-v1",
    "google-gemini-v1",
    "unknown",
    "",
    "Anthropic-Claude-v1",
    5,
    ["anthropic-claude-v1"],
]


def foreign_thought(origin: Any) -> list[dict[str, Any]]:
    """``openrouter_thought`` from another provider: its signature, then encrypted data, with
    ``format`` ``origin``."""

    def detail(text: str, sig: str | None) -> dict[str, Any]:
        return {"type": "reasoning.text", "text": text, "signature": sig, "format": origin}

    deltas: list[dict[str, Any]] = [
        {"reasoning": c, "reasoning_details": [detail(c, None)]} for c in THOUGHT.chunks
    ]
    deltas[-1]["reasoning_details"][0]["signature"] = FOREIGN_SIGNATURE
    deltas.append({"reasoning": "", "reasoning_details": [detail("", FOREIGN_SIGNATURE)]})
    encrypted = {"type": "reasoning.encrypted", "data": FOREIGN_DATA, "format": origin}
    deltas.append({"reasoning_details": [encrypted]})
    return deltas


@pytest.mark.parametrize("origin", FOREIGN_FORMATS, ids=[repr(f) for f in FOREIGN_FORMATS])
def test_other_providers_blobs_dropped(origin: Any) -> None:
    """Signatures and encrypted data are valid only for their issuer (formats.md §8): items whose
    ``format`` does not name Anthropic give their text, unsigned, and no redacted block."""
    out, adapter = translate(chat(*foreign_thought(origin), *answer()))
    assert FOREIGN_SIGNATURE.encode() not in out
    assert FOREIGN_DATA.encode() not in out
    assert thinking_blocks(out) == [
        {**thought(THOUGHT.text, ""), "signatures": 0},
        {**TEXT_BLOCK, "signatures": 0},
    ]
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, ""), TEXT_BLOCK]


@pytest.mark.parametrize("origin", FOREIGN_FORMATS[:2], ids=repr)
def test_other_providers_items_keep_their_text(origin: Any) -> None:
    """Items alone (no text field) of another provider: their text is read, once."""
    deltas = [
        {"reasoning_details": [{"type": "reasoning.text", "text": c, "format": origin}]}
        for c in THOUGHT.chunks
    ]
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, ""), TEXT_BLOCK]


@pytest.mark.parametrize("origin", ["anthropic-claude-v1", "anthropic-claude-v2", None])
def test_anthropic_or_absent_format_kept(origin: str | None) -> None:
    """``format`` naming Anthropic (any version), null or absent: signature and data are read."""
    deltas = foreign_thought(origin)
    for delta in deltas:
        for item in delta["reasoning_details"]:
            if origin is None:
                del item["format"]
            if item.get("signature"):
                item["signature"] = SIGNATURE
            if "data" in item:
                item["data"] = REDACTED
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [
        thought(THOUGHT.text, SIGNATURE),
        {"type": "redacted_thinking", "data": REDACTED},
        TEXT_BLOCK,
    ]


def test_mixed_formats_in_one_delta() -> None:
    """Items of several providers in one list: each is judged by its own ``format``."""
    deltas = openrouter_thought(None)
    deltas.append(
        {
            "reasoning_details": [
                {"type": "reasoning.encrypted", "data": FOREIGN_DATA, "format": "unknown"},
                {"type": "reasoning.text", "signature": FOREIGN_SIGNATURE, "format": "unknown"},
                {"type": "reasoning.text", "signature": SIGNATURE, "format": "anthropic-claude-v1"},
                {"type": "reasoning.encrypted", "data": REDACTED, "format": "anthropic-claude-v1"},
            ]
        }
    )
    out, adapter = translate(chat(*deltas, *answer()))
    assert FOREIGN_SIGNATURE.encode() not in out
    assert FOREIGN_DATA.encode() not in out
    assert sdk_content(out, adapter) == [
        thought(THOUGHT.text, SIGNATURE),
        {"type": "redacted_thinking", "data": REDACTED},
        TEXT_BLOCK,
    ]


# -- segments, last wins, redacted ------------------------------------------------------------


def test_last_signature_wins() -> None:
    """Two signatures for one block: one ``signature_delta``, the later value (the SDKs assign)."""
    deltas = litellm_thought(SIGNATURE_2)
    deltas.append(
        {"thinking_blocks": [{"type": "thinking", "thinking": "", "signature": SIGNATURE}]}
    )
    out, adapter = translate(chat(*deltas, *answer()))
    assert thinking_blocks(out)[0] == {**thought(THOUGHT.text, SIGNATURE), "signatures": 1}
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


def test_signature_repeated_on_every_fragment_is_one_block() -> None:
    """A provider repeating the block's signature with each fragment: still one block."""
    deltas = [
        {"reasoning_details": [{"type": "reasoning.text", "text": c, "signature": SIGNATURE}]}
        for c in THOUGHT.chunks
    ]
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_two_signed_blocks(convention: str) -> None:
    """Reasoning after a signature starts a new thinking block, each with its own signature."""
    make = CONVENTIONS[convention]
    out, adapter = translate(chat(*make(SIGNATURE), *make(SIGNATURE_2), *answer()))
    assert sdk_content(out, adapter) == [
        thought(THOUGHT.text, SIGNATURE),
        thought(THOUGHT.text, SIGNATURE_2),
        TEXT_BLOCK,
    ]


@pytest.mark.parametrize(
    ("key", "item"),
    [
        ("thinking_blocks", {"type": "redacted_thinking", "data": REDACTED}),
        ("reasoning_details", {"type": "reasoning.encrypted", "data": REDACTED, "index": 1}),
    ],
    ids=["litellm", "openrouter"],
)
def test_redacted_thinking(key: str, item: dict[str, Any]) -> None:
    """Encrypted reasoning becomes a ``redacted_thinking`` block, after the signed block it
    follows (whose signature it must not take or lose)."""
    convention = "litellm" if key == "thinking_blocks" else "openrouter"
    deltas = [*CONVENTIONS[convention](), {key: [item]}, *answer()]
    out, adapter = translate(chat(*deltas))
    assert [b["type"] for b in thinking_blocks(out)] == ["thinking", "redacted_thinking", "text"]
    assert sdk_content(out, adapter) == [
        thought(THOUGHT.text, SIGNATURE),
        {"type": "redacted_thinking", "data": REDACTED},
        TEXT_BLOCK,
    ]


def test_whole_message_in_one_delta() -> None:
    """One delta holding several blocks (a non-streamed litellm message read as a chunk): the
    items split the text into its signed blocks, and the text field is not added again."""
    first, second = "First thought.", "Second thought."
    delta = {
        "role": "assistant",
        "content": "".join(ANSWER),
        "reasoning_content": first + second,
        "thinking_blocks": [
            {"type": "thinking", "thinking": first, "signature": SIGNATURE},
            {"type": "redacted_thinking", "data": REDACTED},
            {"type": "thinking", "thinking": second, "signature": SIGNATURE_2},
        ],
    }
    expected = [
        thought(first, SIGNATURE),
        {"type": "redacted_thinking", "data": REDACTED},
        thought(second, SIGNATURE_2),
        TEXT_BLOCK,
    ]
    out, adapter = translate(chat(delta))
    assert sdk_content(out, adapter) == expected

    # The same message non-streamed (``chat.completion`` → Messages JSON, as the proxy does).
    completion = {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": CHAT_MODEL,
        "choices": [{"index": 0, "message": delta, "finish_reason": "stop"}],
    }
    assert messages_response(completion)["content"] == expected


def messages_response(completion: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed ``chat.completion`` as Messages JSON, as the proxy translates it."""
    response_parts = get_format("openai-chat").response_parts
    assert response_parts is not None
    content = Content()
    writer = get_format("anthropic-messages").writer(WriterOptions(), content)
    for part in response_parts(completion):
        if not isinstance(part, Done):
            content.add(part)
    return writer.response()


@pytest.mark.parametrize("finish", ["stop", None])
def test_non_streamed_reasoning_only(finish: str | None) -> None:
    """A non-streamed message with signed thinking and nothing after it: with no finish reason
    nothing ends the block, and the reader's end parts still carry its signature."""
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": THOUGHT.text,
        "thinking_blocks": [thought(THOUGHT.text, SIGNATURE)],
    }
    completion = {
        "id": CHAT_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": CHAT_MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    assert messages_response(completion)["content"] == [thought(THOUGHT.text, SIGNATURE)]


# -- where the block ends ---------------------------------------------------------------------


def test_signature_before_a_tool_call() -> None:
    """Thinking then a tool call: the signature closes the thinking block before the call's."""
    call = {
        "index": 0,
        "id": "call_Wx1a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    out, adapter = translate(chat(*litellm_thought(), {"tool_calls": [call]}, finish="tool_calls"))
    content = sdk_content(out, adapter)
    assert content[0] == thought(THOUGHT.text, SIGNATURE)
    assert content[1]["type"] == "tool_use"
    assert content[1]["input"] == {"city": "Oslo"}


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
def test_signature_before_the_finish(convention: str) -> None:
    """A reasoning-only turn: the finish chunk ends the block, signed."""
    out, adapter = translate(chat(*CONVENTIONS[convention]()))
    assert thinking_blocks(out) == [{**thought(THOUGHT.text, SIGNATURE), "signatures": 1}]
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE)]


def test_signature_and_content_in_one_chunk() -> None:
    """Signature and the first content in one delta: signature first, then the text block."""
    deltas = litellm_thought(None)
    deltas.append(
        {
            "content": ANSWER[0],
            "thinking_blocks": [{"type": "thinking", "thinking": "", "signature": SIGNATURE}],
        }
    )
    deltas.append({"content": ANSWER[1]})
    out, adapter = translate(chat(*deltas))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


def test_unsigned_thinking_stays_unsigned() -> None:
    """No signature known: no ``signature_delta`` (the block keeps its empty start value)."""
    out, adapter = translate(chat(*litellm_thought(None), *answer()))
    assert thinking_blocks(out)[0] == {**thought(THOUGHT.text, ""), "signatures": 0}
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, ""), TEXT_BLOCK]


@pytest.mark.parametrize("convention", sorted(CONVENTIONS))
@pytest.mark.parametrize("pieces", [0, 1])
def test_signature_before_done_without_finish(convention: str, pieces: int) -> None:
    """``[DONE]`` with no finish chunk: the held signature still closes the block (before the
    adapter's own ``end_turn``)."""
    body = [chunk({"role": "assistant", "content": ""})]
    body += [chunk(d) for d in CONVENTIONS[convention]()]
    body.append(b"data: [DONE]\n\n")
    out, adapter = translate(b"".join(body), pieces=pieces)
    assert thinking_blocks(out) == [{**thought(THOUGHT.text, SIGNATURE), "signatures": 1}]
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE)]
    assert final_message(out)["stop_reason"] == "end_turn"
    assert adapter.result.outcome == "complete"


def test_done_flushes_the_reader() -> None:
    """The reader's ``[DONE]``: its end parts, then ``Done``; nothing is owed twice."""
    reader = ChatReader()
    signed = {
        "reasoning_content": "hm",
        "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": SIGNATURE}],
    }
    reader.read_object({"id": CHAT_ID, "choices": [{"index": 0, "delta": signed}]})
    assert reader.read_data("[DONE]", None) == [ReasoningSignature(SIGNATURE, 0), Done()]
    assert reader.end() == []
    assert reader.read_data("[DONE]", None) == [Done()]


# -- leniency ---------------------------------------------------------------------------------


MALFORMED: list[Any] = [
    "not a list",
    {"type": "thinking", "signature": "in a dict, not a list"},
    7,
    [None, 1, "x", [], {"no": "type"}, {"type": 5}, {"type": ["thinking"]}, {"type": {}}],
    [{"type": "thinking", "thinking": 7, "signature": {"a": 1}}],
    [{"type": "thinking", "thinking": "", "signature": ""}],
    [{"type": "thinking", "signature": None, "signature_delta": 3}],
    [{"type": "reasoning.text", "text": None, "signature": ["sig"]}],
    [{"type": "redacted_thinking", "data": ""}, {"type": "reasoning.encrypted"}],
    [{"type": "reasoning.encrypted", "data": {"x": 1}}, {"type": "unknown", "data": "x"}],
]


@pytest.mark.parametrize("items", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
@pytest.mark.parametrize("key", ["thinking_blocks", "reasoning_details"])
def test_malformed_items_skipped(key: str, items: Any) -> None:
    """Malformed items and empty placeholders are skipped: the field's text, unsigned."""
    deltas = [{"reasoning_content": c, key: items} for c in THOUGHT.chunks]
    deltas.append({key: items})
    out, adapter = translate(chat(*deltas, *answer()))
    assert thinking_blocks(out)[0] == {**thought(THOUGHT.text, ""), "signatures": 0}
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, ""), TEXT_BLOCK]


def test_malformed_items_beside_good_ones() -> None:
    """A good item among malformed ones is still read."""
    deltas = litellm_thought(None)
    deltas.append(
        {
            "thinking_blocks": [
                None,
                {"type": 1},
                {"type": "thinking", "thinking": "", "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": None},
            ]
        }
    )
    out, adapter = translate(chat(*deltas, *answer()))
    assert sdk_content(out, adapter) == [thought(THOUGHT.text, SIGNATURE), TEXT_BLOCK]


# -- the reader's parts, per choice -----------------------------------------------------------


def test_held_signature_is_per_choice() -> None:
    """Choice 1's content does not end choice 0's reasoning; choice 0's content does."""
    reader = ChatReader()

    def read(c: int, delta: dict[str, Any], finish: str | None = None) -> list[Any]:
        obj = {"id": CHAT_ID, "choices": [{"index": c, "delta": delta, "finish_reason": finish}]}
        return [p for p in reader.read_object(obj) if not isinstance(p, StreamError)]

    read(0, {"role": "assistant"})
    signed = {
        "reasoning_content": "hm",
        "thinking_blocks": [{"type": "thinking", "thinking": "hm", "signature": SIGNATURE}],
    }
    assert read(0, signed)[-1] == ReasoningDelta("hm", 0)
    assert read(1, {"content": "other"}) == [TextDelta("other", 1)]
    assert read(0, {"content": "mine"}) == [ReasoningSignature(SIGNATURE, 0), TextDelta("mine", 0)]
    assert read(0, {"content": "more"}) == [TextDelta("more", 0)]
    # Held at the end of an unfinished stream: the reader's end parts carry it.
    read(1, signed)
    assert reader.end() == [ReasoningSignature(SIGNATURE, 1)]
    assert reader.end() == []


# -- Chat → Responses -------------------------------------------------------------------------


def test_chat_to_responses_splits_signed_segments() -> None:
    """The Responses writer has no field for Anthropic signatures or encrypted thinking (they are
    another provider's blobs) and emits neither; a signature still ends its reasoning item, so
    two signed blocks are two reasoning items, and the text is not doubled."""
    upstream = chat(
        *litellm_thought(SIGNATURE),
        {"thinking_blocks": [{"type": "redacted_thinking", "data": REDACTED}]},
        *openrouter_thought(SIGNATURE_2),
        *answer(),
    )
    out, _ = translate(upstream, "openai-responses")
    assert SIGNATURE.encode() not in out
    assert SIGNATURE_2.encode() not in out
    assert REDACTED.encode() not in out
    check_responses(out, terminal="response.completed", usage=False)  # (none upstream)
    with openai_client(out).responses.stream(model="gpt-5", input="hi") as stream:
        final = stream.get_final_response()
    reasoning = [item for item in final.output if item.type == "reasoning"]
    assert len(reasoning) == 2
    for item in reasoning:
        assert [s.text for s in item.summary] == [THOUGHT.text]
        assert item.encrypted_content is None
    assert final.output_text == "".join(ANSWER)
