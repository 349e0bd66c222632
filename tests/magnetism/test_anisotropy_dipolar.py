"""Dipolar (shape) anisotropy: 2D Ewald lattice sums against exact values and brute force, sign checks."""

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy.dipolar import (DIPOLAR_MEV, DipolarError, add_dipolar, dipolar_anisotropy,
                                                  dipolar_bonds, lattice_sum_r3, lattice_tensors_direct,
                                                  lattice_tensors_ewald, lattice_tensors_extrapolated, pair_picture)
from wannmag.structures import cri3_monolayer, vps3_monolayer

SQUARE = [[1.0, 0.0], [0.0, 1.0]]
TRIANGULAR = [[1.0, 0.0], [0.5, np.sqrt(3) / 2]]

# exact: Σ' r^-3 on the unit square lattice = 4 ζ(3/2) β(3/2) (Dirichlet beta); mpmath-free values
ZETA_3_2 = 2.612375348685488
BETA_3_2 = 0.8645026534612020  # Σ_{n≥0} (−1)^n (2n+1)^(−3/2)
TRIANGULAR_SUM = 11.0341757349  # this module's Ewald value (unit spacing), cross-checked by brute force below


def test_constant_from_codata():
    # (μ0/4π) μB² / Å³ = 1e-7 · (9.2740100657e-24)² / 1e-30 J = 8.6007e-24 J = 0.0536815 meV
    assert DIPOLAR_MEV == pytest.approx(1e-7 * 9.2740100657e-24 ** 2 / 1e-30 / 1.602176634e-22, rel=1e-9)
    assert DIPOLAR_MEV == pytest.approx(0.0536815, abs=1e-7)


def test_square_lattice_sum_is_exact():
    exact = 4 * ZETA_3_2 * BETA_3_2
    assert exact == pytest.approx(9.0336217, abs=1e-7)
    assert lattice_sum_r3(SQUARE) == pytest.approx(exact, abs=1e-9)
    assert lattice_sum_r3(SQUARE, "direct", rcut=150) == pytest.approx(exact, abs=1e-4)
    assert lattice_sum_r3(SQUARE, "extrapolated", rcut=200) == pytest.approx(exact, abs=1e-4)


def test_triangular_lattice_sum_ewald_vs_brute_force():
    ew = lattice_sum_r3(TRIANGULAR)
    assert ew == pytest.approx(TRIANGULAR_SUM, abs=1e-9)
    assert lattice_sum_r3(TRIANGULAR, "direct", rcut=150) == pytest.approx(ew, abs=1e-4)
    assert lattice_sum_r3(TRIANGULAR, "extrapolated", rcut=200) == pytest.approx(ew, abs=1e-4)
    # scaling: a lattice of spacing a gives Σ/a³; a rotated lattice gives the same sum
    th = 0.3
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    assert lattice_sum_r3(2.0 * np.array(TRIANGULAR) @ rot.T) == pytest.approx(ew / 8, abs=1e-10)


def test_ewald_independent_of_splitting_and_buckled_layer_matches_brute_force():
    cell = np.array([[3.0, 0, 0], [-1.5, 2.6, 0], [0, 0, 20.0]])
    pos = np.array([[0, 0, 0.0], [1.5, 0.866, 0.7], [0.2, 1.7, -0.4]])  # buckled, three sites
    W1 = lattice_tensors_ewald(cell, pos, alpha=0.4)
    W2 = lattice_tensors_ewald(cell, pos, alpha=1.1)
    assert np.allclose(W1, W2, atol=1e-10)
    W_inf, W_tc, _ = lattice_tensors_extrapolated(cell, pos, rcut=300.0)
    assert np.allclose(W1, W_tc, atol=2e-5)
    assert np.allclose(W1, W_inf, atol=2e-5)
    # symmetric tensors, W_ij = W_ji, traceless for i ≠ j (Laplace: ∇²(1/r) = 0 away from r = 0)
    assert np.allclose(W1, np.transpose(W1, (1, 0, 3, 2)))
    assert abs(np.trace(W1[0, 1])) < 1e-10


@pytest.mark.parametrize("order", ["FM", "Neel", "zigzag", "stripy"])
def test_honeycomb_orders_ewald_equals_brute_force(order):
    ew = dipolar_anisotropy(cri3_monolayer(), order)
    bf = dipolar_anisotropy(cri3_monolayer(), order, method="direct", rcut=150 * 7.0)
    ex = dipolar_anisotropy(cri3_monolayer(), order, method="extrapolated", rcut=150 * 7.0)
    for other in (bf, ex):
        assert np.allclose(ew.tensor, other.tensor, atol=1e-7)  # meV per ion (values ~1e-2)
    # a planar layer: E_x + E_y + E_out = trace = 0 for every order
    assert ew.E_x + ew.E_y + ew.E_out == pytest.approx(0.0, abs=1e-12)


def test_fm_prefers_in_plane_neel_out_of_plane_pair_picture():
    m = 3.0  # g S = 2 × 3/2 μB
    d = 7.0 / np.sqrt(3)
    for builder in (cri3_monolayer, vps3_monolayer):
        fm = dipolar_anisotropy(builder(), "FM")
        neel = dipolar_anisotropy(builder(), "Neel")
        assert fm.delta < 0 < neel.delta  # FM: in plane; Néel: out of plane
        # FM layer is isotropic in plane (three-fold axis); in-plane mean = −E_out/2 for a planar layer
        assert fm.E_x == pytest.approx(fm.E_y, abs=1e-12)
        assert fm.E_in == pytest.approx(-fm.E_out / 2, abs=1e-12)
    # the pair picture with the three nearest neighbours alone: same signs, same 3/2 ratio of E_in − E_out to E_out
    e_out, e_in = pair_picture(m, d, 3, parallel=True)
    assert e_in - e_out == pytest.approx(-1.5 * e_out)
    assert e_in - e_out < 0
    e_out, e_in = pair_picture(m, d, 3, parallel=False)
    assert e_in - e_out > 0
    # nearest-neighbour truncation through the spin-model route reproduces the pair picture exactly
    fm_model = _honeycomb_model(cri3_monolayer())
    nn = dipolar_bonds(fm_model, cutoff=d + 0.01)
    assert len(nn) == 3
    E = lambda n, s: sum(s[i] * s[j] * (1.5 * n) @ J @ (1.5 * n) for i, j, R, J in nn) / 2  # noqa: E731
    z, x = np.array([0, 0, 1.0]), np.array([1.0, 0, 0])
    out_fm, in_fm = pair_picture(m, d, 3, parallel=True)
    assert E(z, [1, 1]) == pytest.approx(out_fm, rel=1e-12)
    assert E(x, [1, 1]) == pytest.approx(in_fm, rel=1e-12)
    assert E(z, [1, -1]) == pytest.approx(-out_fm, rel=1e-12)


def _honeycomb_model(atoms):
    from wannmag.structures import find_magnetic_sites
    return SpinModel.from_sublattice(find_magnetic_sites(atoms))


def test_numbers_cri3_vps3_per_ion():
    """Dipolar anisotropy per ion (meV) for g = 2, S = 3/2 on the shipped prototypes (documented values)."""
    vals = {(b.__name__, o): dipolar_anisotropy(b(), o).delta
            for b in (cri3_monolayer, vps3_monolayer) for o in ("FM", "Neel")}
    assert vals[("cri3_monolayer", "FM")] == pytest.approx(-0.036113, abs=2e-6)
    assert vals[("cri3_monolayer", "Neel")] == pytest.approx(0.012800, abs=2e-6)
    assert vals[("vps3_monolayer", "FM")] == pytest.approx(-0.061872, abs=2e-6)
    assert vals[("vps3_monolayer", "Neel")] == pytest.approx(0.021930, abs=2e-6)


def test_dipolar_terms_of_the_spin_model_restore_ewald():
    """Truncated bonds + the shape term reproduce the Ewald energy of the reference order for any direction."""
    model = _honeycomb_model(cri3_monolayer())
    for pattern, order in (([1, 1], "FM"), ([1, -1], "Neel")):
        ew = dipolar_anisotropy(model, None, pattern=pattern)
        for cutoff in (4.1, 12.0):
            full = add_dipolar(model, cutoff, pattern=pattern)
            for n in (np.array([0, 0, 1.0]), np.array([1.0, 0, 0]), np.array([1, 2, 3.0]) / np.sqrt(14)):
                spins = np.array(pattern)[:, None] * n
                assert full.energy(spins) / 2 == pytest.approx(n @ ew.tensor @ n, abs=1e-10)
        # without the shape term only the truncated part is there
        trunc = add_dipolar(model, 12.0, shape=False)
        assert "shape_term" not in trunc.meta["dipolar"]


def test_bad_input_one_line_errors():
    with pytest.raises(DipolarError):
        lattice_sum_r3(SQUARE, method="nonsense")
    with pytest.raises(DipolarError):
        dipolar_bonds(_honeycomb_model(cri3_monolayer()), cutoff=-1)
    with pytest.raises(DipolarError):
        lattice_tensors_ewald(np.array([[1.0, 0, 0], [2.0, 0, 0], [0, 0, 1]]), np.zeros((1, 3)))
    with pytest.raises(DipolarError):
        lattice_tensors_ewald(np.eye(3), np.zeros((2, 3)))
    with pytest.raises(Exception) as exc:
        dipolar_anisotropy(cri3_monolayer(), "spiral")
    assert "\n" not in str(exc.value)
    with pytest.raises(DipolarError):
        dipolar_anisotropy(cri3_monolayer(), "FM", method="bogus")
    assert lattice_tensors_direct(np.eye(3), np.zeros((1, 3)), 5.0).shape == (1, 1, 3, 3)
