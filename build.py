"""NeuroScope's one entry point.

    python build.py test [pytest args]   install what the tests need, then run them all
    python build.py bench [names]        run the benchmarks in bench/ (they print ratios vs peers)

``test`` and ``bench`` install their Python needs on a fresh machine: torch
2.13.0 (CPU, from the local wheel pip finds), then this package with its
``dev`` and ``ref`` extras.
"""

import argparse
import functools
import http.server
import importlib.util
import os
import subprocess
import sys
import threading

ROOT = os.path.dirname(os.path.abspath(__file__))
NEEDED_MODULES = ("numpy", "tokenizers", "pytest", "safetensors", "threadpoolctl", "psutil",
                  "torch", "transformers", "transformer_lens", "ruff")


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


def command_test(extra):
    install_python_needs()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "py"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    return subprocess.call([sys.executable, "-m", "pytest", os.path.join(ROOT, "tests"), *extra],
                           cwd=ROOT, env=env)


class StaticHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the headers wasm threads need (cross-origin isolation)."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                      ".json": "application/json", ".wgsl": "text/plain", ".glsl": "text/plain",
                      ".webmanifest": "application/manifest+json", ".safetensors": "application/octet-stream"}

    def end_headers(self):
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        super().end_headers()

    def log_message(self, format, *args):
        if os.environ.get("NEUROSCOPE_SERVER_LOG"):
            super().log_message(format, *args)


def make_server(root, port=0, host="127.0.0.1"):
    """A threaded static server for ``root``; port 0 picks a free one."""
    handler = functools.partial(StaticHandler, directory=root)
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_in_thread(root, port=0):
    """Start ``make_server`` in a daemon thread; returns (server, base_url)."""
    server = make_server(root, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://localhost:{server.server_address[1]}"


BENCHMARKS = {"forward": "bench/forward.py"}


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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("test", help="install test needs and run the whole suite (extra args go to pytest)")
    bench = sub.add_parser("bench", help="run benchmarks")
    bench.add_argument("names", nargs="*", help=f"benchmarks to run (default: all of {sorted(BENCHMARKS)})")
    args, extra = parser.parse_known_args(argv)
    if args.command == "test":
        return command_test(extra)
    if extra:
        parser.error(f"unrecognised arguments: {' '.join(extra)}")
    return command_bench(args.names)


if __name__ == "__main__":
    sys.exit(main())
