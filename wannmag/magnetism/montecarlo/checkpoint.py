"""Atomic checkpoints of a parallel-tempering run: one ``.npz`` with every array of the state (spins, RNG states,
accumulated bins, sweep counter, cone widths, ladder, walker maps, counters) and a signature of the run it belongs
to.  Written to a temporary file in the same directory, flushed and fsync'ed, then moved into place with
``os.replace`` — a run killed at any moment leaves either the previous or the new checkpoint, never a torn one."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from .errors import MonteCarloError

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path, state: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in state.items()})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def load_checkpoint(path) -> dict | None:
    """The state stored at ``path`` (None if there is no checkpoint)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k].copy() for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MonteCarloError(f"{path}: unreadable Monte Carlo checkpoint ({type(exc).__name__}: {exc})") from None
