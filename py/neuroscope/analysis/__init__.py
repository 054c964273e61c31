"""Analyses over a model and its activations: attention heads, the logit lens and
direct logit attribution, activation patching and its gradient estimate (attribution
patching, EAP, EAP-IG), neurons over datasets, linear probes.

Each is a free function or a small class taking the model and an
``ActivationCache``; the cache stays a plain mapping. The lens and patching
functions mirror TransformerLens' ``ActivationCache`` methods and ``patching``
module (same names, arguments and results), checked against them in the tests.
"""

from ..progress import ProgressBar
from .attention import (
    AttentionAnalysis,
    AttentionAnalyzer,
    AttentionEntropy,
    AttentionMetric,
    DetectionScore,
    DuplicateTokenScore,
    InductionScore,
    PreviousTokenScore,
    default_metrics,
    duplicate_token_pattern,
    induction_pattern,
    previous_token_pattern,
    repeated_random_tokens,
)
from .attribution import EdgeAttribution, attribution_patching
from .circuits import Circuit, CircuitFinder
from .common import MissingActivationError, Slice
from .hypothesis import Hypothesis, HypothesisError, HypothesisResult, HypothesisTester, HypothesisWarning
from .lens import (
    accumulated_resid,
    apply_ln_to_stack,
    decompose_resid,
    direct_logit_attribution,
    head_results,
    logit_attrs,
    stack_head_results,
    tokens_to_residual_directions,
)
from .logit_lens import LogitLensTable, logit_lens
from .neurons import NeuronAnalyzer, NeuronSummary, neuron_activations, top_activating_tokens
from .patching import (
    SWEEPS,
    generic_activation_patch,
    get_act_patch_attn_head_out_all_pos,
    get_act_patch_attn_head_out_by_pos,
    get_act_patch_attn_out,
    get_act_patch_mlp_out,
    get_act_patch_resid_mid,
    get_act_patch_resid_pre,
    logit_diff_metric,
    normalized_metric,
    patching_sweep,
    probability_metric,
)
from .probes import LinearProbe, ProbeError, ProbeSweep, probe_layers
from .saliency import TokenSaliency, integrated_gradients

__all__ = [
    "SWEEPS", "AttentionAnalysis", "AttentionAnalyzer", "AttentionEntropy", "AttentionMetric",
    "Circuit", "CircuitFinder", "Hypothesis", "HypothesisError", "HypothesisResult", "HypothesisTester",
    "HypothesisWarning",
    "DetectionScore", "DuplicateTokenScore", "EdgeAttribution", "attribution_patching",
    "InductionScore", "LogitLensTable", "MissingActivationError", "TokenSaliency", "integrated_gradients",
    "PreviousTokenScore", "ProgressBar", "Slice", "accumulated_resid", "apply_ln_to_stack",
    "decompose_resid", "default_metrics", "direct_logit_attribution", "duplicate_token_pattern",
    "generic_activation_patch", "get_act_patch_attn_head_out_all_pos", "get_act_patch_attn_head_out_by_pos",
    "get_act_patch_attn_out", "get_act_patch_mlp_out", "get_act_patch_resid_mid", "get_act_patch_resid_pre",
    "head_results", "induction_pattern", "logit_attrs", "logit_diff_metric", "logit_lens",
    "LinearProbe", "NeuronAnalyzer", "NeuronSummary", "ProbeError", "ProbeSweep", "probe_layers",
    "neuron_activations", "normalized_metric", "patching_sweep",
    "previous_token_pattern",
    "probability_metric", "repeated_random_tokens", "stack_head_results", "tokens_to_residual_directions",
    "top_activating_tokens",
]
