"""The circuit view of the Lens: find a circuit, ablate its nodes, test a hypothesis, export a paper.

* ``find_circuit(model, dataset, method, threshold, count)``: ``CircuitFinder`` on the first
  ``count`` pairs of the dataset, faithfulness on the next ``count`` (when there are that many),
  with the circuit's SVG graph (``Circuit.visualize``) for the view.
* ``ablate_components(model, dataset, count, components)``: the mean logit difference with the
  clicked components patched from the corrupted run, beside the full model's.
* ``hypothesis_test(model, hypothesis, dataset, count, ablation=None, draws=1000)``:
  ``HypothesisTester`` on the same pairs.
* ``export_paper(model, title, authors)``: a ``ResearchPaper`` of the circuit and the hypothesis
  results of this session, as a .zip (base64, for the page to download).

Datasets: ``"demo/ioi"`` (the held-out IOI prompts and their ABC corruption), ``"demo/facts"``
(each held-out fact against another subject of its relation) or ``"stored:<name>"`` (an
upload with ``prompt``, ``corrupted_prompt``, ``answer``, ``incorrect``).
"""

import base64

from ..analysis import circuit_runs as runs
from ..analysis.circuits import METHODS, CircuitFinder, builtin_examples
from ..analysis.hypothesis import Hypothesis, HypothesisTester
from ..paper import ResearchPaper
from .common import literal, round_sig, rounded
from .datasets import STORED, open_dataset

CIRCUIT_DATASETS = ("demo/ioi", "demo/facts")
MAX_COUNT = 200
# What this session found, for export_paper: the latest circuit and the hypothesis results since.
_SESSION = {"circuit": None, "hypotheses": []}


def circuit_examples(model, dataset, count, offset=0):
    """``(records, source)``: ``count`` pairs of ``dataset`` from ``offset``, and the Python for them."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count={count!r}; expected an integer in 1-{MAX_COUNT}")
    if dataset == "demo/ioi":
        records, source = builtin_examples("ioi", model), 'builtin_examples("ioi")'
    elif dataset == "demo/facts":
        records, source = builtin_examples("facts", model), "builtin_examples(\"facts\", model)"
    elif isinstance(dataset, str) and dataset.startswith(STORED):
        opened, source = open_dataset(dataset)
        records = runs.as_records(opened)
    else:
        raise ValueError(
            f"dataset={dataset!r}; the circuit view takes {list(CIRCUIT_DATASETS)} or "
            f"'{STORED}<name>' (an uploaded file of prompt / corrupted_prompt / answer / incorrect)"
        )
    records = list(records)
    if len(records) <= offset:
        raise ValueError(f"dataset {dataset!r} has {len(records)} pairs; none from {offset} on")
    return records[offset : offset + count], f"{source}[{offset}:{offset + count}]"


def find_circuit(
    model, dataset="demo/ioi", method="activation_patching", threshold=0.05, count=16, progress=None
):
    """The circuit of ``dataset``'s task (see the module docstring). Returns::

    task, method, threshold, n_examples, n_heldout
    components   [{"label", "kind", "layer", "head", "score"}]  most important first
    edges        [[from label, to label, weight or None]]
    faithfulness, edge_faithfulness, metric {"full", "corrupted"}
    svg          the graph (circles carry data-node="<label>")
    spec         Circuit.to_spec()
    code         Python source reproducing the view
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r}; expected one of {list(METHODS)}")
    examples, source = circuit_examples(model, dataset, count)
    heldout, held_source = None, None
    try:
        heldout, held_source = circuit_examples(model, dataset, count, offset=count)
        heldout = heldout if len(heldout) == count else None
    except ValueError:
        heldout = None
    task = {"demo/ioi": "ioi", "demo/facts": "facts"}.get(dataset, dataset)
    circuit = CircuitFinder(model, progress=progress).find_circuit_for(
        task, examples, method=method, threshold=threshold, heldout=heldout
    )
    _SESSION["circuit"], _SESSION["hypotheses"] = circuit, []
    options = f"method={literal(method)}, threshold={threshold!r}" + (", heldout=heldout" if heldout else "")
    code = (
        "from neuroscope import CircuitFinder\nfrom neuroscope.analysis.circuits import builtin_examples\n"
        "from neuroscope import Dataset\n"
        f"examples = {source}\n"
        + (f"heldout = {held_source}\n" if heldout else "")
        + f"circuit = CircuitFinder(model).find_circuit_for({literal(task)}, examples, {options})\n"
        "circuit.visualize()\n"
    )
    circuit.code = code
    return {
        "task": circuit.task,
        "method": method,
        "threshold": threshold,
        "dataset": dataset,
        "n_examples": circuit.n_examples,
        "n_heldout": circuit.n_heldout,
        "components": [_component(c, s) for c, s in circuit.scores.items()],
        "edges": [[_label(u), _label(d), None if w is None else round_sig(w)] for u, d, w in circuit.edges()],
        "faithfulness": round_sig(circuit.faithfulness),
        "edge_faithfulness": None
        if circuit.edge_faithfulness is None
        else round_sig(circuit.edge_faithfulness),
        "metric": {
            "full": round_sig(circuit.metric["full"]),
            "corrupted": round_sig(circuit.metric["corrupted"]),
        },
        "n_components": circuit.size[1],
        "svg": circuit.visualize().svg(),
        "spec": circuit.to_spec(),
        "code": code,
    }


def ablate_components(model, dataset="demo/ioi", count=16, components=()):
    """The mean metric on ``count`` pairs with ``components`` (labels ``"L2H3"`` / ``"MLP1"``)
    patched from the corrupted run at every position::

        full, corrupted, ablated    mean logit differences
        removed                     (full - ablated) / (full - corrupted)
        components                  the labels, code
    """
    parsed = [_parse_label(model, label) for label in components]
    examples, source = circuit_examples(model, dataset, count)
    pairs = runs.PromptPairs(model, examples)
    full, corrupted, ablated = (
        sum(v) / len(v) for v in pairs.node_values([set(), set(runs.components(model.cfg)), set(parsed)])
    )
    code = (
        "from neuroscope.analysis import circuit_runs\n"
        "from neuroscope.analysis.circuits import builtin_examples\nfrom neuroscope import Dataset\n"
        f"pairs = circuit_runs.PromptPairs(model, {source})\n"
        f"ablated = {[list(c) for c in parsed]!r}\n"
        "full, corrupted, with_ablation = (sum(v) / len(v) for v in pairs.node_values(\n"
        "    [set(), set(circuit_runs.components(model.cfg)), {tuple(c) for c in ablated}]))\n"
    )
    return {
        "full": round_sig(full),
        "corrupted": round_sig(corrupted),
        "ablated": round_sig(ablated),
        "removed": round_sig((full - ablated) / (full - corrupted)) if full != corrupted else None,
        "components": [_label(c) for c in parsed],
        "code": code,
    }


def hypothesis_test(
    model, hypothesis, dataset="demo/ioi", count=16, ablation=None, draws=1000, progress=None
):
    """``HypothesisTester(model, hypothesis, pairs).run()`` as a dict (``to_dict()``), with its
    ``summary`` and ``code``."""
    examples, source = circuit_examples(model, dataset, count)
    claim = Hypothesis(hypothesis, ablation=ablation)
    result = HypothesisTester(model, claim, examples, draws=draws, progress=progress).run()
    code = (
        "from neuroscope import Dataset, Hypothesis, HypothesisTester\n"
        "from neuroscope.analysis.circuits import builtin_examples\n"
        f"dataset = {source}\n"
        f"result = HypothesisTester(model, Hypothesis({literal(hypothesis)}, ablation={ablation!r}), dataset"
        + (f", draws={draws}" if draws != 1000 else "")
        + ").run()\nprint(result.summary())\n"
    )
    result.code = code
    _SESSION["hypotheses"].append(result)
    out = result.to_dict()
    out.update(
        effect=round_sig(out["effect"]),
        ci=rounded(out["ci"]),
        p_value=round_sig(out["p_value"]),
        summary=result.summary(),
        null=rounded(result.null),
        code=code,
    )
    return out


def export_paper(model, title="A circuit found with NeuroScope", authors=(), lens_url=None):
    """The session's circuit and hypothesis results as a paper: ``{"name", "zip_base64", "files",
    "code"}`` (the .zip holds main.tex, references.bib, the figures and analysis.neuroscope)."""
    circuit = _SESSION["circuit"]
    if circuit is None:
        raise ValueError("no circuit to write up yet: find one first (Find circuit)")
    paper = ResearchPaper(title=title, authors=list(authors), model=model, lens_url=lens_url)
    paper.add_results(circuit)
    for result in _SESSION["hypotheses"]:
        paper.add_results(result)
    archive = paper.to_zip()
    code = (
        "from neuroscope import ResearchPaper\n"
        f"paper = ResearchPaper(title={literal(title)}, authors={list(authors)!r}, model=model)\n"
        "paper.add_results(circuit)  # and each hypothesis result\n"
        'paper.generate_latex("paper")  # then: pdflatex main; bibtex main; pdflatex main (twice)\n'
    )
    return {
        "name": "neuroscope-paper.zip",
        "zip_base64": base64.b64encode(archive).decode("ascii"),
        "files": sorted(paper.files()),
        "code": code,
    }


def _component(component, score):
    return {
        "label": _label(component),
        "kind": component[0],
        "layer": component[1],
        "head": component[2] if component[0] == "head" else None,
        "score": round_sig(score),
    }


def _label(node):
    if node == runs.EMBED:
        return "embed"
    if node == runs.LOGITS:
        return "logits"
    if node[0] == "head":
        return f"L{node[1]}H{node[2]}" + (f"<{node[3]}>" if len(node) == 4 else "")
    return f"MLP{node[1]}"


def _parse_label(model, label):
    import re

    cfg = model.cfg
    match = re.fullmatch(r"L(\d+)H(\d+)|MLP(\d+)", label) if isinstance(label, str) else None
    if not match:
        raise ValueError(f"component {label!r}; expected 'L<layer>H<head>' or 'MLP<layer>'")
    if match.group(3) is not None:
        layer = int(match.group(3))
        component = runs.mlp(layer)
    else:
        layer, index = int(match.group(1)), int(match.group(2))
        if index >= cfg.n_heads:
            raise ValueError(f"component {label!r}: this model has heads 0-{cfg.n_heads - 1}")
        component = runs.head(layer, index)
    if layer >= cfg.n_layers:
        raise ValueError(f"component {label!r}: this model has layers 0-{cfg.n_layers - 1}")
    return component


__all__ = [
    "CIRCUIT_DATASETS",
    "ablate_components",
    "circuit_examples",
    "export_paper",
    "find_circuit",
    "hypothesis_test",
]
