"""The probe view of the Lens: a linear probe's accuracy at every layer (the classic plot).

``probes`` trains one ``LinearProbe`` per layer on ``component`` at each example's last
token (``analysis.probes.probe_layers``) over a labelled dataset — one of the demo model's
built-in probing sets (``PROBE_DATASETS``), an uploaded one (``"stored:<name>"``) or a file,
with a ``label`` column — and returns
the train and test accuracy per layer with the chance level (the largest class's share).
"""

from collections import Counter

from ..analysis.probes import probe_layers
from .common import literal, round_sig
from .datasets import open_dataset

PROBE_DATASETS = ("demo/ioi-order", "demo/facts-relation")
PROBE_COMPONENTS = ("residual", "resid_pre", "attn_out", "mlp_out")


def probes(model, dataset="demo/ioi-order", component="residual", position="last", regularization=0.01):
    """Probe accuracy per layer: ``{"dataset", "component", "layers", "train", "test",
    "chance", "classes", "n_train", "n_test", "best_layer", "code"}``."""
    if component not in PROBE_COMPONENTS:
        raise ValueError(f"component {component!r}; the probe view offers {', '.join(PROBE_COMPONENTS)}")
    data, source = open_dataset(dataset)
    sweep = probe_layers(model, data, component, position=position, regularization=regularization)
    counts = Counter(data.column("label"))
    return {"dataset": dataset, "component": component, "layers": sweep.layers,
            "train": [round_sig(a) for a in sweep.train_accuracy],
            "test": [None if a is None else round_sig(a) for a in sweep.test_accuracy],
            "chance": round_sig(max(counts.values()) / len(data)), "classes": [str(c) for c in sweep.classes],
            "n_train": sweep.n_train, "n_test": sweep.n_test, "best_layer": sweep.best_layer,
            "code": (f"from neuroscope import Dataset\nfrom neuroscope.analysis import probe_layers\n"
                     f"sweep = probe_layers(model, {source}, {literal(component)}, "
                     f"position={literal(position)}, regularization={regularization!r})\nsweep.to_dict()")}


__all__ = ["PROBE_COMPONENTS", "PROBE_DATASETS", "probes"]
