"""The Monte Carlo lattice: a SpinModel repeated on an L1×L2×L3 supercell, as flat arrays for the Numba kernels.

Hamiltonian (internal wannmag convention)::

    H = Σ_{bonds (i,j,R), each once} S_i·J_ij(R)·S_{j+R} + Σ_i S_i·A_i·S_i − g_i μ_B B·S_i

classical spins of length S_i, J and A in meV, J > 0 antiferromagnetic, B in tesla.  Periodic directions
(``model.pbc``) wrap around; in a non-periodic direction the supercell is open (bonds leaving it are dropped).  A
bond that wraps onto its own site (a periodic image in a too small supercell) contributes S_i·J·S_i and is folded into
the single-ion tensor.  Vacancies (dilution) remove sites and all their bonds; bonds next to a vacancy can be given
other exchange tensors (``near_vacancy``), any bond of the supercell another tensor (``bond_exchange``), and any site
another spin length (``spins``, e.g. S = 1 on the V3+ hole sites of V_{1−x}PS3, :mod:`.holes`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..spinmodel import MU_B_MEV_PER_T, SpinModel
from .errors import MonteCarloError
from .kernels import total_energy

__all__ = ["MCLattice", "build_lattice", "bond_shells", "supercell_bonds", "random_vacancies", "MAX_SITES",
           "range_problem", "min_size_for_range"]


def bond_shells(model: SpinModel, tol: float = 0.05) -> np.ndarray:
    """Shell index (1 = shortest) of every bond of ``model`` by length (Å, within ``tol``); the bonds carry J in the
    internal convention (S_i·J·S_j, each bond once, J > 0 antiferromagnetic, meV)."""
    if not model.bonds:
        return np.zeros(0, int)
    lengths = np.array([model.bond_length(b) for b in model.bonds])
    dist: list[float] = []
    for d in np.sort(lengths):
        if not dist or d - dist[-1] > tol:
            dist.append(float(d))
    return np.array([1 + int(np.argmin([abs(d - x) for x in dist])) for d in lengths])


@dataclass
class MCLattice:
    """Flat arrays of the supercell (see :mod:`.kernels` for their meaning) for H = Σ_{i<j} S_i·J_ij·S_j +
    Σ_i S_i·A_i·S_i − g μ_B B·S_i (meV, each bond once, classical spins of length S, J > 0 antiferromagnetic).

    ``size`` = (L1, L2, L3); ``parent[i]`` the unit-cell site of MC site i, ``cell_of[i]`` its cell (c1, c2, c3),
    ``full_index[i]`` its index in the undiluted supercell; ``positions`` in Å.  ``mode`` 0/1/2 = all bonds
    isotropic / diagonal (XXZ) / general.  ``dimension`` counts the periodic directions with L > 1 (the dimension
    relevant to Mermin–Wagner).
    """

    model: SpinModel
    size: tuple[int, int, int]
    parent: np.ndarray
    cell_of: np.ndarray
    full_index: np.ndarray
    positions: np.ndarray
    ptr: np.ndarray
    nbr: np.ndarray
    Jiso: np.ndarray
    Jd: np.ndarray
    Jf: np.ndarray
    mode: int
    A: np.ndarray
    hasA: np.ndarray
    orok: np.ndarray
    zee: np.ndarray
    slen: np.ndarray
    vacancies: list[int] = field(default_factory=list)
    #: sites whose anisotropic single-ion tensor is uniaxial (A = a 1 + D n nᵀ) and their axes n (over-relaxation)
    uniax: np.ndarray | None = None
    axis: np.ndarray | None = None

    @property
    def n_sites(self) -> int:
        return int(self.slen.shape[0])

    @property
    def dimension(self) -> int:
        return int(sum(1 for a in range(3) if self.model.pbc[a] and self.size[a] > 1))

    def kernel_args(self) -> tuple:
        """(ptr, nbr, Jiso, Jd, Jf, mode, A, hasA, orok, zee, slen) for the kernels."""
        return (self.ptr, self.nbr, self.Jiso, self.Jd, self.Jf, self.mode, self.A, self.hasA, self.orok, self.zee,
                self.slen)

    def energy(self, spins: np.ndarray) -> float:
        """H (meV) of a configuration ``spins`` (n_sites × 3, lengths S_i)."""
        s = np.ascontiguousarray(spins, dtype=float)
        return float(total_energy(s, self.ptr, self.nbr, self.Jiso, self.Jd, self.Jf, self.mode, self.A, self.hasA,
                                  self.zee))

    def tile(self, unit_spins: np.ndarray, period=(1, 1, 1)) -> np.ndarray:
        """Spins of the supercell from a pattern given on a ``period`` = (m1, m2, m3) block of cells
        (array (m1, m2, m3, n_unit_sites, 3)); m_a must divide L_a."""
        u = np.asarray(unit_spins, float)
        m = np.array(period)
        c = self.cell_of % m
        return u[c[:, 0], c[:, 1], c[:, 2], self.parent].copy()


#: magnetic sites of one Monte Carlo lattice (memory of the neighbour lists and of the replicas' spins)
MAX_SITES = 10 ** 6


def _as_size(size) -> tuple[int, int, int]:
    try:
        s = np.atleast_1d(np.asarray(size, dtype=np.int64)).tolist()
    except (OverflowError, TypeError, ValueError):
        raise MonteCarloError(f"lattice size must be 1-3 positive integers, got {size!r}") from None
    if len(s) == 1:
        s = [s[0], s[0], 1]
    elif len(s) == 2:
        s = [s[0], s[1], 1]
    if len(s) != 3 or min(s) < 1:
        raise MonteCarloError(f"lattice size must be 1-3 positive integers, got {size!r}")
    if int(np.prod([float(x) for x in s])) > MAX_SITES:
        raise MonteCarloError(f"lattice size {'x'.join(map(str, s))}: more than {MAX_SITES:.0e} cells, beyond what "
                              "a Monte Carlo run holds in memory; use smaller sizes")
    return int(s[0]), int(s[1]), int(s[2])


def supercell_bonds(model: SpinModel, L) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(cells, rows, cols, bidx): the cells (c1, c2, c3) of the undiluted L1×L2×L3 supercell and every bond of
    ``model`` repeated on it, each once, from site ``rows[e]`` to site ``cols[e]`` (numbered ((c1·L2 + c2)·L3 + c3)·
    n_unit + s), ``bidx[e]`` the index of the model bond (J in the internal convention: S_i·J·S_j, meV, J > 0 AF).
    Periodic directions wrap; bonds leaving an open direction are dropped."""
    L = _as_size(L)
    ns = model.n_sites
    cells = np.array(list(np.ndindex(*L)), dtype=np.int64)
    ncell = len(cells)

    def index(c, s):
        return ((c[:, 0] * L[1] + c[:, 1]) * L[2] + c[:, 2]) * ns + s

    rows, cols, bidx = [], [], []
    for b_i, b in enumerate(model.bonds):
        tgt = cells + np.array(b.R, dtype=np.int64)
        valid = np.ones(ncell, bool)
        for a in range(3):
            if model.pbc[a]:
                tgt[:, a] %= L[a]
            else:
                valid &= (tgt[:, a] >= 0) & (tgt[:, a] < L[a])
        rows.append(index(cells[valid], b.i))
        cols.append(index(tgt[valid], b.j))
        bidx.append(np.full(int(valid.sum()), b_i))
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    bidx = np.concatenate(bidx) if bidx else np.zeros(0, np.int64)
    return cells, rows, cols, bidx


def min_size_for_range(model: SpinModel) -> list[int]:
    """Smallest periodic supercell edge per direction above the bond range of ``model``: 2 r + 1 where r is the
    largest |R_a| of a bond (1 for an open direction).  From that size on no two bonds (nor a bond and its own
    reverse) can join the same pair of sites through periodic images."""
    reach = [max([abs(int(b.R[a])) for b in model.bonds] + [0]) for a in range(3)]
    return [2 * r + 1 if model.pbc[a] else 1 for a, r in enumerate(reach)]


def range_problem(lat) -> str | None:
    """None when the supercell ``lat`` (an :class:`MCLattice`) is above the bond range of its model, else one line
    saying why it is not: a bond that wraps onto a periodic image of its own site, or two bonds (or a bond and its
    reverse) joining the same pair of sites.  Such a lattice is a different model (the images add up: e.g. the
    J2 bonds ±a1 of a 2×2 honeycomb join the same two sites, so J2 counts twice) — exact as built, not the model meant."""
    m, L = lat.model, lat.size
    small = [b for b in m.bonds if b.i == b.j and all((int(b.R[a]) % L[a] == 0) if m.pbc[a] else int(b.R[a]) == 0
                                                      for a in range(3))]
    dup = False
    if not small and len(lat.nbr):
        rows = np.repeat(np.arange(lat.n_sites), np.diff(lat.ptr))
        order = np.lexsort((lat.nbr, rows))  # the CSR is sorted already; cheap insurance
        r, c = rows[order], lat.nbr[order]
        dup = bool(np.any((r[1:] == r[:-1]) & (c[1:] == c[:-1])) or np.any(r == c))
    if not (small or dup):
        return None
    reach = max(max([abs(int(b.R[a])) for b in m.bonds] + [0]) for a in range(3))
    return (f"lattice {'x'.join(map(str, L))} is too small for the bond range of the model (bonds reach {reach} "
            f"cell(s): periodic images of different bonds join the same pair of sites, so it simulates a different "
            f"model): use L >= {max(min_size_for_range(m))}")


def random_vacancies(n_sites: int, fraction: float, key) -> list[int]:
    """round(fraction · n_sites) distinct site indices, reproducible from ``key`` (a sequence of ints): the vacancies
    of one disorder realisation (:func:`~.dilution.dilution_scan`, :mod:`.holes`), for ``build_lattice(...,
    vacancies=...)``."""
    if not 0.0 <= fraction < 1.0:
        raise MonteCarloError(f"dilution fraction must be in [0, 1), got {fraction}")
    k = int(round(fraction * n_sites))
    if k == 0:
        return []
    if k >= n_sites:
        raise MonteCarloError("the dilution removes every site")
    g = np.random.default_rng(np.random.SeedSequence([int(x) for x in key]))
    return sorted(g.choice(n_sites, size=k, replace=False).tolist())


def _check_model(model) -> None:
    """Refuse anything but a SpinModel with at least one site, every spin length S > 0."""
    if not isinstance(model, SpinModel):
        raise MonteCarloError(f"expected a SpinModel, got {type(model).__name__}")
    if model.n_sites == 0:
        raise MonteCarloError("the spin model has no magnetic site")
    if any(s.spin <= 0 for s in model.sites):
        raise MonteCarloError("every site needs a spin length S > 0")


def _vacancy_mask(vacancies, n_full: int) -> tuple[list[int], np.ndarray]:
    """(sorted distinct vacancy indices, vacant flag of every site of the undiluted supercell)."""
    vac = sorted({int(v) for v in (vacancies or [])})
    if vac and (vac[0] < 0 or vac[-1] >= n_full):
        raise MonteCarloError(f"vacancy indices must lie in 0..{n_full - 1}")
    if len(vac) >= n_full:
        raise MonteCarloError("cannot remove every site")
    vacant = np.zeros(n_full, bool)
    vacant[vac] = True
    return vac, vacant


def _set_near_vacancy_exchange(tensors, model: SpinModel, rows, cols, bidx, vacant, near_vacancy) -> None:
    """Replace in ``tensors`` the exchange of the bonds with both ends present whose ends have, together, n_vac ≥ 1
    vacant nearest neighbours (shell-1 bonds) by ``near_vacancy`` (see :func:`build_lattice`)."""
    shells = bond_shells(model)
    nn = shells[bidx] == 1
    nvac_site = np.zeros(len(vacant), np.int64)
    np.add.at(nvac_site, rows[nn], vacant[cols[nn]].astype(np.int64))
    np.add.at(nvac_site, cols[nn], vacant[rows[nn]].astype(np.int64))
    n_vac = nvac_site[rows] + nvac_site[cols]  # both ends present, so neither counts as the other's vacancy
    for e in np.nonzero((n_vac > 0) & ~vacant[rows] & ~vacant[cols])[0]:
        b_i = int(bidx[e])
        if callable(near_vacancy):
            J = near_vacancy(b_i, model.bonds[b_i], int(n_vac[e]))
        else:
            J = near_vacancy.get(int(shells[b_i]))
        if J is not None:
            J = np.asarray(J, float)
            tensors[e] = J * np.eye(3) if J.shape == () else J


def _set_bond_exchange(tensors, rows, cols, bidx, vacant, bond_exchange) -> None:
    """Replace in ``tensors`` the exchange of every bond with two present ends by ``bond_exchange`` of it."""
    live = np.nonzero((rows != cols) & ~vacant[rows] & ~vacant[cols])[0]
    newJ = np.asarray(bond_exchange(rows[live], cols[live], bidx[live], tensors[live].copy()), dtype=float)
    if newJ.shape != (len(live), 3, 3) or not np.all(np.isfinite(newJ)):
        raise MonteCarloError(f"bond_exchange must return {len(live)} finite 3x3 exchange tensors (meV), got an "
                              f"array of shape {newJ.shape}")
    tensors[live] = newJ


def _neighbour_csr(rows, cols, tensors, keep, n_full: int):
    """(new_of, ptr, nbr, T): the index of every undiluted site among the ``keep`` sites (−1 if vacant) and the
    neighbour lists in CSR form, both directions of every bond (T transposed for the reverse one), sorted by row,
    then column."""
    new_of = -np.ones(n_full, np.int64)
    new_of[keep] = np.arange(len(keep))
    r = np.concatenate([new_of[rows], new_of[cols]])
    c = np.concatenate([new_of[cols], new_of[rows]])
    T = np.concatenate([tensors, np.transpose(tensors, (0, 2, 1))])
    order = np.lexsort((c, r))  # deterministic CSR: by row, then column
    r, c, T = r[order], c[order], T[order]
    N = len(keep)
    ptr = np.zeros(N + 1, np.int64)
    np.add.at(ptr, r + 1, 1)
    ptr = np.cumsum(ptr)
    return new_of, ptr, c, T


def _exchange_mode(T, tol: float) -> tuple[int, np.ndarray]:
    """(mode, diagonals) of the exchange tensors T: 0 all isotropic (within ``tol`` of the largest entry, at least
    1 meV), 1 all diagonal, 2 general."""
    scale = max(1.0, float(np.abs(T).max()) if len(T) else 1.0)
    off = T.copy()
    off[:, [0, 1, 2], [0, 1, 2]] = 0.0
    diag = np.stack([T[:, 0, 0], T[:, 1, 1], T[:, 2, 2]], axis=1) if len(T) else np.zeros((0, 3))
    if not len(T) or (np.all(np.abs(off) <= tol * scale) and np.all(np.abs(diag - diag[:, :1]) <= tol * scale)):
        mode = 0
    elif np.all(np.abs(off) <= tol * scale):
        mode = 1
    else:
        mode = 2
    return mode, diag


def _single_ion_terms(A, tol: float):
    """(Asym, hasA, orok, uniax, axis) of the single-ion tensors A: the symmetric part, whether it is non-zero,
    whether it is isotropic (within ``tol``), and the uniaxial sites with their axes (:func:`_uniaxial`)."""
    Asym = 0.5 * (A + np.transpose(A, (0, 2, 1)))
    tr = np.trace(Asym, axis1=1, axis2=2)
    aniso = Asym - tr[:, None, None] / 3.0 * np.eye(3)
    hasA = np.any(np.abs(Asym) > 0.0, axis=(1, 2))
    orok = ~np.any(np.abs(aniso) > tol * max(1.0, float(np.abs(Asym).max(initial=0.0))), axis=(1, 2))
    uniax, axis = _uniaxial(Asym, orok, tol)
    return Asym, hasA, orok, uniax, axis


def build_lattice(model: SpinModel, size, vacancies=None, near_vacancy=None, tol: float = 1e-10, spins=None,
                  bond_exchange=None) -> MCLattice:
    """Repeat ``model`` on an L1×L2×L3 supercell (``size``: one integer L → L×L×1, or 2 or 3 integers).

    Parameters
    ----------
    model : SpinModel in the internal convention, H = Σ_{i<j} S_i·J_ij·S_j + Σ_i S_i·A_i·S_i − gμ_B B·S_i (meV,
        spins of length S, J > 0 antiferromagnetic).
    vacancies : indices of removed sites in the undiluted supercell, numbered
        ((c1·L2 + c2)·L3 + c3)·n_unit + s.
    near_vacancy : exchange of bonds next to a vacancy — bonds whose end sites have, together, n_vac ≥ 1 vacant
        nearest neighbours (shell-1 bonds).  Either a dict {shell: J} (J scalar or 3×3, meV, internal convention;
        shells numbered by bond length, 1 = shortest) or a callable ``f(bond_index, bond, n_vac) -> J or None``
        (None keeps the model's tensor).
    spins : spin lengths S > 0 other than the model's: a mapping {site index in the undiluted supercell (numbered as
        ``vacancies``): S} (the other sites keep their model S), or an array of one S per site of the built lattice
        (after the vacancies are removed, in the order of :attr:`MCLattice.full_index`).
    bond_exchange : ``f(rows, cols, bidx, J) -> J'``, the exchange of every bond of the supercell whose two ends are
        present (after ``near_vacancy``): ``rows``/``cols`` the end sites (undiluted numbering), ``bidx`` the model
        bond, ``J`` the current 3×3 tensors (meV, internal convention); returns tensors of the same shape.
    """
    _check_model(model)
    L = _as_size(size)
    ns = model.n_sites
    if L[0] * L[1] * L[2] * ns > MAX_SITES:
        raise MonteCarloError(f"lattice {'x'.join(map(str, L))} of a {ns}-site cell: {L[0] * L[1] * L[2] * ns} "
                              f"sites, more than the {MAX_SITES:.0e} a Monte Carlo run holds in memory; use smaller "
                              "sizes")
    cells, rows, cols, bidx = supercell_bonds(model, L)
    ncell = len(cells)
    n_full = ncell * ns
    tensors = np.array([model.bonds[k].J for k in bidx]).reshape(-1, 3, 3)
    vac, vacant = _vacancy_mask(vacancies, n_full)
    if near_vacancy is not None and vac and len(bidx):
        _set_near_vacancy_exchange(tensors, model, rows, cols, bidx, vacant, near_vacancy)
    if bond_exchange is not None:
        _set_bond_exchange(tensors, rows, cols, bidx, vacant, bond_exchange)

    # a bond of a site with its own periodic image adds S·J·S = S·J_sym·S to the single-ion term of that site
    A = np.array([model.single_ion[s] for s in range(ns)] * ncell, dtype=float).reshape(n_full, 3, 3)
    self_bond = rows == cols
    for e in np.nonzero(self_bond)[0]:
        A[rows[e]] += 0.5 * (tensors[e] + tensors[e].T)
    keep_e = ~self_bond & ~vacant[rows] & ~vacant[cols]
    rows, cols, tensors = rows[keep_e], cols[keep_e], tensors[keep_e]

    keep = np.nonzero(~vacant)[0]
    new_of, ptr, c, T = _neighbour_csr(rows, cols, tensors, keep, n_full)
    mode, diag = _exchange_mode(T, tol)
    parent = np.tile(np.arange(ns), ncell)[keep]
    cell_of = np.repeat(cells, ns, axis=0)[keep]
    Asym, hasA, orok, uniax, axis = _single_ion_terms(A[keep], tol)
    g = np.array([s.g for s in model.sites])[parent]
    zee = (g[:, None] * MU_B_MEV_PER_T) * np.asarray(model.b_field, float)[None, :]
    slen = np.array([s.spin for s in model.sites], float)[parent]
    if spins is not None:
        slen = _spin_lengths(spins, slen, keep, new_of, n_full)
    unit_pos = np.array([s.position for s in model.sites])
    positions = unit_pos[parent] + cell_of @ model.cell
    return MCLattice(model=model, size=L, parent=parent, cell_of=cell_of, full_index=keep, positions=positions,
                     ptr=ptr, nbr=np.ascontiguousarray(c), Jiso=np.ascontiguousarray(T[:, 0, 0]),
                     Jd=np.ascontiguousarray(diag), Jf=np.ascontiguousarray(T.reshape(-1, 9)), mode=mode,
                     A=np.ascontiguousarray(Asym.reshape(-1, 9)), hasA=hasA, orok=orok,
                     zee=np.ascontiguousarray(zee), slen=slen, vacancies=vac, uniax=uniax, axis=axis)


def _uniaxial(Asym: np.ndarray, orok: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(uniax, axis): sites (not ``orok``) whose symmetric single-ion tensor (meV) has two equal eigenvalues,
    A = a 1 + D n nᵀ, and the unit axis n (the eigenvector of the third eigenvalue); axis 0 elsewhere."""
    N = len(Asym)
    uniax = np.zeros(N, bool)
    axis = np.zeros((N, 3))
    todo = np.nonzero(~orok)[0]
    if len(todo):
        w, v = np.linalg.eigh(Asym[todo])
        spread = np.maximum(np.abs(w).max(axis=1), 1e-300)
        lo = np.abs(w[:, 1] - w[:, 0]) <= 1e-9 * spread  # n = eigenvector of the largest eigenvalue
        hi = np.abs(w[:, 2] - w[:, 1]) <= 1e-9 * spread  # n = eigenvector of the smallest eigenvalue
        for t, i in enumerate(todo):
            if lo[t] != hi[t]:
                uniax[i] = True
                axis[i] = v[t][:, 2] if lo[t] else v[t][:, 0]
    return uniax, np.ascontiguousarray(axis)


def _spin_lengths(spins, slen: np.ndarray, keep: np.ndarray, new_of: np.ndarray, n_full: int) -> np.ndarray:
    """The ``spins`` override of :func:`build_lattice` applied to the model's lengths ``slen`` (one per kept site);
    one :class:`MonteCarloError` line for an index outside the supercell, a vacant site, a wrong length or S ≤ 0."""
    out = slen.copy()
    if isinstance(spins, dict):
        for k, v in spins.items():
            if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= int(k) < n_full:
                raise MonteCarloError(f"spin length override: site {k!r} is not a site of the supercell "
                                      f"(0..{n_full - 1})")
            if new_of[int(k)] < 0:
                raise MonteCarloError(f"spin length override: site {int(k)} is a vacancy")
            try:
                out[new_of[int(k)]] = float(v)
            except (TypeError, ValueError):
                raise MonteCarloError(f"spin length override: S = {v!r} on site {int(k)} is not a number") from None
    else:
        try:
            s = np.asarray(spins, dtype=float)
        except (TypeError, ValueError):
            raise MonteCarloError("spin length override: the spin lengths must be numbers") from None
        if s.shape != out.shape:
            raise MonteCarloError(f"spin length override: need one S per site of the lattice ({len(out)}), got an "
                                  f"array of shape {s.shape}")
        out = s.copy()
    bad = ~np.isfinite(out) | (out <= 0.0)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise MonteCarloError(f"spin length override: S = {out[k]} on site {int(keep[k])}; every spin length must be "
                              "a finite S > 0")
    return out
