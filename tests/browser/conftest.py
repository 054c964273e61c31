"""Browser fixtures: Debian's Chromium driven by Playwright, pages from localhost.

WebGPU and WebGL2 run on SwiftShader here. The server is build.py's, with the
cross-origin isolation headers that wasm threads need.
"""

import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from build import CHROMIUM_FLAGS  # noqa: E402 (after the path insert)


@pytest.fixture(scope="session")
def repo_server():
    import build
    server, url = build.serve_in_thread(ROOT)
    yield url
    server.shutdown()


@pytest.fixture(scope="session")
def browser():
    playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed (apt-get install -y chromium); "
                    "python build.py test installs it")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.messages = []
    page.on("console", lambda message: page.messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.messages.append(f"pageerror: {error}"))
    yield page
    context.close()
