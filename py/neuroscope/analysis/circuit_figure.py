"""A circuit drawn as a graph: the embeddings at the bottom, one row per layer (its heads,
then its MLP), the logits at the top. Nodes of the circuit are filled, their area
proportional to their score; the model's other components are small grey rings. Edges are
drawn with widths proportional to their weights (blue where patching the edge removes
some of the effect, red where it adds; grey when unscored); a head's q, k and v inputs from
one sender are drawn as one edge whose label says which inputs it reaches."""

import math
from types import SimpleNamespace

from ..figures import Figure
from .circuit_runs import EMBED, LOGITS, readers

_MEMBER, _OTHER, _POSITIVE, _NEGATIVE, _UNSCORED = "#2b6cb0", "#c0c6cf", "#3b82f6", "#dc2626", "#9aa3ad"


class CircuitFigure:
    """``circuit.visualize()``: ``.svg()``, ``.pdf()``, ``.save(path)``, inline in Jupyter."""

    def __init__(self, circuit, width=None):
        check_drawable(circuit)
        self.circuit = circuit
        self.figure = _draw(circuit, width)

    def svg(self):
        return self.figure.svg()

    def pdf(self):
        return self.figure.pdf()

    def save(self, path):
        return self.figure.save(path)

    def _repr_svg_(self):
        return self.svg()

    def __repr__(self):
        return f"CircuitFigure({self.circuit!r})"


def check_drawable(circuit):
    """ValueError unless ``circuit`` says its model's shape (what drawing it needs)."""
    if not circuit.n_layers or not circuit.n_heads:
        raise ValueError("this circuit does not say its model's shape (n_layers, n_heads)")


def _draw(circuit, width):
    n_layers, n_heads = circuit.n_layers, circuit.n_heads
    columns = n_heads + 1
    width = float(width or max(360, 44 * columns + 110))
    left, right, row = 70.0, 20.0, 62.0
    height = row * (n_layers + 2) + 40
    step = (width - left - right) / columns
    title = f"{circuit.task}: {circuit.method}"
    figure = Figure(width, height, title=title)

    def position(node):
        if node == EMBED:
            return left + (width - left - right) / 2, height - 30
        if node == LOGITS:
            return left + (width - left - right) / 2, 30.0
        layer = node[1]
        column = node[2] if node[0] == "head" else n_heads
        return left + step * (column + 0.5), height - 30 - row * (layer + 1)

    scores = circuit.scores
    largest = max([abs(s) for s in scores.values()] + [1e-12])
    # edges first, under the nodes
    merged = {}
    shape = SimpleNamespace(n_heads=n_heads, n_kv_heads=circuit.n_kv_heads or n_heads)
    for u, d, weight in circuit.edges():
        # a key/value input shared by several heads (grouped-query attention): its first member reader
        options = readers(shape, d)
        key = (u, next((r for r in options if r in circuit.scores), options[0]))
        entry = merged.setdefault(key, {"weight": None, "inputs": []})
        if weight is not None:
            entry["weight"] = (entry["weight"] or 0.0) + weight
        if d[0] == "head":
            entry["inputs"].append(d[3])
    heaviest = max([abs(e["weight"]) for e in merged.values() if e["weight"] is not None] + [1e-12])
    for (u, r), entry in merged.items():
        (x1, y1), (x2, y2) = position(u), position(r)
        weight = entry["weight"]
        if weight is None:
            color, stroke = _UNSCORED, 0.6
        else:
            color, stroke = (_POSITIVE if weight >= 0 else _NEGATIVE), 0.5 + 4.5 * abs(weight) / heaviest
        tip = f"{_name(u)} -> {_name(r)}" + (f" ({'/'.join(entry['inputs'])})" if entry["inputs"] else "") + (
            f": {weight:.3f}" if weight is not None else "")
        figure.line(x1, y1, x2, y2, color=color, width=stroke, title=tip)
    # rows
    for layer in range(n_layers):
        y = height - 30 - row * (layer + 1)
        figure.text(8, y + 4, f"layer {layer}", size=10, color="#4a5568")
    for layer in range(n_layers):
        for column in range(columns):
            node = ("head", layer, column) if column < n_heads else ("mlp", layer)
            x, y = position(node)
            if node in scores:
                radius = 4 + 12 * math.sqrt(abs(scores[node]) / largest)
                fill = _MEMBER if scores[node] >= 0 else _NEGATIVE
                figure.circle(x, y, radius, fill=fill, stroke="#1a365d", width=0.8,
                              title=f"{_name(node)}: {scores[node]:.3f}",
                              data={"node": _name(node), "member": "1"})
                figure.text(x, y + radius + 10, _name(node), size=8, color="#1a202c", anchor="middle")
            else:
                figure.circle(x, y, 3, fill=None, stroke=_OTHER, width=1.0, title=_name(node),
                              data={"node": _name(node), "member": "0"})
    for node, label in ((EMBED, "embeddings"), (LOGITS, "logits")):
        x, y = position(node)
        figure.rect(x - 40, y - 9, 80, 18, fill="#edf2f7", stroke="#4a5568", width=0.8)
        figure.text(x, y + 4, label, size=10, color="#1a202c", anchor="middle")
    faith = f", faithfulness {circuit.faithfulness:.2f}" if circuit.faithfulness is not None else ""
    kept, total = circuit.size
    figure.text(8, 14, f"{title} ({kept} of {total} components{faith})", size=10, color="#1a202c")
    return figure


def _name(node):
    if node == EMBED:
        return "embed"
    if node == LOGITS:
        return "logits"
    return f"L{node[1]}H{node[2]}" if node[0] == "head" else f"MLP{node[1]}"
