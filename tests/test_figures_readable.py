"""Figures that read at a glance (issue 20, item 5): properties asserted on the drawn matplotlib artists.

Crystal-field labels never overlap; the bands' spin channels differ in colour and line style and every kind of line
or marker has a legend entry; the superexchange channel plot gives each comparison marker its own legend entry and
keeps its "no J" note off the markers; Monte Carlo figures state Tc (or "not bracketed") in the title and mark the
window edge beyond which an unbracketed crossing lies.
"""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def kept_figures(monkeypatch):
    """Figures the plot functions would close after saving, kept open for inspection."""
    monkeypatch.setattr(plt, "close", lambda *a, **k: None)
    before = set(plt.get_fignums())
    yield lambda: [plt.figure(n) for n in plt.get_fignums() if n not in before]
    monkeypatch.undo()
    plt.close("all")


def _boxes(fig, artists):
    from matplotlib.text import Text

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    # the text itself (an Annotation's own extent includes its leader line)
    return [Text.get_window_extent(a, r) if isinstance(a, Text) else a.get_window_extent(r) for a in artists]


def _overlap(a, b, tol=0.5) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tol) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tol)


# ------------------------------------------------------------------------------------------------ crystal field
def _levels(diags, eps_p=-3.0):
    return [SimpleNamespace(h_local=np.diag(d), eps_p=eps_p, ten_dq=float(np.mean(np.asarray(d)[[0, 3]])
                                                                       - np.mean(np.asarray(d)[[1, 2, 4]])),
                            element="Cr", atom=k) for k, d in enumerate(diags)]


@pytest.mark.parametrize("diag", [
    [1.00, 0.000, 0.010, 1.012, 0.020],    # nearly degenerate t2g and eg: five distinct labels, 10 meV apart
    [1.00, 0.000, 0.000, 1.000, 0.000],    # exactly degenerate: one label per group
    [0.30, 0.000, 0.100, 0.320, 0.200],    # all five within 0.3 eV
])
def test_crystal_field_labels_never_overlap(diag):
    from wannmag.tightbinding.harmonics import ORBITAL_NAMES
    from wannmag.tightbinding.plot import plot_crystal_field

    fig = plot_crystal_field(_levels([diag, diag[::-1]], eps_p=float(min(diag)) - 0.01))
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_gid() == "cf-label"]
    boxes = _boxes(fig, labels)
    assert all(not _overlap(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    text = " ".join(t.get_text() for t in labels)
    assert all(text.count(n) == 2 for n in ORBITAL_NAMES[2]) and text.count("ε_p") == 2  # every level labelled
    # labels do not overprint the level bars of the next metal either
    bars = [seg for coll in ax.collections for seg in coll.get_segments()]
    xmax_label = max(ax.transData.inverted().transform([[b.x1, b.y0]])[0][0] for b, t in zip(boxes, labels)
                     if t.xy[0] < 0.5)
    assert xmax_label < min(s[:, 0].min() for s in bars if s[0, 0] > 0.4)
    plt.close(fig)


def test_crystal_field_degenerate_levels_share_one_label():
    from wannmag.tightbinding.plot import plot_crystal_field

    fig = plot_crystal_field(_levels([[1.0, 0.0, 0.0, 1.0, 0.0]]))
    texts = sorted(t.get_text() for t in fig.axes[0].texts if t.get_gid() == "cf-label")
    assert texts == sorted(["dz2, dx2-y2", "dxz, dyz, dxy", "ε_p (ligand p)"]) or len(texts) == 3
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ bands
def test_bands_spin_channels_differ_and_every_marker_has_a_legend_entry():
    from wannmag.structures import cri3_monolayer
    from wannmag.tightbinding import slater_koster_collinear
    from wannmag.tightbinding.plot import plot_bands

    kw = dict(d_atoms="Cr", p_atoms="I", params=dict(pds=-1.0, pdp=0.45, pps=0.5, ppp=-0.12), eps_p=-1.5,
              crystal_field=(-0.1, 0.3))
    pair = slater_koster_collinear(cri3_monolayer(), exchange_splitting=3.0, eps_d=0.0, **kw)
    k = np.array([[0, 0, 0], [0.5, 0, 0], [1 / 3, 1 / 3, 0]], float)
    dft = [{"k": k, "energies": pair.up.eigh(k)[0], "label": "DFT up"},
           {"k": k, "energies": pair.down.eigh(k)[0], "label": "DFT dn"}]
    fig = plot_bands(pair, fermi_energy=0.0, dft=dft, npoints=60)
    ax = fig.axes[0]
    up = [ln for ln in ax.lines if ln.get_gid() == "bands-up"]
    dn = [ln for ln in ax.lines if ln.get_gid() == "bands-down"]
    assert up and dn
    assert up[0].get_color() != dn[0].get_color() and up[0].get_linestyle() != dn[0].get_linestyle()
    leg = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
    # one legend entry per kind of artist: both spins, the d-weight dots, both DFT references, E_F
    assert {"spin ↑ (Wannier)", "spin ↓ (Wannier)", "DFT up", "DFT dn", "E_F"} <= set(leg)
    assert any("d weight" in t for t in leg)
    drawn = {a.get_gid() for a in ax.lines + ax.collections if a.get_gid()}
    assert drawn >= {"bands-up", "bands-down", "dweight-up", "dweight-down", "dft-0", "dft-1"}
    # the DFT markers of the two spins differ in shape and take their channel's colour
    d0, d1 = (next(ln for ln in ax.lines if ln.get_gid() == g) for g in ("dft-0", "dft-1"))
    assert d0.get_marker() != d1.get_marker()
    assert d0.get_markeredgecolor() == up[0].get_color() and d1.get_markeredgecolor() == dn[0].get_color()
    assert leg["DFT up"].get_marker() == d0.get_marker() and leg["DFT dn"].get_marker() == d1.get_marker()
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ channels
def _bond(J, comps, status="ok"):
    from wannmag.magnetism.superexchange.analysis import CATEGORIES

    return SimpleNamespace(J=J, status=status, summary={c: (-1.0) ** k * (k + 1) for k, c in enumerate(CATEGORIES)},
                           comparisons=comps)


def test_channel_plot_markers_each_have_their_own_legend_entry(kept_figures, tmp_path):
    from wannmag.magnetism.superexchange import plot_channels

    plot_channels({"A": _bond(None, {"energy mapping": -3.5, "force theorem": -1.0},
                              "out of range (max |t_pd|/Δ = 2.83 > 0.5)"),
                   "B": _bond(None, {"energy mapping": 2.0}, "out of range (max |t_pd|/Δ = 0.94 > 0.5)")},
                  tmp_path / "c.png")
    fig = kept_figures()[-1]
    ax = fig.axes[0]
    marks = [ln for ln in ax.lines if ln.get_gid() == "comparison"]
    assert len(marks) == 3
    styles = {(ln.get_marker(), str(ln.get_markerfacecolor())) for ln in marks}
    assert len(styles) == 3  # A and B energy-mapping markers are told apart (colour), the routes by shape
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert all(ln.get_label() in labels for ln in marks)
    notes = [t for t in ax.texts if t.get_gid() == "no-J"]
    assert len(notes) == 2 and all(t.get_text().startswith("no J:") for t in notes)
    boxes = _boxes(fig, notes + marks)
    assert not any(_overlap(n, m) for n in boxes[:2] for m in boxes[2:])  # the note keeps off the markers


# ------------------------------------------------------------------------------------------------ Monte Carlo
def _curves():
    T = np.linspace(40.0, 60.0, 6)
    c = {q: (np.linspace(1, 0, 6), np.full(6, 0.01)) for q in ("M", "Q", "chi", "energy", "C", "U4")}
    return {"6x6x1": {"T": T, **c}, "8x8x1": {"T": T, **c}}


def test_mc_title_states_tc(kept_figures, tmp_path):
    from wannmag.magnetism.montecarlo.plot import plot_curves

    plot_curves(_curves(), tmp_path / "a.png", tc=51.234, tc_error=0.75, title="X: Monte Carlo (Binder crossing)")
    fig = kept_figures()[-1]
    assert fig._suptitle.get_text() == "X: Monte Carlo (Binder crossing): Tc = 51.2 ± 0.8 K"
    assert not [ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "window-edge"]
    plot_curves(_curves(), tmp_path / "b.png", title="X: Monte Carlo (not bracketed)")
    assert "not bracketed" in kept_figures()[-1]._suptitle.get_text()
    plot_curves(_curves(), tmp_path / "c.png", title="X: Monte Carlo (chi peak)")
    title = kept_figures()[-1]._suptitle.get_text()
    assert title.endswith("Tc not bracketed") and "K" not in title.split(":")[-1]


@pytest.mark.parametrize("side, edge_T", [("above tmax", 60.0), ("below tmin", 40.0)])
def test_mc_unbracketed_crossing_marks_the_window_edge(kept_figures, tmp_path, side, edge_T):
    from wannmag.magnetism.montecarlo.plot import plot_curves

    plot_curves(_curves(), tmp_path / "e.png", title="Tc: not bracketed (crossing " + side + ")", edge=side)
    fig = kept_figures()[-1]
    edges = [ln for ax in fig.axes for ln in ax.lines if ln.get_gid() == "window-edge"]
    assert len(edges) == 6 and all(np.allclose(ln.get_xdata(), edge_T) for ln in edges)
    note = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "window-edge-label"]
    assert len(note) == 1 and "window edge" in note[0].get_text()
