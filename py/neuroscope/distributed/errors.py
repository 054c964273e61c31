"""The errors of clusters (Dask's and the browser's pool)."""

from ..errors import NeuroScopeError


class ClusterError(NeuroScopeError, RuntimeError):
    """A cluster that cannot be made, reached or used."""


class ClusterConnectionError(ClusterError, ConnectionError):
    """No scheduler answered at the address within the timeout."""


__all__ = ["ClusterConnectionError", "ClusterError"]
