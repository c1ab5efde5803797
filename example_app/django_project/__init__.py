"""A small Django project behind ``SSEAdapterMiddleware``, with an ``UpstreamProxy`` beside it.

``views.chat_completions`` is an async view streaming Anthropic Messages; ``asgi.py`` wraps
Django in the middleware (so clients of ``/v1/chat/completions`` get OpenAI Chat) and mounts a
gateway to an LLM upstream under ``/gateway/`` in the same ASGI application::

    python -m example_app.fake_upstream --port 8081 &     # the gateway's upstream
    uvicorn example_app.django_project.asgi:application --port 8000

    OpenAI(base_url="http://127.0.0.1:8000/v1")            # Django's view, translated
    OpenAI(base_url="http://127.0.0.1:8000/gateway/v1")    # the gateway, to the upstream
    Anthropic(base_url="http://127.0.0.1:8000/gateway")
"""
