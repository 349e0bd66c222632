"""Exact diagonalisation and numerical perturbation theory for small metal–(ligand)–metal clusters.

Purpose: validate the analytic superexchange formulas of :mod:`.formulas` (see ``docs/superexchange.md``).

Cluster model (energies eV)::

    H = Σ_{ij,σ} h_ij c†_iσ c_jσ  +  Σ_sites H_K(site)

with h the one-body matrix over all orbitals of all sites (on-site levels on its diagonal blocks, hoppings between
sites) and, on every site, the Kanamori interaction with intra-orbital U, inter-orbital U' = U − 2J, Hund J,
including the spin-flip and pair-hopping terms::

    H_K = U Σ_m n_m↑ n_m↓ + U' Σ_{m<m'} Σ_{σσ'} n_mσ n_m'σ' − J Σ_{m<m'} Σ_σ n_mσ n_m'σ
          − J Σ_{m≠m'} c†_m↑ c_m↓ c†_m'↓ c_m'↑ + J Σ_{m≠m'} c†_m↑ c†_m↓ c_m'↓ c_m'↑

(metals: U, J_H; ligands: U_p, J_p).  Fock states are bit strings, spin-major (bit k = orbital k spin up,
bit n_orb + k = orbital k spin down); fermion signs from the number of occupied bits below the one acted on.

* :func:`ed_spin_ladder` — the multiplet energies E(S_tot) of the two-spin ladder: H + shift·S² makes the lowest
  state of the sector S_z = M the multiplet S_tot = M (checked through <S²>), one Lanczos eigenvalue per sector; the
  Landé interval rule E(S) − E(S − 1) = J S gives J and the deviation from a Heisenberg ladder.
* :func:`perturbative_exchange` — the effective Hamiltonian on the ground manifold (product of the sites' ground
  multiplets) to 2nd, 3rd and 4th order in the inter-site hopping, computed numerically in the basis of exact site
  eigenstates (Takahashi's formula, J. Phys. C 10, 1289 (1977)); its projection on S_1·S_2 gives J.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations, product

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import eigsh

from ...errors import WannmagError

__all__ = [
    "Cluster",
    "ClusterSite",
    "EDError",
    "PTResult",
    "SpinLadder",
    "build_hamiltonian",
    "build_s2",
    "ed_spin_ladder",
    "fock_basis",
    "kanamori_site_matrix",
    "ligand_site",
    "lowest_eigenvalues",
    "metal_site",
    "perturbative_exchange",
    "site_multiplets",
]


class EDError(WannmagError):
    """An exact-diagonalisation or perturbation-theory cluster cannot be set up or solved."""


@dataclass
class ClusterSite:
    """One site of a cluster: ``n_orb`` orbitals with on-site matrix ``levels`` (n_orb × n_orb or n_orb vector, eV),
    Kanamori U and J (eV), and the number of electrons ``n_el`` of its ground configuration (for perturbation theory).
    """

    name: str
    n_orb: int
    levels: np.ndarray
    U: float
    J: float
    n_el: int
    orbital_names: list = field(default_factory=list)

    def __post_init__(self):
        lv = np.asarray(self.levels, dtype=float)
        self.levels = np.diag(lv) if lv.ndim == 1 else lv
        if self.levels.shape != (self.n_orb, self.n_orb):
            raise EDError(f"site {self.name}: levels must be {self.n_orb} values or a {self.n_orb}×{self.n_orb} matrix")
        if not self.orbital_names:
            self.orbital_names = [f"o{k}" for k in range(self.n_orb)]


@dataclass
class Cluster:
    """Sites plus the inter-site hopping: ``hopping[(a, b)]`` is the n_orb(a) × n_orb(b) block <a m|h|b m'> (eV);
    the block (b, a) is its transpose (real hoppings)."""

    sites: list
    hopping: dict = field(default_factory=dict)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum([s.n_orb for s in self.sites])])

    @property
    def n_orb(self) -> int:
        return int(self.offsets[-1])

    def one_body(self, scale: float = 1.0) -> np.ndarray:
        """The full one-body matrix h (levels on the diagonal blocks, hoppings × ``scale`` off the diagonal)."""
        off = self.offsets
        h = np.zeros((self.n_orb, self.n_orb))
        for k, s in enumerate(self.sites):
            h[off[k]:off[k + 1], off[k]:off[k + 1]] = s.levels
        for (a, b), blk in self.hopping.items():
            blk = np.asarray(blk, float)
            h[off[a]:off[a + 1], off[b]:off[b + 1]] += scale * blk
            h[off[b]:off[b + 1], off[a]:off[a + 1]] += scale * blk.T
        return h

    @property
    def n_electrons(self) -> int:
        return int(sum(s.n_el for s in self.sites))


def metal_site(name: str, U: float, J: float, ten_dq: float = 0.0, n_eg: int = 0) -> ClusterSite:
    """A t2g³ metal: three degenerate t2g orbitals at 0 and ``n_eg`` eg orbitals at 10Dq (orbital order t2g, eg)."""
    names = ["t2g1", "t2g2", "t2g3"] + [f"eg{k + 1}" for k in range(n_eg)]
    return ClusterSite(name, 3 + n_eg, np.array([0.0] * 3 + [ten_dq] * n_eg), U, J, 3, names)


def ligand_site(name: str, n_p: int, Up: float, Jp: float, delta_t: float, U: float, J: float,
                hole_energy=None) -> ClusterSite:
    """A filled ligand shell of ``n_p`` p orbitals whose levels put the charge-transfer energy d³p⁶ → d⁴(³T1)p⁵ of a
    t2g³ metal with t2g levels at 0 at ``delta_t`` (eV): ε_p = E(³T1) − E(d³) − [E(p^{2n}) − E(p^{2n−1})] − Δ_t with
    E(³T1) − E(d³) = 3U − 4J and E(p^{2n}) − E(p^{2n−1}) = U_p + (n − 1)(2U_p − 5J_p) (interaction energies).
    ``hole_energy`` (per orbital, ε̄_p − ε_p) makes the levels orbital-dependent."""
    eps = 3 * U - 4 * J - (Up + (n_p - 1) * (2 * Up - 5 * Jp)) - delta_t
    h = np.zeros(n_p) if hole_energy is None else np.asarray(hole_energy, float)
    return ClusterSite(name, n_p, eps - h, Up, Jp, 2 * n_p, [f"p{k + 1}" for k in range(n_p)])


# ---------------------------------------------------------------------------------------------------- Fock space
def fock_basis(n_orb: int, n_up: int, n_dn: int) -> np.ndarray:
    """Sorted bit strings (int64) with ``n_up`` up and ``n_dn`` down electrons in ``n_orb`` orbitals (spin-major)."""
    if not (0 <= n_up <= n_orb and 0 <= n_dn <= n_orb):
        return np.zeros(0, dtype=np.int64)
    ups = np.array([sum(1 << k for k in c) for c in combinations(range(n_orb), n_up)], dtype=np.int64)
    dns = np.array([sum(1 << k for k in c) for c in combinations(range(n_orb), n_dn)], dtype=np.int64)
    return np.sort((ups[:, None] | (dns[None, :] << n_orb)).ravel())


def _apply(states: np.ndarray, ops):
    """Apply a product of creation/annihilation operators (``ops`` = [(bit, dagger), ...], rightmost acts first) to
    every state; returns (indices of the states that survive, the resulting states, the fermion signs)."""
    idx = np.arange(len(states))
    cur = states.copy()
    sign = np.ones(len(states))
    for bit, dag in reversed(ops):
        b = np.int64(1) << np.int64(bit)
        occ = (cur & b) != 0
        keep = ~occ if dag else occ
        idx, cur, sign = idx[keep], cur[keep], sign[keep]
        below = np.bitwise_count(cur & (b - 1)).astype(np.int64)
        sign = sign * (1 - 2 * (below & 1))
        cur = cur ^ b
    return idx, cur, sign


def _interaction_terms(n_orb_total: int, orbs, U: float, J: float):
    """Kanamori terms of one site whose orbitals are the global orbital indices ``orbs``: (diagonal pairs, off-diagonal
    operator strings).  Diagonal: list of (bit_a, bit_b, coefficient) for n_a n_b.  Off-diagonal: list of (ops, coef)."""
    up = lambda m: m
    dn = lambda m: m + n_orb_total
    Up = U - 2.0 * J
    diag, off = [], []
    for m in orbs:
        diag.append((up(m), dn(m), U))
    for m, mp in combinations(orbs, 2):
        diag += [(up(m), dn(mp), Up), (dn(m), up(mp), Up), (up(m), up(mp), Up - J), (dn(m), dn(mp), Up - J)]
    if J != 0.0:
        for m in orbs:
            for mp in orbs:
                if m == mp:
                    continue
                # −J c†_m↑ c_m↓ c†_m'↓ c_m'↑
                off.append(([(up(m), True), (dn(m), False), (dn(mp), True), (up(mp), False)], -J))
                # +J c†_m↑ c†_m↓ c_m'↓ c_m'↑
                off.append(([(up(m), True), (dn(m), True), (dn(mp), False), (up(mp), False)], J))
    return diag, off


def build_hamiltonian(states: np.ndarray, h1: np.ndarray, sites_orbs, n_orb: int) -> sp.csr_matrix:
    """Sparse H on the basis ``states``: one-body ``h1`` (spin-independent) plus Kanamori terms on every site;
    ``sites_orbs`` = [(global orbital indices, U, J), ...]."""
    n = len(states)
    rows, cols, vals = [], [], []
    diag = np.zeros(n)
    for i in range(n_orb):
        for j in range(n_orb):
            t = h1[i, j]
            if t == 0.0:
                continue
            for s in (0, n_orb):
                if i == j:
                    diag += t * ((states >> np.int64(i + s)) & 1)
                    continue
                idx, new, sign = _apply(states, [(i + s, True), (j + s, False)])
                if len(idx):
                    # membership check: in a restricted basis (ed_spin_ladder's ``basis``) a hop may leave it
                    pos = np.searchsorted(states, new)
                    ok = pos < n
                    ok[ok] &= states[pos[ok]] == new[ok]
                    rows.append(pos[ok])
                    cols.append(idx[ok])
                    vals.append(t * sign[ok])
    for orbs, U, J in sites_orbs:
        dpairs, offs = _interaction_terms(n_orb, orbs, U, J)
        for a, b, c in dpairs:
            diag += c * (((states >> np.int64(a)) & 1) * ((states >> np.int64(b)) & 1))
        for ops, c in offs:
            idx, new, sign = _apply(states, ops)
            if len(idx):
                pos = np.searchsorted(states, new)
                ok = (pos < n)
                ok[ok] &= states[pos[ok]] == new[ok]
                rows.append(pos[ok])
                cols.append(idx[ok])
                vals.append(c * sign[ok])
    rows.append(np.arange(n))
    cols.append(np.arange(n))
    vals.append(diag)
    H = sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()
    H.sum_duplicates()
    return H


def kanamori_site_matrix(n_orb: int, levels, U: float, J: float, n_up: int, n_dn: int):
    """(basis, dense H) of an isolated site in the sector (n_up, n_dn)."""
    states = fock_basis(n_orb, n_up, n_dn)
    lv = np.asarray(levels, float)
    h1 = np.diag(lv) if lv.ndim == 1 else lv
    H = build_hamiltonian(states, h1, [(list(range(n_orb)), U, J)], n_orb)
    return states, H.toarray()


def lowest_eigenvalues(H: sp.spmatrix, k: int, dense_max: int = 300) -> np.ndarray:
    """The ``k`` lowest eigenvalues (dense for small matrices, Lanczos with tight tolerance otherwise)."""
    n = H.shape[0]
    if n == 0:
        return np.zeros(0)
    if n <= dense_max:
        return np.linalg.eigvalsh(H.toarray())[:k]
    k = min(k, n - 2)
    rng = np.random.default_rng(7)
    v0 = rng.standard_normal(n)
    vals = eigsh(H, k=k, which="SA", tol=1e-13, ncv=max(40, 3 * k + 10), v0=v0, return_eigenvectors=False)
    return np.sort(vals)


@dataclass
class SpinLadder:
    """Multiplet energies of two coupled spins from ED and their Heisenberg (Landé) fit.

    energies : {S_tot: E} (eV); J_steps : {S_tot: (E(S) − E(S−1))/S} (meV); J : least-squares J of
    E(S) = E0 + (J/2) S(S+1) (meV); deviation : max |J_step − J| / |J|; residual : max |E − fit| (meV).
    """

    energies: dict
    J_steps: dict
    J: float
    deviation: float
    residual: float
    dims: dict

    def as_dict(self) -> dict:
        return {"energies_eV": {str(k): v for k, v in self.energies.items()},
                "J_steps_meV": {str(k): v for k, v in self.J_steps.items()}, "J_meV": self.J,
                "deviation": self.deviation, "residual_meV": self.residual, "sector_dims": self.dims}

    @classmethod
    def from_dict(cls, d: dict) -> "SpinLadder":
        """Inverse of :meth:`as_dict` (eV, meV; the total spins back as numbers)."""
        num = lambda k: int(k) if str(k).lstrip("-").isdigit() else float(k)  # noqa: E731
        return cls(energies={num(k): v for k, v in d["energies_eV"].items()},
                   J_steps={num(k): v for k, v in d["J_steps_meV"].items()}, J=d["J_meV"], deviation=d["deviation"],
                   residual=d["residual_meV"], dims=dict(d["sector_dims"]))


def build_s2(states: np.ndarray, n_orb: int) -> sp.csr_matrix:
    """Total spin S² = S_z² + ½(S_+S_− + S_−S_+) on the basis ``states`` (one sector of fixed N_↑, N_↓)."""
    n = len(states)
    nup = np.bitwise_count(states & np.int64((1 << n_orb) - 1)).astype(float)
    ndn = np.bitwise_count(states >> np.int64(n_orb)).astype(float)
    sz = 0.5 * (nup - ndn)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], [sz * sz]
    for i in range(n_orb):
        for j in range(n_orb):
            # S_+ S_- = Σ_ij c†_i↑ c_i↓ c†_j↓ c_j↑ ; S_- S_+ = Σ_ij c†_i↓ c_i↑ c†_j↑ c_j↓
            for ops in ([(i, True), (i + n_orb, False), (j + n_orb, True), (j, False)],
                        [(i + n_orb, True), (i, False), (j, True), (j + n_orb, False)]):
                idx, new, sign = _apply(states, ops)
                if len(idx):
                    pos = np.searchsorted(states, new)
                    ok = pos < n
                    ok[ok] &= states[pos[ok]] == new[ok]
                    rows.append(pos[ok])
                    cols.append(idx[ok])
                    vals.append(0.5 * sign[ok])
    return sp.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsr()


def ed_spin_ladder(cluster: Cluster, S1: float, S2: float, shift: float = 0.05, basis=None,
                   n_sectors: int | None = None) -> SpinLadder:
    """Exact multiplet ladder E(S_tot) of ``cluster`` (its total electron number), assuming its lowest states are the
    (2S1+1)(2S2+1) states of two spins S1, S2.  The Hamiltonian is shifted by ``shift``·S_tot² (eV; exact, S² commutes
    with H): then the lowest state of the sector S_z = M is the multiplet S_tot = M (checked through <S²>), and one
    Lanczos eigenvalue per sector gives E(M) = E'(M) − shift·M(M+1).  Landé fit E(S) = E0 + (J/2) S(S+1).

    ``basis(n_up, n_dn)`` (optional) returns the sorted bit strings of a restricted Fock space (H is projected on it;
    it must be closed under spin rotations, e.g. restricted by site occupation numbers only, so that S² still commutes
    with the projected H); default the full sector.  ``n_sectors`` (≥ 2): only the top multiplets S_tot = S1 + S2,
    S1 + S2 − 1, … (the large S_z sectors are the small ones); with 2 the J is the top Landé step
    [E(Smax − 1) − E(Smax)]/Smax and the deviation is NaN (one step: not measured).
    """
    N = cluster.n_electrons
    n_orb = cluster.n_orb
    h1 = cluster.one_body()
    off = cluster.offsets
    sites_orbs = [(list(range(off[k], off[k + 1])), s.U, s.J) for k, s in enumerate(cluster.sites)]
    Smax, Smin = S1 + S2, abs(S1 - S2)
    Ms = [Smax - k for k in range(int(round(Smax - Smin)) + 1)]  # M = Smax, ..., Smin
    if n_sectors is not None:
        if n_sectors < 2:
            raise EDError("n_sectors must be ≥ 2 (one Landé step)")
        Ms = Ms[:n_sectors]
    energies, dims = {}, {}
    for M in Ms:
        twoM = int(round(2 * M))
        if (N + twoM) % 2:
            raise EDError(f"S_z = {M} impossible with {N} electrons")
        n_up, n_dn = (N + twoM) // 2, (N - twoM) // 2
        states = fock_basis(n_orb, n_up, n_dn) if basis is None else basis(n_up, n_dn)
        H = build_hamiltonian(states, h1, sites_orbs, n_orb)
        S2op = build_s2(states, n_orb)
        Hs = (H + shift * S2op).tocsr()
        if len(states) <= 300:
            e, v = np.linalg.eigh(Hs.toarray())
            e0, v0 = e[0], v[:, 0]
        else:
            rng = np.random.default_rng(7)
            e, v = eigsh(Hs, k=1, which="SA", tol=1e-14, ncv=30, v0=rng.standard_normal(len(states)))
            e0, v0 = e[0], v[:, 0]
        s2 = float(v0 @ (S2op @ v0))
        if abs(s2 - M * (M + 1)) > 1e-6:
            raise EDError(f"lowest state of the S_z = {M} sector has S(S+1) = {s2:.4f}, not {M * (M + 1):.1f}: the low-"
                          "energy states are not the two-spin multiplets (or the S² shift is too small)")
        energies[M] = float(e0 - shift * M * (M + 1))
        dims[str(M)] = len(states)
    Sv = np.array(sorted(energies))
    Ev = np.array([energies[s] for s in Sv])
    steps = {float(s): 1000.0 * (energies[s] - energies[s - 1]) / s for s in Sv if s - 1 in energies}
    A = np.stack([np.ones_like(Sv), 0.5 * Sv * (Sv + 1)], axis=1)
    coef, *_ = np.linalg.lstsq(A, Ev, rcond=None)
    J = 1000.0 * coef[1]
    dev = (max(abs(v - J) for v in steps.values()) / abs(J) if J != 0 else np.inf) if len(steps) > 1 else float("nan")
    resid = 1000.0 * float(np.abs(A @ coef - Ev).max())
    return SpinLadder(energies={float(k): v for k, v in energies.items()}, J_steps=steps, J=float(J),
                      deviation=float(dev), residual=resid, dims=dims)


# ---------------------------------------------------------------------------------------------------- site eigenbasis
class _SiteSpace:
    """Exact eigenstates of one isolated site, sector by sector (N, S_z), with the annihilation operators in that
    eigenbasis (grouped by N) and the site spin operators."""

    def __init__(self, site: ClusterSite, n_values):
        self.site = site
        n = site.n_orb
        self.n = n
        self.E, self.V, self.states, self.Sz = {}, {}, {}, {}
        for N in n_values:
            if N < 0 or N > 2 * n:
                continue
            Es, Vs, Ss, Sz = [], [], [], []
            for nu in range(max(0, N - n), min(n, N) + 1):
                nd = N - nu
                st, H = kanamori_site_matrix(n, site.levels, site.U, site.J, nu, nd)
                e, v = np.linalg.eigh(H)
                Es.append(e)
                Ss.append(st)
                Vs.append((len(st), v))
                Sz += [0.5 * (nu - nd)] * len(st)
            states = np.concatenate(Ss)
            dim = len(states)
            V = np.zeros((dim, dim))
            o = 0
            for d, v in Vs:
                V[o:o + d, o:o + d] = v
                o += d
            order = np.argsort(states)
            self.states[N] = states[order]
            self.V[N] = V[order]          # columns: eigenstates in the sorted bit-string basis
            self.E[N] = np.concatenate(Es)
            self.Sz[N] = np.array(Sz)
        self._c = {}

    def annihilator(self, N: int, bit: int) -> np.ndarray:
        """<N−1, β| c_bit |N, α> in the eigenbases (dense)."""
        key = (N, bit)
        if key not in self._c:
            st_from, st_to = self.states[N], self.states[N - 1]
            idx, new, sign = _apply(st_from, [(bit, False)])
            M = np.zeros((len(st_to), len(st_from)))
            M[np.searchsorted(st_to, new), idx] = sign
            self._c[key] = self.V[N - 1].T @ M @ self.V[N]
        return self._c[key]

    def spin_ops(self, N: int, sel: np.ndarray):
        """S_z and S_+ of the site restricted to the eigenstates ``sel`` of sector N."""
        st = self.states[N]
        n = self.n
        Sp = np.zeros((len(st), len(st)))
        for m in range(n):
            idx, new, sign = _apply(st, [(m, True), (m + n, False)])
            Sp[np.searchsorted(st, new), idx] += sign
        V = self.V[N][:, sel]
        return np.diag(self.Sz[N][sel]), V.T @ Sp @ V


def site_multiplets(site: ClusterSite, N: int, tol: float = 1e-8):
    """Energies and degeneracies of the multiplets of an isolated site with N electrons (eV)."""
    sp_ = _SiteSpace(site, [N])
    e = np.sort(sp_.E[N])
    levels, deg = [], []
    for x in e:
        if levels and abs(x - levels[-1]) < tol:
            deg[-1] += 1
        else:
            levels.append(float(x))
            deg.append(1)
    return list(zip(levels, deg))


@dataclass
class PTResult:
    """Effective exchange of two magnetic sites from numerical perturbation theory (meV, H = J S_1·S_2).

    J2, J3, J4 : the 2nd-, 3rd- and 4th-order contributions; J = J2 + J3 + J4.  non_heisenberg : largest
    |matrix element| (meV) of H_eff − const − J S_1·S_2 (only with ``full=True``; None otherwise).
    """

    J2: float
    J3: float
    J4: float
    non_heisenberg: float | None

    @property
    def J(self) -> float:
        return self.J2 + self.J3 + self.J4


def _ground_multiplets(spaces, N0, tol: float):
    """Indices of each site's ground-multiplet eigenstates (within ``tol`` of its lowest level, N0 electrons) and
    E0, the sum of the sites' lowest levels."""
    gsel, gE = [], []
    for k, sp_ in enumerate(spaces):
        e = sp_.E[N0[k]]
        e0 = e.min()
        gsel.append(np.nonzero(e < e0 + tol)[0])
        gE.append(e0)
    return gsel, float(sum(gE))


def _chosen_ground_states(spin_ops, Svals, gsel, mag, full: bool, all_sectors: bool) -> list:
    """Product ground states (one ground-multiplet index per site) to propagate: with ``full`` those of total S_z = 0
    (all of them with ``all_sectors``), otherwise |S, S> and |S, −S> of the two ``mag`` sites."""
    ns = len(gsel)
    grids = [list(range(len(g))) for g in gsel]
    all_prod = list(product(*grids))
    if full:
        szs = [np.diag(spin_ops[k][0]) for k in range(ns)]
        return all_prod if all_sectors else [q for q in all_prod if abs(sum(szs[k][q[k]] for k in range(ns))) < 1e-9]
    a, b = mag
    szs = [np.diag(spin_ops[k][0]) for k in range(ns)]
    pick = []
    for target in (+1, -1):
        want = {a: Svals[a], b: target * Svals[b]}
        for p in all_prod:
            if all(abs(szs[k][p[k]] - want[k]) < 1e-9 for k in (a, b)) and \
                    all(len(gsel[k]) == 1 for k in range(ns) if k not in (a, b)):
                pick.append(p)
                break
    if len(pick) != 2:
        raise EDError("could not find the |S,S> and |S,-S> ground states (non-magnetic sites must be singlets)")
    return pick


def _product_vectors(spaces, N0, gsel, chosen) -> dict:
    """The chosen product states as {N0: tensor (g, d_1, …, d_ns)} in the site eigenbases."""
    ns = len(spaces)
    dims0 = tuple(len(spaces[k].E[N0[k]]) for k in range(ns))
    psi0 = np.zeros((len(chosen),) + dims0)
    for n, p in enumerate(chosen):
        psi0[(n,) + tuple(gsel[k][p[k]] for k in range(ns))] = 1.0
    return {N0: psi0}


def _hopping_blocks(cluster: Cluster) -> list:
    """V = Σ_{(a,b)} Σ_σ Σ_{m,m'} T_ab[m,m'] c†_{a m σ} c_{b m' σ}: (a, b, T_ab), both orders of every non-zero block."""
    blocks = []
    for (a, b), blk in cluster.hopping.items():
        blk = np.asarray(blk, float)
        if np.any(blk):
            blocks.append((a, b, blk))
            blocks.append((b, a, blk.T))
    return blocks


class _Propagation:
    """The operators of Takahashi's expansion on states stored as {electron numbers per site: tensor (g, d_1, …)}
    in the site eigenbases: the hopping V, the resolvent R = Q (E0 − H0)^{-1} Q and the overlap of two states."""

    def __init__(self, spaces, blocks, E0: float, N0, gsel, g: int):
        self.spaces, self.blocks, self.E0, self.N0, self.gsel, self.g = spaces, blocks, E0, N0, gsel, g
        self.ns = len(spaces)

    def stacked_annihilators(self, site, N, spin):
        """(n_orb, d_{N-1}, d_N) stack of c_{m σ} in the eigenbasis."""
        sp_ = self.spaces[site]
        return np.stack([sp_.annihilator(N, m + spin * sp_.n) for m in range(sp_.n)])

    def apply_V(self, state):
        spaces = self.spaces
        res = {}
        for a, b, T in self.blocks:
            for spin in (0, 1):
                for key, psi in state.items():
                    Nb = key[b]
                    if Nb - 1 not in spaces[b].states or Nb not in spaces[b].states:
                        continue
                    Cb = self.stacked_annihilators(b, Nb, spin)                 # (n_b, d', d)
                    sign_b = -1.0 if sum(key[:b]) % 2 else 1.0
                    phi = np.tensordot(Cb, psi, axes=(2, b + 1))                 # (n_b, d', g, …without b…)
                    phi = np.moveaxis(phi, 1, b + 2) * sign_b                    # (n_b, g, …, d' at b, …)
                    k1 = key[:b] + (Nb - 1,) + key[b + 1:]
                    Na = k1[a]
                    if Na + 1 not in spaces[a].states:
                        continue
                    X = np.tensordot(T, phi, axes=(1, 0))                         # (n_a, g, …)
                    Ca = self.stacked_annihilators(a, Na + 1, spin)               # (n_a, d_{Na}, d_{Na+1})
                    sign_a = -1.0 if sum(k1[:a]) % 2 else 1.0
                    # Σ_m c†_m X_m: c† = C^T  → contract over (m, d_{Na})
                    Y = np.tensordot(Ca, X, axes=([0, 1], [0, a + 2]))           # (d_{Na+1}, g, … without a …)
                    Y = np.moveaxis(Y, 0, a + 1) * sign_a
                    k2 = k1[:a] + (Na + 1,) + k1[a + 1:]
                    res[k2] = res[k2] + Y if k2 in res else Y
        return res

    def energies(self, key):
        ns = self.ns
        E = np.zeros(tuple(len(self.spaces[k].E[key[k]]) for k in range(ns)))
        for k in range(ns):
            shape = [1] * ns
            shape[k] = -1
            E = E + self.spaces[k].E[key[k]].reshape(shape)
        return E

    def apply_R(self, state):
        ns = self.ns
        out = {}
        for key, psi in state.items():
            den = self.E0 - self.energies(key)
            inv = np.zeros_like(den)
            if key == self.N0:
                mask = np.ones_like(den, dtype=bool)
                for k in range(ns):
                    shape = [1] * ns
                    shape[k] = -1
                    sel = np.zeros(len(self.spaces[k].E[key[k]]), bool)
                    sel[self.gsel[k]] = True
                    mask = mask & sel.reshape(shape)
                ok = ~mask
            else:
                ok = np.ones_like(den, dtype=bool)
            if np.any(np.abs(den[ok]) < 1e-9):
                raise EDError("degenerate intermediate state: perturbation theory is not applicable")
            inv[ok] = 1.0 / den[ok]
            out[key] = psi * inv[None]
        return out

    def overlap(self, a, b):
        """<a_g'|b_g> matrix (g × g)."""
        g = self.g
        M = np.zeros((g, g))
        for k, v in b.items():
            if k in a:
                M += a[k].reshape(g, -1) @ v.reshape(g, -1).T
        return M


def _effective_hamiltonian(prop: _Propagation, psi0: dict, order: int, full: bool):
    """H2, H3, H4 (g × g, eV) on the chosen ground states; H4's renormalisation term only with ``full``."""
    g = prop.g
    v1 = prop.apply_V(psi0)
    w1 = prop.apply_R(v1)
    H2 = prop.overlap(v1, w1)
    H3 = np.zeros((g, g))
    H4 = np.zeros((g, g))
    if order >= 3:
        v2 = prop.apply_V(w1)
        # H3 = <g'|V R V R V|g> = <w1_g'| V |w1_g>
        H3 = prop.overlap(w1, v2)
        w2 = prop.apply_R(v2)
        H4 = prop.overlap(prop.apply_V(w1), w2)
        if full:
            X = prop.overlap(w1, w1)
            H4 = H4 - 0.5 * (X @ H2 + H2 @ X)
    return H2, H3, H4


def _heisenberg_projection(H2, H3, H4, chosen, spin_ops, a: int, b: int) -> PTResult:
    """J2, J3, J4 (meV) from the projection of H2, H3, H4 on S_a·S_b over the chosen product states, and the largest
    non-Heisenberg remainder of their sum."""
    ns = len(spin_ops)
    g = len(chosen)
    # spin operators on the chosen product states
    Sz = [spin_ops[k][0] for k in range(ns)]
    Spl = [spin_ops[k][1] for k in range(ns)]

    # S_a·S_b directly as a two-site operator on the chosen product states (the chosen set need not be closed
    # under single-site spin flips, so products of restricted one-site matrices would be wrong)
    Sm = [Spl[k].T for k in range(ns)]
    SS = np.zeros((g, g))
    for i, pi in enumerate(chosen):
        for j, qj in enumerate(chosen):
            if any(pi[r] != qj[r] for r in range(ns) if r not in (a, b)):
                continue
            x, y = (pi[a], qj[a]), (pi[b], qj[b])
            SS[i, j] = (Sz[a][x] * Sz[b][y]
                        + 0.5 * (Spl[a][x] * Sm[b][y] + Sm[a][x] * Spl[b][y]))
    SS0 = SS - np.trace(SS) / g * np.eye(g)
    norm = np.trace(SS0 @ SS0)
    Js = []
    for Hn in (H2, H3, H4):
        Hs = 0.5 * (Hn + Hn.T)
        Js.append(1000.0 * np.trace(Hs @ SS0) / norm)
    Htot = 0.5 * ((H2 + H3 + H4) + (H2 + H3 + H4).T)
    J = sum(Js) / 1000.0
    rem = Htot - J * SS0
    rem = rem - np.trace(rem) / g * np.eye(g)
    return PTResult(*Js, non_heisenberg=float(1000.0 * np.abs(rem).max()))


def perturbative_exchange(cluster: Cluster, magnetic=(0, -1), order: int = 4, full: bool = False,
                          tol: float = 1e-7, all_sectors: bool = False) -> PTResult:
    """H_eff on the product of the sites' ground multiplets, to ``order`` (2 or 4) in the inter-site hopping V:

        H2 = P V R V P,   H3 = P V R V R V P,
        H4 = P V R V R V R V P − ½ (P V R² V P · P V R V P + h.c.),   R = Q (E0 − H0)^{-1} Q

    (Takahashi 1977; P V P = 0 here since V moves electrons between sites).  H0 = the isolated sites (exact site
    eigenstates), so intermediate multiplet energies are exact.  J is the projection of H_eff on S_a·S_b of the two
    ``magnetic`` sites: with ``full`` the ground states with total S_z = 0 are used (H_eff conserves S_z, so this
    block holds every S_tot once and the products in H4 close inside it; ``all_sectors`` uses the whole ground
    manifold) and the non-Heisenberg remainder is reported; otherwise only the two states |S, S> and |S, −S>
    (J = [E(S,S) − E(S,−S)] / (2 S_a S_b)), and the renormalisation term of H4, which then requires
    P V R V P ∝ 1 (no direct metal–metal hopping), is dropped.
    """
    sites = cluster.sites
    ns = len(sites)
    mag = [m % ns for m in magnetic]
    spaces = [_SiteSpace(s, [s.n_el - 2, s.n_el - 1, s.n_el, s.n_el + 1, s.n_el + 2]) for s in sites]
    N0 = tuple(s.n_el for s in sites)
    gsel, E0 = _ground_multiplets(spaces, N0, tol)
    spin_ops = [spaces[k].spin_ops(N0[k], gsel[k]) for k in range(ns)]
    Svals = [float(np.max(np.diag(spin_ops[k][0]))) for k in range(ns)]
    chosen = _chosen_ground_states(spin_ops, Svals, gsel, mag, full, all_sectors)
    psi0 = _product_vectors(spaces, N0, gsel, chosen)
    prop = _Propagation(spaces, _hopping_blocks(cluster), E0, N0, gsel, len(chosen))
    H2, H3, H4 = _effective_hamiltonian(prop, psi0, order, full)
    a, b = mag
    if full:
        return _heisenberg_projection(H2, H3, H4, chosen, spin_ops, a, b)
    Sa, Sb = Svals[a], Svals[b]
    Js = [1000.0 * (Hn[0, 0] - Hn[1, 1]) / (2 * Sa * Sb) for Hn in (H2, H3, H4)]
    return PTResult(*Js, non_heisenberg=None)
