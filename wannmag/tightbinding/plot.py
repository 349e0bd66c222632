"""Plots (matplotlib, Agg backend): band structure (optionally over DFT bands), orbital-projected DOS and the
crystal-field level diagram.  Energies in eV."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .model import CollinearTBModel

__all__ = ["plot_bands", "plot_pdos", "plot_crystal_field"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bands(model, out=None, path: str | None = None, npoints: int = 300, fermi_energy: float | None = None,
               dft: dict | None = None, character: bool = True, ax=None, emin=None, emax=None):
    """Bands of ``model`` along an ase band path (2D path for slab models), shifted by ``fermi_energy``.

    ``dft``: optional reference bands ``{"k": (nk, 3) reduced k-points, "energies": (nk, nb) eV, "label": …}`` (or a
    list of such dicts, e.g. one per spin; same zero of energy as the model): the k-points lying on the path
    (modulo reciprocal lattice vectors, e.g. those of a DFT k-mesh) are drawn as open grey circles.  ``character``: colour the model bands
    by their d weight (viridis colour bar; the down channel of a collinear model as crosses).  Returns the matplotlib figure (saved to ``out`` if given).
    """
    plt = _plt()
    base = model.up if isinstance(model, CollinearTBModel) else model
    bp = base.bandpath(path=path, npoints=npoints)
    x, X, labels = bp.get_linear_kpoint_axis()
    ef = 0.0 if fermi_energy is None else fermi_energy
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 5))
    chans = [("up", model.up), ("down", model.down)] if isinstance(model, CollinearTBModel) else [(None, model)]
    d_idx = [i for i, o in enumerate(base.orbitals) if o.l == 2]
    for s, m in chans:
        E, U = m.eigh(bp.kpts)
        ls = "-" if s != "down" else "--"
        if character and d_idx:
            w = (np.abs(U[:, d_idx, :]) ** 2).sum(axis=1)
            sc = ax.scatter(np.repeat(x, E.shape[1]), (E - ef).ravel(), c=w.ravel(), cmap="viridis", vmin=0, vmax=1,
                            s=2 if s != "down" else 1, marker="o" if s != "down" else "x", rasterized=True)
            if s != "down":
                fig.colorbar(sc, ax=ax, label="d weight", fraction=0.05, pad=0.02)
        else:
            ax.plot(x, E - ef, ls, color="k", lw=1, label=None)
    spacing = np.median(np.diff(x)) if len(x) > 1 else 1.0
    for n, ref in enumerate([dft] if isinstance(dft, dict) else list(dft or [])):
        kd = np.asarray(ref["k"], float).reshape(-1, 3)
        Ed = np.asarray(ref["energies"], float).reshape(len(kd), -1)
        # keep the DFT k-points lying on the path (modulo reciprocal lattice vectors), at their path position
        diff = kd[:, None, :] - bp.kpts[None, :, :]
        diff -= np.rint(diff)
        d = np.linalg.norm(diff @ base.reciprocal_lattice, axis=2)
        on = d.min(axis=1) < 0.6 * spacing
        xd = x[np.argmin(d[on], axis=1)]
        ax.plot(np.repeat(xd, Ed.shape[1]), (Ed[on] - ef).ravel(), "o", mfc="none", color=("0.4", "0.65")[n % 2],
                ms=3, zorder=0, label=ref.get("label", "DFT"))
    for v in X:
        ax.axvline(v, color="0.7", lw=0.5)
    ax.axhline(0.0 if fermi_energy is not None else np.nan, color="0.5", lw=0.5, ls=":")
    ax.set_xticks(X)
    ax.set_xticklabels(["Γ" if lb == "G" else lb for lb in labels])
    ax.set_xlim(x[0], x[-1])
    if emin is not None or emax is not None:
        ax.set_ylim(emin, emax)
    ax.set_ylabel("E − E_F (eV)" if fermi_energy is not None else "E (eV)")
    ax.set_title(f"{getattr(model, 'name', '')}" + (" (colour: d weight; ↓ crosses)" if character and d_idx else ""))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, bbox_inches="tight")
        plt.close(fig)
    return fig


def plot_pdos(pdos: dict, out=None, fermi_energy: float | None = None, ax=None):
    """Plot the result of :func:`~wannmag.tightbinding.electronic.projected_dos` (down channel mirrored)."""
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 4))
    e = pdos["energy"] - (fermi_energy or 0.0)
    colours = {}
    for ch, sign in (("total", 1), ("up", 1), ("down", -1)):
        if ch not in pdos:
            continue
        for g, y in pdos[ch].items():
            if g not in colours:
                colours[g] = "k" if g == "total" else f"C{len(colours)}"
            ax.plot(e, sign * y, color=colours[g], lw=1.2 if g == "total" else 1,
                    label=g if sign > 0 else None, alpha=0.5 if g == "total" else 1)
    ax.axvline(0 if fermi_energy is not None else np.nan, color="0.5", ls=":", lw=0.8)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("E − E_F (eV)" if fermi_energy is not None else "E (eV)")
    ax.set_ylabel("DOS (states/eV/cell)" + (" (↑ up, ↓ down)" if "up" in pdos else ""))
    ax.legend(fontsize=8)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, bbox_inches="tight")
        plt.close(fig)
    return fig


def plot_crystal_field(levels, out=None, ax=None):
    """Level diagram of the local-frame d levels (and ε_p) of each metal: t2g (blue), eg (red), ligand p (grey)."""
    plt = _plt()
    from .harmonics import EG, ORBITAL_NAMES, T2G

    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1.8 + 1.6 * len(levels), 4))
    for x, c in enumerate(levels):
        diag = np.diag(c.h_local)
        for m in range(5):
            col = "tab:blue" if m in T2G else "tab:red"
            ax.hlines(diag[m], x - 0.3, x + 0.3, color=col, lw=2)
            ax.text(x + 0.32, diag[m], ORBITAL_NAMES[2][m], fontsize=6, va="center")
        if c.eps_p is not None:
            ax.hlines(c.eps_p, x - 0.3, x + 0.3, color="0.5", lw=2, ls="--")
            ax.text(x + 0.32, c.eps_p, "ε_p", fontsize=6, va="center")
        ax.annotate(f"10Dq={c.ten_dq:.2f}", (x, max(diag[list(EG)]) + 0.05), ha="center", fontsize=7)
    ax.set_xticks(range(len(levels)))
    ax.set_xticklabels([f"{c.element}{c.atom}" for c in levels])
    ax.set_xlim(-0.6, len(levels) - 0.2)
    ax.set_ylabel("on-site energy (eV)")
    ax.set_title("local-frame d levels (blue t2g, red eg)", fontsize=9)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, bbox_inches="tight")
        plt.close(fig)
    return fig
