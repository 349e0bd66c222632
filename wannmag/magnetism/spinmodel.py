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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._atomic import atomic_write_text, read_json
from ..errors import WannmagError

__all__ = ["Convention", "INTERNAL", "TB2J", "VAMPIRE", "Site", "Bond", "SpinModel", "SpinModelError",
           "MEV_PER_K", "MU_B_MEV_PER_T"]

MEV_PER_K = 0.08617333262  # k_B in meV/K
MU_B_MEV_PER_T = 0.05788381806  # Bohr magneton in meV/T
_UNITS = {"meV": 1.0, "eV": 1000.0, "K": MEV_PER_K, "J": 1.0 / 1.602176634e-22}


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


def _tensor(J) -> np.ndarray:
    J = np.asarray(J, dtype=float)
    if J.shape == ():
        return float(J) * np.eye(3)
    if J.shape != (3, 3):
        raise SpinModelError(f"exchange must be a scalar or a 3×3 tensor, got shape {J.shape}")
    return J.copy()


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
    single_ion : 3×3 single-ion tensor A_i per site (meV), H_SIA = Σ_i S_i·A_i·S_i.
    b_field : magnetic field B (tesla), Zeeman term −g μ_B B·S_i.
    pbc : periodic directions (a 2D layer has pbc = (True, True, False)).
    meta : provenance (method, source files, parameters).
    """

    cell: np.ndarray
    sites: list[Site]
    bonds: list[Bond] = field(default_factory=list)
    single_ion: list[np.ndarray] = field(default_factory=list)
    b_field: np.ndarray = field(default_factory=lambda: np.zeros(3))
    pbc: tuple[bool, bool, bool] = (True, True, False)
    meta: dict = field(default_factory=dict)

    convention = INTERNAL

    def __post_init__(self):
        self.cell = np.asarray(self.cell, dtype=float)
        self.b_field = np.asarray(self.b_field, dtype=float)
        if not self.single_ion:
            self.single_ion = [np.zeros((3, 3)) for _ in self.sites]
        if len(self.single_ion) != len(self.sites):
            raise SpinModelError(f"{len(self.single_ion)} single-ion tensors for {len(self.sites)} sites")
        self.single_ion = [_tensor(a) for a in self.single_ion]

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
                        b_field=self.b_field.copy(), pbc=self.pbc, meta=dict(self.meta, supercell=P.tolist()))
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

    # ----------------------------------------------------------------- I/O
    def as_dict(self) -> dict:
        return {"format": "wannmag.SpinModel", "version": 1,
                "convention": "H = sum_{i<j} S_i.J_ij.S_j + sum_i S_i.A_i.S_i - g muB B.S_i; each bond once; "
                              "spins of length S; J > 0 antiferromagnetic; meV, Å, T",
                "cell": self.cell.tolist(), "pbc": list(self.pbc), "field_T": self.b_field.tolist(),
                "sites": [s.as_dict() for s in self.sites], "bonds": [b.as_dict() for b in self.bonds],
                "single_ion": [a.tolist() for a in self.single_ion], "meta": self.meta}

    def save(self, path) -> Path:
        """Write the model as JSON (atomically)."""
        atomic_write_text(Path(path), json.dumps(self.as_dict(), indent=1))
        return Path(path)

    @classmethod
    def from_dict(cls, d: dict, source: str = "spin model") -> "SpinModel":
        if d.get("format") != "wannmag.SpinModel":
            raise SpinModelError(f"{source}: not a wannmag spin model (missing format tag)")
        try:
            sites = [Site(np.array(s["position"], float), s["element"], float(s["spin"]), float(s.get("g", 2.0)),
                          s.get("label", "")) for s in d["sites"]]
            model = cls(cell=np.array(d["cell"], float), sites=sites,
                        single_ion=[np.array(a, float) for a in d.get("single_ion", [])] or [],
                        b_field=np.array(d.get("field_T", [0, 0, 0]), float), pbc=tuple(d.get("pbc", (1, 1, 0))),
                        meta=d.get("meta", {}))
            for b in d["bonds"]:
                model.add_bond(b["i"], b["j"], b["R"], np.array(b["J"], float), shell=b.get("shell"))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpinModelError(f"{source}: malformed spin model ({type(exc).__name__}: {exc})") from None
        return model

    @classmethod
    def load(cls, path) -> "SpinModel":
        path = Path(path)
        data = read_json(path, SpinModelError)
        return cls.from_dict(data, source=str(path))
