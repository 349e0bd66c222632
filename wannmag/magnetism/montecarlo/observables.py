"""Observables with error bars from binned Monte Carlo time series.

Per temperature T (k_B T in meV, β = 1/k_B T), with e = E/N (meV per site; E from the Hamiltonian
H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, J > 0 antiferromagnetic), m = |M| and q = |Q| per site in
units of S:

    energy  = ⟨e⟩                               (meV per site)
    C       = N β² (⟨e²⟩ − ⟨e⟩²)                 (specific heat per site, units of k_B)
    M       = ⟨m⟩,  chi_M = N β (⟨m²⟩ − ⟨m⟩²)    (1/meV)
    Q       = ⟨q⟩,  chi   = N β (⟨q²⟩ − ⟨q⟩²)    (order-parameter susceptibility, 1/meV)
    U4      = 1 − ⟨q⁴⟩ / (3 ⟨q²⟩²)              (Binder cumulant of the order parameter)

and of the component q_n = Q·n of the order parameter along the ground-state axis n (:func:`.kernels.
order_parameters_axis`), the order parameter of an easy-axis (Ising-type) transition:

    Q_axis   = ⟨|q_n|⟩,  chi_axis = N β (⟨q_n²⟩ − ⟨|q_n|⟩²)
    U4_axis  = 1 − ⟨q_n⁴⟩ / (3 ⟨q_n²⟩²)

Limits: U4 → 2/3 in an ordered phase (any orientation) and → 4/9 for a Gaussian 3-component Q (disorder);
U4_axis → 2/3 for order along n, → 1 − (1/5)/(3·1/9) = 0.4 for a vector ordered but oriented isotropically (the
finite-size quasi-order of a nearly isotropic 2D magnet), → 0 for a Gaussian q_n.

Errors: the time series is stored as bins (averages of ``bin_size`` consecutive measurements); the error of ⟨e⟩
comes from a binning analysis (doubling the bin length until the error plateaus), which also gives the integrated
autocorrelation time τ_int = ½ (σ_binned/σ_naive)² in measurements; the errors of all quantities come from a
jackknife over ≤ 40 blocks of bins (which handles the non-linear C, χ, U4).
"""

from __future__ import annotations

import numpy as np

from .errors import MonteCarloError
from .kernels import OBS_NAMES

__all__ = ["binning_analysis", "jackknife", "derived_observables", "QUANTITIES"]

QUANTITIES = ("energy", "C", "M", "chi_M", "Q", "chi", "U4", "Q_axis", "chi_axis", "U4_axis")
_I = {n: k for k, n in enumerate(OBS_NAMES)}


def binning_analysis(x: np.ndarray, min_blocks: int = 16) -> dict:
    """Binning analysis of a series ``x``: mean, error per level (bin length 2^l), the plateau error (the largest
    error among levels with ≥ ``min_blocks`` blocks) and whether it converged (last two such levels within 20 %)."""
    x = np.asarray(x, float)
    mean = float(x.mean()) if len(x) else float("nan")
    errs = []
    y = x.copy()
    while len(y) >= min_blocks:
        errs.append(float(y.std(ddof=1) / np.sqrt(len(y))) if len(y) > 1 else float("nan"))
        n2 = len(y) // 2
        y = 0.5 * (y[0:2 * n2:2] + y[1:2 * n2:2])
    if not errs:
        err = float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
        return {"mean": mean, "error": err, "levels": [err], "converged": False}
    err = max(errs)
    converged = len(errs) >= 3 and abs(errs[-1] - errs[-2]) <= 0.2 * max(errs[-1], 1e-300)
    return {"mean": mean, "error": err, "levels": errs, "converged": bool(converged)}


def jackknife(blocks: np.ndarray, func) -> tuple[float, float]:
    """Jackknife estimate (value from all data, error) of ``func(mean over blocks)``; ``blocks`` is (n_blocks, k)."""
    nb = blocks.shape[0]
    full = func(blocks.mean(axis=0))
    if nb < 2:
        return float(full), float("nan")
    tot = blocks.sum(axis=0)
    vals = np.array([func((tot - blocks[i]) / (nb - 1)) for i in range(nb)])
    err = np.sqrt((nb - 1) / nb * np.sum((vals - vals.mean()) ** 2))
    return float(full), float(err)


def _funcs(N: int, beta: float):
    i = _I
    return {
        "energy": lambda a: a[i["e"]],
        "C": lambda a: N * beta ** 2 * (a[i["e2"]] - a[i["e"]] ** 2),
        "M": lambda a: a[i["m"]],
        "chi_M": lambda a: N * beta * (a[i["m2"]] - a[i["m"]] ** 2),
        "Q": lambda a: a[i["q"]],
        "chi": lambda a: N * beta * (a[i["q2"]] - a[i["q"]] ** 2),
        "U4": lambda a: 1.0 - a[i["q4"]] / (3.0 * a[i["q2"]] ** 2) if a[i["q2"]] > 0 else 0.0,
        "Q_axis": lambda a: a[i["qa"]],
        "chi_axis": lambda a: N * beta * (a[i["qa2"]] - a[i["qa"]] ** 2),
        "U4_axis": lambda a: 1.0 - a[i["qa4"]] / (3.0 * a[i["qa2"]] ** 2) if a[i["qa2"]] > 0 else 0.0,
    }


def derived_observables(bins: np.ndarray, bin_size: int, betas: np.ndarray, N: int, n_jack: int = 40) -> dict:
    """Observables and errors per temperature from ``bins`` (n_T × n_bins × len(OBS_NAMES) sums of
    ``bin_size`` measurements each).  Returns {name: (values, errors)} plus ``tau_int_E`` (in measurements) and
    ``binning_converged``."""
    nT, nb, nobs = bins.shape
    if nobs != len(OBS_NAMES):
        raise MonteCarloError(f"binned measurements hold {nobs} moments per bin, expected {len(OBS_NAMES)} "
                              f"({', '.join(OBS_NAMES)}): data of an earlier version")
    means = bins / bin_size
    out = {q: (np.zeros(nT), np.zeros(nT)) for q in QUANTITIES}
    tau = np.zeros(nT)
    conv = np.zeros(nT, bool)
    nj = min(nb, n_jack)
    per = nb // nj if nj else 0
    for k in range(nT):
        blocks = means[k, :nj * per].reshape(nj, per, -1).mean(axis=1) if nj else means[k]
        for q, f in _funcs(N, float(betas[k])).items():
            v, e = jackknife(blocks, f)
            out[q][0][k] = v
            out[q][1][k] = e
        ba = binning_analysis(means[k, :, _I["e"]])
        var = float(means[k, :, _I["e2"]].mean() - means[k, :, _I["e"]].mean() ** 2)
        naive = np.sqrt(max(var, 1e-300) / max(nb * bin_size, 1))
        out["energy"][1][k] = max(out["energy"][1][k], ba["error"])
        tau[k] = 0.5 * (ba["error"] / naive) ** 2 if var > 0 else 0.0
        conv[k] = ba["converged"]
    out["tau_int_E"] = tau
    out["binning_converged"] = conv
    return out
