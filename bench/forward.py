"""Forward-pass benchmark: NeuroScope vs TransformerLens 4.x vs Hugging Face on GPT-2 small.

    python bench/forward.py [--rounds 2] [--repeats 6] [--threads T] [--tuned]
                            [--only FRAMEWORK ...]

A GPT-2-small-shaped model (``GPT2Config()`` defaults) with seeded random
weights is saved once to ``bench/.cache/gpt2-small-random/``. At batch x
positions 1x128 and 8x128, each measurement runs in a fresh subprocess (this
script re-invoked with ``--worker``), so frameworks cannot disturb each other:

* NeuroScope: ``model(tokens)`` and ``model.run_with_cache(tokens)`` (every hook point),
  on the torch backend (CPU; the default where torch is installed) and on the numpy
  backend (the reference, and the default without torch);
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

By default every worker runs in the machine's environment as it is, as a user runs it:
no thread counts, BLAS kernels or malloc tunables set from outside (what the package
does by itself counts). ``--threads T`` gives every framework T threads (OpenBLAS,
MKL, OpenMP, torch); ``--tuned`` unsets ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``
(DESIGN.md §10: they can pin a slower kernel) and sets glibc malloc tunables that
keep freed memory in the heap, for every framework alike: a diagnosis, not the goal.

The goals (PASS/FAIL each; the exit status is 0 either way), set on a 2-core AVX-512
machine (Intel Sapphire-Rapids class) where torch's CPU matmuls beat numpy's:
NeuroScope's cache-everything run on its default backend >= 1.3x faster than
TransformerLens' at 1x128 and >= 1.2x at 8x128; each backend's cache-everything run
within 1.15x of its own gemm floor; peak memory above the loaded model <= 0.7x
TransformerLens' at both shapes. The CPU and its vector extensions are printed with the
verdict. Other processes' CPU use during each job is measured from ``/proc/stat`` and a
warning printed when the machine was not quiet. Raw numbers go to
``bench/results/forward.json``.
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

# Pin OpenBLAS to a slower kernel when set (``--tuned`` unsets them for every worker).
SLOW_BLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# By default glibc serves big blocks with fresh mmap'd pages (page faults on every
# first touch) and trims freed heap; a fixed threshold (32 MiB is glibc's largest;
# larger values are ignored) and a high trim threshold keep freed pages for reuse.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(4 << 30)}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

FRAMEWORKS = ("neuroscope-torch", "neuroscope-numpy", "transformerlens", "hf")
# "gemm": only the forward's matrix products, on numpy (neuroscope-numpy) or torch (hf):
# the floor no implementation on that BLAS can go under.
MODES = {"neuroscope-numpy": ("forward", "cache", "gemm"), "neuroscope-torch": ("forward", "cache"),
         "transformerlens": ("forward", "cache"), "hf": ("forward", "gemm")}
GEMM_FLOOR = {"neuroscope-numpy": "neuroscope-numpy", "neuroscope-torch": "hf"}  # whose gemm job
GOAL_SPEEDUP = {(1, 128): 1.3, (8, 128): 1.2}  # TL's cache-everything time over NeuroScope's
GOAL_FLOOR = 1.15  # a backend's cache-everything time over its gemm floor
GOAL_MEMORY = 0.7  # NeuroScope's peak over TL's


# -- the worker: one framework, one mode, one shape, in a fresh process ----------
def _load(framework, threads):
    """(run(tokens, mode), token converter, cache size probe) for one framework."""
    if framework.startswith("neuroscope"):
        sys.path.insert(0, os.path.join(ROOT, "py"))
        import neuroscope

        if framework == "neuroscope-torch" and threads:
            import torch

            torch.set_num_threads(threads)
        backend = neuroscope.set_backend(framework.split("-")[1])
        model = neuroscope.TransformerModel.from_huggingface(MODEL_DIR, backend=backend)

        def run(tokens, mode):
            return model(tokens) if mode == "forward" else model.run_with_cache(tokens)[1]

        return run, (lambda ids: ids), (lambda cache: (len(cache), cache.nbytes))

    import torch
    import transformers

    if threads:
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
    if framework == "neuroscope-numpy":
        import numpy as np

        rng = np.random.default_rng(0)

        def make(*shape):
            return rng.standard_normal(shape, dtype=np.float32)

        context = contextlib.nullcontext
    else:
        import torch

        if threads:
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
    if framework != "neuroscope-numpy":
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


def worker_env(threads, tuned):
    """The machine's environment (offline, quiet), plus what ``--threads``/``--tuned`` ask for."""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               PYTHONWARNINGS="ignore")
    if threads:
        env.update({name: str(threads) for name in THREAD_VARS})
    if tuned:
        for name in SLOW_BLAS_VARS:
            env.pop(name, None)
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
               "--threads", str(args.threads or 0)]
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
          "numpy for neuroscope-numpy, torch for hf;\n"
          "peak: MiB of peak RSS above the RSS of the loaded model")


def cpu_summary():
    """The CPU model and its widest vector extensions (the goals were set on AVX-512)."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    vector = [f for f in ("avx2", "avx512f", "amx_tile") if f in flags]
    return f"{model}; {', '.join(vector) or 'no AVX2'}; {os.cpu_count()} cores"


def _ratio_line(label, value, goal, higher_is_better=True):
    ok = value >= goal if higher_is_better else value <= goal
    sign = ">=" if higher_is_better else "<="
    return ok, f"{label} = {value:.2f}x (goal {sign} {goal}x) -> {'PASS' if ok else 'FAIL'}"


def print_verdict(merged, default_backend):
    """Each goal once per shape, for the frameworks this run measured."""
    ours_name = f"neuroscope-{default_backend}"
    results = []
    for shape in SHAPES:
        name = f"{shape[0]}x{shape[1]}"
        theirs = merged.get(("transformerlens", "cache", shape))
        lines = []
        ours = merged.get((ours_name, "cache", shape))
        if ours and theirs:
            lines.append(_ratio_line(f"TL / NeuroScope ({default_backend}, the default) run_with_cache time",
                                     theirs["median_ms"] / ours["median_ms"], GOAL_SPEEDUP[shape]))
        for framework, floor_of in GEMM_FLOOR.items():
            cache, floor = merged.get((framework, "cache", shape)), merged.get((floor_of, "gemm", shape))
            if cache and floor:
                lines.append(_ratio_line(f"{framework} run_with_cache / its gemm floor",
                                         cache["median_ms"] / floor["median_ms"], GOAL_FLOOR, False))
        for framework in GEMM_FLOOR:
            cache = merged.get((framework, "cache", shape))
            if cache and theirs:
                lines.append(_ratio_line(f"{framework} peak memory / TL's",
                                         cache["peak_increase_mib"] / theirs["peak_increase_mib"],
                                         GOAL_MEMORY, False))
        hf, floor = merged.get(("hf", "forward", shape)), merged.get(("neuroscope-numpy", "gemm", shape))
        if theirs and floor:
            reach = theirs["median_ms"] / floor["median_ms"]
            lines.append((True, f"(TL run_with_cache / numpy gemm floor = {reach:.2f}x: the most a numpy "
                                "backend could reach against TL)"))
        for framework in GEMM_FLOOR:
            forward = merged.get((framework, "forward", shape))
            if hf and forward:
                ratio = hf["median_ms"] / forward["median_ms"]
                lines.append((True, f"(forward HF / {framework} = {ratio:.2f}x)"))
        for index, (ok, line) in enumerate(lines):
            print(f"{name if index == 0 else '':<7}{line}")
            results.append(ok)
    print(f"on: {cpu_summary()}")
    print(f"GOALS {'PASS' if all(results) else 'FAIL'} ({sum(results)} of {len(results)} lines pass)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=6,
                        help="timed runs per round at 1x128 (half as many at 8x128)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first (1 at 8x128)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every job this many times, alternating the order, and pool the times")
    parser.add_argument("--threads", type=int, default=0,
                        help="give every framework this many threads (default: each framework's own choice)")
    parser.add_argument("--tuned", action="store_true",
                        help="unset the OpenBLAS kernel variables and set glibc malloc tunables "
                             "for every worker")
    parser.add_argument("--only", choices=FRAMEWORKS, action="append", help="run only these frameworks")
    parser.add_argument("--worker", nargs=4, metavar=("FRAMEWORK", "MODE", "BATCH", "POS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        framework, mode, batch, positions = args.worker
        worker(framework, mode, int(batch), int(positions), args.warmup, args.repeats, args.threads)
        return 0

    began = time.perf_counter()
    env = worker_env(args.threads, args.tuned)
    blas_vars = ", ".join(f"{k}={os.environ[k]}" for k in SLOW_BLAS_VARS if k in os.environ) or "none set"
    print(f"environment: {'tuned (diagnosis)' if args.tuned else 'as the machine has it'}; "
          f"{' / '.join(SLOW_BLAS_VARS)}: {blas_vars}{' (unset for every worker)' if args.tuned else ''}")
    every = f" for every framework ({', '.join(THREAD_VARS)}, torch.set_num_threads)" if args.threads else ""
    print(f"threads: {args.threads or 'each framework chooses'}{every}")
    tuned = ", ".join(f"{k}={v}" for k, v in TUNED_MALLOC.items())
    print(f"malloc: {tuned if args.tuned else 'as the machine has it'} (the same for every framework)")
    print(f"model: {os.path.relpath(MODEL_DIR, ROOT)} ({'created' if prepare_model() else 'reused'})",
          flush=True)
    sys.path.insert(0, os.path.join(ROOT, "py"))
    from neuroscope.backends import default_backend_name

    default_backend = default_backend_name()
    print(f"NeuroScope's default backend here: {default_backend}", flush=True)

    frameworks = args.only or list(FRAMEWORKS)
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
        json.dump({"tuned": args.tuned, "threads": args.threads, "cpu": cpu_summary(), "rounds": rounds},
                  out, indent=1)
    print()
    print_table(merged)
    print()
    print_verdict(merged, default_backend)
    busiest = max(entry["other_load"] for entry in merged.values())
    if busiest > 0.1:
        print(f"WARNING: other processes kept up to {busiest:.2f} of {os.cpu_count()} cores busy during "
              f"a job; the times are noisy (rerun on a quiet machine)")
    print(f"total {time.perf_counter() - began:.0f} s; raw numbers in {os.path.relpath(RESULTS, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
