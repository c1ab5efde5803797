"""Settings of the example Django project: an API-only project with no database.

There are no sessions or cookies, so no CSRF middleware: the API is meant for programmatic
clients (put your token authentication where ``MIDDLEWARE`` is).
"""

from __future__ import annotations

SECRET_KEY = "example-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ROOT_URLCONF = "example_app.django_project.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
APPEND_SLASH = False  # "/v1/chat/completions" is an API path, not a page
