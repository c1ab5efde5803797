"""``python -m asgi_sse_adapter``: the command-line gateway."""

from .cli import main

main()
