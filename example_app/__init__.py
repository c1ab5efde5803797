"""Runnable examples and the demo for asgi_sse_adapter."""
