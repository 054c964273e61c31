"""The forward passes behind circuit discovery, under one name.

Where things live: the graph (``head``, ``mlp``, ``EMBED``, ``LOGITS``, ``components``,
``all_edges``, ``readers``) in ``circuit_graph``; ``PromptPairs``, ``as_records`` and
``ExampleError`` in ``circuit_pairs``; the edge-removal forward pass (``EdgeRun``) and
``head_outputs`` in ``circuit_edges``. Callers use them from here: ``circuit_runs.X``.
"""

from .circuit_edges import EdgeRun, head_outputs
from .circuit_graph import (
    EMBED,
    LOGITS,
    all_edges,
    components,
    downstream_nodes,
    head,
    mlp,
    n_upstream_before,
    reader,
    readers,
    upstream_nodes,
)
from .circuit_pairs import TOKENS_PER_FORWARD, ExampleError, PromptPairs, as_records

__all__ = ["EMBED", "LOGITS", "TOKENS_PER_FORWARD", "EdgeRun", "ExampleError", "PromptPairs", "all_edges",
           "as_records", "components", "downstream_nodes", "head", "head_outputs", "mlp", "n_upstream_before",
           "reader", "readers", "upstream_nodes"]
