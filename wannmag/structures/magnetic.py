"""The magnetic sublattice: which atoms carry a spin, and how large it is.

Spins are classical vectors of length S (in units of ħ); S follows from the d (or f) electron count of the ion:
n_d = group − oxidation state, high-spin S = n/2 (n ≤ 5) or (10 − n)/2 (n > 5) for 3d ions in octahedral
coordination, low-spin filling for 4d/5d ions, Hund's rule S for 4f ions.  Examples: Cr3+ (d3) and V2+ (d3):
S = 3/2; Mn2+ (d5): 5/2; Fe2+ (d6): 2; Ni2+ (d8): 1; Ru3+ (4d5, low spin): 1/2.  Every default can be overridden.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols
from pymatgen.core import Composition

from ..errors import StructureError
from .io import read_structure, source_name, to_pymatgen

__all__ = ["MagneticSublattice", "find_magnetic_sites", "spin_of_ion", "TRANSITION_METALS", "d_electron_count"]

_3D = list(range(21, 31))
_4D = list(range(39, 49))
_5D = [57] + list(range(72, 81))
_4F = list(range(58, 72))
TRANSITION_METALS = frozenset(chemical_symbols[z] for z in _3D + _4D + _5D + _4F)
MAX_SPIN = 10.0  # largest spin length accepted as an override (no ion exceeds S = 7/2)


def _group(z: int) -> int:
    for block in (_3D, _4D):
        if z in block:
            return 3 + block.index(z)
    if z == 57:
        return 3
    if 72 <= z <= 80:
        return 4 + (z - 72)
    raise ValueError(z)


def d_electron_count(element: str, oxidation: int) -> int:
    """Number of d (or, for lanthanides, f) electrons of the ion ``element^oxidation+``."""
    z = atomic_numbers[element]
    if z in _4F:
        n = z - 54 - 2 - (oxidation - 2)  # [Xe] 4f^n 6s^2 for the neutral atom (La-like exceptions ignored)
        if not 0 <= n <= 14:
            raise StructureError(f"{element}{oxidation:+d}: impossible f-electron count {n}")
        return n
    n = _group(z) - oxidation
    if not 0 <= n <= 10:
        raise StructureError(f"{element}{oxidation:+d}: impossible d-electron count {n}")
    return n


def spin_of_ion(element: str, oxidation: int, low_spin: bool | None = None) -> float:
    """Spin S of a transition-metal ion in octahedral coordination (see module docstring)."""
    z = atomic_numbers[element]
    n = d_electron_count(element, oxidation)
    if z in _4F:
        return float(min(n, 14 - n)) / 2.0
    if low_spin is None:
        low_spin = z not in _3D or (element, oxidation) in {("Co", 3)}
    if not low_spin:
        return float(n if n <= 5 else 10 - n) / 2.0
    t2g = min(n, 6)
    eg = n - t2g
    unpaired_t2g = t2g if t2g <= 3 else 6 - t2g
    unpaired_eg = eg if eg <= 2 else 4 - eg
    return float(unpaired_t2g + unpaired_eg) / 2.0


@dataclass
class MagneticSublattice:
    """Magnetic sites of a structure.

    Attributes
    ----------
    atoms : the full structure (ase.Atoms; lengths in Å).
    indices : index into ``atoms`` of each magnetic site, in order.
    spins : spin length S of each site (classical spin vectors of length S).
    oxidation_states : oxidation state per element used to derive S.
    two_dimensional : True when the structure is a slab (vacuum gap along the third lattice vector); neighbour
        searches are then periodic in the plane only.
    """

    atoms: Atoms
    indices: np.ndarray
    spins: np.ndarray
    oxidation_states: dict[str, int] = field(default_factory=dict)
    two_dimensional: bool = False

    @property
    def n_sites(self) -> int:
        return len(self.indices)

    @property
    def elements(self) -> list[str]:
        symbols = self.atoms.get_chemical_symbols()
        return [symbols[i] for i in self.indices]

    @property
    def positions(self) -> np.ndarray:
        return self.atoms.positions[self.indices]

    @property
    def ligand_indices(self) -> np.ndarray:
        """Indices of the non-magnetic atoms (candidate ligands)."""
        mask = np.ones(len(self.atoms), bool)
        mask[self.indices] = False
        return np.nonzero(mask)[0]

    @property
    def pbc(self) -> tuple[bool, bool, bool]:
        return (True, True, not self.two_dimensional)

    def magnetic_atoms(self) -> Atoms:
        """The magnetic sites alone as an ``ase.Atoms`` in the same cell."""
        sub = self.atoms[self.indices]
        sub.pbc = self.pbc
        return sub

    def site_table(self) -> list[dict]:
        return [{"site": k, "atom_index": int(i), "element": el, "spin": float(s),
                 "position": [float(v) for v in self.atoms.positions[i]]}
                for k, (i, el, s) in enumerate(zip(self.indices, self.elements, self.spins))]


def _is_slab(atoms: Atoms, min_gap: float = 5.0) -> bool:
    """A slab has an empty gap of at least ``min_gap`` Å along the third lattice vector (normal to the a1–a2 plane)."""
    cell = atoms.cell.array
    normal = np.cross(cell[0], cell[1])
    if np.linalg.norm(normal) < 1e-9:
        return False
    normal /= np.linalg.norm(normal)
    height = abs(np.dot(cell[2], normal))
    z = np.sort(np.mod(atoms.positions @ normal, height))
    gaps = np.diff(np.concatenate([z, [z[0] + height]]))
    return bool(gaps.max() >= min_gap)


def _oxidation_states(atoms: Atoms) -> dict[str, int]:
    """Oxidation states per element: bond-valence analysis (pymatgen) on the structure, composition guess as fallback."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(atoms) <= 200:
            try:
                # local: ~0.27 s to import (it loads its parameter tables), and only this guess needs it
                from pymatgen.analysis.bond_valence import BVAnalyzer

                valences = BVAnalyzer().get_valences(to_pymatgen(atoms))
                result: dict[str, list[int]] = {}
                for sym, v in zip(atoms.get_chemical_symbols(), valences):
                    result.setdefault(sym, []).append(int(v))
                return {k: int(round(np.mean(v))) for k, v in result.items()}
            except Exception:  # noqa: BLE001 - fall back to the composition guess
                pass
        guesses = Composition(atoms.get_chemical_formula()).oxi_state_guesses()
        if guesses:
            return {k: int(round(v)) for k, v in guesses[0].items()}
    return {}


def find_magnetic_sites(structure, magnetic=None, spins: dict[str, float] | None = None,
                        oxidation_states: dict[str, int] | None = None) -> MagneticSublattice:
    """Identify the magnetic sublattice of ``structure`` (path, ase.Atoms or pymatgen Structure).

    Parameters
    ----------
    magnetic : element symbols to treat as magnetic (default: every d- or f-block element whose ion has S > 0).
    spins : per-element override of S, e.g. ``{"Cr": 1.5}``.
    oxidation_states : per-element override of the oxidation state used to derive S, e.g. ``{"V": 2}``.
    """
    atoms = read_structure(structure)
    name = source_name(atoms)
    symbols = atoms.get_chemical_symbols()
    spins = dict(spins or {})
    for el, s in spins.items():
        if el not in symbols:
            raise StructureError(f"{name}: a spin is given for {el}, which is not in the structure "
                                 f"({atoms.get_chemical_formula()})")
        try:
            s = float(s)
        except (TypeError, ValueError):
            raise StructureError(f"{name}: spin of {el} must be a number, got {s!r}") from None
        if not (0 < s <= MAX_SPIN) or abs(2 * s - round(2 * s)) > 1e-9:
            raise StructureError(f"{name}: spin of {el} must be a positive multiple of 1/2 up to {MAX_SPIN:g}, got "
                                 f"{s} (to leave an element out, name the magnetic ones with --magnetic)")
    if magnetic is not None:
        magnetic = [magnetic] if isinstance(magnetic, str) else list(magnetic)
        unknown = [str(el) for el in magnetic if el not in atomic_numbers or atomic_numbers[el] == 0]
        if unknown:
            raise StructureError(f"{name}: {', '.join(map(repr, unknown))}: not a chemical element symbol")
        missing = [el for el in magnetic if el not in symbols]
        if missing:
            raise StructureError(f"{name}: requested magnetic element(s) {', '.join(missing)} not in the structure "
                                 f"({atoms.get_chemical_formula()})")
    candidates = sorted(set(magnetic) if magnetic is not None else {s for s in symbols if s in TRANSITION_METALS})
    if not candidates:
        raise StructureError(f"{name}: no magnetic ion in {atoms.get_chemical_formula()} "
                             "(no transition-metal or rare-earth atom; name one with --magnetic)")
    ox = {} if all(el in spins for el in candidates) else _oxidation_states(atoms)
    ox.update(oxidation_states or {})
    spin_of: dict[str, float] = {}
    for el in candidates:
        if el in spins:
            spin_of[el] = float(spins[el])
        elif el in ox and el in TRANSITION_METALS:
            try:
                spin_of[el] = spin_of_ion(el, ox[el])
            except StructureError as exc:
                if magnetic is not None or el in (oxidation_states or {}):
                    raise StructureError(f"{name}: {exc}; pass spins={{'{el}': S}}") from None
                spin_of[el] = 0.0  # e.g. a metallic element with oxidation state 0: no local moment assumed
        else:
            raise StructureError(f"{name}: cannot determine the spin of {el} (no oxidation state); pass spins={{'{el}': S}}")
    chosen = [el for el in candidates if spin_of[el] > 0 or magnetic is not None]
    if not chosen or all(spin_of[el] == 0 for el in chosen):
        raise StructureError(f"{name}: no magnetic ion in {atoms.get_chemical_formula()} "
                             f"(ions {', '.join(f'{el}{ox.get(el, 0):+d}' for el in candidates)} have S = 0)")
    indices = np.array([i for i, s in enumerate(symbols) if s in chosen], dtype=int)
    return MagneticSublattice(atoms=atoms, indices=indices,
                              spins=np.array([spin_of[symbols[i]] for i in indices], dtype=float),
                              oxidation_states={k: int(v) for k, v in ox.items()},
                              two_dimensional=_is_slab(atoms))
