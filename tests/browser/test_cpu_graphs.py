"""The cpu backend's graphs (worker/backends/cpu_graph.js): runs of queued ops that
onnxruntime runs as one ONNX graph give what the ops give one by one.

A segment is compiled the first time its structure is seen and reused after, so each
check runs the same work more than once on one backend and asserts from the backend's
counters that graphs ran (one compile, then reuse); results are held to numpy (op cases,
at their kernel tolerances) or to CPython (models: logits, every cached hook and two
interventions, 1e-3, as tests/browser/test_model_browser.py), and reruns to each other
bit for bit.
"""

import numpy as np
import pytest

from .op_cases import MATMUL, cases
from .pages import open_page, python, site  # noqa: F401 (fixture)
from .replay import mismatches, record
from .test_model_browser import CLEAN, CORRUPT, FAMILIES, SCRIPT, TOLERANCE, reference  # noqa: F401 (fixture)

GRAPH_BINARY = {"add", "sub", "mul", "div", "pow"}
GRAPH_OPS = {"matmul", "binary", "unary", "layer_norm", "rms_norm", "reshape", "permute", "attention"}


def _weight_cases(seed=1):
    """Matmuls whose right operand is large enough to be baked into the graph as a weight."""
    rng = np.random.default_rng(seed)
    weight = rng.uniform(-1, 1, size=(300, 260)).astype(np.float32)
    out = []
    for name, left in [("2d", (7, 300)), ("3d", (2, 5, 300))]:
        x = rng.uniform(-1, 1, size=left).astype(np.float32)
        out.append((f"weight_matmul_{name}", "matmul", [x, weight], {}, MATMUL))
        x_t = rng.uniform(-1, 1, size=left[:-1] + (260,)).astype(np.float32)
        out.append((f"weight_matmul_tb_{name}", "matmul", [x_t, weight], {"transpose_b": True}, MATMUL))
    x = rng.uniform(-1, 1, size=(300, 6)).astype(np.float32)
    out.append(("weight_matmul_ta", "matmul", [x, weight], {"transpose_a": True}, MATMUL))
    return out


def _in_graphs(case):
    _, op, args, _, _ = case
    if op not in GRAPH_OPS:
        return False
    if op == "binary":
        return args[0] in GRAPH_BINARY
    if op == "unary":
        return args[0] != "isfinite"
    return True


@pytest.fixture(scope="module")
def recording():
    graph_cases = _weight_cases() + [case for case in cases() if _in_graphs(case)]
    assert {case[1] for case in graph_cases} == GRAPH_OPS
    assert {case[2][0] for case in graph_cases if case[1] == "binary"} == GRAPH_BINARY
    return record(graph_cases)


def test_every_graph_op_matches_numpy_one_by_one_and_in_a_graph(page, repo_server, recording):
    calls, plan, _ = recording
    page.goto(f"{repo_server}/tests/browser/replay.html")
    page.wait_for_function("window.replayReady === true")
    ids = [handle_id for _, outputs in plan for handle_id, _ in outputs]
    script = "([c, i]) => window.replay('cpu', c, i, {rounds: 3})"
    result = page.evaluate(script, [calls, ids])
    first, second, third = result["stats"]
    assert first["compiled"] == 1 and first["graphRuns"] == 1, result["stats"]
    assert third["compiled"] == 1 and third["graphRuns"] == 3 and third["failures"] == 0, (result["stats"],
                                                                                          page.messages)
    failures = mismatches(plan, result["values"])
    assert not failures, "\n".join(failures[:40])
    # A bake budget too small for the weights: they stay graph inputs, for good (baked and
    # fed weights round differently, so a weight never changes sides: reruns stay equal).
    small = page.evaluate("([c, i]) => window.replay('cpu', c, i, {rounds: 2, backend: {bakeBytes: 65536}})",
                          [calls, ids])
    once = page.evaluate("([c, i]) => window.replay('cpu', c, i, {backend: {bakeBytes: 65536}})", [calls, ids])
    assert small["stats"][1]["fedWeights"] >= 1 and small["stats"][1]["failures"] == 0, small["stats"]
    assert small["stats"][1]["compiled"] == 1, small["stats"]
    assert not mismatches(plan, small["values"]) and small["values"] == once["values"]
    # The same stream with graphs off: the one-by-one path on its own.
    plain = page.evaluate("([c, i]) => window.replay('cpu', c, i, {rounds: 2, backend: {graphs: false}})",
                          [calls, ids])
    assert plain["stats"] == [None, None]
    assert not mismatches(plan, plain["values"])


def _compare(got, expected):
    failures = []
    for name, want in expected.items():
        payload = got[name]
        value = np.asarray(payload["data"], dtype=np.float64).reshape(payload["shape"])
        if not np.allclose(value, want, rtol=TOLERANCE, atol=TOLERANCE):
            failures.append(f"{name}: max abs error {np.max(np.abs(value - want)):.3g}")
    return failures


@pytest.fixture(scope="module")
def cpu_page(browser, site):  # noqa: F811
    page, info = open_page(browser, site, "cpu")
    assert info["backend"] == "cpu"
    yield page
    page.context.close()


STATS = "import js, neuroscope_js\njs.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats)"


@pytest.mark.parametrize("family", FAMILIES)
def test_models_run_through_graphs_match_cpython(cpu_page, site, reference, family):  # noqa: F811
    import json
    relative, position, expected = reference(family)
    before = json.loads(python(cpu_page, STATS))
    runs = []
    for _ in range(2):
        runs.append(python(cpu_page, SCRIPT + "\nresults", location=f"../{relative}", clean=CLEAN,
                           corrupt=CORRUPT, position=position))
    after = json.loads(python(cpu_page, STATS))
    assert after["graphRuns"] > before["graphRuns"] and after["failures"] == 0, (before, after, cpu_page.messages)
    assert sorted(runs[0]) == sorted(expected)
    failures = _compare(runs[0], expected)
    assert not failures, f"{family}: " + "; ".join(failures)
    assert runs[1] == runs[0], "a rerun gave other values"



LENGTHS_SCRIPT = """
import js, json, neuroscope_js
from neuroscope import TransformerModel
model = TransformerModel.from_huggingface(location)
stats = lambda: json.loads(js.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats))
before = stats()
results = {}
for index, prompt in enumerate([prompts[0]] + prompts):
    logits, cache = model.run_with_cache(prompt)
    results[str(index)] = {"logits": logits.tolist(), "resid": cache["resid_post", 1].tolist(),
                           "q": cache["q", 0].tolist()}
{"results": results, "before": before, "after": stats()}
"""
PROMPTS = ["When Mary and John went to the store", "The cat", "One two three four five six seven eight nine ten"]


def test_one_graph_serves_every_prompt_length(cpu_page, site, reference, reference_dir):  # noqa: F811
    from neuroscope import TransformerModel
    relative, _, _ = reference("gpt2")
    model = TransformerModel.from_huggingface(reference_dir("gpt2"))
    got = python(cpu_page, LENGTHS_SCRIPT, location=f"../{relative}", prompts=PROMPTS)
    before, after = got["before"], got["after"]
    # One graph for every length: at most the first run compiles (the reference model's
    # weights are too small to bake, so a graph from an earlier test may serve already).
    assert after["compiled"] - before["compiled"] <= 1, (before, after)
    assert after["graphRuns"] - before["graphRuns"] >= len(PROMPTS) + 1 and after["failures"] == 0, (before, after)
    assert got["results"]["0"] == got["results"]["1"], "a rerun gave other values"
    for index, prompt in enumerate([PROMPTS[0]] + PROMPTS):
        logits, cache = model.run_with_cache(prompt)
        want = {"logits": logits.numpy(), "resid": cache["resid_post", 1].numpy(), "q": cache["q", 0].numpy()}
        for name, value in want.items():
            have = np.asarray(got["results"][str(index)][name])
            assert have.shape == value.shape, (prompt, name)
            np.testing.assert_allclose(have, value, rtol=TOLERANCE, atol=TOLERANCE, err_msg=f"{prompt!r} {name}")


SCALARS_SCRIPT = """
from neuroscope.tensor import as_tensor, matmul
x = as_tensor([[1.0, -2.0, 0.0, 3.5]] * 3)
w = as_tensor([[0.5] * 4] * 4)
out = []
for text in scalars:
    scalar = float(text)  # sent as text: a page global -0.0 arrives as the int 0
    # Each read ends a window: one graph per structure, the scalar kept apart in its key.
    # 1 / (p * scalar) tells -0 from 0 (-inf, inf) after a readback that may not.
    out.append([[repr(v) for v in row] for row in (1.0 / (matmul(x, w) * scalar)).tolist()])
out
"""


def test_scalars_that_json_would_merge_keep_their_own_graphs(cpu_page):
    import math
    scalars = [math.inf, -math.inf, math.nan, -0.0, 0.0, 2.0]
    got = python(cpu_page, SCALARS_SCRIPT, scalars=[repr(scalar) for scalar in scalars])
    x = np.array([[1.0, -2.0, 0.0, 3.5]] * 3, dtype=np.float32)
    product = x @ np.full((4, 4), 0.5, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        for scalar, text in zip(scalars, got):
            have = [[float(v) for v in row] for row in text]
            with np.errstate(divide="ignore"):
                want = np.float32(1.0) / (product * np.float32(scalar))
            np.testing.assert_array_equal(np.asarray(have, dtype=np.float32), want, err_msg=str(scalar))


COMPUTED_WEIGHT_SCRIPT = """
import js, json, neuroscope_js
from neuroscope.tensor import as_tensor, matmul
stats = lambda: json.loads(js.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats))
x = as_tensor([[0.25] * 300] * 8)
base = as_tensor([[float((i * 7 + j) % 5) for j in range(260)] for i in range(300)])
before = stats()
sums = []
for step in range(4):
    y = base * as_tensor([float(step + 1)])  # made by an op: a new array each time, never baked
    y.tolist()  # ends the window: y is an input of the next graph
    sums.append(sum(matmul(x, y).tolist()[0]))
{"sums": sums, "before": before, "after": stats()}
"""


def test_a_matrix_made_each_run_is_an_input_not_a_recompiled_weight(cpu_page):
    got = python(cpu_page, COMPUTED_WEIGHT_SCRIPT)
    before, after = got["before"], got["after"]
    assert after["compiled"] - before["compiled"] <= 2, (before, after)  # y = base * s, and x @ y
    base = np.array([[float((i * 7 + j) % 5) for j in range(260)] for i in range(300)], dtype=np.float32)
    for step, total in enumerate(got["sums"]):
        want = (np.full((8, 300), 0.25, dtype=np.float32) @ (base * np.float32(step + 1)))[0].sum()
        assert abs(total - want) <= 1e-4 * abs(want), (step, total, want)


WIDE_SCRIPT = """
import js, json, neuroscope_js
from neuroscope import TransformerModel
stats = lambda: json.loads(js.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats))
before = stats()
model = TransformerModel.from_huggingface(location)
runs = [model(tokens).tolist() for _ in range(2)]
{"runs": runs, "before": before, "after": stats()}
"""


def test_weights_a_model_makes_at_load_are_baked(cpu_page, site, reference_dir, tmp_path):  # noqa: F811
    # GPT-2's Q, K and V are split out of one matrix by ops at load: the model marks them
    # (and every other weight) as weights, so graphs bake them instead of copying them in
    # on every run. Wide enough (d_model 256) that every matrix is large enough to bake.
    import shutil

    import torch
    import transformers as tf

    from neuroscope import TransformerModel
    folder = tmp_path / "gpt2-wide"
    folder.mkdir()
    shutil.copy(f"{reference_dir('gpt2')}/tokenizer.json", folder)
    torch.manual_seed(0)
    config = tf.GPT2Config(vocab_size=320, n_positions=32, n_embd=256, n_layer=1, n_head=4)
    hf = tf.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for param in hf.parameters():
            param.normal_(0.0, 0.05)
    hf.save_pretrained(folder, safe_serialization=True)
    tokens = [[(7 * i + 3) % 320 for i in range(12)]]
    got = python(cpu_page, WIDE_SCRIPT, location=f"../{site.add(str(folder), 'models/gpt2-wide')}", tokens=tokens)
    before, after = got["before"], got["after"]
    # W_Q, W_K, W_V, W_O, W_in, W_out and the tied unembedding (W_E, transposed).
    assert after["bakedWeights"] - before["bakedWeights"] == 7, (before, after)
    assert after["fedWeights"] == before["fedWeights"] and after["failures"] == 0, (before, after)
    assert got["runs"][1] == got["runs"][0], "a rerun gave other values"
    want = TransformerModel.from_huggingface(str(folder))(tokens).numpy()
    np.testing.assert_allclose(np.asarray(got["runs"][0]), want, rtol=TOLERANCE, atol=TOLERANCE)


RESHAPES_SCRIPT = """
import js, json, neuroscope_js
from neuroscope.tensor import as_tensor
stats = lambda: json.loads(js.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats))
x = as_tensor([[[float(i * 4 + j) - 7.5 for j in range(4)] for i in range(3)]] * 2)  # [2, 3, 4]
before = stats()
y = x * 2.0
r1 = y.reshape(6, 4)  # of a value the graph makes, which is freed
del y
r2 = r1.reshape(24)  # of a reshape
r3 = x.reshape(4, 6)  # of the graph's input
z = r2 + 1.0  # read inside the graph
values = [r1.tolist(), r2.tolist(), r3.tolist(), z.tolist()]
middle = stats()
alone = x.reshape(3, 8).tolist()  # a window of reshapes only: nothing to compile or run
{"values": values, "alone": alone, "before": before, "middle": middle, "after": stats()}
"""


def test_reshapes_share_their_sources_array_instead_of_being_graph_outputs(cpu_page):
    got = python(cpu_page, RESHAPES_SCRIPT)
    x = np.array([[[float(i * 4 + j) - 7.5 for j in range(4)] for i in range(3)]] * 2, dtype=np.float32)
    r1 = (x * 2).reshape(6, 4)
    want = [r1, r1.reshape(24), x.reshape(4, 6), r1.reshape(24) + 1]
    for have, expected in zip(got["values"], want):
        np.testing.assert_array_equal(np.asarray(have, dtype=np.float32), expected)
    np.testing.assert_array_equal(np.asarray(got["alone"], dtype=np.float32), x.reshape(3, 8))
    before, middle, after = got["before"], got["middle"], got["after"]
    assert middle["graphRuns"] - before["graphRuns"] == 1 and middle["failures"] == before["failures"], (before, middle)
    assert after["compiled"] == middle["compiled"] and after["failures"] == middle["failures"], (middle, after)


DEFERRED_SCRIPT = """
from neuroscope import TransformerModel
model = TransformerModel.from_huggingface(location)
tokens = model.to_tokens(clean)
seen = {}
def record(activation, hook):
    seen[hook.name] = activation.tolist()  # a read at every hook: the graphs split there
model.run_with_hooks(tokens, fwd_hooks=[(name, record) for name in model.hook_names()]).tolist()
import js, json, neuroscope_js
runs = lambda: json.loads(js.JSON.stringify(neuroscope_js.bridge.backend.graphs.stats))["graphRuns"]
before = runs()
model(tokens).tolist()
forward_runs, before = runs() - before, runs()
logits, cache = model.run_with_cache(tokens)
logits.tolist()
cache_runs = runs() - before
deferred = sorted(cache.deferred)
{"deferred": deferred, "same": sorted(name for name in cache.keys() if cache[name].tolist() == seen[name]),
 "names": sorted(seen), "runs": [forward_runs, cache_runs]}
"""


def test_deferred_entries_are_what_the_forward_pass_had_bit_for_bit(cpu_page, reference):  # noqa: F811
    # Cache entries kept as recipes (z, the scores, pattern, norms and hook_post)
    # are computed when read, by graphs other than the forward's: the same bits, as every
    # entry read by a hook that splits the forward's graph at each point.
    relative, _, _ = reference("gpt2")
    got = python(cpu_page, DEFERRED_SCRIPT, location=f"../{relative}", clean=CLEAN)
    kinds = {name.rsplit(".", 1)[1] for name in got["deferred"]}
    assert {"hook_z", "hook_pattern", "hook_post", "hook_scale", "hook_normalized"} <= kinds, got["deferred"]
    assert got["same"] == got["names"], sorted(set(got["names"]) - set(got["same"]))
    # Caching everything splits no graph: each recipe's sources are held, nothing is spelled out.
    forward_runs, cache_runs = got["runs"]
    assert cache_runs == forward_runs, got["runs"]
