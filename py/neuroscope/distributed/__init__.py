"""Analyses over datasets bigger than one process: Dask clusters and the browser's workers.

``ComputeCluster`` says where (a Dask scheduler's address, ``ComputeCluster.local()``,
``ComputeCluster.with_nodes(hosts)``, ``ComputeCluster.browser()``), ``DistributedAnalysis``
what: ``DistributedAnalysis(model, cluster, "attention_pattern_analysis", dataset).run()``.
See ``analysis.py`` for how shards, the model reference and the combination work.
"""

from .analysis import DistributedAnalysis, ModelReferenceError, default_shard_size, model_reference
from .cluster import ComputeCluster
from .errors import ClusterConnectionError, ClusterError
from .results import DatasetAttentionScores, PatchingAverage
from .tasks import TASKS, DistributedTaskError

__all__ = ["TASKS", "ClusterConnectionError", "ClusterError", "ComputeCluster", "DatasetAttentionScores",
           "DistributedAnalysis", "DistributedTaskError", "ModelReferenceError", "PatchingAverage",
           "default_shard_size", "model_reference"]
