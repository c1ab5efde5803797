"""asgi_sse_adapter: make LLM Server-Sent Event streams behave.

Re-chunks ``text/event-stream`` responses on event boundaries, translates them between LLM wire
formats, injects heartbeats while a stream is silent and ends a failed stream the way the client's
protocol expects. Ways in: ``SSEAdapterMiddleware`` (ASGI middleware), ``UpstreamProxy`` (an ASGI
app forwarding to an upstream with httpx) and ``StreamAdapter`` (sans-IO, bytes in, bytes out);
``translate_request`` translates request bodies for a gateway of one's own.
"""

from .adapter import StreamAdapter, StreamResult
from .errors import EventTooLarge, SSEAdapterError, UnknownFormat
from .formats import FORMATS
from .middleware import SSEAdapterMiddleware
from .parts import Usage
from .proxy import UpstreamProxy
from .requests import RequestTranslationError, TranslatedRequest, translate_request
from .session import StreamReport
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
    "FORMATS",
    "EventTooLarge",
    "RequestTranslationError",
    "SSEAdapterError",
    "SSEAdapterMiddleware",
    "SSEDecoder",
    "SSEFramer",
    "ServerSentEvent",
    "StreamAdapter",
    "StreamReport",
    "StreamResult",
    "TranslatedRequest",
    "UnknownFormat",
    "UpstreamProxy",
    "Usage",
    "encode_comment",
    "encode_event",
    "translate_request",
]

__version__ = "0.1.0"
