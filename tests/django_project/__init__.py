"""A minimal real Django project whose async views stream Anthropic Messages SSE.

``asgi.py`` wraps Django's ``get_asgi_application()`` in ``SSEAdapterMiddleware`` the documented
way (Django deployment docs, "Applying ASGI middleware"). Tests import ``asgi`` after pointing
``DJANGO_SETTINGS_MODULE`` at ``tests.django_project.settings``.
"""
