"""Ground state by simulated annealing of the same model, and the order-parameter pattern it defines.

Hamiltonian (internal wannmag convention): H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i, each bond
once, classical spins of length S, J > 0 antiferromagnetic, meV.

The ground state is searched on every small periodic block of m1×m2×m3 cells (m_a ≤ ``max_period`` dividing the
simulation size L_a; the whole extent along open directions), annealed from a temperature above the exchange scale
to ~0 and quenched (spins along their local fields); the block with the lowest energy per site wins (ties go to the
smaller block) and is tiled onto the lattice.  The staggered pattern σ_i = sign(ŝ_i·n), n the principal axis of the
ground-state spins, makes the order parameter Q = |Σ σ_i S_i/S_i|/N equal to |M| for a ferromagnet and the
staggered magnetisation for Néel, zigzag, stripy (or any collinear order); for a non-collinear ground state it is the
projection onto its dominant axis (``collinearity`` < 1 tells).

The orientation of a collinear ground state is then made exact: the energy of the pattern rigidly rotated to the
direction u is the quadratic form E(u) = u·K·u (:func:`pattern_anisotropy`, exact for the bilinear H without a
field coupling to the pattern), so when K has a non-degenerate lowest eigenvalue its eigenvector is the easy axis,
and the pattern along it replaces the annealed configuration if its energy is not higher.  (Annealing alone leaves
a nearly isotropic magnet — VPS3, anisotropy/J S² ≈ 6e-4 — tilted by ≈ 15° from its easy axis: the quench stops on
the flat orientation landscape.)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spinmodel import MEV_PER_K, SpinModel
from .kernels import greedy_sweep, local_min_sweep, ising_sweep, metropolis_sweep, seed_states, total_energy
from .lattice import MCLattice, build_lattice

__all__ = ["GroundState", "ground_state", "anneal", "pattern_of", "pattern_anisotropy", "easy_axis_of"]


@dataclass
class GroundState:
    """Annealed ground state on ``lattice``: spins (N × 3), σ pattern, energy per site (meV), the periodic block
    (m1, m2, m3) it was found on, principal axis and collinearity ⟨|ŝ_i·n|⟩."""

    spins: np.ndarray | None
    pattern: np.ndarray | None
    energy_per_site: float
    period: tuple[int, int, int]
    axis: np.ndarray
    collinearity: float
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def ferromagnetic(self) -> bool:
        """All σ equal (|mean σ| > 0.999); for a ground state rebuilt by :meth:`from_dict` the stored flag."""
        if self.pattern is None and self._stored is not None:
            return bool(self._stored["ferromagnetic"])
        return bool(abs(self.pattern.mean()) > 0.999)

    def as_dict(self) -> dict:
        return {"energy_per_site_meV": self.energy_per_site, "period": list(self.period),
                "axis": self.axis.tolist(), "collinearity": self.collinearity,
                "ferromagnetic": self.ferromagnetic}

    @classmethod
    def from_dict(cls, d: dict) -> "GroundState":
        """Inverse of :meth:`as_dict`.  The spins and the σ pattern are not stored: they are None, and
        :attr:`ferromagnetic` is the stored flag (tile a ground state again with :func:`ground_state` to get them)."""
        gs = cls(spins=None, pattern=None, energy_per_site=d["energy_per_site_meV"],
                 period=tuple(int(x) for x in d["period"]), axis=np.asarray(d["axis"], float),
                 collinearity=d["collinearity"])
        gs._stored = {"ferromagnetic": bool(d["ferromagnetic"])}
        return gs


def exchange_scale(model: SpinModel) -> float:
    """Σ over the bonds of one site of ‖J‖ S² plus ‖A‖ S² (meV): an upper bound of the ordering energy scale."""
    S = model.spins
    per_site = np.zeros(model.n_sites)
    for b in model.bonds:
        v = np.abs(np.linalg.eigvalsh(0.5 * (b.J + b.J.T))).max() + np.linalg.norm(b.dmi)
        per_site[b.i] += v * S[b.i] * S[b.j]
        per_site[b.j] += v * S[b.i] * S[b.j]
    for k, A in enumerate(model.single_ion):
        per_site[k] += np.abs(np.linalg.eigvalsh(0.5 * (A + A.T))).max() * S[k] ** 2
    return float(max(per_site.max(), 1e-6))


def anneal(lat: MCLattice, ising: bool = False, seed: int = 0, stages: int = 40, sweeps_per_stage: int = 40,
           t_hi: float | None = None, quench: int = 200, spins0=None) -> tuple[np.ndarray, float]:
    """Simulated annealing of one configuration on ``lat`` (temperatures in K, geometric from ``t_hi`` to
    t_hi/1000); returns (spins, energy in meV)."""
    rng = seed_states(seed, 1)[0]
    args = lat.kernel_args()
    ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, orok, zee, slen = args
    N = lat.n_sites
    if spins0 is not None:
        spins = np.ascontiguousarray(spins0, float).copy()
    else:
        g = np.random.default_rng(seed)
        if ising:
            spins = np.zeros((N, 3))
            spins[:, 2] = slen * np.where(g.random(N) < 0.5, 1.0, -1.0)
        else:
            v = g.normal(size=(N, 3))
            spins = v / np.linalg.norm(v, axis=1)[:, None] * slen[:, None]
    kT_hi = (t_hi * MEV_PER_K) if t_hi else exchange_scale(lat.model)
    cos_max = -1.0
    for kT in kT_hi * np.geomspace(1.0, 1e-3, stages):
        beta = 1.0 / kT
        for _ in range(sweeps_per_stage):
            if ising:
                ising_sweep(spins, rng, beta, ptr, nbr, Jiso, Jd, Jf, mode, zee)
            else:
                a, _ = metropolis_sweep(spins, rng, beta, cos_max, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen)
                theta = np.arccos(cos_max) * min(max((a / N) / 0.5, 0.5), 2.0)
                cos_max = float(np.cos(min(max(theta, 1e-3), np.pi)))
    if not ising:
        # quench: exact alignment of sites without single-ion term, projected-gradient minimisation of the others
        for _ in range(quench):
            greedy_sweep(spins, ptr, nbr, Jiso, Jd, Jf, mode, orok, zee, slen)
            if local_min_sweep(spins, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee, slen, 50) > -1e-13 * N:
                break
    return spins, float(total_energy(spins, ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, zee))


def pattern_of(spins: np.ndarray, slen: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(σ_i = ±1, principal axis n, collinearity ⟨|ŝ_i·n|⟩) of a configuration."""
    u = spins / slen[:, None]
    w, v = np.linalg.eigh(u.T @ u)
    n = v[:, -1]
    # a deterministic sign for n: its largest component positive
    n = n * (1.0 if n[np.argmax(np.abs(n))] > 0 else -1.0)
    proj = u @ n
    sigma = np.where(proj >= 0.0, 1.0, -1.0)
    if sigma.sum() < 0:  # prefer σ = +1 on the majority (and on site 0 for compensated orders)
        sigma = -sigma
    elif sigma.sum() == 0 and sigma[0] < 0:
        sigma = -sigma
    return sigma, n, float(np.mean(np.abs(proj)))


def pattern_anisotropy(lat: MCLattice, pattern) -> np.ndarray:
    """K (3×3, meV) with E(u) = u·K·u the energy of the collinear configuration S_i = σ_i S_i u (σ = ``pattern``)
    without the Zeeman term: K = ½ Σ_{CSR entries i→j} σ_iσ_j S_iS_j sym(J_ij) + Σ_i S_i² sym(A_i)."""
    sig = np.asarray(pattern, float)
    slen = np.asarray(lat.slen, float)
    rows = np.repeat(np.arange(lat.n_sites), np.diff(lat.ptr))
    Jf = np.asarray(lat.Jf, float).reshape(-1, 3, 3)
    w = 0.5 * sig[rows] * sig[lat.nbr] * slen[rows] * slen[lat.nbr]
    K = np.einsum("k,kab->ab", w, 0.5 * (Jf + Jf.transpose(0, 2, 1)))
    A = np.asarray(lat.A, float).reshape(-1, 3, 3)
    return K + np.einsum("i,iab->ab", slen ** 2 * np.asarray(lat.hasA, float), 0.5 * (A + A.transpose(0, 2, 1)))


def easy_axis_of(lat: MCLattice, pattern, gap_tol: float = 1e-7):
    """(unit eigenvector of the lowest eigenvalue of :func:`pattern_anisotropy`, gap λ₂ − λ₁ in meV) or (None,
    gap) when the lowest eigenvalue is degenerate (gap ≤ ``gap_tol`` × max|λ|: isotropic or easy-plane)."""
    lam, vec = np.linalg.eigh(pattern_anisotropy(lat, pattern))
    gap = float(lam[1] - lam[0])
    if gap <= gap_tol * max(float(np.abs(lam).max()), 1e-300):
        return None, gap
    return vec[:, 0], gap


def _orient(lat: MCLattice, spins: np.ndarray, col_tol: float = 0.999):
    """(the collinear pattern of ``spins`` turned to its exact easy axis (module docstring), energy change in meV),
    or None if that does not apply (non-collinear, degenerate, a field coupling to the pattern) or does not lower the energy."""
    sigma, n, col = pattern_of(spins, lat.slen)
    if col < col_tol:
        return None
    zee = np.asarray(lat.zee, float)
    if np.any(zee) and np.linalg.norm((sigma[:, None] * zee).sum(axis=0)) > 1e-12 * np.abs(zee).max():
        return None
    v, _ = easy_axis_of(lat, sigma)
    if v is None:
        return None
    if v @ n < 0:
        v = -v
    cand = np.ascontiguousarray(sigma[:, None] * lat.slen[:, None] * v[None, :])
    e_old, e_new = lat.energy(spins), lat.energy(cand)
    if e_new > e_old + 1e-12 * max(1.0, abs(e_old)):
        return None
    return cand, e_new - e_old


def _periods(lat: MCLattice, max_period: int):
    pbc = lat.model.pbc
    choices = []
    for a in range(3):
        L = lat.size[a]
        if pbc[a]:
            choices.append([m for m in range(1, min(max_period, L) + 1) if L % m == 0])
        else:
            choices.append([L])
    out = [(a, b, c) for a in choices[0] for b in choices[1] for c in choices[2]]
    return sorted(out, key=lambda p: (p[0] * p[1] * p[2], p))


def ground_state(lat: MCLattice, ising: bool = False, seed: int = 0, max_period: int = 4, restarts: int = 2,
                 stages: int = 40, sweeps_per_stage: int = 40) -> GroundState:
    """Ground state of ``lat.model`` commensurate with ``lat`` (module docstring); the pattern is tiled onto
    ``lat`` (vacancies of a diluted lattice simply drop out).  Deterministic for a given ``seed``."""
    model = lat.model
    ns = model.n_sites
    best = None
    for period in _periods(lat, max_period):
        small = build_lattice(model, period)
        for r in range(restarts):
            s, E = anneal(small, ising=ising, seed=seed * 1000 + 7 * r + 1, stages=stages,
                          sweeps_per_stage=sweeps_per_stage)
            e = E / small.n_sites
            if best is None or e < best[0] - 1e-7 * max(1.0, abs(best[0])):
                best = (e, period, s, small)
    e, period, s, small = best
    block = np.zeros(tuple(period) + (ns, 3))
    block[small.cell_of[:, 0], small.cell_of[:, 1], small.cell_of[:, 2], small.parent] = s
    spins = lat.tile(block, period)
    spins *= (lat.slen / np.linalg.norm(spins, axis=1))[:, None]  # the lattice's lengths (per-site overrides)
    turned = None if ising else _orient(lat, spins)  # Ising spins stay on ±z
    if turned is not None:
        spins, dE = turned
        e += dE / lat.n_sites
    sigma, n, col = pattern_of(spins, lat.slen)
    return GroundState(spins=spins, pattern=sigma, energy_per_site=float(e), period=tuple(period), axis=n,
                       collinearity=col)
