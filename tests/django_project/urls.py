"""URLs of the test Django project (``asgi.select`` maps each path to a format pair)."""

from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("v1/chat/completions", views.messages_stream),
    path("v1/messages", views.messages_stream),
    path("openai/v1/chat/completions", views.chat_stream),
    path("openai/v1/messages", views.chat_stream),
    path("gzip/v1/chat/completions", views.gzipped_messages_stream),
    path("json", views.json_view),
]
