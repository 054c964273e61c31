"""The offline app (PWA): manifest and icons, the precache list build.py writes, and the
service worker in a real browser.

After one visit, with the server gone AND the browser offline, a reload boots Pyodide with
the CPU (onnxruntime-web) kernels, cross-origin isolated, and the worker's fetches are
answered by the service worker: precached files, and files fetched once at runtime. A new
build replaces the precache, downloading only the files that changed.

Each browser test serves the built site on an origin of its own (a server it can stop), so
its service worker and caches touch no other test.
"""

import functools
import hashlib
import http.server
import json
import os
import re
import shutil
import struct
import threading
import types
import xml.etree.ElementTree as ElementTree
import zlib

import pytest

from .pages import ROOT, new_page, python, site  # noqa: F401 (fixture)

REGISTER = """async () => {
  const pwa = await import("/web/pwa.js");
  window.pwa = pwa;
  const registration = await pwa.registerServiceWorker({onUpdate: () => { window.updateWaiting = true; }});
  await navigator.serviceWorker.ready;
  await pwa.whenControlled();
  return {scope: registration.scope, script: navigator.serviceWorker.controller.scriptURL,
          caches: await caches.keys()};
}"""
DEMO_FILES = ("config.json", "model.safetensors", "tokenizer.json")


def _serve(root):
    """build.py's static server on a port of its own, recording each path asked for. Its
    responses say Cache-Control: no-cache, so that offline the browser's HTTP cache cannot
    answer in the service worker's place (it must revalidate, and the server is gone)."""
    import build
    asked = []

    class Recording(build.StaticHandler):
        def send_head(self):
            asked.append(self.path.split("?")[0])
            return super().send_head()

        def end_headers(self):
            self.send_header("Cache-Control", "no-cache")
            super().end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Recording, directory=root))
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop():
        server.shutdown()
        server.server_close()  # connections are now refused: the network is really gone
    return types.SimpleNamespace(url=f"http://localhost:{server.server_address[1]}", asked=asked, stop=stop)


def _precache(root):
    with open(os.path.join(root, "precache.json"), encoding="utf-8") as handle:
        return json.load(handle)


# -- the files --------------------------------------------------------------------------
def _png_size(data):
    """(width, height) of a PNG, after checking its signature, chunk CRCs and pixel data."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    offset, chunks = 8, {}
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in the {kind!r} chunk"
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    assert list(chunks)[0] == b"IHDR" and b"IEND" in chunks
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    assert depth == 8 and interlace == 0
    assert len(zlib.decompress(chunks[b"IDAT"])) == height * (1 + width * channels)
    return width, height


def test_manifest_names_the_app_and_real_icons(site):  # noqa: F811
    path = os.path.join(site.root, "web", "manifest.webmanifest")
    with open(path, encoding="utf-8") as handle:
        manifest = json.load(handle)
    assert manifest["name"] == "NeuroScope" and manifest["display"] == "standalone"
    for field in ("short_name", "start_url", "scope", "theme_color", "background_color"):
        assert manifest[field], field
    base = "http://localhost/web/manifest.webmanifest"
    from urllib.parse import urljoin
    assert urljoin(base, manifest["start_url"]) == "http://localhost/web/index.html"
    assert urljoin(base, manifest["scope"]) == "http://localhost/"
    sizes = {}
    for icon in manifest["icons"]:
        with open(os.path.join(site.root, "web", icon["src"]), "rb") as handle:
            data = handle.read()
        if icon["type"] == "image/png":
            width, height = _png_size(data)
            assert icon["sizes"] == f"{width}x{height}"
            sizes[width] = icon["src"]
        else:
            assert icon["type"] == "image/svg+xml" and icon["sizes"] == "any"
            svg = ElementTree.fromstring(data)
            assert svg.tag == "{http://www.w3.org/2000/svg}svg" and svg.get("viewBox") == "0 0 512 512"
    assert sorted(sizes) == [192, 512]
    with open(os.path.join(ROOT, "web", "index.html"), encoding="utf-8") as handle:
        assert re.search(r'<link rel="manifest" href="(\./)?manifest\.webmanifest">', handle.read())


def test_the_icons_are_what_make_icons_writes():
    import importlib.util
    spec = importlib.util.spec_from_file_location("make_icons", os.path.join(ROOT, "web", "icons", "make_icons.py"))
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)
    for name, data in make_icons.files().items():
        with open(os.path.join(ROOT, "web", "icons", name), "rb") as handle:
            assert handle.read() == data, f"web/icons/{name} differs: run python web/icons/make_icons.py"


def test_the_precache_lists_every_file_of_the_app_with_its_hash(site):  # noqa: F811
    import build
    precache = _precache(site.root)
    listed = {entry["url"]: entry for entry in precache["files"]}
    for url, entry in listed.items():
        with open(os.path.join(site.root, url), "rb") as handle:
            data = handle.read()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"]), url
    required = {"index.html", "build.json", "py/neuroscope.zip", "web/index.html", "web/manifest.webmanifest",
                "web/share.js", "web/pwa.js", "web/icons/icon-192.png", "web/icons/icon-512.png",
                "web/icons/icon.svg"}
    required |= {f"node_modules/{folder}/{name}" for folder, names in build.NODE_FILES.items() for name in names}
    for folder in ("worker", "shaders", "web"):
        for parent, _, names in os.walk(os.path.join(ROOT, folder)):
            required |= {os.path.relpath(os.path.join(parent, name), ROOT).replace(os.sep, "/") for name in names
                         if not name.startswith(".") and not name.endswith(".pyc")}
    demo = os.path.join(ROOT, *build.DEMO_MODEL.split("/"))
    required |= {f"{build.DEMO_MODEL}/{name}" for name in (os.listdir(demo) if os.path.isdir(demo) else [])
                 if name != "README.md" and not name.startswith(".")}
    assert sorted(required - set(listed)) == []
    assert "sw.js" not in listed and "precache.json" not in listed
    with open(os.path.join(site.root, "sw.js"), encoding="utf-8") as handle:
        source = handle.read()
    match = re.search(r"^const PRECACHE = (\{.*\});$", source, re.M)
    assert match and json.loads(match.group(1)) == precache
    assert re.fullmatch(r"[0-9a-f]{16}", precache["version"])


def test_the_precache_version_follows_the_content(tmp_path):
    import build
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "a.js").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    first = build._write_service_worker(str(tmp_path))
    assert [entry["url"] for entry in first["files"]] == ["b.txt", "web/a.js"]
    assert build._write_service_worker(str(tmp_path))["version"] == first["version"]
    (tmp_path / "web" / "a.js").write_text("one!")
    assert build._write_service_worker(str(tmp_path))["version"] != first["version"]
    assert first["version"] not in (tmp_path / "sw.js").read_text()


# -- the service worker in the browser ------------------------------------------------------
@pytest.fixture(scope="module")
def offline(browser, site):  # noqa: F811
    """A page that visited the app once online (service worker installed, a data file fetched
    at runtime), then was reloaded with the server stopped and the browser offline."""
    notes = {"note": "fetched once online, then served offline by the service worker — ✓"}
    os.makedirs(os.path.join(site.root, "offline-test"), exist_ok=True)
    with open(os.path.join(site.root, "offline-test", "notes.json"), "w", encoding="utf-8") as handle:
        json.dump(notes, handle)
    server = _serve(site.root)
    context = browser.new_context()
    page = new_page(context)
    try:
        page.goto(f"{server.url}/web/index.html?backend=cpu&lens=off")
        page.evaluate("window.neuroscope.ready")
        registered = page.evaluate(REGISTER)
        # The page is controlled now (its worker started before, so it is not): this fetch is
        # the service worker's, which keeps a copy.
        assert page.evaluate("fetch('/offline-test/notes.json').then((r) => r.json())") == notes
        page.wait_for_function("caches.open('neuroscope-runtime').then((c) => c.keys()).then((k) => k.length > 0)")
    except Exception:
        server.stop()
        context.close()
        raise
    server.stop()
    context.set_offline(True)
    page.reload()
    try:
        info = page.evaluate("window.neuroscope.ready")
    except Exception as error:
        context.close()
        raise AssertionError(f"offline boot failed: {error}\n" + "\n".join(page.messages)) from None
    yield types.SimpleNamespace(page=page, info=info, url=server.url, registered=registered, notes=notes,
                                asked=server.asked, root=site.root)
    context.close()


def test_the_service_worker_controls_the_whole_site(offline):
    precache = _precache(offline.root)
    assert offline.registered["scope"] == f"{offline.url}/"
    assert offline.registered["script"] == f"{offline.url}/sw.js"
    assert f"neuroscope-precache-{precache['version']}" in offline.registered["caches"]
    # Installing fetched each precached file once, and the worker's files too.
    asked = offline.asked
    assert {"/" + entry["url"] for entry in precache["files"]} <= set(asked)


def test_the_app_boots_offline_cross_origin_isolated(offline):
    page = offline.page
    assert offline.info["backend"] == "cpu"  # onnxruntime-web's wasm, from the cache
    assert page.evaluate("crossOriginIsolated") is True
    assert page.evaluate("navigator.onLine") is False
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL") == f"{offline.url}/sw.js"
    assert python(offline.page, "1 + 1") == 2
    assert python(page, "import js\nbool(js.crossOriginIsolated)") is True  # the worker as well
    # The site root leads to the app.
    root = page.evaluate("fetch('/').then(async (r) => [r.status, await r.text()])")
    assert root[0] == 200 and "web/index.html" in root[1]


FETCH = """
from neuroscope.model.remote import fetch_bytes
try:
    data = fetch_bytes(url)
    result = None if data is None else data.decode()
except OSError as error:
    result = f"OSError: {error}"
result
"""


def test_worker_fetches_are_answered_offline(offline):
    # Fetched once at runtime (by the page, online), now read by the worker from the cache.
    text = python(offline.page, FETCH, url=f"{offline.url}/offline-test/notes.json")
    assert json.loads(text) == offline.notes
    lock = python(offline.page, FETCH, url=f"{offline.url}/node_modules/pyodide/pyodide-lock.json")
    with open(os.path.join(ROOT, "node_modules", "pyodide", "pyodide-lock.json"), encoding="utf-8") as handle:
        assert lock == handle.read()
    # A file never fetched is a clean failure, not a hang.
    failure = python(offline.page, FETCH, url=f"{offline.url}/offline-test/never-fetched.json")
    assert failure.startswith("OSError: ") and "never-fetched.json: network error" in failure


def test_the_demo_model_runs_offline(offline):
    import build
    folder = os.path.join(offline.root, *build.DEMO_MODEL.split("/"))
    missing = [name for name in DEMO_FILES if not os.path.exists(os.path.join(folder, name))]
    if missing:
        pytest.skip(f"the demo model is not trained yet (the build's {build.DEMO_MODEL} lacks "
                    f"{', '.join(missing)}; python build.py train-demo)")
    code = """
from neuroscope import TransformerModel
model = TransformerModel.from_huggingface("demo")
tokens = model.to_tokens("The capital of France is")
logits = model(tokens)
[model.to_str_tokens("The capital of France is")[0], list(logits.shape), model.cfg.d_vocab]
"""
    first, shape, vocab = python(offline.page, code)
    assert first == "<|endoftext|>" and shape[-1] == vocab


def test_a_new_build_replaces_the_precache_downloading_only_what_changed(browser, site, tmp_path):  # noqa: F811
    import build
    root = tmp_path / "dist"
    for entry in _precache(site.root)["files"] + [{"url": "sw.js"}, {"url": "precache.json"}]:
        (root / entry["url"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(os.path.join(site.root, entry["url"]), root / entry["url"])
    (root / "sw-test.html").write_text("<!doctype html><title>service worker test</title>")
    first = build._write_service_worker(str(root))  # the build, with the test page
    server = _serve(str(root))
    context = browser.new_context()
    try:
        page = new_page(context)
        page.goto(f"{server.url}/sw-test.html")
        assert f"neuroscope-precache-{first['version']}" in page.evaluate(REGISTER)["caches"]

        with open(root / "web" / "share.js", "a", encoding="utf-8") as handle:
            handle.write("// a new build\n")
        second = build._write_service_worker(str(root))
        assert second["version"] != first["version"]
        server.asked.clear()
        updated = page.evaluate("""async () => {
          const registration = await navigator.serviceWorker.getRegistration();
          await registration.update();
          const started = Date.now();
          while (!window.updateWaiting) {
            if (Date.now() - started > 60000) throw new Error(`no update: ${registration.installing?.state}`);
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          await window.pwa.activateUpdate(registration);
          return {caches: await caches.keys(),
                  share: await (await fetch("/web/share.js")).text()};
        }""")
        precaches = [name for name in updated["caches"] if name.startswith("neuroscope-precache-")]
        assert precaches == [f"neuroscope-precache-{second['version']}"]
        assert updated["share"].endswith("// a new build\n")
        precached = {"/" + entry["url"] for entry in second["files"]}
        assert "/sw.js" in server.asked
        assert sorted(precached & set(server.asked)) == ["/web/share.js"]  # the rest came from the old cache
    finally:
        server.stop()
        context.close()


def test_the_lens_opens_offline_on_the_demo_model(offline):
    """After one visit, the app itself (not just the runtime) opens with the network off."""
    import build
    if not os.path.exists(os.path.join(offline.root, *build.DEMO_MODEL.split("/"), "model.safetensors")):
        pytest.skip("the demo model is not trained yet")
    page = offline.page
    page.goto(f"{offline.url}/web/index.html?backend=cpu")
    page.wait_for_function("() => { const a = window.neuroscope.app;"
                           " return !!(a && a.results.analysis && a.busy.size === 0); }", timeout=120_000)
    assert page.evaluate("window.neuroscope.app.modelInfo.name") == "demo"
    assert page.locator('.panel[data-view="attention"] .view canvas').count() > 0
    assert not [m for m in page.messages if m.startswith("pageerror")], page.messages


def test_the_lens_offers_a_new_build_and_reloads_into_it(browser, site, tmp_path):  # noqa: F811
    """The Lens registers its service worker itself; when a newer build has installed, it
    shows a "Reload" button that activates it and reloads the page onto the new files."""
    import build
    root = tmp_path / "dist"
    shutil.copytree(site.root, root)
    server = _serve(str(root))
    context = browser.new_context()
    try:
        page = new_page(context)
        page.goto(f"{server.url}/web/index.html?backend=cpu")
        page.wait_for_function("() => window.neuroscope.app && window.neuroscope.app.results.analysis",
                               timeout=120_000)
        page.wait_for_function("() => !!navigator.serviceWorker.controller", timeout=120_000)
        with open(root / "web" / "app.css", "a", encoding="utf-8") as handle:
            handle.write("/* a new build */\n")
        build._write_service_worker(str(root))
        page.evaluate("navigator.serviceWorker.getRegistration().then((r) => r.update())")
        button = page.wait_for_selector("#update-app", timeout=120_000)
        assert "new version" in page.inner_text("#messages")
        with page.expect_navigation(timeout=120_000):
            button.click()
        page.wait_for_function("() => window.neuroscope.app && window.neuroscope.app.results.analysis",
                               timeout=120_000)
        css = page.evaluate("fetch('/web/app.css').then((r) => r.text())")
        assert css.endswith("/* a new build */\n")
        assert not page.query_selector("#update-app")
        assert not [m for m in page.messages if m.startswith("pageerror")], page.messages
    finally:
        server.stop()
        context.close()
