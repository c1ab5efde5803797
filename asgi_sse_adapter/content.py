"""What a canonical stream has said so far, accumulated incrementally.

Each format renders its non-streamed response object from a ``Content`` (formats.md §11), so the
final response is built without keeping any event. Segments keep the order in which text,
reasoning and tool calls appeared, which Anthropic's ``content`` list and Responses' ``output``
list need; OpenAI Chat concatenates them per kind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .parts import (
    ArgumentsRun,
    Extension,
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
    TextRun,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageUpdate,
)

__all__ = ["ChoiceContent", "Content", "Segment"]

_NO_USAGE = Usage()

SegmentKind = Literal["text", "reasoning", "redacted_reasoning", "refusal", "tool_call"]


# Fragments joined into one string every so many: a stream's text then costs about a byte a
# character, not an object a token (a 10,000-token answer held 1.2 MB, now about its 0.1 MB of
# text), and each character is copied once more, not once per join of everything.
_PACK = 256


@dataclass(slots=True)
class Segment:
    """One run of same-kind output: a text run, a reasoning block, one tool call…"""

    kind: SegmentKind
    fragments: list[str] = field(default_factory=list)
    signature: str | None = None
    tool_index: int = -1
    tool_id: str | None = None
    tool_name: str = ""
    closed: bool = False
    data: Any = None
    pack_at: int = _PACK
    """How many fragments trigger ``pack`` (the last ``_PACK`` of them are not packed yet)."""

    @property
    def text(self) -> str:
        """The segment's text (or tool arguments) so far."""
        if len(self.fragments) > 1:
            self.fragments[:] = ["".join(self.fragments)]
            self.pack_at = 1 + _PACK
        return self.fragments[0] if self.fragments else ""

    def add(self, text: str) -> None:
        """Append a fragment."""
        fragments = self.fragments
        fragments.append(text)
        if len(fragments) >= self.pack_at:
            self.pack()

    def extend(self, texts: list[str]) -> None:
        """Append fragments."""
        fragments = self.fragments
        fragments.extend(texts)
        if len(fragments) >= self.pack_at:
            self.pack()

    def pack(self) -> None:
        """Join the fragments added since the last pack into one."""
        fragments = self.fragments
        start = self.pack_at - _PACK
        fragments[start:] = ["".join(fragments[start:])]
        self.pack_at = start + 1 + _PACK


@dataclass(slots=True)
class ChoiceContent:
    """Everything one choice produced."""

    index: int
    segments: list[Segment] = field(default_factory=list)
    tools: dict[int, Segment] = field(default_factory=dict)
    extensions: list[tuple[str, Any]] = field(default_factory=list)
    finish_reason: FinishReason | None = None
    stop_sequence: str | None = None

    def _last(self, kind: SegmentKind) -> Segment:
        segs = self.segments
        if segs and segs[-1].kind == kind and not segs[-1].closed:
            return segs[-1]
        seg = Segment(kind)
        segs.append(seg)
        return seg

    def text_of(self, kind: SegmentKind) -> str | None:
        """All text of one kind concatenated, ``None`` if there was none."""
        parts = [s.text for s in self.segments if s.kind == kind]
        return "".join(parts) if parts else None

    @property
    def tool_calls(self) -> list[Segment]:
        """Tool-call segments in index order."""
        return [self.tools[i] for i in sorted(self.tools)]


@dataclass(slots=True)
class Content:
    """The accumulated stream: identity, usage, per-choice output, and how it ended."""

    id: str | None = None
    model: str | None = None
    created: int | None = None
    usage: Usage = _NO_USAGE  # immutable, so shared (a frozen dataclass is slow to make)
    usage_reported: bool = False
    choices: dict[int, ChoiceContent] = field(default_factory=dict)
    error: StreamError | None = None
    done: bool = False

    def choice(self, index: int) -> ChoiceContent:
        """The choice with this index, created on first use."""
        c = self.choices.get(index)
        if c is None:
            c = self.choices[index] = ChoiceContent(index)
        return c

    @property
    def finished(self) -> bool:
        """Whether every choice seen so far has a finish reason (and at least one exists)."""
        return bool(self.choices) and all(c.finish_reason for c in self.choices.values())

    def add_text(self, text: str, choice: int = 0) -> None:
        """Fold in one text delta (``add(TextDelta(text, choice))``)."""
        # Most of a stream: the text run goes on (``choice(...)._last("text")``, inlined).
        c = self.choices.get(choice)
        if c is not None and c.segments:
            seg = c.segments[-1]
            if seg.kind == "text" and not seg.closed:
                # ``seg.add(text)``, inlined.
                fragments = seg.fragments
                fragments.append(text)
                if len(fragments) >= seg.pack_at:
                    seg.pack()
                return
        self.choice(choice)._last("text").add(text)

    def add(self, part: Part) -> None:
        """Fold one part in."""
        if isinstance(part, TextDelta):
            self.add_text(part.text, part.choice)
        elif isinstance(part, TextRun):
            self.choice(part.choice)._last("text").extend(part.texts)
        elif isinstance(part, ReasoningDelta):
            c = self.choice(part.choice)
            seg = c._last("reasoning")
            if seg.signature is not None:
                seg.closed = True
                seg = c._last("reasoning")
            seg.add(part.text)
        elif isinstance(part, ToolCallDelta):
            call = self.choice(part.choice).tools.get(part.index)
            if call is not None:
                call.add(part.arguments)
        elif isinstance(part, ArgumentsRun):
            call = self.choice(part.choice).tools.get(part.index)
            if call is not None:
                call.extend(part.fragments)
        elif isinstance(part, ToolCallStart):
            c = self.choice(part.choice)
            seg = Segment("tool_call", tool_index=part.index, tool_id=part.id, tool_name=part.name)
            c.segments.append(seg)
            c.tools[part.index] = seg
        elif isinstance(part, ToolCallEnd):
            call = self.choice(part.choice).tools.get(part.index)
            if call is not None:
                call.closed = True
        elif isinstance(part, ReasoningSignature):
            self.choice(part.choice)._last("reasoning").signature = part.signature
        elif isinstance(part, RedactedReasoning):
            self.choice(part.choice).segments.append(
                Segment("redacted_reasoning", data=part.data, closed=True)
            )
        elif isinstance(part, RefusalDelta):
            self.choice(part.choice)._last("refusal").add(part.text)
        elif isinstance(part, UsageUpdate):
            self.usage = self.usage.updated(part.usage)
            self.usage_reported = True
        elif isinstance(part, Finish):
            c = self.choice(part.choice)
            c.finish_reason = part.reason
            c.stop_sequence = part.stop_sequence
        elif isinstance(part, MessageStart):
            self.id = part.id if part.id is not None else self.id
            self.model = part.model if part.model is not None else self.model
            self.created = part.created if part.created is not None else self.created
            if part.usage is not None:
                self.usage = self.usage.updated(part.usage)
                self.usage_reported = True
        elif isinstance(part, StreamError):
            self.error = part
        elif isinstance(part, Extension):
            # Kept beside the segments: an extension must not split a text run in two.
            self.choice(part.choice).extensions.append((part.name, part.data))
