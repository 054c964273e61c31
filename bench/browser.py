"""Browser benchmark: NeuroScope in Pyodide vs onnxruntime-web's whole-graph forward, in one page.

    python bench/browser.py [--rounds R] [--repeats N] [--positions P] [--gpu-positions P]
                            [--backends cpu,webgpu,webgl]

The GPT-2-small-shaped random model of bench/forward.py (``GPT2Config()`` defaults,
seeded weights in ``bench/.cache/gpt2-small-random/``) is also exported once, by
``torch.onnx.export`` (the dynamo exporter, with a batch of 2 so the batch axis stays
dynamic), to ``bench/.cache/gpt2-small-random.onnx`` (bench/browser_setup.py). The site
that ``build.py build`` writes is served from localhost with COOP/COEP (wasm threads need
cross-origin isolation), and headless Chromium opens one page, bench/browser_page.html,
which starts:

* NeuroScope workers (worker/worker.js, the app's own) with a forced backend, loading the
  model with ``TransformerModel.from_huggingface(url)`` and timing ``model(tokens)`` and
  ``model.run_with_cache(tokens)`` (every hook point); the cpu backend at 1 and at 2 wasm
  threads;
* onnxruntime-web workers (bench/ort_worker.js), wasm backend, at 1 and at 2 threads:
  onnxruntime's settings are global per worker, so one worker per thread count.

Every timed run ends in a readback: NeuroScope reads the last position's logits into
Python (the cpu backend queues work until Python reads, so this waits for every op, the
cached activations' included); onnxruntime copies its logits out of wasm memory. Each
runner warms up first: the cpu backend runs a forward op by op the first time, and the
second time compiles it into one onnxruntime graph with the weights baked in
(worker/backends/cpu_graph.js; the counters and compile time are printed), which every
later run of either mode reuses. Then rounds alternate the order of the peers of one
thread count; times are medians.
WebGPU and WebGL2 run on SwiftShader here (~25x slower than wasm, DESIGN.md §10; a
GPT-2-small forward takes tens of seconds, whatever the sequence): they run at a short
sequence (``--gpu-positions``), after one warm-up (pipelines compile; nothing is baked),
with one timed run per mode by default (``--gpu-repeats``), next to the cpu backend and
onnxruntime at 2 threads at the same shape.

The goal (PASS/FAIL): NeuroScope's cpu backend with every hook cached at most as slow as
onnxruntime-web's full-graph forward (<= 1.0x) at the same thread count, at 1x128.
"""

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import build  # noqa: E402

# bench/ is this script's folder, so its helper modules import as top-level ones.
from browser_setup import (  # noqa: E402
    MODEL_URL_PATH,
    ONNX_PATH,
    ONNX_URL_PATH,
    build_site,
    prepare_onnx,
)
from forward import MODEL_DIR, VOCAB, prepare_model  # noqa: E402

RESULTS = os.path.join(ROOT, "bench", "results", "browser.json")
ORT_PREFIX = "onnxruntime-web wasm"
ORT_AT_2 = f"{ORT_PREFIX} 2t"  # the GPU backends' peer
GOAL_RATIO = 1.0
PARITY_TOLERANCE = 1e-3
LOAD_WARNING = 1.0

NEUROSCOPE_SETUP = """
import time
from neuroscope import TransformerModel

began = time.perf_counter()
model = TransformerModel.from_huggingface(location)
load_ms = 1e3 * (time.perf_counter() - began)


async def timed(mode, tokens, count, want_last):
    times, entries, last = [], None, None
    for _ in range(count):
        began = time.perf_counter()
        if mode == "forward":
            logits, cache = model(tokens), None
        else:
            logits, cache = model.run_with_cache(tokens)
        # The readback: it waits for every queued op, the cached activations' included.
        last = await logits[0, -1].tolist_async()
        times.append(1e3 * (time.perf_counter() - began))
        entries = None if cache is None else len(cache)
        del logits, cache
    return {"times": times, "entries": entries, "last": last if want_last else None}


{"load_ms": load_ms, "hooks": len(model.hook_names())}
"""
NEUROSCOPE_TIME = "await timed(mode, tokens, count, want_last)"
# The cpu backend's graph counters (worker/backends/cpu_graph.js).
NEUROSCOPE_GRAPHS = """
import js, neuroscope_js
graphs = neuroscope_js.bridge.backend.graphs
js.JSON.stringify(graphs.stats) if graphs else "null"
"""


# -- driving the page -----------------------------------------------------------
class Bench:
    """The page's window.bench, from Python; every failure raises with the page's message."""

    def __init__(self, page, base_url):
        self.page, self.base_url = page, base_url

    def call(self, method, *args):
        reply = self.page.evaluate(f"(args) => window.bench.{method}(...args)", list(args))
        if not reply["ok"]:
            logs = "\n".join(reply.get("logs") or [])
            raise RuntimeError(f"{method}{tuple(args[:1])} failed in the page:\n{reply['error']}\n{logs}")
        return reply["value"]

    def stop(self, name):
        self.page.evaluate("(name) => window.bench.stop(name)", name)

    def start_neuroscope(self, name, backend, threads=None):
        info = self.call("startNeuroScope", name, {"backend": backend, "threads": threads})
        if info["backend"] != backend or (threads and info.get("threads") != threads):
            raise RuntimeError(f"{name}: asked for backend {backend} with {threads} threads, booted {info}")
        loaded = self.call("python", name, NEUROSCOPE_SETUP,
                           {"location": f"{self.base_url}/{MODEL_URL_PATH}"})
        return {**info, **loaded}

    def time_neuroscope(self, name, mode, tokens, count, want_last=False):
        return self.call("python", name, NEUROSCOPE_TIME,
                         {"mode": mode, "tokens": tokens, "count": count, "want_last": want_last})

    def graph_stats(self, name):
        return json.loads(self.call("python", name, NEUROSCOPE_GRAPHS, {}))

    def start_ort(self, name, threads):
        return self.call("startOrt", name, {"url": f"{self.base_url}/{ONNX_URL_PATH}",
                                            "threads": threads})

    def time_ort(self, name, tokens, warmup, repeats):
        flat = [token for row in tokens for token in row]
        return self.call("timeOrt", name, {"tokens": flat, "batch": len(tokens), "positions": len(tokens[0]),
                                           "warmup": warmup, "repeats": repeats})


@contextlib.contextmanager
def bench_page(folder):
    """build_site(folder) served from localhost and bench/browser_page.html open in headless
    Chromium, cross-origin isolated (wasm threads need it): yields its Bench."""
    from playwright.sync_api import sync_playwright
    server, base_url = build.serve_in_thread(build_site(folder))
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                 args=build.CHROMIUM_FLAGS, headless=True)
            try:
                page = browser.new_context().new_page()
                page.goto(f"{base_url}/bench/browser_page.html")
                page.wait_for_function("window.bench !== undefined")
                if not page.evaluate("window.bench.crossOriginIsolated"):
                    raise RuntimeError("the page is not cross-origin isolated: wasm threads would not work")
                yield Bench(page, base_url)
            finally:
                browser.close()
    finally:
        server.shutdown()
        server.server_close()


def make_tokens(batch, positions, seed=0):
    generator = random.Random(seed)
    return [[generator.randrange(VOCAB) for _ in range(positions)] for _ in range(batch)]


def log(text):
    print(f"[{time.strftime('%H:%M:%S')} load {os.getloadavg()[0]:.1f}] {text}", flush=True)


class Results:
    """(shape, runner) -> {"forward": [ms], "cache": [ms], ...}, and the logits to compare."""

    def __init__(self):
        self.rows, self.last, self.notes = {}, {}, []

    def add(self, shape, runner, mode, reply):
        row = self.rows.setdefault((shape, runner), {"peer": ORT_AT_2 if runner.startswith("neuroscope web")
                                                     else runner.replace("neuroscope cpu", ORT_PREFIX)})
        row.setdefault(mode, []).extend(reply["times"])
        if reply.get("entries"):
            row["entries"] = reply["entries"]
        if reply.get("last"):
            self.last[(shape, runner)] = reply["last"]


def measure_ort(bench, results, name, shape, tokens, warmup, repeats, want_last=False):
    reply = bench.time_ort(name, tokens, warmup, repeats)
    results.add(shape, name, "forward", reply if want_last else {**reply, "last": None})
    return reply


def measure_neuroscope(bench, results, name, shape, tokens, warmup, repeats, want_last=False, say=False):
    for mode in ("forward", "cache"):
        if warmup:
            reply = bench.time_neuroscope(name, mode, tokens, warmup)
            if say:
                log(f"{name} {mode}: warm-up runs took {', '.join(f'{t:.0f}' for t in reply['times'])} ms")
        reply = bench.time_neuroscope(name, mode, tokens, repeats, want_last)
        results.add(shape, name, mode, reply)
        if say:
            log(f"{name} {mode}: timed runs took {', '.join(f'{t:.0f}' for t in reply['times'])} ms")


def run_threads(bench, results, threads, args, tokens, small_tokens):
    """onnxruntime and the cpu backend at one thread count, alternating over rounds."""
    ort_name, ns_name = f"{ORT_PREFIX} {threads}t", f"neuroscope cpu {threads}t"
    shape, small = (len(tokens), len(tokens[0])), (len(small_tokens), len(small_tokens[0]))
    loaded = bench.start_ort(ort_name, threads)
    log(f"{ort_name}: session in {loaded['ms']:.0f} ms (threads {loaded['threads']}, "
        f"cross-origin isolated {loaded['isolated']})")
    info = bench.start_neuroscope(ns_name, "cpu", threads)
    log(f"{ns_name}: booted (threads {info['threads']}), model loaded in {info['load_ms']:.0f} ms, "
        f"{info['hooks']} hook points")
    bench.time_ort(ort_name, tokens, args.warmup, 0)
    for mode in ("forward", "cache"):
        bench.time_neuroscope(ns_name, mode, tokens, args.warmup)
    graphs = bench.graph_stats(ns_name)
    log(f"warmed up ({args.warmup} runs each); {ns_name} compiled {graphs['compiled']} graph(s) in "
        f"{graphs['compileMs']:.0f} ms, ran {graphs['graphRuns']} graph runs, {graphs['failures']} failures")
    for number in range(args.rounds):
        order = (ort_name, ns_name) if number % 2 == 0 else (ns_name, ort_name)
        for name in order:
            last = number == args.rounds - 1
            if name == ort_name:
                measure_ort(bench, results, name, shape, tokens, 0, args.repeats, want_last=last)
            else:
                measure_neuroscope(bench, results, name, shape, tokens, 0, args.repeats, want_last=last)
        row_ort, row_ns = results.rows[(shape, ort_name)], results.rows[(shape, ns_name)]
        log(f"round {number + 1}/{args.rounds}: onnxruntime {statistics.median(row_ort['forward']):.0f} ms, "
            f"neuroscope forward {statistics.median(row_ns['forward']):.0f} ms, "
            f"run_with_cache {statistics.median(row_ns['cache']):.0f} ms (medians so far)")
    if threads == 2 and args.gpu_backends:
        measure_ort(bench, results, ort_name, small, small_tokens, args.warmup, args.repeats, True)
        measure_neuroscope(bench, results, ns_name, small, small_tokens, args.warmup, args.repeats, True)
        log(f"{small[0]}x{small[1]} peers for the GPU backends measured")
    graphs = bench.graph_stats(ns_name)
    results.notes.append(f"{ns_name}: {graphs['compiled']} graph(s) compiled ({graphs['compileMs']:.0f} ms), "
                         f"{graphs['graphRuns']} graph runs, {graphs['failures']} failures")
    bench.stop(ort_name)
    bench.stop(ns_name)


def run_gpu(bench, results, backend, args, small_tokens):
    name, small = f"neuroscope {backend}", (len(small_tokens), len(small_tokens[0]))
    try:
        info = bench.start_neuroscope(name, backend)
        software = " (software adapter: SwiftShader)" if info["fallback"] else ""
        log(f"{name}{software}: model loaded in {info['load_ms']:.0f} ms")
        measure_neuroscope(bench, results, name, small, small_tokens, args.gpu_warmup, args.gpu_repeats,
                           want_last=True, say=True)
        return True
    except Exception as error:  # one backend failing still leaves the others' numbers
        results.notes.append(f"{name}: not measured: {error}")
        log(f"{name} FAILED: {error}")
        return False
    finally:
        bench.stop(name)


# -- reporting -------------------------------------------------------------------
def _median(row, mode):
    return statistics.median(row[mode]) if row and row.get(mode) else None


def _ms(value):
    return f"{value:.0f}" if value is not None else "-"


def print_table(results):
    header = (f"{'shape':<8}{'runner':<28}{'forward ms':>11}{'cache ms':>10}{'hooks':>7}{'runs':>6}"
              f"{'fwd / ORT':>11}{'cache / ORT':>13}")
    print(header)
    print("-" * len(header))
    for (shape, runner), row in sorted(results.rows.items(), key=lambda item: (-item[0][0][1], item[0][1])):
        ort = _median(results.rows.get((shape, row["peer"])), "forward")
        forward, cache = _median(row, "forward"), _median(row, "cache")
        ratios = ["", ""] if runner == row["peer"] or ort is None else [
            f"{value / ort:.2f}x" if value is not None else "-" for value in (forward, cache)]
        print(f"{f'{shape[0]}x{shape[1]}':<8}{runner:<28}{_ms(forward):>11}{_ms(cache):>10}"
              f"{row.get('entries') or '':>7}{len(row.get('forward', [])):>6}{ratios[0]:>11}{ratios[1]:>13}")
    print("ms: medians; cache: run_with_cache with every hook point; / ORT: divided by onnxruntime-web's "
          "forward at the same\nshape and thread count (the GPU backends against 2 threads); "
          "webgpu and webgl run on SwiftShader, at a short sequence and with few runs (see 'runs')")


def print_parity(results):
    for (shape, runner), last in sorted(results.last.items()):
        reference = results.last.get((shape, results.rows[(shape, runner)]["peer"]))
        if runner.startswith(ORT_PREFIX) or reference is None:
            continue
        worst = max(abs(a - b) for a, b in zip(last, reference))
        verdict = "same model" if worst <= PARITY_TOLERANCE else "MISMATCH: not the same computation"
        print(f"{shape[0]}x{shape[1]} {runner}: max |logit - onnxruntime's| at the last position = "
              f"{worst:.1e} ({verdict})")


def print_verdict(results, shape, thread_counts):
    passed = True
    for threads in thread_counts:
        ort = _median(results.rows.get((shape, f"{ORT_PREFIX} {threads}t")), "forward")
        ours = _median(results.rows.get((shape, f"neuroscope cpu {threads}t")), "cache")
        ratio = ours / ort
        ok = ratio <= GOAL_RATIO
        passed &= ok
        print(f"{threads} thread{'s' if threads > 1 else ''}: NeuroScope cpu run_with_cache {ours:.0f} ms / "
              f"onnxruntime-web forward {ort:.0f} ms = {ratio:.2f}x (goal <= {GOAL_RATIO}x)  "
              f"-> {'PASS' if ok else 'FAIL'}")
    print(f"GOAL {'PASS' if passed else 'FAIL'}: NeuroScope's cpu backend with every hook cached within "
          f"{GOAL_RATIO}x of onnxruntime-web's full-graph forward at {shape[0]}x{shape[1]}, "
          f"{' and '.join(f'{t}' for t in thread_counts)} thread(s)")


def print_load(label):
    one, five, fifteen = os.getloadavg()
    cores = len(os.sched_getaffinity(0))
    print(f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} ({cores} cores)")
    if one > LOAD_WARNING:
        print(f"WARNING: load average {one:.2f} > {LOAD_WARNING:.0f}: other processes share these "
              f"{cores} cores; the times are noisy (rerun on a quiet machine)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per thread count")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per runner and mode per round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per runner and mode first")
    parser.add_argument("--positions", type=int, default=128, help="sequence length (batch 1)")
    # On SwiftShader one GPT-2-small forward takes ~40-60 s here (the size of the weights, not
    # the sequence, sets it), so the GPU backends get one warm-up (it compiles the pipelines;
    # there is no baking) and few timed runs by default.
    parser.add_argument("--gpu-positions", type=int, default=8, help="sequence length for webgpu/webgl")
    parser.add_argument("--gpu-warmup", type=int, default=1, help="untimed runs per mode on webgpu/webgl")
    parser.add_argument("--gpu-repeats", type=int, default=1, help="timed runs per mode on webgpu/webgl")
    parser.add_argument("--threads", default="1,2", help="wasm thread counts for cpu and onnxruntime")
    parser.add_argument("--backends", default="cpu,webgpu,webgl", help="NeuroScope backends to run")
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    args.gpu_backends = [b for b in ("webgpu", "webgl") if b in backends]
    thread_counts = [int(t) for t in args.threads.split(",")] if "cpu" in backends else []
    if args.warmup < 2:
        parser.error("--warmup must be at least 2: the first runs bake weights into onnxruntime sessions")

    began = time.perf_counter()
    print_load("at start")
    print(f"model: {os.path.relpath(MODEL_DIR, ROOT)} ({'created' if prepare_model() else 'reused'}); "
          f"ONNX graph: {os.path.relpath(ONNX_PATH, ROOT)} ({'exported' if prepare_onnx() else 'reused'})",
          flush=True)
    tokens, small_tokens = make_tokens(1, args.positions), make_tokens(1, args.gpu_positions)
    results = Results()
    crashed = False
    with tempfile.TemporaryDirectory(prefix="neuroscope-bench-") as folder, bench_page(folder) as bench:
        log(f"page up at {bench.base_url}/bench/browser_page.html (cross-origin isolated)")
        for threads in thread_counts:
            run_threads(bench, results, threads, args, tokens, small_tokens)
        for backend in args.gpu_backends:
            crashed |= not run_gpu(bench, results, backend, args, small_tokens)

    print()
    print_table(results)
    print()
    print_parity(results)
    for note in results.notes:
        print(note)
    print()
    if thread_counts:
        print_verdict(results, (1, args.positions), thread_counts)
    print("measured earlier on this machine (DESIGN.md §10): onnxruntime-web ~930 ms at 1 thread, "
          "~460 ms at 2")
    print_load("at end")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump({"args": {k: v for k, v in vars(args).items()}, "load_average_end": os.getloadavg(),
                   "rows": [{"shape": list(shape), "runner": runner, **row}
                            for (shape, runner), row in results.rows.items()]}, out, indent=1)
    print(f"total {time.perf_counter() - began:.0f} s; raw times in {os.path.relpath(RESULTS, ROOT)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
