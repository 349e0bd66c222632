"""D-optimal choice of collinear spin configurations for an energy-mapping fit.

An energy-mapping fit E_c = Σ_u A_cu x_u (x = E_0 and the exchange constants, meV; A_cu the bond sums
Σ S_i S_j σ_i σ_j of configuration c) is best determined by the configurations that maximise det AᵀA.  The exact
optimum is a combinatorial search; the greedy rule used here adds, one at a time, the candidate row that maximises
log det of the (column-normalised, slightly regularised) information matrix, never repeating a design row while an
unused one still helps.  Shared by the equal-spin vacancy fit (:func:`wannmag.workflows.vacancy.choose_patterns`) and
the fit with holes (:func:`wannmag.magnetism.vacancy_holes.choose_hole_patterns`).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["collinear_candidates", "greedy_d_optimal"]


def collinear_candidates(n_sites: int, max_enumerate: int = 16, seed: int = 0) -> list[np.ndarray]:
    """Up/down patterns (±1 per site) of ``n_sites`` spins with site 0 up (a global flip is the same collinear
    configuration): all 2^(n−1) of them when n − 1 ≤ ``max_enumerate``, else 2^max_enumerate random ones
    (seeded)."""
    n = int(n_sites)
    if n - 1 <= max_enumerate:
        return [np.array((1,) + t) for t in itertools.product((1, -1), repeat=n - 1)]
    g = np.random.default_rng(seed)
    return [np.concatenate([[1], g.choice([1, -1], size=n - 1)]) for _ in range(2 ** max_enumerate)]


def greedy_d_optimal(rows, n_select: int, start=()) -> list[int]:
    """Indices of ``n_select`` rows of the candidate design matrix ``rows`` (one row per candidate configuration),
    beginning with the indices in ``start`` and then chosen greedily to maximise log det RᵀR + 10⁻⁶ (R: rows with
    every column scaled by its largest magnitude).  A row equal to one already chosen is taken only when no other
    candidate raises the determinant (it adds no information, only a repeat)."""
    rows = np.atleast_2d(np.asarray(rows, float))
    n_unk = rows.shape[1]
    chosen = [int(k) for k in start]
    scale = np.maximum(np.abs(rows).max(axis=0), 1e-12)
    R = rows / scale
    seen_rows = {tuple(np.round(rows[k], 9)) for k in chosen}
    while len(chosen) < min(int(n_select), len(rows)):
        best, best_val = None, -np.inf
        base = R[chosen].T @ R[chosen] if chosen else np.zeros((n_unk, n_unk))
        for k in range(len(rows)):
            if k in chosen:
                continue
            dup = tuple(np.round(rows[k], 9)) in seen_rows
            M = base + np.outer(R[k], R[k]) + 1e-6 * np.eye(n_unk)
            val = np.linalg.slogdet(M)[1] - (1e3 if dup else 0.0)  # repeat a design row only if nothing else helps
            if val > best_val + 1e-9:
                best, best_val = k, val
        chosen.append(best)
        seen_rows.add(tuple(np.round(rows[best], 9)))
    return chosen
