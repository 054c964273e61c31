"""DistributedAnalysis on a real Dask LocalCluster of two worker processes.

Every task's result equals the one-process run (cluster=None) and the analysis done by hand
with the core API; the model travels by reference and is loaded once per worker; a worker
killed mid-run costs nothing; a task's error comes back as itself with its example's index;
an unreachable scheduler is named within the timeout.
"""

import os
import signal
import socket
import time

import pytest

import neuroscope
from neuroscope.analysis.attention import AttentionAnalyzer
from neuroscope.analysis.patching import logit_diff_metric, normalized_metric, patching_sweep
from neuroscope.distributed import (
    ClusterConnectionError,
    ClusterError,
    ComputeCluster,
    DistributedAnalysis,
    DistributedTaskError,
    ModelReferenceError,
    analysis,
)

distributed = pytest.importorskip("distributed", reason="the dist extra (dask distributed) is not installed")


@pytest.fixture(scope="module")
def model():
    return neuroscope.TransformerModel.from_huggingface("demo")


@pytest.fixture(scope="module")
def texts():
    paragraphs = list(neuroscope.Dataset.builtin("demo/text").texts)
    # 150 texts of varied length: whole paragraphs and their halves, in a fixed order.
    out = []
    for copy in range(6):
        for paragraph in paragraphs:
            out.append(paragraph if copy == 0 else paragraph[: len(paragraph) // (copy + 1)])
    return neuroscope.Dataset.from_records([{"text": text} for text in out[:150]], name="texts")


@pytest.fixture(scope="module")
def cluster():
    with ComputeCluster.local(n_workers=2) as cluster:
        yield cluster


def run(model, cluster, task, dataset, **options):
    return DistributedAnalysis(model, cluster, task, dataset, progress=False, **options).run()


def close(a, b, tol=1e-5):
    return max(abs(x - y) for x, y in zip(a, b)) <= tol


def test_attention_scores_equal_one_process_and_by_hand(model, texts, cluster):
    spread = run(model, cluster, "attention_pattern_analysis", texts, shard_size=16, per_example=True)
    here = run(model, None, "attention_pattern_analysis", texts, shard_size=16, per_example=True)
    analyzer = AttentionAnalyzer(model)
    by_hand = [analyzer.analyze_tokens(model.to_tokens(text)).scores for text in texts.texts]
    assert spread.n_examples == 150 and sorted(spread.kinds) == sorted(by_hand[0])
    for kind in spread.kinds:
        assert spread.scores[kind].tolist() == here.scores[kind].tolist()  # combined in shard order
        mean = [[sum(s[kind].tolist()[i][j] for s in by_hand) / len(by_hand) for j in range(8)] for i in range(4)]
        assert close(sum(spread.scores[kind].tolist(), []), sum(mean, []))
        assert close(spread.per_example[kind][37].reshape([-1]).tolist(), by_hand[37][kind].reshape([-1]).tolist())
    assert spread.top_heads("induction_head", 1)[0][:2] == here.top_heads("induction", 1)[0][:2]


def test_top_neurons_equal_the_one_process_pass(model, texts, cluster):
    spread = run(model, cluster, "top_activating_neurons", texts, layer=2, count=5, shard_size=64)
    whole = neuroscope.NeuronAnalyzer(model, 2).top_tokens_all(texts, count=5, progress=False)
    assert spread.n_tokens == whole.n_tokens
    assert spread.edges == whole.edges and spread.counts == whole.counts and spread.dead == whole.dead
    assert spread.max == whole.max and spread.min == whole.min
    assert close(spread.mean, whole.mean, 1e-6)
    assert [[e["text_index"], e["position"]] for e in spread.top[17]] == \
        [[e["text_index"], e["position"]] for e in whole.top[17]]
    with pytest.raises(ValueError, match="multiple of 64"):
        DistributedAnalysis(model, cluster, "top_activating_neurons", texts, layer=2, shard_size=10)


def test_neuron_profile_and_probe_features_equal_the_one_process_calls(model, texts, cluster):
    spread = run(model, cluster, "neuron_profile", texts, layer=1, neuron=7, count=6)
    assert spread == neuroscope.NeuronAnalyzer(model, 1).profile(7, texts, count=6, progress=False)
    from neuroscope.analysis import probe_layers

    pairs = neuroscope.Dataset.builtin("demo/ioi-order")[:80]
    features = run(model, cluster, "activations", pairs, component="residual", layer=[0, 2])
    assert sorted(features) == [0, 2] and list(features[2].shape) == [80, 256]
    shared = probe_layers(model, pairs, "residual", layers=[0, 2], features=features, progress=False)
    alone = probe_layers(model, pairs, "residual", layers=[0, 2], cache=False, progress=False)
    assert shared.train_accuracy == alone.train_accuracy and shared.test_accuracy == alone.test_accuracy
    with pytest.raises(neuroscope.analysis.probes.ProbeError, match="needs layer 1"):
        probe_layers(model, pairs, "residual", layers=[1], features=features, progress=False)


def test_patching_average_equals_pairs_by_hand(model, cluster):
    pairs = neuroscope.Dataset.builtin("demo/ioi")[:6]
    spread = run(model, cluster, "activation_patching", pairs, kind="heads", shard_size=2, per_example=True)
    total = None
    for pair in pairs:
        clean, corrupted = model.to_tokens(pair["prompt"]), model.to_tokens(pair["corrupted_prompt"])
        metric = logit_diff_metric(model.to_single_token(pair["answer"]), model.to_single_token(pair["incorrect"]))
        sweep = patching_sweep(model, clean, corrupted, normalized_metric(metric, model(clean), model(corrupted)),
                               "attn_head_out_all_pos", progress=False).reshape([-1]).tolist()
        total = sweep if total is None else [a + b for a, b in zip(total, sweep)]
    assert spread.n_examples == 6 and list(spread.mean.shape) == [4, 8]
    assert close(spread.mean.reshape([-1]).tolist(), [value / 6 for value in total])
    assert list(spread.per_example.shape) == [6, 4, 8]


def test_the_lens_patching_over_a_dataset_and_its_code(model):
    from neuroscope import lens

    result = lens.patch_dataset(model, "demo/ioi", count=4, progress=False)
    assert result["n_pairs"] == 4 and result["workers"] == 1 and len(result["heads"]) == 4
    namespace = {"model": model}
    exec(result["code"], namespace)
    assert close(sum(result["heads"], []), namespace["average"].mean.reshape([-1]).tolist(), 1e-4)


def test_activations_in_dataset_order(model, texts, cluster):
    last = run(model, cluster, "activations", texts, component="residual", layer=1, shard_size=64)
    assert close(last.reshape([-1]).tolist(),
                 model.activations_at("residual", 1, texts, cache=False, progress=False).reshape([-1]).tolist())
    acts, index = run(model, cluster, "activations", texts[:70], component="mlp_post", layer=0, position="all",
                      shard_size=64)
    want, want_index = model.activations_at("mlp_post", 0, texts[:70], position="all", cache=False, progress=False)
    assert index.tolist() == want_index.tolist()
    assert close(acts.reshape([-1]).tolist(), want.reshape([-1]).tolist())


def test_user_task_and_the_model_travels_once_by_reference(model, texts, cluster):
    import pickle

    def count_tokens(model, examples):
        return [len(model.token_ids(example["text"])) for example in examples]

    def combine(partials):
        return [n for part in partials for n in part]

    counts = run(model, cluster, count_tokens, texts, combine=combine, shard_size=8)
    assert counts == [len(model.token_ids(text)) for text in texts.texts]
    loads = cluster.client.run(lambda: analysis.loads)
    assert len(loads) == 2 and all(n == 1 for n in loads.values()), loads  # one load per worker, ever
    assert cluster.n_workers == 2 and "tcp://127.0.0.1:" in repr(cluster)
    reference = analysis.model_reference(model)
    assert reference["source"].endswith("model") and len(pickle.dumps(reference)) < 1024


def test_a_task_error_comes_back_as_itself_with_its_example(model, texts, cluster):
    def picky(model, examples):
        for example in examples:
            if "float" in example["text"]:
                raise LookupError("no floats here")
        return len(examples)

    with pytest.raises(LookupError, match="no floats here") as caught:
        run(model, cluster, picky, texts, combine=sum, shard_size=8)
    assert caught.value.example_index == next(i for i, text in enumerate(texts.texts) if "float" in text)
    too_long = neuroscope.Dataset.from_records([{"text": "a b"}] * 4 + [{"text": "x " * 300}, {"text": "c"}])
    with pytest.raises(neuroscope.InvalidTokenError, match="exceeds the model's context") as caught:
        run(model, cluster, "attention_pattern_analysis", too_long, shard_size=2)
    assert caught.value.example_index == 4


def test_the_first_failing_shard_wins_whatever_finishes_first():
    seen = []
    late, early = KeyError("shard 3"), ValueError("shard 1")
    outcomes = [(3, None, late), (0, "a", None), (2, "c", None), (1, None, early), (4, "e", None)]
    with pytest.raises(ValueError, match="shard 1"):
        analysis.gather_in_order(iter(outcomes), 5, lambda done, total: seen.append(done), seen.append)
    assert seen == [3, 1, 2, 1]  # cancel past shard 3; shards 0 and 2 in; cancel past shard 1
    assert analysis.gather_in_order(iter([(1, "b", None), (0, "a", None)]), 2, lambda *_: None) == ["a", "b"]


def test_refusals(model, texts):
    with pytest.raises(DistributedTaskError, match="expected one of"):
        DistributedAnalysis(model, None, "attention", texts)
    with pytest.raises(DistributedTaskError, match="needs layer="):
        DistributedAnalysis(model, None, "top_activating_neurons", texts)
    with pytest.raises(DistributedTaskError, match="combine= goes with"):
        DistributedAnalysis(model, None, "activations", texts, combine=sum)
    with pytest.raises(ModelReferenceError, match="source is 'random"):
        analysis.model_reference(neuroscope.TransformerModel.from_config(model.cfg, seed=0))
    with pytest.raises(ClusterError, match="only in its worker"):
        ComputeCluster.browser()
    with pytest.raises(TypeError, match="cluster="):
        run(model, "tcp://nowhere", "attention_pattern_analysis", texts[:2])


def test_changed_weights_are_refused_on_the_worker(model, texts, cluster):
    folded = neuroscope.TransformerModel.from_huggingface("demo")
    folded.content_hash()  # hashed before the edit: the edit must still change the hash it sends
    folded.fold_ln()
    with pytest.raises(ModelReferenceError, match="content hash"):
        run(folded, cluster, "attention_pattern_analysis", texts[:4])


def test_unreachable_scheduler_is_named_within_the_timeout():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the probe closes
    started = time.monotonic()
    with pytest.raises(ClusterConnectionError, match=f"tcp://127.0.0.1:{port}"):
        ComputeCluster(f"tcp://127.0.0.1:{port}", timeout=2)
    assert time.monotonic() - started < 8


def test_a_worker_killed_mid_run_costs_nothing(model, texts, cluster):
    def slow_lengths(model, examples):
        time.sleep(0.15)
        return [len(model.token_ids(example["text"])) for example in examples]

    def flatten(partials):
        return [n for part in partials for n in part]

    killed = {}

    def kill_one(done, total):
        if done == 3 and not killed:
            busy = {worker: keys for worker, keys in cluster.client.processing().items() if keys}
            victim = sorted(busy)[0]
            pid = cluster.client.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            killed.update(worker=victim, pid=pid, keys=busy[victim])

    result = DistributedAnalysis(model, cluster, slow_lengths, texts, combine=flatten, shard_size=4,
                                 progress=kill_one).run()
    assert killed and killed["keys"]  # a worker died with tasks in hand
    assert result == [len(model.token_ids(text)) for text in texts.texts]
