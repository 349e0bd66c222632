"""Bar chart of the superexchange channels of one bond per material (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..._plotting import save_figure
from .analysis import CATEGORIES

__all__ = ["plot_channels"]


def _place_no_j(fig, ax, no_j, compared_at) -> None:
    """The "no J: <status>" note of each out-of-range bond, rotated, in its total slot: at the end of the axis away
    from the comparison markers of that slot; the y range grows until no note covers a marker."""
    from matplotlib.text import Text  # local: matplotlib, as in plot_superexchange

    lo, hi = ax.get_ylim()
    notes = []
    for xpos, lab, status, colour in no_j:
        own = [v for xp, v in compared_at if abs(xp - xpos) < 1e-9]
        top = not own or np.mean([(v - lo) / (hi - lo) for v in own]) < 0.5
        t = ax.text(xpos, 0.98 if top else 0.02, f"no J: {lab}\n" + status.replace(" (", "\n("), ha="center",
                    va="top" if top else "bottom", fontsize=7, rotation=90, color=colour,
                    transform=ax.get_xaxis_transform(), gid="no-J")
        notes.append((t, top, own))
    for _ in range(4):
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        grow_top = grow_bottom = 0.0
        for t, top, own in notes:
            box = Text.get_window_extent(t, r)
            for v in own:
                ypx = ax.transData.transform((0.0, v))[1]
                if top and ypx + 6 > box.y0:
                    grow_top = max(grow_top, ypx + 6 - box.y0)
                elif not top and ypx - 6 < box.y1:
                    grow_bottom = max(grow_bottom, box.y1 - (ypx - 6))
        if not grow_top and not grow_bottom:
            return
        lo, hi = ax.get_ylim()
        per_px = (hi - lo) / ax.get_window_extent(r).height
        ax.set_ylim(lo - 1.3 * grow_bottom * per_px, hi + 1.3 * grow_top * per_px)


def plot_channels(results: dict, out, title: str | None = None) -> Path:
    """``results``: {label: BondAnalysis}; one group of bars per channel category plus the total, one bar per
    label (meV, J > 0 AF).  Comparison values (energy mapping, force theorem) are drawn as markers on the total.

    A bond whose expansion is out of range (``BondAnalysis.J`` is None) gets hatched bars labelled "formal
    perturbative terms (not J)" and no total bar: the total slot says "no J: out of range (…)" (away from the
    comparison markers).  Comparison markers: one shape per route, filled with the colour of their material's bars,
    each with a legend entry."""
    import matplotlib  # local: heavy dependency (matplotlib, ~0.4 s to import), only plotting needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cats = CATEGORIES + ["total"]
    labels = list(results)
    n = len(labels)
    x = np.arange(len(cats))
    width = 0.8 / max(n, 1)
    fig, ax = plt.subplots(figsize=(1.3 * len(cats) + 3.5, 4.6))
    markers = ["D", "o", "s", "^"]
    any_formal = False
    no_j, compared_at, marker_of = [], [], {}
    for k, lab in enumerate(labels):
        b = results[lab]
        ok = b.J is not None
        vals = [b.summary.get(c, 0.0) for c in CATEGORIES] + [b.J if ok else 0.0]
        pos = x + (k - (n - 1) / 2) * width
        colour = f"C{k}"
        if ok:
            bars = ax.bar(pos, vals, width * 0.95, label=lab, color=colour)
        else:
            bars = ax.bar(pos[:-1], vals[:-1], width * 0.95, hatch="//", alpha=0.6, color=colour,
                          label=f"{lab}: formal perturbative terms (not J)")
            no_j.append((pos[-1], lab, b.status, colour))
            any_formal = True
        for rect, v in zip(bars, vals):
            if abs(v) > 1e-3:
                ax.annotate(f"{v:+.2f}", (rect.get_x() + rect.get_width() / 2, v), ha="center",
                            va="bottom" if v >= 0 else "top", fontsize=7)
        for name, val in b.comparisons.items():  # one marker shape per route, in the colour of the material
            if val is None:
                continue
            mk = marker_of.setdefault(name, markers[len(marker_of) % len(markers)])
            ax.plot([pos[-1]], [val], mk, mfc=colour, mec="k", mew=0.8, ms=6, label=f"{lab}: {name} J",
                    gid="comparison")
            compared_at.append((pos[-1], val))
    ax.axhline(0.0, color="0.3", lw=0.8)
    _place_no_j(fig, ax, no_j, compared_at)
    ax.set_xticks(x)
    ax.set_xticklabels(cats, rotation=20, ha="right", fontsize=9)
    ax.set_ylabel(("J / formal term" if any_formal else "J") + " (meV)\n[H = J S_i·S_j, |S| = 3/2; J > 0 AF]",
                  fontsize=9)
    ax.set_title((title or "superexchange channels of the nearest-neighbour bond")
                 + ("\n(hatched: expansion out of range — formal perturbative terms, not exchange constants)"
                    if any_formal else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, out, dpi=130, close=True, atomic=False)
