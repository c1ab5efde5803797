"""Fixtures of the reliability suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from tests.reliability._support import LOGGER
from tests.servers import ServerFactory, server_pool


@pytest.fixture
def servers() -> Iterator[ServerFactory]:
    """Start uvicorn servers on demand; stop them all at teardown."""
    with server_pool() as start:
        yield start


@pytest.fixture
def quiet(caplog: pytest.LogCaptureFixture) -> None:
    """Sweeps log one warning or exception per case: keep those records out of the run
    (formatting thousands of tracebacks would dominate the runtime)."""
    caplog.set_level(logging.CRITICAL + 1, LOGGER)
    caplog.set_level(logging.CRITICAL + 1, "uvicorn.error")
