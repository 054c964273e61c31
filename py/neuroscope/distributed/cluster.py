"""Where a ``DistributedAnalysis`` runs: a Dask cluster, or the browser tab's own workers.

``ComputeCluster(address)`` connects to a running Dask scheduler; ``ComputeCluster.local()``
starts a ``distributed.LocalCluster`` of worker processes on this machine;
``ComputeCluster.with_nodes(hosts)`` deploys one over SSH (Dask's ``SSHCluster``: the
scheduler on the first host, a worker on each); ``ComputeCluster.browser()`` is the pool of
Pyodide workers of the Lens's page. Dask (``pip install neuroscope[dist]``) is imported only
here, when a cluster is made. References: Rocklin, "Dask: Parallel Computation with Blocked
algorithms and Task Scheduling" (SciPy 2015); the ``distributed`` documentation.
"""

import logging
import os

from .errors import ClusterConnectionError, ClusterError

DEFAULT_TIMEOUT = 10.0  # seconds to reach a scheduler


def _distributed():
    try:
        import distributed
    except ImportError as error:
        raise ClusterError(f"a Dask cluster needs the distributed package ({error}); install it with "
                           "`pip install neuroscope[dist]`, or run with cluster=None (in this process)"
                           ) from None
    return distributed


class ComputeCluster:
    """A Dask cluster for ``DistributedAnalysis``: ``.client`` is its ``distributed.Client``.

    ``ComputeCluster("tcp://host:8786", timeout=10)`` connects to a running scheduler and
    raises ``ClusterConnectionError`` naming the address when none answers in ``timeout``
    seconds. Use it as a context manager, or call ``close()`` (which also stops a cluster that
    ``local``/``with_nodes`` started)."""

    kind = "dask"

    def __init__(self, address, timeout=DEFAULT_TIMEOUT, *, _deployment=None):
        distributed = _distributed()
        self.address, self.timeout, self._deployment = address, timeout, _deployment
        try:
            self.client = distributed.Client(address, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as error:
            if _deployment is not None:
                _deployment.close()
            raise ClusterConnectionError(f"no Dask scheduler answered at {address!r} within {timeout} s "
                                         f"({type(error).__name__}: {error}); is `dask scheduler` running "
                                         "there and reachable from this machine?") from None

    @classmethod
    def local(cls, n_workers=None, threads_per_worker=1, timeout=60.0, **options):
        """A ``distributed.LocalCluster`` of ``n_workers`` processes (default: one per core),
        each with ``threads_per_worker`` threads; other options go to ``LocalCluster``."""
        distributed = _distributed()
        n_workers = n_workers or os.cpu_count() or 1
        options.setdefault("dashboard_address", ":0")  # a free port: never collide with another cluster
        options.setdefault("silence_logs", logging.ERROR)
        import dask

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536: glibc then hands freed memory
        # back at once and faults it in again for the next activation, which made an attention
        # analysis 25% slower per worker here (bench/distributed_analysis.py); workers keep
        # glibc's own, adaptive threshold instead (one per worker, BLAS threads stay at 1).
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            deployment = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                                  processes=True, **options)
        return cls(deployment.scheduler_address, timeout, _deployment=deployment)

    @classmethod
    def with_nodes(cls, hosts, scheduler=None, timeout=60.0, **options):
        """A cluster over SSH on ``hosts`` (names or addresses; passwordless SSH and this
        package installed on each): the scheduler runs on ``scheduler`` (default: the first
        host) and a worker on every host. Options go to ``distributed.deploy.ssh.SSHCluster``
        (``connect_options``, ``worker_options``, ``remote_python``...); it needs ``asyncssh``."""
        hosts = [hosts] if isinstance(hosts, str) else list(hosts)
        if not hosts or not all(isinstance(host, str) and host for host in hosts):
            raise ClusterError(f"hosts={hosts!r}; expected a list of host names")
        _distributed()
        from distributed.deploy.ssh import SSHCluster

        deployment = SSHCluster([scheduler or hosts[0], *hosts], **options)
        return cls(deployment.scheduler_address, timeout, _deployment=deployment)

    @classmethod
    def browser(cls, n_workers=None):
        """The Lens's pool of Pyodide workers (``navigator.hardwareConcurrency`` of them by
        default); only inside the Lens's worker."""
        from .browser import BrowserPool  # the browser's half imports Pyodide's modules when used

        return BrowserPool(n_workers)

    @property
    def n_workers(self):
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def close(self):
        self.client.close()
        if self._deployment is not None:
            self._deployment.close()
            self._deployment = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"ComputeCluster({self.address!r})"


__all__ = ["ClusterConnectionError", "ClusterError", "ComputeCluster"]
