"""MDRS (Wannier90's ``use_ws_distance``): the ``_wsvec.dat`` reader, the redistribution of H(R) over the shifts,
the Wigner–Seitz supercell of an ``mp_grid`` and the folding of a model onto it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model import TBFileError, TBModel
from ._files import _int, _lines


def read_wsvec(path, R: np.ndarray, num_wann: int) -> dict[tuple[int, int, int], list[np.ndarray]]:
    """MDRS shifts of a ``_wsvec.dat`` file: {(iR, m, n) (0-based): [T1, T2, …]} for the R list ``R``."""
    path = Path(path)
    lines = _lines(path, "Wannier90 _wsvec.dat file")
    index = {tuple(r): k for k, r in enumerate(R)}
    out = {}
    i = 1 if lines[0].lstrip().startswith("#") else 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        tok = lines[i].split()
        if len(tok) != 5:
            raise TBFileError(f"{path}:{i + 1}: expected 'R1 R2 R3 m n', found {lines[i].strip()!r}")
        vals = [_int(path, i + 1, t, "R vector / orbital index") for t in tok]
        r, m, n = tuple(vals[:3]), vals[3], vals[4]
        if r not in index:
            raise TBFileError(f"{path}:{i + 1}: R vector {r} is not in the Hamiltonian file")
        if not (1 <= m <= num_wann and 1 <= n <= num_wann):
            raise TBFileError(f"{path}:{i + 1}: orbital indices ({m}, {n}) outside 1…{num_wann}; mismatched num_wann?")
        if i + 1 >= len(lines):
            raise TBFileError(f"{path}:{i + 2}: file ends before the number of shifts (truncated?)")
        nd = _int(path, i + 2, (lines[i + 1].split() or [""])[0], "number of shifts")
        if nd <= 0:
            raise TBFileError(f"{path}:{i + 2}: number of shifts must be positive, found {nd}")
        shifts = []
        for q in range(nd):
            j = i + 2 + q
            if j >= len(lines):
                raise TBFileError(f"{path}:{j + 1}: file ends inside the shifts of R = {r}, ({m}, {n}) (truncated?)")
            t = lines[j].split()
            if len(t) < 3:
                raise TBFileError(f"{path}:{j + 1}: expected a shift vector (3 integers), found {lines[j].strip()!r}")
            shifts.append(np.array([_int(path, j + 1, x, "shift") for x in t[:3]]))
        out[(index[r], m - 1, n - 1)] = shifts
        i += 2 + nd
    missing = len(R) * num_wann * num_wann - len(out)
    if missing:
        raise TBFileError(f"{path}: shifts for {len(out)} of {len(R) * num_wann ** 2} (R, m, n) entries; "
                          f"file truncated or for another model")
    return out


def apply_mdrs(R: np.ndarray, H: np.ndarray, shifts: dict) -> tuple[np.ndarray, np.ndarray]:
    """Redistribute H_mn(R) over R + T (weight 1/N_T) with the MDRS ``shifts`` of :func:`read_wsvec`."""
    rows, ms, ns, vals = [], [], [], []
    for (iR, m, n), Ts in shifts.items():
        v = H[iR, m, n] / len(Ts)
        for T in Ts:
            rows.append(R[iR] + T)
            ms.append(m)
            ns.append(n)
            vals.append(v)
    rows = np.array(rows, dtype=int)
    Rn, inv = np.unique(rows, axis=0, return_inverse=True)
    Hn = np.zeros((len(Rn),) + H.shape[1:], complex)
    np.add.at(Hn, (inv.ravel(), np.array(ms), np.array(ns)), np.array(vals))
    return Rn, Hn


def wigner_seitz(lattice, mp_grid, tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """The Wigner–Seitz supercell R vectors of an ``mp_grid`` and their degeneracies (Wannier90's algorithm)."""
    N = np.asarray(mp_grid, int)
    lattice = np.asarray(lattice, float)
    rng = [np.arange(-2 * n, 2 * n + 1) for n in N]
    cand = np.array(np.meshgrid(*rng, indexing="ij")).reshape(3, -1).T
    sup = np.array(np.meshgrid([-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], indexing="ij")).reshape(3, -1).T
    sup = sup * N
    # drop directions without k sampling (N = 1 → only R = 0 along that axis)
    keep = np.all((N > 1) | (cand == 0), axis=1)
    cand = cand[keep]
    sup = sup[np.all((N > 1) | (sup == 0), axis=1)]
    d = np.linalg.norm(((cand[:, None, :] - sup[None, :, :]) @ lattice), axis=2)
    d0 = np.linalg.norm(cand @ lattice, axis=1)
    dmin = d.min(axis=1)
    sel = d0 <= dmin + tol
    ndeg = np.sum(np.abs(d - dmin[:, None]) < tol, axis=1)
    return cand[sel], ndeg[sel]


def fold_to_grid(model: TBModel, mp_grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold a model onto the Wigner–Seitz supercell of ``mp_grid`` as Wannier90 would write it.

    Returns (R, H_file, ndegen): H_file(R) = Σ_{R' ≡ R mod N} H(R') (the un-divided value Wannier90 writes) for
    every Wigner–Seitz vector R with degeneracy ndegen(R).  Reading the result back (dividing by ndegen) reproduces
    H(k) exactly on the ``mp_grid`` k-points.
    """
    N = np.asarray(mp_grid, int)
    Rws, ndeg = wigner_seitz(model.lattice, N)
    grid = {}
    for r, h in zip(model.R, model.H):
        g = tuple(np.mod(r, N))
        grid[g] = grid.get(g, 0) + h
    zero = np.zeros((model.num_wann,) * 2, complex)
    H = np.array([grid.get(tuple(np.mod(r, N)), zero) for r in Rws])
    return Rws, H, ndeg


def mdrs_shifts(lattice, centres, R, mp_grid, tol: float = 1e-5) -> dict:
    """MDRS shifts T (multiples of the supercell vectors) minimising |R + T + τ_n − τ_m| for every (iR, m, n)."""
    N = np.asarray(mp_grid, int)
    lattice = np.asarray(lattice, float)
    sup = np.array(np.meshgrid([-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], [-2, -1, 0, 1, 2], indexing="ij")).reshape(3, -1).T
    sup = sup[np.all((N > 1) | (sup == 0), axis=1)] * N
    supc = sup @ lattice
    centres = np.asarray(centres, float)
    out = {}
    nw = len(centres)
    for iR, r in enumerate(np.asarray(R)):
        rc = r @ lattice
        d = rc[None, None, :] + centres[None, :, :] - centres[:, None, :]        # (m, n, 3)
        dist = np.linalg.norm(d[:, :, None, :] + supc[None, None, :, :], axis=3)  # (m, n, nsup)
        dmin = dist.min(axis=2)
        for m in range(nw):
            for n in range(nw):
                sel = np.nonzero(dist[m, n] < dmin[m, n] + tol)[0]
                out[(iR, m, n)] = [sup[s] for s in sel]
    return out


