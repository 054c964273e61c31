"""DistributedAnalysis: attention-pattern analysis over the demo's natural text, in one process
and on a cluster; the bytes a task moves.

    python bench/distributed_analysis.py [--texts 2000] [--shard 64] [--workers 2] [--no-browser]

* **Dask**: ``DistributedAnalysis(model, cluster, "attention_pattern_analysis", texts)`` with
  ``cluster=None`` (this process) and with a ``ComputeCluster.local(n_workers=--workers)``
  of processes (started before the clock runs; the first run is timed too, since it includes
  each worker's one model load, and a second, warm one). Printed: the times, the speed-up,
  the overhead per task (a run of tasks that do nothing, per task), and that the results
  agree (max abs difference).
* **Bytes per task**: the pickled size of what one task sends (model reference, task,
  the shard's examples, context) and of its partial, from which the README's estimate for
  a 100-machine cluster over 1 M examples follows.
* **Browser**: the same analysis over ``ComputeCluster.browser(1)`` and ``(2)`` in the built
  Lens (headless Chromium, cpu backend, one wasm thread per member); the pool boots before
  the clock runs.

Texts are windows of 8-60 words of the demo's held-out text (bench/dataset_scale.py's).
The environment is left as a user has it; timings are of one run on this machine: compare
ratios, not milliseconds, across machines.
"""

import argparse
import json
import os
import pickle
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))
sys.path.insert(0, ROOT)

from dataset_scale import texts as demo_texts  # noqa: E402 (bench/ is this script's folder)


def _timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def _max_difference(a, b):
    return max(abs(x - y) for kind in a.scores for x, y in
               zip(a.scores[kind].reshape([-1]).tolist(), b.scores[kind].reshape([-1]).tolist()))


def _nothing(model, examples):
    return len(examples)


def dask_section(model, dataset, args):
    from neuroscope import ComputeCluster, DistributedAnalysis
    from neuroscope.distributed.analysis import model_reference

    def run(cluster, task="attention_pattern_analysis", **options):
        return DistributedAnalysis(model, cluster, task, dataset, shard_size=args.shard, progress=False,
                                   **options).run()

    out = {"texts": len(dataset), "shard": args.shard, "tasks": -(-len(dataset) // args.shard)}
    from threadpoolctl import threadpool_info, threadpool_limits

    out["blas"] = "; ".join(f"{p['internal_api']} {p.get('architecture') or ''} x{p['num_threads']}"
                            for p in threadpool_info())
    out["one_process_s"], here = _timed(lambda: run(None))
    with threadpool_limits(1):  # what one worker has: one core
        out["one_thread_s"], _ = _timed(lambda: run(None))
    print(f"  one process: {out['one_process_s']:.2f} s ({out['blas']}); with one BLAS thread "
          f"{out['one_thread_s']:.2f} s", flush=True)
    started = time.perf_counter()
    with ComputeCluster.local(n_workers=args.workers) as cluster:
        out["cluster_start_s"] = time.perf_counter() - started
        out["cold_s"], spread = _timed(lambda: run(cluster))
        out["warm_s"], spread = _timed(lambda: run(cluster))
        out["nothing_s"], _ = _timed(lambda: run(cluster, _nothing, combine=sum))
    out["speedup_cold"] = out["one_process_s"] / out["cold_s"]
    out["speedup_warm"] = out["one_process_s"] / out["warm_s"]
    out["speedup_per_core"] = out["one_thread_s"] / out["warm_s"]  # against one core
    out["overhead_ms_per_task"] = 1000 * out["nothing_s"] / out["tasks"]
    out["max_abs_difference"] = _max_difference(here, spread)
    records = dataset[:args.shard].to_records()
    task = DistributedAnalysis(model, None, "attention_pattern_analysis", dataset).task
    context = task.prepare(model, dataset)
    sent = pickle.dumps((model_reference(model), task, records, 0, context))
    partial = pickle.dumps(task.partial(model, records, 0, context))
    out.update(bytes_sent_per_task=len(sent), bytes_back_per_task=len(partial),
               bytes_per_example_sent=len(pickle.dumps(records)) / len(records))
    print(f"  {args.workers}-worker LocalCluster: start {out['cluster_start_s']:.1f} s, cold "
          f"{out['cold_s']:.2f} s (x{out['speedup_cold']:.2f}), warm {out['warm_s']:.2f} s "
          f"(x{out['speedup_warm']:.2f}; x{out['speedup_per_core']:.2f} of one core); empty tasks "
          f"{out['overhead_ms_per_task']:.1f} ms each; max |diff| {out['max_abs_difference']:.1e}",
          flush=True)
    return out


PAGE_SETUP = """
from neuroscope import ComputeCluster, Dataset, DistributedAnalysis, TransformerModel
model = TransformerModel.from_huggingface("demo")
texts = Dataset.from_records([{"text": t} for t in texts_in])
"""
PAGE_RUN = """
import time
cluster = ComputeCluster.browser(workers)
# A first, small run boots the members and loads the model in each.
DistributedAnalysis(model, cluster, "attention_pattern_analysis", texts[:workers * shard], shard_size=shard,
                    progress=False).run()
started = time.perf_counter()
result = DistributedAnalysis(model, cluster, "attention_pattern_analysis", texts, shard_size=shard,
                             progress=False).run()
[time.perf_counter() - started, {kind: values.tolist() for kind, values in result.scores.items()}]
"""


def browser_section(texts, args):
    import build
    from playwright.sync_api import sync_playwright

    out = {}
    with tempfile.TemporaryDirectory(prefix="neuroscope-bench-") as folder:
        site = build.command_build(os.path.join(folder, "site"))
        server, base_url = build.serve_in_thread(site)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"),
                                                     args=build.CHROMIUM_FLAGS, headless=True)
                page = browser.new_page()
                page.goto(f"{base_url}/web/index.html?backend=cpu&lens=off")
                out["cores"] = page.evaluate("navigator.hardwareConcurrency")
                page.evaluate("window.neuroscope.ready")
                call = "([code, globals]) => window.neuroscope.python(code, globals)"
                page.evaluate(call, [PAGE_SETUP, {"texts_in": texts}])
                scores = {}
                for workers in (1, 2):
                    seconds, scores[workers] = page.evaluate(call, [PAGE_RUN, {"workers": workers,
                                                                                "shard": args.shard}])
                    out[f"pool{workers}_s"] = seconds
                    print(f"  browser pool of {workers}: {seconds:.2f} s", flush=True)
                browser.close()
        finally:
            server.shutdown()
    out["pool_speedup"] = out["pool1_s"] / out["pool2_s"]
    out["pool_max_abs_difference"] = max(abs(a - b) for kind in scores[1] for r1, r2 in
                                         zip(scores[1][kind], scores[2][kind]) for a, b in zip(r1, r2))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--shard", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-browser", action="store_true")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)

    import neuroscope

    model = neuroscope.TransformerModel.from_huggingface("demo")
    texts = demo_texts(args.texts)
    dataset = neuroscope.Dataset.from_records([{"text": text} for text in texts], name="demo text windows")
    print(f"attention-pattern analysis of {len(texts)} texts (demo model), shards of {args.shard}; "
          f"{os.cpu_count()} cores", flush=True)
    figures = {"dask": dask_section(model, dataset, args)}
    if not args.no_browser:
        figures["browser"] = browser_section(texts, args)
        browser = figures["browser"]
        print(f"  browser pool 2 vs 1: x{browser['pool_speedup']:.2f} ({browser['cores']} cores); max |diff| "
              f"{browser['pool_max_abs_difference']:.1e}")
    dask = figures["dask"]
    per_million = 1_000_000 / args.shard
    moved = per_million * (dask["bytes_sent_per_task"] + dask["bytes_back_per_task"]) / 1e6
    print(f"bytes per task: {dask['bytes_sent_per_task']:,} sent ({dask['bytes_per_example_sent']:.0f} per "
          f"example), {dask['bytes_back_per_task']:,} back")
    print(f"1 M examples in shards of {args.shard}: {per_million:,.0f} tasks, {moved:,.0f} MB over the "
          "network in all (the same on 100 machines: each moves 1/100 of it), plus one model load per worker")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
