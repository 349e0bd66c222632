"""Exchange map, J(r) and U/strain sweep plots: assertions on the plotted data."""

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.plot import bond_values, plot_exchange_map, plot_j_vs_r, plot_sweep, shell_distances
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

JS = (-2.1, -0.35, 0.12)  # meV, internal (J > 0 AF): FM J1, J2; AF J3


def cri3(Js=JS, dmi=False):
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub, meta={"method": "energy mapping"})
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, len(Js)), Js), start=1):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J, shell=n)
    return model


def collections(fig, gid):
    return [c for a in fig.axes for c in a.collections if c.get_gid() == gid]


def test_exchange_map_segments_colours_widths(tmp_path):
    model = cri3()
    fig = plot_exchange_map(model, path=tmp_path / "map.png", repeat=(2, 2))
    assert (tmp_path / "map.png").stat().st_size > 1000
    assert len(fig.axes) == 2  # map + colour bar
    cbar_ax = fig.axes[1]
    assert "meV" in cbar_ax.get_ylabel() and "J > 0 AF" in cbar_ax.get_ylabel()
    (af,), (fm,) = collections(fig, "exchange-AF"), collections(fig, "exchange-FM")
    # 12 bonds per cell × 4 cells; J3 (3 bonds, AF) solid, J1 + J2 (9 bonds, FM) dashed
    assert len(af.get_segments()) == 3 * 4 and len(fm.get_segments()) == 9 * 4
    assert np.allclose(af.get_array(), 0.12) and sorted(set(np.round(fm.get_array(), 6))) == [-2.1, -0.35]
    assert af.get_linestyle()[0][1] is None  # solid
    assert fm.get_linestyle()[0][1] is not None  # dashed pattern
    # diverging map centred at 0, ±max|J|
    assert af.norm.vmin == pytest.approx(-2.1) and af.norm.vmax == pytest.approx(2.1)
    # line width linear in |J|
    for coll in (af, fm):
        lw = np.asarray(coll.get_linewidths())
        assert np.allclose(lw, 1.2 + 4.8 * np.abs(coll.get_array()) / 2.1)
    # the segments are the bonds: lengths equal the bond lengths, endpoints at sites
    lengths = sorted(np.linalg.norm(np.diff(s, axis=0)) for c in (af, fm) for s in c.get_segments())
    expected = sorted([model.bond_length(b) for b in model.bonds] * 4)
    assert np.allclose(lengths, expected)
    b0 = model.bonds[0]
    seg0 = np.array([model.sites[b0.i].position[:2], (model.sites[b0.j].position + np.array(b0.R) @ model.cell)[:2]])
    all_segs = [np.asarray(s) for s in fm.get_segments()]
    assert any(np.allclose(s, seg0) for s in all_segs)


def test_exchange_map_repeat_and_hidden_bonds():
    model = cri3(Js=(-2.1, 0.0, 0.12))
    fig = plot_exchange_map(model, repeat=(1, 3))
    n = sum(len(c.get_segments()) for gid in ("exchange-AF", "exchange-FM") for c in collections(fig, gid))
    assert n == (3 + 3) * 3  # the six J2 = 0 bonds are not drawn
    with pytest.raises(ValueError):
        plot_exchange_map(model, repeat=(0, 2))


def test_j_vs_r_points_are_the_bonds(tmp_path):
    model = cri3()
    fig = plot_j_vs_r(model, path=tmp_path / "jr.pdf")
    assert (tmp_path / "jr.pdf").exists()
    ax = fig.axes[0]
    (pts,) = [c for c in ax.collections if c.get_gid() == "J(r) energy mapping"]
    got = sorted(map(tuple, np.round(pts.get_offsets(), 9)))
    want = sorted((round(model.bond_length(b), 9), round(b.J_iso, 9)) for b in model.bonds)
    assert got == want and len(got) == 12
    labels = {t.get_text(): t for t in ax.texts}
    assert {"J1", "J2", "J3"} <= set(labels)
    a = 7.0
    assert [labels[f"J{k}"].get_position()[0] for k in (1, 2, 3)] == pytest.approx(
        [a / np.sqrt(3), a, 2 * a / np.sqrt(3)])
    assert "AF" in ax.get_ylabel()


def test_j_vs_r_several_models_overlay_and_side_by_side():
    m1, m2 = cri3(), cri3(Js=(-1.9, -0.4, 0.1))
    fig = plot_j_vs_r({"energy mapping": m1, "force theorem": m2})
    ax = fig.axes[0]
    gids = sorted(c.get_gid() for c in ax.collections if c.get_gid() and c.get_gid().startswith("J(r)"))
    assert gids == ["J(r) energy mapping", "J(r) force theorem"]
    ft = next(c for c in ax.collections if c.get_gid() == "J(r) force theorem")
    assert sorted(np.round(ft.get_offsets()[:, 1], 9)) == sorted(np.round(bond_values(m2), 9))
    assert ax.get_legend() is not None
    fig = plot_j_vs_r([("EM", m1), ("MFT", m2)], side_by_side=True)
    assert len(fig.axes) == 2
    for a, m in zip(fig.axes, (m1, m2)):
        (c,) = [c for c in a.collections if c.get_gid() and c.get_gid().startswith("J(r)")]
        assert np.allclose(sorted(c.get_offsets()[:, 1]), sorted(bond_values(m)))
        assert {"J1", "J2", "J3"} <= {t.get_text() for t in a.texts}


def test_helpers():
    assert shell_distances([1.0, 1.02, 2.0, 2.5, 2.53], tol=0.05) == pytest.approx([1.01, 2.0, 2.515])
    model = cri3()
    assert np.allclose(bond_values(model, "zz"), bond_values(model))
    assert np.allclose(bond_values(model, "dmi"), 0)
    with pytest.raises(ValueError):
        bond_values(model, "q")


def test_j_vs_r_shell_labels_per_model_when_lattices_differ():
    sub = find_magnetic_sites(cri3_monolayer(a=6.8))
    other = SpinModel.from_sublattice(sub)
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, 2), (-1.0, -0.2)), start=1):
        for b in sh.bonds:
            other.add_bond(b.i, b.j, b.R, J, shell=n)
    fig = plot_j_vs_r([("a = 7.0", cri3()), ("a = 6.8", other)])
    texts = [t for t in fig.axes[0].texts if t.get_text().startswith("J")]
    assert sorted(t.get_text() for t in texts) == ["J1", "J1", "J2", "J2", "J3"]
    j1 = sorted(t.get_position()[0] for t in texts if t.get_text() == "J1")
    assert j1 == pytest.approx([6.8 / np.sqrt(3), 7.0 / np.sqrt(3)])


def _sweep_point(U, strain, J, dE, tc, status="done"):
    return {"U": U, "strain": strain, "status": status, "J_meV": J, "anisotropy": {"total_meV_per_ion": dE},
            "tc": tc, "formula": "CrI3"}


def _drawn(monkeypatch):
    """The Figure plot_sweep hands to save_figure (saved as usual)."""
    import wannmag.magnetism.plot as mp

    seen, real = [], mp.save_figure
    monkeypatch.setattr(mp, "save_figure", lambda fig, path, **kw: seen.append(fig) or real(fig, path, **kw))
    return seen


def test_sweep_plot_against_U_one_line_per_strain(tmp_path, monkeypatch):
    """J (meV, J > 0 AF), ΔE (meV/ion) and T_c (K) against U, one line per strain; a failed point is left out, a
    point without T_c (Mermin–Wagner) is an open marker at 0."""
    seen = _drawn(monkeypatch)
    pts = [_sweep_point(2.0, 0.0, [-1.8, -0.35, 0.1], 0.45, {"tc_K": None, "mermin_wagner": True}),
           _sweep_point(1.0, 0.0, [-2.1, -0.3, 0.1], 0.5, {"tc_K": 45.2, "tc_error_K": 1.5}),
           _sweep_point(1.0, 0.02, [-2.3, -0.31, 0.12], 0.55, {"tc_K": 47.0, "tc_error_K": 2.0}),
           _sweep_point(2.0, 0.02, None, None, None, status="failed")]
    path = plot_sweep(pts, tmp_path / "sweep.png", U_values=[1.0, 2.0], strains=[0.0, 0.02], preset="fast")
    assert path == tmp_path / "sweep.png" and path.stat().st_size > 5000
    (fig,) = seen
    axJ, axA, axT = fig.axes
    assert fig._suptitle.get_text() == "CrI3 sweep (fast preset)" and axJ.get_xlabel() == "U (eV)"
    J = {ln.get_label(): (list(ln.get_xdata()), list(ln.get_ydata())) for ln in axJ.get_lines()
         if ln.get_label()[0] == "J"}
    assert J["J1, strain +0.0 %"] == ([1.0, 2.0], [-2.1, -1.8]) and J["J3, strain +2.0 %"] == ([1.0], [0.12])
    assert len(J) == 6  # J1-J3 for each strain; the failed point adds nothing
    dE = {ln.get_label(): list(ln.get_ydata()) for ln in axA.get_lines() if ln.get_label().startswith("ΔE")}
    assert dE == {"ΔE = E_in − E_out, strain +0.0 %": [0.5, 0.45], "ΔE = E_in − E_out, strain +2.0 %": [0.55]}
    (miss,) = [ln for ln in axT.get_lines() if ln.get_label().startswith("no T")]
    assert list(miss.get_xdata()) == [2.0] and list(miss.get_ydata()) == [0.0] and miss.get_markerfacecolor() == "none"


def test_sweep_plot_against_strain_when_only_the_strain_varies(tmp_path, monkeypatch):
    seen = _drawn(monkeypatch)
    pts = [_sweep_point(3.0, e, [-1.5 + e, -0.4, 0.1], 0.4, {"tc_K": 40.0 + 100 * e, "tc_error_K": 1.0})
           for e in (0.02, -0.02, 0.0)]
    plot_sweep(pts, tmp_path / "s.png", U_values=[3.0], strains=[-0.02, 0.0, 0.02], title="given")
    (fig,) = seen
    axJ, _, axT = fig.axes
    assert fig._suptitle.get_text() == "given" and axJ.get_xlabel() == "biaxial strain (%)"
    (j1,) = [ln for ln in axJ.get_lines() if ln.get_label() == "J1"]  # one series: no tag
    assert np.allclose(j1.get_xdata(), [-2.0, 0.0, 2.0]) and np.allclose(j1.get_ydata(), [-1.52, -1.5, -1.48])
    (tc,) = [c for c in axT.containers]  # the error bars of T_c (K)
    assert np.allclose(tc.lines[0].get_ydata(), [38.0, 40.0, 42.0])
