"""Where the independent pieces of a workflow step run: serially, on local processes, or on Dask.

Used by ``wannmag run`` (:mod:`wannmag.workflows.run`: the DFT configurations, the wannier branches, the spin–orbit
calculations, the Monte Carlo sizes), the vacancy study (:mod:`wannmag.workflows.vacancy`) and the parameter sweep
(:mod:`wannmag.workflows.sweep`).  Three places a task can run:

* in this process, one after the other (the default: ``dask`` unset and ``workers`` = 1);
* on ``workers`` > 1 local processes (``--workers N``), a spawned :class:`~concurrent.futures.ProcessPoolExecutor`;
* on Dask (``--dask local`` or ``--dask <scheduler address>``): a :class:`dask.distributed.LocalCluster` of two
  single-threaded worker processes on this machine, or the scheduler at that address.

Every task is deterministic and independent (its own inputs and seeds), so the results are the same wherever it runs.
Dask (an optional dependency) is imported only when a client is asked for, the process pool only when used.
"""

from __future__ import annotations

__all__ = ["_client", "_map"]


def _client(dask):
    """A ``dask.distributed.Client`` for ``dask`` — "local" (a ``LocalCluster`` of 2 worker processes with one thread
    each) or a scheduler address (e.g. "tcp://host:8786") — or None when ``dask`` is empty (no Dask: the tasks run in
    this process or on local worker processes, :func:`_map`).  The caller closes the client."""
    if not dask:
        return None
    from dask.distributed import Client, LocalCluster  # local: optional dependency (extra "dask"), only with --dask

    if dask == "local":
        return Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=True))
    return Client(dask)


def _map(client, fn, items, workers: int = 1):
    """``[fn(x) for x in items]`` on Dask (``client``, from :func:`_client`), on ``workers`` local processes (a
    spawned process pool of min(workers, len(items)) processes; ``fn`` must then be a module-level function), or
    serially in this process; the results are the same in every case and in the order of ``items`` (each task is
    deterministic and independent)."""
    if client is not None:
        return client.gather(client.map(fn, items, pure=False))
    if workers > 1 and len(items) > 1:
        # local: the process pool (multiprocessing, concurrent.futures.process) adds ~9 ms to every
        # ``import wannmag.workflows.run`` and is needed only with --workers
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=mp.get_context("spawn")) as ex:
            return list(ex.map(fn, items))
    return [fn(x) for x in items]
