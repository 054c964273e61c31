"""bench/cuda.py, the GPU benchmark, run on the CPU (``--device cpu``) with a tiny GPT-2:
no GPU is needed by the tests, and the script a GPU machine runs is kept working here."""

import json
import os
import subprocess
import sys

import pytest

import neuroscope

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_gpu_benchmark_runs_every_framework_on_the_cpu(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=64, vocab_size=97)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "model")
    results = tmp_path / "cuda.json"
    done = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "cuda.py"), "--device", "cpu", "--model",
         str(tmp_path / "model"), "--shapes", "1x8", "2x5", "--warmup", "1", "--repeats", "2",
         "--results", str(results)],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(results.read_text())
    frameworks = report["reports"]
    assert set(frameworks) == {"neuroscope", "transformerlens", "hf"}, done.stdout
    rows = {(row["framework"], row["mode"], tuple(row["shape"])): row
            for framework in frameworks.values() for row in framework["rows"]}
    assert set(rows) == {(name, mode, shape) for name, modes in (("neuroscope", ("forward", "cache")),
                                                              ("transformerlens", ("forward", "cache")),
                                                              ("hf", ("forward",)))
                         for mode in modes for shape in ((1, 8), (2, 5))}
    assert all(len(row["times_ms"]) == 2 and min(row["times_ms"]) > 0 for row in rows.values())
    # Every hook point cached: NeuroScope's count is its model's, TransformerLens' its own.
    model = neuroscope.TransformerModel.from_huggingface(str(tmp_path / "model"))
    assert rows[("neuroscope", "cache", (2, 5))]["entries"] == len(model.hook_names())
    assert rows[("transformerlens", "cache", (2, 5))]["entries"] > len(model.hook_names())
    # Same weights, same logits (float32 on the CPU), and the table says so.
    assert set(report["logits_max_difference_vs_hf"]) == {"neuroscope", "transformerlens"}
    assert max(report["logits_max_difference_vs_hf"].values()) < 1e-4
    assert "cache TL/NS" in done.stdout and "max |difference|" in done.stdout
