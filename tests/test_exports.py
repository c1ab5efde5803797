"""The public surface changes only on purpose."""

from __future__ import annotations

import asgi_sse_adapter


def test_exported_names() -> None:
    """``__all__`` is exactly the documented public API, and every name resolves."""
    expected = {
        "DEFAULT_MAX_EVENT_SIZE",
        "FORMATS",
        "SSEAdapterMiddleware",
        "StreamAdapter",
        "StreamReport",
        "StreamResult",
        "UpstreamProxy",
        "Usage",
        "EventTooLarge",
        "SSEAdapterError",
        "SSEDecoder",
        "SSEFramer",
        "ServerSentEvent",
        "UnknownFormat",
        "encode_comment",
        "encode_event",
        "translate_request",
        "TranslatedRequest",
        "RequestTranslationError",
    }
    assert set(asgi_sse_adapter.__all__) == expected
    for name in expected:
        assert getattr(asgi_sse_adapter, name) is not None


def test_error_hierarchy() -> None:
    """Every deliberate error derives from the package's base exception."""
    assert issubclass(asgi_sse_adapter.EventTooLarge, asgi_sse_adapter.SSEAdapterError)
    assert issubclass(asgi_sse_adapter.UnknownFormat, asgi_sse_adapter.SSEAdapterError)
    assert issubclass(asgi_sse_adapter.UnknownFormat, ValueError)
    assert issubclass(asgi_sse_adapter.RequestTranslationError, asgi_sse_adapter.SSEAdapterError)
