"""The demo page in a real browser: headless Chromium driven by Playwright.

The page POSTs to the gateway and reads the answer with ``fetch()`` and its own SSE parser; these
tests check what a person sees: text that grows while the stream arrives, heartbeat ticks, tool
calls, and the error message when the upstream fails midway. They use the system's Chromium
(Debian's ``chromium`` package; ``$CHROMIUM`` overrides the path) and Playwright's Python package,
never a browser Playwright downloads, and are skipped when either is missing. Screenshots of the
page mid-stream and after an error are saved under pytest's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from example_app.demo import build_app
from example_app.fake_upstream import SCRIPTS, FakeUpstream
from tests.servers import serve

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


CHROMIUM = _chromium()
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium"),
    pytest.mark.skipif(sync_playwright is None, reason="no playwright: pip install playwright"),
]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEARTBEAT = 0.5
"""The gateway's heartbeat interval in these tests (seconds)."""
TEXT = SCRIPTS["text"].text
DONE_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    """The demo app (page + gateway) in front of a fake upstream, both under uvicorn."""
    with serve(FakeUpstream()) as upstream_url:
        app = build_app(upstream_url, heartbeat_interval=HEARTBEAT)
        with serve(app) as url:
            yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, demo_url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(demo_url + "/")
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo-screenshots")


def choose(page: Page, *, client: str, scenario: str, pace: float, delay: float) -> None:
    page.select_option("#format", client)
    page.select_option("#scenario", scenario)
    page.fill("#pace", str(pace))
    page.fill("#delay", str(delay))


def wait_done(page: Page) -> str:
    """Wait until the stream is over; return the status badge's state."""
    page.wait_for_selector(
        "#status[data-state=done], #status[data-state=failed]", timeout=DONE_TIMEOUT_MS
    )
    return str(page.get_attribute("#status", "data-state"))


def test_text_appears_incrementally(page: Page, screenshots: Path) -> None:
    choose(page, client="openai-chat", scenario="text", pace=0.25, delay=0)
    page.click("#send")
    lengths: list[int] = []
    deadline = time.monotonic() + DONE_TIMEOUT_MS / 1000
    shot = False
    while page.get_attribute("#status", "data-state") == "streaming":
        assert time.monotonic() < deadline, "the stream did not finish"
        lengths.append(len(page.inner_text("#output")))
        if not shot and lengths[-1] > len(TEXT) // 3:
            page.screenshot(path=str(screenshots / "mid-stream.png"), full_page=True)
            shot = True
        time.sleep(0.05)
    assert wait_done(page) == "done"
    assert page.inner_text("#output") == TEXT
    intermediate = sorted({n for n in lengths if 0 < n < len(TEXT)})
    assert len(intermediate) >= 3, f"the text did not grow step by step: {lengths}"
    assert lengths == sorted(lengths)  # it only ever grows
    assert shot
    assert page.inner_text("#status") == "done (stop)"


def test_fail_midway_shows_the_error(page: Page, screenshots: Path) -> None:
    choose(page, client="openai-chat", scenario="text", pace=0.05, delay=0)
    page.select_option("#fault", "error-after")
    page.click("#fail")
    page.wait_for_selector("#error:not([hidden])", timeout=DONE_TIMEOUT_MS)
    assert wait_done(page) == "failed"
    page.screenshot(path=str(screenshots / "after-error.png"), full_page=True)
    assert "Overloaded" in page.inner_text("#error")
    shown = page.inner_text("#output")
    assert 0 < len(shown) < len(TEXT)
    assert TEXT.startswith(shown)
    assert "data: [DONE]" in page.inner_text("#log")  # the OpenAI error tail


def test_dropped_connection_shows_the_error(page: Page) -> None:
    choose(page, client="anthropic-messages", scenario="text", pace=0, delay=0)
    page.select_option("#fault", "fail-after")
    page.click("#fail")
    assert wait_done(page) == "failed"
    assert "upstream stream failed" in page.inner_text("#error")
    assert TEXT.startswith(page.inner_text("#output"))


def test_heartbeats_tick_while_the_upstream_is_silent(page: Page) -> None:
    choose(page, client="openai-responses", scenario="text", pace=0, delay=1.3)
    page.click("#send")
    assert wait_done(page) == "done"
    ticks = page.locator("#heartbeats .tick").count()
    assert ticks >= 2, "expected a heartbeat every 0.5 s of the 1.3 s silence"
    assert page.locator("#log .comment").count() == ticks
    assert page.inner_text("#output") == TEXT


@pytest.mark.parametrize(
    "client",
    ["openai-chat", "anthropic-messages", "openai-responses", "openai-text", "anthropic-text"],
)
def test_every_client_format_renders_the_answer(page: Page, client: str) -> None:
    choose(page, client=client, scenario="text", pace=0, delay=0)
    page.click("#send")
    assert wait_done(page) == "done"
    assert page.inner_text("#output") == TEXT


@pytest.mark.parametrize("client", ["openai-chat", "anthropic-messages", "openai-responses"])
def test_tool_calls_and_reasoning_render(page: Page, client: str) -> None:
    choose(page, client=client, scenario="tools", pace=0, delay=0)
    page.click("#send")
    assert wait_done(page) == "done"
    tools = SCRIPTS["tools"]
    assert page.inner_text("#output") == tools.text
    names = page.locator("#tools .tool .name").all_inner_texts()
    args = page.locator("#tools .tool .args").all_inner_texts()
    assert names == [call.name for call in tools.tool_calls]
    assert args == [call.arguments for call in tools.tool_calls]

    choose(page, client=client, scenario="thinking", pace=0, delay=0)
    page.click("#send")
    assert wait_done(page) == "done"
    assert page.inner_text("#output") == SCRIPTS["thinking"].text
    assert page.is_visible("#reasoning-box")
    assert page.inner_text("#reasoning") == SCRIPTS["thinking"].thinking
