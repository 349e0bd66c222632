"""Atomic checkpoints of a parallel-tempering run: one ``.npz`` with every array of the state (spins, RNG states,
accumulated bins, sweep counter, cone widths, ladder, walker maps, counters) and a signature of the run it belongs
to.  Written to a temporary file in the same directory, flushed and fsync'ed, then moved into place with
``os.replace`` — a run killed at any moment leaves either the previous or the new checkpoint, never a torn one."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_bytes
from .errors import MonteCarloError

__all__ = ["save_checkpoint", "load_checkpoint"]


def save_checkpoint(path, state: dict) -> Path:
    """Write ``state`` (arrays) as an .npz atomically (temp file + fsync + os.replace)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in state.items()})
    return atomic_write_bytes(path, buf.getvalue())


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
