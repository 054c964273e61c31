"""Loading a large checkpoint: peak resident memory against the weights' size.

    python bench/loading.py [--layers 24] [--only numpy|torch|hf]

A seeded random GPT-2-medium-shaped model (24 layers, d_model 1024, 355 M parameters) is
saved once to ``bench/.cache/gpt2-medium-random-{f32,f16,bf16}/`` in float32, float16 and
bfloat16 safetensors files. Each load runs in a fresh subprocess (this script re-invoked
with ``--worker``), after the framework is imported and the RSS high-water mark reset:

* NeuroScope, ``TransformerModel.from_huggingface(folder, dtype=...)`` on the numpy and
  the torch backend: upcast to float32, and kept in the file's dtype where the backend
  has it (numpy has no bfloat16);
* transformers, ``GPT2LMHeadModel.from_pretrained(folder, dtype=...)`` the same ways
  (its weights are touched once, so lazily mapped pages count as NeuroScope's copies do).

Reported: the peak RSS during the load above the RSS before it, the RSS the loaded model
keeps, both divided by the loaded weights' size (the bytes of every weight tensor, in the
dtype they were loaded in), and the load time. Goal (PASS/FAIL, exit status 0 either
way): NeuroScope's peak <= 1.2x the weights' size in every case. A load reads the file
through a memory map; pages of the map count in the RSS once touched, and the reader
hands each tensor's pages back once it is copied (``SafetensorsFile.release``).
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time

from memory import reset_peak_rss, status_kib  # bench/ is this script's folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.join(ROOT, "bench", ".cache")
FILE_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16"}
GOAL = 1.2
# (framework, file, dtype loaded): upcast everywhere; kept where the framework has the dtype.
JOBS = [(framework, file, dtype) for framework in ("numpy", "torch", "hf") for file in FILE_DTYPES
        for dtype in sorted({"float32", FILE_DTYPES[file]})
        if not (framework == "numpy" and dtype == "bfloat16")]


def model_dir(file, layers):
    return os.path.join(CACHE, f"gpt2-medium-random-{file}" + ("" if layers == 24 else f"-{layers}l"))


def prepare(layers):
    """Write the three files once (float32 drawn with a seed; the others cast from it)."""
    folders = {file: model_dir(file, layers) for file in FILE_DTYPES}
    if all(os.path.exists(os.path.join(f, "model.safetensors")) for f in folders.values()):
        return False
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(n_embd=1024, n_layer=layers, n_head=16)
    model = transformers.GPT2LMHeadModel(config)
    for file, folder in folders.items():
        model.to(getattr(torch, FILE_DTYPES[file])).save_pretrained(folder)
    return True


def worker(framework, folder, dtype):
    if framework == "hf":
        import torch
        import transformers

        transformers.logging.set_verbosity_error()

        def load():
            model = transformers.GPT2LMHeadModel.from_pretrained(folder, dtype=getattr(torch, dtype))
            with torch.no_grad():
                tensors = list(model.state_dict().values())
                for tensor in tensors:
                    tensor.sum()
            unique = {t.data_ptr(): t for t in tensors}.values()  # tied embeddings once
            return model, sum(t.untyped_storage().nbytes() for t in unique)
    else:
        sys.path.insert(0, os.path.join(ROOT, "py"))
        import neuroscope

        backend = neuroscope.set_backend(framework)

        def load():
            model = neuroscope.TransformerModel.from_huggingface(folder, backend=backend, dtype=dtype)
            return model, sum(w.nbytes for w in model.weights.values())
    gc.collect()
    reset = reset_peak_rss()
    before = status_kib("VmRSS")
    began = time.perf_counter()
    model, nbytes = load()
    seconds = time.perf_counter() - began
    gc.collect()
    report = {"framework": framework, "dtype": dtype, "weights_mib": nbytes / 2**20,
              "peak_mib": (status_kib("VmHWM") - before) / 1024,
              "kept_mib": (status_kib("VmRSS") - before) / 1024,
              "seconds": seconds, "peak_reset": reset}
    print("RESULT " + json.dumps(report), flush=True)
    del model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=24, help="a smaller model for a quick run")
    parser.add_argument("--only", choices=("numpy", "torch", "hf"), action="append")
    parser.add_argument("--worker", nargs=3, metavar=("FRAMEWORK", "FOLDER", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    created = prepare(args.layers)
    sizes = {file: os.path.getsize(os.path.join(model_dir(file, args.layers), "model.safetensors")) / 2**20
             for file in FILE_DTYPES}
    print(f"model: GPT-2-medium shape, {args.layers} layers ({'created' if created else 'reused'}); files: "
          + ", ".join(f"{file} {size:.0f} MiB" for file, size in sizes.items()), flush=True)
    header = f"{'framework':<11}{'file':<6}{'loaded as':<11}{'weights MiB':>12}{'peak MiB':>10}" \
             f"{'peak/w':>8}{'kept/w':>8}{'load s':>8}"
    print(header + "\n" + "-" * len(header), flush=True)
    passed = True
    for framework, file, dtype in JOBS:
        if args.only and framework not in args.only:
            continue
        env = dict(os.environ, PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", framework,
                               model_dir(file, args.layers), dtype], capture_output=True, text=True, env=env)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode != 0 or not lines:
            sys.stderr.write(done.stdout[-3000:] + done.stderr[-3000:])
            raise RuntimeError(f"worker {framework} {file} {dtype} failed with exit code {done.returncode}")
        r = json.loads(lines[-1][len("RESULT "):])
        ratio = r["peak_mib"] / r["weights_mib"]
        if framework != "hf":
            passed &= ratio <= GOAL and r["peak_reset"]
        name = "hf" if framework == "hf" else f"ns-{framework}"
        print(f"{name:<11}{file:<6}{dtype:<11}{r['weights_mib']:>12.0f}{r['peak_mib']:>10.0f}{ratio:>8.2f}"
              f"{r['kept_mib'] / r['weights_mib']:>8.2f}{r['seconds']:>8.2f}", flush=True)
    print("peak/w: peak RSS while loading above the RSS before, over the loaded weights' size; "
          "kept/w: the RSS the loaded model keeps, over the same")
    print(f"GOAL {'PASS' if passed else 'FAIL'}: NeuroScope's peak RSS while loading <= {GOAL}x the weights' "
          "size on every backend and dtype")
    return 0


if __name__ == "__main__":
    sys.exit(main())
