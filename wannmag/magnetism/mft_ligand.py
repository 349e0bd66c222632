"""Ligand-inclusive magnetic force theorem: ligand sites as magnetic sites, their spins downfolded, and the
inverse-response (Bruno / Solovyev) correction.

Conventions: TB energies eV, exchange meV.  Output J in the internal wannmag convention H = Σ_{i<j} J_ij S_i·S_j
(every bond once, classical spins of length S, J > 0 antiferromagnetic).  S enters only the final conversion
J = K s_i s_j / (S_i S_j) below (S from ``ham.spins``, e.g. 3/2 for Cr3+); the moments themselves enter through
the density matrix (D_a) and never through S.

Derivation (what is implemented)
--------------------------------
A collinear pair H↑(R), H↓(R) is written H = H̄ ⊗ 1 + ½ Δ ⊗ σ_z, Δ = H↑ − H↓ (eV).  Δ is split into site parts
Δ = Σ_a Δ^(a) (``split="onsite"``: the on-site blocks Δ_a = P_a Δ P_a, the standard LKAG choice, which drops any
spin dependence of inter-site hopping; ``split="bond"``: Δ^(a) = ½(P_a Δ + Δ P_a), every spin-dependent hopping
shared by its two ends; ``split="metal"``: a spin-dependent metal–ligand hopping rotates entirely with the metal,
the others are shared — generally Δ^(a) = ½(P_a (Δ∘W) + (Δ∘Wᵀ) P_a) with W_ij twice the share of element ij that
belongs to the atom of orbital i; for "bond" and "metal" Σ_a Δ^(a) = Δ exactly).  In a Wannier model of a DFT
calculation the spin dependence of the M–L hopping is ⟨w_M|V_xc↑ − V_xc↓|w_L⟩, an exchange potential centred on
the strongly magnetised metal; "metal" follows it with the metal, "onsite" (TB2J, mft.py) ignores it, "bond" is the
neutral bookkeeping.  Which share is right is a property of the DFT exchange potential, not of the Wannier model:
the three are reported side by side (they coincide when the spin dependence is on-site only, as in the tests).
Rotating the exchange field of site a by θ_a about y,
½Δ^(a)σ_z → ½Δ^(a)(cos θ_a σ_z + sin θ_a σ_x), changes the band energy (potential frozen) to second order by

    δE = ½ Σ_ab θ_a K_ab θ_b,   K_ab = δ_ab D_a − 2 J_ab,
    D_a = −½ Tr[Δ^(a) (ρ↑ − ρ↓)]                        (first order in the θ² part of the rotation),
    J_ab = (1/4π) Im ∫^{E_F} dε Tr[Δ^(a) G↑(ε+i0) Δ^(b) G↓(ε+i0)]   (second order; LKAG, TB2J normalisation),

for all atoms a, b (metal and ligand) and all lattice translations R (J_ab(R): a in the home cell, b in cell R);
J_aa(0) is the on-site ("J_ii") term.  K_ab(R) = −2 J_ab(R) off the diagonal is the raw LKAG pair term without the
division by the moment signs: θ_a are rotation angles of the fields, so no moment sign is needed, and a ligand
with a tiny or sign-changing splitting is handled without dividing by anything undefined.  Rotating all fields
together is a symmetry, so Σ_b K_ab(q=0) = 0 (sum rule, D_a = 2 Σ_{b,R} J_ab(R), i.e. J0 including the ligands).
For ``split="bond"`` it holds identically; for ``"onsite"`` it is broken by the spin-dependent hoppings the split
drops, and ``onsite="sum_rule"`` (default) takes D_a from the sum rule (Goldstone mode kept), ``"direct"`` from
the density matrix; the result records both and their difference.

The lattice Fourier transform K_ab(q) = Σ_R K_ab(R) e^{2πi q·R} is taken over every R of the k-mesh's
Born–von Kármán supercell (the Green's functions come from an FFT over that mesh, so this is exact for q on the
same mesh, with periodic images beyond |R_k| = n_k/2); ``rcut`` (Å) optionally truncates J_ab(R) to bonds shorter
than rcut (minimal-image distance) before the transform, the diagonal then from the truncated sum rule.

Mean-field model behind the downfolding.  For a Stoner/Hubbard mean field, E[B] = E_band(H̄ − Σ_a B_a·σ_a) +
Σ_a |B_a|²/I_a is minimal at the self-consistent fields B_a = I_a m_a/2, and the Hartree–Fock energy is
E_HF[ρ] = min_B (⟨H̄ − B·σ⟩_ρ + Σ|B|²/I).  Constraining the metal field directions and letting the ligand fields
relax, the quadratic energy ½ θᵀKθ (rotations keep |B|, so the double counting does not change) is minimised
over the ligand angles:

    K_eff(q) = K_MM(q) − K_ML(q) K_LL(q)⁻¹ K_LM(q)        (ligand spins downfolded, Solovyev 2021).

This needs K_LL(q) positive definite (the reference is a minimum of the frozen-metal energy); otherwise the result
says so and gives no number.  The ligand block is rescaled by 1/‖Δ^(L)‖ before inversion (the Schur complement is
invariant under it): K_LL ∝ Δ_L² and K_ML ∝ Δ_L, so a small ligand splitting costs no precision.

Inverse-response correction.  The force theorem rotates fields; the constrained-moment energy (cSDFT) of the
moments is what energy mapping measures.  For fields rotated by θ the moments rotate by φ = (1 − D⁻¹K)θ (transverse
linear response, using D_a = B_a m_a and B_a χ_ab B_b = D_a δ_ab − K_ab), and E_HF along this family is
½θᵀ(K − K D⁻¹ K)θ.  In the moment angles (ligands relaxed: their field and moment stay parallel, (Kθ)_L = 0, so
the ligands are eliminated first by the Schur complement above):

    K_exact = K_eff (1 − D_M⁻¹ K_eff)⁻¹,   i.e.  K_exact⁻¹ = K_eff⁻¹ − D_M⁻¹,

the form of Bruno (PRL 90, 087205 (2003)) and equal to Solovyev's inverse-response expression m χ⁻¹ m − D
(PRB 103, 104428 (2021)) with D_M = −½Tr[Δ_M m_M] the metal's field × moment (meV).  It is applied per q to the
metal block, with and without the ligands.  It keeps the Goldstone mode (K_exact v = 0 where K_eff v = 0).

From K to exchange.  For spins S_i = s_i S_i (sin θ_i, 0, cos θ_i) (s_i = ±1, the metal's moment sign in the
reference, from ``CollinearHamiltonian.moment_signs``), H = Σ J S_i·S_j gives K_ij = J_ij s_i s_j S_i S_j, so

    J_ij(R) = K_ij(R) s_i s_j / (S_i S_j)    (meV, internal convention; K from the inverse FFT of K(q)).

For the metal-only route this equals the package's LKAG, J = −2 J^{LKAG}/(S_i S_j) (checked in the tests).
Every route is second order about the reference state (small rotations); the FM–AF energy difference is
reproduced only up to the non-Heisenberg O(t²/Δ²) terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .mft import CollinearHamiltonian, MFTError, check_grid, energy_contour, fermi_level, kmesh_points, lkag_exchange

__all__ = ["LigandMFTError", "SiteResponse", "LigandMFTResult", "site_response", "ligand_mft", "ligand_routes",
           "MIN_LIGAND_SPLITTING"]


class LigandMFTError(MFTError):
    """The ligand-inclusive force theorem cannot be done with this input."""


#: a site whose split exchange field Δ^(a) has a Frobenius norm below this (eV) carries no exchange field at all
#: (it cannot be rotated); it is left out of the rotated set and named in the warnings
MIN_LIGAND_SPLITTING = 1e-6
#: largest memory (bytes) the all-orbital Green's functions may take per energy chunk
MAX_MEMORY = 3e9


@dataclass
class SiteResponse:
    """Rotation Hessian of all sites (metals first, then ligands), meV; internal object of :func:`ligand_mft`.

    J[a, b, n1, n2, n3]: J_ab(R) (TB2J normalisation, raw: no moment-sign division) for R ≡ (n1, n2, n3) mod the
    k-mesh; D_direct[a] = −½Tr[Δ^(a)(ρ↑ − ρ↓)]; moments[a] = on-site Tr(ρ↑ − ρ↓) (μ_B); splitting[a] = mean on-site
    Δ (eV); norm[a] = ‖Δ^(a)‖ (eV).
    """

    atoms: list[int]
    n_metal: int
    elements: list[str]
    J: np.ndarray
    D_direct: np.ndarray
    moments: np.ndarray
    splitting: np.ndarray
    norm: np.ndarray
    kmesh: tuple[int, int, int]
    n_energy: int
    efermi: float
    split: str
    warnings: list[str] = field(default_factory=list)


def _kmatrices(ham: CollinearHamiltonian, kpts):
    Hk = [ham.hk(kpts, s) for s in (0, 1)]
    for s, h in enumerate(Hk):
        herm = np.max(np.abs(h - np.conj(np.transpose(h, (0, 2, 1)))))
        if not herm <= 1e-6:
            raise LigandMFTError(f"{ham.source}: H(k) of spin {'up' if s == 0 else 'down'} is not Hermitian "
                                 f"(max deviation {herm:.2e} eV)")
    return Hk


def site_response(ham: CollinearHamiltonian, kmesh=(12, 12, 1), efermi: float | None = None,
                  n_electrons: float | None = None, n_energy: int = 120, split: str = "onsite",
                  ligands=None, chunk: int = 8) -> SiteResponse:
    """K-matrix ingredients J_ab(R), D_a of all atoms carrying orbitals (module docstring).  ``ligands``: atom
    indices of the ligand sites (default: every non-magnetic atom with orbitals)."""
    kmesh, n_energy = check_grid(kmesh, n_energy)
    if split not in ("onsite", "bond", "metal"):
        raise LigandMFTError(f"split must be 'onsite', 'bond' or 'metal', got {split!r}")
    signs = ham.moment_signs()  # refuses metals without splitting
    del signs
    metals = [int(a) for a in ham.magnetic]
    with_orbitals = sorted({int(a) for a in ham.orbital_atom if a >= 0})
    if ligands is None:
        ligands = [a for a in with_orbitals if a not in metals]
    ligands = [int(a) for a in ligands]
    for a in ligands:
        if a in metals or a not in with_orbitals:
            raise LigandMFTError(f"{ham.source}: ligand atom {a} is a metal or has no orbitals in the model")
    if not ligands:
        raise LigandMFTError(f"{ham.source}: no ligand atoms (atoms with orbitals besides the magnetic ones); the "
                             "ligand-inclusive force theorem needs ligand orbitals in the Wannier model")
    nk = int(np.prod(kmesh))
    nw = ham.nw
    need = 16.0 * nk * nw * nw * (8 * min(chunk, n_energy) + 6)
    if need > MAX_MEMORY:
        raise LigandMFTError(f"a {'×'.join(map(str, kmesh))} k-mesh with {nw} orbitals needs ≈ {need / 1e9:.1f} GB "
                             f"(limit {MAX_MEMORY / 1e9:.0f} GB); use a smaller k-mesh")
    kpts = kmesh_points(kmesh)
    Hk = _kmatrices(ham, kpts)
    eig, vec = [], []
    for h in Hk:
        e, v = np.linalg.eigh(h)
        eig.append(e)
        vec.append(v)
    eig = np.array(eig)
    if efermi is None:
        if n_electrons is None:
            raise LigandMFTError("give the Fermi level or the number of electrons per cell")
        efermi = fermi_level(eig, n_electrons)
    if not (np.isfinite(efermi) and eig.min() < efermi < eig.max()):
        raise LigandMFTError(f"{ham.source}: the Fermi level {efermi} eV lies outside the bands "
                             f"({eig.min():.4f} … {eig.max():.4f} eV)")
    # Δ(k) and its site parts Δ^(a) = ½(P_a (Δ∘W) + (Δ∘Wᵀ) P_a), W_ij = 2 × the share of element (i, j) that rotates
    # with the atom of orbital i (1 within an atom; split "metal": 2 for metal row / ligand column, 0 the reverse)
    atoms = metals + ligands
    if split == "onsite":
        mask = (ham.orbital_atom[:, None] == ham.orbital_atom[None, :]).astype(float)
        r0 = np.nonzero(np.all(ham.R == 0, axis=1))[0]
        if len(r0) != 1:
            raise LigandMFTError(f"{ham.source}: H(R) has no (or several) R = 0 blocks")
        D0 = (ham.H_up[r0[0]] - ham.H_dn[r0[0]]) * mask
        Dk = np.broadcast_to(D0, Hk[0].shape).copy()
    else:
        Dk = Hk[0] - Hk[1]
    W = np.ones((nw, nw))
    if split == "metal":
        is_metal = np.isin(ham.orbital_atom, metals)
        is_lig = np.isin(ham.orbital_atom, ligands)
        W[np.ix_(is_metal, is_lig)] = 2.0
        W[np.ix_(is_lig, is_metal)] = 0.0
    Lk, Rk = Dk * W[None], Dk * W.T[None]
    proj = np.array([(ham.orbital_atom == a).astype(float) for a in atoms])  # (nat, nw)
    # density matrices ρ_s(k) = Σ_occ v v†  (E = Tr[H ρ]); m = ρ↑ − ρ↓
    rho = [np.einsum("kin,kn,kjn->kij", v, (e < efermi).astype(float), np.conj(v)) for e, v in zip(eig, vec)]
    mk = rho[0] - rho[1]
    Lm = np.einsum("kij,kji->ki", Lk, mk).real.mean(axis=0)  # diag of (Δ∘W) m
    mR = np.einsum("kij,kji->ki", mk, Rk).real.mean(axis=0)  # diag of m (Δ∘Wᵀ)
    # Tr[Δ^(a) m] = ½ Σ_{i∈a} (((Δ∘W) m)_ii + (m (Δ∘Wᵀ))_ii)
    D_direct = -0.5 * proj @ (0.5 * (Lm + mR)) * 1000.0
    moments = proj @ np.einsum("kii->i", mk).real / nk
    splitting = np.array([float(np.real(np.trace(ham.onsite_splitting(a)))) / np.count_nonzero(ham.orbital_atom == a)
                          for a in atoms])
    Lmean, Rmean = Lk.mean(axis=0), Rk.mean(axis=0)
    norm = np.array([np.sqrt(0.5 * (np.sum(np.abs(p[:, None] * Lmean) ** 2) + np.sum(np.abs(Rmean * p[None, :]) ** 2)))
                     for p in proj])
    # energy integral of Tr[Δ^(a) G↑ Δ^(b) G↓] for all a, b, R: four terms Tr[P_a A P_bR B] (module docstring)
    emin = float(eig.min()) - 1.0
    z, w = energy_contour(emin, float(efermi), n_energy)
    nat = len(atoms)
    acc = np.zeros((nat, nat) + kmesh, dtype=complex)
    neg = tuple(np.ix_(*[(-np.arange(m)) % m for m in kmesh]))
    onsite_only = split == "onsite"
    for start in range(0, len(z), chunk):
        zc, wc = z[start:start + chunk], w[start:start + chunk]
        G = []
        for s in (0, 1):
            inv = 1.0 / (zc[:, None, None] - eig[s][None, :, :])  # (nz, nk, nw)
            G.append(np.einsum("kan,zkn,kbn->zkab", vec[s], inv, np.conj(vec[s]), optimize=True))
        pairs = [(Dk @ G[0], Dk @ G[1])] if onsite_only else \
            [(Lk @ G[0], Lk @ G[1]), (Lk @ G[0] @ Rk, G[1]), (G[0], Lk @ G[1] @ Rk), (G[0] @ Rk, G[1] @ Rk)]
        for A, B in pairs:
            shape = (len(zc),) + kmesh + (nw, nw)
            AR = np.fft.fftn(A.reshape(shape), axes=(1, 2, 3)) / nk  # A(R)
            BR = np.fft.fftn(B.reshape(shape), axes=(1, 2, 3)) / nk
            BmR = BR[(slice(None),) + neg]  # B(−R)
            # Σ_z w Σ_{i∈a, j∈b} A_ij(R) B_ji(−R)
            T = np.einsum("z,zxyuij,zxyuji->xyuij", wc, AR, BmR, optimize=True)
            acc += np.einsum("ai,xyuij,bj->abxyu", proj, T, proj, optimize=True) * (1.0 if onsite_only else 0.25)
    J = np.imag(acc) / (4 * np.pi) * 1000.0
    # symmetrise J_ab(R) = J_ba(−R) (exact for real Hamiltonians)
    J = 0.5 * (J + np.transpose(J, (1, 0, 2, 3, 4))[(slice(None), slice(None)) + neg])
    if not (np.all(np.isfinite(J)) and np.all(np.isfinite(D_direct))):
        raise LigandMFTError(f"{ham.source}: the energy integral gave non-finite values; check the model")
    symbols = []
    for a in atoms:
        labs = ham.elements[metals.index(a)] if a in metals else None
        symbols.append(labs or f"X{a}")
    return SiteResponse(atoms=atoms, n_metal=len(metals), elements=symbols, J=J, D_direct=D_direct, moments=moments,
                        splitting=splitting, norm=norm, kmesh=kmesh, n_energy=n_energy, efermi=float(efermi),
                        split=split)


def _to_q(X, kmesh):
    """Σ_R X(R) e^{2πi q·R} on the q-mesh; X (..., n1, n2, n3) indexed by R mod n → (..., n1, n2, n3)."""
    return np.fft.ifftn(X, axes=(-3, -2, -1)) * int(np.prod(kmesh))


def _to_R(Xq, kmesh):
    return np.fft.fftn(Xq, axes=(-3, -2, -1)) / int(np.prod(kmesh))


def _minimal_R(kmesh):
    """Minimal-image integer R for every mesh index: (n1, n2, n3, 3)."""
    axes = [np.where(np.arange(m) > m // 2, np.arange(m) - m, np.arange(m)) for m in kmesh]
    g = np.meshgrid(*axes, indexing="ij")
    return np.stack(g, axis=-1)


@dataclass
class LigandMFTResult:
    """Metal–metal exchange of four routes, plus the ligand sites' data.

    bonds: metal bonds (i, j, R) (indices into ``ham.magnetic``) with distances (Å); J_* internal convention (meV,
    each bond once, |S| = S, > 0 AF): ``J_metal`` plain LKAG, ``J_metal_inverse`` with the inverse-response
    correction, ``J_ligand`` ligand spins downfolded, ``J_ligand_inverse`` both.  A route that could not be done
    (ligand sector not positive definite) has None and its reason in ``notes``.
    sites: per site (metals, then ligands) element, atom index, on-site moment (μ_B), mean on-site splitting (eV),
    D_direct and D_sum_rule (meV; the on-site rotation stiffness from the density matrix and from the sum rule).
    site_pairs: raw LKAG J_ab(R) (meV, TB2J normalisation E = −Σ_{a≠b} J e_a·e_b with e along the fields, no sign
    division) for site pairs shorter than ``pair_rcut``, including the on-site J_aa(0).
    """

    bonds: list[tuple[int, int, tuple[int, int, int]]]
    distances: list[float]
    J_metal: list[float]
    J_metal_inverse: list[float]
    J_ligand: list[float] | None
    J_ligand_inverse: list[float] | None
    sites: list[dict]
    site_pairs: list[dict]
    settings: dict
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def shells(self, n: int = 3, tol: float = 0.05) -> dict[str, list[float | None]]:
        """Shell averages J1..Jn of every route (meV, internal convention)."""
        return {name: ([None] * n if getattr(self, name) is None else
                       _shell_means(self.distances, getattr(self, name), n, tol))
                for name in ("J_metal", "J_metal_inverse", "J_ligand", "J_ligand_inverse")}

    def as_dict(self) -> dict:
        return {"bonds": [{"i": int(i), "j": int(j), "R": [int(x) for x in R]} for i, j, R in self.bonds],
                "distances": [float(x) for x in self.distances],
                "J_metal": [float(x) for x in self.J_metal],
                "J_metal_inverse": [float(x) for x in self.J_metal_inverse],
                "J_ligand": None if self.J_ligand is None else [float(x) for x in self.J_ligand],
                "J_ligand_inverse": (None if self.J_ligand_inverse is None else
                                     [float(x) for x in self.J_ligand_inverse]),
                "sites": [dict(s) for s in self.sites], "site_pairs": [dict(p) for p in self.site_pairs],
                "settings": dict(self.settings), "notes": list(self.notes), "warnings": list(self.warnings),
                "convention": "J: H = sum_{i<j} J S_i.S_j, each bond once, |S| = S, J > 0 AF, meV; site_pairs J_raw: "
                              "TB2J normalisation along the fields (no moment-sign division), meV"}

    @classmethod
    def from_dict(cls, d: dict) -> "LigandMFTResult":
        try:
            return cls(bonds=[(int(b["i"]), int(b["j"]), tuple(int(x) for x in b["R"])) for b in d["bonds"]],
                       distances=[float(x) for x in d["distances"]], J_metal=[float(x) for x in d["J_metal"]],
                       J_metal_inverse=[float(x) for x in d["J_metal_inverse"]],
                       J_ligand=None if d["J_ligand"] is None else [float(x) for x in d["J_ligand"]],
                       J_ligand_inverse=None if d["J_ligand_inverse"] is None else
                       [float(x) for x in d["J_ligand_inverse"]],
                       sites=[dict(s) for s in d["sites"]], site_pairs=[dict(p) for p in d["site_pairs"]],
                       settings=dict(d["settings"]), notes=list(d.get("notes", [])),
                       warnings=list(d.get("warnings", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise LigandMFTError(f"ligand force-theorem result: malformed dictionary ({type(exc).__name__}: {exc})") \
                from None


def _stiffness(resp: SiteResponse, keep, rcut, cell, positions, onsite):
    """K(R) (meV) on the kept sites: off-diagonal −2J, diagonal by the sum rule or directly (module docstring)."""
    J = resp.J[np.ix_(keep, keep)]
    if rcut is not None:
        Rmin = _minimal_R(resp.kmesh)
        pos = np.asarray(positions)[[resp.atoms[k] for k in keep]]
        dvec = pos[None, :, None, None, None, :] - pos[:, None, None, None, None, :] + \
            (Rmin @ np.asarray(cell))[None, None]
        J = np.where(np.linalg.norm(dvec, axis=-1) <= rcut + 1e-9, J, 0.0)
    K = -2.0 * J
    sum_rule = 2.0 * J.sum(axis=(1, 2, 3, 4))
    diag = sum_rule if onsite == "sum_rule" else resp.D_direct[keep]
    K[np.arange(len(keep)), np.arange(len(keep)), 0, 0, 0] += diag
    return K, sum_rule


def _metal_J(Kq, resp, signs, spins, bonds_idx):
    KR = np.real(_to_R(Kq, resp.kmesh))
    out = []
    for a, b, R in bonds_idx:
        idx = tuple(int(R[k]) % resp.kmesh[k] for k in range(3))
        out.append(float(KR[(a, b) + idx] * signs[a] * signs[b] / (spins[a] * spins[b])))
    return out


def _bruno(Kq, D):
    """K (1 − D⁻¹K)⁻¹ per q; Kq (n, n, q...), D (n,) meV."""
    n = Kq.shape[0]
    Km = np.moveaxis(Kq.reshape(n, n, -1), -1, 0)  # (nq, n, n)
    A = np.eye(n)[None] - Km / D[None, :, None]
    out = np.linalg.solve(np.transpose(A, (0, 2, 1)), np.transpose(Km, (0, 2, 1)))  # (K A⁻¹)ᵀ = A⁻ᵀ Kᵀ
    out = np.transpose(out, (0, 2, 1))
    out = 0.5 * (out + np.conj(np.transpose(out, (0, 2, 1))))
    return np.moveaxis(out, 0, -1).reshape(Kq.shape)


def ligand_mft(ham: CollinearHamiltonian, kmesh=(12, 12, 1), efermi: float | None = None,
               n_electrons: float | None = None, n_energy: int = 120, split: str = "onsite", onsite: str = "sum_rule",
               rcut: float | None = None, bond_rcut: float = 9.0, pair_rcut: float = 4.5, ligands=None,
               response: SiteResponse | None = None) -> LigandMFTResult:
    """Metal-only, ligand-downfolded and inverse-response-corrected force-theorem exchange (module docstring) for the
    metal bonds shorter than ``bond_rcut`` Å that fit into the k-mesh supercell."""
    if onsite not in ("sum_rule", "direct"):
        raise LigandMFTError(f"onsite must be 'sum_rule' or 'direct', got {onsite!r}")
    for name, val in (("rcut", rcut), ("bond_rcut", bond_rcut), ("pair_rcut", pair_rcut)):
        if val is not None and not (np.isfinite(val) and val > 0):
            raise LigandMFTError(f"{name} must be a positive number of Å, got {val}")
    resp = response or site_response(ham, kmesh=kmesh, efermi=efermi, n_electrons=n_electrons, n_energy=n_energy,
                                     split=split, ligands=ligands)
    kmesh = resp.kmesh
    signs = ham.moment_signs()
    spins = list(ham.spins)
    nM = resp.n_metal
    nat = len(resp.atoms)
    warnings = list(resp.warnings)
    notes = []
    keepL = [k for k in range(nM, nat) if resp.norm[k] >= MIN_LIGAND_SPLITTING]
    inert = [k for k in range(nM, nat) if k not in keepL]
    if inert:
        warnings.append("ligand sites without exchange field (‖Δ‖ < %g eV), not rotated: %s" % (
            MIN_LIGAND_SPLITTING, ", ".join(f"{resp.elements[k]}{resp.atoms[k]}" for k in inert)))
    pos = np.asarray(ham.positions)
    cell = np.asarray(ham.cell)
    # metal bonds
    Rmin = _minimal_R(kmesh)
    bonds, dist = [], []
    for a in range(nM):
        for b in range(nM):
            for idx in np.ndindex(*kmesh):
                R = tuple(int(x) for x in Rmin[idx])
                if any(abs(R[k]) > (kmesh[k] - 1) // 2 for k in range(3)):
                    continue
                if (a, b, R) == (a, a, (0, 0, 0)) or not (a < b or (a == b and R > (0, 0, 0))):
                    continue
                d = float(np.linalg.norm(pos[ham.magnetic[b]] + np.array(R) @ cell - pos[ham.magnetic[a]]))
                if d <= bond_rcut:
                    bonds.append((a, b, R))
                    dist.append(d)
    order = np.argsort(dist, kind="stable")
    bonds = [bonds[k] for k in order]
    dist = [dist[k] for k in order]
    DM = resp.D_direct[:nM]
    if not np.all(DM > 0):
        raise LigandMFTError(f"{ham.source}: a metal's field × moment D = −½Tr[Δ m] is not positive ({DM} meV): the "
                             "reference is not a stable collinear state of this model")
    # metal-only: K on metals with the metal-only sum rule
    metals = list(range(nM))
    K0, _ = _stiffness(resp, metals, rcut, cell, pos, "sum_rule")
    K0q = _to_q(K0, kmesh)
    J_metal = _metal_J(K0q, resp, signs, spins, bonds)
    J_metal_inv = _metal_J(_bruno(K0q, DM), resp, signs, spins, bonds)
    # all sites
    keep = metals + keepL
    K, sum_rule = _stiffness(resp, keep, rcut, cell, pos, onsite)
    Kq = _to_q(K, kmesh)
    nk_ = len(keep)
    Km = np.moveaxis(Kq.reshape(nk_, nk_, -1), -1, 0)  # (nq, n, n)
    Km = 0.5 * (Km + np.conj(np.transpose(Km, (0, 2, 1))))
    scale = np.ones(nk_)
    scale[nM:] = 1.0 / resp.norm[keepL]
    Ks = Km * scale[None, :, None] * scale[None, None, :]
    KMM, KML, KLL = Ks[:, :nM, :nM], Ks[:, :nM, nM:], Ks[:, nM:, nM:]
    J_lig = J_lig_inv = None
    if keepL:
        evals = np.linalg.eigvalsh(KLL)
        lam_min = float(evals.min())
        if not lam_min > 1e-9 * max(1.0, float(np.abs(evals).max())):
            notes.append(f"ligand sector not positive definite (smallest eigenvalue of the rescaled K_LL(q) "
                         f"{lam_min:.3e}): the reference is not a minimum of the energy with the metals frozen, so "
                         "the ligand spins cannot be downfolded; no downfolded J")
        else:
            Keff = KMM - KML @ np.linalg.solve(KLL, np.conj(np.transpose(KML, (0, 2, 1))))
            Keff = 0.5 * (Keff + np.conj(np.transpose(Keff, (0, 2, 1))))
            Keffq = np.moveaxis(Keff, 0, -1).reshape((nM, nM) + kmesh)
            J_lig = _metal_J(Keffq, resp, signs, spins, bonds)
            J_lig_inv = _metal_J(_bruno(Keffq, DM), resp, signs, spins, bonds)
    else:
        notes.append("no ligand site carries an exchange field: the downfolded J equals the metal-only J")
        J_lig, J_lig_inv = list(J_metal), list(J_metal_inv)
    # sites and site pairs
    sr_full = np.zeros(nat)
    sr_full[keep] = sum_rule
    sites = [{"element": resp.elements[k], "atom": int(resp.atoms[k]), "kind": "metal" if k < nM else "ligand",
              "moment_muB": float(resp.moments[k]), "splitting_eV": float(resp.splitting[k]),
              "field_norm_eV": float(resp.norm[k]), "D_direct_meV": float(resp.D_direct[k]),
              "D_sum_rule_meV": float(sr_full[k]) if k in keep else None, "rotated": k in keep}
             for k in range(nat)]
    pairs = []
    for a in range(nat):
        for b in range(a, nat):
            for idx in np.ndindex(*kmesh):
                R = tuple(int(x) for x in Rmin[idx])
                if a == b and R < (0, 0, 0):
                    continue
                d = float(np.linalg.norm(pos[resp.atoms[b]] + np.array(R) @ cell - pos[resp.atoms[a]]))
                if d <= pair_rcut:
                    pairs.append({"a": a, "b": b, "R": list(R), "distance": round(d, 4),
                                  "pair": f"{resp.elements[a]}{resp.atoms[a]}-{resp.elements[b]}{resp.atoms[b]}",
                                  "J_raw_meV": float(resp.J[(a, b) + idx])})
    pairs.sort(key=lambda p: (p["distance"], p["a"], p["b"]))
    settings = {"kmesh": list(kmesh), "n_energy": resp.n_energy, "efermi_eV": resp.efermi, "split": resp.split,
                "onsite": onsite, "fourier_cutoff": (f"bonds ≤ {rcut} Å (minimal image)" if rcut else
                                                      f"all R of the {'×'.join(map(str, kmesh))} Born–von Kármán "
                                                      "supercell (exact on the q-mesh)"),
                "bond_rcut_A": bond_rcut, "spins": spins, "moment_signs": list(signs),
                "sum_rule_violation_meV": [float(sr_full[k] - resp.D_direct[k]) for k in keep]}
    return LigandMFTResult(bonds=bonds, distances=dist, J_metal=J_metal, J_metal_inverse=J_metal_inv,
                           J_ligand=J_lig, J_ligand_inverse=J_lig_inv, sites=sites, site_pairs=pairs,
                           settings=settings, notes=notes, warnings=warnings)


SPLIT_TAGS = {"onsite": "",
              "metal": " [metal split: spin-dependent M–L hopping rotates with the metal]",
              "bond": " [bond split: spin-dependent hopping shared by both ends]"}


def ligand_routes(ham: CollinearHamiltonian, kmesh=(12, 12, 1), efermi: float | None = None,
                  n_electrons: float | None = None, n_energy: int = 120, splits=("onsite", "metal", "bond"),
                  rcut: float | None = None, keep_results: dict | None = None) -> dict[str, tuple]:
    """Routes table entries: name → (J1, J2, J3, settings, seconds) (meV, internal convention; None where a route
    gives no number, the reason in settings["notes"]).

    "force theorem (LKAG, metal only)" is the package's :func:`~wannmag.magnetism.mft.lkag_exchange` (shell means
    of its bonds); the others come from :func:`ligand_mft` for each split of Δ (module docstring).  Seconds: wall
    time of the Green's-function step plus the downfolding (the metal-only + inverse-response route of the onsite
    split reuses the LKAG time).  ``keep_results``: if a dict, the LigandMFTResult of every split is stored in it."""
    out = {}
    t0 = time.perf_counter()
    base = lkag_exchange(ham, kmesh=kmesh, efermi=efermi, n_electrons=n_electrons, n_energy=n_energy, rcut=9.0)
    t_base = time.perf_counter() - t0
    sh = _shell_means(base.distances, base.J)
    out["force theorem (LKAG, metal only)"] = (*sh, {"kmesh": list(base.kmesh), "n_energy": base.n_energy,
                                                     "efermi_eV": base.efermi}, t_base)
    for split in splits:
        if split not in SPLIT_TAGS:
            raise LigandMFTError(f"split must be one of {', '.join(SPLIT_TAGS)}, got {split!r}")
        t0 = time.perf_counter()
        resp = site_response(ham, kmesh=kmesh, efermi=base.efermi, n_energy=n_energy, split=split)
        t_resp = time.perf_counter() - t0
        t1 = time.perf_counter()
        res = ligand_mft(ham, response=resp, rcut=rcut)
        t_fold = time.perf_counter() - t1
        if keep_results is not None:
            keep_results[split] = res
        sh = res.shells(3)
        tag = SPLIT_TAGS[split]
        settings = dict(res.settings, notes=res.notes, warnings=res.warnings)
        if split != "onsite":
            out[f"force theorem, metal only{tag}"] = (*sh["J_metal"], settings, t_resp + t_fold)
            out[f"force theorem, metal only + inverse response{tag}"] = (*sh["J_metal_inverse"], settings,
                                                                          t_resp + t_fold)
        else:
            out["force theorem, metal only + inverse response"] = (*sh["J_metal_inverse"], settings, t_base + t_fold)
        out[f"force theorem, ligand-downfolded{tag}"] = (*sh["J_ligand"], settings, t_resp + t_fold)
        out[f"force theorem, ligand-downfolded + inverse response{tag}"] = (*sh["J_ligand_inverse"], settings,
                                                                            t_resp + t_fold)
    return out


def _shell_means(distances, J, n: int = 3, tol: float = 0.05):
    d = np.asarray(distances)
    v = np.asarray(J)
    uniq = []
    for x in sorted(d):
        if not uniq or x - uniq[-1] > tol:
            uniq.append(x)
    return [float(np.mean(v[np.abs(d - uniq[k]) <= tol])) if k < len(uniq) else None for k in range(n)]
