"""asgi_sse_adapter: make LLM Server-Sent Event streams behave.

Re-chunks ``text/event-stream`` responses on event boundaries, translates them between LLM wire
formats, injects heartbeats while a stream is silent and ends a failed stream the way the client's
protocol expects. See the README for the ways in.
"""

from .errors import EventTooLarge, SSEAdapterError, UnknownFormat
from .sse import (
    DEFAULT_MAX_EVENT_SIZE,
    ServerSentEvent,
    SSEDecoder,
    SSEFramer,
    encode_comment,
    encode_event,
)

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "EventTooLarge",
    "SSEAdapterError",
    "SSEDecoder",
    "SSEFramer",
    "ServerSentEvent",
    "UnknownFormat",
    "encode_comment",
    "encode_event",
]

__version__ = "0.1.0"
