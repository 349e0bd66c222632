"""Plots of exchange constants: the exchange map (bonds of the magnetic lattice coloured by J), J(r), and J1–J3, the
anisotropy and T_c of a U/strain sweep against U or strain (:func:`plot_sweep`, the figure of ``wannmag sweep``).

Convention of the plotted numbers: the internal SpinModel convention, H = Σ_{bonds (i,j,R), each once}
S_i·J_ij·S_j with spins of length S, J in meV, **J > 0 antiferromagnetic**, J < 0 ferromagnetic.  By default the
isotropic part J = Tr(J)/3 of each bond tensor is shown.

The exchange map and J(r) draw on matplotlib ``Figure`` objects with the Agg canvas (no pyplot, no display, no global
backend change) unless an existing ``ax`` is passed; they return the Figure and save it when ``path`` is given.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from .._plotting import save_figure
from .spinmodel import SpinModel

__all__ = ["plot_exchange_map", "plot_j_vs_r", "bond_values", "shell_distances", "plot_sweep"]

AF_STYLE = "solid"
FM_STYLE = (0, (2.0, 1.3))  # dashed (pattern in units of the line width): readable without colour
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]


def _figure(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(111)


def bond_values(model: SpinModel, component="iso") -> np.ndarray:
    """One number per bond (meV, internal convention, J > 0 AF): ``"iso"`` = Tr(J)/3, ``"xx"``/``"yy"``/``"zz"``
    (or any two of x, y, z) a tensor element, ``"dmi"`` = |D|, or a callable ``f(bond) -> float``."""
    if callable(component):
        return np.array([float(component(b)) for b in model.bonds])
    if component == "iso":
        return np.array([b.J_iso for b in model.bonds])
    if component == "dmi":
        return np.array([float(np.linalg.norm(b.dmi)) for b in model.bonds])
    if isinstance(component, str) and len(component) == 2 and set(component) <= set("xyz"):
        a, c = "xyz".index(component[0]), "xyz".index(component[1])
        return np.array([b.J[a, c] for b in model.bonds])
    raise ValueError(f"unknown exchange component {component!r} (iso, dmi, xx, xy, ..., or a callable)")


def shell_distances(distances, tol: float = 0.05) -> list[float]:
    """Cluster bond lengths (Å) into shells: consecutive sorted lengths closer than ``tol`` share a shell; returns
    the mean length of each shell (shell 1 first)."""
    groups: list[list[float]] = []
    for d in np.sort(np.asarray(distances, float)):
        if groups and d - groups[-1][-1] <= tol:
            groups[-1].append(float(d))
        else:
            groups.append([float(d)])
    return [float(np.mean(g)) for g in groups]


def plot_exchange_map(model: SpinModel, path=None, ax=None, repeat=(2, 2), component="iso", cmap: str = "coolwarm",
                      vmax: float | None = None, hide_below: float = 1e-9, linewidth=(1.2, 6.0),
                      show_sites: bool = True, show_cell: bool = True, title: str | None = None):
    """Exchange map: every bond of ``model`` drawn in the plane (x, y) of the magnetic lattice, in a block of
    ``repeat`` = (n1, n2) unit cells (each bond once per cell, from site i of the cell to site j of the cell + R).

    Colour: the bond value (default the isotropic J, meV, internal convention: J > 0 antiferromagnetic) on a
    diverging colour map centred at 0 (±``vmax``, default max |J|; "coolwarm" keeps weak bonds grey rather than
    white), with a colour bar in meV.  Line width grows
    linearly with |J| from ``linewidth[0]`` to ``linewidth[1]``.  AF bonds (J > 0) are solid and FM bonds (J < 0)
    dashed, so the two stay distinguishable without colour.  Bonds with |J| < ``hide_below`` are not drawn.
    The two LineCollections have gids ``"exchange-AF"`` and ``"exchange-FM"``; their arrays hold the plotted J.
    Returns the Figure.
    """
    from matplotlib.collections import LineCollection  # local: matplotlib, as in _figure
    from matplotlib.colors import Normalize
    from matplotlib.cm import ScalarMappable
    from matplotlib.lines import Line2D

    n1, n2 = (int(repeat), int(repeat)) if np.isscalar(repeat) else (int(repeat[0]), int(repeat[1]))
    if n1 < 1 or n2 < 1:
        raise ValueError(f"repeat must be at least 1×1 cells, got {repeat}")
    fig, ax = _figure(ax, (7.5, 6.0))
    values = bond_values(model, component)
    big = float(np.max(np.abs(values))) if len(values) else 0.0
    vmax = float(vmax) if vmax is not None else (big if big > 0 else 1.0)
    norm = Normalize(vmin=-vmax, vmax=vmax)
    cell = model.cell
    pos = np.array([s.position for s in model.sites])
    segs = {"AF": [], "FM": []}
    vals = {"AF": [], "FM": []}
    for T in itertools.product(range(n1), range(n2)):
        shift = np.array([T[0], T[1], 0]) @ cell
        for b, J in zip(model.bonds, values):
            if abs(J) < hide_below:
                continue
            p0 = pos[b.i] + shift
            p1 = pos[b.j] + np.array(b.R) @ cell + shift
            kind = "AF" if J > 0 else "FM"
            segs[kind].append([p0[:2], p1[:2]])
            vals[kind].append(J)
    lw0, lw1 = linewidth
    for kind, style in (("AF", AF_STYLE), ("FM", FM_STYLE)):
        v = np.array(vals[kind])
        coll = LineCollection(segs[kind], cmap=cmap, norm=norm, linestyles=style,
                              linewidths=lw0 + (lw1 - lw0) * np.abs(v) / vmax if len(v) else lw0,
                              zorder=2 if kind == "AF" else 1, capstyle="round")
        coll.set_array(v)
        coll.set_gid(f"exchange-{kind}")
        ax.add_collection(coll)
    points = np.array([p for k in segs for seg in segs[k] for p in seg] +
                      [(pos[k] + np.array([a, c, 0]) @ cell)[:2] for k in range(model.n_sites)
                       for a in range(n1) for c in range(n2)])
    if show_cell:
        corners = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 0]]) @ cell
        ax.plot(corners[:, 0], corners[:, 1], color="0.55", lw=0.8, ls=":", zorder=0)
    if show_sites and len(points):
        uniq = np.unique(np.round(points, 6), axis=0)
        ax.scatter(uniq[:, 0], uniq[:, 1], s=45, c="k", zorder=3, gid="sites")
    sm = ScalarMappable(norm=norm, cmap=cmap)
    sm.set_array(values)
    cb = fig.colorbar(sm, ax=ax, fraction=0.046, pad=0.04)
    label = "J (meV)" if component == "iso" else f"J [{component if isinstance(component, str) else 'value'}] (meV)"
    cb.set_label(f"{label};  J > 0 AF (solid), J < 0 FM (dashed)")
    handles = [Line2D([], [], color="0.2", ls=AF_STYLE, lw=2, label="AF (J > 0)"),
               Line2D([], [], color="0.2", ls=FM_STYLE, lw=2, label="FM (J < 0)")]
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.85)
    if len(points):
        pad = 0.6
        ax.set_xlim(points[:, 0].min() - pad, points[:, 0].max() + pad)
        ax.set_ylim(points[:, 1].min() - pad, points[:, 1].max() + pad)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(title or f"exchange map ({n1}×{n2} cells, H = Σ S_i·J·S_j, each bond once)", fontsize=10)
    if path is not None:  # atomic; a directory or an unwritable target is one error line
        save_figure(fig, path, dpi=150, bbox_inches="tight", tight_layout=False, user_path=True)
    return fig


def _as_models(models, labels):
    if isinstance(models, SpinModel):
        models = [models]
    if isinstance(models, dict):
        items = list(models.items())
    else:
        items = []
        for k, m in enumerate(models):
            if isinstance(m, tuple) and len(m) == 2 and isinstance(m[1], SpinModel):
                items.append((str(m[0]), m[1]))
            else:
                items.append((None, m))
    if labels is not None:
        if len(labels) != len(items):
            raise ValueError(f"{len(labels)} labels for {len(items)} models")
        items = [(lab, m) for lab, (_, m) in zip(labels, items)]
    out = []
    for k, (lab, m) in enumerate(items):
        if not isinstance(m, SpinModel):
            raise TypeError(f"expected SpinModel, got {type(m).__name__}")
        out.append((lab if lab is not None else (m.meta.get("method") or f"model {k + 1}"), m))
    return out


def plot_j_vs_r(models, path=None, ax=None, labels=None, component="iso", tol: float = 0.05,
                side_by_side: bool = False, title: str | None = None):
    """J(r): one point per bond, J (meV, internal convention, J > 0 AF) against the bond length (Å).

    ``models`` is a SpinModel, a list of SpinModels or (label, model) pairs, or a dict label → model (e.g.
    ``{"energy mapping": m1, "force theorem": m2}``); several models share one axes with different markers, or get
    one panel each (shared J axis) with ``side_by_side``.  Shells (bond lengths within ``tol`` Å
    of each model) are marked by dotted lines and labelled J1, J2, ... (once if the models share their shells,
    otherwise per model in its colour).  Each model's scatter has gid ``"J(r) <label>"``.
    Returns the Figure.
    """
    items = _as_models(models, labels)
    if not items:
        raise ValueError("no model to plot")
    if side_by_side and ax is not None:
        raise ValueError("side_by_side draws its own panels; do not pass ax")
    if side_by_side and len(items) > 1:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # local: matplotlib, as in _figure
        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.2 * len(items), 4.2))
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(items), sharey=True, squeeze=False)[0]
    else:
        fig, ax = _figure(ax, (6.5, 4.5))
        axes = [ax] * len(items)
    shells = [shell_distances([m.bond_length(b) for b in m.bonds], tol) for _, m in items]
    common = all(len(sh) == len(shells[0]) and np.allclose(sh, shells[0], atol=tol) for sh in shells)
    for k, ((lab, m), a) in enumerate(zip(items, axes)):
        d = np.array([m.bond_length(b) for b in m.bonds])
        J = bond_values(m, component)
        style = {"facecolors": "none", "edgecolors": f"C{k}"} if k % 2 else {"color": f"C{k}"}
        a.scatter(d, J, marker=MARKERS[k % len(MARKERS)], s=36, label=lab, gid=f"J(r) {lab}", zorder=3, **style)
        # shell labels: once if all models share their shells, else per model (own colour, stacked)
        if common and k > 0 and not (side_by_side and len(items) > 1):
            continue
        row = 0 if (common or (side_by_side and len(items) > 1)) else k
        colour = "k" if (common or (side_by_side and len(items) > 1)) else f"C{k}"
        for n, r in enumerate(shells[k], start=1):
            a.axvline(r, color="0.8", lw=0.8, ls=":", zorder=0)
            a.text(r, 1.01 + 0.06 * row, f"J{n}", transform=a.get_xaxis_transform(), ha="center", va="bottom",
                   fontsize=9, color=colour, gid=f"shell-J{n}")
    for a in dict.fromkeys(axes):
        a.axhline(0.0, color="0.4", lw=0.8, zorder=1)
        a.set_xlabel("bond length r (Å)")
        if side_by_side and len(items) > 1:
            lab = next(lab for (lab, _), aa in zip(items, axes) if aa is a)
            a.set_title(lab, fontsize=10, pad=18)
    axes[0].set_ylabel(("J (meV)" if component == "iso" else f"J [{component}] (meV)") + "   [J > 0: AF, J < 0: FM]")
    if len(items) > 1 and not side_by_side:
        axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    if path is not None:  # atomic; a directory or an unwritable target is one error line
        save_figure(fig, path, dpi=150, bbox_inches="tight", tight_layout=False, user_path=True)
    return fig


# ------------------------------------------------------------------------------------------------- U/strain sweep
def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def plot_sweep(points, path, *, U_values, strains, preset: str | None = None, title: str | None = None) -> Path:
    """J1–J3, the anisotropy (ΔE and, where fitted, A and K) and T_c against U (one line per strain) or against the
    strain (one line per U, when only the strain varies, i.e. one U in ``U_values`` and several ``strains``); saved
    at ``path`` (PNG, 120 dpi), which is returned.

    ``points``: one dict per (U, strain) point as :func:`wannmag.workflows.sweep.point_summary` makes them — "U"
    (eV), "strain" (fraction), "status" ("done" is drawn; failed points are left out), "J_meV" [J1, J2, J3] (meV,
    H = Σ_{i<j} J_ij S_i·S_j, each bond once, J > 0 AF; missing entries are not drawn), "anisotropy" (meV per ion:
    "total_meV_per_ion" = E_in − E_out, > 0 out of plane; "single_ion_A_meV", "K_meV"), "tc" ("tc_K",
    "tc_error_K" in K; a point with a ``tc`` dict but no finite T_c is marked on the axis with an open symbol) and
    "formula".  The default title is "<formula> sweep (<preset> preset)"."""
    from matplotlib.figure import Figure  # local: matplotlib, as in _figure

    pts = [p for p in points if p.get("status") == "done"]
    by_u = len(U_values) > 1 or len(strains) == 1
    skey = "strain" if by_u else "U"
    xlabel = "U (eV)" if by_u else "biaxial strain (%)"
    xs = (lambda p: p["U"]) if by_u else (lambda p: 100.0 * p["strain"])
    series = sorted({p[skey] for p in pts})
    fig = Figure(figsize=(12, 3.8))
    axJ, axA, axT = fig.subplots(1, 3)
    markers = "osd^v<>"
    for k, s in enumerate(series):
        sp = sorted((p for p in pts if p[skey] == s), key=xs)
        x = np.array([xs(p) for p in sp])
        tag = "" if len(series) == 1 else (f", strain {100 * s:+.1f} %" if by_u else f", U {s:g} eV")
        mk = markers[k % len(markers)]
        for n, (c, name) in enumerate(zip(("C0", "C1", "C2"), ("J1", "J2", "J3"))):
            y = np.array([(p.get("J_meV") or [None] * 3)[n] if len(p.get("J_meV") or []) > n else None for p in sp],
                         dtype=float)
            if np.isfinite(y).any():
                axJ.plot(x, y, marker=mk, color=c, label=name + tag, ls="-" if k == 0 else "--")
        an = [p.get("anisotropy") or {} for p in sp]
        for key, c, name in (("total_meV_per_ion", "k", "ΔE = E_in − E_out"), ("single_ion_A_meV", "C3", "A (single-ion)"),
                             ("K_meV", "C4", "K (Kitaev, NN)")):
            y = np.array([a.get(key) if _finite(a.get(key)) else np.nan for a in an], dtype=float)
            if np.isfinite(y).any():
                axA.plot(x, y, marker=mk, color=c, label=name + tag, ls="-" if k == 0 else "--")
        tc = [p.get("tc") or {} for p in sp]
        y = np.array([t.get("tc_K") if _finite(t.get("tc_K")) else np.nan for t in tc], dtype=float)
        err = np.array([t.get("tc_error_K") or 0.0 for t in tc], dtype=float)
        if np.isfinite(y).any():
            axT.errorbar(x, y, yerr=err, marker=mk, color="C0", capsize=3, label=("T_c / T_N" + tag).lstrip(", "),
                         ls="-" if k == 0 else "--")
        miss = ~np.isfinite(y) & np.array([bool(t) for t in tc])
        if miss.any():
            axT.plot(x[miss], np.zeros(miss.sum()), marker=mk, mfc="none", color="C3", ls="none",
                     label="no T (not bracketed / Mermin–Wagner)" + tag)
    axJ.axhline(0, color="0.6", lw=0.8)
    axA.axhline(0, color="0.6", lw=0.8)
    axJ.set(xlabel=xlabel, ylabel="J (meV; > 0 AF)", title="exchange (energy mapping)")
    axA.set(xlabel=xlabel, ylabel="meV per ion", title="anisotropy (> 0: out of plane)")
    axT.set(xlabel=xlabel, ylabel="T (K)", title="ordering temperature (Monte Carlo)")
    for ax in (axJ, axA, axT):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    formula = next((p.get("formula") for p in pts if p.get("formula")), "")
    fig.suptitle(title or (f"{formula} sweep ({preset} preset)" if preset is not None else f"{formula} sweep"))
    return save_figure(fig, path, dpi=120)
