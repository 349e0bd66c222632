"""Magnetic force theorem (Liechtenstein–Katsnelson–Antropov–Gubanov, LKAG) on collinear tight-binding models.

For a collinear pair of Wannier Hamiltonians H↑(R), H↓(R) (eV) the exchange between magnetic atoms i and j + R is

    J^{LKAG}_ij(R) = (1/4π) Im ∫_{−∞}^{E_F} dε Tr_L [ Δ_i G↑_ij(R, ε + i0) Δ_j G↓_ji(−R, ε + i0) ],

Δ_i = H↑_ii(0) − H↓_ii(0) the on-site exchange splitting of atom i (its block of orbitals), G↑,↓ the real-space
Green's functions G_ij(R, z) = (1/N_k) Σ_k e^{−ik·R} [z − H(k)]^{-1}_ij with H(k) = Σ_R e^{ik·R} H(R).
J^{LKAG} is in the convention of TB2J (:data:`wannmag.magnetism.spinmodel.TB2J`): E = −Σ_{i≠j} J_ij e_i·e_j, both
directions of every pair, unit spins, positive = ferromagnetic.  The internal wannmag convention (each bond once,
spins of length S, J > 0 antiferromagnetic) follows by ``TB2J.to_internal``: J = −2 J^{LKAG} / (S_i S_j).
The sign and normalisation are fixed by the two-site test: for one orbital per site, hopping t and splitting Δ,
J^{LKAG} → −t²/(2Δ), i.e. the internal J → t²/Δ (AF superexchange) for unit spins, equal to energy mapping of the
same model.

Reference state.  The formula is the second-order change of the band energy when the moments of i and j are rotated
by small angles away from the collinear state the Wannier pair describes (the reference state); the pair enters
through Δ_i Δ_j.  Each magnetic atom's moment direction in the reference is m_i = s_i ẑ with s_i = −sign(Tr Δ_i)
(+1 when the ↑ levels of the atom lie below its ↓ levels).  For an antiparallel pair (s_i s_j = −1) the raw pair
term has the sign of −J: expanding E = −J e_i·e_j about e_i·e_j = −1 instead of +1 reverses the sign of the
stiffness.  The pair term is therefore divided by sign(m_i·m_j) = s_i s_j (as TB2J's ``ExchangeCL2`` does), so the
same model gives the same J, to within the O(t²/Δ²) non-Heisenberg terms, from a ferromagnetic and from an
antiferromagnetic reference; pairs on the same sublattice (s_i s_j = +1) are unchanged.  An atom whose mean
splitting |Tr Δ_i|/n_i is below 1 meV has no defined moment direction and is refused (do not name a non-magnetic
atom as magnetic).  The signs s_i are recorded in :class:`MFTResult` (``moment_signs``) and printed with the table.

Energy integral: a semicircular contour in the upper half plane from below the lowest band to E_F with Gauss–Legendre
points in the angle (``n_energy``), denser towards E_F.  Green's functions at the R of the requested bonds by a
discrete Fourier sum over a Γ-centred k-mesh (so R must lie inside the mesh's supercell: J(R) is meaningful for
|R_k| < n_k/2).  Everything is vectorised over k and energy points (eigen-decomposition of H(k) once per spin;
Green's functions from the spectral form as batched matrix products on BLAS, run on one BLAS thread by
threadpoolctl).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from ..errors import WannmagError
from ..structures import find_magnetic_sites
from .spinmodel import TB2J, SpinModel, Site

__all__ = ["CollinearHamiltonian", "MFTResult", "lkag_exchange", "fermi_level", "MFTError", "orbital_blocks",
           "convergence_report", "hamiltonian_from_tb", "mft_spin_model", "check_grid", "kmesh_points",
           "energy_contour"]


class MFTError(WannmagError):
    """The force-theorem calculation cannot be done with this input."""


#: smallest mean on-site exchange splitting |Tr Δ_i|/n_i (eV) for which an atom's moment direction is defined
MIN_SPLITTING = 1e-3
#: largest memory (bytes) the Green's-function arrays of :func:`lkag_exchange` may take
MAX_MEMORY = 4e9
#: largest memory (bytes) of one batch of energy points in :func:`lkag_exchange` (fewer points per batch above it)
CHUNK_MEMORY = 5e8
#: largest number of energy points on the contour (Gauss–Legendre nodes cost O(n²) to set up)
MAX_ENERGY_POINTS = 4000


@dataclass
class CollinearHamiltonian:
    """A collinear pair of real-space tight-binding Hamiltonians.

    cell : lattice vectors (Å, rows); R : integer lattice vectors (nR × 3); H_up, H_dn : (nR, nw, nw) in eV, already
    divided by the Wigner–Seitz degeneracies; orbital_atom : atom index of each orbital; positions : Cartesian atom
    positions (Å); magnetic : indices of the magnetic atoms; elements, spins : per magnetic atom.
    """

    cell: np.ndarray
    R: np.ndarray
    H_up: np.ndarray
    H_dn: np.ndarray
    orbital_atom: np.ndarray
    positions: np.ndarray
    magnetic: list[int]
    elements: list[str] = field(default_factory=list)
    spins: list[float] = field(default_factory=list)
    orbital_labels: list[str] = field(default_factory=list)
    source: str = "model"

    def __post_init__(self):
        self.R = np.asarray(self.R, dtype=int)
        self.H_up = np.asarray(self.H_up, dtype=complex)
        self.H_dn = np.asarray(self.H_dn, dtype=complex)
        self.orbital_atom = np.asarray(self.orbital_atom, dtype=int)
        if self.H_up.shape != self.H_dn.shape:
            raise MFTError(f"{self.source}: spin-up and spin-down models differ in shape "
                           f"({self.H_up.shape} vs {self.H_dn.shape})")
        if self.H_up.ndim != 3 or self.H_up.shape[1] != self.H_up.shape[2] or len(self.R) != self.H_up.shape[0]:
            raise MFTError(f"{self.source}: H(R) must be (nR, nw, nw) with one R per block")
        if not (np.all(np.isfinite(self.H_up)) and np.all(np.isfinite(self.H_dn))):
            raise MFTError(f"{self.source}: H(R) contains NaN or infinite matrix elements")
        if len(self.orbital_atom) != self.H_up.shape[1]:
            raise MFTError(f"{self.source}: {len(self.orbital_atom)} orbital labels for {self.H_up.shape[1]} orbitals")
        for a in self.magnetic:
            if not np.any(self.orbital_atom == a):
                raise MFTError(f"{self.source}: magnetic atom {a} has no orbitals in the model (missing d projections?)")
        if not self.spins:
            self.spins = [1.0] * len(self.magnetic)
        if not self.elements:
            self.elements = ["X"] * len(self.magnetic)

    @property
    def nw(self) -> int:
        return self.H_up.shape[1]

    def hk(self, kpts: np.ndarray, spin: int) -> np.ndarray:
        """H(k) for fractional ``kpts`` (Nk × 3): Σ_R e^{2πi k·R} H(R), vectorised; (Nk, nw, nw)."""
        HR = self.H_up if spin == 0 else self.H_dn
        phase = np.exp(2j * np.pi * (np.asarray(kpts) @ self.R.T))
        return (phase @ HR.reshape(len(self.R), -1)).reshape(len(kpts), self.nw, self.nw)

    def moment_signs(self, tol: float = MIN_SPLITTING) -> list[int]:
        """s_i = −sign(Tr Δ_i) of every magnetic atom (+1: moment along ↑, the ↑ levels lie lower): the direction of
        its moment in the reference state.  An atom with |Tr Δ_i|/n_i < ``tol`` eV is refused (undefined direction)."""
        out = []
        for k, a in enumerate(self.magnetic):
            d = self.onsite_splitting(a)
            mean = float(np.real(np.trace(d))) / len(d)
            if not np.isfinite(mean) or abs(mean) < tol:
                raise MFTError(f"{self.source}: magnetic atom {k} ({self.elements[k]}, atom {a}) has no exchange "
                               f"splitting (mean Δ = H↑ − H↓ = {mean:.2e} eV < {tol:g} eV): the direction of its moment "
                               "in the reference state is undefined; name only magnetic atoms")
            out.append(-1 if mean > 0 else 1)
        return out

    def onsite_splitting(self, atom: int) -> np.ndarray:
        """Δ_i = H↑_ii(R=0) − H↓_ii(R=0) (eV) on the orbitals of ``atom``."""
        r0 = np.nonzero(np.all(self.R == 0, axis=1))[0]
        if len(r0) != 1:
            raise MFTError(f"{self.source}: H(R) has no (or several) R = 0 blocks")
        idx = np.nonzero(self.orbital_atom == atom)[0]
        return (self.H_up[r0[0]] - self.H_dn[r0[0]])[np.ix_(idx, idx)]


def check_grid(kmesh, n_energy) -> tuple[tuple[int, int, int], int]:
    """The k-mesh as 3 positive integers and the number of contour points (1 … MAX_ENERGY_POINTS), else MFTError."""
    try:
        k = tuple(int(x) for x in kmesh)
        ok = len(k) == 3 and all(float(x) == int(x) for x in kmesh)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or min(k) < 1:
        raise MFTError(f"the k-mesh must be three positive integers, got {list(kmesh) if np.iterable(kmesh) else kmesh}")
    try:
        n = int(n_energy)
        ok = float(n_energy) == n
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok or not 1 <= n <= MAX_ENERGY_POINTS:
        raise MFTError(f"the number of energy points must be an integer from 1 to {MAX_ENERGY_POINTS}, got {n_energy}")
    return k, n


def kmesh_points(kmesh) -> np.ndarray:
    """The uniform k-grid of ``kmesh``, k_i = m/n_i (m = 0 … n_i − 1, Γ included): (n1·n2·n3, 3), fractional."""
    n = np.asarray(kmesh, dtype=int)
    grids = np.meshgrid(*[np.arange(m) / m for m in n], indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1)


def fermi_level(eigs: np.ndarray, n_electrons: float, width: float = 1e-3) -> float:
    """Fermi level (eV) holding ``n_electrons`` per cell; ``eigs`` (spin, k, band) with one electron per state.

    In a gap the mid-gap energy is returned (so insulators get a well-defined E_F).
    """
    e = np.sort(eigs.ravel())
    nk = eigs.shape[1]
    n_states = n_electrons * nk
    if not 0 < n_states <= len(e):
        raise MFTError(f"{n_electrons} electrons per cell do not fit into {len(e) // nk} bands")
    k = int(round(n_states))
    if abs(n_states - k) < 1e-6 and k < len(e):
        lo, hi = e[k - 1], e[k]
        if hi - lo > 10 * width:
            return float(0.5 * (lo + hi))
    lo, hi = e[0] - 1.0, e[-1] + 1.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        occ = np.sum(0.5 * (1 - np.tanh((e - mid) / (2 * width))))
        lo, hi = (mid, hi) if occ < n_states else (lo, mid)
    return float(0.5 * (lo + hi))


@dataclass
class MFTResult:
    """LKAG exchange of the requested bonds.

    J_lkag : TB2J convention (meV; E = −Σ_{i≠j} J e_i·e_j, both directions, unit spins, > 0 FM).
    J : internal convention (meV; each bond once, spins of length S, J > 0 AF).
    orbital : per bond the orbital-resolved J_lkag matrix (n_i × n_j, meV) whose sum is J_lkag.
    moment_signs : s_i = ±1, the moment direction of every magnetic atom in the reference state (module docstring);
    antiparallel pairs had their LKAG term divided by s_i s_j = −1.
    warnings : result-level warnings (e.g. a Fermi level inside a band of a gapped model), printed with the table.
    """

    bonds: list[tuple[int, int, tuple[int, int, int]]]
    distances: np.ndarray
    J_lkag: np.ndarray
    J: np.ndarray
    orbital: list[np.ndarray]
    efermi: float
    kmesh: tuple[int, int, int]
    n_energy: int
    moment_signs: list[int] = field(default_factory=list)
    elements: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def reference(self) -> str:
        """The reference state in words, e.g. "moments ↑ on atoms 0, ↓ on atoms 1 (antiparallel pairs: ...)"."""
        if not self.moment_signs:
            return "reference state: unknown"
        lab = [f"{self.elements[k] if k < len(self.elements) else 'X'}{k}" for k in range(len(self.moment_signs))]
        up = [x for x, s in zip(lab, self.moment_signs) if s > 0]
        dn = [x for x, s in zip(lab, self.moment_signs) if s < 0]
        if not up or not dn:
            return f"reference state: all moments parallel ({', '.join(lab)} {'↑' if up else '↓'})"
        return (f"reference state: moments ↑ on {', '.join(up)}, ↓ on {', '.join(dn)} (antiparallel pairs: the "
                "LKAG term is divided by sign(m_i·m_j) = −1)")

    def table(self) -> str:
        lines = [f"magnetic force theorem (LKAG): k-mesh {self.kmesh}, {self.n_energy} energy points, "
                 f"E_F = {self.efermi:.4f} eV",
                 self.reference(),
                 f"{'i':>3} {'j':>3} {'R':>12} {'d (Å)':>8} {'J_TB2J (meV)':>13} {'J (meV)':>9}",]
        for (i, j, R), d, jl, ji in zip(self.bonds, self.distances, self.J_lkag, self.J):
            lines.append(f"{i:>3} {j:>3} {str(list(R)):>12} {d:8.4f} {jl:13.4f} {ji:9.4f}")
        lines.append("J_TB2J: E = −Σ_{i≠j} J e_i·e_j (both directions, unit spins, > 0 FM); "
                     "J: H = Σ_{i<j} J S_i·S_j (each bond once, |S| = S, > 0 AF)")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


def energy_contour(emin: float, efermi: float, n: int):
    """Points z and weights w with ∫_{emin}^{E_F} f(ε + i0) dε = Σ w f(z) for f analytic in the upper half plane."""
    x, wx = np.polynomial.legendre.leggauss(n)
    # map [-1, 1] → θ ∈ [0, π] with points clustered towards θ = 0 (E_F): θ = π (1 − cos(π (x + 1)/4))... use t²
    t = 0.5 * (x + 1.0)  # (0, 1)
    theta = np.pi * t**2
    dtheta = np.pi * 2 * t * 0.5 * wx
    c, r = 0.5 * (efermi + emin), 0.5 * (efermi - emin)
    z = c + r * np.exp(1j * theta)
    # ∫_{emin}^{EF} = −∫_{θ=0}^{π} f(z(θ)) i r e^{iθ} dθ
    w = -1j * r * np.exp(1j * theta) * dtheta
    return z, w


def _single_threaded_blas():
    """A context in which every loaded BLAS library runs on one thread (threadpoolctl; restored on exit).

    The force theorem's BLAS calls are small matrix products (n_sel × n_w) batched over k and energy points and
    eigen-decompositions of n_w × n_w matrices: extra BLAS threads do not speed them up, and on a shared machine
    they compete with other processes.  Environment variables (OPENBLAS_NUM_THREADS, ...) cannot do this in-process:
    they reach BLAS only if set before numpy is imported.
    """
    return threadpool_limits(limits=1, user_api="blas")


def _check_arguments(rcut, efermi, n_electrons) -> None:
    """Refuse a cutoff, Fermi level or electron count that is not a finite positive (Fermi level: finite) number."""
    if rcut is not None and not (np.isfinite(rcut) and rcut > 0):
        raise MFTError(f"the cutoff radius must be a positive number of Å, got {rcut}")
    if efermi is not None and not np.isfinite(efermi):
        raise MFTError(f"the Fermi level must be a finite number of eV, got {efermi}")
    if n_electrons is not None and not (np.isfinite(n_electrons) and n_electrons > 0):
        raise MFTError(f"the number of electrons per cell must be a positive number, got {n_electrons}")


def _energy_batch(ham: CollinearHamiltonian, kmesh, n_energy: int, chunk: int) -> int:
    """Energy points per batch, so that the batched product's operand (chunk, nk, nsel, nw) stays below
    CHUNK_MEMORY; refuses a k-mesh whose eigenvectors and Green's functions need more than MAX_MEMORY."""
    nk = int(np.prod(kmesh))
    nsel = int(sum(np.count_nonzero(ham.orbital_atom == a) for a in ham.magnetic))
    chunk = max(1, min(int(chunk), int(CHUNK_MEMORY // (16.0 * nk * nsel * ham.nw))))
    need = 16.0 * nk * (2 * ham.nw * ham.nw + 2 * ham.nw + 6 * min(chunk, n_energy) * nsel * nsel
                        + min(chunk, n_energy) * nsel * ham.nw)
    if need > MAX_MEMORY:
        raise MFTError(f"a {'×'.join(map(str, kmesh))} k-mesh with {ham.nw} orbitals needs ≈ {need / 1e9:.1f} GB for the "
                       f"eigenvectors and Green's functions (limit {MAX_MEMORY / 1e9:.0f} GB); use a smaller k-mesh")
    return chunk


def _spin_bands(ham: CollinearHamiltonian, kpts: np.ndarray):
    """Eigenvalues (2, nk, nw) and eigenvectors [↑, ↓] of H(k) on ``kpts``; a non-Hermitian H(k) is refused."""
    eig, vec = [], []
    for s in (0, 1):
        Hk = ham.hk(kpts, s)
        herm = np.max(np.abs(Hk - np.conj(np.transpose(Hk, (0, 2, 1)))))
        if not herm <= 1e-6:
            raise MFTError(f"{ham.source}: H(k) of spin {'up' if s == 0 else 'down'} is not Hermitian "
                           f"(max deviation {herm:.2e} eV)")
        e, v = np.linalg.eigh(Hk)
        eig.append(e)
        vec.append(v)
    return np.array(eig), vec


def _fermi_level_inside(ham: CollinearHamiltonian, eig: np.ndarray, efermi, n_electrons) -> float:
    """E_F given or from ``n_electrons``; refused unless it lies inside the bands (otherwise no exchange)."""
    if efermi is None:
        if n_electrons is None:
            raise MFTError("give the Fermi level or the number of electrons per cell")
        efermi = fermi_level(eig, n_electrons)
    if not eig.min() < efermi < eig.max():
        where = "below" if efermi <= eig.min() else "above"
        raise MFTError(f"{ham.source}: the Fermi level {efermi:.4f} eV lies {where} all bands ({eig.min():.4f} … "
                       f"{eig.max():.4f} eV): {'no occupied states' if where == 'below' else 'a full manifold'}, "
                       "no exchange; check the Fermi level or electron count")
    return efermi


def _magnetic_orbitals(ham: CollinearHamiltonian, rotations):
    """Orbitals of every magnetic atom (``orb``), all of them in order (``sel``) with the block ``offsets``, the
    splittings Δ_i and the block-diagonal rotation O (new = O @ old) of ``rotations``, with Δ_i rotated by it."""
    mag = list(ham.magnetic)
    orb = [np.nonzero(ham.orbital_atom == a)[0] for a in mag]
    sel = np.concatenate(orb)
    offsets = np.cumsum([0] + [len(o) for o in orb])
    deltas = [ham.onsite_splitting(a) for a in mag]
    O = np.eye(len(sel), dtype=complex)
    for a, rot in (rotations or {}).items():
        rot = np.asarray(rot)
        if rot.shape != (len(orb[a]), len(orb[a])) or not np.allclose(rot @ rot.conj().T, np.eye(len(orb[a])), atol=1e-8):
            raise MFTError(f"rotation for magnetic atom {a} must be a unitary {len(orb[a])}×{len(orb[a])} matrix")
        blk = slice(sum(len(o) for o in orb[:a]), sum(len(o) for o in orb[:a + 1]))
        O[blk, blk] = rot
        deltas[a] = rot @ deltas[a] @ rot.conj().T
    return orb, sel, offsets, deltas, O


def _requested_bonds(ham: CollinearHamiltonian, bonds, kmesh, rcut) -> list:
    """``bonds`` as [(a, b, R), ...] of ints, or every magnetic pair (a < b, or a = b and R > 0) within ``rcut`` Å
    whose R lies in the k-mesh supercell; a bond whose R does not fit into it is refused."""
    mag = list(ham.magnetic)
    pos = np.asarray(ham.positions)
    if bonds is None:
        if rcut is None:
            raise MFTError("give bonds or a cutoff radius rcut")
        bonds = []
        rng = [range(-((m - 1) // 2), (m - 1) // 2 + 1) for m in kmesh]
        for a in range(len(mag)):
            for b in range(len(mag)):
                for R in ((x, y, zz) for x in rng[0] for y in rng[1] for zz in rng[2]):
                    if a == b and R == (0, 0, 0):
                        continue
                    if not (a < b or (a == b and R > (0, 0, 0))):
                        continue
                    d = np.linalg.norm(pos[mag[b]] + np.array(R) @ ham.cell - pos[mag[a]])
                    if d <= rcut:
                        bonds.append((a, b, R))
    bonds = [(int(a), int(b), tuple(int(x) for x in R)) for a, b, R in bonds]
    for a, b, R in bonds:
        for k, m in enumerate(kmesh):
            if abs(R[k]) > (m - 1) // 2:
                raise MFTError(f"bond R = {list(R)} does not fit into the {list(kmesh)} k-mesh supercell "
                               f"(|R_{k + 1}| must be ≤ {(m - 1) // 2}); use a larger k-mesh")
    return bonds


def _contour_integrals(eig, vec, kpts, z, w, bonds, orb, sel, offsets, deltas, O, chunk: int, progress: bool):
    """Σ_z w Tr[Δ_a G↑_ab(R, z) Δ_b G↓_ba(−R, z)] of every bond (the LKAG integral before its imaginary part and
    prefactor), in total and orbital-resolved (the trace terms X_mn Y_nm), on the contour points ``z``, weights ``w``.

    Green's function blocks on the magnetic orbitals at the bonds' R (G↑ at R, G↓ at −R); accumulate the integrand
    bond by bond.  G(k, z)_ab = Σ_n U_an(k) U*_bn(k) / (z − ε_n(k)) as one batched matrix product on BLAS
    (np.matmul over the stacked (z, k) axes, ≈ 4× faster than the equivalent einsum), and
    G(R) = (1/N) Σ_k e^{−2πi k·R} G(k) as a second one over k for the few R the bonds need (cheaper than an FFT
    to all R when, as here, they are fewer than ≈ 2 log2 N_k; same numbers to rounding)."""
    nk = len(kpts)
    nsel = len(sel)
    U = [O @ v[:, sel, :] for v in vec]  # (nk, nsel, nw), in the rotated orbital basis
    Uh = [np.ascontiguousarray(np.conj(np.transpose(u, (0, 2, 1)))) for u in U]  # (nk, nw, nsel)
    R_up = sorted({R for _, _, R in bonds})  # G↑_ab(R)
    R_dn = sorted({tuple(-x for x in R) for _, _, R in bonds})  # G↓_ba(−R)
    phase = [np.exp(-2j * np.pi * (kpts @ np.array(Rs, dtype=float).T)).T / nk for Rs in (R_up, R_dn)]  # (nR, nk)
    where = [{R: n for n, R in enumerate(Rs)} for Rs in (R_up, R_dn)]
    acc = np.zeros(len(bonds), dtype=complex)
    acc_orb = [np.zeros((len(orb[a]), len(orb[b])), dtype=complex) for a, b, _ in bonds]
    iterator = range(0, len(z), chunk)
    if progress:
        iterator = tqdm(iterator, desc="LKAG energy points", unit="chunk")
    with _single_threaded_blas():
        for start in iterator:
            zc = z[start:start + chunk]
            wc = w[start:start + chunk]
            G = []
            for s in (0, 1):
                inv = 1.0 / (zc[:, None, None] - eig[s][None, :, :])  # (nz, nk, nw)
                Gk = (U[s][None] * inv[:, :, None, :]) @ Uh[s]  # (nz, nk, nsel, nsel)
                GR = phase[s][None] @ Gk.reshape(len(zc), nk, nsel * nsel)  # (nz, nR, nsel²)
                G.append(GR.reshape(len(zc), -1, nsel, nsel))
            for n, (a, b, R) in enumerate(bonds):
                ia = slice(offsets[a], offsets[a + 1])
                ib = slice(offsets[b], offsets[b + 1])
                Gup_ab = G[0][:, where[0][R], ia, ib]  # G↑_ab(R)
                Gdn_ba = G[1][:, where[1][tuple(-x for x in R)], ib, ia]  # G↓_ba(−R)
                X = deltas[a][None] @ Gup_ab  # (nz, na, nb)
                Y = deltas[b][None] @ Gdn_ba  # (nz, nb, na)
                orb_mat = X * np.transpose(Y, (0, 2, 1))  # orbital-resolved trace terms X_mn Y_nm
                acc_orb[n] += np.tensordot(wc, orb_mat, axes=1)
                acc[n] += np.sum(wc * orb_mat.sum(axis=(1, 2)))
    return acc, acc_orb


def lkag_exchange(ham: CollinearHamiltonian, bonds=None, kmesh=(12, 12, 1), efermi: float | None = None,
                  n_electrons: float | None = None, n_energy: int = 120, rcut: float | None = None,
                  emin: float | None = None, chunk: int = 16, progress: bool = False,
                  rotations: dict | None = None) -> MFTResult:
    """J_ij(R) of ``bonds`` [(i, j, R), ...] (indices into ``ham.magnetic``) or of all magnetic pairs within
    ``rcut`` Å; E_F given or from ``n_electrons`` per cell.  See the module docstring for formula and conventions.

    ``rotations``: optional {magnetic index: orthogonal matrix O} rotating that atom's orbitals (new = O @ old),
    e.g. into its local octahedral frame, so that the orbital-resolved J refers to t2g/eg orbitals.  The total J is
    invariant under such rotations.
    """
    kmesh, n_energy = check_grid(kmesh, n_energy)
    _check_arguments(rcut, efermi, n_electrons)
    signs = ham.moment_signs()
    chunk = _energy_batch(ham, kmesh, n_energy, chunk)
    kpts = kmesh_points(kmesh)
    eig, vec = _spin_bands(ham, kpts)
    efermi = _fermi_level_inside(ham, eig, efermi, n_electrons)
    emin = float(eig.min()) - 1.0 if emin is None else emin
    z, w = energy_contour(emin, efermi, n_energy)
    orb, sel, offsets, deltas, O = _magnetic_orbitals(ham, rotations)
    bonds = _requested_bonds(ham, bonds, kmesh, rcut)
    acc, acc_orb = _contour_integrals(eig, vec, kpts, z, w, bonds, orb, sel, offsets, deltas, O, chunk, progress)
    # divide by sign(m_i·m_j) of the reference state (module docstring): antiparallel pairs change sign
    pair = np.array([signs[a] * signs[b] for a, b, _ in bonds], dtype=float)
    J_lkag = np.imag(acc) / (4 * np.pi) * 1000.0 * pair  # eV → meV
    orbital = [np.imag(x) / (4 * np.pi) * 1000.0 * p for x, p in zip(acc_orb, pair)]
    if not (np.all(np.isfinite(J_lkag)) and all(np.all(np.isfinite(x)) for x in orbital)):
        raise MFTError(f"{ham.source}: the energy integral gave non-finite exchange (NaN/inf); check the model")
    spins = ham.spins
    mag = list(ham.magnetic)
    pos = np.asarray(ham.positions)
    J_int = np.array([float(TB2J.to_internal(j, spins[a], spins[b])) for j, (a, b, _) in zip(J_lkag, bonds)])
    dist = np.array([np.linalg.norm(pos[mag[b]] + np.array(R) @ ham.cell - pos[mag[a]]) for a, b, R in bonds])
    order = np.argsort(dist, kind="stable")
    return MFTResult(bonds=[bonds[k] for k in order], distances=dist[order], J_lkag=J_lkag[order], J=J_int[order],
                     orbital=[orbital[k] for k in order], efermi=float(efermi), kmesh=kmesh, n_energy=n_energy,
                     moment_signs=list(signs), elements=list(ham.elements))


def mft_spin_model(ham: CollinearHamiltonian, result: MFTResult, cell_pbc=(True, True, False)) -> SpinModel:
    """Isotropic SpinModel (internal convention) from an LKAG result."""
    sites = [Site(np.array(ham.positions[a]), el, float(s), label=f"{el}{k}")
             for k, (a, el, s) in enumerate(zip(ham.magnetic, ham.elements, ham.spins))]
    model = SpinModel(cell=np.array(ham.cell), sites=sites, pbc=tuple(cell_pbc),
                      meta={"method": "magnetic force theorem (LKAG)", "efermi_eV": result.efermi,
                            "kmesh": list(result.kmesh), "n_energy": result.n_energy, "source": ham.source,
                            "reference_moments": list(result.moment_signs)})
    for (a, b, R), J in zip(result.bonds, result.J):
        model.add_bond(a, b, R, J)
    model.assign_shells()
    return model


def orbital_blocks(result: MFTResult, groups: dict[str, list[int]]) -> list[dict[str, float]]:
    """Sum the orbital-resolved J_lkag of every bond over orbital groups, e.g. ``{"t2g": [1, 2, 4], "eg": [0, 3]}``
    (Wannier90 d order dz2, dxz, dyz, dx2-y2, dxy in the local octahedral frame).  Returns, per bond, the
    contributions "t2g-t2g", "t2g-eg", "eg-t2g", "eg-eg" (TB2J convention, meV; they sum to J_lkag)."""
    out = []
    for mat in result.orbital:
        row = {}
        for ga, ia in groups.items():
            for gb, ib in groups.items():
                row[f"{ga}-{gb}"] = float(mat[np.ix_(ia, ib)].sum())
        out.append(row)
    return out


def convergence_report(ham: CollinearHamiltonian, bonds, kmeshes, n_energies, **kw) -> dict:
    """J of ``bonds`` for each k-mesh (at the largest energy grid) and each energy grid (at the largest k-mesh);
    returns the tables and the largest change between the two finest settings (meV, internal convention)."""
    kmeshes = [tuple(k) for k in kmeshes]
    n_energies = sorted(n_energies)
    by_k = {k: lkag_exchange(ham, bonds=bonds, kmesh=k, n_energy=n_energies[-1], **kw) for k in kmeshes}
    by_e = {n: lkag_exchange(ham, bonds=bonds, kmesh=kmeshes[-1], n_energy=n, **kw) for n in n_energies}

    def ordered(res):
        return np.array([dict(zip(res.bonds, res.J))[tuple((a, b, tuple(R)))] for a, b, R in
                         [(int(x), int(y), tuple(int(r) for r in R)) for x, y, R in bonds]])

    Jk = {k: ordered(r) for k, r in by_k.items()}
    Je = {n: ordered(r) for n, r in by_e.items()}
    dk = float(np.max(np.abs(Jk[kmeshes[-1]] - Jk[kmeshes[-2]]))) if len(kmeshes) > 1 else float("nan")
    de = float(np.max(np.abs(Je[n_energies[-1]] - Je[n_energies[-2]]))) if len(n_energies) > 1 else float("nan")
    return {"kmesh": {str(list(k)): v.tolist() for k, v in Jk.items()},
            "n_energy": {str(n): v.tolist() for n, v in Je.items()},
            "max_change_kmesh_meV": dk, "max_change_energy_meV": de}


def hamiltonian_from_tb(model, magnetic=None, spins=None) -> CollinearHamiltonian:
    """A :class:`CollinearHamiltonian` from a ``wannmag.tightbinding.CollinearTBModel``.

    ``magnetic``: atom indices of the magnetic atoms (default: atoms carrying d orbitals); ``spins``: their S
    (default: from the structures layer's ion table, e.g. 3/2 for Cr3+; S only enters the conversion to the
    internal convention J = −2 J^{LKAG}/(S_i S_j)).  Every orbital of a magnetic atom enters its Δ block.
    """
    up, dn = model.up, model.down
    Rs = sorted({tuple(int(x) for x in r) for r in up.R} | {tuple(int(x) for x in r) for r in dn.R})
    H_up = np.array([up.matrix(r) for r in Rs])
    H_dn = np.array([dn.matrix(r) for r in Rs])
    orbital_atom = np.array([o.atom for o in model.orbitals])
    atoms = model.atoms
    if atoms is None:
        raise MFTError(f"{model.name}: the model has no structure; orbitals cannot be assigned to atoms")
    magnetic_given = magnetic
    if magnetic is None:
        magnetic = sorted({o.atom for o in model.orbitals if o.l == 2 and o.atom >= 0})
    if not magnetic:
        raise MFTError(f"{model.name}: no atom carries d orbitals; name the magnetic atoms explicitly "
                       "(--magnetic ELEMENT on the command line)")
    symbols = atoms.get_chemical_symbols()
    if spins is None:
        named = None if magnetic_given is None else sorted({symbols[a] for a in magnetic})
        try:
            sub = find_magnetic_sites(atoms, magnetic=named)
            table = dict(zip(sub.indices.tolist(), sub.spins.tolist()))
            spins = [table.get(a, 1.0) for a in magnetic]
        except WannmagError:
            spins = [1.0] * len(magnetic)
    return CollinearHamiltonian(cell=np.array(model.lattice), R=np.array(Rs), H_up=H_up, H_dn=H_dn,
                                orbital_atom=orbital_atom, positions=np.array(atoms.positions), magnetic=list(magnetic),
                                elements=[symbols[a] for a in magnetic], spins=[float(s) for s in spins],
                                orbital_labels=[getattr(o, "label", str(o)) for o in model.orbitals],
                                source=getattr(model, "name", "model"))
