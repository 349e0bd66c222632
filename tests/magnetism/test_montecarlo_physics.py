"""Monte Carlo physics against exact results (issue 7).

Convention throughout: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of
length S, J > 0 antiferromagnetic, meV; temperatures in K (k_B = 0.08617333262 meV/K).
"""

import math

import numpy as np
import pytest

from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import (MCSettings, build_lattice, ground_state, ordering_temperature,
                                          parallel_tempering)
from wannmag.magnetism.montecarlo.kernels import metropolis_sweep, overrelax_sweep, seed_states
from wannmag.magnetism.spinmodel import MEV_PER_K as KB

ISING_TC = 2.0 / math.log(2.0 + math.sqrt(3.0))  # honeycomb Ising k_B Tc / |J| (σ = ±1)
HEX = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])


def honeycomb(J1, J2=0.0, J3=0.0, S=1.0, A=None, field=None):
    """Honeycomb model in the wannmag convention, J1..J3 scalars or 3×3 (meV)."""
    pos = [np.array([2 / 3, 1 / 3, 0]) @ HEX, np.array([1 / 3, 2 / 3, 0]) @ HEX]
    m = SpinModel(cell=HEX, sites=[Site(p, "X", S) for p in pos], pbc=(True, True, False),
                  single_ion=[A if A is not None else np.zeros((3, 3))] * 2,
                  b_field=field if field is not None else np.zeros(3))
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, J1)
    if np.any(J2):
        for i in (0, 1):
            for R in [(1, 0, 0), (1, 1, 0), (0, 1, 0)]:
                m.add_bond(i, i, R, J2)
    if np.any(J3):
        for R in [(1, 1, 0), (-1, -1, 0), (1, -1, 0)]:
            m.add_bond(0, 1, R, J3)
    return m


def langevin(x):
    return 1.0 / np.tanh(x) - 1.0 / x


# ------------------------------------------------------------------------------------------ lattice and energies
def test_lattice_energy_equals_spinmodel_supercell_energy():
    rng = np.random.default_rng(0)
    Jgen = rng.normal(size=(3, 3))
    m = honeycomb(Jgen, J2=np.diag([-0.3, -0.3, -0.4]), J3=0.2, S=1.5, A=np.diag([0.1, 0.0, -0.3]),
                  field=np.array([0.0, 1.0, 2.0]))
    lat = build_lattice(m, (3, 3))
    big, _ = m.supercell((3, 3, 1))
    assert lat.mode == 2 and lat.n_sites == big.n_sites
    for _ in range(3):
        v = rng.normal(size=(lat.n_sites, 3))
        s = v / np.linalg.norm(v, axis=1)[:, None] * 1.5
        assert lat.energy(s) == pytest.approx(big.energy(s), rel=1e-12, abs=1e-9)


def test_fast_paths_and_self_images():
    assert build_lattice(honeycomb(1.0, 0.2), 4).mode == 0
    assert build_lattice(honeycomb(np.diag([1.0, 1.0, 1.2])), 4).mode == 1
    # a 1×1 periodic cell: 2NN bonds wrap onto the same site and become a constant single-ion term
    m = honeycomb(-1.0, -0.5, S=1.5)
    lat = build_lattice(m, 1)
    s = np.array([[0, 0, 1.5], [0, 0, 1.5]])
    assert lat.energy(s) == pytest.approx(m.energy(s))


def test_overrelaxation_conserves_energy_with_dmi_anisotropic_exchange_and_field():
    """The site energy is linear in S_i for any exchange tensor and the Zeeman term, so the reflection about the
    local field is microcanonical; sites with a single-ion term are left alone."""
    rng = np.random.default_rng(1)
    J1 = np.array([[1.0, 0.3, -0.2], [-0.3, 0.8, 0.1], [0.2, -0.1, 1.1]])
    m = honeycomb(J1, J2=-0.2, S=1.5, field=np.array([0.3, 0.0, 1.0]))
    lat = build_lattice(m, 4)
    v = rng.normal(size=(lat.n_sites, 3))
    s = v / np.linalg.norm(v, axis=1)[:, None] * 1.5
    e0 = lat.energy(s)
    s_or = s.copy()
    overrelax_sweep(s_or, lat.ptr, lat.nbr, lat.Jiso, lat.Jd, lat.Jf, lat.mode, lat.orok, lat.zee)
    assert np.abs(s_or - s).max() > 0.1
    assert lat.energy(s_or) == pytest.approx(e0, rel=1e-11, abs=1e-10)
    assert np.allclose(np.linalg.norm(s_or, axis=1), 1.5)
    m2 = honeycomb(1.0, S=1.5, A=np.diag([0, 0, -0.2]))
    lat2 = build_lattice(m2, 3)
    assert not lat2.orok.any()
    s2 = s[:lat2.n_sites].copy()
    overrelax_sweep(s2, lat2.ptr, lat2.nbr, lat2.Jiso, lat2.Jd, lat2.Jf, lat2.mode, lat2.orok, lat2.zee)
    assert np.array_equal(s2, s[:lat2.n_sites])


def test_cone_adapts_to_half_acceptance():
    m = honeycomb(-1.0, S=1.5, A=np.diag([0, 0, -0.1]))
    lat = build_lattice(m, 4)
    st = MCSettings(tmin=2.0, tmax=30.0, n_replicas=4, n_sweeps=10, n_therm=600, seed=2)
    r = parallel_tempering(lat, st)
    assert r.cone_angle[0] < 1.5 and r.cone_angle[-1] > r.cone_angle[0]
    # measure the acceptance of the frozen cone at the lowest temperature
    s = np.zeros((lat.n_sites, 3))
    s[:, 2] = 1.5
    rng = seed_states(5, 1)[0]
    args = lat.kernel_args()
    beta = 1.0 / (KB * r.temperatures[0])
    for _ in range(50):
        metropolis_sweep(s, rng, beta, math.cos(r.cone_angle[0]), *args[:8], args[9], args[10])
    acc = sum(metropolis_sweep(s, rng, beta, math.cos(r.cone_angle[0]), *args[:8], args[9], args[10])[0]
              for _ in range(100)) / (100 * lat.n_sites)
    assert 0.35 < acc < 0.65


# ------------------------------------------------------------------------------------------ exact classical results
def _dimer(J, S):
    m = SpinModel(cell=np.diag([3.0, 10.0, 10.0]), sites=[Site(np.zeros(3), "X", S), Site(np.array([1.5, 0, 0]), "X", S)],
                  pbc=(False, False, False))
    m.add_bond(0, 1, (0, 0, 0), J)
    return m


@pytest.mark.parametrize("J", [+1.0, -1.0])
def test_classical_dimer_langevin(J):
    """H = J S1·S2 (J > 0 AF): ⟨S1·S2⟩/S² = −sign(J) L(β|J|S²), L(x) = coth x − 1/x."""
    S = 1.5
    lat = build_lattice(_dimer(J, S), 1)
    T = np.array([0.5, 1.0, 2.0, 4.0]) * abs(J) * S * S / KB
    r = parallel_tempering(lat, MCSettings(tmin=1, tmax=2, ladder=list(T), n_sweeps=40000, n_therm=1000, seed=3))
    e, err = r.observables["energy"]
    corr = 2 * e / (J * S * S)  # ⟨S1·S2⟩/S² from E = J ⟨S1·S2⟩ = 2 e
    corr_err = 2 * err / (abs(J) * S * S)
    exact = -np.sign(J) * langevin(abs(J) * S * S / (KB * T))
    z = (corr - exact) / corr_err
    assert np.all(np.abs(z) < 4.0), (corr, exact, corr_err)
    assert np.all(corr_err < 0.01)
    assert np.sign(corr[0]) == -np.sign(J)


@pytest.mark.parametrize("J", [+2.0, -2.0])
def test_open_heisenberg_chain_energy_per_bond(J):
    """Open classical chain, H = J Σ S_i·S_{i+1}: the bonds are independent, ⟨E⟩ per bond = −|J| S² L(β|J|S²)."""
    S, n = 1.0, 12
    m = SpinModel(cell=np.diag([2.0, 10.0, 10.0]), sites=[Site(np.zeros(3), "X", S)], pbc=(False, False, False))
    m.add_bond(0, 0, (1, 0, 0), J)
    lat = build_lattice(m, (n, 1, 1))
    assert lat.n_sites == n and len(lat.nbr) == 2 * (n - 1)  # open: 11 bonds
    T = np.array([0.3, 1.0, 3.0]) * abs(J) * S * S / KB
    r = parallel_tempering(lat, MCSettings(tmin=1, tmax=2, ladder=list(T), n_sweeps=20000, n_therm=1000, seed=4))
    e, err = r.observables["energy"]
    per_bond, per_bond_err = e * n / (n - 1), err * n / (n - 1)
    exact = -abs(J) * S * S * langevin(abs(J) * S * S / (KB * T))
    assert np.all(np.abs(per_bond - exact) < 4 * per_bond_err + 1e-9), (per_bond, exact, per_bond_err)
    assert np.all(per_bond_err < 0.02 * abs(J))


def test_parallel_tempering_detailed_balance_two_spin_ising():
    """Two Ising spins, H = J S² σ1σ2: every replica samples the exact Boltzmann weights, and the measured swap
    acceptance equals Σ p_k(E) p_{k+1}(E') min(1, e^{(β_k−β_{k+1})(E−E')}) (the stationary joint distribution of
    the replica-exchange chain is the product of the Boltzmann distributions)."""
    J, S = 1.0, 1.0
    lat = build_lattice(_dimer(J, S), 1)
    T = np.array([0.4, 0.7, 1.2, 2.0, 3.5]) / KB
    st = MCSettings(tmin=1, tmax=2, ladder=list(T), n_sweeps=60000, n_therm=500, ising=True, seed=5)
    r = parallel_tempering(lat, st)
    beta = 1.0 / (KB * T)
    levels = np.array([-J * S * S, J * S * S])  # antiparallel, parallel
    p = np.exp(-np.outer(beta, levels))
    p /= p.sum(axis=1, keepdims=True)
    e, err = r.observables["energy"]
    exact_e = (p @ levels) / 2  # per site
    assert np.all(np.abs(e - exact_e) < 4 * err + 1e-12), (e, exact_e, err)
    n_att = 60000 // 2
    for k in range(len(T) - 1):
        d = beta[k] - beta[k + 1]
        a = sum(p[k, x] * p[k + 1, y] * min(1.0, math.exp(d * (levels[x] - levels[y])))
                for x in range(2) for y in range(2))
        sigma = math.sqrt(a * (1 - a) / n_att)
        assert abs(r.swap_acceptance[k] - a) < 6 * sigma, (k, r.swap_acceptance[k], a)


# ------------------------------------------------------------------------------------------ ground states
@pytest.mark.parametrize("J, name, counts", [
    ((-1.0, 0.0, 0.0), "FM", (1.5, 3, 1.5)),
    ((1.0, 0.0, 0.0), "Neel", (-1.5, 3, -1.5)),
    ((-1.0, 0.0, 1.0), "zigzag", (0.5, -1, -1.5)),
    ((1.0, 0.0, -1.0), "stripy", (-0.5, -1, 1.5)),
])
def test_annealed_ground_state_patterns(J, name, counts):
    """Collinear orders of the Ising J1–J3 honeycomb (per-site bond counts of wannmag.structures.configurations):
    E/site = S² Σ J_n c_n, and the pattern σ reproduces the counts."""
    S = 1.5
    m = honeycomb(*J, S=S)
    lat = build_lattice(m, 4)
    gs = ground_state(lat, ising=True, seed=1)
    assert gs.energy_per_site == pytest.approx(S * S * np.dot(J, counts), abs=1e-9)
    assert gs.collinearity == pytest.approx(1.0)
    # Q of the ground state is 1 by construction; |M| is 1 only for FM
    q = np.abs(gs.pattern @ (gs.spins[:, 2] / S)) / lat.n_sites
    mz = abs(gs.spins[:, 2].sum() / S) / lat.n_sites
    assert q == pytest.approx(1.0)
    assert mz == pytest.approx(1.0 if name == "FM" else 0.0, abs=1e-12)


def test_heisenberg_zigzag_ground_state_with_easy_axis():
    S = 1.5
    m = honeycomb(-1.0, 0.0, 1.0, S=S, A=np.diag([0, 0, -0.2]))
    lat = build_lattice(m, 4)
    gs = ground_state(lat, seed=0)
    assert gs.energy_per_site == pytest.approx(S * S * (-0.5 - 1.5) - 0.2 * S * S, rel=1e-6)
    assert gs.collinearity > 0.999 and abs(gs.pattern.sum()) == 0


# ------------------------------------------------------------------------------------------ Ising Tc
def _ising_tc(sizes, n_sweeps, n_replicas, tlo, thi, seed=1):
    m = honeycomb(-1.0, S=1.0)
    st = MCSettings(tmin=tlo / KB, tmax=thi / KB, n_replicas=n_replicas, n_sweeps=n_sweeps, n_therm=n_sweeps // 5,
                    ising=True, seed=seed)
    return ordering_temperature(m, sizes, st)


def test_honeycomb_ising_tc_binder_fast():
    """Fast version (small sizes): k_B Tc/|J| = 2/ln(2+√3) ≈ 1.5187 within 3 %."""
    r = _ising_tc([4, 8, 12], 20000, 12, 1.40, 1.65)
    assert r.method.startswith("Binder")
    assert not r.mermin_wagner
    tc = r.tc * KB
    assert abs(tc - ISING_TC) / ISING_TC < 0.03, (tc, r.crossings)
    # the C peaks move towards Tc from above with growing L
    pk = [r.peaks_C[k]["T"] for k in r.sizes]
    assert pk[0] > pk[-1] > ISING_TC / KB * 0.99


@pytest.mark.slow
def test_honeycomb_ising_tc_binder_one_percent():
    """k_B Tc/|J| from the Binder crossing of L = 16 and 24 (8 as a third size) within 1 %."""
    r = _ising_tc([8, 16, 24], 200000, 16, 1.45, 1.60, seed=11)
    tc = r.tc * KB
    assert abs(tc - ISING_TC) / ISING_TC < 0.01, (tc, r.tc_error * KB, r.crossings)
    assert r.tc_error * KB < 0.015
