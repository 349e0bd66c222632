"""Easy-axis Binder cumulant U4_axis = 1 − ⟨q_n⁴⟩/(3⟨q_n²⟩²) of the order-parameter component q_n = Q·n along the
ground-state axis n, and the choice between it and the vector cumulant in the Tc analysis (issue 19).

Convention: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond once, classical spins of length S,
J > 0 antiferromagnetic, meV; temperatures in K.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

from wannmag.magnetism import SpinModel
from wannmag.magnetism.montecarlo import (MCSettings, MonteCarloError, build_lattice, ground_state,
                                          ordering_temperature, parallel_tempering)
from wannmag.magnetism.montecarlo.kernels import N_OBS, order_parameters_axis
from wannmag.magnetism.montecarlo.observables import derived_observables
from wannmag.magnetism.montecarlo.tc import analyse_sizes, binder_kind, curves_of

sys.path.insert(0, str(Path(__file__).parent))
from test_montecarlo_physics import honeycomb  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _bins_of(configs, pat, n):
    """One bin per configuration (bin size 1) with the kernel's order parameters (e = 0)."""
    rows = []
    for s in configs:
        m, q, qa = order_parameters_axis(s, np.ones(len(s)), pat, n)
        rows.append([0.0, 0.0, m, m * m, q, q * q, q ** 4, m ** 4, qa, qa * qa, qa ** 4])
    b = np.array(rows)[None]
    assert b.shape[2] == N_OBS
    return b


def _cumulants(bins, N):
    o = derived_observables(bins, 1, np.array([1.0]), N)
    return {k: (o[k][0][0], o[k][1][0]) for k in ("U4", "U4_axis")}


def test_axis_cumulant_exact_limits_on_synthetic_samples():
    """Ordered along n → 2/3 (both cumulants); ordered but isotropically oriented → U4_axis = 1 − (1/5)/(3/9) = 0.4,
    U4 = 2/3; independent random spins (N sites) → the exact finite-N values U4_axis = 0.4/N (→ 0, Gaussian) and
    U4 = (4N + 2)/(9N) (→ 4/9)."""
    g = np.random.default_rng(3)
    N = 8
    pat = np.array([1.0, -1.0] * (N // 2))
    n = np.array([0.0, 0.6, 0.8])
    # ordered along ±n
    conf = [np.outer(pat * sgn, n) for sgn in (1, -1, 1, 1, -1)]
    c = _cumulants(_bins_of(conf, pat, n), N)
    assert c["U4_axis"][0] == pytest.approx(2 / 3, abs=1e-12) and c["U4"][0] == pytest.approx(2 / 3, abs=1e-12)
    # ordered (|Q| = 1), orientation uniform on the sphere
    u = g.normal(size=(20000, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    c = _cumulants(_bins_of([np.outer(pat, x) for x in u], pat, n), N)
    assert c["U4"][0] == pytest.approx(2 / 3, abs=1e-12)
    assert abs(c["U4_axis"][0] - 0.4) < 4 * c["U4_axis"][1], c
    assert c["U4_axis"][1] < 0.01
    # disorder: independent uniform spins
    M = 50
    v = g.normal(size=(20000, M, 3))
    v /= np.linalg.norm(v, axis=2)[..., None]
    patM = np.array([1.0, -1.0] * (M // 2))
    c = _cumulants(_bins_of(list(v), patM, n), M)
    assert abs(c["U4_axis"][0] - 0.4 / M) < 4 * c["U4_axis"][1], c
    assert abs(c["U4"][0] - (4 * M + 2) / (9 * M)) < 4 * c["U4"][1], c
    assert c["U4_axis"][1] < 0.02 and c["U4"][1] < 0.01


def test_binder_kind_chooses_the_cumulant():
    """Easy axis (single-ion, AF Néel): "easy-axis"; isotropic, easy-plane: "vector"; Ising mode: "easy-axis"; the
    VPS3 model (easy axis ≈ 6e-4 J1 S²): "easy-axis" along z."""
    cases = [(honeycomb(1.0, S=1.5, A=np.diag([0.0, 0.0, -0.05])), False, "easy-axis"),
             (honeycomb(1.0, S=1.5), False, "vector"),
             (honeycomb(-1.0, S=1.5, A=np.diag([0.0, 0.0, 0.05])), False, "vector"),
             (honeycomb(-1.0, S=1.0), True, "easy-axis")]
    for m, ising, want in cases:
        lat = build_lattice(m, 4)
        gs = ground_state(lat, ising=ising, seed=0)
        k = binder_kind(lat, gs, ising)
        assert k["binder"] == want, (k, want)
    m = SpinModel.load(ROOT / "data" / "mc" / "VPS3_fast_spin_model.json")
    lat = build_lattice(m, 6)
    gs = ground_state(lat, seed=0)
    k = binder_kind(lat, gs)
    assert k["binder"] == "easy-axis" and abs(k["axis"][2]) > 0.99, k


def test_ising_like_heisenberg_both_cumulants_cross_at_the_same_temperature():
    """A strongly anisotropic (Ising-like) Heisenberg antiferromagnet on the honeycomb lattice (J = 1 meV, S = 1,
    easy axis D = J): the transition is Ising-type, so the vector and the easy-axis Binder cumulants (same runs)
    cross at the same temperature within the errors; the analysis uses the easy-axis one and says so."""
    m = honeycomb(1.0, S=1.0, A=np.diag([0.0, 0.0, -1.0]))
    st = MCSettings(tmin=7.0, tmax=11.0, n_replicas=8, n_sweeps=4000, n_therm=800, seed=2, algorithm="cluster")
    r = ordering_temperature(m, [4, 8, 12], st)
    assert r.binder == "easy-axis" and r.as_dict()["binder"] == "easy-axis"
    assert r.bracketed
    rv = analyse_sizes({str(x.n_sites): curves_of(x) for x in r.runs}, None, "vector")
    assert rv.binder == "vector" and rv.bracketed
    a = {tuple(c["sizes"]): c for c in r.crossings}[("8x8x1", "12x12x1")]
    v = {tuple(c["sizes"]): c for c in rv.crossings}[("128", "288")]
    assert abs(a["T"] - v["T"]) < 3 * np.hypot(a["error"], v["error"]), (a, v)
    # and the measured component is the one along the ground-state axis (z): ordered → U4_axis ≈ 2/3 at tmin
    big = r.runs[-1]
    assert abs(big.order_axis[2]) > 0.999
    assert big.observables["U4_axis"][0][0] > 0.6


def test_checkpoint_of_the_earlier_layout_is_refused_with_one_line(tmp_path):
    m = honeycomb(1.0, S=1.5, A=np.diag([0.0, 0.0, -0.05]))
    lat = build_lattice(m, 4)
    st = MCSettings(tmin=5, tmax=40, n_replicas=3, n_sweeps=40, n_therm=10, seed=1, checkpoint_every=20)
    ck = tmp_path / "ck.npz"
    parallel_tempering(lat, st, checkpoint=ck)
    with np.load(ck) as d:
        state = {k: d[k] for k in d.files}
    state["bins"] = state["bins"][..., :8]
    np.savez(ck, **state)
    with pytest.raises(MonteCarloError, match="earlier wannmag version") as e:
        parallel_tempering(lat, st, checkpoint=ck)
    assert "\n" not in str(e.value) and str(ck) in str(e.value)


def test_default_algorithm_is_cluster_where_valid_else_metropolis_with_the_reason():
    from wannmag.magnetism.montecarlo.cluster import ClusterSchemeError
    from wannmag.magnetism.montecarlo.tc import choose_algorithm

    m = honeycomb(1.0, J3=0.2, S=1.5, A=np.diag([0.0, 0.0, -0.05]))
    lat = build_lattice(m, 4)
    gs = ground_state(lat, seed=0)
    assert choose_algorithm(lat, gs.pattern, [build_lattice(m, 6)])[0] == "cluster"
    assert choose_algorithm(lat, gs.pattern, requested="metropolis") == ("metropolis", "requested")
    # a lattice below the bond range of J3 (L = 2): the default falls back, an explicit request is refused
    algo, why = choose_algorithm(lat, gs.pattern, [build_lattice(m, 2)])
    assert algo == "metropolis" and "too small for the bond range" in why
    kit = honeycomb(np.diag([0.1, 0.1, -2.0]), S=1.0)
    lk = build_lattice(kit, 4)
    gk = ground_state(lk, seed=0)
    algo, why = choose_algorithm(lk, gk.pattern)
    assert algo == "metropolis" and "anisotropic/antisymmetric part" in why
    with pytest.raises(ClusterSchemeError):
        choose_algorithm(lk, gk.pattern, requested="cluster")


def test_tc_result_round_trip_keeps_the_binder_choice():
    import json

    from wannmag.magnetism.montecarlo.tc import TcResult

    T = np.linspace(1.0, 2.0, 6)
    curves = {}
    for L, n in (("4x4x1", 32), ("8x8x1", 128)):
        u = np.linspace(0.6, 0.1, 6) + (0.05 if n > 32 else 0.0) * np.linspace(1, -1, 6)
        curves[L] = {"T": T, "n_sites": n, **{k: (np.ones(6), np.full(6, 0.01)) for k in ("C", "chi", "U4")},
                     "U4_axis": (u, np.full(6, 0.005)), "chi_axis": (np.ones(6), np.full(6, 0.01))}
    r = analyse_sizes(curves, None, {"binder": "easy-axis", "reason": "test"})
    assert r.binder == "easy-axis" and r.bracketed
    d = json.loads(json.dumps(r.as_dict(with_runs=False)))
    assert TcResult.from_dict(d).as_dict(with_runs=False) == d
    # curves without the easy-axis moments fall back to the vector cumulant, saying so
    for c in curves.values():
        c.pop("U4_axis")
    r2 = analyse_sizes(curves, None, "easy-axis")
    assert r2.binder == "vector" and "not measured" in r2.binder_reason
