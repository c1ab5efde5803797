"""The package's exceptions.

::

    SSEAdapterError                 base of everything this package raises on purpose
     ├── EventTooLarge              one event exceeded ``max_event_size`` (codec)
     └── UnknownFormat              a format identifier that is not registered (also a ValueError)
"""

from __future__ import annotations

__all__ = ["EventTooLarge", "SSEAdapterError", "UnknownFormat"]


class SSEAdapterError(Exception):
    """Base class of every exception ``asgi_sse_adapter`` raises deliberately."""


class EventTooLarge(SSEAdapterError):
    """An event grew past the configured ``max_event_size``.

    ``complete`` holds what the same ``feed`` call had already completed before the oversized
    event (decoded events for ``SSEDecoder``, raw blocks for ``SSEFramer``), so a caller can
    forward them before ending the stream: nothing that was whole is lost.
    """

    def __init__(self, limit: int, complete: list[object] | None = None) -> None:
        super().__init__(f"event larger than the {limit}-byte limit")
        self.limit = limit
        self.complete: list[object] = complete if complete is not None else []


class UnknownFormat(SSEAdapterError, ValueError):
    """A wire-format identifier that no registered format answers to."""
