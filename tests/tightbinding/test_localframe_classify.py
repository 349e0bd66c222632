"""Local octahedral frames, crystal-field levels, 10Dq, hopping matrices, the ZSA classification, DOS and edges."""

import json

import numpy as np
import pytest
from ase import Atoms
from scipy.spatial.transform import Rotation

from wannmag.cli import main
from wannmag.tightbinding import (band_edges, classify_zsa, crystal_field, crystal_fields, dos, edge_character,
                                  hopping_matrices, kmesh, local_frames, nominal_electron_count, octahedral_frame,
                                  projected_dos, slater_koster_collinear, slater_koster_model, write_w90_model)

PDS, PDP, EPS_P = -1.3, 0.6, -2.2


def _octahedron(Q, a=2.6, stretch=(1.0, 1.0, 1.0), noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    vecs = []
    for k in range(3):
        for s in (1, -1):
            v = np.zeros(3)
            v[k] = s * a * stretch[k]
            vecs.append(v + noise * rng.normal(size=3))
    pos = np.array([[0.0, 0, 0]] + vecs) @ Q.T + 15.0
    return Atoms("CrI6", positions=pos, cell=np.eye(3) * 30, pbc=False)


@pytest.fixture(scope="module")
def Q():
    return Rotation.from_euler("zyz", [0.4, 1.1, -0.7]).as_matrix()


def test_ideal_octahedron_levels_and_cluster_10dq(Q):
    at = _octahedron(Q)
    m = slater_koster_model(at, d_atoms="Cr", p_atoms="I", params=dict(pds=PDS, pdp=PDP), eps_d=0.0, eps_p=EPS_P,
                            crystal_field=(-0.2, 0.4))
    cf = crystal_field(m, 0)
    # the frame axes are the M-X directions of the rotated octahedron
    assert np.allclose(np.abs(cf.frame.axes @ Q), np.eye(3)[np.argmax(np.abs(cf.frame.axes @ Q), axis=1)], atol=1e-10)
    assert np.allclose(cf.frame.axes @ cf.frame.axes.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(cf.frame.axes) == pytest.approx(1.0)
    D = cf.frame.d_matrix()
    assert np.allclose(D @ D.T, np.eye(5), atol=1e-12)
    # t2g and eg degenerate; on-site 10Dq = the crystal field put in; no t2g-eg mixing
    assert np.ptp(cf.t2g_levels) < 1e-12 and np.ptp(cf.eg_levels) < 1e-12
    assert cf.ten_dq == pytest.approx(0.6, abs=1e-12)
    assert cf.t2g_eg_mixing < 1e-12 and abs(cf.trigonal_splitting) < 1e-12
    # MX6 cluster: ε(eg*) − ε(t2g*) exact for (pdσ), (pdπ) only
    delta = cf.eps_d - EPS_P
    e_eg = 0.5 * (0.4 + EPS_P) + np.sqrt((0.5 * (0.4 - EPS_P)) ** 2 + 3 * PDS**2)
    e_t2g = 0.5 * (-0.2 + EPS_P) + np.sqrt((0.5 * (-0.2 - EPS_P)) ** 2 + 4 * PDP**2)
    assert cf.ten_dq_cluster == pytest.approx(e_eg - e_t2g, abs=1e-10)
    assert np.allclose(np.sort(cf.cluster_levels), np.sort([e_t2g] * 3 + [e_eg] * 2), atol=1e-10)
    assert cf.delta == pytest.approx(delta)


def test_hopping_matrix_in_local_frame(Q):
    at = _octahedron(Q)
    m = slater_koster_model(at, d_atoms="Cr", p_atoms="I", params=dict(pds=PDS, pdp=PDP), eps_p=EPS_P)
    frames = local_frames(m)
    f = frames[0]
    lig_plus_z = f.ligands[f.pairs[2][0]][0]      # ligand along +z'
    t = hopping_matrices(m, 0, lig_plus_z, (0, 0, 0), frames=frames)
    assert set(t) == {"dp"}
    expected = np.zeros((5, 3))
    expected[0, 0] = -PDS        # <dz2|H|pz at +z'> = −(pdσ)
    expected[1, 1] = -PDP        # <dxz|H|px at +z'> = −(pdπ)
    expected[2, 2] = -PDP
    assert np.allclose(t["dp"], expected, atol=1e-12)
    back = hopping_matrices(m, lig_plus_z, 0, (0, 0, 0), frames=frames)   # Hermiticity: <p|H|d> = <d|H|p>ᵀ
    assert set(back) == {"pd"} and np.allclose(back["pd"], expected.T, atol=1e-12)
    g = hopping_matrices(m, 0, lig_plus_z, (0, 0, 0), frame="global")
    assert not np.allclose(g["dp"], expected)      # the global block is rotated


def test_distorted_octahedron_lowdin_frame(Q):
    at = _octahedron(Q, stretch=(1.0, 1.0, 1.08), noise=0.06, seed=3)
    f = octahedral_frame(at, 0)
    W = f.axes
    assert np.allclose(W @ W.T, np.eye(3), atol=1e-12) and np.linalg.det(W) == pytest.approx(1)
    assert 0 < f.max_deviation < 5
    # Löwdin: closest orthonormal frame to the raw pair directions (beats Gram–Schmidt on Σ u_k·w_k)
    U = f.raw_axes
    gs = np.linalg.qr(U.T)[0].T
    gs *= np.sign(np.sum(gs * U, axis=1))[:, None]
    assert np.trace(W @ U.T) >= np.trace(gs @ U.T) - 1e-12
    m = slater_koster_model(at, d_atoms="Cr", p_atoms="I", params=dict(pds=PDS, pdp=PDP), eps_p=EPS_P)
    cf = crystal_field(m, 0, f)
    assert cf.ten_dq_cluster > 0 and np.ptp(cf.cluster_levels[:3]) > 1e-3    # degeneracies lifted


def test_trigonal_splitting_and_common_frames(cri3_atoms):
    """A field ε·dz2 along the layer normal (the trigonal axis) is pure a1g in the local cubic frame."""
    P = dict(pds=-1.0, pdp=0.45)
    m = slater_koster_model(cri3_atoms, d_atoms="Cr", p_atoms="I", params=P, eps_p=-2.0,
                            crystal_field=[0.2, 0.0, 0.0, 0.0, 0.0])
    cfs = crystal_fields(m)
    assert len(cfs) == 2
    for cf in cfs:
        assert cf.trigonal_splitting == pytest.approx(0.2, abs=1e-10)
        assert cf.eps_a1g == pytest.approx(0.2, abs=1e-10) and cf.eps_egp == pytest.approx(0.0, abs=1e-10)
        assert cf.frame.axes.sum(axis=0) / np.sqrt(3) == pytest.approx([0, 0, 1], abs=1e-10)
    # both Cr use the same cubic axes (edge-sharing octahedra)
    assert np.trace(cfs[0].frame.axes @ cfs[1].frame.axes.T) == pytest.approx(3, abs=1e-8)


P_CLS = dict(pds=-0.8, pdp=0.35, dds=-0.05, ddp=0.03, pps=0.3, ppp=-0.08)


@pytest.mark.parametrize("eps_p,regime", [(-8.0, "Mott–Hubbard"), (-1.0, "charge-transfer")])
def test_zsa_classification(cri3_atoms, eps_p, regime):
    cm = slater_koster_collinear(cri3_atoms, exchange_splitting=3.0 if eps_p < -5 else 4.0, d_atoms="Cr",
                                 p_atoms="I", params=P_CLS, eps_p=eps_p, crystal_field=(-0.4, 0.8))
    c = classify_zsa(cm, U=3.0, n_electrons=42, nk=8)
    assert c.regime == regime and c.band_regime == regime and c.consistent
    assert c.delta == pytest.approx(0.08 - eps_p)
    assert c.edges.insulating and c.edges.gap > 0.3
    # the gap edge is dominated by the orbitals the regime names (ligand p at the VBM for charge transfer; the
    # weight depends on the octahedral geometry: 0.86 with the regular CrI6 octahedra of the prototype)
    if regime == "charge-transfer":
        assert c.vbm_character["p"] > 0.75
    else:
        assert c.vbm_character["d"] > 0.75
    txt = c.text()
    assert regime in txt and f"{c.delta:.3f}" in txt and "U = 3.000" in txt
    # the same model with a larger U becomes charge transfer, a smaller one Mott–Hubbard
    assert classify_zsa(cm, U=c.delta + 0.5, edges=False).regime == "charge-transfer"
    assert classify_zsa(cm, U=c.delta - 0.5, edges=False).regime == "Mott–Hubbard"


def test_dos_edges_and_nominal_count(sk_pair, sk_model):
    assert nominal_electron_count(sk_pair) == (24.0, 18.0)
    assert nominal_electron_count(sk_model) == 42.0
    k = kmesh(sk_model, 6)
    assert k.shape == (36, 3) and np.all(k[:, 2] == 0)
    pd = projected_dos(sk_model, sigma=0.05, k=k)
    e = pd["energy"]
    tot = np.trapezoid(pd["total"]["total"], e)
    assert tot == pytest.approx(2 * 28, rel=1e-3)
    parts = sum(v for g, v in pd["total"].items() if g != "total")
    assert np.allclose(parts, pd["total"]["total"], atol=1e-10)
    assert np.trapezoid(pd["total"]["Cr d"], e) == pytest.approx(20, rel=1e-3)
    E = sk_model.eigenvalues(k)
    be = band_edges(sk_model, n_electrons=40, k=k)
    s = np.sort(E.ravel())
    assert be.vbm == pytest.approx(s[20 * 36 - 1]) and be.cbm == pytest.approx(s[20 * 36])
    be2 = band_edges(sk_model, fermi_energy=0.5 * (be.vbm + be.cbm), k=k)
    assert be2.vbm == pytest.approx(be.vbm) and be2.cbm == pytest.approx(be.cbm)
    ch = edge_character(sk_pair, window=0.05, k=k, n_electrons=42)
    assert ch["vbm"]["d"] + ch["vbm"]["p"] == pytest.approx(1.0)
    d = dos(np.array([[0.0]]), np.array([0.0]), sigma=0.1)
    assert d[0] == pytest.approx(1 / (0.1 * np.sqrt(2 * np.pi)))


def test_cli_json_and_plots(tmp_path, sk_pair, capsys):
    write_w90_model(sk_pair.up, tmp_path / "cri3_up", mp_grid=(3, 3, 1))
    write_w90_model(sk_pair.down, tmp_path / "cri3_dn", mp_grid=(3, 3, 1))
    assert main(["tb", str(tmp_path), "--json", "--nelect", "42", "--U", "3", "--plot", str(tmp_path / "p")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "collinear" and out["num_wann"] == 28
    cf = out["crystal_field"][0]
    assert cf["ten_dq"] == pytest.approx(0.4, abs=1e-9) and cf["ten_dq_cluster"] > cf["ten_dq"]
    assert out["classification"]["regime"] == "charge-transfer"
    assert {b["kind"] for b in out["bonds"]} >= {"1NN", "M-X"}
    for name in ("bands.png", "pdos.png", "crystal_field.png"):
        assert (tmp_path / "p" / name).stat().st_size > 1000
    assert main(["tb", str(tmp_path), "--nelect", "42"]) == 0
    txt = capsys.readouterr().out
    assert "10Dq" in txt and "ZSA classification: charge-transfer" in txt


def test_fermi_energy_from_win_and_snapping(tmp_path, cri3_atoms):
    """A DFT Fermi energy just inside a band edge of the Wannier bands still gives the insulating occupation."""
    cm = slater_koster_collinear(cri3_atoms, exchange_splitting=4.0, d_atoms="Cr", p_atoms="I", params=P_CLS,
                                 eps_p=-1.0, crystal_field=(-0.4, 0.8))
    k = kmesh(cm, 8)
    ref = band_edges(cm, n_electrons=42, k=k)
    for ef in (ref.vbm - 0.01, ref.cbm + 0.02, 0.5 * (ref.vbm + ref.cbm)):
        b = band_edges(cm, fermi_energy=ef, k=k)
        assert b.insulating and b.gap == pytest.approx(ref.gap) and b.n_electrons == 42
    metal = band_edges(cm, fermi_energy=ref.vbm - 0.01, k=k, snap=False)
    assert not metal.insulating and metal.gap == 0.0
    # fermi_energy keyword of the .win is used when no count is given
    write_w90_model(cm.up, tmp_path / "x_up", mp_grid=(3, 3, 1), extra={"fermi_energy": f"{ref.vbm - 0.01:.6f}"})
    write_w90_model(cm.down, tmp_path / "x_dn", mp_grid=(3, 3, 1), extra={"fermi_energy": f"{ref.vbm - 0.01:.6f}"})
    from wannmag.tightbinding import read_w90

    m = read_w90(tmp_path)
    b = band_edges(m, k=k)
    assert "fermi_energy of the .win file" in b.source and b.insulating and b.n_electrons == 42
