"""Linear least squares with the diagnostics every mapping fit of wannmag reports: rank, the unknowns that the data
cannot determine, condition number and standard errors.  Shared by the energy mapping (E_0, J_n), the vacancy fit
(J1 next to a vacancy) and the collinear spin–orbit fit (SIA, K, Γ, Γ′, λ_k); each caller words its own error.

Rank and null space are computed on the column-normalised design (so that unknowns of different scale, e.g. E_0 in
meV per ion and J in meV per bond count, are treated alike).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["LinearFit", "linear_fit"]


@dataclass
class LinearFit:
    """x minimising |A x − y|²; ``residuals`` = A x − y; ``stderr`` from the residual variance (None without
    redundant data); ``undetermined``: labels of unknowns with a component in the null space (empty at full rank)."""

    x: np.ndarray
    residuals: np.ndarray
    rank: int
    n_unknowns: int
    condition_number: float
    stderr: np.ndarray | None
    undetermined: list

    @property
    def full_rank(self) -> bool:
        return self.rank == self.n_unknowns


def linear_fit(A, y, labels=None, rtol: float = 1e-8) -> LinearFit:
    """Least squares of ``A x ≈ y`` (never raises on rank deficiency: check ``full_rank``/``condition_number``).
    ``labels`` name the columns (for ``undetermined``); ``rtol``: singular values below rtol × the largest count as
    zero (on the column-normalised design)."""
    A = np.atleast_2d(np.asarray(A, float))
    y = np.asarray(y, float)
    n = A.shape[1]
    labels = list(labels) if labels is not None else [f"x{k}" for k in range(n)]
    scale = np.linalg.norm(A, axis=0)
    scale[scale == 0] = 1.0
    _, s, vt = np.linalg.svd(A / scale, full_matrices=True)
    rank = int(np.sum(s > rtol * s.max())) if s.size and s.max() > 0 else 0
    null = vt[rank:]
    comp = np.abs(null).max(axis=0) if len(null) else np.zeros(n)
    undetermined = [lab for lab, c in zip(labels, comp) if c > 1e-6]
    cond = float(s[0] / s[rank - 1]) if rank == n and rank > 0 else float("inf")
    x, *_ = np.linalg.lstsq(A, y, rcond=None)
    res = A @ x - y
    dof = len(y) - n
    stderr = None
    if dof > 0 and rank == n:
        s2 = float(res @ res) / dof
        stderr = np.sqrt(np.clip(np.diag(np.linalg.pinv(A.T @ A)) * s2, 0, None))
    return LinearFit(x=x, residuals=res, rank=rank, n_unknowns=n, condition_number=cond, stderr=stderr,
                     undetermined=undetermined)
