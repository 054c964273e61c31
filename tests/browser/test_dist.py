"""The built site: self-contained (no CDN), the right files, served with the right headers.

No browser is needed here; ``python build.py build`` and ``serve`` are run as commands.
"""

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
import zipfile

from .pages import ROOT, site  # noqa: F401 (fixture)

TEXT_SUFFIXES = (".js", ".mjs", ".html", ".json", ".css", ".webmanifest")
# An http(s) URL with a literal host. A template such as `https://${host}` has no literal
# host (Pyodide's socket shim builds addresses from the caller's host) and does not match.
URL = re.compile(r"https?://[A-Za-z0-9][^\s\"'`<>()\\{}]*")
LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]"}
# Every external URL allowed in a loadable file, with why it is inert.
ALLOWED = {
    ("node_modules/onnxruntime-web/dist/ort.wasm.min.mjs", "https://web.dev/cross-origin-isolation-guide/"):
        "text of a console.warn telling developers to enable cross-origin isolation; never fetched",
    ("web/views/common.js", "http://www.w3.org/2000/svg"): "the SVG XML namespace name; never fetched",
}
# Hosts that serve code or packages: they may not appear anywhere, in any file (binaries
# and the zipped Python package included).
CDN_HOSTS = ("cdn.jsdelivr.net", "jsdelivr.com", "unpkg.com", "cdnjs.cloudflare.com", "esm.sh",
             "esm.run", "skypack.dev", "jspm.io", "googleapis.com", "gstatic.com", "files.pythonhosted.org",
             "pypi.org", "anaconda.org")
_STDLIB = "node_modules/pyodide/python_stdlib.zip!"
ALLOWED_CDN_MENTIONS = {  # (file, host): why it is inert
    (_STDLIB + "pyodide/http/__init__.py", "cdn.jsdelivr.net"): "a docstring example of pyodide.http.open_url",
    (_STDLIB + "pyodide/http/_pyfetch.py", "cdn.jsdelivr.net"): "a docstring example of pyodide.http.pyfetch",
    (_STDLIB + "unittest/mock.py", "pypi.org"): "a comment naming the mock project's page",
}


def _site_files(root):
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            yield os.path.relpath(path, root).replace(os.sep, "/"), path


def test_dist_refers_to_no_cdn(site):  # noqa: F811
    external, cdn = [], []
    for relative, path in _site_files(site.root):
        with open(path, "rb") as handle:
            data = handle.read()
        blobs = [(relative, data)]
        if relative.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                blobs += [(f"{relative}!{name}", archive.read(name)) for name in archive.namelist()]
        for where, blob in blobs:
            lowered = blob.lower()
            cdn += [f"{where}: {host}" for host in CDN_HOSTS
                    if host.encode() in lowered and (where, host) not in ALLOWED_CDN_MENTIONS]
        if relative.endswith(TEXT_SUFFIXES):
            for url in URL.findall(data.decode("utf-8", errors="replace")):
                host = urllib.parse.urlsplit(url).hostname or ""
                if host not in LOCAL_HOSTS and (relative, url) not in ALLOWED:
                    external.append(f"{relative}: {url}")
    assert not cdn, "CDN hosts in dist/:\n" + "\n".join(cdn)
    assert not external, "external URLs in loadable files of dist/:\n" + "\n".join(sorted(set(external)))


def test_dist_mirrors_the_repo_layout(site):  # noqa: F811
    expected = ["web/index.html", "web/main.js", "worker/worker.js", "worker/protocol.js", "worker/bridge.js",
                "worker/session.py", "node_modules/pyodide/pyodide.mjs", "node_modules/pyodide/pyodide.asm.wasm",
                "node_modules/pyodide/python_stdlib.zip", "node_modules/pyodide/pyodide-lock.json",
                "node_modules/onnxruntime-web/dist/ort.wasm.min.mjs",
                "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
                "node_modules/@huggingface/tokenizers/dist/tokenizers.min.mjs", "py/neuroscope.zip"]
    missing = [name for name in expected if not os.path.exists(os.path.join(site.root, name))]
    assert not missing
    for folder in ("worker", "shaders", "web"):
        source = os.path.join(ROOT, folder)
        for name in os.listdir(source) if os.path.isdir(source) else []:
            if not name.startswith(".") and name != "__pycache__":
                assert os.path.exists(os.path.join(site.root, folder, name)), f"{folder}/{name} not copied"
    with zipfile.ZipFile(os.path.join(site.root, "py", "neuroscope.zip")) as archive:
        names = archive.namelist()
    assert "neuroscope/__init__.py" in names and "neuroscope/model/remote.py" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    with open(os.path.join(site.root, "build.json"), encoding="utf-8") as handle:
        versions = json.load(handle)["versions"]
    with open(os.path.join(ROOT, "package.json"), encoding="utf-8") as handle:
        pinned = json.load(handle)["dependencies"]
    assert {name: versions[name] for name in pinned} == pinned


def test_build_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = subprocess.run([sys.executable, os.path.join(ROOT, "build.py"), "build", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "refusing" in result.stderr + result.stdout
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_serve_builds_and_sends_isolation_headers_and_mime_types(tmp_path):
    out = tmp_path / "dist"
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "build.py"), "serve", "--port", "0",
                                "--out", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"(http://localhost:\d+)/web/index.html", line)
        assert match, f"serve printed {line!r}, expected the page URL"
        base = match.group(1)
        expected = {"web/index.html": "text/html", "worker/worker.js": "text/javascript",
                    "node_modules/pyodide/pyodide.mjs": "text/javascript",
                    "node_modules/pyodide/pyodide.asm.wasm": "application/wasm",
                    "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm": "application/wasm"}
        for path, mime in expected.items():
            with urllib.request.urlopen(f"{base}/{path}", timeout=30) as response:
                assert response.headers["Content-Type"].split(";")[0] == mime, path
                assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_npm_ci_runs_only_when_node_modules_differs_from_the_lock(tmp_path, monkeypatch):
    import build
    lock = {"packages": {"": {"name": "x"}, "node_modules/a": {"version": "1.0.0"},
                         "node_modules/@scope/b": {"version": "2.0.0"},
                         "node_modules/@esbuild/other-os": {"version": "3.0.0", "optional": True}}}
    (tmp_path / "package-lock.json").write_text(json.dumps(lock))
    (tmp_path / "node_modules" / "a").mkdir(parents=True)
    (tmp_path / "node_modules" / "a" / "package.json").write_text('{"version": "1.0.0"}')
    monkeypatch.setattr(build, "ROOT", str(tmp_path))
    assert build._stale_node_packages() == ["@scope/b missing (lock: 2.0.0)"]
    (tmp_path / "node_modules" / "@scope" / "b").mkdir(parents=True)
    (tmp_path / "node_modules" / "@scope" / "b" / "package.json").write_text('{"version": "1.9.0"}')
    assert build._stale_node_packages() == ["@scope/b 1.9.0 (lock: 2.0.0)"]
    (tmp_path / "node_modules" / "@scope" / "b" / "package.json").write_text('{"version": "2.0.0"}')
    assert build._stale_node_packages() == []
