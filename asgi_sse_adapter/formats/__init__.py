"""The format registry: string identifiers (public API) → ``Format``.

Adding a format means one module under ``formats/`` and one line in ``_MODULES``.
"""

from __future__ import annotations

from importlib import import_module

from ..errors import UnknownFormat
from .base import Format

__all__ = ["FORMATS", "get_format"]

_MODULES = {
    "openai-chat": "openai_chat",
    "openai-text": "openai_text",
    "openai-responses": "openai_responses",
    "anthropic-messages": "anthropic_messages",
    "anthropic-text": "anthropic_text",
}

FORMATS: tuple[str, ...] = tuple(_MODULES)
"""Every supported format identifier."""

_cache: dict[str, Format] = {}


def get_format(name: str) -> Format:
    """The registered format called ``name``; ``UnknownFormat`` (a ``ValueError``) otherwise."""
    fmt = _cache.get(name)
    if fmt is not None:
        return fmt
    module = _MODULES.get(name)
    if module is None:
        raise UnknownFormat(f"unknown format {name!r}; expected one of: {', '.join(FORMATS)}")
    fmt = import_module(f"{__name__}.{module}").FORMAT
    assert isinstance(fmt, Format)
    _cache[name] = fmt
    return fmt
