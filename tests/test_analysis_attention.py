"""Attention analysis: scores on hand-made patterns, the metric protocol, and parity with
TransformerLens' ``head_detector``.

``detect_head`` runs on a ``TransformerBridge`` as is (it needs only ``to_tokens``,
``cfg`` and ``run_with_cache``); it takes text, so it is compared on a prompt both
tokenizers encode alike. For token ids (repeated random tokens, a batch) the
reference is TL's own detection patterns and ``compute_head_attention_similarity_score``
on the bridge's patterns, averaged over prompts as ``detect_head`` averages a list.
"""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neuroscope as ns
from neuroscope import analysis
from neuroscope.analysis import (
    AttentionAnalyzer,
    AttentionEntropy,
    AttentionMetric,
    DuplicateTokenScore,
    InductionScore,
    PreviousTokenScore,
)
from neuroscope.errors import InvalidIndexError, LayerNotFoundError
from reference_models import load_hf

CONFIG = dict(model_type="gpt2", vocab_size=40, n_positions=32, n_embd=16, n_layer=3, n_head=4)
PROMPT = "When Mary and John went to the store, John gave a drink to Mary."
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model():
    return ns.TransformerModel.from_config(CONFIG, seed=2)


def _pattern(rows):
    """A one-prompt, one-head pattern ``[1, 1, q, k]`` from nested lists."""
    return ns.tensor([[rows]])


# -- the scores on patterns whose answer is known --------------------------------------
def test_detection_patterns():
    tokens = ns.tensor([[7, 1, 2, 1, 2]])
    duplicate = analysis.duplicate_token_pattern(tokens).numpy()[0]
    expected = np.zeros((5, 5))
    expected[3, 1] = expected[4, 2] = 1
    np.testing.assert_array_equal(duplicate, expected)
    induction = analysis.induction_pattern(tokens).numpy()[0]
    expected = np.zeros((5, 5))
    expected[3, 2] = expected[4, 3] = 1
    np.testing.assert_array_equal(induction, expected)
    np.testing.assert_array_equal(analysis.previous_token_pattern(tokens).numpy()[0], np.eye(5, k=-1))


def test_perfect_previous_token_head_scores_one():
    n = 5
    rows = np.eye(n, k=-1)
    rows[0, 0] = 1  # query 0 can only attend to itself
    pattern = _pattern(rows.tolist())
    tokens = ns.tensor([[1, 2, 3, 4, 5]])
    assert PreviousTokenScore().compute(pattern, tokens).item() == pytest.approx((n - 1) / n)
    assert PreviousTokenScore(exclude_bos=True).compute(pattern, tokens).item() == pytest.approx(1.0)
    assert PreviousTokenScore(error_measure="abs").compute(pattern, tokens).item() == pytest.approx(1 - 1 / n)


def test_entropy_of_uniform_attention():
    n = 4
    rows = [[1 / (q + 1) if k <= q else 0.0 for k in range(n)] for q in range(n)]
    entropy = AttentionEntropy().compute(_pattern(rows), ns.tensor([[0, 1, 2, 3]])).item()
    assert entropy == pytest.approx(sum(math.log(q + 1) for q in range(n)) / n, abs=1e-6)


# -- the analyzer ---------------------------------------------------------------
def test_analysis_shapes_top_heads_and_json(model):
    tokens = analysis.repeated_random_tokens(40, 6, batch=2, seed=1, bos=0)
    assert tokens.shape == (2, 13) and tokens[:, 1:7].tolist() == tokens[:, 7:].tolist()
    result = AttentionAnalyzer(model).analyze_tokens(tokens, layers=[0, 2], heads=[1, 3])
    assert result.kinds == ["entropy", "previous_token", "duplicate_token", "induction"]
    assert result.scores["induction"].shape == (2, 2)
    assert result.patterns[2].shape == (2, 2, 13, 13)
    top = result.top_heads("induction", k=3)
    assert len(top) == 3 and [score for *_, score in top] == sorted((s for *_, s in top), reverse=True)
    assert {(layer, head) for layer, head, _ in top} <= {(0, 1), (0, 3), (2, 1), (2, 3)}
    assert result.top_heads("induction_head", k=1) == top[:1]
    lowest = result.top_heads("entropy", k=1, largest=False)[0]
    assert lowest[2] == min(result.table("entropy").values())
    assert result.score("induction", *top[0][:2]) == pytest.approx(top[0][2])
    np.testing.assert_array_equal(result.pattern(2, 3, batch_index=1).numpy(), result.patterns[2].numpy()[1, 1])
    json.dumps(result.to_dict(include_patterns=True))
    with pytest.raises(KeyError, match="no score named"):
        result.top_heads("copying")


def test_batch_scores_are_the_mean_over_prompts(model):
    tokens = analysis.repeated_random_tokens(40, 5, batch=3, seed=7)
    analyzer = AttentionAnalyzer(model)
    together = analyzer.analyze_tokens(tokens)
    for kind in together.kinds:
        alone = [analyzer.analyze_tokens(tokens[[i]]).scores[kind].numpy() for i in range(3)]
        np.testing.assert_allclose(together.scores[kind].numpy(), np.mean(alone, axis=0), atol=1e-6)


def test_custom_metric_plugs_in(model):
    class MaxAttention(AttentionMetric):
        """How peaked each head is: its largest attention weight, averaged over queries."""

        def compute(self, pattern, tokens):
            return pattern.max(-1).mean((0, 2))  # [h]

    class AttentionToFirst(AttentionMetric):
        name = "first"

        def compute(self, pattern, tokens):
            return pattern[:, :, :, 0].mean((0, 2))

    tokens = [[0, 5, 6, 7, 5, 6]]
    result = AttentionAnalyzer(model, metrics=[MaxAttention, AttentionToFirst()]).analyze_tokens(tokens)
    assert "max_attention" in result.kinds and "first" in result.kinds and "induction" in result.kinds
    _, cache = model.run_with_cache(tokens)
    expected = cache["pattern", 1].numpy()[:, :, :, 0].mean((0, 2))
    np.testing.assert_allclose(result.scores["first"].numpy()[1], expected, atol=1e-6)
    only = AttentionAnalyzer(model, metrics=[AttentionToFirst], defaults=False).analyze_tokens(tokens)
    assert only.kinds == ["first"]
    extra = AttentionAnalyzer(model).analyze_tokens(tokens, metrics=[MaxAttention])
    assert "max_attention" in extra.kinds


def test_bad_arguments_are_named(model):
    analyzer = AttentionAnalyzer(model)
    with pytest.raises(LayerNotFoundError, match="layer 5 requested, model has layers 0-2"):
        analyzer.analyze_tokens([[1, 2, 3]], layers=[5])
    with pytest.raises(InvalidIndexError, match="head 4 requested; expected an integer in 0-3"):
        analyzer.analyze_tokens([[1, 2, 3]], heads=[4])
    with pytest.raises(TypeError, match="not an AttentionMetric"):
        AttentionAnalyzer(model, metrics=[lambda pattern, tokens: None])

    class Wrong(AttentionMetric):
        def compute(self, pattern, tokens):
            return pattern.mean((2, 3))  # [b, h], not [h]

    with pytest.raises(ValueError, match=r"expected \[4\]"):
        AttentionAnalyzer(model, metrics=[Wrong]).analyze_tokens([[1, 2, 3], [3, 2, 1]])
    with pytest.raises(ValueError, match="error_measure"):
        InductionScore(error_measure="max")


def test_analysis_imports_without_numpy_and_its_sources_never_import_it():
    script = textwrap.dedent("""
        import sys
        sys.modules["numpy"] = None
        import neuroscope.analysis as analysis
        assert analysis.AttentionAnalyzer and analysis.logit_lens and analysis.get_act_patch_resid_pre
        print("ok")
    """)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "py"))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr
    folder = os.path.join(ROOT, "py", "neuroscope", "analysis")
    for name in os.listdir(folder):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                source = handle.read()
            assert "import numpy" not in source and "from numpy" not in source, name


# -- against TransformerLens' head detector ------------------------------------------
@pytest.fixture(scope="module")
def pair(reference_dir):
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformer_lens", reason="the ref extra (transformer-lens) is not installed")
    from transformer_lens.model_bridge import TransformerBridge
    folder = reference_dir("gpt2")
    bridge = TransformerBridge.boot_transformers(folder, hf_model=load_hf(folder), device="cpu",
                                                 dtype=torch.float32)
    return ns.TransformerModel.from_huggingface(folder), bridge


SCORES = {"previous_token": PreviousTokenScore, "duplicate_token": DuplicateTokenScore,
          "induction": InductionScore}
OPTIONS = [dict(), dict(exclude_bos=True), dict(exclude_current_token=True), dict(error_measure="abs"),
           dict(exclude_bos=True, exclude_current_token=True, error_measure="abs")]


def _tolerance(options):
    # "abs" rounds to 3 decimals: float32 noise may land on the other side of a rounding edge.
    return 1.1e-3 if options.get("error_measure") == "abs" else 1e-5


@pytest.mark.ref
@pytest.mark.parametrize("options", OPTIONS, ids=str)
@pytest.mark.parametrize("kind", sorted(SCORES))
def test_detect_head_on_text(pair, kind, options):
    from transformer_lens.head_detector import detect_head
    model, bridge = pair
    assert model.to_tokens(PROMPT).tolist() == bridge.to_tokens(PROMPT).tolist()
    theirs = detect_head(bridge, PROMPT, f"{kind}_head", **options).numpy()
    ours = AttentionAnalyzer(model, [SCORES[kind](**options)]).analyze_tokens(PROMPT).scores[kind]
    np.testing.assert_allclose(ours.numpy(), theirs, atol=_tolerance(options), rtol=0)


@pytest.mark.ref
@pytest.mark.parametrize("options", OPTIONS[:3], ids=str)
def test_scores_on_repeated_random_tokens_match_tl_definitions(pair, options):
    import torch
    from transformer_lens import head_detector
    model, bridge = pair
    tokens = analysis.repeated_random_tokens(model.cfg.d_vocab, 8, batch=3, seed=5, bos=0)
    result = AttentionAnalyzer(model, [cls(**options) for cls in SCORES.values()]).analyze_tokens(tokens)
    with torch.no_grad():
        _, cache = bridge.run_with_cache(torch.tensor(tokens.tolist()))
    for kind in SCORES:
        theirs = np.zeros((model.cfg.n_layers, model.cfg.n_heads))
        for index, row in enumerate(tokens.tolist()):
            detection = getattr(head_detector, f"get_{kind}_head_detection_pattern")(torch.tensor([row]))
            for layer in range(model.cfg.n_layers):
                for head in range(model.cfg.n_heads):
                    theirs[layer, head] += head_detector.compute_head_attention_similarity_score(
                        cache["pattern", layer][index, head], detection,
                        **{"exclude_bos": False, "exclude_current_token": False, "error_measure": "mul",
                           **options})
        np.testing.assert_allclose(result.scores[kind].numpy(), theirs / 3, atol=1e-5)
