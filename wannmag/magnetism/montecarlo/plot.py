"""Plots of Monte Carlo results (matplotlib, Agg backend): order parameter, susceptibility, specific heat and Binder
cumulant against temperature (K) for every lattice size, and T(x) of a dilution scan.  Energies follow the internal
wannmag convention H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i (J > 0 antiferromagnetic, meV)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..._plotting import save_figure
from .tc import _label, curves_of

__all__ = ["plot_tc", "plot_dilution"]


def _plt():
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _tc_title(title: str, tc, tc_error) -> str:
    """``title`` with the ordering temperature stated: 'Tc = 69.6 ± 0.7 K' for a marked (bracketed) crossing, else
    'Tc not bracketed' — unless the title already says it (a TcResult headline)."""
    if tc is not None:
        if f"{tc:.1f}" in title or f"{tc:.2f}" in title:
            return title
        return f"{title}: Tc = {tc:.1f} ± {(tc_error or 0.0):.1f} K".lstrip(": ")
    if "not bracketed" in title or "Mermin" in title:
        return title
    return f"{title}: Tc not bracketed".lstrip(": ")


def _mark_edge(axes, T_lo: float, T_hi: float, edge: str) -> None:
    """A red dash-dot line at the window edge beyond which the Binder crossing lies (``edge``: TcResult.side,
    "above tmax" or "below tmin"), an arrow pointing out of the window in every panel."""
    above = edge.startswith("above")
    t = T_hi if above else T_lo
    for k, ax in enumerate(axes):
        ax.axvline(t, color="tab:red", ls="-.", lw=1.6, gid="window-edge")
        txt = ("crossing above\nwindow edge →" if above else "← crossing below\nwindow edge")
        if k == 0:
            ax.annotate(txt, (t, 0.5), xycoords=("data", "axes fraction"), xytext=(-4 if above else 4, 0),
                        textcoords="offset points", ha="right" if above else "left", va="center", fontsize=8,
                        color="tab:red", gid="window-edge-label", bbox=dict(fc="white", ec="none", alpha=0.85, pad=1))


def plot_curves(curves: dict, path, tc=None, tc_error=None, title: str = "", edge: str | None = None,
                binder: str = "vector") -> Path:
    """2×3 panels of |M| and Q (order parameter, units of S), χ (1/meV), E (meV/site), C (k_B per site) and U4
    vs T (K); ``curves`` =
    {label: {"T": ..., name: (values, errors)}}.  The title always states the ordering temperature: ``tc`` ± ``tc_error``
    (K, drawn as a dashed line and band; pass it only for a Binder crossing bracketed inside the window) or "Tc not
    bracketed".  ``edge`` ("above tmax" / "below tmin", :attr:`TcResult.side`) marks the window edge beyond which
    an unbracketed crossing lies.  ``binder`` ("vector" or "easy-axis", :attr:`TcResult.binder`): the cumulant and
    susceptibility the Tc analysis used are the ones drawn — U4 and χ of the component q_n = Q·n along the easy axis
    for "easy-axis" (the analysis crosses those; drawing the vector U4 beside an easy-axis Tc showed no crossing)."""
    plt = _plt()
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), sharex=True)
    axis = binder == "easy-axis" and all("U4_axis" in c and "chi_axis" in c for c in curves.values())
    panels = [("M", "magnetisation |M| (S)"), ("Q", "order parameter |Q| (S)"),
              ("chi_axis", "χ of q_n = Q·n, easy axis n (1/meV)") if axis else ("chi", "χ of Q (1/meV)"),
              ("energy", "E (meV per site)"), ("C", "C (k_B per site)"),
              ("U4_axis", "Binder cumulant U4 of q_n (easy axis)") if axis else ("U4", "Binder cumulant U4 of Q")]
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
    if edge in ("above tmax", "below tmin") and tc is None:
        Ts = np.concatenate([np.asarray(c["T"], float) for c in curves.values()])
        _mark_edge(axes.ravel(), float(Ts.min()), float(Ts.max()), edge)
    fig.suptitle(_tc_title(title, tc, tc_error))
    return save_figure(fig, path, dpi=110, close=True)  # atomic: never a truncated figure


def plot_tc(tcr, path) -> Path:
    """Curves of every size of a :class:`~.tc.TcResult`, with the Tc marked only if it is a Binder crossing
    bracketed inside the window (else the title says "not bracketed" and where the crossing lies, and the window
    edge beyond which it lies is marked)."""
    curves = {_label(r.size): curves_of(r) for r in tcr.runs}
    title = tcr.headline("Tc")
    if tcr.mermin_wagner:
        title += "  [Mermin–Wagner: true Tc = 0, finite-size crossover]"

    title = "\n".join(textwrap.wrap(title, 120))
    return plot_curves(curves, path, tcr.tc if tcr.bracketed else None, tcr.tc_error if tcr.bracketed else None,
                       title, edge=None if tcr.bracketed else tcr.side, binder=tcr.binder)


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
    return save_figure(fig, path, dpi=110, close=True)  # atomic: never a truncated figure
