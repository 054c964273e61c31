"""The probe view of the Lens: a linear probe's accuracy at every layer (the classic plot).

``probes`` trains one ``LinearProbe`` per layer on ``component`` at each example's last
token (``analysis.probes.probe_layers``) over a labelled dataset — one of the demo model's
built-in probing sets (``PROBE_DATASETS``), an uploaded one (``"stored:<name>"``) or a file,
with a ``label`` column — and returns
the train and test accuracy per layer with the chance level (the largest class's share).
"""

from collections import Counter

from ..analysis.probes import probe_layers
from ..distributed import DistributedAnalysis
from .common import dataset_cluster, literal, round_sig
from .datasets import open_dataset

PROBE_DATASETS = ("demo/ioi-order", "demo/facts-relation")
PROBE_COMPONENTS = ("residual", "resid_pre", "attn_out", "mlp_out")


def probes(model, dataset="demo/ioi-order", component="residual", position="last", regularization=0.01):
    """Probe accuracy per layer: ``{"dataset", "component", "layers", "train", "test",
    "chance", "classes", "n_train", "n_test", "best_layer", "code"}``."""
    if component not in PROBE_COMPONENTS:
        raise ValueError(f"component {component!r}; the probe view offers {', '.join(PROBE_COMPONENTS)}")
    data, source = open_dataset(dataset)
    cluster, features = dataset_cluster(model, len(data)), None
    if cluster is not None:  # the page's workers compute every layer's features; training runs here
        features = DistributedAnalysis(model, cluster, "activations", data, component=component,
                                       layer=list(range(model.cfg.n_layers)), position=position).run()
    sweep = probe_layers(model, data, component, position=position, regularization=regularization,
                         features=features)
    counts = Counter(data.column("label"))
    return {"dataset": dataset, "component": component, "layers": sweep.layers,
            "train": [round_sig(a) for a in sweep.train_accuracy],
            "test": [None if a is None else round_sig(a) for a in sweep.test_accuracy],
            "chance": round_sig(max(counts.values()) / len(data)), "classes": [str(c) for c in sweep.classes],
            "n_train": sweep.n_train, "n_test": sweep.n_test, "best_layer": sweep.best_layer,
            "workers": 1 if cluster is None else cluster.n_workers, "code": _code(source, component, position,
                                                                                 regularization, cluster)}


def _code(source, component, position, regularization, cluster):
    call = (f"sweep = probe_layers(model, {source}, {literal(component)}, position={literal(position)}, "
            f"regularization={regularization!r}{{features}})\nsweep.to_dict()")
    if cluster is None:
        return ("from neuroscope import Dataset\nfrom neuroscope.analysis import probe_layers\n"
                + call.format(features=""))
    return ("from neuroscope import ComputeCluster, Dataset, DistributedAnalysis\n"
            "from neuroscope.analysis import probe_layers\n\n"
            f"# {cluster.n_workers} workers of this page compute the features of every layer\n"
            f"features = DistributedAnalysis(model, ComputeCluster.browser({cluster.n_workers}), "
            f"\"activations\", {source},\n"
            f"                               component={literal(component)}, "
            f"layer=list(range(model.cfg.n_layers)),\n"
            f"                               position={literal(position)}).run()\n"
            + call.format(features=", features=features"))


__all__ = ["PROBE_COMPONENTS", "PROBE_DATASETS", "probes"]
