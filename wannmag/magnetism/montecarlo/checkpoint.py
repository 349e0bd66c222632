"""Atomic checkpoints of a parallel-tempering run: one ``.npz`` with every array of the state (spins, RNG states,
accumulated bins, sweep counter, cone widths, ladder, walker maps, counters) and a signature of the run it belongs
to.  Written to a temporary file in the same directory, flushed and fsync'ed, then moved into place with
``os.replace`` — a run killed at any moment leaves either the previous or the new checkpoint, never a torn one.

A checkpoint is user data like any input file: :func:`check_state` validates every field of a loaded state (present,
shape, type, finite, spin lengths, sweep counter, permutations, energies of the stored spins) before a run resumes
from it, so that a damaged or hand-made file is refused with one line naming it instead of ending in a traceback or
a NaN result.  Energies in meV (H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, J > 0 antiferromagnetic).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from ..._atomic import atomic_write_bytes
from .errors import MonteCarloError

__all__ = ["save_checkpoint", "load_checkpoint", "check_state"]


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
    if not path.is_file():
        raise MonteCarloError(f"{path}: not a Monte Carlo checkpoint file (a directory?)")
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an .npz archive")
            return {k: data[k].copy() for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise MonteCarloError(f"{path}: unreadable Monte Carlo checkpoint ({type(exc).__name__}: {exc})") from None


def check_state(path, state: dict, reference: dict, total_sweeps: int, n_therm: int, measure_every: int,
                slen: np.ndarray, energy_of) -> None:
    """Validate a loaded checkpoint ``state`` against ``reference`` (the fresh state of the same run: same keys,
    shapes and kinds of arrays).  ``total_sweeps`` = thermalisation + measurement sweeps, ``slen`` the spin
    lengths, ``energy_of(spins)`` the energy (meV) of one configuration.  Raises :class:`MonteCarloError` with one
    line naming ``path`` and the first problem found."""

    def bad(msg):
        raise MonteCarloError(f"{path}: corrupt Monte Carlo checkpoint: {msg}; remove it to start afresh")

    missing = sorted(set(reference) - set(state))
    if missing:
        bad("missing field(s) " + ", ".join(repr(k) for k in missing))
    extra = sorted(set(state) - set(reference))
    if extra:
        bad("unknown field(s) " + ", ".join(repr(k) for k in extra[:5]))
    for k, ref in reference.items():
        a, r = np.asarray(state[k]), np.asarray(ref)
        if a.shape != r.shape:
            bad(f"field {k!r} has shape {a.shape}, expected {r.shape}")
        if a.dtype.kind != r.dtype.kind:
            bad(f"field {k!r} has type {a.dtype}, expected {r.dtype}")
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            bad(f"field {k!r} holds NaN or inf")
    sweep = int(state["sweep"])
    if not 0 <= sweep <= total_sweeps:
        bad(f"sweep counter {sweep} outside 0..{total_sweeps}")
    if int(state["bin_size"]) != int(reference["bin_size"]):
        bad(f"bin size {int(state['bin_size'])}, expected {int(reference['bin_size'])}")
    nT = len(reference["betas"])
    temp_of, walker_at = np.asarray(state["temp_of"]), np.asarray(state["walker_at"])
    if (sorted(temp_of.tolist()) != list(range(nT)) or sorted(walker_at.tolist()) != list(range(nT))
            or np.any(walker_at[temp_of] != np.arange(nT))):
        bad("walker/temperature maps are not inverse permutations")
    if np.any(state["betas"] <= 0):
        bad("non-positive inverse temperature")
    if np.any(np.abs(state["cos_max"]) > 1.0):
        bad("cone width outside [-1, 1]")
    for k in ("counters", "acc_win", "att_win", "sw_acc_win", "sw_att_win", "sw_acc", "sw_att"):
        if np.any(np.asarray(state[k]) < 0):
            bad(f"negative counter in {k!r}")
    if np.any(state["sw_acc"] > state["sw_att"]) or np.any(state["acc_win"] > state["att_win"]):
        bad("more accepted than attempted moves")
    if np.any(np.all(np.asarray(state["rng"]) == 0, axis=1)) or not np.any(state["rng_swap"]):
        bad("all-zero random-number state")
    n_bins, bin_size = reference["bins"].shape[1], int(reference["bin_size"])
    n_meas = 0 if sweep <= n_therm else min(-(-(sweep - n_therm) // measure_every), n_bins * bin_size)
    if int(np.sum(state["counters"])) != n_meas * nT:
        bad(f"{int(np.sum(state['counters']))} measurements recorded, {n_meas * nT} expected after sweep {sweep}")
    spins = np.asarray(state["spins"], float)
    norms = np.linalg.norm(spins, axis=2)
    if not np.allclose(norms, np.asarray(slen)[None, :], rtol=1e-6, atol=0.0):
        bad("spin lengths differ from the model's S")
    e = np.array([energy_of(np.ascontiguousarray(s)) for s in spins])
    tol = 1e-6 * max(1.0, float(np.abs(e).max()), float(len(slen)))
    if np.any(np.abs(np.asarray(state["energies"]) - e) > tol):
        bad("stored energies do not match the stored spins")
