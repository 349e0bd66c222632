"""The classical spin model every exchange route produces and every consumer (Monte Carlo, spin waves, plots,
exporters) reads.

Internal convention (fixed, see :data:`INTERNAL`)::

    H = Σ_{bonds (i,j,R), each once} S_i · J_ij(R) · S_{j+R}  +  Σ_i S_i · A_i · S_i  −  g μ_B Σ_i B · S_i

with classical spin vectors |S_i| = S_i (S = 3/2 for Cr3+ and V2+), J and A in meV, J > 0 antiferromagnetic, B in
tesla.  A bond (i, j, R) goes from site i of the home cell to site j of the cell shifted by the integer lattice
vector R; it is stored once, with i < j or (i = j and R lexicographically positive); the reverse bond (j, i, −R)
carries the transposed tensor.  The 3×3 tensor splits into the isotropic J = Tr/3, the DMI vector D with
S_i·J^A·S_j = D·(S_i × S_j) (D_x = (J_yz − J_zy)/2, cyclic), and the traceless symmetric anisotropy Γ.

Other codes use other conventions; :class:`Convention` describes one (sign, double counting, unit spins, prefactor,
energy unit) and converts exchange constants both ways.

Dipolar (shape) anisotropy folded into the single-ion tensors is a *labelled part* of them: ``single_ion`` is the
total tensor A_i of the Hamiltonian (what Monte Carlo, spin waves and :meth:`SpinModel.energy` use), and
``single_ion_dipolar`` the part of it that is the dipolar term (``dipolar_info`` says where it came from);
``single_ion_intrinsic`` = A_i − A_i^dip is the spin–orbit/crystal-field part.  So a consumer that computes the
dipolar energy itself (``wannmag anisotropy``) subtracts the stored part instead of counting dipolar twice.  Model
files of format version 1 (before the label existed) are read as they were written: ``single_ion`` is the total;
models of ``wannmag run`` whose meta says that the dipolar term was folded in get the part reconstructed from the
stored SOC fit where possible, otherwise ``dipolar_info["status"] = "folded, amount unknown"`` (see
:func:`_legacy_dipolar`).

Every model read from a file is validated (:meth:`SpinModel.validate`): finite numbers, spins 0 < S ≤
:data:`MAX_SPIN`, |J|, |A| ≤ :data:`MAX_EXCHANGE_MEV` (10 eV: no magnetic exchange comes near it; larger values
are corrupt input whose ground state energy would overflow), |B| ≤ :data:`MAX_FIELD_T`, a non-singular 3×3 cell,
3-vectors for positions and R.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text, read_json
from ..errors import WannmagError

__all__ = ["Convention", "INTERNAL", "TB2J", "VAMPIRE", "Site", "Bond", "SpinModel", "SpinModelError",
           "MEV_PER_K", "MU_B_MEV_PER_T", "MAX_EXCHANGE_MEV", "MAX_SPIN", "MAX_FIELD_T"]

MEV_PER_K = 0.08617333262  # k_B in meV/K
MU_B_MEV_PER_T = 0.05788381806  # Bohr magneton in meV/T
_UNITS = {"meV": 1.0, "eV": 1000.0, "K": MEV_PER_K, "J": 1.0 / 1.602176634e-22}
#: largest |J| or |A| element accepted (meV): 10 eV, far above any magnetic exchange (CrI3 ~4 meV, VPS3 ~30 meV)
MAX_EXCHANGE_MEV = 1.0e4
#: largest spin length accepted (classical spins; S ≤ 7/2 for real ions)
MAX_SPIN = 50.0
#: largest |B| accepted (tesla)
MAX_FIELD_T = 1.0e4
#: format version written by :meth:`SpinModel.as_dict` (2: ``single_ion_dipolar`` labels the dipolar part)
FORMAT_VERSION = 2


class SpinModelError(WannmagError):
    """A spin model is inconsistent or cannot be converted."""


@dataclass(frozen=True)
class Convention:
    """How another code writes the bilinear exchange energy of one pair (i, j):

        E_pair = sign · prefactor · (2 if double_counting else 1) · J_ext · (e_i·e_j if unit_spins else S_i·S_j)

    in ``unit``.  The internal wannmag convention is sign = +1, prefactor = 1, each bond once, spins of length S,
    meV: E_pair = J · S_i·S_j.  Conversion: J_int = sign · prefactor · m · J_ext · u / (1 if not unit_spins else
    S_i S_j), with m = 2 for double counting and u the energy unit in meV.
    """

    name: str
    sign: int = +1
    double_counting: bool = False
    unit_spins: bool = False
    prefactor: float = 1.0
    unit: str = "meV"

    def __post_init__(self):
        if self.sign not in (+1, -1):
            raise SpinModelError(f"convention {self.name}: sign must be +1 or -1, got {self.sign}")
        if self.unit not in _UNITS:
            raise SpinModelError(f"convention {self.name}: unknown energy unit {self.unit!r} ({', '.join(_UNITS)})")

    def _scale(self, S_i: float, S_j: float) -> float:
        m = 2.0 if self.double_counting else 1.0
        spin = 1.0 / (S_i * S_j) if self.unit_spins else 1.0
        return self.sign * self.prefactor * m * _UNITS[self.unit] * spin

    def to_internal(self, J_ext, S_i: float, S_j: float):
        """Exchange (scalar or 3×3) in this convention → internal meV, J > 0 AF, each bond once, spins of length S."""
        return np.asarray(J_ext, dtype=float) * self._scale(S_i, S_j)

    def from_internal(self, J_int, S_i: float, S_j: float):
        """Internal exchange (meV, J > 0 AF, each bond once, length-S spins) → this convention."""
        return np.asarray(J_int, dtype=float) / self._scale(S_i, S_j)


INTERNAL = Convention("wannmag")
#: TB2J: H = −Σ_{i≠j} J_ij e_i·e_j, both directions of every pair, unit spins, J in meV (positive = FM)
TB2J = Convention("TB2J", sign=-1, double_counting=True, unit_spins=True, unit="meV")
#: Vampire: H = −½ Σ_{i≠j} e_i·J_ij·e_j — both directions listed in the .UCF, a "silent" factor 1/2 in its energy
#: routine (so each pair counts once), unit spins, J in joules
VAMPIRE = Convention("Vampire", sign=-1, double_counting=True, unit_spins=True, prefactor=0.5, unit="J")


@dataclass
class Site:
    """A magnetic site: Cartesian position (Å), element, spin length S, g-factor."""

    position: np.ndarray
    element: str
    spin: float
    g: float = 2.0
    label: str = ""

    def as_dict(self) -> dict:
        return {"position": [float(x) for x in self.position], "element": self.element, "spin": self.spin,
                "g": self.g, "label": self.label}

    @classmethod
    def from_dict(cls, d: dict, source: str = "site", what: str = "site") -> "Site":
        """Inverse of :meth:`as_dict` (position Å, spin, g: exact, floats through JSON are).  Every field is
        type-checked: a problem is one :class:`SpinModelError` line naming ``source`` and ``what`` (e.g. "site 3");
        ``g`` defaults to 2 and a missing or null ``label`` is ""."""
        if not isinstance(d, dict):
            raise SpinModelError(f"{source}: {what} must be an object with position, element, spin")
        for key in ("position", "element", "spin"):
            if key not in d:
                raise SpinModelError(f"{source}: {what} lacks '{key}'")
        element, label = d["element"], d.get("label", "")
        if not isinstance(element, str) or not element.strip():
            raise SpinModelError(f"{source}: {what}: element must be a name, got {_short(element)}")
        if label is not None and not isinstance(label, str):
            raise SpinModelError(f"{source}: {what}: label must be a string, got {_short(label)}")
        return cls(_numbers(d["position"], [(3,)], f"{what} position", source), element,
                   float(_numbers(d["spin"], [()], f"{what} spin", source)),
                   float(_numbers(d.get("g", 2.0), [()], f"{what} g", source)), label or "")


def _tensor(J) -> np.ndarray:
    J = np.asarray(J, dtype=float)
    if J.shape == ():
        return float(J) * np.eye(3)
    if J.shape != (3, 3):
        raise SpinModelError(f"exchange must be a scalar or a 3×3 tensor, got shape {J.shape}")
    return J.copy()


_MAX_CELL_INDEX = 1_000_000  # |R| of a bond beyond this is corrupt input, not physics (int64 overflow guard)


@dataclass
class Bond:
    """Exchange bond (i, j, R) with its 3×3 tensor J (meV, internal convention: S_i·J·S_j, J > 0 AF)."""

    i: int
    j: int
    R: tuple[int, int, int]
    J: np.ndarray
    shell: int | None = None

    @property
    def J_iso(self) -> float:
        """Isotropic exchange Tr(J)/3 in meV (J > 0 antiferromagnetic)."""
        return float(np.trace(self.J) / 3.0)

    @property
    def dmi(self) -> np.ndarray:
        """DMI vector D (meV) with S_i·J^A·S_j = D·(S_i × S_j)."""
        A = 0.5 * (self.J - self.J.T)
        return np.array([A[1, 2], A[2, 0], A[0, 1]])

    @property
    def anisotropic(self) -> np.ndarray:
        """Traceless symmetric part Γ of J (meV)."""
        S = 0.5 * (self.J + self.J.T)
        return S - np.trace(S) / 3.0 * np.eye(3)

    def as_dict(self) -> dict:
        return {"i": self.i, "j": self.j, "R": list(self.R), "J": self.J.tolist(), "shell": self.shell}

    @classmethod
    def from_dict(cls, d: dict, source: str = "bond", what: str = "bond") -> "Bond":
        """Inverse of :meth:`as_dict`: the bond exactly as stored (i, j, R, the 3×3 J in meV — exact, floats through
        JSON are — and the shell), not re-oriented (:meth:`SpinModel.add_bond` makes a bond canonical; a bond
        alone has no sites to check i, j against).  A scalar J is the isotropic tensor J·1.  Every field is
        type-checked: a problem is one :class:`SpinModelError` line naming ``source`` and ``what`` (e.g. "bond 3")."""
        if not isinstance(d, dict) or any(key not in d for key in ("i", "j", "R", "J")):
            raise SpinModelError(f"{source}: {what} must be an object with i, j, R, J")
        i, j, shell = d["i"], d["j"], d.get("shell")
        if not (_is_integer(i) and _is_integer(j)):
            raise SpinModelError(f"{source}: {what}: site indices i, j must be integers, got {_short(i)}, {_short(j)}")
        if shell is not None and not _is_integer(shell):
            raise SpinModelError(f"{source}: {what}: shell must be an integer or null, got {_short(shell)}")
        R = _numbers(d["R"], [(3,)], f"{what} R (3 integers)", source)
        if np.any(R != np.round(R)):
            raise SpinModelError(f"{source}: {what}: R must be 3 integers, got {_short(d['R'])}")
        if np.any(np.abs(R) > _MAX_CELL_INDEX):
            raise SpinModelError(f"{source}: {what}: R = {_short(d['R'])} is beyond ±{_MAX_CELL_INDEX} cells "
                                 "(not a lattice translation of an exchange bond)")
        J = _numbers(d["J"], [(3, 3), ()], f"{what} J", source)
        return cls(int(i), int(j), tuple(int(x) for x in R), _tensor(J), None if shell is None else int(shell))


def _canonical(i, j, R, J):
    R = tuple(int(x) for x in R)
    if i < j or (i == j and R > (0, 0, 0)):
        return i, j, R, J
    if i == j and R == (0, 0, 0):
        raise SpinModelError(f"bond from site {i} to itself in the same cell: use a single-ion term instead")
    return j, i, tuple(-x for x in R), J.T


@dataclass
class SpinModel:
    """Classical spin model in the internal wannmag convention (module docstring).

    Attributes
    ----------
    cell : 3×3 lattice vectors (Å, rows).
    sites : magnetic sites of the unit cell.
    bonds : exchange bonds, each once.
    single_ion : total 3×3 single-ion tensor A_i per site (meV), H_SIA = Σ_i S_i·A_i·S_i — the tensor every
        Hamiltonian consumer (Monte Carlo, spin waves, :meth:`energy`) uses; it *includes* ``single_ion_dipolar``.
    b_field : magnetic field B (tesla), Zeeman term −g μ_B B·S_i.
    pbc : periodic directions (a 2D layer has pbc = (True, True, False)).
    meta : provenance (method, source files, parameters).
    single_ion_dipolar : the part of ``single_ion`` that is the dipolar (shape) anisotropy, per site (meV; zero if
        none was folded in).  Set it with :meth:`set_dipolar_single_ion`, which keeps ``single_ion`` the total.
    dipolar_info : where that part came from (``source``, ``order``, ``delta_meV_per_ion``, ``status``).
    """

    cell: np.ndarray
    sites: list[Site]
    bonds: list[Bond] = field(default_factory=list)
    single_ion: list[np.ndarray] = field(default_factory=list)
    b_field: np.ndarray = field(default_factory=lambda: np.zeros(3))
    pbc: tuple[bool, bool, bool] = (True, True, False)
    meta: dict = field(default_factory=dict)
    single_ion_dipolar: list[np.ndarray] = field(default_factory=list)
    dipolar_info: dict = field(default_factory=dict)

    convention = INTERNAL

    def __post_init__(self):
        self.cell = np.asarray(self.cell, dtype=float)
        self.b_field = np.asarray(self.b_field, dtype=float)
        if not self.single_ion:
            self.single_ion = [np.zeros((3, 3)) for _ in self.sites]
        if len(self.single_ion) != len(self.sites):
            raise SpinModelError(f"{len(self.single_ion)} single-ion tensors for {len(self.sites)} sites")
        self.single_ion = [_tensor(a) for a in self.single_ion]
        if not self.single_ion_dipolar:
            self.single_ion_dipolar = [np.zeros((3, 3)) for _ in self.sites]
        if len(self.single_ion_dipolar) != len(self.sites):
            raise SpinModelError(f"{len(self.single_ion_dipolar)} dipolar single-ion tensors for {len(self.sites)} "
                                 "sites")
        self.single_ion_dipolar = [_tensor(a) for a in self.single_ion_dipolar]
        self.dipolar_info = dict(self.dipolar_info or {})

    # ----------------------------------------------------------------- dipolar part of the single-ion tensors
    @property
    def has_dipolar_single_ion(self) -> bool:
        """True if ``single_ion`` contains a dipolar term (a labelled one, or a legacy one of unknown size)."""
        return bool(self.dipolar_info) or any(np.any(a) for a in self.single_ion_dipolar)

    @property
    def single_ion_intrinsic(self) -> list[np.ndarray]:
        """A_i − A_i^dip: the single-ion tensors without the stored dipolar part (spin–orbit / crystal field)."""
        return [a - d for a, d in zip(self.single_ion, self.single_ion_dipolar)]

    def set_dipolar_single_ion(self, tensors, info: dict | None = None) -> None:
        """Store ``tensors`` (3×3 per site, meV) as the dipolar part of the single-ion terms, replacing any dipolar
        part stored before; ``single_ion`` stays the total (old dipolar part out, new one in).  ``info`` records
        the source (e.g. {"source": "2D Ewald shape term", "order": "FM", "delta_meV_per_ion": -0.036})."""
        new = [_tensor(t) for t in tensors]
        if len(new) != self.n_sites:
            raise SpinModelError(f"{len(new)} dipolar single-ion tensors for {self.n_sites} sites")
        self.single_ion = [a - old + d for a, old, d in zip(self.single_ion, self.single_ion_dipolar, new)]
        self.single_ion_dipolar = new
        self.dipolar_info = {"status": "separate", **dict(info or {})}

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_sublattice(cls, sublattice, meta=None) -> "SpinModel":
        """Empty model (no bonds) on the magnetic sublattice of the structures layer."""
        sites = [Site(np.array(p), el, float(s), label=f"{el}{k}")
                 for k, (p, el, s) in enumerate(zip(sublattice.positions, sublattice.elements, sublattice.spins))]
        return cls(cell=sublattice.atoms.cell.array.copy(), sites=sites, pbc=sublattice.pbc, meta=dict(meta or {}))

    @property
    def n_sites(self) -> int:
        return len(self.sites)

    @property
    def spins(self) -> np.ndarray:
        return np.array([s.spin for s in self.sites])

    def add_bond(self, i: int, j: int, R, J, shell: int | None = None, replace: bool = False) -> Bond:
        """Add the bond (i, j, R) with exchange J (scalar isotropic or 3×3, meV, internal convention).

        The bond is stored canonically (the reverse (j, i, −R) gets J transposed).  Adding an existing bond raises
        unless ``replace``.
        """
        if not (0 <= i < self.n_sites and 0 <= j < self.n_sites):
            raise SpinModelError(f"bond ({i}, {j}) refers to a site outside 0..{self.n_sites - 1}")
        ci, cj, cR, cJ = _canonical(int(i), int(j), R, _tensor(J))
        for k, b in enumerate(self.bonds):
            if (b.i, b.j, b.R) == (ci, cj, cR):
                if not replace:
                    raise SpinModelError(f"bond ({ci}, {cj}, {list(cR)}) is already in the model")
                self.bonds[k] = Bond(ci, cj, cR, cJ, shell if shell is not None else b.shell)
                return self.bonds[k]
        bond = Bond(ci, cj, cR, cJ, shell)
        self.bonds.append(bond)
        return bond

    def bond_vector(self, bond: Bond) -> np.ndarray:
        return self.sites[bond.j].position + np.array(bond.R) @ self.cell - self.sites[bond.i].position

    def bond_length(self, bond: Bond) -> float:
        return float(np.linalg.norm(self.bond_vector(bond)))

    # ----------------------------------------------------------------- shells
    def assign_shells(self, tol: float = 0.05) -> list[float]:
        """Label every bond with its shell index (1 = shortest) by length within ``tol`` Å; returns shell distances."""
        lengths = np.array([self.bond_length(b) for b in self.bonds])
        distances: list[float] = []
        for d in np.sort(lengths):
            if not distances or d - distances[-1] > tol:
                distances.append(float(d))
        for b, d in zip(self.bonds, lengths):
            b.shell = 1 + int(np.argmin([abs(d - x) for x in distances]))
        return distances

    def shell_summary(self, tol: float = 0.05) -> list[dict]:
        """Per shell: distance (Å), number of bonds per cell, mean isotropic J (meV) and its spread."""
        distances = self.assign_shells(tol)
        out = []
        for k, d in enumerate(distances, start=1):
            Js = np.array([b.J_iso for b in self.bonds if b.shell == k])
            out.append({"shell": k, "distance": d, "n_bonds": int(len(Js)), "J": float(Js.mean()),
                        "J_spread": float(Js.max() - Js.min())})
        return out

    # ----------------------------------------------------------------- energies
    def energy(self, spins: np.ndarray) -> float:
        """Classical energy (meV) per unit cell of a state periodic with the cell: ``spins`` is (n_sites, 3),
        vectors of length S_i (unit vectors are scaled by S_i automatically if all have norm 1)."""
        s = np.asarray(spins, dtype=float).reshape(self.n_sites, 3)
        norms = np.linalg.norm(s, axis=1)
        if np.allclose(norms, 1.0) and not np.allclose(self.spins, 1.0):
            s = s * self.spins[:, None]
        E = 0.0
        for b in self.bonds:
            E += s[b.i] @ b.J @ s[b.j]
        for k, A in enumerate(self.single_ion):
            E += s[k] @ A @ s[k]
        if np.any(self.b_field):
            g = np.array([site.g for site in self.sites])
            E -= MU_B_MEV_PER_T * np.sum(g * (s @ self.b_field))
        return float(E)

    def supercell(self, P) -> tuple["SpinModel", np.ndarray]:
        """The same model on the supercell with cell P @ cell; returns (model, map supercell site → unit site)."""
        P = np.asarray(P, dtype=int)
        if P.shape == (3,):
            P = np.diag(P)
        n = int(round(abs(np.linalg.det(P))))
        if n < 1:
            raise SpinModelError("singular supercell matrix")
        # integer translations T (in unit-cell lattice coordinates) inside the supercell
        Pinv = np.linalg.inv(P)
        rng = [range(int(P[:, k].clip(max=0).sum()), int(P[:, k].clip(min=0).sum()) + 1) for k in range(3)]
        translations = []
        for a in rng[0]:
            for b in rng[1]:
                for c in rng[2]:
                    f = np.array([a, b, c]) @ Pinv
                    if np.all(f >= -1e-9) and np.all(f < 1 - 1e-9):
                        translations.append((a, b, c))
        if len(translations) != n:
            raise SpinModelError(f"could not enumerate the {n} cells of supercell {P.tolist()}")
        cell = P @ self.cell
        sites, parent, index = [], [], {}
        for t in translations:
            for k, s in enumerate(self.sites):
                index[(t, k)] = len(sites)
                sites.append(Site(s.position + np.array(t) @ self.cell, s.element, s.spin, s.g, s.label))
                parent.append(k)
        big = SpinModel(cell=cell, sites=sites, single_ion=[self.single_ion[k].copy() for k in parent],
                        b_field=self.b_field.copy(), pbc=self.pbc, meta=dict(self.meta, supercell=P.tolist()),
                        single_ion_dipolar=[self.single_ion_dipolar[k].copy() for k in parent],
                        dipolar_info=dict(self.dipolar_info))
        for t in translations:
            for b in self.bonds:
                target = np.array(t) + np.array(b.R)
                f = target @ Pinv
                Rs = np.floor(f + 1e-9).astype(int)
                inner = tuple(int(x) for x in np.round(target - Rs @ P))
                i_new, j_new = index[(t, b.i)], index[(inner, b.j)]
                if i_new == j_new and not any(Rs):
                    raise SpinModelError("bond maps onto a self-interaction in this supercell")
                ci, cj, cR, cJ = _canonical(i_new, j_new, Rs, b.J)
                found = next((x for x in big.bonds if (x.i, x.j, x.R) == (ci, cj, cR)), None)
                if found is not None:  # the supercell is too small: two images of one bond coincide
                    found.J = found.J + cJ
                else:
                    big.bonds.append(Bond(ci, cj, cR, cJ.copy(), b.shell))
        return big, np.array(parent)

    # ----------------------------------------------------------------- conventions
    def exchange_table(self, convention: Convention = INTERNAL) -> list[dict]:
        """Isotropic exchange of every bond in ``convention`` (both directions listed if it double-counts)."""
        rows = []
        for b in self.bonds:
            Si, Sj = self.sites[b.i].spin, self.sites[b.j].spin
            J = float(convention.from_internal(b.J_iso, Si, Sj))
            rows.append({"i": b.i, "j": b.j, "R": list(b.R), "distance": self.bond_length(b), "J": J})
            if convention.double_counting:
                rows.append({"i": b.j, "j": b.i, "R": [-x for x in b.R], "distance": self.bond_length(b), "J": J})
        return rows

    # ----------------------------------------------------------------- validation
    def validate(self, source: str = "spin model") -> "SpinModel":
        """Refuse (one-line :class:`SpinModelError` naming ``source``) what no consumer can use: a non-finite or
        singular 3×3 cell, no sites, non-finite positions, spins outside (0, MAX_SPIN], g outside (0, 10],
        coincident sites, non-finite exchange/single-ion/field values or |J|, |A| > MAX_EXCHANGE_MEV (meV),
        |B| > MAX_FIELD_T.  Returns the model."""
        def bad(msg):
            raise SpinModelError(f"{source}: {msg}")

        if self.cell.shape != (3, 3) or not np.all(np.isfinite(self.cell)):
            bad(f"cell must be 3 finite lattice vectors (3×3), got shape {self.cell.shape}")
        with np.errstate(all="ignore"):
            vol = abs(float(np.linalg.det(self.cell)))
        if not (np.isfinite(vol) and vol > 1e-6) or np.abs(self.cell).max() > 1e5:
            bad(f"cell is singular or absurd (volume {vol:.3g} Å³)")
        if not self.sites:
            bad("no magnetic sites")
        for k, site in enumerate(self.sites):
            pos = np.asarray(site.position, float)
            if pos.shape != (3,) or not np.all(np.isfinite(pos)) or np.abs(pos).max() > 1e5:
                bad(f"site {k}: position must be 3 finite Cartesian coordinates (Å), got {pos.tolist()}")
            if not (np.isfinite(site.spin) and 0.0 < site.spin <= MAX_SPIN):
                bad(f"site {k} ({site.element}): spin S = {site.spin} must lie in (0, {MAX_SPIN:g}]")
            if not (np.isfinite(site.g) and 0.0 < site.g <= 10.0):
                bad(f"site {k} ({site.element}): g-factor {site.g} must lie in (0, 10]")
        if 1 < self.n_sites <= 2000:
            frac = np.array([s.position for s in self.sites]) @ np.linalg.inv(self.cell)
            d = frac[:, None, :] - frac[None, :, :]
            periodic = np.array([bool(x) for x in self.pbc])
            d[..., periodic] -= np.round(d[..., periodic])
            dist = np.linalg.norm(d @ self.cell, axis=-1)
            dist[np.diag_indices(self.n_sites)] = np.inf
            if dist.min() < 1e-3:
                a, b = np.unravel_index(np.argmin(dist), dist.shape)
                bad(f"sites {a} and {b} coincide")

        def check_tensor(T, what):
            T = np.asarray(T, float)
            if not np.all(np.isfinite(T)):
                bad(f"{what} is not finite")
            big = float(np.abs(T).max()) if T.size else 0.0
            if big > MAX_EXCHANGE_MEV:
                bad(f"{what}: |{big:.3g}| meV exceeds {MAX_EXCHANGE_MEV:g} meV (10 eV), not a physical magnetic "
                    "interaction")

        for b in self.bonds:
            check_tensor(b.J, f"bond ({b.i}, {b.j}, {list(b.R)}) exchange J")
        for k, A in enumerate(self.single_ion):
            check_tensor(A, f"site {k} single-ion tensor")
        for k, A in enumerate(self.single_ion_dipolar):
            check_tensor(A, f"site {k} dipolar single-ion tensor")
        B = np.asarray(self.b_field, float)
        if B.shape != (3,) or not np.all(np.isfinite(B)) or np.abs(B).max() > MAX_FIELD_T:
            bad(f"field must be 3 finite components of at most {MAX_FIELD_T:g} T, got {B.tolist()}")
        return self

    # ----------------------------------------------------------------- I/O
    def as_dict(self) -> dict:
        d = {"format": "wannmag.SpinModel", "version": FORMAT_VERSION,
             "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i - g muB B.S_i; each bond once; "
                           "spins of length S; J > 0 antiferromagnetic; meV, Å, T; single_ion is the total A_i, "
                           "single_ion_dipolar the dipolar part of it",
             "cell": self.cell.tolist(), "pbc": list(self.pbc), "field_T": self.b_field.tolist(),
             "sites": [s.as_dict() for s in self.sites], "bonds": [b.as_dict() for b in self.bonds],
             "single_ion": [a.tolist() for a in self.single_ion],
             "single_ion_dipolar": [a.tolist() for a in self.single_ion_dipolar],
             "dipolar_info": self.dipolar_info, "meta": self.meta}
        return d

    def save(self, path) -> Path:
        """Write the model as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps(self.as_dict(), indent=1))
        return Path(path)

    @classmethod
    def from_dict(cls, d: dict, source: str = "spin model") -> "SpinModel":
        """The model of a JSON dict (format versions 1 and 2), every field type-checked and the result validated
        (:meth:`validate`); any problem is one :class:`SpinModelError` line naming ``source``."""
        def bad(msg):
            raise SpinModelError(f"{source}: {msg}")

        if not isinstance(d, dict) or d.get("format") != "wannmag.SpinModel":
            bad("not a wannmag spin model (missing format tag)")
        version = d.get("version", 1)
        if not _is_number(version) or version > FORMAT_VERSION:
            bad(f"format version {_short(version)} is not one this wannmag reads (1..{FORMAT_VERSION})")
        raw_sites = d.get("sites")
        if not isinstance(raw_sites, list) or not raw_sites:
            bad("'sites' must be a non-empty list")
        sites = [Site.from_dict(s, source, f"site {k}") for k, s in enumerate(raw_sites)]
        n = len(sites)
        cell = _numbers(d.get("cell"), [(3, 3)], "cell (3 lattice vectors)", source)
        pbc = d.get("pbc", (1, 1, 0))
        if not isinstance(pbc, (list, tuple)) or len(pbc) != 3 or not all(
                isinstance(x, bool) or (_is_number(x) and x in (0, 1)) for x in pbc):
            bad(f"pbc must be 3 booleans, got {_short(pbc)}")

        def tensors(key):
            raw = d.get(key) or []
            if not isinstance(raw, list) or (raw and len(raw) != n):
                bad(f"'{key}' must list one 3×3 tensor per site ({n}), got {_short(raw)}")
            return [_numbers(a, [(3, 3), ()], f"{key} of site {k}", source) for k, a in enumerate(raw)]

        meta = d.get("meta") or {}
        info = d.get("dipolar_info") or {}
        if not isinstance(meta, dict) or not isinstance(info, dict):
            bad("'meta' and 'dipolar_info' must be objects")
        single, single_dip = tensors("single_ion"), tensors("single_ion_dipolar")
        b_field = _numbers(d.get("field_T", [0, 0, 0]), [(3,)], "field_T", source)
        try:
            model = cls(cell=cell, sites=sites, single_ion=single, b_field=b_field, pbc=tuple(bool(x) for x in pbc),
                        meta=meta, single_ion_dipolar=single_dip, dipolar_info=info)
        except SpinModelError as exc:
            bad(str(exc))
        raw_bonds = d.get("bonds", [])
        if not isinstance(raw_bonds, list):
            bad("'bonds' must be a list")
        for k, b in enumerate(raw_bonds):
            bond = Bond.from_dict(b, source, f"bond {k}")
            try:
                model.add_bond(bond.i, bond.j, bond.R, bond.J, shell=bond.shell)
            except SpinModelError as exc:
                bad(f"bond {k}: {exc}")
        model.validate(source)
        if version < 2:
            _legacy_dipolar(model)
        return model

    @classmethod
    def load(cls, path) -> "SpinModel":
        data = read_json(path, SpinModelError)
        return cls.from_dict(data, source=str(path))


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _is_integer(x) -> bool:
    if not _is_number(x):
        return False
    try:
        return float(x).is_integer()
    except OverflowError:
        return False


def _short(x, n: int = 40) -> str:
    r = repr(x).replace("\n", " ")
    return r if len(r) <= n else r[: n - 1] + "…"


def _numbers(x, shapes, what: str, source: str) -> np.ndarray:
    """``x`` (from JSON) as a float array of one of ``shapes``; refuses strings, null, booleans, ragged or
    nested lists of the wrong shape and non-finite values, with one line naming ``source`` and ``what``."""
    try:
        a = np.array(x, dtype=object)
    except ValueError:
        a = None
    words = " or ".join("a number" if s == () else "×".join(map(str, s)) + " numbers" for s in shapes)
    if a is None or a.shape not in shapes or not all(_is_number(v) for v in a.flat):
        raise SpinModelError(f"{source}: {what} must be {words}, got {_short(x)}")
    try:
        out = a.astype(float)
    except OverflowError:
        raise SpinModelError(f"{source}: {what} is too large, got {_short(x)}") from None
    if not np.all(np.isfinite(out)):
        raise SpinModelError(f"{source}: {what} is not finite, got {_short(x)}")
    return out


def _legacy_dipolar(model: SpinModel) -> None:
    """Format-1 models written by ``wannmag run`` (``step_model``) have the dipolar ΔE folded into ``single_ion``
    (their meta ``method`` says so).  With the SOC fit in meta (uniaxial SIA A(ĉĉ − 1/3) on every site) the dipolar
    part is exactly what is left, A_dip = single_ion − A(ĉĉ − 1/3) = −(ΔE_dip/S²) ĉĉ, and becomes the labelled
    part; without it (dipolar + SOC lumped into one effective term) the amount is unknown and ``dipolar_info``
    says so (consumers then do not add dipolar again).  ``single_ion`` is never changed: it was the total."""
    method = str(model.meta.get("method", ""))
    if "dipolar" not in method.lower() or model.has_dipolar_single_ion:
        return
    c = np.cross(model.cell[0], model.cell[1])
    c = c / np.linalg.norm(c)
    cc = np.outer(c, c)
    params = ((model.meta.get("soc_fit") or {}).get("params_meV") or {})
    A = params.get("A")
    if "soc" in method.lower() and _is_number(A) and np.isfinite(A):
        parts = [a - float(A) * (cc - np.eye(3) / 3.0) for a in model.single_ion]
        zz = [float(c @ p @ c) for p in parts]
        if all(np.allclose(p, z * cc, atol=1e-9 + 1e-6 * abs(z)) for p, z in zip(parts, zz)):
            model.single_ion_dipolar = [z * cc for z in zz]
            deltas = [-z * s.spin ** 2 for z, s in zip(zz, model.sites)]
            model.dipolar_info = {"status": "separate", "delta_meV_per_ion": float(np.mean(deltas)), "order": None,
                                  "source": "reconstructed from a format-1 'wannmag run' model: single-ion tensor "
                                            "minus the SOC fit's uniaxial A (meta.soc_fit)"}
            return
    model.dipolar_info = {"status": "folded, amount unknown",
                          "source": "format-1 'wannmag run' model: the dipolar term is folded into the single-ion "
                                    "tensors together with SOC, its size was not recorded"}
