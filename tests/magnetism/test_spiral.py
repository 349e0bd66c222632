"""Flat spin spirals (wannmag.magnetism.spiral): E(q) against the direct classical energy of the spins on a
commensurate supercell (SpinModel.supercell + SpinModel.energy), the docstring's honeycomb formula, exact recovery
of J1–J3 by the fit (FM and Néel patterns), the small-q stiffness against the analytic tensor, refusals."""

import json
import math
import warnings

import numpy as np
import pytest

from wannmag.magnetism.spinmodel import SpinModel
from wannmag.magnetism.spiral import (SpiralFit, SpiralFitError, corotating_phases, fit_spiral, fit_stiffness,
                                      honeycomb_spiral_energy, pattern_phases, spiral_energy, stiffness_tensor)
from wannmag.structures import cri3_monolayer, find_magnetic_sites, neighbour_shells, vps3_monolayer

J_TRUE = (-3.55, -0.59, 0.21)  # meV, internal convention (a CrI3-like set with an AF J3 to make it non-trivial)
G, M, K = (0, 0, 0), (0.5, 0, 0), (1 / 3, 1 / 3, 0)
#: J1–J8 (meV): J_TRUE and couplings beyond J3 of the kind the MLWF force theorem gives for CrI3 (AF J5 and J8 at
#: 12.1 and 16.2 Å, data/exchange/CrI3_ft_stiffness.json), enlarged so that every shell moves the stiffness visibly
J_LONG = J_TRUE + (-0.05, 0.12, 0.04, -0.03, 0.07)
ZONE = [G, M, K, (0.25, 0, 0), (5 / 12, 1 / 6, 0), (1 / 6, 1 / 6, 0)]


def honeycomb(builder=cri3_monolayer, Js=J_TRUE):
    sub = find_magnetic_sites(builder())
    model = SpinModel.from_sublattice(sub)
    for n, (sh, J) in enumerate(zip(neighbour_shells(sub, len(Js)), Js), start=1):
        for b in sh.bonds:
            model.add_bond(b.i, b.j, b.R, J, shell=n)
    return model


def supercell_energy(model, q, phases, N):
    """Energy per cell of the spins θ = 2π q·t + φ_k on an N1×N2 supercell, by SpinModel.energy of the supercell."""
    big, parent = model.supercell(np.diag([N[0], N[1], 1]))
    inv = np.linalg.inv(model.cell)
    spins = []
    for s, k in zip(big.sites, parent):
        t = np.round((s.position - model.sites[k].position) @ inv)
        th = 2 * np.pi * np.dot(q, t) + phases[k]
        spins.append(model.sites[k].spin * np.array([math.cos(th), math.sin(th), 0.0]))
    return big.energy(np.array(spins)) / (N[0] * N[1])


def test_sites_are_where_the_docstring_formula_assumes():
    model = honeycomb()
    frac = np.array([s.position for s in model.sites]) @ np.linalg.inv(model.cell)
    assert np.allclose(frac[:, :2] % 1, [[1 / 3, 2 / 3], [2 / 3, 1 / 3]], atol=1e-3)


@pytest.mark.parametrize("q,N", [((0.5, 0, 0), (2, 1)), ((1 / 3, 1 / 3, 0), (3, 3)), ((0.25, 0.5, 0), (4, 2)),
                                 ((0.4, 0.2, 0), (5, 5)), ((1 / 6, 1 / 6, 0), (6, 6))])
@pytest.mark.parametrize("phases", [(0.0, 0.0), (0.0, math.pi), (0.3, 1.9)])
def test_energy_equals_supercell_energy(q, N, phases):
    model = honeycomb()
    # make bonds of one shell differ, so the formula is tested bond by bond and not only shell by shell
    rng = np.random.default_rng(3)
    for b in model.bonds:
        b.J = b.J * (1 + 0.3 * rng.standard_normal())
    direct = supercell_energy(model, np.array(q), np.array(phases), N)
    assert spiral_energy(model, q, phases)[0] == pytest.approx(direct, abs=1e-9)


@pytest.mark.parametrize("builder", [cri3_monolayer, vps3_monolayer])
def test_honeycomb_formula_of_docstring(builder):
    model = honeycomb(builder)
    rng = np.random.default_rng(0)
    q = rng.uniform(-1, 1, size=(20, 3))
    q[:, 2] = 0
    for dphi in (0.0, math.pi, 0.7):
        mine = honeycomb_spiral_energy(q, *J_TRUE, S=1.5, dphi=dphi)
        assert np.allclose(spiral_energy(model, q, (0.0, dphi)), mine, atol=1e-10)
    for sigma in ((1, 1), (1, -1)):
        dphi = pattern_phases(sigma)[1]
        mine = honeycomb_spiral_energy(q, *J_TRUE, S=1.5, dphi=dphi, frame="bond")
        assert np.allclose(spiral_energy(model, q, corotating_phases(model, q, sigma)), mine, atol=1e-10)
    S2 = 1.5**2
    J1, J2, J3 = J_TRUE
    # the special values quoted in the docstring
    for frame in ("lattice", "bond"):
        assert honeycomb_spiral_energy(G, *J_TRUE, frame=frame)[0] == pytest.approx(S2 * (3 * J1 + 6 * J2 + 3 * J3))
        assert honeycomb_spiral_energy(G, *J_TRUE, dphi=math.pi, frame=frame)[0] == pytest.approx(
            S2 * (-3 * J1 + 6 * J2 - 3 * J3))
        for dphi in (0.0, math.pi):
            assert honeycomb_spiral_energy(K, *J_TRUE, dphi=dphi, frame=frame)[0] == pytest.approx(-3 * S2 * J2)
    assert honeycomb_spiral_energy(M, *J_TRUE)[0] == pytest.approx(S2 * (J1 - 2 * J2 - 3 * J3))
    assert honeycomb_spiral_energy(M, *J_TRUE, dphi=math.pi)[0] == pytest.approx(S2 * (-J1 - 2 * J2 + 3 * J3))
    assert honeycomb_spiral_energy(M, *J_TRUE, frame="bond")[0] == pytest.approx(S2 * (J1 / 2 - 2 * J2 - 1.5 * J3))
    assert honeycomb_spiral_energy(M, *J_TRUE, dphi=math.pi, frame="bond")[0] == pytest.approx(
        S2 * (-J1 / 2 - 2 * J2 + 1.5 * J3))


@pytest.mark.parametrize("frame", ["lattice", "bond"])
@pytest.mark.parametrize("main,other", [((1, 1), (1, -1)), ((1, -1), (1, 1))])
def test_fit_recovers_J_exactly(main, other, frame):
    model = honeycomb()
    E0 = -1234.5
    q = ZONE + [G]
    if frame == "lattice":
        pattern = np.array([pattern_phases(main)] * len(ZONE) + [pattern_phases(other)])
    else:
        pattern = np.vstack([corotating_phases(model, ZONE, main), corotating_phases(model, [G], other)])
    E = E0 + spiral_energy(model, q, pattern)
    fit = fit_spiral(model, q, E, n_shells=3, pattern=pattern)
    assert np.allclose(fit.J, J_TRUE, atol=1e-9)
    assert fit.E0 == pytest.approx(E0, abs=1e-9)
    assert max(abs(r) for r in fit.residuals) < 1e-9
    assert fit.rank == 4 and fit.condition_number < 1e3
    assert fit.distances[0] < fit.distances[1] < fit.distances[2]


def test_fit_uses_realised_phases_and_warns():
    model = honeycomb()
    q = ZONE
    realised = np.array([[0.0, 0.0], [0.0, 0.05], [0.0, 0.4], [0.0, -0.1], [0.0, 0.0], [0.0, 0.3]])
    E = 7.0 + spiral_energy(model, q, realised)
    with pytest.warns(UserWarning, match="realised sublattice phases differ"):
        fit = fit_spiral(model, q, E, pattern=(1, 1), phases=realised)
    assert np.allclose(fit.J, J_TRUE, atol=1e-9)
    assert len(fit.warnings) == 2  # 0.4 rad = 22.9° and 0.3 rad = 17.2°; 0.05 and 0.1 rad are below 10°
    # with the pattern's phases instead of the realised ones the same energies are not fitted exactly
    bad = fit_spiral(model, q, E, pattern=(1, 1))
    assert max(abs(r) for r in bad.residuals) > 1e-3


def test_underdetermined_sets_raise_one_clear_error():
    model = honeycomb()
    with pytest.raises(SpiralFitError, match="cannot determine E0 and J1..J3"):
        fit_spiral(model, [G, M, K], [0.0, 1.0, 2.0])
    # four points but only two distinct ones: rank 2
    q = [G, K, G, K]
    E = spiral_energy(model, q)
    with pytest.raises(SpiralFitError, match=r"do not determine .*rank 2 < 4"):
        fit_spiral(model, q, E)
    with pytest.raises(SpiralFitError, match="non-finite"):
        fit_spiral(model, ZONE, [0, 1, 2, np.nan, 4, 5])


@pytest.mark.parametrize("Js", [J_TRUE, J_LONG], ids=["J1-J3", "J1-J8"])
@pytest.mark.parametrize("frame", ["lattice", "bond"])
def test_stiffness_matches_analytic_tensor(frame, Js):
    model = honeycomb(Js=Js)
    q = np.array([[0, 0, 0], [0.004, 0, 0], [0.008, 0, 0], [0.012, 0, 0]])
    for sigma in ((1, 1), (1, -1)):
        ph = pattern_phases(sigma) if frame == "lattice" else corotating_phases(model, q, sigma)
        D = stiffness_tensor(model, sigma, frame=frame)
        E = 5.0 + spiral_energy(model, q, ph)
        s = fit_stiffness(model, q, E, q_max=0.02)
        u = np.array(s["direction"])
        assert s["D"] == pytest.approx(u @ D @ u, rel=1e-4)  # q⁶ terms left out of the fit
        assert s["n_points"] == 3 and s["quartic_fraction"] < 1e-2


def test_stiffness_tensor_analytic():
    model = honeycomb()
    # co-rotating frame: the lattice symmetry makes D isotropic in plane; FM with J1 < 0 is stable (D > 0)
    D = stiffness_tensor(model)
    assert D[0, 0] == pytest.approx(D[1, 1]) and abs(D[0, 1]) < 1e-9 and D[0, 0] > 0
    # J1-only FM: −½ J1 S² Σ_δ (δ·x)² = −½ J1 S² · 3/2 d² (three bonds of length d at 120°), fixed frame
    # −½ J1 S² Σ_{R∈N1} (R·x)² = −½ J1 S² (a²/4 + a²) along x — not isotropic
    J1only = honeycomb(Js=(J_TRUE[0],))
    d = J1only.bond_length(J1only.bonds[0])
    a = np.linalg.norm(J1only.cell[0])
    assert stiffness_tensor(J1only)[0, 0] == pytest.approx(-0.5 * J_TRUE[0] * 1.5**2 * 1.5 * d**2, rel=1e-9)
    assert stiffness_tensor(J1only, frame="lattice")[0, 0] == pytest.approx(
        -0.5 * J_TRUE[0] * 1.5**2 * (a**2 / 4 + a**2), rel=1e-9)
    with pytest.raises(SpiralFitError, match="collinear reference"):
        stiffness_tensor(model, (0.0, 1.0))
    with pytest.raises(SpiralFitError, match="one line"):
        fit_stiffness(model, [G, (0.01, 0, 0), (0, 0.01, 0)], [0, 1, 2], q_max=0.1)


def curvature(model, phases_of, h):
    """The q² coefficient tensor of E(q) − E(0) in the plane (2×2, meV Å² per cell): half the Hessian of
    spiral_energy at q = 0 by central differences in Cartesian q (Å⁻¹), Richardson-extrapolated from steps h, h/2
    (error O(h⁴ d⁴)).  ``phases_of(q_reduced)`` gives the home-cell angles of the spiral."""
    to_reduced = model.cell.T / (2 * np.pi)   # q_red = q_cart @ cell.T / 2π  (q_cart = q_red @ 2π cell⁻ᵀ)

    def E(qc):
        q = np.array([[qc[0], qc[1], 0.0]]) @ to_reduced
        return spiral_energy(model, q, phases_of(q))[0]

    def hessian(h):
        e = np.eye(2) * h
        return np.array([[(E(e[a] + e[b]) - E(e[a] - e[b]) - E(-e[a] + e[b]) + E(-e[a] - e[b])) / (4 * h * h)
                          for b in range(2)] for a in range(2)])

    return 0.5 * (4 * hessian(h / 2) - hessian(h)) / 3


@pytest.mark.parametrize("frame", ["lattice", "bond"])
@pytest.mark.parametrize("sigma", [(1, 1), (1, -1)], ids=["FM", "Neel"])
@pytest.mark.parametrize("builder", [cri3_monolayer, vps3_monolayer])
def test_stiffness_tensor_is_curvature_of_spiral_energy_beyond_J3(builder, sigma, frame):
    """stiffness_tensor = the small-q curvature of the spiral energy (1), with J1–J8 differing bond by bond (a
    C3-breaking Wannier gauge), both patterns and both frames; the couplings beyond J3 change it."""
    model = honeycomb(builder, J_LONG)
    rng = np.random.default_rng(11)
    for b in model.bonds:
        b.J = b.J * (1 + 0.3 * rng.standard_normal())
    assert max(model.bond_length(b) for b in model.bonds) > 2.3 * np.linalg.norm(model.cell[0])   # shell 8: 4a/√3
    if frame == "bond":
        def phases_of(q):
            return corotating_phases(model, q, sigma)
    else:
        def phases_of(q):
            return pattern_phases(sigma)
    D = stiffness_tensor(model, sigma, frame=frame)
    num = curvature(model, phases_of, h=1e-3)
    assert np.allclose(D[:2, :2], num, rtol=1e-7, atol=1e-7)
    assert np.allclose(D[2], 0.0) and np.allclose(D[:, 2], 0.0)
    short = SpinModel(cell=model.cell, sites=model.sites, pbc=model.pbc)
    for b in model.bonds:
        if b.shell <= 3:
            short.add_bond(b.i, b.j, b.R, b.J, shell=b.shell)
    D3 = stiffness_tensor(short, sigma, frame=frame)[:2, :2]
    assert np.max(np.abs(D3 - num)) > 1e-2 * np.max(np.abs(num))


@pytest.mark.parametrize("sigma", [(1, 1), (1, -1)], ids=["FM", "Neel"])
def test_stiffness_shell_formula_beyond_J3(sigma):
    """Co-rotating frame, J constant on each shell: every honeycomb shell is C3-symmetric, so D is isotropic in the
    plane, D = −¼ S² Σ_n σ_n J_n z_n d_n² (z_n bonds per cell of length d_n, σ_n = σ_i σ_j on them).  With J differing
    bond by bond, ½ Tr_plane D equals that formula with the shell means (what data/exchange/ft_stiffness.py reports)."""
    model = honeycomb(Js=J_LONG)
    S = 1.5
    z = [sum(1 for b in model.bonds if b.shell == n) for n in range(1, 9)]
    assert z == [3, 6, 3, 6, 6, 6, 6, 3]

    def formula(Js):
        total = 0.0
        for n, Jn in enumerate(Js, start=1):
            bs = [b for b in model.bonds if b.shell == n]
            sgn = {sigma[b.i] * sigma[b.j] for b in bs}
            d = np.array([model.bond_length(b) for b in bs])
            assert len(sgn) == 1 and np.ptp(d) < 1e-8
            total += -0.25 * S**2 * sgn.pop() * Jn * len(bs) * np.mean(d**2)
        return total

    # the builders' positions are C3-symmetric to ~1e-10 Å, hence rel=1e-9 for the isotropy, 1e-12 for the trace
    D = stiffness_tensor(model, sigma)
    assert 0.5 * (D[0, 0] + D[1, 1]) == pytest.approx(formula(J_LONG), rel=1e-12)
    assert D[0, 0] == pytest.approx(D[1, 1], rel=1e-9) and abs(D[0, 1]) < 1e-9 * abs(D[0, 0])
    rng = np.random.default_rng(5)
    for b in model.bonds:
        b.J = b.J * (1 + 0.3 * rng.standard_normal())
    means = [np.mean([b.J_iso for b in model.bonds if b.shell == n]) for n in range(1, 9)]
    D = stiffness_tensor(model, sigma)
    assert 0.5 * (D[0, 0] + D[1, 1]) == pytest.approx(formula(means), rel=1e-12)
    assert abs(D[0, 0] - D[1, 1]) > 1e-3 * abs(D[0, 0])   # the bond-resolved tensor is no longer isotropic


@pytest.mark.parametrize("frame", ["lattice", "bond"])
def test_fit_with_stiffness_and_round_trip(frame):
    model = honeycomb()
    q = ZONE + [(0.1, 0, 0), (0.15, 0, 0)]
    pattern = corotating_phases(model, q, (1, 1)) if frame == "bond" else pattern_phases((1, 1))
    E = spiral_energy(model, q, pattern)
    b1 = np.linalg.norm(2 * np.pi * np.linalg.inv(model.cell).T[0])
    fit = fit_spiral(model, q, E, pattern=pattern, stiffness_q_max=0.16 * b1)
    # one pattern alone (FM) already determines J1-J3 from the zone points
    assert np.allclose(fit.J, J_TRUE, atol=1e-9)
    assert fit.stiffness is not None and fit.stiffness["n_points"] == 2
    u = np.array(fit.stiffness["direction"])
    assert fit.stiffness["D"] == pytest.approx(u @ stiffness_tensor(model, (1, 1), frame=frame) @ u, rel=0.05)
    d = json.loads(json.dumps(fit.as_dict()))
    back = SpiralFit.from_dict(d)
    assert back.as_dict() == fit.as_dict()
    assert "J1" in fit.table()
    # Γ points of two patterns: no stiffness from the mixed set, and it says why
    q2 = q + [G]
    pat2 = np.vstack([np.broadcast_to(pattern, (len(q), 2)), pattern_phases((1, -1))[None]])
    fit2 = fit_spiral(model, q2, spiral_energy(model, q2, pat2), pattern=pat2, stiffness_q_max=0.16 * b1)
    assert fit2.stiffness is None and any("two patterns" in w for w in fit2.warnings)


def test_relaxed_spiral_energy_finds_the_collinear_ground_states():
    """At q = 0 the best relative sublattice angle of a ferromagnetic J1 is 0° and of an antiferromagnetic one 180°,
    with the energies of the collinear states (−/+ 3 |J1| S² per cell, J2 = J3 = 0)."""
    from wannmag.magnetism.spiral import relaxed_spiral_energy
    from wannmag.workflows.spiral import _model_with_J, spiral_model

    for J1, angle in ((-2.0, 0.0), (2.0, 180.0)):
        m = _model_with_J(spiral_model("data/structures/CrI3_monolayer.cif", 1), [J1])
        e, a = relaxed_spiral_energy(m, [0.0, 0.0, 0.0])
        assert a == angle and e == pytest.approx(-3 * abs(J1) * 1.5**2, rel=1e-9)


def test_select_shells_takes_the_fewest_within_the_scf_tolerance_or_says_why_not():
    from wannmag.magnetism.spiral import select_shells

    scan = {"n_points": 9, "fits": [
        {"n_shells": 3, "status": "fitted", "rms_residual": 0.7},
        {"n_shells": 4, "status": "fitted", "rms_residual": 0.05},
        {"n_shells": 5, "status": "fitted", "rms_residual": 0.01},
        {"n_shells": 6, "status": "not determined", "reason": "too few points"}]}
    sel = select_shells(scan, 0.54)
    assert sel["n_shells"] == 4 and sel["fit"]["rms_residual"] == 0.05 and "0.54" in sel["reason"]
    assert select_shells(scan, 0.005)["n_shells"] is None
    assert "not a short-range" in select_shells(scan, 0.005)["reason"]
    none = select_shells(scan, None)
    assert none["n_shells"] is None and "no SCF energy tolerance" in none["reason"]
