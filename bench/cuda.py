"""GPU benchmark: NeuroScope's torch backend vs TransformerLens 4.x on one CUDA device.

    python bench/cuda.py [--device cuda] [--shapes 8x128 32x512] [--warmup 3] [--repeats 20]
                         [--only FRAMEWORK ...]

The model is bench/forward.py's: a GPT-2-small-shaped ``GPT2LMHeadModel`` with seeded
random weights, saved once to ``bench/.cache/gpt2-small-random/``. Each framework runs
in a fresh subprocess (its own CUDA context and caching allocator), with every shape
and mode in turn:

* NeuroScope: ``model(tokens)`` and ``model.run_with_cache(tokens)`` (every hook point)
  on ``set_backend("torch", device=...)``;
* TransformerLens: ``bridge(tokens)`` and ``bridge.run_with_cache(tokens)`` (every hook
  point) on ``TransformerBridge.boot_transformers(..., device=...)``, under
  ``torch.no_grad()``;
* Hugging Face: ``GPT2LMHeadModel`` forward under ``torch.inference_mode()`` (the
  reference for the logits, and a floor for the plain forward).

A timed run is wall-clock from the call to ``torch.cuda.synchronize()`` after it, so
Python dispatch counts as a user sees it; times are medians after the warm-up runs.
Peak memory is ``torch.cuda.max_memory_allocated()`` over the warm-up and timed runs
minus what the loaded model holds (one result alive at a time). torch's own settings
are left as a user has them (TF32 for matmuls off by default) and printed. For
NeuroScope one extra cache run counts the host-device synchronisations it makes
(``torch.cuda.set_sync_debug_mode``): each stalls the GPU queue.

The logits of each framework at the first shape's last position are compared with
Hugging Face's (max |difference|). Nothing here needs a GPU to run: ``--device cpu``
with a small shape (``--shapes 1x16``) checks the script itself. Raw numbers go to
``bench/results/cuda.json`` (``--results``); ``--model`` names another saved GPT-2 folder.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from forward import MODEL_DIR, ROOT, prepare_model, worker_env  # bench/ is this folder

RESULTS = os.path.join(ROOT, "bench", "results", "cuda.json")
FRAMEWORKS = ("neuroscope", "transformerlens", "hf")
MODES = {"neuroscope": ("forward", "cache"), "transformerlens": ("forward", "cache"), "hf": ("forward",)}
DEFAULT_SHAPES = ("8x128", "32x512")


def parse_shape(text):
    try:
        batch, positions = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r}: expected BATCHxPOSITIONS, e.g. 8x128") from None
    if batch < 1 or not 1 <= positions <= 1024:
        raise argparse.ArgumentTypeError(f"shape {text!r}: batch >= 1 and 1 <= positions <= 1024 (GPT-2's "
                                         f"context) expected")
    return batch, positions


# -- the worker: one framework, every shape and mode, in a fresh process ---------
def _load(framework, device, folder):
    """(run(tokens, mode) -> logits or (logits, cache), number of cached entries)."""
    import torch

    if framework == "neuroscope":
        sys.path.insert(0, os.path.join(ROOT, "py"))
        import neuroscope

        model = neuroscope.TransformerModel.from_huggingface(
            folder, backend=neuroscope.set_backend("torch", device=device))

        def run(tokens, mode):
            return model(tokens) if mode == "forward" else model.run_with_cache(tokens)

        def as_torch(logits):
            return logits.data.tensor

        return run, as_torch

    import transformers

    transformers.logging.set_verbosity_error()
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(folder).eval().to(device)
    if framework == "hf":
        def run(tokens, mode):
            with torch.inference_mode():
                return hf_model(tokens, use_cache=False).logits
    else:
        from transformer_lens.model_bridge import TransformerBridge

        bridge = TransformerBridge.boot_transformers(folder, hf_model=hf_model, device=device,
                                                     dtype=torch.float32)

        def run(tokens, mode):
            with torch.no_grad():
                return bridge(tokens) if mode == "forward" else bridge.run_with_cache(tokens)
    return run, (lambda logits: logits)


def _count_syncs(run, tokens, device):
    """Host-device synchronisations one cache run makes (CUDA only; None elsewhere)."""
    import warnings

    import torch

    if device.type != "cuda":
        return None
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            result = run(tokens, "cache")
        finally:
            torch.cuda.set_sync_debug_mode("default")
        del result
    return sum("synchroniz" in str(w.message) for w in caught)


def worker(framework, folder, device_name, shapes, warmup, repeats, logits_path):
    import numpy as np
    import torch

    device = torch.device(device_name)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    started = time.perf_counter()
    run, as_torch = _load(framework, device, folder)
    with open(os.path.join(folder, "config.json")) as config:
        vocab = json.load(config)["vocab_size"]
    sync()
    load_s = time.perf_counter() - started
    rows = []
    for index, (batch, positions) in enumerate(shapes):
        ids = np.random.default_rng(index).integers(0, vocab, size=(batch, positions))
        tokens = ids if framework == "neuroscope" else torch.from_numpy(ids).to(device)
        for mode in MODES[framework]:
            sync()
            if cuda:
                torch.cuda.empty_cache()
                base = torch.cuda.memory_allocated(device)
                torch.cuda.reset_peak_memory_stats(device)
            times, entries = [], None
            for attempt in range(warmup + repeats):
                begin = time.perf_counter()
                result = run(tokens, mode)
                sync()
                elapsed = time.perf_counter() - begin
                if attempt >= warmup:
                    times.append(elapsed)
                logits, cache = result if mode == "cache" else (result, None)
                if cache is not None:
                    entries = len(cache)
                if index == 0 and mode == "forward" and attempt == 0:
                    np.save(logits_path, as_torch(logits)[:, -1].float().cpu().numpy())
                del result, logits, cache  # one result alive at a time: the peak is one pass's
            row = {"framework": framework, "mode": mode, "shape": [batch, positions],
                   "times_ms": [1e3 * t for t in times], "entries": entries}
            if cuda:
                row["peak_above_model_mib"] = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            if framework == "neuroscope" and mode == "cache":
                row["syncs_per_cache_run"] = _count_syncs(run, tokens, device)
            rows.append(row)
    report = {"framework": framework, "load_s": load_s, "rows": rows, "torch": torch.__version__,
              "device": torch.cuda.get_device_name(device) if cuda else "cpu",
              "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
              "matmul_precision": torch.get_float32_matmul_precision()}
    if framework == "transformerlens":
        import importlib.metadata

        report["transformer_lens"] = importlib.metadata.version("transformer_lens")
    print("RESULT " + json.dumps(report), flush=True)


# -- the parent ------------------------------------------------------------------
def run_worker(framework, args, folder):
    logits_path = os.path.join(folder, f"{framework}.npy")
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--device", args.device,
               "--model", args.model,
               "--warmup", str(args.warmup), "--repeats", str(args.repeats),
               "--logits", logits_path, "--shapes", *(f"{b}x{p}" for b, p in args.shapes)]
    done = subprocess.run(command, env=worker_env(0, False), capture_output=True, text=True, cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"worker {framework} on {args.device} failed with exit code {done.returncode}")
    return json.loads(lines[-1][len("RESULT "):]), logits_path


def _median(row):
    return statistics.median(row["times_ms"]) if row else None


def print_report(reports, differences):
    first = next(iter(reports.values()))
    print(f"device: {first['device']}; torch {first['torch']}; TF32 matmuls "
          f"{'on' if first['tf32_matmul'] else 'off'}, float32 matmul precision {first['matmul_precision']}"
          + (f"; TransformerLens {reports['transformerlens']['transformer_lens']}"
             if "transformerlens" in reports else ""))
    rows = {(row["framework"], row["mode"], tuple(row["shape"])): row
            for report in reports.values() for row in report["rows"]}
    shapes = sorted({key[2] for key in rows}, key=lambda s: s[0] * s[1])
    print(f"{'shape':<8}{'framework':<17}{'forward ms':>11}{'cache ms':>10}{'hooks':>7}{'peak MiB':>10}"
          f"{'syncs':>7}{'cache TL/NS':>13}")
    for shape in shapes:
        tl_cache = _median(rows.get(("transformerlens", "cache", shape)))
        for framework in FRAMEWORKS:
            forward, cache = rows.get((framework, "forward", shape)), rows.get((framework, "cache", shape))
            if forward is None:
                continue
            peak = (cache or forward).get("peak_above_model_mib")
            syncs = (cache or {}).get("syncs_per_cache_run")
            ours = _median(cache) if framework == "neuroscope" else None
            ratio = f"{tl_cache / ours:.2f}x" if tl_cache and ours else "-"
            print(f"{f'{shape[0]}x{shape[1]}':<8}{framework:<17}{_median(forward):>11.1f}"
                  f"{(f'{_median(cache):.1f}' if cache else '-'):>10}{(cache or {}).get('entries') or '-':>7}"
                  f"{(f'{peak:.0f}' if peak is not None else '-'):>10}{'-' if syncs is None else syncs:>7}"
                  f"{ratio:>13}")
    print("ms: medians, wall clock to a synchronised device; peak MiB: max allocated above the loaded "
          "model (cache row where there is one); cache TL/NS: TransformerLens' run_with_cache time over "
          "NeuroScope's")
    for framework, difference in differences.items():
        print(f"logits vs Hugging Face, last position, first shape: {framework} max |difference| "
              f"{difference:.2e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda",
                        help="a torch device (default cuda; cpu checks the script)")
    parser.add_argument("--shapes", nargs="+", type=parse_shape,
                        default=[parse_shape(text) for text in DEFAULT_SHAPES],
                        help="BATCHxPOSITIONS each (default 8x128 32x512)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs first, per shape and mode")
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per shape and mode")
    parser.add_argument("--model", default=MODEL_DIR,
                        help="a saved GPT2LMHeadModel folder (default: the seeded random GPT-2 small, "
                             "saved once)")
    parser.add_argument("--results", default=RESULTS, help="where the raw numbers go (JSON)")
    parser.add_argument("--only", choices=FRAMEWORKS, action="append", help="run only these frameworks")
    parser.add_argument("--worker", choices=FRAMEWORKS, help=argparse.SUPPRESS)
    parser.add_argument("--logits", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.model, args.device, args.shapes, args.warmup, args.repeats, args.logits)
        return 0
    import numpy as np
    import torch

    if torch.device(args.device).type == "cuda" and not torch.cuda.is_available():
        # Not a failure: `build.py bench` runs every benchmark, on machines without a GPU too.
        print(f"skipped: device {args.device!r}, but this torch ({torch.__version__}) sees no CUDA "
              f"device (--device cpu checks the script)")
        return 0
    if args.model == MODEL_DIR and prepare_model():
        print(f"saved a seeded random GPT-2 small to {MODEL_DIR}")
    reports, logits = {}, {}
    with tempfile.TemporaryDirectory() as folder:
        for framework in args.only or FRAMEWORKS:
            print(f"running {framework} on {args.device} ...", flush=True)
            try:
                reports[framework], path = run_worker(framework, args, folder)
            except RuntimeError as error:  # a framework that cannot run (not installed) is left out
                print(f"{error}: left out of the table", flush=True)
                continue
            logits[framework] = np.load(path)
    if not reports:
        print("no framework ran")
        return 1
    differences = {name: float(np.abs(value - logits["hf"]).max()) for name, value in logits.items()
                   if name != "hf" and "hf" in logits}
    print_report(reports, differences)
    os.makedirs(os.path.dirname(os.path.abspath(args.results)), exist_ok=True)
    with open(args.results, "w") as out:
        json.dump({"date": datetime.date.today().isoformat(), "device": args.device, "reports": reports,
                   "logits_max_difference_vs_hf": differences}, out, indent=1)
    print(f"raw numbers: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
