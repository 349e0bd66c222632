"""Analytic superexchange of two t2g³ (S = 3/2, empty eg) ions in the Kanamori model, channel by channel.

Derivations: ``docs/superexchange.md``.  Conventions: H = J S_i·S_j (each bond once, |S| = 3/2, J > 0 AF); energies
in eV inside, J returned in meV.  Orbital order of every d block: dz2, dxz, dyz, dx2-y2, dxy (local octahedral
frame: t2g = dxz, dyz, dxy; eg = dz2, dx2-y2).

Ingredients
-----------
* Intermediate d⁴ states of the ion that *receives* an electron (``receiver_components``): into a t2g orbital the
  t2g⁴ ³T1 state (pair hopping mixes it with t2g² eg² when eg orbitals are present: a 2×2 problem), into an eg
  orbital the t2g³eg¹ states with S' = 2 (Hund, −5J_H relative to ³T1 at equal levels) and S' = 1 (−J_H).  Each
  component k has a weight w_k, an energy offset λ_k (eV, relative to the pure ³T1) and a spin coefficient c_k with
  P c_{mσ'} P_k c†_{mσ} P = w_k (α_k δ_{σ'σ} + c_k S·τ_{σ'σ}):  t2g: c = −w/(2S) = −w/3;  eg: c = ±1/(2S+1) = ±1/4.
* The donor (the ion that loses an electron, always from a half-filled t2g orbital) contributes s_a → S/(2S)
  (exact inside the ⁴A2 multiplet).
* Mott–Hubbard (MH) channel, electron a (ion i, t2g) → m (ion j), amplitude through all paths
  A_k = t_dd(m, a) + Σ_{L,p} t_{m,Lp} t_{Lp,a} / Δ_{k,p} + Σ t t t / (Δ Δ) (M–X–X–M), energy
  E_k = U + 2J_H + λ_k:        J = −(2 c_k / 2S) A_k² / E_k      (summed over k, m, a and both directions).
* Charge-transfer (CT) channel: two electrons from the bridging ligands into m1 (ion i) and m2 (ion j), two ligand
  holes with the ligand Kanamori interaction (U_p, J_p, U_p' = U_p − 2J_p):
  J = Σ c_k1 c_k2 [G_S − G_T],  G_X = 2 Φ_Xᵀ (Δ_k1 + Δ_k2 + H_X)^{-1} Φ_X,
  Φ(p, q) = t_{m1 p} t_{m2 q} (1/Δ_{k1,p} + 1/Δ_{k2,q}), X = singlet (orbital-symmetric part of Φ) or triplet
  (antisymmetric part).

The numbers are checked against exact diagonalisation and numerical perturbation theory in
tests/magnetism/test_superexchange_ed.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ...errors import WannmagError

__all__ = [
    "EG",
    "ION_DEFAULTS",
    "LIGAND_DEFAULTS",
    "T2G",
    "KanamoriParameters",
    "SuperexchangeError",
    "ct_direct_exchange",
    "ct_exchange",
    "exchange_from_blocks",
    "mh_exchange",
    "orbital_type",
    "receiver_components",
]

T2G = (1, 2, 4)
EG = (0, 3)


class SuperexchangeError(WannmagError):
    """The superexchange analysis cannot be done with this input."""


#: Kanamori defaults per ion (eV).  J_H: the t2g Kanamori J = 3B + C of the free ion (Racah B, C; Griffith, "The
#: theory of transition-metal ions", 1961), reduced by covalency to ≈ 0.7 eV; U ≈ 3 eV as used for Cr d in DFT+U of
#: CrI3 (and this project's DFT+U runs) and of the order of cRPA values for 3d ions in halides/chalcogenides.
ION_DEFAULTS = {"Cr": {"U": 3.0, "JH": 0.7}, "V": {"U": 3.0, "JH": 0.7}, "Mn": {"U": 3.5, "JH": 0.8}}
#: Ligand-p defaults (eV): order-of-magnitude values (O 2p: U_p ≈ 4, J_p ≈ 1.2 as in Geertsma & Khomskii, PRB 54,
#: 3011 (1996)); the more extended S 3p and I 5p shells are screened more.  Override them.
LIGAND_DEFAULTS = {"O": {"Up": 4.0, "Jp": 1.2}, "S": {"Up": 3.0, "Jp": 0.7}, "Se": {"Up": 2.5, "Jp": 0.6},
                   "Cl": {"Up": 3.0, "Jp": 0.7}, "Br": {"Up": 2.5, "Jp": 0.6}, "I": {"Up": 2.0, "Jp": 0.5}}


@dataclass
class KanamoriParameters:
    """Parameters of the superexchange formulas (eV).

    U, JH : Kanamori U and Hund J_H on the metal (U' = U − 2J_H).
    ten_dq : eg − t2g level splitting of the bare d levels (10Dq).
    delta_t : charge-transfer energy into the t2g shell, d³p⁶ → d⁴(³T1, t2g⁴)p⁵ (pure ³T1, average ligand level).
    Up, Jp : ligand Kanamori U_p, J_p.
    n_eg : number of eg orbitals present (2 for a full d shell; only for the pair-hopping mixing of ³T1).
    S : spin (only 3/2: t2g³ with empty eg is implemented).
    hund_ct : True (exact for the Kanamori model): the charge-transfer energies of the ligand paths are resolved by
        the d⁴ multiplet of the receiving ion (Δ_t for ³T1, Δ_t + 10Dq − 5J_H / − J_H for t2g³eg¹ S' = 2 / 1).
        False: single-particle denominators Δ_t (t2g) and Δ_t + 10Dq (eg) for every multiplet — the textbook
        "effective hopping t_pd²/Δ" approximation, for comparison only (not what exact diagonalisation gives).
    """

    U: float = 3.0
    JH: float = 0.7
    ten_dq: float = 1.5
    delta_t: float = 4.0
    Up: float = 2.0
    Jp: float = 0.5
    n_eg: int = 2
    S: float = 1.5
    hund_ct: bool = True

    def __post_init__(self):
        if abs(self.S - 1.5) > 1e-9:
            raise SuperexchangeError(f"superexchange formulas are implemented for t2g³ ions (S = 3/2), not S = {self.S}")
        if self.U <= 0 or self.JH < 0 or self.JH >= self.U / 2:
            raise SuperexchangeError(f"need U > 0 and 0 ≤ J_H < U/2 (got U = {self.U}, J_H = {self.JH})")

    @staticmethod
    def delta_t_from_average(delta_av: float, JH: float, ten_dq: float = 0.0) -> float:
        """Δ into the t2g ³T1 from the multiplet- and orbital-averaged (ZSA) Δ = ε̄_d − ε̄_p of a spin-averaged model
        (ε̄_d the mean of the five d levels, as in :func:`wannmag.tightbinding.classify.charge_transfer_energy`):
        Δ_t = Δ − 0.4·10Dq + E(³T1) − E(d³) − 3Ū with Ū = U − 20J_H/9 the average Kanamori pair interaction,
        i.e. Δ_t = Δ − 0.4·10Dq + 8J_H/3 (the t2g level lies 0.4·10Dq below the d mean)."""
        return delta_av - 0.4 * ten_dq + 8.0 * JH / 3.0

    @property
    def E_tt(self) -> float:
        """d³d³ → d²d⁴(³T1) excitation energy U + 2J_H (pure ³T1)."""
        return self.U + 2.0 * self.JH

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "KanamoriParameters":
        """Inverse of :meth:`as_dict` (eV; checked as on construction)."""
        return cls(**d)


def orbital_type(m: int) -> str:
    return "t2g" if m in T2G else "eg"


def receiver_components(kind: str, p: KanamoriParameters):
    """[(w_k, λ_k, c_k, μ_k)] of a d³ ion receiving an electron into a ``kind`` ('t2g'/'eg') orbital: weight, energy
    offset (eV) relative to the pure ³T1 d⁴ state, the S·τ coefficient (see the module docstring), and the offset μ_k
    used in the charge-transfer denominators Δ_k = Δ_t + μ_k (μ_k = λ_k if ``p.hund_ct``, else 0 / 10Dq)."""
    J = p.JH
    if kind == "t2g":
        if p.n_eg == 0:
            return [(1.0, 0.0, -1.0 / (2 * p.S), 0.0)]
        n = p.n_eg
        M = np.array([[0.0, np.sqrt(n) * J], [np.sqrt(n) * J, 2 * p.ten_dq + (n - 1) * J]])
        lam, vec = np.linalg.eigh(M)
        return [(float(vec[0, k] ** 2), float(lam[k]), -float(vec[0, k] ** 2) / (2 * p.S),
                 float(lam[k]) if p.hund_ct else 0.0) for k in range(2)]
    if kind == "eg":
        hs, ls = p.ten_dq - 5.0 * J, p.ten_dq - J
        return [(1.0, hs, 1.0 / (2 * p.S + 1), hs if p.hund_ct else p.ten_dq),
                (1.0, ls, -1.0 / (2 * p.S + 1), ls if p.hund_ct else p.ten_dq)]
    raise SuperexchangeError(f"unknown orbital kind {kind!r}")


def mh_exchange(amplitude, kind: str, p: KanamoriParameters, per_component: bool = False):
    """J (meV) of the Mott–Hubbard transfer of one electron from a half-filled t2g orbital of one ion into an orbital of
    ``kind`` on the other, one direction.  ``amplitude(μ)`` returns the effective hopping A (eV) for a receiver state
    with charge-transfer offset μ (the ligand paths depend on it through Δ_{k,p} = Δ_t + μ + hole energy); a number
    is taken as μ-independent.  J = Σ_k −(2 c_k / 2S) A_k² / (U + 2J_H + λ_k)."""
    out = []
    for _, lam, c, mu in receiver_components(kind, p):
        A = amplitude(mu) if callable(amplitude) else float(amplitude)
        E = p.E_tt + lam
        if E <= 0:
            raise SuperexchangeError(f"Mott–Hubbard excitation energy {E:.3f} eV ≤ 0 ({kind} receiver): "
                                     "perturbation theory does not apply")
        out.append(-1000.0 * 2.0 * c / (2 * p.S) * A * A / E)
    return out if per_component else float(sum(out))


def _two_hole_blocks(hole_energy, ligand_of, Up, Jp):
    """Singlet (orbital-symmetric) and triplet (antisymmetric) two-hole Hamiltonians on the ligand orbitals.

    Orbitals k have one-hole energies ``hole_energy[k]`` (relative) and belong to ligand ``ligand_of[k]``; holes on
    the same ligand interact with the Kanamori U_p, J_p (pair hopping and spin flip included), holes on different
    ligands do not.  Returns (pairs_S, H_S, pairs_T, H_T) with pairs the (p, q) labels of the basis states
    (p ≤ q for S, p < q for T)."""
    n = len(hole_energy)
    pS = [(a, b) for a in range(n) for b in range(a, n)]
    pT = [(a, b) for a in range(n) for b in range(a + 1, n)]
    HS = np.zeros((len(pS), len(pS)))
    for i, (a, b) in enumerate(pS):
        HS[i, i] = hole_energy[a] + hole_energy[b]
        same = ligand_of[a] == ligand_of[b]
        if a == b:
            HS[i, i] += Up
        elif same:
            HS[i, i] += Up - Jp  # open-shell singlet: U' + J = U − J
    for i, (a, b) in enumerate(pS):
        for j, (c, d) in enumerate(pS):
            if a == b and c == d and a != c and ligand_of[a] == ligand_of[c]:
                HS[i, j] += Jp  # pair hopping between doubly occupied orbitals
    HT = np.zeros((len(pT), len(pT)))
    for i, (a, b) in enumerate(pT):
        HT[i, i] = hole_energy[a] + hole_energy[b] + ((Up - 3 * Jp) if ligand_of[a] == ligand_of[b] else 0.0)
    return pS, HS, pT, HT


def ct_exchange(t1, t2, kind1: str, kind2: str, p: KanamoriParameters, hole_energy=None, ligand_of=None,
                per_component: bool = False):
    """J (meV) of the charge-transfer channel: ligand electrons into an orbital of ``kind1`` on ion 1 and one of
    ``kind2`` on ion 2, two ligand holes.  ``t1``/``t2``: hoppings (eV) between that metal orbital and every bridging
    ligand orbital (vectors over the ligand orbitals), ``hole_energy``: one-hole energies of the ligand orbitals
    relative to the average (eV, = ε̄_p − ε_p), ``ligand_of``: ligand index of each orbital (holes interact only on the
    same ligand).  See the module docstring."""
    t1 = np.asarray(t1, float)
    t2 = np.asarray(t2, float)
    n = len(t1)
    h = np.zeros(n) if hole_energy is None else np.asarray(hole_energy, float)
    lig = [0] * n if ligand_of is None else list(ligand_of)
    pS, HS, pT, HT = _two_hole_blocks(h, lig, p.Up, p.Jp)
    out = []
    for _, _, c1, l1 in receiver_components(kind1, p):
        for _, _, c2, l2 in receiver_components(kind2, p):
            d1 = p.delta_t + l1 + h
            d2 = p.delta_t + l2 + h
            if np.any(d1 <= 0) or np.any(d2 <= 0):
                raise SuperexchangeError(f"charge-transfer energy ≤ 0 ({kind1}/{kind2} receiver): "
                                         "perturbation theory does not apply")
            Phi = np.outer(t1, t2) * (1.0 / d1[:, None] + 1.0 / d2[None, :])
            vS = np.array([Phi[a, a] if a == b else (Phi[a, b] + Phi[b, a]) / np.sqrt(2) for a, b in pS])
            vT = np.array([(Phi[a, b] - Phi[b, a]) / np.sqrt(2) for a, b in pT])
            E0 = 2 * p.delta_t + l1 + l2
            GS = 2.0 * vS @ np.linalg.solve(E0 * np.eye(len(pS)) + HS, vS) if len(pS) else 0.0
            GT = 2.0 * vT @ np.linalg.solve(E0 * np.eye(len(pT)) + HT, vT) if len(pT) else 0.0
            out.append(1000.0 * c1 * c2 * (GS - GT))
    return out if per_component else float(sum(out))


def ct_direct_exchange(t_dd: float, t1, t2, kind1: str, kind2: str, p: KanamoriParameters, hole_energy=None,
                       per_component: bool = False):
    """J (meV) of the third-order interference of the direct hopping ``t_dd`` = <m1|h|m2> with the ligand paths in
    the charge-transfer state: a ligand electron enters m2 (ion 2), hops directly to m1 (ion 1) and returns from m1
    to the ligand (and the reverse cycle).  J = 2 Σ_{k1,k2} 2 c_k1 c_k2 t_dd Σ_p t1[p] t2[p] / (Δ_{k1,p} Δ_{k2,p}).
    (The two other orderings of the same hops pass through the Mott–Hubbard state and are the cross term of
    A_k² in :func:`mh_exchange`.)"""
    t1 = np.asarray(t1, float)
    t2 = np.asarray(t2, float)
    h = np.zeros(len(t1)) if hole_energy is None else np.asarray(hole_energy, float)
    out = []
    for _, _, c1, l1 in receiver_components(kind1, p):
        for _, _, c2, l2 in receiver_components(kind2, p):
            d1 = p.delta_t + l1 + h
            d2 = p.delta_t + l2 + h
            if np.any(d1 <= 0) or np.any(d2 <= 0):
                raise SuperexchangeError("charge-transfer energy ≤ 0: perturbation theory does not apply")
            out.append(1000.0 * 4.0 * c1 * c2 * t_dd * float(np.sum(t1 * t2 / (d1 * d2))))
    return out if per_component else float(sum(out))


def exchange_from_blocks(t_dd, t_ip, t_pj, kinds_i, kinds_j, p: KanamoriParameters, hole_energy=None, ligand_of=None):
    """All channels (meV, by category) of a metal pair from its hopping blocks: ``t_dd`` (n_i × n_j) direct,
    ``t_ip`` (n_i × n_L) metal i → bridging ligand orbitals, ``t_pj`` (n_L × n_j) ligand → metal j (either may be
    None), ``kinds_i``/``kinds_j`` the type ('t2g'/'eg') of every metal orbital; ``hole_energy`` ε̄_p − ε_p and
    ``ligand_of`` per ligand orbital.  The same formulas as the bond analysis, on bare blocks (used by the tests)."""
    t_dd = np.asarray(t_dd, float)
    ni, nj = t_dd.shape
    has_l = t_ip is not None and np.size(t_ip) > 0
    if has_l:
        t_ip = np.asarray(t_ip, float)
        t_pj = np.asarray(t_pj, float)
        h = np.zeros(t_ip.shape[1]) if hole_energy is None else np.asarray(hole_energy, float)
    out = {"t2g–t2g MH": 0.0, "t2g–eg MH": 0.0, "CT t2g–t2g": 0.0, "CT t2g–eg": 0.0, "CT eg–eg": 0.0,
           "CT×direct": 0.0}

    def amp(donor_row, recv_col, tdd):
        if not has_l:
            return lambda mu: tdd
        return lambda mu: tdd + float(np.sum(donor_row * recv_col / (p.delta_t + mu + h)))

    for a in range(ni):
        for b in range(nj):
            ka, kb = kinds_i[a], kinds_j[b]
            if ka == "t2g":   # a (i) → b (j)
                A = amp(t_ip[a] if has_l else None, t_pj[:, b] if has_l else None, t_dd[a, b])
                out["t2g–t2g MH" if kb == "t2g" else "t2g–eg MH"] += mh_exchange(A, kb, p)
            if kb == "t2g":   # b (j) → a (i)
                A = amp(t_pj[:, b] if has_l else None, t_ip[a] if has_l else None, t_dd[a, b])
                out["t2g–t2g MH" if ka == "t2g" else "t2g–eg MH"] += mh_exchange(A, ka, p)
            if has_l:
                cat = {("t2g", "t2g"): "CT t2g–t2g", ("eg", "eg"): "CT eg–eg"}.get((ka, kb), "CT t2g–eg")
                out[cat] += ct_exchange(t_ip[a], t_pj[:, b], ka, kb, p, hole_energy=h, ligand_of=ligand_of)
                if t_dd[a, b] != 0.0:
                    out["CT×direct"] += ct_direct_exchange(t_dd[a, b], t_ip[a], t_pj[:, b], ka, kb, p, hole_energy=h)
    return out
