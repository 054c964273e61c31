"""Circuit discovery on the demo model: every method's circuit, its size, faithfulness and time.

    python bench/circuits.py [--train 32] [--heldout 64] [--task ioi|facts] [--acdc-train 16]

The IOI circuit (or the fact-recall circuit) of the packaged demo model is found on the first
``--train`` held-out pairs and its faithfulness measured on the next ``--heldout`` pairs: the
mean logit difference with every head (``hook_z``, per head) and MLP (``hook_mlp_out``) outside
the circuit patched from the corrupted run at all positions, divided by the full model's.
Activation patching runs at several thresholds; ACDC, EAP and EAP-IG at 0.01 (ACDC on
``--acdc-train`` pairs: one forward pass per tested edge). Printed: components kept (of 36),
faithfulness, edge faithfulness (every edge outside the circuit removed too), edges, seconds,
and the overlap (Jaccard, components) of the ACDC and EAP-IG circuits. The goal of the IOI
circuit (PASS/FAIL; the exit status is 0 either way): at most half of the components and
faithfulness >= 0.6 on the held-out pairs. Results go to ``bench/results/circuits-<task>.json``.

With ``--edges N``: EAP's and EAP-IG's edge scores on the first N pairs against exact edge
patching of every edge (one forward pass per edge: the corrupted run with that one edge's
sender taken from the clean run, the direction attribution patching estimates), as Spearman's
and Pearson's correlations over all edges.
"""

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "py"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--heldout", type=int, default=64)
    parser.add_argument("--acdc-train", type=int, default=16)
    parser.add_argument("--task", choices=("ioi", "facts"), default="ioi")
    parser.add_argument("--edges", type=int, default=0, metavar="N",
                        help="compare EAP / EAP-IG edge scores with exact edge patching on N pairs")
    args = parser.parse_args()
    import neuroscope as ns
    from neuroscope.analysis.circuits import builtin_examples
    model = ns.TransformerModel.from_huggingface("demo")
    pairs = builtin_examples(args.task, model)
    train, heldout = pairs[:args.train], pairs[args.train:args.train + args.heldout]
    finder = ns.CircuitFinder(model, progress=False)
    runs = [("activation_patching", t, train) for t in (0.1, 0.05, 0.02, 0.01)] + [
        ("path_patching", 0.05, train), ("eap", 0.01, train), ("eap-ig", 0.01, train),
        ("acdc", 0.01, pairs[:args.acdc_train])]
    rows, circuits = [], {}
    print(f"{args.task}: {len(train)} pairs to find, {len(heldout)} held-out pairs to measure "
          f"(ACDC on {args.acdc_train})")
    print(f"{'method':<22}{'threshold':>10}{'kept':>6}{'faithful':>10}{'edges only':>12}{'edges':>7}"
          f"{'seconds':>9}")
    for method, threshold, examples in runs:
        start = time.perf_counter()
        circuit = finder.find_circuit_for(
            args.task, examples, method=method, threshold=threshold, heldout=heldout
        )
        seconds = time.perf_counter() - start
        circuits[(method, threshold)] = circuit
        row = {
            "method": method,
            "threshold": threshold,
            "train": len(examples),
            "kept": len(circuit),
            "faithfulness": round(circuit.faithfulness, 4),
            "edge_faithfulness": None
            if circuit.edge_faithfulness is None
            else round(circuit.edge_faithfulness, 4),
            "edges": len(circuit.edges()),
            "seconds": round(seconds, 2),
            "top": [label for label, _ in circuit.table()[:5]],
        }
        rows.append(row)
        edge = "-" if row["edge_faithfulness"] is None else f"{row['edge_faithfulness']:.3f}"
        print(
            f"{method:<22}{threshold:>10}{row['kept']:>6}{row['faithfulness']:>10.3f}{edge:>12}"
            f"{row['edges']:>7}{seconds:>9.1f}  {', '.join(row['top'])}"
        )
    acdc, eap_ig = set(circuits[("acdc", 0.01)].components()), set(circuits[("eap-ig", 0.01)].components())
    overlap = len(acdc & eap_ig) / len(acdc | eap_ig)
    print(
        f"ACDC / EAP-IG component overlap (Jaccard): {overlap:.3f} "
        f"({len(acdc & eap_ig)} shared of {len(acdc | eap_ig)})"
    )
    goal = None
    if args.task == "ioi":
        best = [r for r in rows if r["kept"] <= 18 and r["faithfulness"] >= 0.6]
        goal = bool(best)
        passing = ", ".join(f"{r['method']} {r['threshold']}: {r['kept']}, {r['faithfulness']:.3f}"
                            for r in best)
        print(f"{'PASS' if goal else 'FAIL'}: a circuit with at most 18 of 36 components and faithfulness "
              f">= 0.6 ({passing})")
    edges = edge_correlations(model, pairs[:args.edges]) if args.edges else None
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", f"circuits-{args.task}.json"), "w") as handle:
        json.dump({"task": args.task, "rows": rows, "acdc_eap_ig_overlap": overlap, "goal": goal,
                   "edges": edges}, handle, indent=1)


def edge_correlations(model, pairs):
    from neuroscope.analysis import attribution_patching
    from neuroscope.analysis import circuit_runs as runs
    from neuroscope.analysis.circuits import edge_metric, node_of_label
    records = runs.as_records(pairs)
    forward = runs.PromptPairs(model, records)
    # the corrupted run with one edge from the clean run: the clean run of the swapped pairs
    swapped = runs.PromptPairs(model, [{**r, "prompt": r["corrupted_prompt"],
                                        "corrupted_prompt": r["prompt"]} for r in records])
    edges = runs.all_edges(model.cfg)
    start = time.perf_counter()
    base = _mean(swapped.clean_values())
    exact = [_mean(v) - base for v in swapped.edge_values([{edge} for edge in edges])]
    seconds = time.perf_counter() - start
    out = {"pairs": len(records), "edges": len(edges), "exact_seconds": round(seconds, 1)}
    for method, steps in (("eap", 1), ("eap-ig", 5), ("eap-ig", 20)):
        result = attribution_patching(model, forward.clean, forward.corrupted, edge_metric(forward),
                                      method=method, nodes="edges", ig_steps=steps, progress=False)
        scores = {(node_of_label(u), node_of_label(d, downstream=True)): s for u, d, s in result.edges()}
        estimate = [scores[edge] for edge in edges]
        key = method if method == "eap" else f"{method} ({steps} steps)"
        out[key] = {"spearman": round(_spearman(estimate, exact), 4),
                    "pearson": round(_pearson(estimate, exact), 4)}
    found = "; ".join(f"{k}: Spearman {v['spearman']:.3f}, Pearson {v['pearson']:.3f}"
                      for k, v in out.items() if isinstance(v, dict))
    print(f"edge scores against exact edge patching ({len(edges)} edges, {len(records)} pairs, "
          f"{seconds:.0f} s of patching): {found}")
    return out


def _mean(values):
    return sum(values) / len(values)


def _pearson(a, b):
    ma, mb = _mean(a), _mean(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return num / (sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b)) ** 0.5


def _spearman(a, b):
    return _pearson(_ranks(a), _ranks(b))


def _ranks(values):
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in range(start, end + 1):
            ranks[order[k]] = (start + end) / 2
        start = end + 1
    return ranks


if __name__ == "__main__":
    main()
