"""Monte Carlo lattices with per-site spin lengths and the holes of magnetic vacancies (issue 18).

Convention throughout: H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i, each bond once, classical spins of length S_i,
J > 0 antiferromagnetic, meV; temperatures in K (k_B = 0.08617333262 meV/K).
"""

import math

import numpy as np
import pytest

from wannmag.magnetism import Site, SpinModel
from wannmag.magnetism.montecarlo import MCSettings, build_lattice, ground_state, parallel_tempering
from wannmag.magnetism.montecarlo.dilution import dilution_scan, random_vacancies
from wannmag.magnetism.montecarlo.errors import MonteCarloError
from wannmag.magnetism.montecarlo.holes import HoleSpec, Holes, hole_lattice, nn_adjacency, place_holes
from wannmag.magnetism.spinmodel import MEV_PER_K as KB
from wannmag.magnetism.vacancy_holes import classify_bonds

HEX = np.array([[1.0, 0.0, 0.0], [-0.5, math.sqrt(3) / 2, 0.0], [0.0, 0.0, 10.0]])
JCLS = {"V2-V2_bulk": 10.0, "next_to_vacancy": 7.0, "V2-V3": 4.0, "V3-V3": 2.5}


def honeycomb(J1=10.0, J2=0.4, J3=0.6, S=1.5, A=None):
    pos = [np.array([2 / 3, 1 / 3, 0]) @ HEX, np.array([1 / 3, 2 / 3, 0]) @ HEX]
    m = SpinModel(cell=HEX, sites=[Site(p, "V", S) for p in pos], pbc=(True, True, False),
                  single_ion=[A if A is not None else np.diag([0.0, 0.0, -0.05])] * 2)
    for R in [(0, 0, 0), (1, 0, 0), (0, -1, 0)]:
        m.add_bond(0, 1, R, J1)
    for i in (0, 1):
        for R in [(1, 0, 0), (1, 1, 0), (0, 1, 0)]:
            m.add_bond(i, i, R, J2)
    for R in [(1, 1, 0), (-1, -1, 0), (1, -1, 0)]:  # the three third neighbours, 2/√3
        m.add_bond(0, 1, R, J3)
    return m


def langevin(x):
    return 1.0 / np.tanh(x) - 1.0 / x


# ------------------------------------------------------------------------------------------ (a) exact, mixed S
@pytest.mark.parametrize("algorithm", ["metropolis", "cluster"])
def test_open_chain_with_mixed_spin_lengths_exact_energy(algorithm):
    """Open 3-site chain S = 1, 3/2, 1 (the model says 3/2 everywhere; sites 0 and 2 set to S = 1 by the lattice's
    per-site override), H = J_a S0·S1 + J_b S1·S2 with J_a = +2 (AF), J_b = −1 (FM) meV.  The two relative angles are
    independent, p(cos θ) ∝ exp(−β J S_i S_j cos θ): ⟨cos θ⟩ = L(K), K = −β J S_i S_j, L(K) = coth K − 1/K, so
    ⟨E⟩ = Σ_b J_b S_i S_j L(−β J_b S_i S_j)."""
    m = SpinModel(cell=np.diag([6.0, 10.0, 10.0]), sites=[Site(np.array([x, 0.0, 0.0]), "V", 1.5) for x in (0, 2, 4)],
                  pbc=(False, False, False))
    Ja, Jb = 2.0, -1.0
    m.add_bond(0, 1, (0, 0, 0), Ja)
    m.add_bond(1, 2, (0, 0, 0), Jb)
    lat = build_lattice(m, 1, spins={0: 1.0, 2: 1.0})
    assert lat.slen.tolist() == [1.0, 1.5, 1.0]
    T = np.array([0.3, 1.0, 3.0]) * 3.0 / KB  # β J S S from ≈ 2 down to ≈ 0.2
    st = MCSettings(tmin=1, tmax=2, ladder=list(T), n_sweeps=30000, n_therm=1000, seed=11, algorithm=algorithm)
    gs = ground_state(lat, seed=1)
    assert np.allclose(np.linalg.norm(gs.spins, axis=1), lat.slen)
    r = parallel_tempering(lat, st, pattern=gs.pattern, init=gs.spins)
    e, err = r.observables["energy"]  # meV per site
    E, dE = 3 * e, 3 * err
    beta = 1.0 / (KB * T)
    exact = sum(J * s1 * s2 * langevin(-beta * J * s1 * s2) for J, s1, s2 in ((Ja, 1.0, 1.5), (Jb, 1.5, 1.0)))
    # the same chain with all S = 3/2 would be off by far more than the error bars
    wrong = sum(J * 2.25 * langevin(-beta * J * 2.25) for J in (Ja, Jb))
    assert np.all(np.abs(E - exact) < 4 * dE + 1e-9), (E, exact, dE)
    assert np.all(np.abs(wrong - exact) > 20 * dE)
    if algorithm == "cluster":
        assert r.cluster and min(r.cluster["acceptance"]) > 0.99  # both bonds grown, nothing left: plain Wolff


def test_spin_override_as_array_and_energy():
    m = honeycomb()
    vac = [3, 10]
    S = np.linspace(0.5, 2.0, 2 * 16 - 2)
    lat = build_lattice(m, 4, vacancies=vac, spins=S)
    assert np.array_equal(lat.slen, S)
    big = build_lattice(m, 4, vacancies=vac)
    u = np.random.default_rng(2).normal(size=(lat.n_sites, 3))
    u /= np.linalg.norm(u, axis=1)[:, None]
    # the same unit directions: the exchange energy is bilinear in the lengths
    assert lat.energy(u * S[:, None]) != pytest.approx(big.energy(u * 1.5))


# ------------------------------------------------------------------------------------------ (b) hole placement
def test_near_holes_two_per_vacancy_on_its_neighbours_reproducible():
    m = honeycomb()
    L = 12
    n = L * L * 2
    adj, _ = nn_adjacency(m, L)
    spec = HoleSpec(J=JCLS, placement="near")
    for r in range(4):
        vac = random_vacancies(n, 0.03, (5, r))
        h = place_holes(m, L, vac, spec, (5, r))
        assert len(h.sites) == 2 * len(vac) == len(set(h.sites))
        assert not set(h.sites) & set(vac)
        owners, counts = np.unique(h.owner, return_counts=True)
        assert owners.tolist() == sorted(vac) and set(counts) == {2}
        assert h.displaced == 0  # x = 0.03 on 12x12: no two vacancies compete (checked below when they do)
        for s, v in zip(h.sites, h.owner):
            assert adj[s, v] == 1, (s, v)
        again = place_holes(m, L, vac, spec, (5, r))
        assert again.as_dict() == h.as_dict()
        assert Holes.from_dict(h.as_dict()).as_dict() == h.as_dict()
    other = place_holes(m, L, vac, spec, (6, 0))
    assert other.sites != h.sites


def test_near_holes_when_neighbours_compete_and_random_placement():
    m = honeycomb()
    L = 6
    n = L * L * 2
    vac = random_vacancies(n, 0.3, (1,))
    h = place_holes(m, L, vac, HoleSpec(J=JCLS, placement="near"), (1,))
    assert len(h.sites) == 2 * len(vac) == len(set(h.sites)) and not set(h.sites) & set(vac)
    assert set(np.unique(h.owner, return_counts=True)[1]) == {2}
    assert h.displaced > 0  # 30 % vacancies: some neighbours are vacant or taken, those holes go one shell out
    adj, _ = nn_adjacency(m, L)
    assert sum(adj[s, v] != 1 for s, v in zip(h.sites, h.owner)) == h.displaced
    hr = place_holes(m, L, vac, HoleSpec(J=JCLS, placement="random"), (1,))
    assert len(hr.sites) == 2 * len(vac) == len(set(hr.sites)) and not set(hr.sites) & set(vac)
    assert hr.owner == [-1] * len(hr.sites)


# ------------------------------------------------------------------------------------------ (c) bond classes
def _min_image_pairs(lat, cell, L):
    """Every pair of sites with its minimum-image distance (Å), brute force (independent of the lattice code)."""
    frac = np.linalg.solve(np.asarray(cell)[:2, :2].T * L, lat.positions[:, :2].T).T
    out = []
    for i in range(lat.n_sites):
        for j in range(i + 1, lat.n_sites):
            d = frac[j] - frac[i]
            d -= np.round(d)
            best = min(np.linalg.norm((d + np.array([a, b])) @ (np.asarray(cell)[:2, :2] * L))
                       for a in (-1, 0, 1) for b in (-1, 0, 1))
            out.append((i, j, best))
    return out


@pytest.mark.parametrize("placement", ["near", "random"])
def test_bond_classes_and_energy_against_independent_sum(placement):
    """Classes from vacancy_holes.classify_bonds (the DFT fit's definition) on pairs found by distance, and the
    lattice energy against Σ_pairs J S_i·S_j + Σ_i S_i·A_i·S_i summed by hand with the holes' lengths."""
    A = np.diag([0.01, 0.01, -0.05])
    m = honeycomb(A=A)
    L = 6
    n_full = L * L * 2
    vac = random_vacancies(n_full, 0.1, (3,))
    spec = HoleSpec(J=JCLS, placement=placement)
    lat, holes, counts = hole_lattice(m, L, vac, spec, (3,))
    new_of = {int(f): k for k, f in enumerate(lat.full_index)}
    hole_new = [new_of[s] for s in holes.sites]
    assert np.allclose(lat.slen[hole_new], 1.0) and np.isclose(lat.slen.sum(), 1.5 * lat.n_sites - 0.5 * len(hole_new))
    # nearest neighbours of a vacancy, by distance on the undiluted lattice
    full = build_lattice(m, L)
    pos_full = full.positions
    d1, d2, d3 = 1 / math.sqrt(3), 1.0, 2 / math.sqrt(3)
    near = set()
    for i, j, d in _min_image_pairs(full, HEX, L):
        if abs(d - d1) < 1e-6:
            if i in vac and j not in vac:
                near.add(new_of[j])
            if j in vac and i not in vac:
                near.add(new_of[i])
    assert len(pos_full) == n_full
    pairs = _min_image_pairs(lat, HEX, L)
    nn = [{"i": i, "j": j, "shell": 1} for i, j, d in pairs if abs(d - d1) < 1e-6]
    cls = classify_bonds(nn, hole_new, near)
    got = {}
    for b in cls:
        got[b["cls"]] = got.get(b["cls"], 0) + 1
    assert got == counts
    if placement == "near":
        assert counts["next_to_vacancy"] > 0 and counts["V2-V3"] > 0
    rng = np.random.default_rng(4)
    u = rng.normal(size=(lat.n_sites, 3))
    s = u / np.linalg.norm(u, axis=1)[:, None] * lat.slen[:, None]
    E = sum(JCLS[b["cls"]] * s[b["i"]] @ s[b["j"]] for b in cls)
    E += sum(0.4 * s[i] @ s[j] for i, j, d in pairs if abs(d - d2) < 1e-6)
    E += sum(0.6 * s[i] @ s[j] for i, j, d in pairs if abs(d - d3) < 1e-6)
    E += sum(s[i] @ A @ s[i] for i in range(lat.n_sites))
    assert lat.energy(s) == pytest.approx(E, rel=1e-12, abs=1e-9)


def test_dilution_scan_with_holes_counts_and_dilution_only_unchanged():
    m = honeycomb()
    st = MCSettings(tmin=5.0, tmax=200.0, n_replicas=4, n_sweeps=60, n_therm=20, seed=2)
    spec = HoleSpec(J=JCLS)
    r = dilution_scan(m, [0.0, 0.1], [4], st, realisations=2, holes=spec)
    assert r.holes == spec.as_dict() and HoleSpec.from_dict(r.holes) == spec
    h0, h1 = r.hole_counts
    assert h0["n_holes"] == 0 and set(h0["bond_classes"]) == {"V2-V2_bulk"}
    assert h1["n_holes"] == 2 * h1["n_vacancies"] == 2 * 2 * round(0.1 * 32)
    assert "holes" in r.as_dict()
    plain = dilution_scan(m, [0.1], [4], st, realisations=2)
    assert plain.holes is None and "holes" not in plain.as_dict()


# ------------------------------------------------------------------------------------------ (d) bad input
@pytest.mark.parametrize("make, words", [
    (lambda m: place_holes(m, 4, random_vacancies(32, 0.4, (1,)), HoleSpec(J=JCLS), (1,)), "hole fraction impossible"),
    (lambda m: dilution_scan(m, [0.4], [4], MCSettings(tmin=1, tmax=2, n_replicas=2, n_sweeps=10),
                             holes=HoleSpec(J=JCLS)), "hole fraction impossible"),
    (lambda m: HoleSpec(J={**JCLS, "V2-V4": 1.0}).validate(), "unknown bond class 'V2-V4'"),
    (lambda m: HoleSpec(J=JCLS, spin_hole=0.0).validate(), "S > 0"),
    (lambda m: HoleSpec(J=JCLS, spin_hole=-1.0).validate(), "S > 0"),
    (lambda m: HoleSpec(J=JCLS, placement="far").validate(), "placement"),
    (lambda m: HoleSpec(J={**JCLS, "V2-V3": float("nan")}).validate(), "finite"),
    (lambda m: hole_lattice(m, 6, random_vacancies(72, 0.1, (3,)),
                            HoleSpec(J={k: v for k, v in JCLS.items() if k != "V2-V3"}), (3,)),
     "no exchange given for bond class V2-V3"),
    (lambda m: __import__("wannmag.magnetism.montecarlo.holes", fromlist=["x"]).hole_spec_from_fit(
        {"J_meV": {"V2-V2_bulk": 2.0, "V2-V3": 1.0}}), "no exchange for bond class next_to_vacancy"),
    (lambda m: __import__("wannmag.magnetism.montecarlo.holes", fromlist=["x"]).hole_spec_from_fit(
        {"J_meV": {**JCLS, "V2-V3": float("inf")}}), "finite"),
    (lambda m: build_lattice(m, 4, spins={0: 0.0}), "S > 0"),
    (lambda m: build_lattice(m, 4, spins={0: -1.5}), "S > 0"),
    (lambda m: build_lattice(m, 4, vacancies=[0], spins={0: 1.0}), "is a vacancy"),
    (lambda m: build_lattice(m, 4, spins={99: 1.0}), "not a site"),
    (lambda m: build_lattice(m, 4, spins=[1.0, 2.0]), "one S per site"),
])
def test_bad_input_one_line(make, words):
    with pytest.raises(MonteCarloError) as e:
        make(honeycomb())
    msg = str(e.value)
    assert words in msg and "\n" not in msg


def test_holes_with_the_crystal_values_reproduce_dilution_only_exactly():
    """Holes of spin 3/2 and every class at the crystal's J1: the same lattices, the same seeds, so the disorder-
    averaged curves equal those of dilution alone bit for bit (the hole path changes nothing else)."""
    m = honeycomb()
    st = MCSettings(tmin=5.0, tmax=200.0, n_replicas=4, n_sweeps=200, n_therm=50, seed=4, algorithm="cluster")
    a = dilution_scan(m, [0.1], [4], st, realisations=2)
    b = dilution_scan(m, [0.1], [4], st, realisations=2,
                      holes=HoleSpec(J={k: 10.0 for k in JCLS}, spin_hole=1.5))
    for q in ("energy", "U4", "C", "chi"):
        assert np.array_equal(a.curves[0]["4x4x1"][q][0], b.curves[0]["4x4x1"][q][0]), q
    c = dilution_scan(m, [0.1], [4], st, realisations=2, holes=HoleSpec(J={k: 10.0 for k in JCLS}))  # S = 1 holes
    assert not np.array_equal(a.curves[0]["4x4x1"]["energy"][0], c.curves[0]["4x4x1"]["energy"][0])


# ------------------------------------------------------------------------------------------ (e) easy-axis cumulant
def _capture(store):
    def run(fn, tasks):
        store.extend(tasks)
        return [fn(t) for t in tasks]

    return run


@pytest.mark.parametrize("with_holes", [False, True])
def test_diluted_uniaxial_model_uses_the_easy_axis_cumulant_from_the_averaged_moments(with_holes):
    """A uniaxial (easy-axis, A_zz < 0) honeycomb antiferromagnet, diluted: the analysis uses the easy-axis Binder
    cumulant (as on the perfect lattice), and the disorder-averaged U4_axis is 1 − [⟨q_n⁴⟩]/(3[⟨q_n²⟩]²) of the
    realisations' moments — recomputed here from independent reruns of every realisation (tc.simulate /
    holes.simulate_holes with the task's own key) and their raw bins."""
    from wannmag.magnetism.montecarlo.holes import simulate_holes
    from wannmag.magnetism.montecarlo.kernels import OBS_NAMES
    from wannmag.magnetism.montecarlo.tc import simulate

    m = honeycomb()
    st = MCSettings(tmin=5.0, tmax=200.0, n_replicas=4, n_sweeps=200, n_therm=50, seed=6)
    spec = HoleSpec(J=JCLS) if with_holes else None
    tasks: list = []
    r = dilution_scan(m, [0.0, 0.1], [4, 6], st, realisations=3, holes=spec, map_fn=_capture(tasks))
    assert [a.binder for a in r.analyses] == ["easy-axis", "easy-axis"]
    assert "single easy axis" in r.analyses[1].binder_reason
    ia, iq2, iq4 = OBS_NAMES.index("qa"), OBS_NAMES.index("qa2"), OBS_NAMES.index("qa4")
    for lab, L in (("4x4x1", 4), ("6x6x1", 6)):
        mine = [t for t in tasks if t[1] == (L, L, 1) and t[3]]  # the x = 0.1 realisations of this size
        assert len(mine) == 3
        q2, q4, u_each = [], [], []
        for t in mine:
            if with_holes:
                res = simulate_holes(m, t[1], st, t[3], spec, seed_key=t[6])[0]
            else:
                res = simulate(m, t[1], st, vacancies=t[3], seed_key=t[6])[0]
            mean = res.bins.sum(axis=1) / (res.bins.shape[1] * res.bin_size)
            q2.append(mean[:, iq2])
            q4.append(mean[:, iq4])
            u_each.append(1 - mean[:, iq4] / (3 * mean[:, iq2] ** 2))
            assert np.all(mean[:, iq2] >= mean[:, ia] ** 2 - 1e-12)
        want = 1.0 - np.mean(q4, axis=0) / (3.0 * np.mean(q2, axis=0) ** 2)
        got, err = r.curves[1][lab]["U4_axis"]
        assert np.allclose(got, want, rtol=1e-9, atol=1e-12)  # (grid vs 1/(k_B β): ulp)
        assert np.all(err > 0)
        # the ratio of averaged moments is not the average of the realisations' cumulants (a different estimator)
        assert not np.allclose(got, np.mean(u_each, axis=0), rtol=1e-9)
        assert np.allclose(r.curves[1][lab]["moments"]["qa2"], np.mean(q2, axis=0), rtol=1e-9)
    d = r.as_dict()
    assert d["analyses"][1]["binder"] == "easy-axis" and "U4_axis" in d["disorder_average"]
    assert "moments" in d["averaged_curves"][1]["4x4x1"]


def test_diluted_isotropic_model_keeps_the_vector_cumulant():
    m = honeycomb(A=np.zeros((3, 3)))
    st = MCSettings(tmin=5.0, tmax=200.0, n_replicas=4, n_sweeps=60, n_therm=20, seed=2)
    with pytest.warns(Warning):  # Mermin–Wagner: 2D isotropic Heisenberg
        r = dilution_scan(m, [0.1], [4], st, realisations=2)
    assert r.analyses[0].binder == "vector" and "isotropic" in r.analyses[0].binder_reason


def test_one_algorithm_rule_for_lattices_with_holes():
    """holes.choose_hole_algorithm applies tc.choose_algorithm to the plain and to a hole lattice: cluster moves
    for the isotropic-J1 model; Metropolis (saying why) when a hole class leaves a bond whose anisotropic remainder
    exceeds its isotropic part (XXZ J1 = 10 + diag(0, 0, 1) meV, remainder 2/3 meV; V2-V3 = 0.3 meV), while the
    same model without holes keeps cluster moves; an explicit cluster request is then one error line."""
    from wannmag.magnetism.montecarlo.cluster import ClusterSchemeError
    from wannmag.magnetism.montecarlo.holes import choose_hole_algorithm

    st = MCSettings(tmin=5.0, tmax=200.0, n_replicas=4, n_sweeps=60, n_therm=20, seed=2)
    assert choose_hole_algorithm(honeycomb(), [4, 6], st, HoleSpec(J=JCLS), 0.1)[0] == "cluster"
    assert choose_hole_algorithm(honeycomb(), [4], st, HoleSpec(J=JCLS), 0.1, "metropolis") == \
        ("metropolis", "requested")
    xxz = honeycomb(J1=10.0 * np.eye(3) + np.diag([0.0, 0.0, 1.0]))
    weak = HoleSpec(J={**JCLS, "V2-V3": 0.3})
    assert choose_hole_algorithm(xxz, [4, 6], st, None, 0.1)[0] == "cluster"
    assert choose_hole_algorithm(xxz, [4, 6], st, weak, 0.0)[0] == "cluster"  # x = 0: no hole
    algo, why = choose_hole_algorithm(xxz, [4, 6], st, weak, 0.1)
    assert algo == "metropolis" and why.startswith("lattice with holes (x = 0.1): cluster moves not valid")
    assert "anisotropic" in why
    with pytest.raises(ClusterSchemeError) as e:
        choose_hole_algorithm(xxz, [4, 6], st, weak, 0.1, "cluster")
    assert "\n" not in str(e.value)
    algo, why = choose_hole_algorithm(honeycomb(), [2, 4], st, None, 0.1)  # L = 2 below the J3 range
    assert algo == "metropolis" and "cluster moves not valid" in why


def test_hole_spec_from_a_fit_with_holes():
    from wannmag.magnetism.montecarlo.holes import hole_spec_from_fit

    assert hole_spec_from_fit({"J_meV": {"J1_bulk": 2.0, "J1_vac": 1.5, "J2": 0.1, "J3": 0.0}}) == (None, [])
    spec, notes = hole_spec_from_fit({"J_meV": {"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "J2": 0.1},
                                      "placement": {"name": "near", "sites": [1, 3], "spin_hole": 1.0}})
    assert spec == HoleSpec(J={"V2-V2_bulk": 2.0, "next_to_vacancy": 1.5, "V2-V3": 0.8, "V3-V3": 0.8})
    assert len(notes) == 1 and notes[0].startswith("V3-V3 not in the fit: taken equal to V2-V3 = +0.800 meV")
    spec, notes = hole_spec_from_fit({"J_meV": JCLS, "placement": {"sites": [0, 1, 2], "spin_hole": 0.5}}, "random")
    assert (spec.J, spec.per_vacancy, spec.spin_hole, spec.placement, notes) == (JCLS, 3, 0.5, "random", [])
