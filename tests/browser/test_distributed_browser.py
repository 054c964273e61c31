"""ComputeCluster.browser(): DistributedAnalysis over the page's pool of Pyodide workers.

Results of a pool of two equal one worker's and the page worker's own run, and CPython's;
a member terminated mid-run has its shard re-run by another; a task's error comes back
with its type and example index.
"""

import pytest

import neuroscope
from neuroscope.distributed import DistributedAnalysis

from .pages import open_page, python, python_error, site  # noqa: F401

SETUP = """
import neuroscope_js
from neuroscope import ComputeCluster, Dataset, DistributedAnalysis, TransformerModel
model = TransformerModel.from_huggingface("demo")
texts = Dataset.from_records([{"text": t} for t in texts_in])
str(model.source)
"""


def _texts():
    paragraphs = list(neuroscope.Dataset.builtin("demo/text").texts)
    return (paragraphs + [p[: len(p) // 2] for p in paragraphs])[:40]


@pytest.fixture(scope="module")
def pool_page(browser, site):  # noqa: F811
    page, _ = open_page(browser, site, "cpu")
    source = python(page, SETUP, texts_in=_texts())
    assert "://" in source
    yield page
    page.context.close()


def scores(page, cluster):
    return python(page, f"""
result = DistributedAnalysis(model, {cluster}, "attention_pattern_analysis", texts, shard_size=5,
                             progress=False).run()
{{kind: values.tolist() for kind, values in result.scores.items()}}""")


def flat(table):
    return [value for row in table for value in row]


def test_a_pool_of_two_equals_one_worker_and_cpython(pool_page):
    two = scores(pool_page, "ComputeCluster.browser(2)")
    assert python(pool_page, "neuroscope_js.pool.size") == 2
    one = scores(pool_page, "ComputeCluster.browser(1)")
    here = scores(pool_page, "None")
    model = neuroscope.TransformerModel.from_huggingface("demo")
    cpython = DistributedAnalysis(model, None, "attention_pattern_analysis", _texts(), shard_size=5,
                                  progress=False).run()
    for kind in two:
        assert max(abs(a - b) for a, b in zip(flat(two[kind]), flat(one[kind]))) <= 1e-5
        assert max(abs(a - b) for a, b in zip(flat(two[kind]), flat(here[kind]))) <= 1e-5
        assert max(abs(a - b) for a, b in zip(flat(two[kind]), flat(cpython.scores[kind].tolist()))) <= 1e-4


def test_neurons_and_activations_over_the_pool_equal_one_process(pool_page):
    counts_equal, tokens_equal, mean_error, shape = python(pool_page, """
pool = ComputeCluster.browser(2)
acts = DistributedAnalysis(model, pool, "activations", texts, component="residual", layer=1, progress=False).run()
twice = Dataset.from_records(texts.to_records() * 2)
top = DistributedAnalysis(model, pool, "top_activating_neurons", twice, layer=1, count=3, progress=False).run()
whole = DistributedAnalysis(model, None, "top_activating_neurons", twice, layer=1, count=3, progress=False).run()
[top.counts == whole.counts, top.n_tokens == whole.n_tokens,
 max(abs(a - b) for a, b in zip(top.mean, whole.mean)), list(acts.shape)]""")
    assert counts_equal and tokens_equal and mean_error <= 1e-5 and shape == [40, 256]


def test_a_member_terminated_mid_run_has_its_shard_run_again(pool_page):
    busy, error, size = python(pool_page, """
busy = []
def kill_busy(done, total):
    if done == 3 and not busy:
        busy.append(int(neuroscope_js.pool.busy))
        neuroscope_js.pool.terminate(0)
spread = DistributedAnalysis(model, ComputeCluster.browser(2), "attention_pattern_analysis", texts,
                             shard_size=4, progress=kill_busy).run()
here = DistributedAnalysis(model, None, "attention_pattern_analysis", texts, shard_size=4, progress=False).run()
[busy, max(abs(a - b) for kind in here.kinds
           for a, b in zip(spread.scores[kind].reshape([-1]).tolist(), here.scores[kind].reshape([-1]).tolist())),
 int(neuroscope_js.pool.size)]""")
    assert busy and busy[0] >= 1  # members had shards in hand when one was terminated
    assert error <= 1e-5 and size == 2


def test_errors_keep_their_type_and_example(pool_page):
    error = python_error(pool_page, """
bad = Dataset.from_records([{"text": "a b"}] * 5 + [{"text": "x " * 300}])
DistributedAnalysis(model, ComputeCluster.browser(2), "attention_pattern_analysis", bad, shard_size=2,
                    progress=False).run()""")
    assert error["pyType"] == "InvalidTokenError" and "exceeds the model's context" in error["message"]
    assert "example 5 of the dataset" in error["traceback"]
    error = python_error(pool_page, """
def mine(model, examples):
    return len(examples)
DistributedAnalysis(model, ComputeCluster.browser(2), mine, texts, combine=sum, progress=False).run()""")
    assert error["pyType"] == "ClusterError" and "import a task by name" in error["message"]


def test_the_lens_dataset_views_use_the_pool(pool_page):
    from neuroscope import lens

    cores = pool_page.evaluate("navigator.hardwareConcurrency")
    page_neurons, page_probes = python(pool_page, """
from neuroscope import lens
[lens.neurons(model, 1, 7, k=5, dataset="demo/ioi"), lens.probes(model, "demo/ioi-order")]""")
    page_patching = python(pool_page, 'lens.patch_dataset(model, "demo/ioi", count=64)')
    model = neuroscope.TransformerModel.from_huggingface("demo")
    neurons, probes = lens.neurons(model, 1, 7, k=5, dataset="demo/ioi"), lens.probes(model, "demo/ioi-order")
    expected = cores if cores > 1 else 1
    assert page_neurons["workers"] == expected and page_probes["workers"] == expected
    assert neurons["workers"] == 1 and "ComputeCluster" not in neurons["code"]
    if expected > 1:
        assert f"ComputeCluster.browser({cores})" in page_neurons["code"] + page_probes["code"]
    assert page_neurons["histogram"]["counts"] == neurons["histogram"]["counts"]
    # The top tokens tie (the same word at the same place of many prompts): compare their values.
    assert max(abs(a["activation"] - b["activation"])
               for a, b in zip(page_neurons["examples"], neurons["examples"])) <= 1e-3
    assert max(abs(a - b) for a, b in zip(page_probes["test"], probes["test"])) <= 0.02
    patching = lens.patch_dataset(model, "demo/ioi", count=64, progress=False)
    assert page_patching["workers"] == expected and page_patching["n_pairs"] == 64
    assert max(abs(a - b) for a, b in zip(sum(page_patching["heads"], []), sum(patching["heads"], []))) <= 1e-3
