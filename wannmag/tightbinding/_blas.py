"""Run batched small dense eigensolvers with a single BLAS thread.

numpy's batched ``eigh``/``eigvalsh`` call LAPACK once per (small) matrix; with a multi-threaded OpenBLAS every call
spawns/synchronises threads, which costs more than the work for nw ≲ 200 and degrades badly when the CPU cores are
shared with other processes.  :func:`single_threaded_blas` sets numpy's bundled OpenBLAS to one thread for the
duration of a block (and restores the previous value); it is a no-op if that library cannot be found.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import threading

import numpy as np

_lock = threading.Lock()
_funcs: tuple | None = None


def _openblas():
    global _funcs
    if _funcs is not None:
        return _funcs
    _funcs = ()
    try:
        base = os.path.dirname(os.path.dirname(np.__file__))
        for path in glob.glob(os.path.join(base, "numpy.libs", "*openblas*")) + \
                glob.glob(os.path.join(os.path.dirname(np.__file__), ".libs", "*openblas*")):
            lib = ctypes.CDLL(path)
            for s, g in (("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                         ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                         ("openblas_set_num_threads", "openblas_get_num_threads")):
                if hasattr(lib, s) and hasattr(lib, g):
                    _funcs = (getattr(lib, s), getattr(lib, g))
                    return _funcs
    except OSError:  # pragma: no cover
        pass
    return _funcs


@contextlib.contextmanager
def single_threaded_blas():
    funcs = _openblas()
    if not funcs:
        yield
        return
    setter, getter = funcs
    with _lock:
        n = int(getter())
        setter(1)
    try:
        yield
    finally:
        with _lock:
            setter(n)
