"""Forward-pass benchmark: NeuroScope vs TransformerLens 4.x vs Hugging Face on GPT-2 small.

    python bench/forward.py [--rounds 2] [--repeats 6] [--malloc tuned|default] [--threads T]
                            [--backend numpy|torch]

A GPT-2-small-shaped model (``GPT2Config()`` defaults) with seeded random
weights is saved once to ``bench/.cache/gpt2-small-random/``. At batch x
positions 1x128 and 8x128, each measurement runs in a fresh subprocess (this
script re-invoked with ``--worker``), so frameworks cannot disturb each other:

* NeuroScope: ``model(tokens)`` and ``model.run_with_cache(tokens)`` (every hook point),
  on the numpy backend, and with ``--backend torch`` on the torch backend too
  ("neuroscope-torch", CPU);
* TransformerLens: ``bridge(tokens)`` and ``bridge.run_with_cache(tokens)`` (every
  hook point) on ``TransformerBridge.boot_transformers``, under ``torch.no_grad()``;
* Hugging Face: ``GPT2LMHeadModel`` forward under ``torch.inference_mode()``;
* "gemm": the forward's matrix products alone, in numpy and in torch: the floor
  under any implementation on that BLAS, which bounds the reachable ratio.

Times are medians over the timed runs (after warm-up) of every round; rounds
alternate the job order so slow drift of the machine hits every framework.
Peak memory is the peak RSS (``ru_maxrss``) of the warm-up and timed runs minus
the RSS of the loaded model (weights made resident first); the kernel's
high-water mark is reset after loading (``/proc/self/clear_refs``) so loading's
own peak cannot hide it. The largest peak over the rounds is reported.

Every worker gets the same environment: ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` unset (DESIGN.md §10: they pin a slower kernel), one
thread count for OpenBLAS, MKL, OpenMP and torch, and, unless ``--malloc
default``, glibc malloc tunables that keep freed memory in the heap for the
next pass instead of handing it back to the kernel and faulting it in again.
torch allocates through the same glibc malloc, so all frameworks get them.

The goal (printed as PASS/FAIL; the exit status is 0 either way): NeuroScope's
cache-everything run at least 1.5x faster than TransformerLens' at both shapes,
with lower peak memory. Other processes' CPU use during each job is measured
from ``/proc/stat`` and a warning printed when the machine was not quiet.
Raw numbers go to ``bench/results/forward.json``.
"""

import argparse
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from memory import blas_summary, reset_peak_rss, status_kib  # bench/ is this script's folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_DIR = os.path.join(ROOT, "bench", ".cache", "gpt2-small-random")
RESULTS = os.path.join(ROOT, "bench", "results", "forward.json")
SHAPES = ((1, 128), (8, 128))
VOCAB = 50257
GOAL_SPEEDUP = 1.5

# Pin OpenBLAS to a slower kernel when set. OpenBLAS reads them when numpy loads
# it, and numpy is imported only inside workers, so unsetting them here suffices.
SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# By default glibc serves big blocks with fresh mmap'd pages (page faults on every
# first touch) and trims freed heap; a fixed threshold (32 MiB is glibc's largest;
# larger values are ignored) and a high trim threshold keep freed pages for reuse.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
REMOVED_BLAS_VARS = {name: os.environ.pop(name) for name in SLOW_BLAS_VARS if name in os.environ}

FRAMEWORKS = ("neuroscope", "neuroscope-torch", "transformerlens", "hf")
COMPARED = ("neuroscope", "transformerlens", "hf")  # the verdict's frameworks
# "gemm": only the forward's matrix products, on numpy (neuroscope) or torch (hf):
# the floor no implementation on that BLAS can go under.
MODES = {"neuroscope": ("forward", "cache", "gemm"), "neuroscope-torch": ("forward", "cache"),
         "transformerlens": ("forward", "cache"), "hf": ("forward", "gemm")}


# -- the worker: one framework, one mode, one shape, in a fresh process ----------
def _load(framework, threads):
    """(run(tokens, mode), token converter, cache size probe) for one framework."""
    if framework.startswith("neuroscope"):
        sys.path.insert(0, os.path.join(ROOT, "py"))
        import neuroscope

        backend = None
        if framework == "neuroscope-torch":
            import torch

            torch.set_num_threads(threads)
            backend = neuroscope.set_backend("torch")
        model = neuroscope.TransformerModel.from_huggingface(MODEL_DIR, backend=backend)

        def run(tokens, mode):
            return model(tokens) if mode == "forward" else model.run_with_cache(tokens)[1]

        return run, (lambda ids: ids), (lambda cache: (len(cache), cache.nbytes))

    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.logging.set_verbosity_error()
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(MODEL_DIR).eval()
    if framework == "hf":
        def run(tokens, mode):
            with torch.inference_mode():
                return hf_model(tokens, use_cache=False).logits
        module = hf_model
    else:
        from transformer_lens.model_bridge import TransformerBridge

        module = TransformerBridge.boot_transformers(MODEL_DIR, hf_model=hf_model, device="cpu",
                                                     dtype=torch.float32)

        def run(tokens, mode):
            with torch.no_grad():
                return module(tokens) if mode == "forward" else module.run_with_cache(tokens)[1]
    # transformers maps safetensors files lazily: touch every weight so the pages
    # are resident before the baseline RSS is read, as NeuroScope's copies are.
    with torch.no_grad():
        for tensor in (*module.parameters(), *module.buffers()):
            tensor.sum()

    def cache_size(cache):
        # TransformerLens stores the same tensor under several names (hook_out of
        # one module is hook_in of the next): count each storage once.
        storages = {t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in cache.values()}
        return len(cache), sum(storages.values())

    return run, torch.from_numpy, cache_size


def _gemms_only(framework, rows, threads):
    """GPT-2 small's matrix products alone (per layer Q, K, V, O, MLP in, MLP out; then
    the tied unembedding), on random data; attention's small products are left out."""
    if framework == "neuroscope":
        import numpy as np

        rng = np.random.default_rng(0)

        def make(*shape):
            return rng.standard_normal(shape, dtype=np.float32)

        context = contextlib.nullcontext
    else:
        import torch

        torch.set_num_threads(threads)
        make, context = torch.randn, torch.inference_mode
    weights = [make(768, 768) for _ in range(4)] + [make(768, 3072), make(3072, 768)]
    embed, x, hidden = make(VOCAB, 768), make(rows, 768), make(rows, 3072)

    def run(_tokens, _mode):
        with context():
            for _ in range(12):
                for weight in weights:
                    (hidden if weight.shape[0] == 3072 else x) @ weight
            return x @ embed.T

    return run, (lambda ids: ids), None


def worker(framework, mode, batch, positions, warmup, repeats, threads):
    import numpy as np

    started = time.perf_counter()
    if mode == "gemm":
        run, convert, cache_size = _gemms_only(framework, batch * positions, threads)
    else:
        run, convert, cache_size = _load(framework, threads)
    load_s = time.perf_counter() - started
    tokens = convert(np.random.default_rng(0).integers(0, VOCAB, size=(batch, positions)))
    gc.collect()
    peak_reset = reset_peak_rss()
    rss_loaded_kib = status_kib("VmRSS")
    for _ in range(warmup):
        result = run(tokens, mode)
        del result
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        result = run(tokens, mode)
        times.append(time.perf_counter() - begin)
        if mode == "cache" and len(times) == 1:
            entries, cached_bytes = cache_size(result)
        del result  # never hold two results: the peak is one pass's worth
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {"framework": framework, "mode": mode, "shape": [batch, positions],
              "times_ms": [1e3 * t for t in times], "rss_loaded_mib": rss_loaded_kib / 1024,
              "peak_increase_mib": (peak_kib - rss_loaded_kib) / 1024, "peak_reset": peak_reset,
              "load_s": load_s, "blas": blas_summary()}
    if mode == "cache":
        report.update(cache_entries=entries, cache_mib=cached_bytes / 2**20)
    if framework != "neuroscope":
        import torch

        report["torch_threads"] = torch.get_num_threads()
    print("RESULT " + json.dumps(report), flush=True)


# -- the parent: prepare, run every job in a subprocess, report ------------------
def prepare_model():
    """Save a seeded random GPT-2 small once; reuse it afterwards."""
    if os.path.exists(os.path.join(MODEL_DIR, "model.safetensors")):
        return False
    import torch
    import transformers

    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(transformers.GPT2Config()).save_pretrained(MODEL_DIR)
    return True


def worker_env(threads, malloc):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONWARNINGS="ignore")
    env.update({name: str(threads) for name in THREAD_VARS})
    if malloc == "tuned":
        env.update(TUNED_MALLOC)
    return env


def _busy_cpu_s():
    """CPU seconds this machine has spent busy (all processes), from /proc/stat."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_job(job, args, env):
    """One worker subprocess; adds the CPU time other processes used meanwhile."""
    framework, mode, (batch, positions) = job
    warmup, repeats = (args.warmup, args.repeats) if batch == 1 else (1, max(2, args.repeats // 2))
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework, mode, str(batch),
               str(positions), "--warmup", str(warmup), "--repeats", str(repeats),
               "--threads", str(args.threads)]
    busy, ours, wall = _busy_cpu_s(), _children_cpu_s(), time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - wall
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"worker {framework} {mode} {batch}x{positions} failed with exit code "
                           f"{done.returncode}")
    result = json.loads(lines[-1][len("RESULT "):])
    other = (_busy_cpu_s() - busy) - (_children_cpu_s() - ours)
    result["other_load"] = max(other, 0.0) / wall  # cores kept busy by other processes
    return result


def merge_rounds(rounds):
    """Pool each job's times over rounds; peak memory is the largest seen."""
    merged = {}
    for result in (r for one_round in rounds for r in one_round):
        key = (result["framework"], result["mode"], tuple(result["shape"]))
        if key not in merged:
            merged[key] = dict(result, peaks=[], other_loads=[], times_ms=[])
        entry = merged[key]
        entry["times_ms"] += result["times_ms"]
        entry["peaks"].append(result["peak_increase_mib"])
        entry["other_loads"].append(result["other_load"])
    for entry in merged.values():
        entry["median_ms"] = statistics.median(entry["times_ms"])
        entry["min_ms"] = min(entry["times_ms"])
        entry["peak_increase_mib"] = max(entry["peaks"])
        entry["other_load"] = max(entry["other_loads"])
    return merged


def _cell(entry, key, width, digits=0):
    return f"{entry[key]:{width}.{digits}f}" if entry else f"{'-':>{width}}"


def print_table(merged):
    header = (f"{'framework':<18}{'shape':<7}{'forward ms':>11}{'(min)':>7}{'cache ms':>10}{'(min)':>7}"
              f"{'gemm ms':>9}{'fwd peak':>10}{'cache peak':>12}  cached (entries / unique MiB)")
    print(header)
    print("-" * len(header))
    for framework in FRAMEWORKS:
        for shape in SHAPES:
            forward, cache, gemm = (merged.get((framework, mode, shape)) for mode in ("forward", "cache",
                                                                                        "gemm"))
            if not (forward or cache):
                continue
            cached = f"{cache['cache_entries']} / {cache['cache_mib']:.0f}" if cache else "-"
            print(f"{framework:<18}{f'{shape[0]}x{shape[1]}':<7}"
                  f"{_cell(forward, 'median_ms', 11, 1)}{_cell(forward, 'min_ms', 7)}"
                  f"{_cell(cache, 'median_ms', 10, 1)}{_cell(cache, 'min_ms', 7)}"
                  f"{_cell(gemm, 'median_ms', 9)}"
                  f"{_cell(forward, 'peak_increase_mib', 10)}{_cell(cache, 'peak_increase_mib', 12)}"
                  f"  {cached}")
    print("ms: median (and min) over all timed runs; gemm: the forward's matrix products alone, "
          "numpy for neuroscope, torch for hf;\npeak: MiB of peak RSS above the RSS of the loaded model")


def print_verdict(merged):
    passed = True
    for shape in SHAPES:
        ours, theirs = merged[("neuroscope", "cache", shape)], merged[("transformerlens", "cache", shape)]
        speedup = theirs["median_ms"] / ours["median_ms"]
        memory = theirs["peak_increase_mib"] / max(ours["peak_increase_mib"], 1e-9)
        ok = speedup >= GOAL_SPEEDUP and ours["peak_increase_mib"] < theirs["peak_increase_mib"]
        passed &= ok
        name = f"{shape[0]}x{shape[1]}"
        print(f"{name}: run_with_cache time TL / NeuroScope = {speedup:.2f}x "
              f"(goal >= {GOAL_SPEEDUP}x, aim 2x); "
              f"peak memory TL / NeuroScope = {memory:.2f}x (goal > 1x)  -> {'PASS' if ok else 'FAIL'}")
        on_torch = merged.get(("neuroscope-torch", "cache", shape))
        if on_torch:
            print(f"{' ' * len(name)}  run_with_cache time TL / NeuroScope on torch = "
                  f"{theirs['median_ms'] / on_torch['median_ms']:.2f}x; NeuroScope numpy / torch = "
                  f"{ours['median_ms'] / on_torch['median_ms']:.2f}x")
        hf, forward = merged[("hf", "forward", shape)], merged[("neuroscope", "forward", shape)]
        floor = merged.get(("neuroscope", "gemm", shape))
        ceiling = (f"; TL run_with_cache / numpy gemm floor = {theirs['median_ms'] / floor['median_ms']:.2f}x"
                   " (the most any numpy implementation could reach)") if floor else ""
        print(f"{' ' * len(name)}  forward HF / NeuroScope = {hf['median_ms'] / forward['median_ms']:.2f}x"
              + ceiling)
    print(f"GOAL {'PASS' if passed else 'FAIL'}: NeuroScope run_with_cache >= {GOAL_SPEEDUP}x faster than "
          f"TransformerLens' at {' and '.join(f'{b}x{p}' for b, p in SHAPES)}, with lower peak memory")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6,
                        help="timed runs per round at 1x128 (half as many at 8x128)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (1 at 8x128)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every job this many times, alternating the order, and pool the times")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--malloc", choices=("tuned", "default"), default="tuned",
                        help="glibc malloc tunables for every worker (default: tuned)")
    parser.add_argument("--only", choices=FRAMEWORKS, action="append", help="run only these frameworks")
    parser.add_argument("--backend", choices=("numpy", "torch"), default="numpy",
                        help="torch: time NeuroScope on its torch backend too (neuroscope-torch)")
    parser.add_argument("--worker", nargs=4, metavar=("FRAMEWORK", "MODE", "BATCH", "POS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        framework, mode, batch, positions = args.worker
        worker(framework, mode, int(batch), int(positions), args.warmup, args.repeats, args.threads)
        return 0

    began = time.perf_counter()
    env = worker_env(args.threads, args.malloc)
    removed = ", ".join(f"{k}={v}" for k, v in REMOVED_BLAS_VARS.items())
    absent = f"nothing to unset ({' and '.join(SLOW_BLAS_VARS)} absent)"
    print(f"unset for every process: {removed or absent}")
    print(f"threads: {args.threads} for every framework ({', '.join(THREAD_VARS)}, torch.set_num_threads)")
    tuned = ", ".join(f"{k}={v}" for k, v in TUNED_MALLOC.items())
    print(f"malloc: {tuned if args.malloc == 'tuned' else 'glibc defaults'} (the same for every framework)")
    print(f"model: {os.path.relpath(MODEL_DIR, ROOT)} ({'created' if prepare_model() else 'reused'})",
          flush=True)

    frameworks = args.only or [f for f in FRAMEWORKS if f != "neuroscope-torch" or args.backend == "torch"]
    jobs = [(f, m, shape) for shape in SHAPES for f in frameworks for m in MODES[f]]
    timed_twice = [job for job in jobs if job[1] != "gemm"]  # the floors run in the first round only
    schedule = [jobs if i == 0 else timed_twice[::-1] if i % 2 else timed_twice for i in range(args.rounds)]
    rounds, number, seen_blas = [], 0, set()
    for round_jobs in schedule:
        results = []
        for job in round_jobs:
            number += 1
            framework, mode, (batch, positions) = job
            print(f"[{number}/{sum(map(len, schedule))}] {framework} {mode} {batch}x{positions} ...",
                  end=" ", flush=True)
            result = run_job(job, args, env)
            results.append(result)
            times = result["times_ms"]
            print(f"median {statistics.median(times):.1f} ms (min {min(times):.1f}), "
                  f"peak +{result['peak_increase_mib']:.0f} MiB, other load {result['other_load']:.2f} cores "
                  f"[{time.perf_counter() - began:.0f} s]", flush=True)
            if framework not in seen_blas:
                seen_blas.add(framework)
                torch_threads = result.get("torch_threads")
                print(f"    kernels in {framework}: {'; '.join(result['blas'])}"
                      + (f"; torch threads {torch_threads}" if torch_threads else ""))
        rounds.append(results)
    merged = merge_rounds(rounds)
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump({"malloc": args.malloc, "threads": args.threads, "rounds": rounds}, out, indent=1)
    print()
    print_table(merged)
    print()
    if set(COMPARED) <= set(frameworks):
        print_verdict(merged)
    busiest = max(entry["other_load"] for entry in merged.values())
    if busiest > 0.1:
        print(f"WARNING: other processes kept up to {busiest:.2f} of {os.cpu_count()} cores busy during "
              f"a job; the times are noisy (rerun on a quiet machine)")
    print(f"total {time.perf_counter() - began:.0f} s; raw numbers in {os.path.relpath(RESULTS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
