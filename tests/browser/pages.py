"""The built site, served from localhost, and pages booted on it (shared by the browser tests).

``site`` builds dist/ into a temporary folder (``build.py build --out``) once per
session and serves it with build.py's server; files a test needs on the same
origin (models, tokenizer.json) are copied under ``site.root`` (same origin, so
COEP/CORP let the worker fetch them). ``open_page`` boots web/index.html with a
forced backend and waits for ``window.neuroscope.ready``.

Imported by the test modules: ``from .pages import open_page, site`` (and ``kernel_page``,
the fixture ``page`` on each kernel backend).
"""

import os
import shutil
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KERNEL_BACKENDS = ["cpu", "webgpu", "webgl"]
BOOT_TIMEOUT_MS = 120_000


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    import build
    root = build.command_build(str(tmp_path_factory.mktemp("site") / "dist"))
    server, url = build.serve_in_thread(root)
    yield types.SimpleNamespace(root=root, url=url, add=lambda source, name: _add(root, source, name))
    server.shutdown()
    server.server_close()


def _add(root, source, name):
    """Copy a file or folder under the site; returns its path relative to the site root."""
    target = os.path.join(root, name)
    if not os.path.exists(target):
        os.makedirs(os.path.dirname(target), exist_ok=True)
        (shutil.copytree if os.path.isdir(source) else shutil.copy2)(source, target)
    return name


def require_backend(backend):
    """Skip (with the reason) when a kernel backend has not been written yet."""
    if backend != "none" and not os.path.exists(os.path.join(ROOT, "worker", "backends", f"{backend}.js")):
        pytest.skip(f"worker/backends/{backend}.js does not exist yet (kernels for issue 3 item 3)")


def new_page(context):
    """A page in ``context`` that records console messages and page errors in ``page.messages``."""
    page = context.new_page()
    page.messages = []
    page.on("console", lambda message: page.messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: page.messages.append(f"pageerror: {error}"))
    page.set_default_timeout(BOOT_TIMEOUT_MS)
    return page


def open_page(browser, site, backend, context=None):
    """A page at web/index.html?backend=..., booted, in a fresh context unless ``context`` is
    given (its storage, e.g. IndexedDB, is then shared); returns (page, ready info)."""
    require_backend(backend)
    page = new_page(context or browser.new_context())
    page.goto(f"{site.url}/web/index.html?backend={backend}&lens=off")
    try:
        info = page.evaluate("window.neuroscope.ready")
    except Exception as error:
        page.context.close()
        raise AssertionError(f"boot with backend={backend} failed: {error}\n" + "\n".join(page.messages)) from None
    return page, info


@pytest.fixture(scope="module", params=KERNEL_BACKENDS, name="page")
def kernel_page(request, browser, site):
    """``page``: a booted page on each kernel backend in turn (one per module and backend)."""
    page, info = open_page(browser, site, request.param)
    assert info["backend"] == request.param
    yield page
    page.context.close()


# Runs Python in the page; errors come back as a dict instead of raising in Playwright.
PYTHON = """async ([code, globals]) => {
  try {
    return {ok: true, value: await window.neuroscope.python(code, globals)};
  } catch (error) {
    return {ok: false, name: error.name, pyType: error.pyType, message: error.message,
            traceback: error.traceback};
  }
}"""


def python(page, code, **globals_):
    """The value of ``code``'s last expression in the page; AssertionError with the traceback."""
    reply = page.evaluate(PYTHON, [code, globals_])
    if not reply["ok"]:
        raise AssertionError(f"{reply['pyType'] or reply['name']}: {reply['message']}\n{reply['traceback']}")
    return reply["value"]


def python_error(page, code, **globals_):
    """The error ``code`` raises in the page, as {name, pyType, message, traceback}."""
    reply = page.evaluate(PYTHON, [code, globals_])
    assert not reply["ok"], f"expected an exception, got {reply['value']!r}"
    return reply
