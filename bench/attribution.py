"""Attribution patching benchmark: one forward-and-backward against the patching sweep.

    python bench/attribution.py [--positions 64] [--repeats 3] [--browser] [--browser-threads 1]

On the GPT-2-small-shaped random model of bench/forward.py (``GPT2Config()`` defaults,
seeded weights in ``bench/.cache/gpt2-small-random/``), at 1 x ``positions`` tokens:

* **sweep**: ``get_act_patch_attn_head_out_all_pos``, exact activation patching of each of
  the 144 heads (its default batching of cells into forward passes), after caching the
  clean run;
* **atp**: ``attribution_patching(nodes="heads")``, the same 144 scores estimated from the
  clean run, the corrupted run and one backward pass;
* **torch**: the same formula, ``(z_clean - z_corrupt) . d metric / d z`` summed per head,
  written with torch autograd on the Hugging Face model (TransformerLens 4 has no
  attribution-patching function), in the same process, so the same BLAS;
* **grad cache memory**: the peak RSS increase of ``run_with_grad_cache`` with every hook
  point kept at 1 x 128 (the kernel's high-water mark reset first), and the bytes of the
  activations and gradients it returns.

With ``--browser``, the sweep and attribution patching run again in headless Chromium, in the
app's own worker on the cpu backend (wasm, ``--browser-threads``), on the site ``build.py
build`` writes (bench/browser.py's page and model files), timed to a readback of the scores;
and the grad cache's memory there is the peak RSS increase of Chromium's renderer processes
(their high-water marks reset first) while it runs.

The goal (printed as PASS/FAIL; the exit status is 0 either way): atp at least 20x faster
than the sweep. Times are medians of ``--repeats`` runs after one warm-up. The BLAS kernel
and threads are printed. Results go to ``bench/results/attribution.json``.
"""

import argparse
import json
import os
import re
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
RESULTS = os.path.join(ROOT, "bench", "results", "attribution.json")
GOAL = 20.0


def _median_s(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _kib(field):
    with open("/proc/self/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def _peak_mib(fn):
    """Peak RSS increase while ``fn`` runs (Linux: clear_refs resets the high-water mark)."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    base = _kib("VmRSS")
    result = fn()
    return (_kib("VmHWM") - base) / 1024, result


def _blas():
    try:
        from threadpoolctl import threadpool_info
        return [f"{p['internal_api']} {p.get('version') or ''} {p.get('architecture') or ''} "
                f"x{p['num_threads']}" for p in threadpool_info()]
    except ImportError:
        return ["threadpoolctl not installed"]


def _torch_atp(hf, clean, corrupted, answer, wrong, n_heads):
    import torch
    seen = []
    handles = [block.attn.c_proj.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
               for block in hf.transformer.h]
    try:
        with torch.no_grad():
            hf(clean)
        clean_z, seen[:] = list(seen), []
        logits = hf(corrupted).logits
        for z in seen:
            z.retain_grad()
        (logits[:, -1, answer] - logits[:, -1, wrong]).mean().backward()
        return torch.stack([((c - z) * z.grad).reshape(*z.shape[:2], n_heads, -1).sum(dim=(0, 1, 3))
                            for c, z in zip(clean_z, seen)]).detach().numpy()
    finally:
        for handle in handles:
            handle.remove()


# In the worker: the model from the page's site, the two timings and the grad cache.
BROWSER_SETUP = """
import time
from neuroscope import TransformerModel
from neuroscope.analysis import attribution_patching, get_act_patch_attn_head_out_all_pos, logit_diff_metric

model = TransformerModel.from_huggingface(location)
metric = logit_diff_metric(answer, wrong)
names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]


def sweep():
    _, clean_cache = model.run_with_cache(clean, names_filter=names)
    return get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, metric, progress=False)


def atp():
    return attribution_patching(model, clean, corrupted, metric, nodes="heads")


async def timed(which, count):
    fn = sweep if which == "sweep" else atp
    times, scores = [], None
    for _ in range(count):
        began = time.perf_counter()
        scores = await fn().tolist_async()
        times.append(time.perf_counter() - began)
    return {"times": times, "scores": scores, "base": metric(model(corrupted)).item()}


def grad_cache(tokens):
    _, cache, grads = model.run_with_grad_cache(tokens, metric)
    return sum(cache[n].size + grads[n].size for n in cache) * 4 / 2 ** 20


len(model.hook_names())
"""


def _renderers():
    """Chromium's renderer processes (the page and its workers run there)."""
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read()  # Chromium rewrites its own as one space-separated string
        except OSError:
            continue
        if entry.isdigit() and b"chrom" in command.split(b" ")[0] and b"--type=renderer" in command:
            pids.append(int(entry))
    return pids


def _process_kib(pid, field):
    with open(f"/proc/{pid}/status") as status:
        return int(re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE).group(1))


def browser_section(args, clean, corrupted, answer, wrong, long, spearman):
    """The sweep and attribution patching in the app's worker on the cpu backend; the grad cache's peak."""
    import tempfile

    import numpy as np

    from browser import bench_page
    from browser_setup import MODEL_URL_PATH, prepare_onnx
    prepare_onnx()  # the page's site links the graph of bench/browser.py
    out, name = {"threads": args.browser_threads}, "neuroscope cpu"
    with tempfile.TemporaryDirectory(prefix="neuroscope-bench-") as folder, bench_page(folder) as bench:
        info = bench.call("startNeuroScope", name, {"backend": "cpu", "threads": args.browser_threads})
        out["threads_booted"] = info.get("threads")
        bench.call("python", name, BROWSER_SETUP, {
            "location": f"{bench.base_url}/{MODEL_URL_PATH}", "clean": clean.tolist(),
            "corrupted": corrupted.tolist(), "answer": answer, "wrong": wrong})
        for which, count in (("sweep", max(1, args.repeats // 2)), ("atp", args.repeats)):
            bench.call("python", name, f"await timed({which!r}, 1)")  # warm-up (bakes sessions)
            reply = bench.call("python", name, f"await timed({which!r}, {count})")
            out[f"{which}_s"] = statistics.median(reply["times"])
            out[f"{which}_scores"], out["base"] = reply["scores"], reply["base"]
            print(f"  browser {which}: {', '.join(f'{t:.1f}' for t in reply['times'])} s", flush=True)
        exact = np.asarray(out.pop("sweep_scores")) - out.pop("base")
        out["spearman_atp_vs_sweep"] = spearman(exact, np.asarray(out.pop("atp_scores")))
        bench.call("python", name, "grad_cache(tokens)", {"tokens": long.tolist()})  # warm-up
        pids = _renderers()
        if not pids:
            raise RuntimeError("no Chromium renderer process found under /proc to measure")
        for pid in pids:
            with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")
        before = {pid: _process_kib(pid, "VmRSS") for pid in pids}
        kept = bench.call("python", name, "grad_cache(tokens)", {"tokens": long.tolist()})
        rise = [_process_kib(pid, "VmHWM") - before[pid] for pid in pids]
        out.update(grad_cache_peak_mib=max(rise) / 1024, grad_cache_kept_mib=kept,
                   renderer_rss_mib=max(_process_kib(pid, "VmRSS") for pid in pids) / 1024)
        bench.stop(name)
    out["sweep_over_atp"] = out["sweep_s"] / out["atp_s"]
    return out


def _spearman(a, b):
    import numpy as np
    ranks = [np.argsort(np.argsort(np.ravel(x))) for x in (a, b)]
    return float(np.corrcoef(*ranks)[0, 1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--positions", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also on the browser's cpu backend")
    parser.add_argument("--browser-threads", type=int, default=1,
                        help="wasm threads of the browser's cpu backend")
    args = parser.parse_args(argv)
    import numpy as np

    import forward
    import neuroscope as ns
    from neuroscope.analysis import (
        attribution_patching,
        get_act_patch_attn_head_out_all_pos,
        logit_diff_metric,
    )
    forward.prepare_model()
    model = ns.TransformerModel.from_huggingface(forward.MODEL_DIR)
    rng = np.random.default_rng(0)
    clean = rng.integers(0, forward.VOCAB, (1, args.positions))
    corrupted = clean.copy()
    corrupted[:, args.positions // 3] = rng.integers(0, forward.VOCAB)
    answer, wrong = 262, 290
    metric = logit_diff_metric(answer, wrong)
    names = [f"blocks.{layer}.attn.hook_z" for layer in range(model.cfg.n_layers)]
    results = {"positions": args.positions, "blas": _blas(), "threads": os.cpu_count()}

    def sweep():
        _, clean_cache = model.run_with_cache(clean, names_filter=names)
        return get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, metric, progress=False)

    def atp():
        return attribution_patching(model, clean, corrupted, metric, nodes="heads")

    results["sweep_s"] = _median_s(sweep, max(1, args.repeats // 2))
    results["atp_s"] = _median_s(atp, args.repeats)
    exact, estimate = sweep().numpy(), atp().numpy()
    base = metric(model(corrupted)).item()
    results["spearman_atp_vs_sweep"] = _spearman(exact - base, estimate)
    try:
        import torch
        from transformers import GPT2LMHeadModel
        torch.set_num_threads(os.cpu_count())
        hf = GPT2LMHeadModel.from_pretrained(forward.MODEL_DIR).eval()
        c, k = torch.tensor(clean), torch.tensor(corrupted)
        def torch_atp():
            return _torch_atp(hf, c, k, answer, wrong, model.cfg.n_heads)

        results["torch_s"] = _median_s(torch_atp, args.repeats)
        reference = torch_atp()
        results["torch_max_rel_diff"] = float(np.abs(estimate - reference).max() / np.abs(reference).max())
    except ImportError:
        results["torch_s"] = None
    long = rng.integers(0, forward.VOCAB, (1, 128))

    def grad_cache():
        _, cache, grads = model.run_with_grad_cache(
            long, lambda logits: logits[0, -1, answer] - logits[0, -1, wrong])
        return sum(cache[n].size + grads[n].size for n in cache) * 4 / 2 ** 20

    peak, kept = _peak_mib(grad_cache)
    results.update(grad_cache_peak_mib=peak, grad_cache_kept_mib=kept)
    ratio = results["sweep_s"] / results["atp_s"]
    results["sweep_over_atp"] = ratio
    print(f"GPT-2-small shape, 1x{args.positions}; BLAS: {'; '.join(results['blas'])}")
    print(f"  all-heads patching sweep  {results['sweep_s'] * 1e3:9.1f} ms")
    print(f"  attribution patching      {results['atp_s'] * 1e3:9.1f} ms   sweep / atp = {ratio:.1f}x "
          f"(rank correlation {results['spearman_atp_vs_sweep']:.3f})")
    if results["torch_s"]:
        print(f"  torch formula (HF)        {results['torch_s'] * 1e3:9.1f} ms   neuroscope / torch = "
              f"{results['atp_s'] / results['torch_s']:.2f}x "
              f"(max rel diff {results['torch_max_rel_diff']:.1e})")
    print(f"  run_with_grad_cache, every hook point, 1x128: peak +{peak:.0f} MiB RSS for {kept:.0f} MiB of "
          "activations and gradients")
    print(f"{'PASS' if ratio >= GOAL else 'FAIL'}: attribution patching {ratio:.1f}x faster than the sweep "
          f"(goal {GOAL:.0f}x)")
    if args.browser:
        web = results["browser"] = browser_section(args, clean, corrupted, answer, wrong, long, _spearman)
        print(f"browser, cpu backend (wasm, {web['threads_booted']} thread(s)), same prompts:")
        print(f"  all-heads patching sweep  {web['sweep_s'] * 1e3:9.1f} ms")
        print(f"  attribution patching      {web['atp_s'] * 1e3:9.1f} ms   "
              f"sweep / atp = {web['sweep_over_atp']:.1f}x "
              f"(rank correlation {web['spearman_atp_vs_sweep']:.3f})")
        print(f"  run_with_grad_cache, every hook point, 1x128: renderer peak "
              f"+{web['grad_cache_peak_mib']:.0f} MiB RSS for {web['grad_cache_kept_mib']:.0f} MiB of "
              "activations and gradients (renderer at "
              f"{web['renderer_rss_mib']:.0f} MiB after)")
        print(f"{'PASS' if web['sweep_over_atp'] >= GOAL else 'FAIL'}: in the browser attribution patching "
              f"{web['sweep_over_atp']:.1f}x faster than the sweep (goal {GOAL:.0f}x)")
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as out:
        json.dump(results, out, indent=2)


if __name__ == "__main__":
    main()
