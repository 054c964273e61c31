"""What bench/browser.py serves: the random GPT-2 small as one ONNX graph, and the site.

    python bench/browser_setup.py     export the ONNX graph (bench/browser.py runs this once)

The graph comes from ``torch.onnx.export`` (the dynamo exporter; it needs ``onnx`` and
``onnxscript``, installed here when missing) of the Hugging Face model that
bench/forward.py saves, with a batch of 2 so the batch axis stays dynamic (DESIGN.md §10).
It returns logits only (no key/value cache), as NeuroScope's forward does. The site is
``build.py build``'s dist/ plus the benchmark page and links to the model files, so the
page and the workers fetch them from the same origin (COEP lets nothing else in).
"""

import importlib.util
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import build  # noqa: E402

from forward import MODEL_DIR  # noqa: E402 (bench/ is this script's folder)

ONNX_PATH = os.path.join(ROOT, "bench", ".cache", "gpt2-small-random.onnx")
PAGE_FILES = ("browser_page.html", "browser_page.js", "ort_worker.js")
MODEL_URL_PATH = "bench-models/gpt2-small-random"  # the safetensors folder; ONNX_URL_PATH the graph
ONNX_URL_PATH = "bench-models/gpt2-small-random.onnx"


def prepare_onnx():
    """Export the model once, in a subprocess (torch stays out of the caller); True if exported."""
    if os.path.exists(ONNX_PATH):
        return False
    for module in ("onnx", "onnxscript"):
        if importlib.util.find_spec(module) is None:
            print(f"installing {module} (torch's dynamo ONNX exporter needs it)", flush=True)
            build._pip(module)
    print(f"exporting {os.path.relpath(ONNX_PATH, ROOT)} with torch.onnx.export (about a minute)", flush=True)
    done = subprocess.run([sys.executable, os.path.abspath(__file__)], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout[-4000:] + done.stderr[-4000:])
        raise RuntimeError(f"the ONNX export failed with exit code {done.returncode}")
    return True


def export_onnx():
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(MODEL_DIR).eval()

    class Logits(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            return self.model(input_ids, use_cache=False).logits

    batch, positions = torch.export.Dim("batch"), torch.export.Dim("position")
    program = torch.onnx.export(Logits(hf_model).eval(), (torch.zeros(2, 16, dtype=torch.long),),
                                input_names=["input_ids"], output_names=["logits"],
                                dynamic_shapes={"input_ids": {0: batch, 1: positions}}, external_data=False)
    partial = ONNX_PATH + ".partial"
    program.save(partial)
    os.replace(partial, ONNX_PATH)


def build_site(folder):
    """build.py's site in ``folder``/dist, the page under bench/, links to the model files."""
    root = build.command_build(os.path.join(folder, "dist"))
    os.makedirs(os.path.join(root, "bench"))
    for name in PAGE_FILES:
        shutil.copy2(os.path.join(ROOT, "bench", name), os.path.join(root, "bench", name))
    os.makedirs(os.path.join(root, MODEL_URL_PATH))
    for name in ("config.json", "model.safetensors"):
        os.symlink(os.path.join(MODEL_DIR, name), os.path.join(root, MODEL_URL_PATH, name))
    os.symlink(ONNX_PATH, os.path.join(root, ONNX_URL_PATH))
    return root


if __name__ == "__main__":
    export_onnx()
