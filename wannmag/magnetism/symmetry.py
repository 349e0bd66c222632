"""Symmetrisation of exchange tensors by the crystal symmetry, and symmetry-distinct bond orbits.

The space group is that of the *full* structure (magnetic ions and ligands, from spglib): ligands lower the symmetry
of the bare magnetic lattice, which decides which DMI components are allowed (for the CrI3 monolayer the bare Cr
honeycomb is P6/mmm, the full layer P-31m).

Conventions.  Exchange tensors follow the internal SpinModel convention, H = Σ_{bonds (i,j,R), each once}
S_i·J_ij·S_j (meV, J > 0 antiferromagnetic, spins of length S).  A space-group operation {W|w} (fractional) acts on
Cartesian vectors with R = Lᵀ W L⁻ᵀ (L: lattice vectors as rows).  Spins are axial vectors, S → det(R) R S, so the
bond (i, j, R) is carried to (i', j', R') with

    J(i', j', R') = R J(i, j, R) Rᵀ

(det² = 1, so proper and improper operations act alike); if the image is the reverse of a stored bond, the stored
tensor is the transpose.  For the DMI vector (S_i·J^A·S_j = D·(S_i × S_j)) this is D → det(R) R D.  Single-ion
tensors transform the same way, A(k') = R A(k) Rᵀ.

:func:`symmetrise` replaces the tensors of every orbit by their group average J̄(b₀) = mean_g R_g⁻¹ J(g b₀) R_g
(over the operations whose image is in the model), which is invariant under the stabiliser of b₀, and writes
R_g J̄ R_gᵀ on every member; bonds of an orbit missing from the model are added (warning).  The average leaves the
mean isotropic exchange of each orbit unchanged.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import spglib
from ase import Atoms

from ..errors import WannmagError
from ..structures import read_structure
from .spinmodel import Bond, SpinModel

__all__ = ["SymmetryError", "SymmetryOperation", "BondOrbit", "symmetry_operations", "bond_orbits", "symmetrise",
           "space_group"]


class SymmetryError(WannmagError):
    """The structure and the spin model do not fit together, or the symmetry cannot be determined."""


@dataclass(frozen=True)
class SymmetryOperation:
    """A space-group operation {W|w} and its action on the magnetic sites of a model.

    W, w : fractional rotation (integer) and translation; R : Cartesian rotation Lᵀ W L⁻ᵀ.
    perm[k], shift[k] : site k goes to site perm[k] in the cell shift[k] (W f_k + w = f_perm[k] + shift[k]).
    """

    W: np.ndarray
    w: np.ndarray
    R: np.ndarray
    perm: np.ndarray
    shift: np.ndarray

    def bond_image(self, i: int, j: int, R) -> tuple[int, int, tuple[int, int, int]]:
        """Directed image (i', j', R') of the directed bond (i, j, R)."""
        Rn = self.W @ np.asarray(R, int) + self.shift[j] - self.shift[i]
        return int(self.perm[i]), int(self.perm[j]), tuple(int(x) for x in Rn)

    def tensor(self, J: np.ndarray) -> np.ndarray:
        """R J Rᵀ: the exchange (or single-ion) tensor carried by this operation."""
        return self.R @ J @ self.R.T


@dataclass
class BondOrbit:
    """Bonds equivalent under the space group.

    index : 1 for the shortest orbit (orbits sorted by distance, then by representative).
    representative : canonical (i, j, R) of the representative (the first member found in the model's bond order).
    distance : bond length (Å).
    members : canonical (i, j, R) of all members, the representative first.
    """

    index: int
    representative: tuple[int, int, tuple[int, int, int]]
    distance: float
    members: list = field(default_factory=list)

    @property
    def multiplicity(self) -> int:
        """Number of bonds of the orbit per unit cell."""
        return len(self.members)

    @property
    def label(self) -> str:
        return f"J{self.index}"

    def as_dict(self) -> dict:
        i, j, R = self.representative
        return {"orbit": self.index, "label": self.label, "representative": {"i": i, "j": j, "R": list(R)},
                "distance": round(self.distance, 6), "multiplicity": self.multiplicity,
                "members": [{"i": a, "j": b, "R": list(c)} for a, b, c in self.members]}

    @classmethod
    def from_dict(cls, d: dict) -> "BondOrbit":
        """Inverse of :meth:`as_dict` (distance as stored, to 1e-6 Å)."""
        key = lambda x: (int(x["i"]), int(x["j"]), tuple(int(r) for r in x["R"]))  # noqa: E731
        return cls(index=int(d["orbit"]), representative=key(d["representative"]), distance=d["distance"],
                   members=[key(x) for x in d["members"]])


def _as_atoms(atoms):
    if isinstance(atoms, Atoms):
        return atoms
    if isinstance(getattr(atoms, "atoms", None), Atoms):  # a MagneticSublattice
        return atoms.atoms
    return read_structure(atoms)


def _spglib(func, atoms, symprec):
    """Call spglib quietly (no deprecation noise about its error handling); None or an exception → SymmetryError."""
    cell = (atoms.cell.array, atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            out = getattr(spglib, func)(cell, symprec=symprec)
        except Exception as exc:  # spglib.SpglibError in new versions
            raise SymmetryError(f"spglib failed on {atoms.get_chemical_formula()}: {exc}") from None
    if out is None:
        raise SymmetryError(f"spglib could not determine the symmetry of {atoms.get_chemical_formula()} "
                            f"(symprec {symprec})")
    return out


def space_group(atoms, symprec: float = 1e-3) -> tuple[str, int]:
    """International symbol and number of the space group of ``atoms`` (spglib)."""
    atoms = _as_atoms(atoms)
    ds = _spglib("get_symmetry_dataset", atoms, symprec)
    return str(ds.international), int(ds.number)


def symmetry_operations(model: SpinModel, atoms, symprec: float = 1e-3) -> list[SymmetryOperation]:
    """Space-group operations of the full structure ``atoms`` (ase.Atoms, a MagneticSublattice, or anything
    ``read_structure`` reads) with their action on the magnetic sites of ``model``.

    ``atoms`` must have the same lattice as the model (a supercell model needs a supercell structure).  Every model
    site must map onto a model site of the same element under every operation (within 10·symprec Å), otherwise the
    model's sites do not match the structure and :class:`SymmetryError` is raised.
    """
    atoms = _as_atoms(atoms)
    cell = model.cell
    if atoms.cell.array.shape != (3, 3) or not np.allclose(atoms.cell.array, cell, atol=max(10 * symprec, 1e-4)):
        raise SymmetryError("structure and spin model have different lattice vectors "
                            f"({np.round(atoms.cell.array, 4).tolist()} vs {np.round(cell, 4).tolist()} Å)")
    sym = _spglib("get_symmetry", atoms, symprec)
    L = cell
    Linv = np.linalg.inv(L)
    frac = np.array([s.position for s in model.sites]) @ Linv
    elements = [s.element for s in model.sites]
    tol = max(10 * symprec, 1e-4)
    # every model site must be an atom of the structure
    afrac = atoms.get_scaled_positions(wrap=False)
    symbols = atoms.get_chemical_symbols()
    for k, f in enumerate(frac):
        d = afrac - f
        d -= np.round(d)
        dist = np.linalg.norm(d @ L, axis=1)
        a = int(np.argmin(dist))
        if dist[a] > tol or symbols[a] != elements[k]:
            raise SymmetryError(f"site {k} ({elements[k]} at {np.round(model.sites[k].position, 3).tolist()} Å) is "
                                f"not an atom of the structure {atoms.get_chemical_formula()}")
    ops = []
    for n, (W, w) in enumerate(zip(sym["rotations"], sym["translations"])):
        Rc = L.T @ W @ Linv.T
        if not np.allclose(Rc @ Rc.T, np.eye(3), atol=1e-5):
            raise SymmetryError(f"operation {n} is not orthogonal in Cartesian coordinates (lattice inconsistent "
                                f"with symprec {symprec})")
        perm = np.empty(len(frac), int)
        shift = np.empty((len(frac), 3), int)
        for k, f in enumerate(frac):
            g = W @ f + w
            d = g - frac
            t = np.round(d)
            dist = np.linalg.norm((d - t) @ L, axis=1)
            ok = [q for q in np.argsort(dist) if dist[q] <= tol and elements[q] == elements[k]]
            if not ok:
                raise SymmetryError(f"operation {n} maps site {k} ({elements[k]}) onto no magnetic site of the "
                                    f"model: the model's sites do not carry the symmetry of the structure")
            perm[k] = ok[0]
            shift[k] = t[ok[0]].astype(int)
        if len(set(perm.tolist())) != len(perm):
            raise SymmetryError(f"operation {n} maps two sites onto the same site (duplicate sites in the model?)")
        ops.append(SymmetryOperation(np.array(W, int), np.array(w, float), Rc, perm, shift))
    return ops


def _canon_key(i, j, R):
    """Canonical key of a directed bond and whether the direction was flipped."""
    R = tuple(int(x) for x in R)
    if i < j or (i == j and R > (0, 0, 0)):
        return (i, j, R), False
    return (j, i, tuple(-x for x in R)), True


def _orbits(model: SpinModel, ops: list[SymmetryOperation]):
    """Orbits as lists of canonical keys (first = representative) in the model's bond order."""
    seen, orbits = set(), []
    for b in model.bonds:
        key = (b.i, b.j, b.R)
        if key in seen:
            continue
        members = [key]
        seen.add(key)
        for op in ops:
            c, _ = _canon_key(*op.bond_image(b.i, b.j, b.R))
            if c == (c[0], c[0], (0, 0, 0)):
                raise SymmetryError("a symmetry operation maps a bond onto a self-interaction")
            if c not in members:
                members.append(c)
                seen.add(c)
        orbits.append(members)
    return orbits


def _bond_length(model: SpinModel, key) -> float:
    i, j, R = key
    return float(np.linalg.norm(model.sites[j].position + np.array(R) @ model.cell - model.sites[i].position))


def bond_orbits(model: SpinModel, atoms, symprec: float = 1e-3) -> list[BondOrbit]:
    """Group the bonds of ``model`` into orbits of the space group of ``atoms`` (full structure, with ligands).

    Returns :class:`BondOrbit` objects sorted by bond length (orbit 1 = shortest); bonds of equal length that are
    not related by symmetry form separate orbits.  Members missing from the model are included in ``members``
    (they are the images the model would need to be symmetric).
    """
    ops = symmetry_operations(model, atoms, symprec)
    raw = _orbits(model, ops)
    rows = sorted(((round(_bond_length(model, m[0]), 6), n, m) for n, m in enumerate(raw)))
    return [BondOrbit(index=k, representative=m[0], distance=_bond_length(model, m[0]), members=list(m))
            for k, (_, _, m) in enumerate(rows, start=1)]


def symmetrise(model: SpinModel, atoms, symprec: float = 1e-3, single_ion: bool = True) -> SpinModel:
    """A new SpinModel whose exchange tensors (and single-ion tensors, if ``single_ion``) are averaged over the
    space group of the full structure ``atoms`` (see the module docstring for the transformation rules).

    Internal convention in and out (H = Σ_{i<j} S_i·J_ij·S_j, meV, J > 0 AF).  Orbits are completed: members that
    the input lacks are added with the symmetrised tensor (one warning with their number).  Sites, field, pbc and
    shell labels are kept; ``meta['symmetrised']`` records the space group, symprec and the orbits.
    """
    ops = symmetry_operations(model, atoms, symprec)
    stored = {(b.i, b.j, b.R): b for b in model.bonds}
    new = SpinModel(cell=model.cell.copy(), sites=[type(s)(s.position.copy(), s.element, s.spin, s.g, s.label)
                                                   for s in model.sites],
                    single_ion=[A.copy() for A in model.single_ion], b_field=model.b_field.copy(), pbc=model.pbc,
                    meta=dict(model.meta), single_ion_dipolar=[A.copy() for A in model.single_ion_dipolar],
                    dipolar_info=dict(model.dipolar_info))
    added = 0
    orbit_rows = []
    for members in _orbits(model, ops):
        b0 = stored[members[0]]
        acc, count = np.zeros((3, 3)), 0
        for op in ops:
            c, flipped = _canon_key(*op.bond_image(b0.i, b0.j, b0.R))
            if c in stored:
                Jd = stored[c].J.T if flipped else stored[c].J
                acc += op.R.T @ Jd @ op.R
                count += 1
        Jbar = acc / count
        values: dict = {}
        for op in ops:
            c, flipped = _canon_key(*op.bond_image(b0.i, b0.j, b0.R))
            Jd = op.tensor(Jbar)
            values.setdefault(c, []).append(Jd.T if flipped else Jd)
        for c in members:
            Jc = np.mean(values[c], axis=0)
            shell = stored[c].shell if c in stored else b0.shell
            if c not in stored:
                added += 1
            new.bonds.append(Bond(c[0], c[1], c[2], Jc, shell))
        orbit_rows.append({"representative": [members[0][0], members[0][1], list(members[0][2])],
                           "distance": round(_bond_length(model, members[0]), 6), "multiplicity": len(members)})
    if added:
        warnings.warn(f"symmetrise: {added} bond(s) required by symmetry were missing from the model and were added",
                      stacklevel=2)
    if single_ion:
        done = set()
        for k in range(model.n_sites):
            if k in done:
                continue
            orbit = sorted({int(op.perm[k]) for op in ops})
            spins = {model.sites[q].spin for q in orbit}
            if len(spins) > 1:
                warnings.warn(f"symmetrise: equivalent sites {orbit} have different spins {sorted(spins)}",
                              stacklevel=2)
            # the total single-ion tensor and its labelled dipolar part, averaged alike (the average is linear)
            for src, dst in ((model.single_ion, new.single_ion), (model.single_ion_dipolar, new.single_ion_dipolar)):
                Abar = np.mean([op.R.T @ src[int(op.perm[k])] @ op.R for op in ops], axis=0)
                vals: dict = {}
                for op in ops:
                    vals.setdefault(int(op.perm[k]), []).append(op.tensor(Abar))
                for q, As in vals.items():
                    dst[q] = np.mean(As, axis=0)
            done.update(orbit)
    group = None
    try:
        group = space_group(atoms, symprec)
    except SymmetryError:  # pragma: no cover - symmetry_operations succeeded, so this does not happen
        pass
    new.meta["symmetrised"] = {"space_group": group[0] if group else None, "number": group[1] if group else None,
                               "symprec": symprec, "n_operations": len(ops), "orbits": orbit_rows,
                               "bonds_added": added}
    return new

