"""Plot of the magnetic lattice: sites, bonds coloured by shell, ligands, the unit cell (top view, Å)."""

from __future__ import annotations

import itertools

import numpy as np

from .._plotting import save_figure
from .analysis import StructureReport

__all__ = ["plot_magnetic_lattice"]

SHELL_COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
SHELL_STYLES = ["-", "--", ":", "-.", (0, (5, 1)), (0, (1, 1))]


def plot_magnetic_lattice(report: StructureReport, path=None, repeat: int = 2, ax=None, show_ligands: bool = True):
    """Draw the magnetic lattice of ``report`` in a (2·repeat+1)² block of cells; save to ``path`` if given.

    Returns the matplotlib Figure.  Bonds are coloured (and dashed) by shell, ligands shown as small grey dots,
    bridging ligands of the nearest-neighbour bonds outlined.
    """
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    if ax is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = report.sublattice
    cell = sub.atoms.cell.array
    fig = ax.figure if ax is not None else plt.figure(figsize=(9.5, 6.5))
    ax = ax if ax is not None else fig.add_subplot(111)
    shifts = [np.array([a, b, 0]) for a, b in itertools.product(range(-repeat, repeat + 1), repeat=2)]
    pos = sub.positions
    centre = (cell[0] + cell[1]) / 2.0
    radius = (repeat - 0.15) * max(np.linalg.norm(cell[0]), np.linalg.norm(cell[1]))

    def visible(p):
        return np.linalg.norm((p - centre)[:2]) <= radius + 1e-6

    for sh in report.shells:
        colour = SHELL_COLOURS[(sh.index - 1) % len(SHELL_COLOURS)]
        style = SHELL_STYLES[(sh.index - 1) % len(SHELL_STYLES)]
        width = 2.6 / sh.index ** 0.5
        # nearest neighbours everywhere; longer bonds only as a star around the home-cell sites (readability)
        segments = []
        for b in sh.bonds:
            if sh.index == 1:
                for T in shifts:
                    segments.append((pos[b.i] + T @ cell, pos[b.j] + (np.array(b.R) + T) @ cell))
            else:
                segments.append((pos[b.i], pos[b.j] + np.array(b.R) @ cell))
                segments.append((pos[b.j], pos[b.i] - np.array(b.R) @ cell))
        first = True
        for p0, p1 in segments:
            if not (visible(p0) and visible(p1)):
                continue
            ax.plot([p0[0], p1[0]], [p0[1], p1[1]], color=colour, ls=style, lw=width, zorder=1 + 0.1 / sh.index,
                    label=(f"{sh.index}NN  {sh.distance:.3f} Å  (×{sh.multiplicity:g})" if first else None))
            first = False
    if show_ligands:
        lig = sub.ligand_indices
        symbols = sub.atoms.get_chemical_symbols()
        elements = sorted({symbols[k] for k in lig})
        markers = dict(zip(elements, ["o", "s", "^", "D", "v"]))
        for el in elements:
            pts = [sub.atoms.positions[k] + T @ cell for k in lig if symbols[k] == el for T in shifts]
            pts = np.array([p for p in pts if visible(p)])
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=18, c="0.6", marker=markers[el], zorder=2, label=f"{el} (ligand)",
                           edgecolors="none")
        bridging = {(bp.ligand.index, bp.ligand.R) for p in report.paths if p.shell == 1 for bp in p.bridges}
        pts = np.array([sub.atoms.positions[k] + np.array(R) @ cell for k, R in bridging])
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], s=40, facecolors="none", edgecolors="k", lw=0.8, zorder=3,
                       label="bridging ligands (1NN)")
    for el in sorted(set(sub.elements)):
        pts = np.array([p + T @ cell for p, e in zip(pos, sub.elements) if e == el for T in shifts])
        pts = np.array([p for p in pts if visible(p)])
        ax.scatter(pts[:, 0], pts[:, 1], s=110, c="k", zorder=4, label=f"{el} (S = {sub.spins[sub.elements.index(el)]:g})")
    corners = np.array([[0, 0, 0], cell[0], cell[0] + cell[1], cell[1], [0, 0, 0]])
    ax.plot(corners[:, 0], corners[:, 1], color="0.3", lw=1.0, zorder=0.5, label="unit cell")
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(f"{report.sublattice.atoms.get_chemical_formula()}: magnetic lattice and exchange shells")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, framealpha=0.9)
    if path is not None:
        save_figure(fig, path, dpi=130, atomic=False)
    return fig
