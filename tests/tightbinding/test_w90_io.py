"""Reading Wannier90 models through wannierberri: agreement with wannierberri's own interpolation, Wigner–Seitz
degeneracies divided exactly once, MDRS, phase conventions, projections and orbital assignment."""

import numpy as np
import pytest
from tb_helpers import random_k, wb_interpolation, wb_system_hr

from wannmag.tightbinding import (CollinearTBModel, TBModel, make_orbitals, read_w90, read_w90_seed,
                                  write_w90_model)
from wannmag.tightbinding.w90 import check_hr_file, parse_projections, read_win


def test_bands_and_hk_equal_wannierberri(w90_dir, sk_model):
    seed = w90_dir / "cri3"
    layout = check_hr_file(str(seed) + "_hr.dat")
    assert layout.ndegen.max() > 1 and layout.ndegen.min() == 1     # a non-trivial degeneracy list
    m = read_w90_seed(seed, mdrs=False)
    k = random_k(40, seed=1, two_d=False)
    Hwb, Ewb = wb_interpolation(wb_system_hr(seed, m), k)
    assert np.abs(m.eigenvalues(k) - Ewb).max() < 1e-8
    assert np.abs(m.hk(k, convention="I") - Hwb).max() < 1e-8
    # tb.dat gives the same model
    mtb = read_w90_seed(seed, mdrs=False, prefer="tb")
    assert np.abs(mtb.hk(k) - m.hk(k)).max() < 1e-10


def test_degeneracies_divided_exactly_once(w90_dir, sk_model):
    """On the k points of the Wannier90 grid the file reproduces the original model exactly; dividing the
    boundary R vectors twice (or not at all) would not."""
    m = read_w90_seed(w90_dir / "cri3", mdrs=False)
    g = np.array([[i / 3, j / 3, 0] for i in range(3) for j in range(3)])
    assert np.abs(m.hk(g) - sk_model.hk(g)).max() < 1e-10
    layout = check_hr_file(w90_dir / "cri3_hr.dat")
    assert np.sum(1.0 / layout.ndegen) == pytest.approx(9)
    # the same file without the division on the degenerate vectors differs on the grid
    deg = layout.ndegen > 1
    wrong = m.copy()
    index = {tuple(r): i for i, r in enumerate(m.R)}
    Hwrong = m.H.copy()
    for r, nd in zip(layout.R[deg], layout.ndegen[deg]):
        Hwrong[index[tuple(r)]] *= nd
    wrong = m.copy(H=Hwrong)
    assert np.abs(wrong.hk(g) - sk_model.hk(g)).max() > 1e-2


def test_mdrs_matches_wannierberri_ws_distance(w90_dir, sk_model):
    seed = w90_dir / "cri3"
    m = read_w90_seed(seed)                           # wsvec present → MDRS applied
    assert m.mdrs_applied and m.nR > read_w90_seed(seed, mdrs=False).nR
    system = wb_system_hr(seed, m)
    from wannmag.tightbinding.w90 import _quiet

    with _quiet():
        system.do_ws_dist(mp_grid=(3, 3, 1))
    k = random_k(30, seed=2)
    _, Ewb = wb_interpolation(system, k)
    assert np.abs(m.eigenvalues(k) - Ewb).max() < 1e-8
    # MDRS interpolates the short-ranged original model better than plain WS folding
    err_mdrs = np.abs(m.eigenvalues(k) - sk_model.eigenvalues(k)).max()
    err_ws = np.abs(read_w90_seed(seed, mdrs=False).eigenvalues(k) - sk_model.eigenvalues(k)).max()
    assert err_mdrs < err_ws


def test_phase_convention_II_is_the_atomic_bloch_sum(sk_model):
    """Convention II with the atom positions equals the Bloch sum Σ_bonds exp(i k·d) t(d) over actual bond vectors;
    it has the same eigenvalues as convention I."""
    k = random_k(5, seed=3)
    H2 = sk_model.hk(k, convention="II", positions="atoms")
    kc = sk_model.to_cartesian_k(k)
    pos = sk_model.orbital_positions("atoms")
    direct = np.zeros_like(H2)
    for R, H in zip(sk_model.R, sk_model.H):
        d = R @ sk_model.lattice + pos[None, :, :] - pos[:, None, :]        # (m, n, 3)
        direct += np.exp(1j * np.einsum("ka,mna->kmn", kc, d)) * H[None]
    assert np.abs(H2 - direct).max() < 1e-10
    assert np.allclose(np.linalg.eigvalsh(H2), sk_model.eigenvalues(k), atol=1e-10)
    H1 = sk_model.hk(k)
    assert np.abs(H1 - H2).max() > 1e-3          # the gauges differ


def test_projection_order_and_labels(tmp_path):
    win = tmp_path / "x.win"
    win.write_text("""num_wann = 17
spinors = false
begin unit_cell_cart
bohr
 10.0 0 0
 0 10.0 0
 0 0 10.0
end unit_cell_cart
begin atoms_frac
 Cr1 0.0 0.0 0.0
 I   0.5 0.0 0.0
 Cr2 0.5 0.5 0.0
 I   0.0 0.5 0.0
end atoms_frac
begin projections
 Cr1: d ; s          ! l ascending: s before d
 I: pz;px
 Cr2: l=2,mr=4,1
 f=0.5,0.5,0.5: py
 I: l=1,mr=3
end projections
""")
    wd = read_win(win)
    assert wd.lattice[0, 0] == pytest.approx(5.29177210903)
    specs = parse_projections(wd)
    names = [(s.label, s.name) for s in specs]
    assert names[:6] == [("Cr1", "s"), ("Cr1", "dz2"), ("Cr1", "dxz"), ("Cr1", "dyz"), ("Cr1", "dx2-y2"),
                         ("Cr1", "dxy")]
    assert names[6:10] == [("I", "pz"), ("I", "px"), ("I", "pz"), ("I", "px")]   # both I sites, in order
    assert names[10:12] == [("Cr2", "dz2"), ("Cr2", "dx2-y2")]                  # mr ascending
    assert names[12] == (None, "py") and names[13:] == [("I", "py"), ("I", "py")]
    assert len(specs) == 15


def test_spinor_order_and_collinear_pair(tmp_path, sk_model, sk_pair):
    # spinor model: spinless model ⊗ 1 with a Zeeman term, W90 order (spin innermost)
    nw = sk_model.num_wann
    H = np.zeros((sk_model.nR, 2 * nw, 2 * nw), complex)
    for s in range(2):
        H[:, s::2, s::2] = sk_model.H
    H[list(map(tuple, sk_model.R)).index((0, 0, 0))] += np.diag([0.1, -0.1] * nw)
    orbs = make_orbitals([(o.atom, o.element, o.name) for o in sk_model.orbitals], spinor=True)
    spinor = TBModel(sk_model.R, H, sk_model.lattice, orbitals=orbs, atoms=sk_model.atoms)
    write_w90_model(spinor, tmp_path / "so", mp_grid=(3, 3, 1))
    m = read_w90_seed(tmp_path / "so")
    assert m.spinor and m.electrons_per_band == 1
    assert [(o.name, o.spin) for o in m.orbitals[:3]] == [("dz2", "up"), ("dz2", "down"), ("dxz", "up")]
    k = np.array([[i / 3, j / 3, 0] for i in range(3) for j in range(3)])   # exact on the Wannier90 grid
    E = m.eigenvalues(k)
    Es = sk_model.eigenvalues(k)
    assert np.allclose(E, np.sort(np.concatenate([Es + 0.1, Es - 0.1], axis=1), axis=1), atol=1e-9)
    # collinear pair
    (tmp_path / "pair").mkdir()
    write_w90_model(sk_pair.up, tmp_path / "pair" / "cri3_up", mp_grid=(3, 3, 1))
    write_w90_model(sk_pair.down, tmp_path / "pair" / "cri3_dn", mp_grid=(3, 3, 1))
    c = read_w90(tmp_path / "pair")
    assert isinstance(c, CollinearTBModel)
    delta = c.exchange_splitting()
    d = [i for i, o in enumerate(c.orbitals) if o.l == 2]
    p = [i for i, o in enumerate(c.orbitals) if o.l == 1]
    assert np.allclose(delta[d], -3.0) and np.allclose(delta[p], 0.0)
    assert np.allclose(c.exchange_block(0), -3.0 * np.eye(5))
    g = np.array([[i / 3, j / 3, 0] for i in range(3) for j in range(3)])
    assert np.abs(c.spin_averaged().hk(g) - sk_model.hk(g)).max() < 1e-10


def test_centre_in_another_cell_is_assigned_with_its_lattice_shift(w90_dir, sk_model):
    cfile = w90_dir / "cri3_centres.xyz"
    lines = cfile.read_text().splitlines()
    x = lines[2].split()                       # WF 1 (Cr0 dz2) moved by a1 and slightly off the atom
    c = np.array([float(v) for v in x[1:]]) + sk_model.lattice[0] + [0.1, 0.0, 0.0]
    lines[2] = f"X {c[0]:.10f} {c[1]:.10f} {c[2]:.10f}"
    cfile.write_text("\n".join(lines) + "\n")
    m = read_w90_seed(w90_dir / "cri3", mdrs=False)
    assert m.orbitals[0].atom == 0 and m.orbitals[0].cell == (1, 0, 0)
    assert m.orbitals[1].cell == (0, 0, 0)


def test_single_model_discovery_by_directory_and_file(w90_dir):
    m1 = read_w90(w90_dir)
    m2 = read_w90(w90_dir / "cri3_hr.dat")
    assert isinstance(m1, TBModel) and m1.num_wann == m2.num_wann == 28
    assert [o.element for o in m1.orbitals[:5]] == ["Cr"] * 5 and m1.orbitals[-1].element == "I"


def test_projection_axes_are_rotated_to_the_global_frame(tmp_path, sk_model):
    """Cr0's d shell written in a rotated frame (z=…, x=… in the projections) reads back as the original model."""
    from scipy.spatial.transform import Rotation

    from wannmag.tightbinding.harmonics import frame_matrix

    A = Rotation.from_euler("zyz", [0.3, 0.8, -0.2]).as_matrix()      # rows x', y', z'
    O = np.eye(sk_model.num_wann)
    O[:5, :5] = frame_matrix(2, A)
    rotated = sk_model.copy(H=np.einsum("ba,rbc,cd->rad", O, sk_model.H, O))   # H' = Oᵀ H O
    paths = write_w90_model(rotated, tmp_path / "rot", mp_grid=(3, 3, 1))
    z, x = A[2], A[0]
    text = paths["win"].read_text().replace(
        "Cr1:d", f"Cr1:d:z={z[0]:.15f},{z[1]:.15f},{z[2]:.15f}:x={x[0]:.15f},{x[1]:.15f},{x[2]:.15f}")
    g = np.array([[i / 3, j / 3, 0] for i in range(3) for j in range(3)])
    plain = read_w90_seed(tmp_path / "rot", mdrs=False)           # default axes: the rotated H as written
    assert np.abs(plain.hk(g) - rotated.hk(g)).max() < 1e-9
    paths["win"].write_text(text)
    m = read_w90_seed(tmp_path / "rot", mdrs=False)
    assert np.abs(m.hk(g) - sk_model.hk(g)).max() < 1e-9
    assert np.abs(m.hk(g) - plain.hk(g)).max() > 1e-2


def test_to_wannierberri_round_trip(sk_model):
    from tb_helpers import wb_interpolation

    from wannmag.tightbinding import to_wannierberri

    k = random_k(10, seed=8)
    H, E = wb_interpolation(to_wannierberri(sk_model), k)
    assert np.abs(H - sk_model.hk(k)).max() < 1e-12 and np.abs(E - sk_model.eigenvalues(k)).max() < 1e-10
