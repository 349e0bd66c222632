"""Plots (matplotlib, Agg backend): band structure (optionally over DFT bands), orbital-projected DOS and the
crystal-field level diagram.  Energies in eV."""

from __future__ import annotations

import numpy as np

from .._plotting import save_figure
from .harmonics import ORBITAL_NAMES, T2G
from .model import CollinearTBModel

__all__ = ["plot_bands", "plot_pdos", "plot_crystal_field"]


def _plt():
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


SPIN_STYLE = {None: ("k", "-", "bands"), "up": ("tab:blue", "-", "spin ↑ (Wannier)"),
              "down": ("tab:red", "--", "spin ↓ (Wannier)")}


def plot_bands(model, out=None, path: str | None = None, npoints: int = 300, fermi_energy: float | None = None,
               dft: dict | None = None, character: bool = True, ax=None, emin=None, emax=None):
    """Bands of ``model`` along an ase band path (2D path for slab models), shifted by ``fermi_energy`` (eV).

    The two channels of a collinear model are told apart by colour and line style: spin ↑ solid blue, spin ↓
    dashed red (a single-channel model: black).  ``character``: "fat bands" — dots along each band whose area is
    proportional to its d weight, in the channel's colour.  ``dft``: optional reference bands ``{"k": (nk, 3) reduced
    k-points, "energies": (nk, nb) eV, "label": …}`` (or a list of such dicts, e.g. one per spin, ↑ first; same zero
    of energy as the model): the k-points lying on the path (modulo reciprocal lattice vectors, e.g. those of a DFT
    k-mesh) are drawn as open markers, circles for the first reference and squares for the second, in the colour of
    the matching spin channel.  Every kind of line and marker has a legend entry.  Returns the matplotlib figure
    (saved to ``out`` if given).
    """
    plt = _plt()
    from matplotlib.lines import Line2D  # local: matplotlib, as in _plt

    base = model.up if isinstance(model, CollinearTBModel) else model
    bp = base.bandpath(path=path, npoints=npoints)
    x, X, labels = bp.get_linear_kpoint_axis()
    ef = 0.0 if fermi_energy is None else fermi_energy
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(7, 5.2))
    chans = [("up", model.up), ("down", model.down)] if isinstance(model, CollinearTBModel) else [(None, model)]
    d_idx = [i for i, o in enumerate(base.orbitals) if o.l == 2]
    handles = []
    fat = character and bool(d_idx)
    for s, m in chans:
        E, U = m.eigh(bp.kpts)
        col, ls, lab = SPIN_STYLE[s]
        ax.plot(x, E - ef, ls, color=col, lw=0.9, alpha=0.9, gid=f"bands-{s or 'single'}")
        handles.append(Line2D([], [], color=col, ls=ls, lw=1.2, label=lab))
        if fat:
            w = (np.abs(U[:, d_idx, :]) ** 2).sum(axis=1)
            step = max(1, len(x) // 60)  # ~60 dots per band keep the file small and the bands readable
            ax.scatter(np.repeat(x[::step], E.shape[1]), (E[::step] - ef).ravel(), s=30 * w[::step].ravel(),
                       color=col, alpha=0.3, lw=0, rasterized=True, gid=f"dweight-{s or 'single'}")
    if fat:
        handles.append(Line2D([], [], ls="none", marker="o", color="0.4", alpha=0.5, ms=np.sqrt(30),
                              label="dot area ∝ d weight (full: pure d)"))
    spacing = np.median(np.diff(x)) if len(x) > 1 else 1.0
    refs = [dft] if isinstance(dft, dict) else list(dft or [])
    for n, ref in enumerate(refs):
        kd = np.asarray(ref["k"], float).reshape(-1, 3)
        Ed = np.asarray(ref["energies"], float).reshape(len(kd), -1)
        # keep the DFT k-points lying on the path (modulo reciprocal lattice vectors), at their path position
        diff = kd[:, None, :] - bp.kpts[None, :, :]
        diff -= np.rint(diff)
        d = np.linalg.norm(diff @ base.reciprocal_lattice, axis=2)
        on = d.min(axis=1) < 0.6 * spacing
        xd = x[np.argmin(d[on], axis=1)]
        spin = ("up", "down")[n % 2] if len(chans) == 2 else None
        col = SPIN_STYLE[spin][0] if spin else ("0.3", "0.6")[n % 2]
        mk = ("o", "s")[n % 2]
        ax.plot(np.repeat(xd, Ed.shape[1]), (Ed[on] - ef).ravel(), mk, mfc="none", mec=col, mew=0.8,
                ms=3.5, zorder=0, gid=f"dft-{n}")
        handles.append(Line2D([], [], ls="none", marker=mk, mfc="none", mec=col, mew=0.8, ms=5,
                              label=ref.get("label", "DFT")))
    for v in X:
        ax.axvline(v, color="0.7", lw=0.5)
    if fermi_energy is not None:
        ax.axhline(0.0, color="0.5", lw=0.6, ls=":")
        handles.append(Line2D([], [], color="0.5", lw=0.6, ls=":", label="E_F"))
    ax.set_xticks(X)
    ax.set_xticklabels(["Γ" if lb == "G" else lb for lb in labels])
    ax.set_xlim(x[0], x[-1])
    if emin is not None or emax is not None:
        ax.set_ylim(emin, emax)
    ax.set_ylabel("E − E_F (eV)" if fermi_energy is not None else "E (eV)")
    ax.set_title(f"{getattr(model, 'name', '')} Wannier bands" + (" over DFT eigenvalues" if refs else ""))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              framealpha=0.9)
    if out is not None:
        save_figure(fig, out, dpi=150, bbox_inches="tight", tight_layout=False, close=True, atomic=False)
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
        save_figure(fig, out, dpi=150, bbox_inches="tight", tight_layout=False, close=True, atomic=False)
    return fig


def _spread(y, gap: float) -> np.ndarray:
    """Positions as close as possible (least squares) to the sorted targets ``y`` with neighbours at least ``gap``
    apart: blocks of crowded labels are centred on their targets (pool-adjacent-violators on y_k − k·gap)."""
    y = np.asarray(y, float)
    blocks: list[list] = []  # [first index, count, base] with positions base + k·gap
    for k, v in enumerate(y):
        blocks.append([k, 1, v])
        while len(blocks) > 1:
            a, b = blocks[-2], blocks[-1]
            if b[2] >= a[2] + a[1] * gap - 1e-12:
                break
            n = a[1] + b[1]
            idx = np.arange(a[0], a[0] + n)
            blocks[-2:] = [[a[0], n, float(np.mean(y[idx] - (idx - a[0]) * gap))]]
    out = np.empty_like(y)
    for first, n, base in blocks:
        out[first:first + n] = base + np.arange(n) * gap
    return out


def plot_crystal_field(levels, out=None, ax=None, degenerate_tol: float = 0.005):
    """Level diagram of the local-frame d levels (and ε_p) of each metal: t2g (blue), eg (red), ligand p (grey,
    dashed); energies in eV.  Levels within ``degenerate_tol`` eV share one label ("dxz, dyz, dxy"); labels of close
    levels are spread apart (never overprinted) and joined to their level by a thin leader line; 10Dq (eV) is
    written under each metal's name.  Every label text has gid "cf-label"."""
    plt = _plt()
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(1.4 + 2.6 * len(levels), 4.4))
    groups_of = []
    for x, c in enumerate(levels):
        diag = np.diag(c.h_local)
        items = [(float(diag[m]), ORBITAL_NAMES[2][m], "tab:blue" if m in T2G else "tab:red") for m in range(5)]
        for e, _, col in items:
            ax.hlines(e, x - 0.45, x, color=col, lw=2)
        if c.eps_p is not None:
            ax.hlines(c.eps_p, x - 0.45, x, color="0.5", lw=2, ls="--")
            items.append((float(c.eps_p), "ε_p (ligand p)", "0.35"))
        items.sort(key=lambda t: t[0])
        groups: list[list] = []
        for e, name, col in items:  # degenerate levels: one label
            if groups and e - groups[-1][0][-1] <= degenerate_tol and groups[-1][2] == col:
                groups[-1][0].append(e)
                groups[-1][1].append(name)
            else:
                groups.append([[e], [name], col])
        groups_of.append(groups)
    ax.set_xticks(np.arange(len(levels)) - 0.225)
    ax.set_xticklabels([f"{c.element}{c.atom}\n10Dq = {c.ten_dq:.2f} eV" for c in levels])
    ax.set_xlim(-0.6, len(levels) - 0.35)
    ax.margins(y=0.08)
    ax.set_ylabel("on-site energy (eV)")
    ax.set_title("local-frame d levels (blue t2g, red eg, grey dashed ligand p)", fontsize=9)
    fig.canvas.draw()  # fixes the y limits: the label spacing is computed in screen units
    to_pt = 72.0 / fig.dpi
    gap = 7.0 * 1.25  # label height (7 pt font) plus air, in points
    for x, groups in enumerate(groups_of):
        y = np.array([np.mean(g[0]) for g in groups])
        y_pt = ax.transData.transform(np.c_[np.full_like(y, x), y])[:, 1] * to_pt
        new = _spread(y_pt, gap)
        for g, yy, y0, y1 in zip(groups, y, y_pt, new):
            moved = abs(y1 - y0) > 0.5
            ax.annotate(", ".join(g[1]), (x, yy), xytext=(10, y1 - y0), textcoords="offset points",
                        fontsize=7, va="center", ha="left", color=g[2], gid="cf-label", annotation_clip=False,
                        arrowprops=dict(arrowstyle="-", lw=0.5, color="0.6", shrinkA=0, shrinkB=1) if moved else None)
    if out is not None:
        save_figure(fig, out, dpi=150, bbox_inches="tight", tight_layout=False, close=True, atomic=False)
    return fig
