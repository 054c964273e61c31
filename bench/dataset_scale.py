"""Dataset-scale benchmark on the demo model: activations over a dataset, and every neuron
of a layer over a million tokens.

    python bench/dataset_scale.py [--examples 10000] [--tokens 1000000] [--batch 32]

* **activations**: the residual stream after layer 2 at each example's last token, over
  ``--examples`` texts (windows of 8-60 words of the demo's held-out text, seeded), with
  ``model.activations_at`` (``cache=False``) against the TransformerLens way: batches of
  ``--batch`` texts, ``bridge.to_tokens`` (padded), ``run_with_cache(names_filter=...)``,
  the last real token picked out. Same model, same process, same texts; the results are
  compared (max abs difference) and the ratio TL / NeuroScope printed.
* **neurons**: ``NeuronAnalyzer(model, 1).top_tokens_all`` over ``--tokens`` tokens (top 20
  per neuron, histograms, dead neurons): time, tokens per second, and the peak RSS above
  the loaded model (the kernel's high-water mark, reset before the run).

The environment is left as a user has it; which BLAS ran is printed. Timings are of one
run on this machine: compare the ratio, not the milliseconds, across machines.
"""

import argparse
import os
import random
import sys
import time

from memory import reset_peak_rss, status_kib  # bench/ is this script's folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))


def texts(n, seed=0, low=8, high=60):
    from neuroscope.datasets import load_heldout
    words = " ".join(load_heldout("text")["samples"]).split()
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        length = rng.randint(low, high)
        start = rng.randrange(0, len(words) - length)
        out.append(" ".join(words[start:start + length]))
    return out


def _blas():
    from threadpoolctl import threadpool_info
    return "; ".join(f"{p['internal_api']} {p.get('architecture') or ''} x{p['num_threads']}"
                     for p in threadpool_info())


def bench_activations(model, examples, batch):
    import numpy as np
    import torch
    import transformers
    from transformer_lens.model_bridge import TransformerBridge

    from neuroscope.demo import MODEL_DIR
    data = texts(examples)
    name = "blocks.2.hook_resid_post"
    started = time.perf_counter()
    ours = model.activations_at("residual", 2, data, cache=False, progress=False).numpy()
    ns_s = time.perf_counter() - started

    transformers.logging.set_verbosity_error()
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(MODEL_DIR, torch_dtype=torch.float32).eval()
    bridge = TransformerBridge.boot_transformers(MODEL_DIR, hf_model=hf_model, device="cpu",
                                                 dtype=torch.float32)
    started = time.perf_counter()
    rows = []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            chunk = data[start:start + batch]
            tokens = bridge.to_tokens(chunk, padding_side="right")
            lengths = [len(bridge.to_tokens(text)[0]) for text in chunk]
            _, cache = bridge.run_with_cache(tokens, names_filter=[name])
            act = cache[name]
            rows.append(torch.stack([act[i, length - 1] for i, length in enumerate(lengths)]).numpy())
    tl_s = time.perf_counter() - started
    theirs = np.concatenate(rows)
    return {"examples": examples, "neuroscope_s": ns_s, "transformer_lens_s": tl_s,
            "ratio_tl_over_ns": tl_s / ns_s, "max_abs_diff": float(np.abs(ours - theirs).max())}


def bench_neurons(model, tokens):
    from neuroscope import NeuronAnalyzer
    data, total = [], 0
    for text in texts(10 * tokens // 30 + 10, seed=1, low=40, high=120):
        data.append(text)
        total += len(model.token_ids(text))
        if total >= tokens:
            break
    reset = reset_peak_rss()
    base = status_kib("VmRSS")
    started = time.perf_counter()
    summary = NeuronAnalyzer(model, 1).top_tokens_all(data, count=20, progress=None)
    seconds = time.perf_counter() - started
    peak = (status_kib("VmHWM") - base) / 1024 if reset else None
    return {"tokens": summary.n_tokens, "seconds": seconds, "tokens_per_s": summary.n_tokens / seconds,
            "peak_rss_above_model_mib": peak, "dead_fraction": summary.dead_fraction}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--tokens", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=32, help="TransformerLens batch size")
    args = parser.parse_args(argv)
    import neuroscope
    model = neuroscope.TransformerModel.from_huggingface("demo")
    print(f"BLAS: {_blas()}", flush=True)
    result = bench_activations(model, args.examples, args.batch)
    print(f"activations_at over {result['examples']} examples: NeuroScope {result['neuroscope_s']:.2f} s, "
          f"TransformerLens loop {result['transformer_lens_s']:.2f} s -> TL / NS = "
          f"{result['ratio_tl_over_ns']:.2f}x (max abs difference {result['max_abs_diff']:.2g})", flush=True)
    neurons = bench_neurons(model, args.tokens)
    peak = neurons["peak_rss_above_model_mib"]
    print(f"NeuronAnalyzer.top_tokens_all over {neurons['tokens']:,} tokens: {neurons['seconds']:.1f} s "
          f"({neurons['tokens_per_s']:,.0f} tokens/s), peak RSS above the model "
          f"{'n/a' if peak is None else f'{peak:.0f} MiB'}, {neurons['dead_fraction']:.1%} dead", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
