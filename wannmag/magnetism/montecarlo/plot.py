"""Plots of Monte Carlo results (matplotlib, Agg backend): order parameter, susceptibility, specific heat and Binder
cumulant against temperature (K) for every lattice size, and T(x) of a dilution scan.  Energies follow the internal
wannmag convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i (J > 0 antiferromagnetic, meV)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._atomic import atomic_savefig

__all__ = ["plot_tc", "plot_dilution"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(curves: dict, path, tc=None, tc_error=None, title: str = "") -> Path:
    """2×3 panels of |M| and Q (order parameter, units of S), χ (1/meV), E (meV/site), C (k_B per site) and U4
    vs T (K); ``curves`` =
    {label: {"T": ..., name: (values, errors)}}."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharex=True)
    panels = [("M", "magnetisation |M| (S)"), ("Q", "order parameter |Q| (S)"), ("chi", "χ of Q (1/meV)"),
              ("energy", "E (meV per site)"), ("C", "C (k_B per site)"), ("U4", "Binder cumulant U4 of Q")]
    for ax, (q, lab) in zip(axes.ravel(), panels):
        for name, c in curves.items():
            v, e = c[q]
            ax.errorbar(c["T"], v, yerr=np.nan_to_num(e), marker="o", ms=3, lw=1, capsize=2, label=f"L = {name}")
        if tc is not None:
            ax.axvline(tc, color="k", ls="--", lw=0.8)
            if tc_error:
                ax.axvspan(tc - tc_error, tc + tc_error, color="k", alpha=0.08)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("T (K)")
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    try:
        atomic_savefig(fig, path, dpi=110)  # never a truncated figure (temp file + os.replace)
    finally:
        plt.close(fig)
    return path


def plot_tc(tcr, path) -> Path:
    """Curves of every size of a :class:`~.tc.TcResult`, with the Tc marked only if it is a Binder crossing
    bracketed inside the window (else the title says "not bracketed" and where the crossing lies)."""
    from .tc import _label, curves_of

    curves = {_label(r.size): curves_of(r) for r in tcr.runs}
    title = tcr.headline("Tc")
    if tcr.mermin_wagner:
        title += "  [Mermin–Wagner: true Tc = 0, finite-size crossover]"
    import textwrap

    title = "\n".join(textwrap.wrap(title, 120))
    return plot_curves(curves, path, tcr.tc if tcr.bracketed else None, tcr.tc_error if tcr.bracketed else None,
                       title)


def plot_dilution(dres, path) -> Path:
    """T(x) (K) against the vacancy fraction x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    x = np.array(dres.fractions)
    t = np.array([np.nan if v is None else v for v in dres.tc], float)
    e = np.array([0.0 if v is None else v for v in dres.tc_error], float)
    ax.errorbar(x, t, yerr=e, marker="o", capsize=3)
    ax.set_xlabel("vacancy fraction x")
    ax.set_ylabel("T (K)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    try:
        atomic_savefig(fig, path, dpi=110)  # never a truncated figure (temp file + os.replace)
    finally:
        plt.close(fig)
    return path
