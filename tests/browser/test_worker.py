"""The worker and the page's scripting entry: staged boot, python(code), errors, backends.

``?backend=none`` boots Python without kernels (fast: no wasm or GPU start-up);
each kernel backend is booted once per module, and its tests skip until
worker/backends/<name>.js exists.
"""

import pytest

from .pages import KERNEL_BACKENDS, open_page, python, python_error, require_backend, site  # noqa: F401


@pytest.fixture(scope="module")
def plain_page(browser, site):  # noqa: F811
    page, info = open_page(browser, site, "none")
    yield page, info
    page.context.close()


@pytest.fixture(scope="module", params=KERNEL_BACKENDS)
def kernel_page(request, browser, site):  # noqa: F811
    page, info = open_page(browser, site, request.param)
    yield request.param, page, info
    page.context.close()


def test_boot_reports_stages_in_order_and_versions(plain_page):
    page, info = plain_page
    assert info["backend"] is None and info["fallback"] is False
    assert info["versions"]["pyodide"] == "314.0.7"
    assert info["versions"]["python"].startswith("3.14")
    assert info["versions"]["neuroscope"] == python(page, "import neuroscope; neuroscope.__version__")
    stages = [event["stage"] for event in page.evaluate("window.neuroscope.progress")
              if event["stage"] != "download"]
    assert stages == ["runtime", "package", "kernels", "ready"]
    assert page.inner_text("#status").startswith("Ready")


def test_python_returns_the_last_expression(plain_page):
    page, _ = plain_page
    assert python(page, "1+1") == 2
    assert python(page, "x = 40\nx + 2") == 42
    assert python(page, "x") == 40  # one namespace across calls
    assert python(page, "{'a': (1, 2.5), 3: None, 'b': [True, 'é🙂']}") == {"a": [1, 2.5], "3": None,
                                                                             "b": [True, "é🙂"]}
    assert python(page, "import asyncio\nawait asyncio.sleep(0)\n'awaited'") == "awaited"
    assert python(page, "object()").startswith("<object object")  # not JSON-able: its repr


def test_values_enter_python_as_globals_not_source(plain_page):
    page, _ = plain_page
    tricky = "\"'); raise SystemExit('pasted') #\n"
    assert python(page, "len(text), text == expected", text=tricky, expected=tricky) == [len(tricky), True]
    assert python(page, "[type(v).__name__ for v in (n, f, items, mapping, nothing)]", n=3, f=0.5,
                  items=[1, None], mapping={"k": "v"}, nothing=None) == ["int", "float", "list", "dict",
                                                                         "NoneType"]
    assert python(page, "items[1] is None") is True
    typed = page.evaluate("""() => window.neuroscope.python("type(a).__name__, a.format, a.tolist()",
                                                             {a: new Float32Array([1.5, -2])})""")
    assert typed == ["memoryview", "f", [1.5, -2.0]]


def test_python_exceptions_carry_type_and_message(plain_page):
    page, _ = plain_page
    error = python_error(page, "from neuroscope import UnknownHookError\n"
                               "raise UnknownHookError('blocks.9.hook_x', ['blocks.0.hook_resid_pre'])")
    assert error["pyType"] == error["name"] == "UnknownHookError"
    assert error["message"] == ("no hook point named 'blocks.9.hook_x'; closest valid names: "
                                "blocks.0.hook_resid_pre")
    assert 'File "<neuroscope>", line 2' in error["traceback"]
    syntax = python_error(page, "def broken(:")
    assert syntax["pyType"] == "SyntaxError" and "neuroscope_session" not in syntax["traceback"]
    assert python(page, "'still usable'") == "still usable"


def test_unknown_backend_rejects_ready(browser, site):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site.url}/web/index.html?backend=quantum&lens=off")
        message = page.evaluate("window.neuroscope.ready.then(() => 'resolved', (e) => e.message)")
        assert "unknown backend" in message and "quantum" in message
        page.wait_for_function("document.querySelector('#status').textContent.includes('failed')")
    finally:
        context.close()


def test_forced_backend_boots_and_runs_tensors(kernel_page):
    backend, page, info = kernel_page
    assert info["backend"] == backend
    assert isinstance(info["fallback"], bool)
    assert python(page, "import neuroscope; neuroscope.get_backend().name") == backend
    code = ("import neuroscope\n"
            "t = neuroscope.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])\n"
            "s = (t * 2).sum(axis=1)\n"
            "s")
    assert python(page, code) == {"shape": [2], "dtype": "float32", "data": [12.0, 30.0]}
    assert python(page, "s.tolist(), (t > 2).tolist(), t.argmax(axis=1).tolist()") == [
        [12.0, 30.0], [[False, False, True], [True, True, True]], [2, 2]]
    assert python(page, "await s.tolist_async()") == [12.0, 30.0]  # the path without JSPI
    assert python(page, "neuroscope.arange(3)")["data"] == [0, 1, 2]


def test_software_adapter_is_not_preferred_over_cpu(browser, site):  # noqa: F811
    """No ?backend: the best available, never a software GPU while the CPU path loads.
    Here WebGPU and WebGL2 run on SwiftShader, so the choice is cpu."""
    require_backend("cpu")
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(f"{site.url}/web/index.html?lens=off")
        info = page.evaluate("window.neuroscope.ready")
        software_webgpu = page.evaluate("""async () => {
            const adapter = await navigator.gpu?.requestAdapter();
            return !adapter || !!(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter); }""")
        assert info["fallback"] is False, info
        assert info["backend"] in KERNEL_BACKENDS
        if software_webgpu:
            assert info["backend"] != "webgpu"
    finally:
        context.close()


def test_tolist_async_on_a_host_backend_reads_synchronously():
    import neuroscope
    values = neuroscope.tensor([[1.5, 2.0], [3.0, 4.0]])
    coroutine = values.tolist_async()
    # Completes at the first step: numpy reads synchronously. (asyncio.run cannot be used
    # here: Playwright's sync API keeps an event loop running in this thread.)
    with pytest.raises(StopIteration) as finished:
        coroutine.send(None)
    assert finished.value.value == values.tolist() == [[1.5, 2.0], [3.0, 4.0]]
