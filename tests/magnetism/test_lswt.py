"""Linear spin-wave theory against closed forms: FM and Néel honeycomb with single-ion and XXZ anisotropy, the
Dirac point at K, and the RPA (Tyablikov) T_c against the exact square-lattice Green's function."""

import numpy as np
import pytest
from scipy import integrate
from scipy.special import ellipk

from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy.lswt import LSWTError, SpinWaves, honeycomb_gamma, spin_waves_for_order
from wannmag.magnetism.spinmodel import MEV_PER_K, Site
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

S = 1.5


def honeycomb(Jxx, Jzz, Axx, Azz):
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    for b in neighbour_shells(sub, 1)[0].bonds:
        model.add_bond(b.i, b.j, b.R, np.diag([Jxx, Jxx, Jzz]))
    model.single_ion = [np.diag([Axx, Axx, Azz])] * 2
    return model


def _nn_vectors(model):
    return np.array([model.bond_vector(b) for b in model.bonds])


def _kcart(model, kfrac):
    return 2 * np.pi * np.asarray(kfrac) @ np.linalg.inv(model.cell).T


def test_fm_honeycomb_dispersion_matches_closed_form():
    Jxx, Jzz, Axx, Azz = -2.0, -2.1, 0.0, -0.15     # FM with XXZ (λ = −0.1) and easy-axis single-ion term
    model = honeycomb(Jxx, Jzz, Axx, Azz)
    sw = SpinWaves(model, pattern=[1, 1], axis=(0, 0, 1))
    bp, E = sw.band_path("GMKG", npoints=120)
    g = np.abs(honeycomb_gamma(_kcart(model, bp.kpts), _nn_vectors(model)))
    lower = S * (-3 * Jzz - abs(Jxx) * g) + 2 * S * (Axx - Azz)
    upper = S * (-3 * Jzz + abs(Jxx) * g) + 2 * S * (Axx - Azz)
    assert np.allclose(E[:, 0], lower, atol=1e-8)
    assert np.allclose(E[:, 1], upper, atol=1e-8)
    gap = 3 * S * (Jxx - Jzz) + 2 * S * (Axx - Azz)
    assert sw.gap() == pytest.approx(gap, abs=1e-8)
    assert gap == pytest.approx(0.45 + 0.45)


def test_dirac_point_at_K():
    model = honeycomb(-2.0, -2.0, 0.0, -0.1)
    sw = SpinWaves(model, pattern=[1, 1])
    bp, _ = sw.band_path("GMKG", npoints=30)
    K = bp.special_points["K"]
    assert abs(honeycomb_gamma(_kcart(model, [K]), _nn_vectors(model))[0]) < 1e-12
    e = sw.energies([K])[0]
    assert e[1] - e[0] == pytest.approx(0.0, abs=1e-6)
    assert e[0] == pytest.approx(S * 6.0 + 2 * S * 0.1, abs=1e-8)
    # away from K the degeneracy is lifted linearly (a cone)
    d1 = np.diff(sw.energies([K + np.array([1e-3, 0, 0])])[0])[0]
    d2 = np.diff(sw.energies([K + np.array([2e-3, 0, 0])])[0])[0]
    assert d2 == pytest.approx(2 * d1, rel=1e-3)


def test_neel_honeycomb_dispersion_matches_closed_form():
    J, Azz = 1.2, -0.05
    model = honeycomb(J, J, 0.0, Azz)
    sw = SpinWaves(model, pattern=[1, -1], axis=(0, 0, 1))
    bp, E = sw.band_path("GMKG", npoints=100)
    g = np.abs(honeycomb_gamma(_kcart(model, bp.kpts), _nn_vectors(model)))
    a = 3 * S * J + 2 * S * (0.0 - Azz)
    w = np.sqrt(a ** 2 - (S * J * g) ** 2)
    assert np.allclose(E[:, 0], w, atol=1e-7)
    assert np.allclose(E[:, 1], w, atol=1e-7)
    assert sw.gap() == pytest.approx(np.sqrt(a ** 2 - 9 * S ** 2 * J ** 2), abs=1e-7)


def test_order_helper_picks_the_easy_axis_and_rejects_unstable_states():
    model = honeycomb(-2.0, -2.0, 0.0, -0.1)
    sw, axis = spin_waves_for_order(model, "FM")
    assert np.allclose(np.abs(axis), [0, 0, 1])
    # easy-plane model, spins forced along z: not a minimum
    bad = honeycomb(-2.0, -2.0, 0.0, +0.1)
    with pytest.raises(LSWTError):
        SpinWaves(bad, pattern=[1, 1], axis=(0, 0, 1)).gap()
    # a state that is not stationary (tilted against a uniaxial term)
    with pytest.raises(LSWTError) as exc:
        SpinWaves(model, pattern=[1, 1], axis=(1, 0, 1))
    assert "stationary" in str(exc.value)
    # zigzag on its rectangular supercell: four sites, four branches, stable for an AF 3rd neighbour model
    sub = find_magnetic_sites(cri3_monolayer())
    zz = SpinModel.from_sublattice(sub)
    sh = neighbour_shells(sub, 3)
    for J, shell in zip((-1.0, 0.0, 2.0), sh):
        for b in shell.bonds:
            zz.add_bond(b.i, b.j, b.R, J * np.eye(3))
    zz.single_ion = [np.diag([0, 0, -0.1])] * 2
    sw, axis = spin_waves_for_order(zz, "zigzag", axis=(0, 0, 1))
    assert sw.n == 4
    assert sw.gap() > 0


def _square_model(J, Azz, a=3.0):
    cell = np.diag([a, a, 20.0])
    m = SpinModel(cell=cell, sites=[Site(np.zeros(3), "Cr", S)])
    m.add_bond(0, 0, (1, 0, 0), J)
    m.add_bond(0, 0, (0, 1, 0), J)
    m.single_ion = [np.diag([0, 0, Azz])]
    return m


def test_rpa_tc_square_lattice_exact_green_function():
    """ħω(k) = 2S|J|(2 − cos kx − cos ky) + Δ: ⟨1/ħω⟩ = G(z)/(2S|J|), G(z) = 2K(2/z)/(πz), z = 2 + Δ/(2S|J|)."""
    J, Azz = -1.0, -0.2
    sw = SpinWaves(_square_model(J, Azz), pattern=[1])
    delta = 2 * S * abs(Azz)
    assert sw.gap() == pytest.approx(delta, abs=1e-9)
    z = 2 + delta / (2 * S * abs(J))
    G = 2 / (np.pi * z) * ellipk((2 / z) ** 2)
    mean_inv = G / (2 * S * abs(J))
    tc_exact = (S + 1) / (3 * mean_inv) / MEV_PER_K
    res = sw.tc_rpa(tol=1e-5)
    assert res.converged
    assert res.tc_quantum == pytest.approx(tc_exact, rel=1e-4)
    assert res.tc_classical == pytest.approx(tc_exact * S / (S + 1), rel=1e-4)


def test_rpa_tc_honeycomb_fm_and_neel_against_quadrature():
    fm = honeycomb(-2.0, -2.0, 0.0, -0.3)
    neel = honeycomb(1.5, 1.5, 0.0, -0.3)
    b = np.linalg.inv(fm.cell).T * 2 * np.pi
    d = _nn_vectors(fm)

    def mean(f):
        val, _ = integrate.dblquad(lambda y, x: f(x * b[0] + y * b[1]), 0, 1, 0, 1, epsabs=1e-11, epsrel=1e-9)
        return val

    def fm_integrand(k):
        g = abs(honeycomb_gamma(k, d))
        a = 3 * S * 2.0 + 2 * S * 0.3
        return 0.5 * (S / (a - 2.0 * S * g) + S / (a + 2.0 * S * g))

    def neel_integrand(k):
        g = abs(honeycomb_gamma(k, d))
        a = 3 * S * 1.5 + 2 * S * 0.3
        return S * a / (a ** 2 - (S * 1.5 * g) ** 2)

    for model, pat, f in ((fm, [1, 1], fm_integrand), (neel, [1, -1], neel_integrand)):
        res = SpinWaves(model, pattern=pat).tc_rpa(tol=2e-5)
        tc = S * (S + 1) / 3 / mean(f) / MEV_PER_K
        assert res.tc_quantum == pytest.approx(tc, rel=5e-4)


def test_gapless_heisenberg_layer_has_no_rpa_tc():
    res = SpinWaves(honeycomb(-2.0, -2.0, 0.0, 0.0), pattern=[1, 1]).tc_rpa()
    assert res.gapless and res.tc_quantum == 0.0
