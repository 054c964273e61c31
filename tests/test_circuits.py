"""Circuit discovery: the node and edge interventions behind it, and the circuits it finds.

(a) Edge interventions equal a torch GPT-2 built from the Hugging Face weights in which every
    downstream input (each head's q/k/v, each MLP, the logits) reads the residual stream with
    the removed edges' senders swapped for their corrupted outputs (≤1e-4 relative); on every
    family, removing every edge out of a node equals patching the node, and removing every
    edge into the logits (or every edge) gives the corrupted run.
(b) Node interventions equal the core's ``InterventionHook(Patch(...), heads=...)`` and
    ``Circuit.ablate()``; one right-padded batch gives each example's own metric.
(c) Ground truth on the demo model (IOI): the circuit found on 32 examples keeps at most half
    of the heads and MLPs and faithfulness ≥ 0.6 on other held-out prompts; ACDC and EAP-IG
    circuits are compared (overlap, faithfulness); the fact-recall circuit is reported.
(d) Specs round-trip, figures are well-formed SVG / PDF, and bad input is refused by name.
"""

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis import circuit_runs as runs
from neuroscope.analysis.circuits import Circuit, CircuitFinder
from neuroscope.datasets import load_heldout
from neuroscope.hooks import InterventionHook
from neuroscope.interventions import Patch
from neuroscope.names import act_name
from reference_models import FAMILIES, gpt2_heads_from_qkv, load_hf

RTOL = 1e-4


@pytest.fixture(scope="module")
def demo():
    return ns.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def ioi():
    return load_heldout("ioi")["prompts"]


def _random_pairs(model, batch=3, lengths=(7, 9, 6), seed=0):
    """Records of random token ids; the corruption changes two tokens in the middle."""
    rng = np.random.default_rng(seed)
    records = []
    for index in range(batch):
        clean = rng.integers(1, model.cfg.d_vocab, lengths[index % len(lengths)]).tolist()
        corrupted = list(clean)
        corrupted[2:4] = rng.integers(1, model.cfg.d_vocab, 2).tolist()
        records.append({"prompt": clean, "corrupted_prompt": corrupted, "answer": 3, "incorrect": 5})
    return records


def _relative(ours, theirs):
    ours, theirs = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    return float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))


# -- (a) edges ------------------------------------------------------------------------------------
def _gpt2_edge_patched(hf, tokens, corrupt_ups=None, removed=()):
    """GPT-2 in torch from the HF weights: every downstream input is the residual stream plus,
    for each removed edge (u, d), u's corrupted output minus its output in this run. Returns
    the last-token logit difference logit[3] - logit[5] and the upstream outputs."""
    import torch
    import torch.nn.functional as F
    t = hf.transformer
    p = len(tokens)
    d = t.wte.weight.shape[1]
    h = hf.config.n_head
    e = d // h
    x = (t.wte.weight[torch.tensor(tokens)] + t.wpe.weight[:p]).unsqueeze(0)
    ups = {("embed",): x}

    def read(resid, node):
        out = resid
        for u, dn in removed:
            if dn == node:
                out = out + corrupt_ups[u] - ups[u]
        return out

    for layer, block in enumerate(t.h):
        w_qkv, b_qkv = block.attn.c_attn.weight, block.attn.c_attn.bias
        parts = []
        for i, kind in enumerate("qkv"):
            heads = []
            for head in range(h):
                xs = F.layer_norm(read(x, ("head", layer, head, kind)), (d,), block.ln_1.weight, block.ln_1.bias,
                                  block.ln_1.eps)
                cols = slice(i * d + head * e, i * d + (head + 1) * e)
                heads.append(xs @ w_qkv[:, cols] + b_qkv[cols])
            parts.append(torch.stack(heads, 2))                                    # [1, p, h, e]
        results = gpt2_heads_from_qkv(block, *parts)
        for head in range(h):
            ups[("head", layer, head)] = results[:, :, head]
        x = x + results.sum(2) + block.attn.c_proj.bias
        m_in = F.layer_norm(read(x, ("mlp", layer)), (d,), block.ln_2.weight, block.ln_2.bias, block.ln_2.eps)
        ups[("mlp", layer)] = block.mlp.c_proj(F.gelu(block.mlp.c_fc(m_in), approximate="tanh"))
        x = x + ups[("mlp", layer)]
    logits = hf.lm_head(t.ln_f(read(x, ("logits",))))
    return float(logits[0, -1, 3] - logits[0, -1, 5]), ups


@pytest.mark.ref
def test_edge_removals_match_a_torch_gpt2(reference_dir):
    torch = pytest.importorskip("torch")
    folder = reference_dir("gpt2")
    model = ns.TransformerModel.from_huggingface(folder)
    hf = load_hf(folder)
    records = _random_pairs(model)
    pairs = runs.PromptPairs(model, records)
    edges = runs.all_edges(model.cfg)
    rng = np.random.default_rng(1)
    configs = [set(),
               {(("embed",), ("head", 1, 0, "q"))},
               {(("head", 0, 1), ("head", 1, 2, "k"))},
               {(("head", 0, 3), ("head", 1, 1, "v")), (("mlp", 0), ("head", 1, 1, "v"))},
               {(("head", 1, 0), ("mlp", 1))},
               {(("mlp", 1), ("logits",)), (("head", 0, 2), ("logits",))},
               {edges[i] for i in rng.choice(len(edges), len(edges) // 3, replace=False)}]
    ours = pairs.edge_values(configs)
    with torch.no_grad():
        for index, record in enumerate(records):
            _, corrupt_ups = _gpt2_edge_patched(hf, record["corrupted_prompt"])
            for config, values in zip(configs, ours):
                theirs, _ = _gpt2_edge_patched(hf, record["prompt"], corrupt_ups, config)
                assert values[index] == pytest.approx(theirs, rel=RTOL, abs=RTOL), (config, index)
    # several configurations share a forward pass exactly as when each runs alone
    alone = [pairs.edge_values([config])[0] for config in configs]
    assert _relative(ours, alone) <= 1e-5


@pytest.mark.ref
@pytest.mark.parametrize("family", FAMILIES)
def test_edge_identities_on_every_family(reference_dir, family):
    model = ns.TransformerModel.from_huggingface(reference_dir(family))
    pairs = runs.PromptPairs(model, _random_pairs(model))
    edges = runs.all_edges(model.cfg)
    node = runs.head(0, 1)
    out_of = {edge for edge in edges if edge[0] == node}
    late = runs.mlp(0)
    clean, corrupted = pairs.clean_values(), pairs.corrupted_values()
    values = pairs.edge_values([set(), out_of, {e for e in edges if e[0] == late},
                                {e for e in edges if e[1] == runs.LOGITS}, set(edges),
                                {e for e in edges if e[0] == runs.EMBED}])
    patched = pairs.node_values([{node}, {late}])
    assert _relative(values[0], clean) <= 1e-5
    assert _relative(values[1], patched[0]) <= RTOL
    assert _relative(values[2], patched[1]) <= RTOL
    for index in (3, 4, 5):
        assert _relative(values[index], corrupted) <= RTOL
    assert _relative(patched[0], clean) > 1e-3  # the head matters, so the identity says something


@pytest.mark.ref
def test_a_parallel_model_has_no_same_layer_head_to_mlp_edges(reference_dir):
    cfg = ns.TransformerModel.from_huggingface(reference_dir("gpt_neox")).cfg
    assert cfg.parallel_attn_mlp
    edges = set(runs.all_edges(cfg))
    assert (runs.head(0, 0), runs.mlp(0)) not in edges and (runs.head(0, 0), runs.mlp(1)) in edges
    with pytest.raises(ValueError, match="not an edge"):
        runs.EdgeRun(runs.PromptPairs(ns.TransformerModel.from_huggingface(reference_dir("gpt_neox")),
                                       [{"prompt": [1, 2, 3], "corrupted_prompt": [1, 4, 3], "answer": 3,
                                         "incorrect": 5}]), [{(runs.head(0, 0), runs.mlp(0))}], set())


# -- (b) nodes ------------------------------------------------------------------------------------
def test_node_patching_equals_the_core_interventions_and_ablate(demo, ioi):
    records = ioi[:6]
    pairs = runs.PromptPairs(demo, records)
    chosen = {runs.head(0, 7), runs.head(2, 3), runs.head(2, 5), runs.mlp(1)}
    ours = pairs.node_values([chosen])[0]
    circuit = Circuit("ioi", "manual", 0.0, {c: 1.0 for c in runs.components(demo.cfg) if c not in chosen}, [],
                      None, {}, model=demo, n_layers=4, n_heads=8)
    assert set(circuit.outside()) == chosen
    for index, record in enumerate(records):
        clean = demo.to_tokens(record["prompt"])
        corrupted = demo.to_tokens(record["corrupted_prompt"])
        cache = demo.run_with_cache(corrupted)[1]
        hooks = [InterventionHook(name=act_name("z", 0), action=Patch(cache), heads=[7]),
                 InterventionHook(name=act_name("z", 2), action=Patch(cache), heads=[3, 5]),
                 InterventionHook(name=act_name("mlp_out", 1), action=Patch(cache))]
        answer, wrong = (demo.tokenizer.encode(record[k], add_special_tokens=False)[0] for k in ("answer", "incorrect"))
        for hook_list in (hooks, circuit.ablate(corrupted=record["corrupted_prompt"])):
            last = demo.run_with_hooks(clean, fwd_hooks=hook_list)[0, -1].tolist()
            assert ours[index] == pytest.approx(last[answer] - last[wrong], abs=1e-4)
    specs = [hook.to_spec() for hook in circuit.ablate(corrupted=[r["corrupted_prompt"] for r in records[:1]])]
    assert json.loads(json.dumps(specs)) == specs and [s["heads"] for s in specs] == [[7], None, [3, 5]]


def test_one_padded_batch_gives_each_examples_own_metric(demo, ioi):
    records = ioi[:8]
    lengths = {len(demo.to_tokens(r["prompt"])[0].tolist()) for r in records}
    assert len(lengths) > 1  # the batch really is padded
    pairs = runs.PromptPairs(demo, records)
    together = pairs.node_values([set(), {runs.head(3, 6)}])
    for index, record in enumerate(records):
        alone = runs.PromptPairs(demo, [record]).node_values([set(), {runs.head(3, 6)}])
        assert [values[index] for values in together] == pytest.approx([v[0] for v in alone], abs=1e-4)


def test_a_custom_metric_sees_last_token_logits_and_the_examples(demo, ioi):
    seen = []

    def probability_of_answer(last_logits, examples):
        seen.append((last_logits.shape, len(examples)))
        ids = [[demo.tokenizer.encode(r["answer"], add_special_tokens=False)[0]] for r in examples]
        return last_logits.softmax(-1).take_along(ns.tensor(ids, dtype="int64"), axis=1)[:, 0]

    pairs = runs.PromptPairs(demo, ioi[:4], metric=probability_of_answer)
    values = pairs.clean_values()
    assert seen[0] == ((4, demo.cfg.d_vocab), 4) and all(0 < v < 1 for v in values)
    with pytest.raises(runs.ExampleError, match="one value per example"):
        runs.PromptPairs(demo, ioi[:4], metric=lambda logits, examples: 1.0).clean_values()


# -- (c) circuits on the demo model ---------------------------------------------------------------
def test_the_ioi_circuit_is_small_and_faithful_on_held_out_prompts(demo, ioi):
    finder = CircuitFinder(demo, progress=False)
    circuit = finder.find_circuit_for("indirect object identification", ioi[:32], threshold=0.02,
                                      heldout=ioi[32:96])
    kept, total = circuit.size
    assert total == 36 and kept <= 18, circuit
    assert circuit.faithfulness >= 0.6, circuit
    scores = list(circuit.scores.values())
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.02
    assert circuit.components()[0] == runs.head(3, 6)  # the top head of the demo's IOI circuit
    assert circuit.n_examples == 32 and circuit.n_heldout == 64
    # the three layer-0 heads that dominate denoising patching, plus every MLP, are not the circuit
    few = Circuit("ioi", "manual", 0, {runs.head(0, 2): 1, runs.head(0, 6): 1, runs.head(0, 4): 1,
                                       **{runs.mlp(l): 1 for l in range(4)}}, [], None, {}, model=demo,
                  n_layers=4, n_heads=8)
    assert few.evaluate(ioi[32:96])["faithfulness"] < 0.3


def test_acdc_and_eap_ig_circuits_compared(demo, ioi):
    finder = CircuitFinder(demo, progress=False)
    train, test = ioi[:12], ioi[32:96]
    acdc = finder.find_circuit_for("ioi", train, method="acdc", threshold=0.01, heldout=test)
    eap_ig = finder.find_circuit_for("ioi", train, method="eap-ig", threshold=0.01, heldout=test)
    eap = finder.find_circuit_for("ioi", train, method="eap", threshold=0.01, heldout=test)
    report = {}
    for circuit in (acdc, eap_ig, eap):
        report[circuit.method] = (len(circuit), round(circuit.faithfulness, 3), round(circuit.edge_faithfulness, 3),
                                  len(circuit.edges()))
        assert 0 < len(circuit) <= 27 and circuit.faithfulness > 0.5, circuit
        assert all(w is not None for _, _, w in circuit.edges())
    overlap = len(set(acdc.components()) & set(eap_ig.components())) / len(
        set(acdc.components()) | set(eap_ig.components()))
    print("circuits (components, faithfulness, edge faithfulness, edges):", report, "ACDC/EAP-IG overlap",
          round(overlap, 3))
    assert overlap >= 0.5
    assert runs.head(3, 6) in acdc and runs.head(3, 6) in eap_ig


def test_path_patching_scores_the_edges_between_kept_nodes(demo, ioi):
    circuit = CircuitFinder(demo, progress=False).find_circuit_for("ioi", ioi[:8], method="path_patching",
                                                                   threshold=0.08)
    nodes = set(circuit.components())
    assert circuit.edges() and all((u == runs.EMBED or u in nodes) and (d == runs.LOGITS or runs.reader(d) in nodes)
                                   for u, d, _ in circuit.edges())
    # the direct path from the top head to the logits carries much of its effect
    weights = {(u, d): w for u, d, w in circuit.edges()}
    top = circuit.components()[0]
    assert weights[(top, runs.LOGITS)] > 0.5 * circuit.scores[top]


def test_the_fact_recall_circuit_is_reported(demo):
    circuit = CircuitFinder(demo, progress=False).find_circuit_for("facts", threshold=0.05)
    print("fact recall:", circuit, circuit.table()[:6])
    assert 0 < len(circuit) <= 36 and circuit.faithfulness > 0.3
    assert circuit.task == "fact recall" and circuit.metric["full"] > circuit.metric["corrupted"]


def test_a_dataset_and_lens_pairs_are_accepted(demo):
    dataset = ns.Dataset.builtin("demo/ioi")
    pairs = runs.PromptPairs(demo, list(dataset)[:3])
    from neuroscope.lens import demo_prompts
    lens_pairs = demo_prompts(demo, count=3)["ioi"]
    assert [r["prompt"] for r in runs.as_records(lens_pairs)] == [r["clean"] for r in lens_pairs]
    assert len(pairs) == 3



class _OneTokenLonger:
    """A tokenizer that encodes texts containing ``word`` one token longer (so fact pairs about
    it are no longer of equal length)."""

    def __init__(self, tokenizer, word):
        self.tokenizer, self.word = tokenizer, word

    def encode(self, text, add_special_tokens=True):
        ids = self.tokenizer.encode(text, add_special_tokens)
        return ids + ids[-1:] if self.word in text else ids

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)


def test_builtin_fact_pairs_are_built_once_per_model_and_tokenizer(monkeypatch):
    """builtin_examples("facts", model) (asked on every Lens circuit request) builds the pairs
    once per model and tokenizer, equal to demo_prompts' (the uncached definition), and not again
    after a weight edit (no forward pass is involved); each caller gets its own copies."""
    from neuroscope.analysis.circuits import builtin_examples
    from neuroscope.lens import examples

    model = ns.TransformerModel.from_huggingface("demo")
    tokenizer = model.tokenizer
    expected = examples.demo_prompts(model, count=1000)["facts"]
    subject = next(w for w in expected[0]["clean"].split() if w not in expected[0]["corrupted"])
    model.tokenizer = _OneTokenLonger(tokenizer, subject)
    expected_other = examples.demo_prompts(model, count=1000)["facts"]
    assert expected_other != expected
    model.tokenizer = tokenizer
    built, fact_pairs = [], examples._fact_pairs
    monkeypatch.setattr(examples, "_fact_pairs", lambda *args: built.append(1) or fact_pairs(*args))

    first = builtin_examples("facts", model)
    first[0]["answer"], first[1:] = None, []
    assert builtin_examples("facts", model) == expected and len(built) == 1
    model.tokenizer = _OneTokenLonger(tokenizer, subject)
    assert builtin_examples("facts", model) == expected_other and len(built) == 2
    model.tokenizer = tokenizer
    model.fold_ln()
    assert builtin_examples("facts", model) == expected and len(built) == 3
    assert builtin_examples("facts", model) == expected and len(built) == 3

# -- (d) specs, figures, errors ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_circuit(demo, ioi):
    return CircuitFinder(demo, progress=False).find_circuit_for("ioi", ioi[:6], method="eap", threshold=0.02)


def test_a_spec_round_trips_and_checks_the_model(demo, small_circuit, reference_dir):
    spec = json.loads(small_circuit.to_json())
    back = Circuit.from_spec(spec, model=demo)
    assert back.to_spec() == small_circuit.to_spec()
    assert back.components() == small_circuit.components() and back.edges() == small_circuit.edges()
    assert back.evaluate(load_heldout("ioi")["prompts"][:6])["faithfulness"] == pytest.approx(
        small_circuit.faithfulness, abs=1e-6)
    other = ns.TransformerModel.from_huggingface(reference_dir("gpt2"))
    with pytest.raises(ValueError, match="content hash"):
        Circuit.from_spec(spec, model=other)
    for bad, message in (({"type": "probe"}, "not a circuit spec"), ({**spec, "version": 9}, "version 9"),
                         ({**spec, "components": [[["head", 9, 0], 1.0]]}, "component"),
                         ("{not json", "not a circuit spec")):
        with pytest.raises(ValueError, match=message):
            Circuit.from_spec(bad)
    with pytest.raises(ValueError, match="needs the model"):
        Circuit.from_spec(spec).ablate(corrupted="x")


def test_the_figure_is_well_formed_svg_and_pdf(small_circuit, tmp_path):
    figure = small_circuit.visualize()
    assert small_circuit._repr_svg_() == figure.svg()  # Jupyter draws a circuit as its graph
    root = ET.fromstring(figure.svg())
    circles = root.findall("{http://www.w3.org/2000/svg}circle")
    assert len(circles) == 36  # every head and MLP, members filled
    filled = [c for c in circles if c.get("fill") != "none"]
    assert len(filled) == len(small_circuit)
    assert len(root.findall("{http://www.w3.org/2000/svg}line")) >= 1
    pdf = figure.pdf()
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    xref = int(pdf[pdf.rindex(b"startxref") + 9:].split()[0])
    assert pdf[xref:xref + 4] == b"xref"
    assert figure.save(str(tmp_path / "c.svg")).endswith(".svg") and (tmp_path / "c.svg").read_text().startswith("<svg")
    with pytest.raises(ValueError, match=".svg or .pdf"):
        figure.save(str(tmp_path / "c.png"))


def test_bad_input_is_refused_by_name(demo, ioi):
    finder = CircuitFinder(demo, progress=False)
    longer = {**ioi[0], "corrupted_prompt": ioi[0]["corrupted_prompt"] + " and more"}
    with pytest.raises(runs.ExampleError, match=r"example 1 .*same token length"):
        finder.find_circuit_for("ioi", [ioi[1], longer])
    with pytest.raises(ValueError, match="method='nope'"):
        finder.find_circuit_for("ioi", ioi[:2], method="nope")
    with pytest.raises(ValueError, match="threshold=2"):
        finder.find_circuit_for("ioi", ioi[:2], threshold=2)
    with pytest.raises(runs.ExampleError, match="example 0: corrupted_prompt=None"):
        finder.find_circuit_for("ioi", [{"prompt": "a b", "answer": " a", "incorrect": " b"}])
    with pytest.raises(runs.ExampleError, match="no built-in examples"):
        finder.find_circuit_for("greater-than")
    same = {**ioi[0], "corrupted_prompt": ioi[0]["prompt"]}
    with pytest.raises(runs.ExampleError, match="no effect"):
        finder.find_circuit_for("ioi", [same])


def test_run_from_layer_equals_the_forward_pass_with_hooks(demo):
    tokens = demo.to_tokens(["When Mary and John went to the store, John gave a drink to"])
    doubled = [(act_name("mlp_out", 2), lambda activation, hook: activation * 2)]
    with demo.hooks(doubled):
        logits, cache = demo.run_with_cache(tokens)
    for layer in range(demo.cfg.n_layers):
        with demo.hooks(doubled):
            out = demo.run_from_layer(cache[act_name("resid_pre", layer)], layer)
        assert _relative(out.numpy(), logits.numpy()) <= 1e-6
    with pytest.raises(ns.LayerNotFoundError, match="layer 5 requested, model has layers 0-4"):
        demo.run_from_layer(cache[act_name("resid_pre", 0)], 5)
    with pytest.raises(ns.ShapeError, match="expected \\[batch, pos, 256\\]"):
        demo.run_from_layer(cache[act_name("resid_pre", 0)][0], 1)


@pytest.mark.ref
def test_grouped_query_heads_read_their_shared_key_and_value(reference_dir):
    """Llama-like GQA: a key/value unit is read by every query head of its group, so ACDC keeps it
    alive while any of them is, and the circuit's members are query heads."""
    model = ns.TransformerModel.from_huggingface(reference_dir("llama"))
    cfg = model.cfg
    assert cfg.n_kv_heads < cfg.n_heads
    group = cfg.n_heads // cfg.n_kv_heads
    assert runs.readers(cfg, ("head", 1, 1, "k")) == [runs.head(1, h) for h in range(group, 2 * group)]
    assert runs.readers(cfg, ("head", 1, 1, "q")) == [runs.head(1, 1)]
    records = _random_pairs(model, batch=4)
    circuit = CircuitFinder(model, progress=False).find_circuit_for("random", records, method="acdc", threshold=0.02)
    assert all(c[0] == "mlp" or 0 <= c[2] < cfg.n_heads for c in circuit.components())
    for _, d, _ in circuit.edges():  # every kept receiver is read by a member (or is the logits)
        assert d == runs.LOGITS or any(r in circuit for r in runs.readers(cfg, d)), d
    assert circuit.to_spec()["model"]["n_kv_heads"] == cfg.n_kv_heads
    assert Circuit.from_spec(circuit.to_json()).n_kv_heads == cfg.n_kv_heads
    assert circuit.visualize().svg().startswith("<svg")
