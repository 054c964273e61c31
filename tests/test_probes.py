"""LinearProbe against scikit-learn's LogisticRegression(C=1 / (regularization * n)), its metrics
against sklearn.metrics, specs, ProbeHook, errors, and probe_layers on a tiny reference GPT-2."""

import json
import warnings

import numpy as np
import pytest

import neuroscope as ns
from neuroscope.analysis.probes import ProbeError

linear_model = pytest.importorskip("sklearn.linear_model", reason="scikit-learn (reference) is not installed")
metrics = pytest.importorskip("sklearn.metrics")

PROB_TOL = 1e-3


def _reference(features, labels, regularization):
    """scikit-learn fitted to convergence on the same (float32) features, in float64."""
    n = len(labels)
    return linear_model.LogisticRegression(C=1.0 / (regularization * n), tol=1e-10, max_iter=100_000).fit(
        np.asarray(features, dtype=np.float64), labels)


def _blobs(n, d, k, separation, seed, scale=1.0, offset=0.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d)) * separation
    labels = rng.integers(0, k, n)
    labels[:k] = np.arange(k)  # every class present
    features = (centers[labels] + rng.normal(size=(n, d))) * scale + offset * rng.normal(size=d)
    return features.astype(np.float32), labels


def _objective(features, labels, weights, bias, regularization, k):
    """mean cross-entropy + regularization / 2 ||W||^2, computed independently in float64."""
    logits = features.astype(np.float64) @ np.asarray(weights, np.float64).T + bias
    if k == 2:
        logits = np.concatenate([np.zeros((len(logits), 1)), logits], axis=1)
    peak = logits.max(axis=1, keepdims=True)
    log_probs = logits - peak - np.log(np.exp(logits - peak).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean() + 0.5 * regularization * np.sum(
        np.square(weights, dtype=np.float64))


def _fit(features, labels, regularization):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a probe that does not converge fails the test
        return ns.LinearProbe(features, labels, regularization).train()


# n, d, k, regularization, separation (3: separable; 0.2: overlapping), scale, offset
CASES = [
    (20, 2, 2, 0.01, 3.0, 1.0, 0.0),
    (200, 2, 4, 1e-3, 0.2, 1.0, 0.0),
    (300, 32, 2, 1e-2, 3.0, 30.0, 100.0),  # separable, badly scaled, off-centre (a residual stream)
    (300, 32, 4, 1e-4, 3.0, 1.0, 0.0),
    (300, 16, 4, 1.0, 0.2, 1.0, 5.0),
    (20, 256, 4, 1e-3, 2.0, 1.0, 0.0),  # d > n: separable
    (500, 64, 2, 0.1, 0.2, 1.0, 0.0),
    (2000, 64, 4, 0.01, 0.3, 1.0, 1.0),
    (500, 256, 4, 0.01, 0.3, 1.0, 1.0),
    (2000, 8, 2, 1e-2, 3.0, 1.0, 0.0),
]


@pytest.mark.parametrize("n, d, k, regularization, separation, scale, offset", CASES)
def test_probabilities_equal_sklearn(n, d, k, regularization, separation, scale, offset):
    features, labels = _blobs(n + 50, d, k, separation, seed=n + d + k, scale=scale, offset=offset)
    features, labels, held_out = features[:n], labels[:n], features[n:]
    probe = _fit(features, labels, regularization)
    reference = _reference(features, labels, regularization)
    assert probe.converged and probe.classes == list(reference.classes_)
    # the objective, in float64, is no higher than scikit-learn's minimum
    ours = _objective(features, labels, probe.weights.numpy(), probe.bias.numpy(), regularization, k)
    theirs = _objective(features, labels, reference.coef_, reference.intercept_, regularization, k)
    assert ours <= theirs * (1 + 1e-6) + 1e-9
    for x in (features, held_out):
        ours = probe.predict_proba(x)
        assert ours.shape == (len(x), k)
        assert np.abs(ours.numpy() - reference.predict_proba(x)).max() <= PROB_TOL
    assert probe.predict(features) == reference.predict(features).tolist()


def test_weights_and_direction_match_sklearn():
    features, labels = _blobs(400, 12, 2, 1.0, seed=3)
    probe = _fit(features, labels, 0.05)
    reference = _reference(features, labels, 0.05)
    assert probe.direction.shape == (12,)
    np.testing.assert_allclose(probe.direction.numpy(), reference.coef_[0], atol=1e-3)
    np.testing.assert_allclose(probe.bias.numpy(), reference.intercept_, atol=1e-3)
    features, labels = _blobs(400, 12, 3, 1.0, seed=4)
    probe = _fit(features, labels, 0.05)
    reference = _reference(features, labels, 0.05)
    assert probe.direction.shape == (3, 12)
    np.testing.assert_allclose(probe.direction.numpy(), reference.coef_, atol=1e-3)


def test_string_labels_and_tensor_inputs():
    features, labels = _blobs(120, 6, 3, 1.5, seed=5)
    names = np.array(["noun", "verb", "adj"])[labels].tolist()
    probe = _fit(ns.tensor(features), names, 0.01)
    assert probe.classes == ["adj", "noun", "verb"]  # sorted, as scikit-learn orders them
    reference = _reference(features, names, 0.01)
    assert np.abs(probe.predict_proba(features.tolist()).numpy() - reference.predict_proba(features)).max() <= PROB_TOL
    assert probe.predict(features) == reference.predict(features).tolist()
    assert _fit(features, ns.tensor(labels.tolist()), 0.01).classes == [0, 1, 2]
    assert json.dumps(_fit(features, list(labels), 0.01).to_spec()["classes"]) == "[0, 1, 2]"  # numpy ints


@pytest.mark.parametrize("k", [2, 3])
def test_evaluate_matches_sklearn_metrics(k):
    features, labels = _blobs(300, 10, k, 0.4, seed=11 + k)
    test_features, test_labels = _blobs(200, 10, k, 0.4, seed=20 + k)
    probe = _fit(features, labels, 0.01)
    result = probe.evaluate(test_features, test_labels)
    probabilities = probe.predict_proba(test_features).numpy().astype(np.float64)
    probabilities /= probabilities.sum(axis=1, keepdims=True)  # float32 rows sum to 1 +- 1e-7
    predicted = probe.predict(test_features)
    assert result["accuracy"] == pytest.approx(metrics.accuracy_score(test_labels, predicted))
    np.testing.assert_allclose(result["precision"], metrics.precision_score(
        test_labels, predicted, average=None, zero_division=0))
    np.testing.assert_allclose(result["recall"], metrics.recall_score(test_labels, predicted, average=None))
    assert result["support"] == np.bincount(test_labels, minlength=k).tolist()
    assert result["loss"] == pytest.approx(metrics.log_loss(test_labels, probabilities), rel=1e-4)
    if k == 2:
        assert result["auc"] == pytest.approx(metrics.roc_auc_score(test_labels, probabilities[:, 1]))
    else:
        assert "auc" not in result
    json.dumps(result)


def test_spec_round_trip():
    features, labels = _blobs(100, 5, 2, 1.0, seed=9)
    names = np.array(["no", "yes"])[labels].tolist()
    probe = _fit(features, names, 0.02)
    spec = json.loads(json.dumps(probe.to_spec()))
    loaded = ns.LinearProbe.from_spec(spec)
    assert loaded.classes == ["no", "yes"] and loaded.to_spec() == spec
    np.testing.assert_array_equal(loaded.predict_proba(features).numpy(), probe.predict_proba(features).numpy())
    assert loaded.predict(features) == probe.predict(features)
    with pytest.raises(ProbeError, match="no training data"):
        loaded.train()
    with pytest.raises(ProbeError, match="type 'linear_probe'"):
        ns.LinearProbe.from_spec({"type": "zero_ablation"})
    with pytest.raises(ProbeError, match="expected 1 of each"):
        ns.LinearProbe.from_spec({**spec, "bias": [0.0, 1.0]})


def test_errors_name_the_bad_value():
    features, labels = _blobs(30, 4, 2, 1.0, seed=1)
    with pytest.raises(ProbeError, match="29 labels for 30 examples"):
        ns.LinearProbe(features, labels[:29])
    with pytest.raises(ProbeError, match="at least two classes"):
        ns.LinearProbe(features, [1] * 30)
    broken = features.copy()
    broken[7, 2] = np.nan
    with pytest.raises(ProbeError, match="NaN or infinite values in 1 of 30 rows .first: row 7"):
        ns.LinearProbe(broken, labels)
    with pytest.raises(ns.ShapeError, match=r"shape \[30\]; expected a non-empty \[n, d\]"):
        ns.LinearProbe(features[:, 0], labels)
    with pytest.raises(ProbeError, match="regularization=0.0"):
        ns.LinearProbe(features, labels, regularization=0)
    probe = ns.LinearProbe(features, labels)
    with pytest.raises(ProbeError, match="not trained yet"):
        probe.predict(features)
    probe.train()
    with pytest.raises(ns.ShapeError, match="3 features .* trained on 4"):
        probe.predict_proba(features[:, :3])
    with pytest.raises(ProbeError, match="label 5 is not one of the probe's classes"):
        probe.evaluate(features, [5] * 30)


def test_not_converging_warns():
    features, labels = _blobs(200, 8, 2, 0.5, seed=2)
    with pytest.warns(ns.analysis.probes.ProbeConvergenceWarning, match="stopped after 2 iterations"):
        probe = ns.LinearProbe(features, labels).train(max_iter=2)
    assert not probe.converged and probe.n_iter == 2


# -- features from a tiny reference model ------------------------------------------------
WORDS = ["Mary", "John", "Paris", "Tokyo"]
STEMS = ["When we went to the store, ", "The capital of France is ", "def forward(self, x): ",
         "Café, naïve, über ", "and newlines ", "The capital of Japan is "]


@pytest.fixture(scope="module")
def reference_model(reference_dir):
    return ns.TransformerModel.from_huggingface(reference_dir("gpt2"))


@pytest.fixture(scope="module")
def word_dataset():
    records = [{"text": stem * (1 + repeat) + word, "label": word, "capital": word in ("Paris", "Tokyo")}
               for repeat in range(3) for stem in STEMS for word in WORDS]
    return ns.Dataset.from_records(records)


@pytest.mark.parametrize("column", ["label", "capital"])
def test_residual_stream_probe_equals_sklearn(reference_model, word_dataset, column):
    features = reference_model.activations_at("residual", 1, word_dataset, cache=False)  # [n, d]
    labels = word_dataset.column(column)
    for regularization in (1e-3, 0.1):
        probe = _fit(features, labels, regularization)
        reference = _reference(features.numpy(), labels, regularization)
        assert np.abs(probe.predict_proba(features).numpy() - reference.predict_proba(features.numpy())).max() \
            <= PROB_TOL


def test_probe_hook_runs_the_probe_on_each_pass(reference_model, word_dataset):
    features = reference_model.activations_at("residual", 0, word_dataset, cache=False)
    probe = _fit(features, word_dataset.column("label"), 0.01)
    tokens = reference_model.to_tokens(word_dataset[0]["text"])
    _, cache = reference_model.run_with_cache(tokens, names_filter="blocks.0.hook_resid_post")
    hook = ns.ProbeHook(0, "residual", probe=probe)
    with reference_model.hooks([hook]):
        reference_model(tokens)
    expected = probe.predict(cache["blocks.0.hook_resid_post"])  # [batch][pos] labels
    assert hook.last_output == expected
    assert len(expected) == 1 and len(expected[0]) == tokens.shape[1] and expected[0][-1] in WORDS


def test_probe_layers_sweep(reference_model, word_dataset):
    reported = []
    result = ns.probe_layers(reference_model, word_dataset, "residual", labels="label", regularization=0.01,
                             test_fraction=0.25, seed=3, cache=False,
                             progress=lambda done, total: reported.append((done, total)))
    assert result.layers == [0, 1] and reported == [(0, 2), (1, 2), (2, 2)]
    assert sorted(result.train_rows + result.test_rows) == list(range(len(word_dataset)))
    labels = word_dataset.column("label")
    assert {labels[i] for i in result.test_rows} == set(WORDS)  # stratified: each class held out
    for index, layer in enumerate(result.layers):
        features = reference_model.activations_at("residual", layer, word_dataset, cache=False).numpy()
        train, test = features[result.train_rows], features[result.test_rows]
        reference = _reference(train, [labels[i] for i in result.train_rows], 0.01)
        assert result.train_accuracy[index] == pytest.approx(
            reference.score(train, [labels[i] for i in result.train_rows]))
        assert result.test_accuracy[index] == pytest.approx(
            reference.score(test, [labels[i] for i in result.test_rows]))
    table = json.loads(json.dumps(result.to_dict(include_probes=True)))
    assert table["layers"] == [0, 1] and table["n_test"] == len(result.test_rows)
    assert ns.LinearProbe.from_spec(table["probes"][1]).classes == sorted(WORDS)
    assert result.best_layer in (0, 1)
    single = ns.probe_layers(reference_model, word_dataset, "residual", layers=1, labels="capital",
                             test_fraction=0.0, cache=False, progress=False)
    assert single.layers == [1] and single.test_accuracy == [None] and single.classes == [False, True]
    with pytest.raises(ns.LayerNotFoundError):
        ns.probe_layers(reference_model, word_dataset, "residual", layers=[5], cache=False, progress=False)
    with pytest.raises(ProbeError, match="position='all'"):
        ns.probe_layers(reference_model, word_dataset, "residual", position="all", cache=False, progress=False)
