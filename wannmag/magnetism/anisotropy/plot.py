"""Plots of the anisotropy module: magnon bands (LSWT) and E(θ) of a spin–orbit scan.  Matplotlib with the Agg
backend (files only); energies in meV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._plotting import save_figure

__all__ = ["plot_magnon_bands", "plot_mae"]


def _pyplot():
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_magnon_bands(bandpath, energies, out, title: str | None = None, gap: float | None = None) -> Path:
    """Magnon bands ħω_ν(k) (meV) along an ase ``BandPath`` (as returned by ``SpinWaves.band_path``) → PNG ``out``."""
    plt = _pyplot()
    x, X, labels = bandpath.get_linear_kpoint_axis()
    E = np.asarray(energies)
    fig, ax = plt.subplots(figsize=(5.5, 4.0))
    for nu in range(E.shape[1]):
        ax.plot(x, E[:, nu], color="C0", lw=1.6)
    for xx in X:
        ax.axvline(xx, color="0.7", lw=0.8)
    ax.set_xticks(X)
    ax.set_xticklabels([r"$\Gamma$" if lab == "G" else lab for lab in labels])
    ax.set_xlim(x[0], x[-1])
    ax.set_ylim(0, 1.05 * float(E.max()) if E.size else 1)
    ax.set_ylabel(r"$\hbar\omega$ (meV)")
    if gap is not None:
        ax.text(0.02, 0.96, f"gap at Γ: {gap:.3f} meV", transform=ax.transAxes, va="top", fontsize=9)
    ax.set_title(title or "magnon bands (linear spin-wave theory)", fontsize=10)
    return save_figure(fig, out, dpi=130, close=True, user_path=True)  # atomic; bad target: one error line


def plot_mae(result, out, title: str | None = None) -> Path:
    """E(θ) − E_min (meV per magnetic ion) of an ``MAEResult`` with its uniaxial fit if possible → PNG ``out``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.6))
    ax.plot(result.theta, result.relative, "o", label="computed")
    try:
        fit = result.uniaxial_fit()
        t = np.linspace(0, 180, 181)
        s2 = np.sin(np.radians(t)) ** 2
        y = fit["K1_meV"] * s2 + fit["K2_meV"] * s2 ** 2
        ax.plot(t, y - y.min() + (result.relative.min()), "-", lw=1, label="K₁ sin²θ + K₂ sin⁴θ")
    except Exception:  # noqa: BLE001 - too few angles: points only
        pass
    ax.set_xlabel("θ (deg, from the layer normal)")
    ax.set_ylabel("E − E_min (meV/ion)")
    ax.set_title(title or result.method, fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, out, dpi=130, close=True, user_path=True)  # atomic; bad target: one error line
