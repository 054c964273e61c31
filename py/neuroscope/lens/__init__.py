"""The Python half of the app's Lens views: one call per view, JSON-able results.

The browser app calls these in the worker (``window.neuroscope.python(code,
globals)``); each returns dicts, lists, numbers, strings and, for big arrays,
``Tensor``s (the worker sends those as typed arrays). Small tables are rounded
to 5 significant digits. Every result carries ``code``: the NeuroScope calls
that reproduce it in the notebook, where ``model`` is the loaded model.

* ``analyze(model, prompt, k=5)``: tokens, predictions, residual and activation
  norms, attention patterns and head scores, logit lens (one forward pass).
* ``ablate(model, prompt, ablations, answer=None, wrong=None, k=5, reference=None)``:
  zero / mean / resample ablation of heads and MLPs.
* ``patch(model, clean, corrupted, answer, wrong, progress=None)``: activation
  patching sweeps, normalised to 0 (corrupted) .. 1 (clean); ``patch_dataset(model,
  dataset, count)``: head patching averaged over a dataset's pairs (the page's workers).
* ``attribute(model, clean, corrupted, answer, wrong, method="atp", ...)``: the patching
  view's heatmaps from attribution patching (or EAP-IG), and a token saliency strip.
* ``find_circuit(model, dataset, method, threshold, count)``, ``ablate_components(...)``,
  ``hypothesis_test(model, hypothesis, dataset, count)``, ``export_paper(model, title)``: the
  circuit view (CircuitFinder, HypothesisTester, ResearchPaper).
* ``neurons(model, layer, neuron, texts=None, k=10, context=8)`` and
  ``sample_texts(model=None)``: top-activating tokens of an MLP neuron.
* ``probes(model, dataset, component)``: a linear probe's accuracy at every layer.
* ``datasets()``, ``upload_dataset(name, data)``, ``open_dataset(choice)``: the datasets
  the probe and neuron views offer besides the built-in ones (uploads kept in storage).
* ``demo_prompts(model=None, count=20)``: IOI and fact pairs for patching.
* ``model_info(model)``: ``{"name", "n_layers", "n_heads", "d_model", "d_vocab", "d_mlp"}``.

Only the package's Tensor API is used, so the views run unchanged on numpy in
CPython and on the JS bridge in a stdlib-only Pyodide.
"""

from .ablation import ablate
from .attribution import attribute
from .circuits import CIRCUIT_DATASETS, ablate_components, export_paper, find_circuit, hypothesis_test
from .common import model_info
from .datasets import datasets, open_dataset, upload_dataset
from .examples import demo_prompts
from .neurons import BUILTIN_TEXTS, NEURON_DATASETS, neurons, sample_texts
from .patching import patch, patch_dataset
from .probes import PROBE_COMPONENTS, PROBE_DATASETS, probes
from .prompt import analyze

__all__ = ["BUILTIN_TEXTS", "CIRCUIT_DATASETS", "NEURON_DATASETS", "PROBE_COMPONENTS", "PROBE_DATASETS",
           "ablate", "ablate_components", "analyze", "attribute", "datasets", "demo_prompts", "export_paper",
           "find_circuit", "hypothesis_test", "model_info", "neurons", "open_dataset", "patch",
           "patch_dataset", "probes", "sample_texts", "upload_dataset"]
