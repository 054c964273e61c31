"""Testing a claim about components: ``HypothesisTester(model, hypothesis, dataset).run()``.

A hypothesis names components ("Layer 3 head 6 moves the indirect object's name", "MLP 2
...", "heads 0.7 and 1.1 ...") and claims that ablating them changes the metric (by default:
lowers the logit difference answer - incorrect at the last token). The test:

* ``effect``: the mean over the examples of metric(ablated) - metric(clean);
* ``ci``: its 95% bootstrap interval (examples resampled with replacement, percentiles); with
  fewer than ``MIN_BOOTSTRAP_EXAMPLES`` examples it is too narrow (one example gives a width of
  0) and a ``HypothesisWarning`` says so;
* ``p_value``: a permutation test against the same ablation of random components of the same
  kinds (as many heads and as many MLPs as the hypothesis names): the fraction of those
  draws whose effect is at least as large in the claimed direction, counting the claim's own
  components, so p >= 1 / (draws + 1). With fewer distinct sets than ``draws`` every set is
  tried once (an exact test);
* ``supported``: p < 0.05 and the effect in the claimed direction.

A metric value that is NaN or infinite (clean, ablated, or under a random set) is refused: it
would compare as neither larger nor smaller, and so count for the claim.

Ablations: ``"resample"`` (each component's output on the example's ``corrupted_prompt``,
another input of the task's distribution: the default when every example has one), ``"mean"``
(its mean over the dataset at each position: the default otherwise) or ``"zero"``. Everything
is seeded.
"""

import itertools
import math
import random
import re
import warnings

from . import circuit_runs as runs
from .circuit_runs import ExampleError, PromptPairs

ABLATIONS = ("mean", "zero", "resample")
DIRECTIONS = ("decrease", "increase")
_SOURCE = {"mean": "mean", "zero": "zero", "resample": "corrupted"}
MIN_BOOTSTRAP_EXAMPLES = 10  # below this a percentile interval of the mean covers well under 95%


class HypothesisError(ExampleError):
    """A hypothesis that cannot be tested as stated."""


class HypothesisWarning(UserWarning):
    """A result that is computed as documented but rests on too little data."""


class Hypothesis:
    """``Hypothesis(components, ablation=None, metric=None, direction="decrease", text=None)``.

    ``components``: ``("head", layer, head)`` / ``("mlp", layer)`` tuples, or a sentence (see
    ``parse_components``). ``metric``: None for the logit difference at the last token, or
    ``metric(last_logits [b, v], examples) -> one value per example``."""

    def __init__(self, components, ablation=None, metric=None, direction="decrease", text=None):
        if isinstance(components, str):
            text = text or components
            components = parse_components(components)
        self.components = [tuple(c) for c in components]
        if not self.components:
            raise HypothesisError("a hypothesis needs at least one component")
        for c in self.components:
            if not ((c[:1] == ("head",) and len(c) == 3) or (c[:1] == ("mlp",) and len(c) == 2)) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in c[1:]):
                raise HypothesisError(f"component {c!r}; expected ('head', layer, head) or ('mlp', layer)")
        if len(set(self.components)) != len(self.components):
            raise HypothesisError(f"components {self.components!r} name one component twice")
        if ablation is not None and ablation not in ABLATIONS:
            raise HypothesisError(f"ablation={ablation!r}; expected one of {list(ABLATIONS)} (or None: "
                                  "'resample' when every example has a corrupted_prompt, else 'mean')")
        if direction not in DIRECTIONS:
            raise HypothesisError(f"direction={direction!r}; expected one of {list(DIRECTIONS)}")
        self.ablation, self.metric, self.direction = ablation, metric, direction
        self.text = text or ", ".join(_label(c) for c in self.components)

    def __repr__(self):
        return (f"Hypothesis({[_label(c) for c in self.components]}, ablation={self.ablation!r}, "
                f"direction={self.direction!r})")


_HEAD_PATTERNS = [
    re.compile(r"\blayer\s+(\d+)\s*,?\s*head\s+(\d+)", re.I),                     # layer 3 head 5
    re.compile(r"\bL(\d+)\s*H(\d+)\b", re.I),                                        # L3H5
    re.compile(r"\bhead\s+(\d+)\s+(?:of|in)\s+layer\s+(\d+)", re.I),                # head 5 of layer 3
]
_AND = r"\s*(?:,\s*(?:and\s+)?|and\s+|&\s*)\s*"
_HEAD_LIST = re.compile(r"\bheads?\s+(\d+\.\d+(?:" + _AND + r"\d+\.\d+)*)", re.I)    # heads 0.2 and 1.4
_MLP_PATTERNS = [
    re.compile(r"\bMLPs?\s*(\d+(?:" + _AND + r"\d+)*)", re.I),  # MLP 2, MLPs 1 and 2, MLP2
    re.compile(r"\blayer\s+(\d+)(?:'s)?\s+MLP\b", re.I),  # layer 2 MLP
    re.compile(r"\bMLP\s+(?:of|in)\s+layer\s+(\d+)", re.I),  # the MLP in layer 2
]
_LEFTOVER = re.compile(r"\b(layer|head|heads|mlp|mlps)\b\s*\d*", re.I)


def parse_components(sentence):
    """The components a sentence names, in the order it names them: ``"Layer 3 head 5"``,
    ``"L3H5"``, ``"head 5 of layer 3"``, ``"heads 0.2 and 1.4"`` (layer.head), ``"MLP 2"``,
    ``"MLPs 1 and 2"``, ``"layer 2 MLP"``. A mention of a layer, head or MLP that none of these
    forms covers (``"layer 3 performs ..."``) is refused by name."""
    if not isinstance(sentence, str) or not sentence.strip():
        raise HypothesisError(f"hypothesis={sentence!r}; expected a sentence naming heads or MLPs")
    found = []  # (start, component)
    spans = []

    def take(match, components):
        spans.append(match.span())
        found.extend((match.start(), c) for c in components)

    for index, pattern in enumerate(_HEAD_PATTERNS):
        for match in pattern.finditer(sentence):
            a, b = int(match.group(1)), int(match.group(2))
            take(match, [runs.head(b, a) if index == 2 else runs.head(a, b)])
    for match in _HEAD_LIST.finditer(sentence):
        if _covered(match.span(), spans):
            continue
        pairs = re.findall(r"(\d+)\.(\d+)", match.group(1))
        take(match, [runs.head(int(a), int(b)) for a, b in pairs])
    for index, pattern in enumerate(_MLP_PATTERNS):
        for match in pattern.finditer(sentence):
            if _covered(match.span(), spans):
                continue
            layers = re.findall(r"\d+", match.group(1)) if index == 0 else [match.group(1)]
            take(match, [runs.mlp(int(layer)) for layer in layers])
    for match in _LEFTOVER.finditer(sentence):
        if not _covered(match.span(), spans) and re.search(r"\d", match.group(0)):
            raise HypothesisError(
                f"could not parse {match.group(0).strip()!r} in {sentence!r}: name heads as "
                "'layer 3 head 5', 'L3H5' or 'heads 3.5 and 2.1', MLPs as 'MLP 2'"
            )
    if not found:
        raise HypothesisError(
            f"no head or MLP named in {sentence!r}: name heads as 'layer 3 head 5', 'L3H5' or "
            "'heads 3.5 and 2.1', MLPs as 'MLP 2'"
        )
    out = []
    for _, component in sorted(found, key=lambda item: item[0]):
        if component not in out:
            out.append(component)
    return out


def _covered(span, spans):
    return any(a <= span[0] and span[1] <= b or (span[0] < b and a < span[1]) for a, b in spans)


class HypothesisResult:
    """What ``HypothesisTester.run()`` measured (see the module docstring)."""

    def __init__(
        self, hypothesis, ablation, effect, ci, p_value, null, exact, values, n_examples, seed, draws
    ):
        self.hypothesis, self.ablation = hypothesis, ablation
        self.effect, self.ci, self.p_value = effect, ci, p_value
        self.null, self.exact = null, exact
        self.clean_mean, self.ablated_mean = values
        self.n_examples, self.seed, self.draws = n_examples, seed, draws
        claimed = effect < 0 if hypothesis.direction == "decrease" else effect > 0
        self.supported = bool(p_value < 0.05 and claimed)
        self.code = None  # the Python that ran the test (set by HypothesisTester)
        self.code = None  # the Python that ran the test (set by HypothesisTester)

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        verdict = "supported" if self.supported else "not supported"
        return (
            f"HypothesisResult({self.hypothesis.text!r}: effect {self.effect:+.3f} "
            f"[{self.ci[0]:+.3f}, {self.ci[1]:+.3f}], p={self.p_value:.4f}, {verdict})"
        )

    def summary(self):
        test = "exact permutation test over" if self.exact else "permutation test with"
        return (
            f"Ablating {', '.join(_label(c) for c in self.hypothesis.components)} ({self.ablation} "
            f"ablation) changes the metric by {self.effect:+.3f} on average over {self.n_examples} examples "
            f"(95% CI {self.ci[0]:+.3f} to {self.ci[1]:+.3f}; from {self.clean_mean:.3f} to "
            f"{self.ablated_mean:.3f}); {test} {len(self.null)} sets of random components of the same kinds: "
            f"p = {self.p_value:.4f}. The claim that it {self.hypothesis.direction}s the metric is "
            f"{'supported' if self.supported else 'not supported'} at p < 0.05."
        )

    def to_dict(self):
        return {
            "type": "hypothesis_result",
            "hypothesis": self.hypothesis.text,
            "components": [list(c) for c in self.hypothesis.components],
            "ablation": self.ablation,
            "direction": self.hypothesis.direction,
            "effect": self.effect,
            "ci": list(self.ci),
            "p_value": self.p_value,
            "supported": self.supported,
            "exact": self.exact,
            "null_draws": len(self.null),
            "clean_mean": self.clean_mean,
            "ablated_mean": self.ablated_mean,
            "n_examples": self.n_examples,
            "seed": self.seed,
        }


class HypothesisTester:
    """``HypothesisTester(model, hypothesis, dataset, draws=1000, bootstrap=2000, seed=0).run()``.

    ``hypothesis``: a sentence or a ``Hypothesis``. ``dataset``: a ``Dataset`` or records with
    ``prompt``, ``answer`` and ``incorrect`` (and ``corrupted_prompt`` for
    ``ablation="resample"``), or ``"ioi"`` / ``"facts"`` for the demo model's pairs.
    ``progress``: None for a stderr bar, False for none, or a callable ``(done, total)``."""

    def __init__(self, model, hypothesis, dataset, draws=1000, bootstrap=2000, seed=0, progress=None):
        self.model = model
        self.hypothesis = hypothesis if isinstance(hypothesis, Hypothesis) else Hypothesis(hypothesis)
        cfg = model.cfg
        for c in self.hypothesis.components:
            if not 0 <= c[1] < cfg.n_layers or (c[0] == "head" and not 0 <= c[2] < cfg.n_heads):
                raise HypothesisError(
                    f"{_label(c)} is not in this model ({cfg.n_layers} layers of {cfg.n_heads} "
                    f"heads: layers 0-{cfg.n_layers - 1}, heads 0-{cfg.n_heads - 1})"
                )
        for name, value, low in (("draws", draws, 1), ("bootstrap", bootstrap, 100)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise HypothesisError(f"{name}={value!r}; expected an integer >= {low}")
        if isinstance(dataset, str):
            from .circuits import builtin_examples

            dataset = builtin_examples(dataset, model)
        self.dataset = dataset
        self.draws, self.bootstrap, self.seed, self.progress = draws, bootstrap, seed, progress

    def run(self):
        from ..progress import progress_reporter

        hypothesis = self.hypothesis
        records = runs.as_records(self.dataset)
        ablation = hypothesis.ablation or (
            "resample" if records and all(r.get("corrupted_prompt") for r in records) else "mean"
        )
        pairs = PromptPairs(self.model, records, hypothesis.metric, corrupted=ablation == "resample")
        source = _SOURCE[ablation]
        null_sets, exact = _null_sets(self.model.cfg, hypothesis.components, self.draws, self.seed)
        report = progress_reporter(self.progress, "hypothesis test")
        total = len(null_sets) + 1
        report(0, total)
        clean = _finite(pairs.clean_values(), "the clean run")
        ablated = _finite(pairs.node_values([set(hypothesis.components)], source)[0],
                          f"the run with {hypothesis.text!r} ablated")
        differences = [a - c for a, c in zip(ablated, clean)]
        effect = _mean(differences)
        report(1, total)
        null = []
        step = pairs.copies_per_forward()
        for start in range(0, len(null_sets), step):
            configs = null_sets[start : start + step]
            for config, values in zip(configs, pairs.node_values(configs, source)):
                ablated_set = ", ".join(_label(c) for c in sorted(config))
                null.append(_mean(_finite(values, f"the run with {ablated_set} ablated")) - _mean(clean))
            report(len(null) + 1, total)
        sign = -1.0 if hypothesis.direction == "decrease" else 1.0
        # ties count against the claim; the claim's own set is one of the permutations
        tolerance = 1e-6 * max(1.0, abs(effect))
        as_extreme = sum(1 for value in null if sign * value >= sign * effect - tolerance)
        p_value = (as_extreme + (0 if exact else 1)) / (len(null) + (0 if exact else 1))
        if pairs.n < MIN_BOOTSTRAP_EXAMPLES:
            warnings.warn(f"the 95% bootstrap interval comes from {pairs.n} example(s); below "
                          f"{MIN_BOOTSTRAP_EXAMPLES} it is too narrow (one example gives a width of 0): "
                          "test on more examples", HypothesisWarning, stacklevel=2)
        ci = _bootstrap(differences, self.bootstrap, self.seed)
        result = HypothesisResult(hypothesis, ablation, effect, ci, p_value, null, exact,
                                  (_mean(clean), _mean(ablated)), pairs.n, self.seed, self.draws)
        result.code = self._code(ablation)
        return result

    def _code(self, ablation):
        from .circuits import examples_code
        h = self.hypothesis
        data = repr(self.dataset) if isinstance(self.dataset, str) else "dataset"
        claim = (f"Hypothesis({[list(c) for c in h.components]!r}, ablation={ablation!r}, "
                 f"direction={h.direction!r}, text={h.text!r})")
        extra = "".join(
            f", {name}={value!r}"
            for name, value, default in (
                ("draws", self.draws, 1000),
                ("bootstrap", self.bootstrap, 2000),
                ("seed", self.seed, 0),
            )
            if value != default
        )
        return (
            "from neuroscope import Hypothesis, HypothesisTester\n\n"
            + (examples_code(self.dataset, "dataset") if data == "dataset" else "")
            + ("# metric: a custom function, not reproduced here\n" if h.metric is not None else "")
            + f"result = HypothesisTester(model, {claim}, {data}{extra}).run()\nprint(result.summary())\n"
        )


def _null_sets(cfg, components, draws, seed):
    """Random sets with as many heads and MLPs as ``components``: every such set (the claim's
    own included) when there are at most ``draws`` of them, else ``draws`` seeded draws."""
    heads = [runs.head(layer, h) for layer in range(cfg.n_layers) for h in range(cfg.n_heads)]
    mlps = [runs.mlp(layer) for layer in range(cfg.n_layers)]
    k_heads = sum(1 for c in components if c[0] == "head")
    k_mlps = len(components) - k_heads
    count = math.comb(len(heads), k_heads) * math.comb(len(mlps), k_mlps)
    if count <= draws:
        return [
            set(a) | set(b)
            for a in itertools.combinations(heads, k_heads)
            for b in itertools.combinations(mlps, k_mlps)
        ], True
    rng = random.Random(seed)
    return [set(rng.sample(heads, k_heads)) | set(rng.sample(mlps, k_mlps)) for _ in range(draws)], False


def _bootstrap(values, resamples, seed):
    rng = random.Random(seed + 1)
    n = len(values)
    means = sorted(sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(resamples))
    return _quantile(means, 0.025), _quantile(means, 0.975)


def _quantile(ordered, q):
    position = q * (len(ordered) - 1)
    low = int(math.floor(position))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _finite(values, where):
    """``values`` (one metric value per example), or a HypothesisError naming a non-finite one."""
    for index, value in enumerate(values):
        if not math.isfinite(value):
            raise HypothesisError(f"the metric is {value!r} on example {index} in {where}; expected "
                                  "finite values (a NaN compares as neither larger nor smaller, so "
                                  "it would count for the claim)")
    return values


def _mean(values):
    return sum(values) / len(values)


def _label(component):
    return f"L{component[1]}H{component[2]}" if component[0] == "head" else f"MLP{component[1]}"


__all__ = [
    "ABLATIONS",
    "Hypothesis",
    "HypothesisError",
    "HypothesisResult",
    "HypothesisTester",
    "HypothesisWarning",
    "MIN_BOOTSTRAP_EXAMPLES",
    "parse_components",
]
