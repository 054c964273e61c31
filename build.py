"""NeuroScope's one entry point.

    python build.py build [--out DIR]    write the static site (default dist/)
    python build.py serve [--port N]     build, then serve it with the headers wasm threads need
    python build.py test [pytest args]   install what the tests need, then run them all
    python build.py bench [names]        run the benchmarks in bench/ (they print ratios vs peers)
    python build.py bundle-views [--check]
                                         rebuild py/neuroscope/display/views_bundle.js from web/views/
    python build.py train-demo [--seed S --out DIR ...]
                                         train the built-in demo model (torch on CPU, ~1 hour)

``test`` and ``bench`` install their Python needs on a fresh machine: torch
2.13.0 (CPU, from the local wheel pip finds), then this package with its
``dev`` and ``ref`` extras. ``build``, ``serve`` and ``test`` run ``npm ci`` when
node_modules is missing or differs from package-lock.json; ``test`` also
installs Debian's chromium (as root) for the browser tests.

The site mirrors repo-relative paths (worker/, shaders/, web/, node_modules/...),
so a module import such as ``../../node_modules/onnxruntime-web/dist/ort.wasm.min.mjs``
resolves the same from the repo root and from dist/. The Python package travels
as dist/py/neuroscope.zip, which the worker unpacks into Pyodide; the built-in demo model's
files are also served as dist/py/neuroscope/demo/model/*, where the browser loads "demo"
from (see neuroscope/model/loading.py). dist/sw.js, the service worker that makes the site
work offline, sits at the site root with the list of every file it precaches written into it.
"""

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(ROOT, "py"))
# The server lives in the package (InteractiveLens serves the site with it too).
from neuroscope.serve import StaticHandler, make_server, serve_in_thread  # noqa: E402, F401

NEEDED_MODULES = ("numpy", "tokenizers", "pytest", "safetensors", "threadpoolctl", "psutil",
                  "torch", "transformers", "transformer_lens", "ruff", "playwright", "hypothesis",
                  "sklearn", "distributed", "nbclient", "ipykernel", "nbformat")


def _pip(*args):
    print("+ pip", " ".join(args), flush=True)
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                           "--progress-bar", "off", *args])


def install_python_needs():
    """pip-install what is missing; a no-op (a few imports) when all is present."""
    if importlib.util.find_spec("torch") is None:
        # Ask for the exact CPU build first, so no resolver pulls a CUDA one.
        _pip("torch==2.13.0")
    missing = [m for m in NEEDED_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        print(f"installing the dev and ref extras (missing: {', '.join(missing)})", flush=True)
        _pip("-e", f"{ROOT}[dev,ref]")


def ensure_node_modules():
    """``npm ci`` when node_modules is missing or differs from package-lock.json."""
    stale = _stale_node_packages()
    if not stale:
        return
    print(f"npm ci (node_modules differs from package-lock.json: {', '.join(stale[:5])})", flush=True)
    if shutil.which("npm") is None:
        raise SystemExit("npm is not installed; install Node.js 20+ (apt-get install -y nodejs npm)")
    subprocess.check_call(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT)


def _stale_node_packages():
    with open(os.path.join(ROOT, "package-lock.json"), encoding="utf-8") as handle:
        packages = json.load(handle)["packages"]
    stale = []
    for path, entry in packages.items():
        if not path or entry.get("optional") or entry.get("link"):
            continue  # the root entry; platform-specific optional packages
        try:
            with open(os.path.join(ROOT, path, "package.json"), encoding="utf-8") as handle:
                installed = json.load(handle).get("version")
        except (OSError, ValueError):
            installed = None
        if installed != entry.get("version"):
            stale.append(f"{path.removeprefix('node_modules/')} {installed or 'missing'} "
                         f"(lock: {entry.get('version')})")
    return stale


# How the browser tests and benchmarks start Debian's chromium (headless, with WebGPU on
# SwiftShader for pages from localhost, nothing phoning home).
CHROMIUM_FLAGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def _apt_install(binary, packages, purpose):
    """Debian packages providing ``binary`` (apt-get, as root only); says how when not root."""
    if shutil.which(binary):
        return
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        print(f"{binary} is not installed and this is not root: run `sudo apt-get install -y "
              f"{' '.join(packages)}`; {purpose} fail until then", flush=True)
        return
    print(f"+ apt-get install -y {' '.join(packages)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.check_call(["apt-get", "update"], env=env)
    subprocess.check_call(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)


def ensure_chromium():
    """Debian's chromium for the browser tests."""
    _apt_install("chromium", ["chromium"], "the browser tests")


def ensure_pdflatex():
    """pdflatex and bibtex for the paper test (ResearchPaper.generate_latex output compiles)."""
    _apt_install("pdflatex", ["texlive-latex-base", "texlive-latex-recommended"], "the paper tests")


# -- the static site -------------------------------------------------------------
SITE_DIRS = ("worker", "shaders", "web")
NODE_FILES = {  # folder under node_modules -> the files the site loads from it
    "pyodide": ["pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip",
                "pyodide-lock.json"],
    # The CPU (wasm) build of onnxruntime-web: the ESM entry, its emscripten loader and wasm.
    "onnxruntime-web/dist": ["ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"],
    "@huggingface/tokenizers/dist": ["tokenizers.min.mjs"],
}
NODE_LICENSES = {"pyodide": "pyodide", "onnxruntime-web": "onnxruntime-web/dist",
                 "@huggingface/tokenizers": "@huggingface/tokenizers/dist"}
BUILD_MARKER = "build.json"
# Pyodide's default package CDN, used only when loadPyodide gets no packageBaseUrl (the worker
# always passes one). The build points that default at the local indexURL instead, so dist/
# holds no CDN address and a stray loadPackage can never reach the network.
_PYODIDE_CDN = re.compile(r"(let (\w+)=(\w+)\.indexURL\|\|[^;]{0,40};if\(\2=[^;]{0,200}?\3\.cdnUrl=\w+\("
                          r"\3\.packageBaseUrl\?\?)`https://cdn\.jsdelivr\.net/pyodide/v\$\{\w+\}/full/`")


def command_build(out=None):
    """Write the static site to ``out`` (default dist/); returns its path."""
    ensure_node_modules()
    out = os.path.abspath(out or os.path.join(ROOT, "dist"))
    _clear_site(out)
    for folder in SITE_DIRS:
        source = os.path.join(ROOT, folder)
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(out, folder), ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", ".*"))
        else:
            os.makedirs(os.path.join(out, folder))
    _write_op_table(out)
    versions = {}
    for folder, names in NODE_FILES.items():
        target = os.path.join(out, "node_modules", folder)
        os.makedirs(target, exist_ok=True)
        for name in names:
            shutil.copy2(os.path.join(ROOT, "node_modules", folder, name), os.path.join(target, name))
    for package, folder in NODE_LICENSES.items():
        with open(os.path.join(ROOT, "node_modules", package, "package.json"), encoding="utf-8") as handle:
            versions[package] = json.load(handle)["version"]
        for name in ("LICENSE", "LICENSE.md", "LICENSE.txt"):
            path = os.path.join(ROOT, "node_modules", package, name)
            if os.path.exists(path):
                shutil.copy2(path, os.path.join(out, "node_modules", folder, "LICENSE"))
    _patch_pyodide_cdn(os.path.join(out, "node_modules", "pyodide", "pyodide.mjs"))
    versions["neuroscope"] = _zip_package(os.path.join(out, "py", "neuroscope.zip"))
    _copy_demo_model(out)
    with open(os.path.join(out, "index.html"), "w", encoding="utf-8") as handle:
        handle.write('<!doctype html>\n<meta charset="utf-8">\n<title>NeuroScope</title>\n'
                     '<meta http-equiv="refresh" content="0; url=web/index.html">\n'
                     '<a href="web/index.html">NeuroScope</a>\n')
    with open(os.path.join(out, BUILD_MARKER), "w", encoding="utf-8") as handle:
        json.dump({"versions": versions, "package": "py/neuroscope.zip"}, handle, indent=1)
    _write_service_worker(out)
    return out


def _write_op_table(out):
    """dist/worker/backends/op_table.js, the op table as JSON for the kernel bridge, written
    from the package being shipped (py/neuroscope/backends/ops.py) rather than copied."""
    path = os.pathsep.join(p for p in (os.path.join(ROOT, "py"), os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    module = subprocess.check_output([sys.executable, "-m", "neuroscope.backends"], env=env, cwd=ROOT)
    with open(os.path.join(out, "worker", "backends", "op_table.js"), "wb") as handle:
        handle.write(module)


def _clear_site(out):
    if os.path.isdir(out) and os.listdir(out):
        if not os.path.exists(os.path.join(out, BUILD_MARKER)):
            raise SystemExit(f"{out} is not empty and holds no {BUILD_MARKER}: refusing to replace it; "
                             "pass --out with a new or previously built folder")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)


def _patch_pyodide_cdn(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    patched, count = _PYODIDE_CDN.subn(lambda m: m.group(1) + m.group(2), text)
    if count != 1:
        raise SystemExit(f"{path}: expected Pyodide's CDN default once, found it {count} times; "
                         "update _PYODIDE_CDN in build.py for this Pyodide version")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(patched)


def _zip_package(target):
    """py/neuroscope as a zip (sources only); returns the package version."""
    os.makedirs(os.path.dirname(target), exist_ok=True)
    source = os.path.join(ROOT, "py")
    version = None
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for folder, dirs, files in os.walk(os.path.join(source, "neuroscope")):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
            for name in sorted(files):
                if name.endswith(".py") or name.endswith(".json"):
                    path = os.path.join(folder, name)
                    archive.write(path, os.path.relpath(path, source))
    with open(os.path.join(source, "neuroscope", "__init__.py"), encoding="utf-8") as handle:
        match = re.search(r'^__version__ = "([^"]+)"', handle.read(), re.M)
        version = match.group(1) if match else "unknown"
    return version


DEMO_MODEL = "py/neuroscope/demo/model"


def _copy_demo_model(out):
    """The demo model's files (config, weights, tokenizer, held-out splits), where it has them."""
    source = os.path.join(ROOT, *DEMO_MODEL.split("/"))
    names = sorted(os.listdir(source)) if os.path.isdir(source) else []
    names = [n for n in names if not n.startswith(".") and n != "README.md"
             and os.path.isfile(os.path.join(source, n))]
    if names:
        os.makedirs(os.path.join(out, *DEMO_MODEL.split("/")), exist_ok=True)
    for name in names:
        shutil.copy2(os.path.join(source, name), os.path.join(out, *DEMO_MODEL.split("/"), name))


# The service worker is served from the site root, so that its scope covers worker/ and
# node_modules/ too; its source is web/sw.js, with PRECACHE_MARKER replaced by the list.
SERVICE_WORKER, PRECACHE_LIST = "sw.js", "precache.json"
PRECACHE_MARKER = "/* PRECACHE */null"


def _write_service_worker(out):
    """dist/sw.js and dist/precache.json: every file of the site with its size and SHA-256,
    and a version hashed from them (a change to any file makes a new service worker)."""
    files = []
    for folder, dirs, names in os.walk(out):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            url = os.path.relpath(path, out).replace(os.sep, "/")
            if url not in (SERVICE_WORKER, PRECACHE_LIST):
                with open(path, "rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
                files.append({"url": url, "size": os.path.getsize(path), "sha256": digest})
    listing = json.dumps(files, separators=(",", ":"))
    precache = {"version": hashlib.sha256(listing.encode()).hexdigest()[:16], "files": files}
    with open(os.path.join(ROOT, "web", "sw.js"), encoding="utf-8") as handle:
        source = handle.read()
    if source.count(PRECACHE_MARKER) != 1:
        raise SystemExit(f"web/sw.js must hold {PRECACHE_MARKER!r} exactly once (build.py writes the "
                         "precache list there)")
    with open(os.path.join(out, SERVICE_WORKER), "w", encoding="utf-8") as handle:
        handle.write(source.replace(PRECACHE_MARKER, json.dumps(precache, separators=(",", ":"))))
    with open(os.path.join(out, PRECACHE_LIST), "w", encoding="utf-8") as handle:
        json.dump(precache, handle, indent=1)
    return precache


def command_serve(port, out=None):
    root = command_build(out)
    server = make_server(root, port)
    url = f"http://localhost:{server.server_address[1]}/web/index.html"
    print(f"serving {root} at {url}  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def command_test(extra):
    install_python_needs()
    ensure_node_modules()
    ensure_chromium()
    ensure_pdflatex()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "py"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.call([sys.executable, "-m", "pytest", os.path.join(ROOT, "tests"), *extra],
                           cwd=ROOT, env=env)


BENCHMARKS = {"forward": "bench/forward.py", "browser": "bench/browser.py", "app": "bench/app.py",
              "datasets": "bench/dataset_scale.py", "attribution": "bench/attribution.py",
              "circuits": "bench/circuits.py", "distributed": "bench/distributed_analysis.py",
              "loading": "bench/loading.py", "cuda": "bench/cuda.py"}


def command_bench(names):
    install_python_needs()
    status = 0
    for name in names or list(BENCHMARKS):
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; expected one of {sorted(BENCHMARKS)}")
            return 2
        print(f"== bench {name}", flush=True)
        status |= subprocess.call([sys.executable, os.path.join(ROOT, BENCHMARKS[name])], cwd=ROOT)
    return status


def command_train_demo(extra):
    """Train the demo model into py/neuroscope/demo/model (options go to neuroscope.demo.train)."""
    install_python_needs()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "py"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.call([sys.executable, "-m", "neuroscope.demo.train", *extra], cwd=ROOT, env=env)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="write the static site (default dist/)")
    build.add_argument("--out", help="output folder (default: dist/)")
    serve = sub.add_parser("serve", help="build, then serve the site and print its URL")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    serve.add_argument("--out", help="output folder (default: dist/)")
    sub.add_parser("test", help="install test needs and run the whole suite (extra args go to pytest)")
    bench = sub.add_parser("bench", help="run benchmarks")
    bench.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {sorted(BENCHMARKS)})")
    bundle = sub.add_parser("bundle-views", help="rebuild the views bundle of Jupyter output from web/views/")
    bundle.add_argument("--check", action="store_true", help="fail when the committed bundle is stale")
    sub.add_parser("train-demo", add_help=False,
                   help="train the demo model (options, --help too, go to python -m neuroscope.demo.train)")
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        return command_test(extra)
    if args.command == "train-demo":
        return command_train_demo(extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    if args.command == "build":
        print(f"built {command_build(args.out)}")
        return 0
    if args.command == "serve":
        return command_serve(args.port, args.out)
    if args.command == "bundle-views":
        sys.path.insert(0, os.path.join(ROOT, "py"))
        from neuroscope.display.bundle import main as bundle_views

        return bundle_views(["--check"] if args.check else [])
    return command_bench(args.names)


if __name__ == "__main__":
    sys.exit(main())
