"""Tight-binding models in a Wannier basis: :class:`TBModel` (one spin channel, spinless or spinor) and
:class:`CollinearTBModel` (an up/down pair).

Units: energies in eV, lengths in Å, k-points in reduced coordinates (fractions of the reciprocal lattice vectors
b_i, with a_i·b_j = 2π δ_ij).

Real-space Hamiltonian: ``H[iR, m, n] = <w_m, 0 | H | w_n, R>`` for the integer lattice vectors ``R[iR]``.  The
Wigner–Seitz degeneracies of a Wannier90 file are already divided out (exactly once) — ``H`` is the plain list of
matrix elements; H(−R) = H(R)† holds to machine precision (it is enforced on construction).

Phase conventions of H(k) (eigenvalues are identical; eigenvectors differ by a diagonal phase):

* ``"I"`` (default; the lattice gauge of Wannier90's ``hr.dat`` and of wannierberri's interpolation)::

      H_mn(k) = Σ_R exp(2πi k·R) H_mn(R)

* ``"II"`` (the "tb" / atomic gauge, orbital positions τ in reduced coordinates; Wannier centres by default, or the
  positions of the atoms the orbitals belong to)::

      H_mn(k) = Σ_R exp(2πi k·(R + τ_n − τ_m)) H_mn(R)  =  [U† H^I(k) U]_mn,   U = diag(exp(2πi k·τ))

H(k) for many k is one real matrix product: with θ = 2π k·R and H(−R) = H(R)†,
H(k) = H(0) + Σ_{R>0} [cos θ (H(R) + H(R)†) + sin θ · i(H(R) − H(R)†)] — coefficients [nk, 1 + nR] times the
interleaved real and imaginary parts of the Hermitian blocks [1 + nR, 2 nw²], read back as complex without a copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase.cell import Cell

from ..errors import WannmagError
from ._blas import single_threaded_blas
from .harmonics import L_OF_NAME, ORBITAL_NAMES

__all__ = ["TBError", "TBFileError", "Orbital", "TBModel", "CollinearTBModel", "make_orbitals"]


class TBError(WannmagError):
    """A tight-binding model cannot be built or analysed as requested."""


class TBFileError(TBError):
    """A Wannier90 (or related) file is missing, truncated or inconsistent; the message names file and line."""


@dataclass(frozen=True)
class Orbital:
    """One Wannier orbital.

    atom : index of the atom in ``TBModel.atoms`` (−1 when not assigned to an atom).
    element : chemical symbol of that atom.
    l, name : angular momentum and real-harmonic name (``dz2, dxz, dyz, dx2-y2, dxy``; ``pz, px, py``; ``s``).
    spin : None for a spinless orbital (or one orbital of a collinear spin channel), ``"up"``/``"down"`` for the
        components of a spinor model.
    cell : integer lattice vector S; the orbital is centred on the atom image ``atoms.positions[atom] + S·cell``.
    """

    atom: int
    element: str
    l: int
    name: str
    spin: str | None = None
    cell: tuple[int, int, int] = (0, 0, 0)

    @property
    def m(self) -> int:
        """Index of the orbital inside its l-shell (Wannier90 order)."""
        return ORBITAL_NAMES[self.l].index(self.name) if self.l in ORBITAL_NAMES else 0

    @property
    def label(self) -> str:
        s = "" if self.spin is None else ("↑" if self.spin == "up" else "↓")
        return f"{self.element}{self.atom}:{self.name}{s}"

    def as_dict(self) -> dict:
        return {"atom": self.atom, "element": self.element, "l": self.l, "name": self.name, "spin": self.spin,
                "cell": list(self.cell)}

    @classmethod
    def from_dict(cls, d: dict) -> "Orbital":
        """Inverse of :meth:`as_dict` (everything is stored; ``spin`` and ``cell`` default to None and (0, 0, 0)).
        A dict that is not an orbital's is one :class:`TBError` line."""
        try:
            spin = d.get("spin")
            if spin not in (None, "up", "down"):
                raise ValueError(f"spin must be null, 'up' or 'down', got {spin!r}")
            cell = tuple(int(x) for x in d.get("cell", (0, 0, 0)))
            if len(cell) != 3:
                raise ValueError(f"cell must be 3 integers, got {d['cell']!r}")
            return cls(atom=int(d["atom"]), element=str(d["element"]), l=int(d["l"]), name=str(d["name"]), spin=spin,
                       cell=cell)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TBError(f"not a stored orbital ({type(exc).__name__}: {exc})") from None


def make_orbitals(spec: list[tuple[int, str, str]], spinor: bool = False) -> list[Orbital]:
    """Orbitals from ``[(atom, element, "d"|"p"|"s"|name), ...]`` in Wannier90 order (spin innermost if spinor)."""
    out = []
    for atom, element, what in spec:
        names = ORBITAL_NAMES[{"s": 0, "p": 1, "d": 2, "f": 3}[what]] if what in ("s", "p", "d", "f") else (what,)
        for name in names:
            for spin in (("up", "down") if spinor else (None,)):
                out.append(Orbital(atom, element, L_OF_NAME[name], name, spin))
    return out


def _as_int_R(R) -> np.ndarray:
    R = np.asarray(R)
    if R.ndim != 2 or R.shape[1] != 3:
        raise TBError(f"R vectors must have shape (nR, 3), got {R.shape}")
    Ri = np.rint(R).astype(int)
    if np.any(np.abs(R - Ri) > 1e-8):
        raise TBError("R vectors must be integer lattice vectors")
    return Ri


class TBModel:
    """A Wannier tight-binding model H(R) (eV) on a lattice (Å).

    Parameters
    ----------
    R : (nR, 3) integer lattice vectors.
    H : (nR, nw, nw) complex matrix elements H_mn(R) = <w_m,0|H|w_n,R> in eV (degeneracies already divided out).
        R vectors without their −R partner are completed with H(−R) = H(R)†; the result is made exactly Hermitian,
        H(R) ← [H(R) + H(−R)†]/2, after checking that the violation is below ``hermitian_tol`` eV.
    lattice : (3, 3) lattice vectors as rows (Å).
    centres : (nw, 3) Cartesian Wannier centres (Å); default: atom positions of the orbitals, or the origin.
    orbitals : list of :class:`Orbital` (default: unknown orbitals, ``l = -1``).
    atoms : ase.Atoms of the structure the orbitals refer to (same cell).
    name : label used in messages.
    spin : ``"up"``/``"down"`` for one channel of a collinear calculation, None otherwise.
    """

    def __init__(self, R, H, lattice, centres=None, orbitals=None, atoms=None, name: str = "model",
                 spin: str | None = None, hermitian_tol: float = 1e-6, source: str | None = None):
        R = _as_int_R(R)
        H = np.asarray(H, dtype=complex)
        if H.ndim != 3 or H.shape[0] != len(R) or H.shape[1] != H.shape[2]:
            raise TBError(f"{name}: H must have shape (nR, nw, nw) matching R {R.shape}, got {H.shape}")
        self.name = name
        self.source = source or name
        self.spin = spin
        self.lattice = np.array(lattice, dtype=float).reshape(3, 3)
        if abs(np.linalg.det(self.lattice)) < 1e-8:
            raise TBError(f"{name}: lattice vectors are linearly dependent")
        # merge duplicate R vectors
        uniq, inv = np.unique(R, axis=0, return_inverse=True)
        if len(uniq) != len(R):
            Hs = np.zeros((len(uniq),) + H.shape[1:], complex)
            np.add.at(Hs, inv.ravel(), H)
            R, H = uniq, Hs
        R, H = self._complete_and_hermitise(R, H, hermitian_tol)
        self.R = R
        self.H = H
        nw = H.shape[1]
        self.atoms = atoms
        if orbitals is None:
            orbitals = [Orbital(-1, "X", -1, f"w{i}") for i in range(nw)]
        if len(orbitals) != nw:
            raise TBError(f"{name}: {len(orbitals)} orbitals given for {nw} Wannier functions")
        self.orbitals = list(orbitals)
        if centres is None:
            centres = np.zeros((nw, 3))
            if atoms is not None:
                for i, o in enumerate(self.orbitals):
                    if o.atom >= 0:
                        centres[i] = atoms.positions[o.atom] + np.asarray(o.cell) @ self.lattice
        self.centres = np.array(centres, dtype=float).reshape(nw, 3)
        self._prepare()

    # ------------------------------------------------------------------ construction helpers
    def _complete_and_hermitise(self, R, H, tol):
        index = {tuple(r): i for i, r in enumerate(R)}
        missing = [tuple(-r) for r in R if tuple(-r) not in index]
        if missing:
            src = [index[tuple(-np.array(m))] for m in missing]
            R = np.concatenate([R, np.array(missing, dtype=int).reshape(-1, 3)])
            H = np.concatenate([H, H[src].conj().transpose(0, 2, 1)])
            index = {tuple(r): i for i, r in enumerate(R)}
        if (0, 0, 0) not in index:
            R = np.concatenate([R, np.zeros((1, 3), int)])
            H = np.concatenate([H, np.zeros((1,) + H.shape[1:], complex)])
            index[(0, 0, 0)] = len(R) - 1
        partner = np.array([index[tuple(-r)] for r in R])
        Hdag = H[partner].conj().transpose(0, 2, 1)
        dev = np.abs(H - Hdag).max() if H.size else 0.0
        if dev > tol:
            iR, m, n = np.unravel_index(np.argmax(np.abs(H - Hdag)), H.shape)
            raise TBError(f"{self.name}: H(R) is not Hermitian: H_{m + 1},{n + 1}(R={tuple(int(x) for x in R[iR])}) = "
                          f"{H[iR, m, n]:.6g} but conj(H_{n + 1},{m + 1}(-R)) = {Hdag[iR, m, n]:.6g} "
                          f"(|difference| {dev:.3g} eV > tolerance {tol:g} eV)")
        return R, 0.5 * (H + Hdag)

    def _prepare(self):
        self._index = {tuple(r): i for i, r in enumerate(self.R)}
        self._i0 = self._index[(0, 0, 0)]
        half = [i for i, r in enumerate(self.R) if tuple(r) > (0, 0, 0)]
        self._half = np.array(half, dtype=int)
        self._Rhalf = self.R[self._half] if half else np.zeros((0, 3), int)
        nw = self.num_wann
        self._H0 = self.H[self._i0]
        # H(k) = H(0) + Σ_{R>0} [cos θ (H(R) + H(R)†) + sin θ · i(H(R) − H(R)†)],  θ = 2π k·R:
        # real coefficients [1, cos θ, sin θ] times the real matrix of interleaved (Re, Im) parts of the Hermitian
        # blocks; the real product, viewed as complex, is H(k) (no complex GEMM, no separate hermitisation)
        Hh = self.H[self._half]
        Hd = Hh.conj().transpose(0, 2, 1)
        blocks = np.concatenate([self._H0[None], Hh + Hd, 1j * (Hh - Hd)])
        self._B = np.ascontiguousarray(blocks.reshape(len(blocks), nw * nw)).view(np.float64)

    def copy(self, **changes) -> "TBModel":
        """A copy with some constructor arguments replaced (``R``, ``H``, ``orbitals``, ``name`` …)."""
        kw = dict(R=self.R.copy(), H=self.H.copy(), lattice=self.lattice, centres=self.centres.copy(),
                  orbitals=list(self.orbitals), atoms=self.atoms, name=self.name, spin=self.spin,
                  source=self.source)
        kw.update(changes)
        return TBModel(**kw)

    def subset(self, indices, name: str | None = None) -> "TBModel":
        """The model restricted to the orbitals ``indices`` (in that order)."""
        idx = np.asarray(indices, dtype=int)
        return self.copy(H=self.H[:, idx][:, :, idx], centres=self.centres[idx],
                         orbitals=[self.orbitals[i] for i in idx], name=name or self.name)

    def shifted(self, energy: float) -> "TBModel":
        """The model with all on-site energies shifted by ``energy`` eV (e.g. ``-E_F``)."""
        H = self.H.copy()
        H[self._i0] += energy * np.eye(self.num_wann)
        return self.copy(H=H)

    # ------------------------------------------------------------------ basic properties
    @property
    def num_wann(self) -> int:
        return self.H.shape[1]

    @property
    def nR(self) -> int:
        return len(self.R)

    @property
    def spinor(self) -> bool:
        return any(o.spin is not None for o in self.orbitals)

    @property
    def electrons_per_band(self) -> float:
        """2 for a spinless model, 1 for one collinear spin channel or a spinor model."""
        return 1.0 if (self.spin is not None or self.spinor) else 2.0

    @property
    def periodic(self) -> np.ndarray:
        """Directions along which the model has hoppings (a 2D slab model has no R with R_3 ≠ 0)."""
        return np.any(self.R != 0, axis=0)

    @property
    def reciprocal_lattice(self) -> np.ndarray:
        """Rows b_i with a_i·b_j = 2π δ_ij (1/Å)."""
        return 2 * np.pi * np.linalg.inv(self.lattice).T

    @property
    def centres_reduced(self) -> np.ndarray:
        return self.centres @ np.linalg.inv(self.lattice)

    def orbital_positions(self, which: str = "centres") -> np.ndarray:
        """Cartesian positions of the orbitals: Wannier ``"centres"`` or the ``"atoms"`` they belong to."""
        if which == "centres":
            return self.centres.copy()
        if which == "atoms":
            if self.atoms is None or any(o.atom < 0 for o in self.orbitals):
                raise TBError(f"{self.name}: orbitals are not assigned to atoms")
            return np.array([self.atoms.positions[o.atom] + np.asarray(o.cell) @ self.lattice for o in self.orbitals])
        raise TBError(f"unknown orbital positions {which!r} (use 'centres' or 'atoms')")

    def matrix(self, R) -> np.ndarray:
        """H(R) (nw × nw, eV); zeros if R is not in the model."""
        i = self._index.get(tuple(int(x) for x in R))
        return self.H[i].copy() if i is not None else np.zeros((self.num_wann,) * 2, complex)

    def onsite_energies(self) -> np.ndarray:
        """Diagonal of H(R = 0) (eV)."""
        return self._H0.diagonal().real.copy()

    def select(self, atom: int | None = None, l: int | None = None, element: str | None = None,
               spin: str | None = "any") -> list[int]:
        """Indices of the orbitals matching all given criteria (``spin="any"`` matches every spin)."""
        return [i for i, o in enumerate(self.orbitals)
                if (atom is None or o.atom == atom) and (l is None or o.l == l)
                and (element is None or o.element == element) and (spin == "any" or o.spin == spin)]

    @property
    def atoms_with_orbitals(self) -> list[int]:
        return sorted({o.atom for o in self.orbitals if o.atom >= 0})

    def atom_block(self, i: int, j: int, R=(0, 0, 0), li: int | None = None, lj: int | None = None,
                   spin: str | None = "any") -> np.ndarray:
        """Hopping block from the orbitals of atom ``i`` (home-cell image) to those of atom ``j`` in cell ``R`` (eV).

        Rows/columns are the orbitals of the atoms (of angular momentum ``li``/``lj`` if given) in model order; the
        orbitals' own cell shifts S are taken into account (matrix element taken at R_H = R + S_m − S_n).
        """
        rows = self.select(atom=i, l=li, spin=spin)
        cols = self.select(atom=j, l=lj, spin=spin)
        R = np.asarray(R, dtype=int)
        out = np.zeros((len(rows), len(cols)), complex)
        for a, m in enumerate(rows):
            Sm = np.asarray(self.orbitals[m].cell)
            for b, n in enumerate(cols):
                RH = R + Sm - np.asarray(self.orbitals[n].cell)
                k = self._index.get(tuple(int(x) for x in RH))
                if k is not None:
                    out[a, b] = self.H[k, m, n]
        return out

    # ------------------------------------------------------------------ k space
    def _phases(self, k: np.ndarray) -> np.ndarray:
        """exp(2πi k·R) for the R > 0 half of the R vectors, built from per-axis tables."""
        nk = len(k)
        ph = np.ones((nk, len(self._half)), complex)
        for a in range(3):
            vals = self._Rhalf[:, a]
            if len(vals) == 0 or not vals.any():
                continue
            lo, hi = int(vals.min()), int(vals.max())
            table = np.exp(2j * np.pi * np.outer(k[:, a], np.arange(lo, hi + 1)))
            ph *= table[:, vals - lo]
        return ph

    def hk(self, k, convention: str = "I", positions="centres", chunk: int = 4096) -> np.ndarray:
        """H(k) for reduced k-points ``k`` (nk, 3) or (3,), shape (nk, nw, nw) (or (nw, nw)), eV.

        ``convention``: ``"I"`` (lattice gauge, phases exp(2πi k·R), as in wannierberri/Wannier90) or ``"II"``
        (tb/atomic gauge, phases exp(2πi k·(R + τ_n − τ_m)) with τ the ``positions``: ``"centres"``, ``"atoms"`` or a
        Cartesian (nw, 3) array).  See the module docstring.
        """
        k = np.asarray(k, dtype=float)
        single = k.ndim == 1
        k = np.atleast_2d(k)
        if k.shape[1] != 3:
            raise TBError(f"k-points must have 3 reduced coordinates, got shape {k.shape}")
        nw = self.num_wann
        nh = len(self._half)
        flat = np.empty((len(k), 2 * nw * nw))          # interleaved Re/Im, viewed as complex below
        with single_threaded_blas():                    # small GEMMs: threads cost more than they gain
            for s in range(0, len(k), chunk):
                kc = k[s:s + chunk]
                coef = np.empty((len(kc), 1 + 2 * nh))
                coef[:, 0] = 1.0
                if nh:
                    ph = self._phases(kc)
                    coef[:, 1:1 + nh] = ph.real
                    coef[:, 1 + nh:] = ph.imag
                np.matmul(coef, self._B, out=flat[s:s + chunk])
        out = flat.view(np.complex128).reshape(len(k), nw, nw)
        if convention == "II":
            tau = positions if isinstance(positions, np.ndarray) else self.orbital_positions(positions)
            tau_red = np.asarray(tau) @ np.linalg.inv(self.lattice)
            U = np.exp(2j * np.pi * k @ tau_red.T)
            out = U.conj()[:, :, None] * out * U[:, None, :]
        elif convention != "I":
            raise TBError(f"unknown phase convention {convention!r} (use 'I' or 'II')")
        return out[0] if single else out

    def eigenvalues(self, k, chunk: int = 4096) -> np.ndarray:
        """Band energies (nk, nw) in eV, ascending, at reduced k-points."""
        k = np.atleast_2d(np.asarray(k, dtype=float))
        out = np.empty((len(k), self.num_wann))
        for s in range(0, len(k), chunk):
            Hk = self.hk(k[s:s + chunk])
            with single_threaded_blas():
                out[s:s + chunk] = np.linalg.eigvalsh(Hk)
        return out

    bands = eigenvalues

    def eigh(self, k, convention: str = "I", positions="centres") -> tuple[np.ndarray, np.ndarray]:
        """Energies (nk, nw) and eigenvectors (nk, nw, nw) (columns) at reduced k-points."""
        Hk = self.hk(np.atleast_2d(np.asarray(k, dtype=float)), convention=convention, positions=positions)
        with single_threaded_blas():
            return np.linalg.eigh(Hk)

    def to_cartesian_k(self, k) -> np.ndarray:
        """Cartesian k (1/Å) of reduced k-points."""
        return np.asarray(k, dtype=float) @ self.reciprocal_lattice

    def bandpath(self, path: str | None = None, npoints: int = 200):
        """An ``ase`` band path for the model's cell (2D path for a slab model)."""
        return Cell(self.lattice).bandpath(path=path, npoints=npoints, pbc=[bool(p) for p in self.periodic] if
                                           self.periodic.any() else True)

    def __repr__(self) -> str:
        return (f"TBModel({self.name!r}, num_wann={self.num_wann}, nR={self.nR}"
                f"{'' if self.spin is None else f', spin={self.spin!r}'}{', spinor' if self.spinor else ''})")


class CollinearTBModel:
    """A collinear spin-polarised model: one :class:`TBModel` per spin channel with the same orbitals.

    The on-site exchange splitting of orbital i is Δ_i = H↑_ii(0) − H↓_ii(0) (eV; negative on a site whose moment
    points up, since the majority level lies lower).  :meth:`exchange_matrix` gives the full on-site matrix
    H↑(0) − H↓(0) whose atom blocks Δ_a enter the magnetic force theorem.
    """

    def __init__(self, up: TBModel, down: TBModel, name: str | None = None):
        if up.num_wann != down.num_wann:
            raise TBError(f"spin channels have different numbers of Wannier functions: {up.source} has {up.num_wann}, "
                          f"{down.source} has {down.num_wann}")
        if not np.allclose(up.lattice, down.lattice, atol=1e-5):
            raise TBError(f"spin channels have different lattices: {up.source} vs {down.source}")
        for i, (a, b) in enumerate(zip(up.orbitals, down.orbitals)):
            if (a.atom, a.element, a.l, a.name) != (b.atom, b.element, b.l, b.name):
                raise TBError(f"spin channels order their orbitals differently: Wannier function {i + 1} is "
                              f"{a.label} in {up.source} but {b.label} in {down.source}")
        self.up = up.copy(spin="up") if up.spin != "up" else up
        self.down = down.copy(spin="down") if down.spin != "down" else down
        self.name = name or up.name.replace("_up", "")

    @property
    def channels(self) -> tuple[TBModel, TBModel]:
        return (self.up, self.down)

    @property
    def num_wann(self) -> int:
        return self.up.num_wann

    @property
    def orbitals(self) -> list[Orbital]:
        return self.up.orbitals

    @property
    def atoms(self):
        return self.up.atoms

    @property
    def lattice(self) -> np.ndarray:
        return self.up.lattice

    def exchange_splitting(self) -> np.ndarray:
        """Δ_i = H↑_ii(0) − H↓_ii(0) per orbital (eV)."""
        return self.up.onsite_energies() - self.down.onsite_energies()

    def exchange_matrix(self) -> np.ndarray:
        """H↑(R=0) − H↓(R=0) (nw × nw, eV)."""
        return self.up.matrix((0, 0, 0)) - self.down.matrix((0, 0, 0))

    def exchange_block(self, atom: int, l: int | None = 2) -> np.ndarray:
        """On-site exchange matrix Δ_a = H↑_aa(0) − H↓_aa(0) of one atom (orbitals of angular momentum ``l``)."""
        return self.up.atom_block(atom, atom, (0, 0, 0), l, l) - self.down.atom_block(atom, atom, (0, 0, 0), l, l)

    def spin_averaged(self) -> TBModel:
        """The model (H↑ + H↓)/2 on the union of the R vectors (spin = None, 2 electrons per band).

        On-site energies and traces over a shell are independent of the Wannier gauge of each channel; off-diagonal
        elements are meaningful only if both channels share a gauge (exact for Slater–Koster pairs, approximate for
        projection-guided MLWFs of separate spin channels — a non-spin-polarised Wannier model is the cleaner
        spin-averaged reference for hoppings).
        """
        Rs = {tuple(r) for r in self.up.R} | {tuple(r) for r in self.down.R}
        R = np.array(sorted(Rs), dtype=int)
        H = np.array([0.5 * (self.up.matrix(r) + self.down.matrix(r)) for r in R])
        return self.up.copy(R=R, H=H, spin=None, name=f"{self.name} (spin-averaged)",
                            centres=0.5 * (self.up.centres + self.down.centres))

    def eigenvalues(self, k) -> tuple[np.ndarray, np.ndarray]:
        """Band energies of both channels (eV): (E↑ (nk, nw), E↓ (nk, nw))."""
        return self.up.eigenvalues(k), self.down.eigenvalues(k)

    def __repr__(self) -> str:
        return f"CollinearTBModel({self.name!r}, num_wann={self.num_wann}, nR↑={self.up.nR}, nR↓={self.down.nR})"
