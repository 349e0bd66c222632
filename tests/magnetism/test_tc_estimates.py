"""Analytic T_c estimates and quantum corrections (wannmag.magnetism.tc_estimates): the Torelli–Olsen formula's
limits and a printed number, the package→Torelli–Olsen converter, the gauge map of the Néel state, the spin
stiffness against the LSWT dispersion, the quantum RPA ratio (S+1)/S, the coherent-state S_z² behind the single-ion
conversion, the El Mendili–Zhitomirsky mapped model, round trips."""

import math

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.anisotropy.lswt import SpinWaves
from wannmag.magnetism.spinmodel import MEV_PER_K
from wannmag.magnetism.tc_estimates import (ISING_TC_REDUCED, RG_NOT_IMPLEMENTED, QuantumTcResult, TcEstimateError,
                                            TorelliOlsenResult,
                                            coherent_state_sz2, gauge_to_ferromagnet, package_to_torelli_olsen,
                                            quantum_corrected_tc, quantum_mapped_model, tc_estimates,
                                            torelli_olsen_estimate, torelli_olsen_f, torelli_olsen_tc)
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells

S = 1.5


def honeycomb(J1, A_axis, J2=0.0, S=S):
    """NN (and 2NN) isotropic honeycomb, uniaxial single-ion A_zz − A_xx = A_axis (package convention)."""
    sub = find_magnetic_sites(cri3_monolayer())
    model = SpinModel.from_sublattice(sub)
    shells = neighbour_shells(sub, 2)
    for b in shells[0].bonds:
        model.add_bond(b.i, b.j, b.R, J1)
    if J2:
        for b in shells[1].bonds:
            model.add_bond(b.i, b.j, b.R, J2)
    model.single_ion = [np.diag([0.0, 0.0, A_axis])] * 2
    for s in model.sites:
        s.spin = S
    return model


def test_ising_tc_values_are_the_exact_ones():
    assert ISING_TC_REDUCED[3] == pytest.approx(1.5186514, rel=1e-7)   # honeycomb
    assert ISING_TC_REDUCED[4] == pytest.approx(2.2691853, rel=1e-7)   # square
    assert ISING_TC_REDUCED[6] == pytest.approx(3.6409569, rel=1e-7)   # triangular


def test_torelli_olsen_limits():
    J = 2.0
    # Ising limit: x → ∞ gives T_c^Ising = t_I S² J / k_B
    assert torelli_olsen_tc(J, -1e9, S) == pytest.approx(ISING_TC_REDUCED[3] * S**2 * J / MEV_PER_K, rel=1e-9)
    # isotropic limit: no T_c (Mermin–Wagner)
    assert torelli_olsen_tc(J, 0.0, S) == 0.0
    # monotonic in the anisotropy; small x: f ≈ (6γx/N)^{1/4}
    x = np.logspace(-4, 2, 30)
    f = torelli_olsen_f(x)
    assert np.all(np.diff(f) > 0) and f[-1] < 1
    assert torelli_olsen_f(1e-6) == pytest.approx((2 * 0.033e-6) ** 0.25, rel=1e-4)
    with pytest.raises(TcEstimateError):
        torelli_olsen_tc(-1.0, -0.1, S)      # antiferromagnetic J in their convention
    with pytest.raises(TcEstimateError):
        torelli_olsen_tc(1.0, +0.1, S)       # easy plane


def test_torelli_olsen_printed_cri3_number():
    # GPAW summer school (summerschool24/magnetism/magnetism1.py), citing 2D Mater. 6, 015028 (2019):
    # "J = 3.1 meV and A = −0.38 meV, which results in T_c = 37 K" (S = 3/2, N = 3; their T0 = 1.52)
    assert round(torelli_olsen_tc(3.1, -0.38, 1.5, 3)) == 37
    # with their rounded t_I = 1.52 the same formula evaluated independently
    t = 1.52 * 1.5**2 * 3.1 / MEV_PER_K * math.tanh(2 * math.log(1 + 0.033 * 0.38 / 3.1)) ** 0.25
    assert torelli_olsen_tc(3.1, -0.38, 1.5, 3) == pytest.approx(t * ISING_TC_REDUCED[3] / 1.52, rel=1e-12)


def test_converter_from_package_convention():
    # package: S·A·S with A = diag(a, a, c), J > 0 AF each bond once
    J_TO, A_TO = package_to_torelli_olsen(-2.5, np.diag([0.1, 0.1, -0.2]))
    assert J_TO == 2.5 and A_TO == pytest.approx(-0.3)
    # the per-ion energy difference of the package (E_in − E_out) is −A_TO S²; the FM–Néel difference per ion
    # is 3 J_TO S² (their J = ΔE/(3S²)) — evaluate both on the model
    m = honeycomb(-2.5, -0.3)
    up, inp = np.array([[0, 0, S], [0, 0, S]]), np.array([[S, 0, 0], [S, 0, 0]])
    neel = np.array([[0, 0, S], [0, 0, -S]])
    assert (m.energy(inp) - m.energy(up)) / 2 == pytest.approx(-(-0.3) * S**2)
    assert (m.energy(neel) - m.energy(up)) / 2 == pytest.approx(3 * 2.5 * S**2)


def test_estimate_reduces_to_the_formula_for_nn_single_ion_model():
    m = honeycomb(-2.0, -0.2)
    res = torelli_olsen_estimate(m, "FM")
    assert res.J_eff_meV == pytest.approx(2.0, rel=1e-10)
    assert res.A_eff_meV == pytest.approx(-0.2, rel=1e-8)
    assert res.tc_K == pytest.approx(torelli_olsen_tc(2.0, -0.2, S), rel=1e-8)
    assert not res.gauge_transformed and res.x == pytest.approx(0.1)
    back = TorelliOlsenResult.from_dict(res.as_dict())
    assert back == res


def test_neel_maps_to_the_ferromagnet_classically():
    fm, af = honeycomb(-2.0, -0.2), honeycomb(+2.0, -0.2)
    r_fm, r_af = torelli_olsen_estimate(fm, "FM"), torelli_olsen_estimate(af, "Neel")
    assert r_af.gauge_transformed and r_af.tc_K == pytest.approx(r_fm.tc_K, rel=1e-8)
    # the gauge-transformed model has the same energy for every configuration mapped by S_j → σ_j S_j
    g = gauge_to_ferromagnet(af, [1, -1])
    rng = np.random.default_rng(3)
    s = rng.normal(size=(2, 3))
    s *= S / np.linalg.norm(s, axis=1)[:, None]
    assert af.energy(s) == pytest.approx(g.energy(s * np.array([[1], [-1]])), abs=1e-12)
    # a frustrating AF J2 (same sublattice) lowers J_eff: J_eff = (1/3) Σ_bonds/cell (−J σσ) r²/d²
    r2 = torelli_olsen_estimate(honeycomb(+2.0, -0.2, J2=0.1), "Neel")
    assert r2.J_eff_meV == pytest.approx((3 * 2.0 - 6 * 0.1 * 3) / 3, rel=1e-8)


def test_stiffness_is_the_curvature_of_the_lswt_dispersion():
    m = honeycomb(-2.0, -0.15, J2=-0.3)              # FM J1 + J2
    sw = SpinWaves(m, pattern=[1, 1])
    rho = sw.stiffness()["rho_meV_A2"]
    d = min(m.bond_length(b) for b in m.bonds)
    assert rho == pytest.approx(0.75 * S**2 * d**2 * (2.0 + 0.3 * 3 * 6 / 3), rel=1e-10)
    # ħω(k) − Δ = (ρ/S) k² at small k, independent evaluation from M(k)
    gap = sw.gap()
    for direction in ([1, 0, 0], [1, 1, 0]):
        kf = 1e-3 * np.asarray(direction, float)
        kc = 2 * np.pi * kf @ np.linalg.inv(m.cell).T
        e = sw.energies([kf])[0, 0] - gap
        assert e == pytest.approx(rho / S * (kc @ kc), rel=1e-4)


def test_not_applicable_cases_are_reasons_not_numbers():
    res = torelli_olsen_estimate(honeycomb(-2.0, +0.2), "FM")     # easy plane: spins in plane, no gap
    assert res.tc_K is None and "gap" in res.reason


def test_quantum_rpa_is_s_plus_one_over_s_times_classical():
    for spin in (0.5, 1.0, 1.5, 2.5):
        res = SpinWaves(honeycomb(-2.0, -0.1, S=spin), pattern=[1, 1]).tc_rpa(tol=1e-4)
        assert res.tc_quantum / res.tc_classical == pytest.approx((spin + 1) / spin, rel=1e-12)


@pytest.mark.parametrize("spin", [0.5, 1.0, 1.5, 2.0, 3.5])
def test_coherent_state_sz2(spin):
    for th in (0.0, 0.4, math.pi / 2, 2.0):
        assert coherent_state_sz2(spin, th) == pytest.approx(spin * (spin - 0.5) * math.cos(th)**2 + spin / 2,
                                                             abs=1e-12)


def test_mapped_model_parameters():
    m = honeycomb(-2.0, -0.2)
    m.set_dipolar_single_ion([np.diag([0.0, 0.0, -0.01])] * 2, {"source": "test"})
    q = quantum_mapped_model(m)
    X = S * (S + 1)
    assert q.spins == pytest.approx([math.sqrt(X)] * 2)
    # exchange energy scale J S(S+1), field would be g μB B √(S(S+1)): spin lengths carry it
    assert [b.J_iso for b in q.bonds] == pytest.approx([b.J_iso for b in m.bonds])
    # intrinsic single-ion: × S/(S−½) (product-state → quantum D) × [S(S+1) − 3/4]/S(S+1) (D_C); dipolar unchanged
    c = S / (S - 0.5) * (X - 0.75) / X
    assert c == pytest.approx(1.2)
    assert q.single_ion_dipolar[0][2, 2] == pytest.approx(-0.01)
    A_int = m.single_ion_intrinsic[0]
    assert (q.single_ion_intrinsic[0] - np.trace(A_int) / 3 * np.eye(3)) == pytest.approx(
        c * (A_int - np.trace(A_int) / 3 * np.eye(3)))
    # classical energy of the mapped model for unit vectors: J_C n·n with J_C = J S(S+1), D_C n_z² per the rule
    n_up = np.array([[0, 0, 1.0], [0, 0, 1.0]])
    n_in = np.array([[1.0, 0, 0], [1.0, 0, 0]])
    dE = (q.energy(n_in * math.sqrt(X)) - q.energy(n_up * math.sqrt(X))) / 2
    D_q = -0.2 * S / (S - 0.5)                                          # quantum D from product states
    assert dE == pytest.approx(-(D_q * (X - 0.75)) + 0.01 * X, rel=1e-12)
    # S = 1/2: S_z² is a constant, the single-ion term goes
    half = quantum_mapped_model(honeycomb(-2.0, -0.2, S=0.5))
    assert np.allclose(half.single_ion_intrinsic[0] - np.trace(half.single_ion_intrinsic[0]) / 3 * np.eye(3), 0)


def test_quantum_corrected_tc_ratio():
    m = honeycomb(-2.0, -0.2)
    res = quantum_corrected_tc(m, tc_classical_K=50.0, order="FM")
    # the exchange part alone is (S+1)/S; the anisotropy is stronger by 1.2 in the mapped model → a bit more
    assert res.exchange_factor == pytest.approx(5 / 3)
    assert res.ratio == res.ratio_rpa and 5 / 3 < res.ratio < 5 / 3 * 1.2 ** 0.5
    assert res.ratio_torelli_olsen == pytest.approx(
        5 / 3 * torelli_olsen_f(1.2 * 0.1) / torelli_olsen_f(0.1), rel=1e-6)
    assert res.tc_quantum_K == pytest.approx(50.0 * res.ratio)
    # without anisotropy change (quantum D given, S large) the ratio tends to the exchange factor
    q = quantum_corrected_tc(honeycomb(-2.0, -0.2, S=20.0), order="FM", single_ion="quantum")
    assert q.ratio == pytest.approx(21 / 20, rel=2e-3) and q.tc_quantum_K is None
    assert QuantumTcResult.from_dict(res.as_dict()) == res


def test_tc_estimates_bundle_stores_reasons():
    d = tc_estimates(honeycomb(2.0, -0.2), "Neel", tc_classical_K=100.0)
    assert d["rg_estimate"]["tc_K"] is None and d["rg_estimate"]["reason"] == RG_NOT_IMPLEMENTED
    assert "not reachable" in RG_NOT_IMPLEMENTED
    assert d["torelli_olsen"]["tc_K"] > 0 and d["quantum_mapping"]["tc_quantum_K"] > 100.0
    assert d["rpa"]["Tc_RPA_quantum_K"] / d["rpa"]["Tc_RPA_classical_K"] == pytest.approx(5 / 3)


def test_rg_ingredients_of_the_neel_state():
    """The stored RG ingredients (the estimate itself is not implemented): the gap of the gauge-transformed FM is the
    NN FM + single-ion gap 2S(A_xx − A_zz) exactly, the Néel gap is larger (exchange-enhanced), and ρ_s per area is
    ρ per site × sites / area with ρ = ¾ |J| S² d² (honeycomb NN)."""
    m = honeycomb(2.0, -0.2)
    d = tc_estimates(m, "Neel")
    ing = d["rg_estimate"]["ingredients"]
    assert ing["gap_gauge_fm_meV"] == pytest.approx(2 * S * 0.2, rel=1e-6)
    assert ing["gap_meV"] > 3 * ing["gap_gauge_fm_meV"]
    d1 = min(m.bond_length(b) for b in m.bonds)
    area = float(np.linalg.norm(np.cross(m.cell[0], m.cell[1])))
    assert ing["rho_s_meV"] == pytest.approx(0.75 * 2.0 * S**2 * d1**2 * 2 / area, rel=1e-10)
