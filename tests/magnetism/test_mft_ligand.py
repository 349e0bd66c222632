"""Ligand-inclusive force theorem (wannmag.magnetism.mft_ligand) against an exactly solvable mean-field model.

Model: a chain M–L–M–L (cell of 4 Å, two metals, two ligands, one orbital per site, hopping t between neighbours),
ε_M = 0, ε_L = −1 eV, 6 electrons per cell (metal d¹, ligand filled).  Stoner mean field on every site:
H = H̄ ⊗ 1 − Σ_a B_a·σ_a, E[B] = E_band + Σ_a |B_a|²/I_a.  The metal exchange-field DIRECTIONS are constrained
(magnitude self-consistent, B_M = (I_M/2)(m_M·e_M) e_M), the ligand fields relax self-consistently
(B_L = (I_L/2) m_L), so the ligand moment is induced.  Exact answers of this model:
  * field-constrained energy E[B] for a small staggered rotation of the metal fields → the exact second derivative
    of the constrained total energy, which the ligand-downfolded force theorem must reproduce (any t);
  * Hartree–Fock energy E_HF = ⟨H̄⟩ − Σ I/4 |m|² against the metal MOMENT angle (constrained-moment energy, cSDFT)
    → what the ligand-downfolded + inverse-response route must reproduce;
  * FM vs AF total energies → the energy mapping, Heisenberg-exact for small t.
Internal convention: H = Σ_{i<j} J S_i·S_j, each bond once, spins of length S (S = 1/2 here), J > 0 AF, meV.
In the chain, FM vs AF (and the staggered rotation) measure ½ Σ_R J_{M1 M2}(R) = J1 + J3 + …: compared as such.
"""

import numpy as np
import pytest

from wannmag.errors import WannmagError
from wannmag.magnetism.mft import CollinearHamiltonian, lkag_exchange
from wannmag.magnetism.mft_ligand import LigandMFTResult, ligand_mft, site_response

EM, EL, NEL, S = 0.0, -1.0, 6, 0.5
NK = 48
PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]])


def hbar(t, k):
    h = np.zeros((len(k), 4, 4), dtype=complex)
    h[:, [0, 1, 2, 3], [0, 1, 2, 3]] = [EM, EL, EM, EL]
    for a, b in ((0, 1), (1, 2), (2, 3)):
        h[:, a, b] = h[:, b, a] = t
    ph = np.exp(2j * np.pi * k)  # L2 (home cell) → M1 (cell +1)
    h[:, 3, 0] += t * ph
    h[:, 0, 3] += t * np.conj(ph)
    return h


def solve(t, B, nk=NK):
    """Band energy, ⟨H̄⟩ (eV per cell) and site moment vectors of H̄ ⊗ 1 − Σ B_a·σ_a (6 lowest bands filled)."""
    k = np.arange(nk) / nk
    h0 = hbar(t, k)
    H = np.kron(h0, np.eye(2))
    for a in range(4):
        H[:, 2 * a:2 * a + 2, 2 * a:2 * a + 2] -= np.einsum("c,cij->ij", B[a], PAULI)
    e, v = np.linalg.eigh(H)
    assert np.all(e[:, NEL] - e[:, NEL - 1] > 0.2), "model not gapped"
    vo = v[:, :, :NEL]
    rho = np.einsum("kin,kjn->kij", vo, np.conj(vo)).mean(axis=0)  # ρ_ij = ⟨c_j† c_i⟩
    m = np.array([[np.real(np.trace(rho[2 * a:2 * a + 2, 2 * a:2 * a + 2] @ PAULI[c])) for c in range(3)]
                  for a in range(4)])
    eband = float(e[:, :NEL].sum(axis=1).mean())
    ekin = float(np.real(np.einsum("kij,kji->", np.kron(h0, np.eye(2)),
                                   np.einsum("kin,kjn->kij", vo, np.conj(vo)))) / nk)
    return eband, ekin, m


def scf(t, IM, IL, dirs, nk=NK, tol=1e-14):
    """Self-consistent state with the metal field directions ``dirs`` (2 unit vectors); returns E[B], E_HF, m, B."""
    dirs = [np.asarray(d, float) / np.linalg.norm(d) for d in dirs]
    B = np.zeros((4, 3))
    B[0], B[2] = 0.5 * IM * dirs[0], 0.5 * IM * dirs[1]
    for it in range(500):
        eb, ek, m = solve(t, B, nk)
        new = np.zeros_like(B)
        new[0] = 0.5 * IM * (m[0] @ dirs[0]) * dirs[0]
        new[2] = 0.5 * IM * (m[2] @ dirs[1]) * dirs[1]
        new[1], new[3] = 0.5 * IL * m[1], 0.5 * IL * m[3]
        err = np.max(np.abs(new - B))
        B = 0.3 * B + 0.7 * new
        if err < tol:
            break
    else:
        raise RuntimeError("SCF not converged")
    eb, ek, m = solve(t, B, nk)
    Is = [IM, IL, IM, IL]
    EB = eb + sum(B[a] @ B[a] / Is[a] for a in range(4) if Is[a] > 0)
    EHF = ek - sum(Is[a] / 4 * (m[a] @ m[a]) for a in range(4))
    return EB, EHF, m, B


def reference_ham(t, IM, IL, nk=NK):
    """The FM self-consistent state as a collinear pair H↑(R), H↓(R) (eV)."""
    _, _, m, B = scf(t, IM, IL, [(0, 0, 1), (0, 0, 1)], nk)
    R = np.array([[-1, 0, 0], [0, 0, 0], [1, 0, 0]])
    H0 = np.zeros((3, 4, 4))
    H0[1] = np.diag([EM, EL, EM, EL])
    for a, b in ((0, 1), (1, 2), (2, 3)):
        H0[1, a, b] = H0[1, b, a] = t
    H0[2, 3, 0] = t  # ⟨L2, 0|H|M1, R=+1⟩
    H0[0, 0, 3] = t
    Bz = np.diag(B[:, 2])
    up, dn = H0.copy(), H0.copy()
    up[1] -= Bz
    dn[1] += Bz
    ham = CollinearHamiltonian(cell=np.diag([4.0, 10.0, 10.0]), R=R, H_up=up, H_dn=dn,
                               orbital_atom=np.arange(4), positions=np.array([[x, 0, 0] for x in range(4)], float),
                               magnetic=[0, 2], elements=["M", "M"], spins=[S, S], source="chain model")
    return ham, m


def sum12(res, name):
    """J1 + J3 + … = ½ Σ_R J_{M1 M2}(R) of a route (meV; two M1–M2 bonds per shell and cell)."""
    return 0.5 * sum(J for (i, j, R), J in zip(res.bonds, getattr(res, name)) if {i, j} == {0, 1})


def fd_exact(t, IM, IL, theta=0.02):
    """Exact Σ_R J_12 from staggered small rotations of the metal fields (field-constrained E[B]) and from the
    moment angles (E_HF, constrained moments); Richardson-extrapolated in the angle."""
    E0B, E0H, m0, _ = scf(t, IM, IL, [(0, 0, 1), (0, 0, 1)])
    outB, outH = [], []
    for th in (theta, theta / 2):
        EB, EH, m, _ = scf(t, IM, IL, [(np.sin(th), 0, np.cos(th)), (-np.sin(th), 0, np.cos(th))])
        phi = np.arctan2(m[0][0], m[0][2])
        # E − E0 = −2 θ² K12(q=0) (two metals, sum rule), K12(q=0) = Σ_R J_12(R) S² = 2 (J1 + J3 + …) S²
        outB.append(-(EB - E0B) / (4 * th**2) / S**2 * 1000)
        outH.append(-(EH - E0H) / (4 * phi**2) / S**2 * 1000)
    rich = [(4 * x[1] - x[0]) / 3 for x in (outB, outH)]
    return rich[0], rich[1]


def mapping(t, IM, IL):
    EF = scf(t, IM, IL, [(0, 0, 1), (0, 0, 1)])[0]
    EA = scf(t, IM, IL, [(0, 0, 1), (0, 0, -1)])[0]
    return (EF - EA) / (4 * S**2) * 1000  # E_FM − E_AF = 4 J S² per cell (two bonds)


IM = 5.0


def test_small_angle_exact_at_finite_t():
    """Any t: the downfolded force theorem is the exact field-constrained stiffness, + inverse response the exact
    moment-constrained one; the metal-only LKAG is off by a measurable amount."""
    t, IL = 0.6, 3.0
    ham, m = reference_ham(t, IM, IL)
    res = ligand_mft(ham, kmesh=(NK, 1, 1), n_electrons=NEL, n_energy=160, bond_rcut=30)
    JB, JH = fd_exact(t, IM, IL)
    Jm, Jl, Jli = sum12(res, "J_metal"), sum12(res, "J_ligand"), sum12(res, "J_ligand_inverse")
    assert m[1][2] > 1e-3  # induced ligand moment, parallel to the metals
    assert Jl == pytest.approx(JB, rel=2e-3)
    assert Jli == pytest.approx(JH, rel=2e-3)
    assert abs(Jm - JB) > 0.05 * abs(JB)  # metal-only misses the ligand relaxation
    assert abs(Jli - Jl) > 5e-3 * abs(Jl)  # the inverse-response correction is resolved by the test
    # on-site stiffness: sum rule equals the density-matrix value (pure on-site splitting: exact)
    for s in res.sites:
        assert s["D_sum_rule_meV"] == pytest.approx(s["D_direct_meV"], rel=1e-6, abs=1e-9)


def test_small_t_energy_mapping():
    """Small t: downfolded J equals the FM/AF energy mapping within 2 %; metal-only LKAG does not."""
    t, IL = 0.15, 3.0
    ham, _ = reference_ham(t, IM, IL)
    res = ligand_mft(ham, kmesh=(NK, 1, 1), n_electrons=NEL, n_energy=160, bond_rcut=30)
    Jmap = mapping(t, IM, IL)
    Jm, Jl = sum12(res, "J_metal"), sum12(res, "J_ligand")
    assert Jl == pytest.approx(Jmap, rel=0.02)
    assert sum12(res, "J_ligand_inverse") == pytest.approx(Jmap, rel=0.02)
    assert abs(Jm - Jmap) > 0.10 * abs(Jmap)
    assert abs(Jl - Jmap) < abs(Jm - Jmap)


def test_no_ligand_exchange_all_routes_agree():
    """I_L = 0: no ligand field, all routes equal the package's plain LKAG."""
    t = 0.3
    ham, m = reference_ham(t, IM, 0.0)
    res = ligand_mft(ham, kmesh=(NK, 1, 1), n_electrons=NEL, n_energy=160, bond_rcut=30)
    base = lkag_exchange(ham, kmesh=(NK, 1, 1), n_electrons=NEL, n_energy=160, rcut=30)
    ref = dict(zip(base.bonds, base.J))
    for b, Jm, Jl in zip(res.bonds, res.J_metal, res.J_ligand):
        assert Jm == pytest.approx(ref[b], rel=1e-8, abs=1e-10)
        assert Jl == pytest.approx(ref[b], rel=1e-8, abs=1e-10)
    assert any("without exchange field" in w for w in res.warnings)
    # energy mapping agrees with all of them (Heisenberg limit, O(t²/Δ²) non-Heisenberg terms)
    Jmap = mapping(t, IM, 0.0)
    for name in ("J_metal", "J_metal_inverse", "J_ligand", "J_ligand_inverse"):
        assert sum12(res, name) == pytest.approx(Jmap, rel=0.03)


def test_metal_only_equals_lkag_with_ligand_field():
    ham, _ = reference_ham(0.4, IM, 2.0, nk=24)
    res = ligand_mft(ham, kmesh=(24, 1, 1), n_electrons=NEL, n_energy=100, bond_rcut=30)
    base = lkag_exchange(ham, kmesh=(24, 1, 1), n_electrons=NEL, n_energy=100, rcut=30)
    ref = dict(zip(base.bonds, base.J))
    for b, Jm in zip(res.bonds, res.J_metal):
        assert Jm == pytest.approx(ref[b], rel=1e-8, abs=1e-10)


def test_round_trip_and_bad_input():
    ham, _ = reference_ham(0.4, IM, 2.0, nk=12)
    res = ligand_mft(ham, kmesh=(12, 1, 1), n_electrons=NEL, n_energy=60, bond_rcut=20)
    d = res.as_dict()
    back = LigandMFTResult.from_dict(d)
    assert back.as_dict() == d
    assert back.shells() == res.shells()
    with pytest.raises(WannmagError, match="malformed"):
        LigandMFTResult.from_dict({"bonds": []})
    # no ligand atoms: a metal-only model
    R = np.array([[0, 0, 0]])
    up = np.diag([-2.0, -2.0])[None] + 0.1 * np.array([[[0, 1], [1, 0]]])
    dn = np.diag([2.0, 2.0])[None] + 0.1 * np.array([[[0, 1], [1, 0]]])
    metal_only = CollinearHamiltonian(cell=np.eye(3) * 5, R=R, H_up=up, H_dn=dn, orbital_atom=np.arange(2),
                                      positions=np.array([[0, 0, 0], [2.5, 0, 0]], float), magnetic=[0, 1],
                                      source="metal.hr")
    with pytest.raises(WannmagError, match="no ligand atoms") as exc:
        site_response(metal_only, kmesh=(1, 1, 1), n_electrons=1)
    assert "\n" not in str(exc.value)
    # mismatched up/down models
    with pytest.raises(WannmagError, match="differ in shape") as exc:
        CollinearHamiltonian(cell=np.eye(3), R=R, H_up=up, H_dn=dn[:, :1, :1], orbital_atom=np.arange(2),
                             positions=np.zeros((2, 3)), magnetic=[0], source="x.hr")
    assert "\n" not in str(exc.value)
    with pytest.raises(WannmagError, match="split"):
        ligand_mft(ham, kmesh=(12, 1, 1), n_electrons=NEL, split="nonsense")
