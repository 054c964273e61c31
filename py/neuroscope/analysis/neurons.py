"""Neuron analysis: the tokens of a dataset on which one MLP neuron fires most.

``top_activating_tokens`` runs texts through the model, reads one neuron of
``blocks.{layer}.mlp.hook_post`` (the MLP's activation after the nonlinearity,
TransformerLens' "neuron" activation) at every token, and keeps the ``k``
largest with their surrounding tokens: the dataset examples of Elhage et al.,
"Softmax Linear Units" (2022), of Bills et al., "Language models can explain
neurons in language models" (2023), and of Nanda's Neuroscope (neuroscope.io).

Texts run in batches of similar length, right-padded: under the causal mask a
real token never attends to the padding after it, so its activation is the
one it has alone. The forward pass stops once the neuron's layer has run.

Shapes: b batch, p positions, m d_mlp.
"""

import heapq

from ..args import as_index, as_layer
from ..errors import InvalidIndexError
from ..hooks import FunctionHook
from ..model.activations import as_dataset
from ..model.transformer import pad_rows
from ..progress import progress_reporter
from .common import decoder


class _Captured(Exception):
    """Raised by the capturing hook to end the forward pass early (hooks are removed on raise)."""


def top_activating_tokens(model, layer, neuron, texts, k=10, context=8, batch_size=8, exclude_bos=True):
    """The ``k`` tokens of ``texts`` with the largest activation of MLP neuron ``neuron`` in ``layer``.

    ``texts`` is a list of strings (tokenised with ``model.to_tokens``, so GPT-2
    style models get BOS) or of token-id lists; a text longer than the model's
    context is cut to its first ``n_ctx`` tokens. ``exclude_bos`` skips a leading
    BOS token, whose activations say nothing about the text. Returns a list,
    largest activation first (ties: earlier text, then earlier position), of::

        {"text_index": int, "position": int, "token_id": int, "token": str,
         "activation": float, "left": [str] (up to ``context`` tokens before),
         "right": [str] (up to ``context`` tokens after)}
    """
    layer, neuron = _check_neuron(model, layer, neuron)
    for name, value, low in (("k", k, 1), ("context", context, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}; expected an integer >= {low}")
    if isinstance(texts, str):
        texts = [texts]
    rows = [_text_ids(model, text, index) for index, text in enumerate(texts)]
    if not rows:
        raise ValueError("texts is empty; expected at least one text")
    bos = model.cfg.bos_token_id
    # Similar lengths share a batch, so little compute goes to padding.
    order = sorted(range(len(rows)), key=lambda index: len(rows[index]))
    best = []  # (activation, -text_index, -position): nlargest then breaks ties by earlier text / position
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        values = neuron_activations(model, layer, neuron, [rows[index] for index in chunk])  # [b][p]
        candidates = [(value, -index, -position)
                      for index, row in zip(chunk, values)
                      for position, value in enumerate(row[:len(rows[index])])
                      if not (exclude_bos and position == 0 and rows[index][0] == bos)]
        best = heapq.nlargest(k, best + candidates)
    decode = decoder(model)
    examples = []
    for value, index, position in best:
        index, position = -index, -position
        row = rows[index]
        examples.append({
            "text_index": index, "position": position, "token_id": row[position],
            "token": decode(row[position]), "activation": value,
            "left": [decode(i) for i in row[max(0, position - context):position]],
            "right": [decode(i) for i in row[position + 1:position + 1 + context]]})
    return examples


def neuron_activations(model, layer, neuron, rows):
    """One neuron's activation at every token of ``rows`` (token-id lists): ``[b][p]`` host lists.

    Rows of unequal length are right-padded; entries past a row's length are padding.
    """
    layer, neuron = _check_neuron(model, layer, neuron)
    captured = {}

    def capture(activation, hook):
        captured["values"] = activation[:, :, neuron]  # [b, p, m] -> [b, p]
        raise _Captured

    lengths = {len(row) for row in rows}
    tokens, mask = pad_rows([list(row) for row in rows], 0, "right", model.backend)
    try:
        model.run_with_hooks(tokens, fwd_hooks=[FunctionHook(f"blocks.{layer}.mlp.hook_post", capture)],
                             attention_mask=mask if len(lengths) > 1 else None)
    except _Captured:
        pass
    return captured["values"].tolist()


def _check_neuron(model, layer, neuron):
    n_layers, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    layer = as_layer(layer, n_layers)
    try:
        neuron = as_index(neuron, "neuron", d_mlp)
    except InvalidIndexError as error:
        raise InvalidIndexError(f"{error} (layer {layer}'s MLP has {d_mlp} neurons)") from None
    return layer, neuron


def _text_ids(model, text, index):
    if isinstance(text, str):
        ids = model.to_tokens(text)[0].tolist()
    elif isinstance(text, (list, tuple)) and all(isinstance(i, int) and not isinstance(i, bool)
                                                   for i in text):
        ids = list(text)
    else:
        raise TypeError(f"texts[{index}] is a {type(text).__name__}; expected a string or a list of "
                        "token ids")
    if not ids:
        raise ValueError(f"texts[{index}] has no tokens")
    return ids[:model.cfg.n_ctx]




# -- every neuron of a layer over a dataset ------------------------------------------------
EXAMPLES_PER_CHUNK = 64  # dataset examples per streaming step of NeuronAnalyzer


class NeuronAnalyzer:
    """The MLP neurons of one layer (``blocks.{layer}.mlp.hook_post``) over a dataset.

    ``find_top_activating_tokens(neuron, dataset)`` follows one neuron;
    ``top_tokens_all(dataset)`` does every neuron of the layer in one streaming pass whose
    memory is bounded by ``d_mlp * count`` results (plus one chunk of activations), never by
    the dataset's size; ``logit_effect(neuron)`` is the neuron's direct effect on the logits.
    ``dataset``: a ``neuroscope.Dataset`` or a list of texts.
    """

    def __init__(self, model, layer):
        self.model = model
        self.layer = as_layer(layer, model.cfg.n_layers)
        self.d_mlp = model.cfg.d_mlp
        self.hook_name = f"blocks.{self.layer}.mlp.hook_post"

    def __repr__(self):
        return f"NeuronAnalyzer(layer {self.layer}, {self.d_mlp} neurons)"

    def _chunks(self, dataset, progress, label):
        """``(activations [n_tokens, d_mlp], [(text_index, position)])`` per chunk of examples."""
        report = progress_reporter(progress, label)
        total = len(dataset)
        report(0, total)
        for start in range(0, total, EXAMPLES_PER_CHUNK):
            chunk = dataset[start:start + EXAMPLES_PER_CHUNK]
            acts, index = self.model.activations_at("mlp_post", self.layer, chunk, position="all",
                                                    cache=False, progress=False)
            yield acts, [(start + example, position) for example, position in index.tolist()]
            report(min(total, start + EXAMPLES_PER_CHUNK), total)

    def find_top_activating_tokens(self, neuron, dataset, count=100, context=8, exclude_bos=True,
                                   progress=None):
        """The ``count`` tokens of ``dataset`` where ``neuron`` fires most, largest first:
        ``{"activation", "token", "token_id", "text_index", "position", "context", "left", "right"}``
        (``context``: the text of up to ``context`` tokens either side, the token in ⟦ ⟧)."""
        _, neuron = _check_neuron(self.model, self.layer, neuron)
        _check_counts(count=count, context=context)
        dataset, best = as_dataset(dataset), []
        for acts, index in self._chunks(dataset, progress, f"neuron L{self.layer}N{neuron}"):
            values = acts[:, neuron].tolist()
            candidates = [(value, -text, -position) for value, (text, position) in zip(values, index)
                          if not (exclude_bos and position == 0 and self.model.prepends_bos())]
            best = heapq.nlargest(count, best + candidates)
        return self._describe([(v, -t, -p) for v, t, p in best], dataset, context)

    def profile(self, neuron, dataset, count=20, context=8, bins=30, exclude_bos=True, progress=None):
        """One neuron over ``dataset`` in one pass: ``{"examples"`` (its top ``count`` tokens, as
        ``find_top_activating_tokens``), ``"edges", "counts"`` (a histogram of its activation
        over every token, ``bins`` equal bins from its minimum to its maximum), ``"n_tokens",
        "max", "min", "mean", "fraction_active"`` (share of tokens above 0)``}``."""
        _, neuron = _check_neuron(self.model, self.layer, neuron)
        _check_counts(count=count, context=context, bins=bins)
        dataset = as_dataset(dataset)
        best, values = self.profile_scan(neuron, dataset, count, exclude_bos, progress=progress)
        return self.profile_summary(best, values, dataset, context, bins)

    def profile_scan(self, neuron, dataset, count=20, exclude_bos=True, start=0, progress=None):
        """``profile``'s pass over ``dataset`` (examples numbered from ``start``): ``(best,
        values)``, the top ``count`` as ``(value, -text, -position)`` and every token's value in
        dataset order. Shards' scans, concatenated in order, give the whole dataset's."""
        _, neuron = _check_neuron(self.model, self.layer, neuron)
        _check_counts(count=count)
        best, values = [], []
        for acts, index in self._chunks(as_dataset(dataset), progress, f"neuron L{self.layer}N{neuron}"):
            column = acts[:, neuron].tolist()  # one float per token: the histogram's data
            kept = [(value, -(start + text), -position) for value, (text, position) in zip(column, index)
                    if not (exclude_bos and position == 0 and self.model.prepends_bos())]
            values += [value for value, _, _ in kept]
            best = heapq.nlargest(count, best + kept)
        return best, values

    def profile_summary(self, best, values, dataset, context=8, bins=30):
        """``profile``'s result from a scan's ``best`` and ``values`` over ``dataset``."""
        _check_counts(context=context, bins=bins)
        if not values:
            raise ValueError("the dataset has no tokens to analyse")
        low, high = min(values), max(values)
        width = (high - low) / bins if high > low else 1.0
        counts = [0] * bins
        for value in values:
            counts[min(bins - 1, int((value - low) / width))] += 1
        return {"examples": self._describe([(v, -t, -p) for v, t, p in best], as_dataset(dataset), context),
                "edges": [low + width * i for i in range(bins + 1)], "counts": counts,
                "n_tokens": len(values),
                "max": high, "min": low, "mean": sum(values) / len(values),
                "fraction_active": sum(1 for value in values if value > 0) / len(values)}

    def top_tokens_all(self, dataset, count=20, context=8, bins=40, dead_threshold=0.0, exclude_bos=True,
                       progress=None):
        """Every neuron of the layer in one pass: a ``NeuronSummary`` with each neuron's top
        ``count`` tokens, its activation histogram, max/min/mean, and which neurons are dead
        (never above ``dead_threshold``). The histogram's edges span the first chunk of
        examples' range; values outside it land in the end bins."""
        _check_counts(count=count, context=context, bins=bins)
        dataset = as_dataset(dataset)
        scan = self.scan(dataset, count=count, bins=bins, exclude_bos=exclude_bos, progress=progress)
        return self.summary(scan, dataset, context, dead_threshold)

    def scan(self, dataset, count=20, bins=40, exclude_bos=True, edges=None, start=0, progress=None):
        """``top_tokens_all``'s pass over ``dataset`` as a mergeable ``NeuronScan``: its
        examples are numbered from ``start`` (a shard of a bigger dataset); ``edges`` fixes
        the histogram's edges (else they come from the first chunk). Shards scanned with the
        same edges and merged in order give exactly the whole dataset's scan."""
        _check_counts(count=count, bins=bins)
        scan = NeuronScan(self.d_mlp, count, bins, edges)
        for acts, index in self._chunks(as_dataset(dataset), progress, f"neurons of layer {self.layer}"):
            if exclude_bos:
                keep = [row for row, (_, position) in enumerate(index)
                        if not (position == 0 and self.model.prepends_bos())]
                if not keep:
                    continue
                if len(keep) < len(index):
                    acts, index = acts.take(keep), [index[row] for row in keep]
            scan.add(acts, [(start + text, position) for text, position in index])
        return scan

    def summary(self, scan, dataset, context=8, dead_threshold=0.0):
        """The ``NeuronSummary`` of a finished scan of ``dataset``."""
        _check_counts(context=context)
        if scan.n_tokens == 0:
            raise ValueError("the dataset has no tokens to analyse")
        dataset, decoded = as_dataset(dataset), {}
        top = [self._describe([(v, -t, -p) for v, t, p in entries], dataset, context, decoded)
               for entries in scan.tops]
        means = [total / scan.n_tokens for total in scan.sums]
        return NeuronSummary(self.layer, top, scan.maxima, scan.minima, means, scan.edges, scan.counts,
                             scan.n_tokens, dead_threshold, self)

    def logit_effect(self, neuron, k=10):
        """The neuron's direct effect on the logits (``W_out[neuron] @ W_U``, no layer norm):
        ``{"top": [(token, value)], "bottom": [(token, value)]}``, ``k`` each."""
        _, neuron = _check_neuron(self.model, self.layer, neuron)
        row = self.model.weights[f"blocks.{self.layer}.mlp.W_out"][neuron:neuron + 1]  # [1, d_model]
        effect = (row @ self.model.W_U)[0]  # [v]
        k = min(k, effect.shape[0])
        decode = decoder(self.model)
        high, high_ids = effect.topk(k)
        low, low_ids = (-effect).topk(k)
        return {"top": [(decode(i), v) for i, v in zip(high_ids.tolist(), high.tolist())],
                "bottom": [(decode(i), -v) for i, v in zip(low_ids.tolist(), low.tolist())]}

    def _describe(self, entries, dataset, context, decoded=None):
        decoded = {} if decoded is None else decoded
        decode = decoder(self.model)
        examples = []
        for value, text, position in entries:
            if text not in decoded:
                decoded[text] = self.model.token_ids(dataset[text]["text"])
            row = decoded[text]
            left = [decode(i) for i in row[max(0, position - context):position]]
            right = [decode(i) for i in row[position + 1:position + 1 + context]]
            token = decode(row[position])
            examples.append({"activation": value, "token": token, "token_id": row[position],
                             "text_index": text, "position": position, "left": left, "right": right,
                             "context": "".join(left) + f"⟦{token}⟧" + "".join(right)})
        return examples


class NeuronScan:
    """Running per-neuron statistics of ``NeuronAnalyzer.scan``: each neuron's best
    ``count`` tokens as ``(value, -text, -position)`` (ties go to the earlier token), its
    maximum, minimum and sum, and a histogram whose ``counts[0]`` is below ``edges[0]`` and
    ``counts[-1]`` at or above ``edges[-1]``. ``merge`` adds a later shard's scan."""

    def __init__(self, d_mlp, count, bins, edges=None):
        self.d_mlp, self.count, self.bins = d_mlp, count, bins
        self.tops = [[] for _ in range(d_mlp)]
        self.maxima, self.minima = [float("-inf")] * d_mlp, [float("inf")] * d_mlp
        self.sums, self.n_tokens = [0.0] * d_mlp, 0
        self.edges = None if edges is None else [float(edge) for edge in edges]
        if self.edges is not None and len(self.edges) != bins + 1:
            raise ValueError(f"{len(self.edges)} histogram edges for {bins} bins; expected {bins + 1}")
        self.counts = None if edges is None else [[0] * (bins + 2) for _ in range(d_mlp)]

    def add(self, acts, index):
        """One chunk: ``acts [n, m]`` at the tokens ``index`` (``(text, position)`` each)."""
        m, n = self.d_mlp, len(index)
        self.n_tokens += n
        k = min(self.count, n)
        values, rows = acts.topk(k, axis=0)  # [k, m]
        values, rows = values.tolist(), rows.tolist()
        for neuron in range(m):
            candidates = [(values[j][neuron], -index[rows[j][neuron]][0], -index[rows[j][neuron]][1])
                          for j in range(k)]
            self.tops[neuron] = heapq.nlargest(self.count, self.tops[neuron] + candidates)
        self.maxima = [max(a, b) for a, b in zip(self.maxima, acts.max(axis=0).tolist())]
        self.minima = [min(a, b) for a, b in zip(self.minima, acts.min(axis=0).tolist())]
        self.sums = [a + b for a, b in zip(self.sums, acts.sum(axis=0).tolist())]
        if self.edges is None:  # fixed from the first chunk; below / above go to the end bins
            low, high = min(self.minima), max(self.maxima)
            high = high + 1e-3 * (high - low) if high > low else low + 1.0  # the maximum in the last bin
            self.edges = [low + (high - low) * i / self.bins for i in range(self.bins + 1)]
            self.counts = [[0] * (self.bins + 2) for _ in range(m)]
        at_least = [(acts >= edge).astype("float32").sum(axis=0).tolist() for edge in self.edges]
        for neuron in range(m):
            above = [round(column[neuron]) for column in at_least]
            row = self.counts[neuron]
            row[0] += n - above[0]  # below the first edge
            for b in range(self.bins):
                row[b + 1] += above[b] - above[b + 1]
            row[self.bins + 1] += above[self.bins]  # at or above the last edge

    def merge(self, other):
        """This scan followed by ``other`` (a later shard with the same edges); returns self."""
        if (other.d_mlp, other.count, other.bins) != (self.d_mlp, self.count, self.bins):
            raise ValueError("merging scans of different neurons, counts or bins")
        if other.n_tokens == 0:
            return self
        if self.n_tokens == 0:
            self.__dict__.update({key: value for key, value in other.__dict__.items()})
            return self
        if other.edges != self.edges:
            raise ValueError("merging scans with different histogram edges; scan every shard with the "
                             "same edges=")
        self.tops = [heapq.nlargest(self.count, a + b) for a, b in zip(self.tops, other.tops)]
        self.maxima = [max(a, b) for a, b in zip(self.maxima, other.maxima)]
        self.minima = [min(a, b) for a, b in zip(self.minima, other.minima)]
        self.sums = [a + b for a, b in zip(self.sums, other.sums)]
        self.counts = [[a + b for a, b in zip(x, y)] for x, y in zip(self.counts, other.counts)]
        self.n_tokens += other.n_tokens
        return self


class NeuronSummary:
    """What ``NeuronAnalyzer.top_tokens_all`` found, per neuron of one layer.

    ``top[n]``: the top tokens of neuron n (as ``find_top_activating_tokens``); ``max``,
    ``min``, ``mean``: lists over neurons; ``histogram(n)``: ``(edges, counts)`` where
    ``counts[0]`` is below ``edges[0]`` and ``counts[-1]`` at or above ``edges[-1]``;
    ``dead``: neurons whose maximum is at most the threshold; ``dead_fraction``.
    """

    def __init__(self, layer, top, maxima, minima, means, edges, counts, n_tokens, dead_threshold, analyzer):
        self.layer, self.top, self.max, self.min, self.mean = layer, top, maxima, minima, means
        self.edges, self.counts, self.n_tokens = edges, counts, n_tokens
        self.dead_threshold = dead_threshold
        self.dead = [n for n, value in enumerate(maxima) if value <= dead_threshold]
        self.dead_fraction = len(self.dead) / len(maxima)
        self._analyzer = analyzer

    def histogram(self, neuron):
        return list(self.edges), list(self.counts[neuron])

    def logit_effect(self, neuron, k=10):
        return self._analyzer.logit_effect(neuron, k)

    def to_dict(self):
        return {"layer": self.layer, "n_tokens": self.n_tokens, "top": self.top, "max": self.max,
                "min": self.min, "mean": self.mean, "edges": self.edges, "counts": self.counts,
                "dead": self.dead, "dead_fraction": self.dead_fraction, "dead_threshold": self.dead_threshold}

    def _repr_html_(self):
        from ..display_hooks import html_of  # display imports this module: see display_hooks

        return html_of(self)

    def inspect(self):
        """Fields, shapes and views of this object (``neuroscope.inspect``)."""
        from ..display_hooks import inspect

        return inspect(self)

    def __repr__(self):
        return (f"NeuronSummary(layer {self.layer}: {len(self.max)} neurons over {self.n_tokens} tokens, "
                f"{self.dead_fraction:.1%} dead)")


def _check_counts(**values):
    for name, value in values.items():
        low = 0 if name == "context" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}={value!r}; expected an integer >= {low}")


__all__ = ["NeuronAnalyzer", "NeuronScan", "NeuronSummary", "neuron_activations", "top_activating_tokens"]
