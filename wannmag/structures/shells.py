"""Neighbour shells of the magnetic sublattice.

A bond is (i, j, R): from magnetic site i in the home cell to site j in the cell translated by the integer lattice
vector R (bond vector r_j + R·cell − r_i, Å).  Every bond is stored once, in the canonical direction i < j, or
i == j with R lexicographically positive — the "each bond once" convention of the spin Hamiltonian
H = Σ_{i<j} S_i·J_ij·S_j used throughout wannmag.  Shells group bonds by length (within ``tol`` Å); the
multiplicity of a shell is the number of neighbours of one site in it (3, 6, 3 for the honeycomb 1NN, 2NN, 3NN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.neighborlist import primitive_neighbor_list

from ..errors import StructureError
from .magnetic import MagneticSublattice

__all__ = ["Bond", "Shell", "neighbour_shells", "canonical_bond", "MAX_SHELLS"]

MAX_SHELLS = 50


@dataclass(frozen=True)
class Bond:
    """One bond (i, j, R) of the magnetic sublattice; i, j index magnetic sites, R is in lattice vectors."""

    i: int
    j: int
    R: tuple[int, int, int]
    distance: float
    vector: tuple[float, float, float]

    def as_dict(self) -> dict:
        return {"i": self.i, "j": self.j, "R": list(self.R), "distance": round(self.distance, 6),
                "vector": [round(v, 6) for v in self.vector]}

    @classmethod
    def from_dict(cls, d: dict) -> "Bond":
        """Inverse of :meth:`as_dict` (length and vector as stored, to 1e-6 Å; a dict without ``vector``, such as a
        bond of :meth:`ExchangePaths.as_dict`, gives ``vector`` None)."""
        vec = d.get("vector")
        return cls(int(d["i"]), int(d["j"]), tuple(int(x) for x in d["R"]), d["distance"],
                   None if vec is None else tuple(float(v) for v in vec))


@dataclass
class Shell:
    """Bonds of one neighbour shell: ``index`` = 1 for nearest neighbours, ``distance`` in Å."""

    index: int
    distance: float
    bonds: list[Bond] = field(default_factory=list)
    coordination: np.ndarray | None = None  # neighbours of each site in this shell

    @property
    def multiplicity(self) -> float:
        """Neighbours per magnetic site in this shell (the mean over sites if they differ)."""
        return float(np.mean(self.coordination))

    def as_dict(self) -> dict:
        return {"shell": self.index, "distance": round(self.distance, 6), "multiplicity": self.multiplicity,
                "n_bonds": len(self.bonds), "bonds": [b.as_dict() for b in self.bonds]}

    @classmethod
    def from_dict(cls, d: dict, n_sites: int | None = None) -> "Shell":
        """Inverse of :meth:`as_dict`.  The neighbours of each site are counted again from the bonds (each bond
        once: one neighbour of each of its two ends) over ``n_sites`` magnetic sites (default: the sites the bonds
        name); a count whose mean is not the stored multiplicity (sites the bonds do not reach, not counted) is
        replaced by the stored mean alone (one entry)."""
        bonds = [Bond.from_dict(b) for b in d["bonds"]]
        n = n_sites if n_sites is not None else 1 + max((max(b.i, b.j) for b in bonds), default=-1)
        coord = np.zeros(max(n, 1), dtype=int)
        for b in bonds:
            coord[b.i] += 1
            coord[b.j] += 1
        if float(np.mean(coord)) != d["multiplicity"]:
            coord = np.array([d["multiplicity"]], dtype=float)
        return cls(index=int(d["shell"]), distance=d["distance"], bonds=bonds, coordination=coord)


def canonical_bond(i: int, j: int, R) -> tuple[int, int, tuple[int, int, int]]:
    """The stored direction of the bond (i, j, R) ≡ (j, i, −R)."""
    R = tuple(int(x) for x in R)
    if i < j or (i == j and R > (0, 0, 0)):
        return i, j, R
    return j, i, tuple(-x for x in R)


def _cluster(distances: np.ndarray, tol: float) -> list[float]:
    uniq = np.unique(np.round(distances, 8))
    groups: list[list[float]] = []
    for d in uniq:
        if groups and d - groups[-1][-1] <= tol:
            groups[-1].append(d)
        else:
            groups.append([d])
    return [float(np.mean(g)) for g in groups], [(g[0], g[-1]) for g in groups]


def neighbour_shells(sub: MagneticSublattice, n_shells: int = 3, tol: float = 0.05,
                     cutoff: float | None = None) -> list[Shell]:
    """The first ``n_shells`` neighbour shells of the magnetic sublattice (or all shells within ``cutoff`` Å).

    Uses ``ase.neighborlist``; for a slab (``sub.two_dimensional``) only in-plane periodic images are searched.
    Bonds whose lengths differ by less than ``tol`` Å belong to the same shell.
    """
    if cutoff is None and not 1 <= n_shells <= MAX_SHELLS:
        raise StructureError(f"number of shells must be between 1 and {MAX_SHELLS}, got {n_shells}")
    if cutoff is not None and not 0.0 < cutoff <= 100.0:
        raise StructureError(f"neighbour cutoff must be in (0, 100] Å, got {cutoff}")
    if not 0.0 <= tol <= 1.0:  # also refuses NaN
        raise StructureError(f"shell tolerance must be between 0 and 1 Å, got {tol}")
    cell = sub.atoms.cell.array
    pos = sub.positions
    if sub.n_sites == 0:
        raise StructureError("no magnetic sites")
    search = cutoff if cutoff is not None else 1.05 * min(np.linalg.norm(cell[k]) for k in range(2)) * 1.2
    for _ in range(12):
        i, j, d, S = primitive_neighbor_list("ijdS", sub.pbc, cell, pos, search, self_interaction=False)
        if cutoff is not None or len(d) == 0:
            break
        centres, _ = _cluster(d, tol)
        # all members of the last requested shell must be inside the search sphere
        if len(centres) > n_shells:
            break
        search *= 1.5
    if len(d) == 0:
        raise StructureError(f"no magnetic neighbours within {search:.1f} Å")
    centres, ranges = _cluster(d, tol)
    n_keep = len(centres) if cutoff is not None else min(n_shells, len(centres))
    shells = [Shell(index=k + 1, distance=centres[k]) for k in range(n_keep)]
    seen = set()
    coord = np.zeros((n_keep, sub.n_sites), dtype=int)
    for a, b, dist, shift in zip(i, j, d, S):
        k = next((k for k, (lo, hi) in enumerate(ranges[:n_keep]) if lo - 1e-9 <= round(dist, 8) <= hi + 1e-9), None)
        if k is None:
            continue
        coord[k, a] += 1
        key = canonical_bond(int(a), int(b), shift)
        if key in seen:
            continue
        seen.add(key)
        ci, cj, R = key
        vec = pos[cj] + np.array(R) @ cell - pos[ci]
        shells[k].bonds.append(Bond(ci, cj, R, float(np.linalg.norm(vec)), tuple(float(v) for v in vec)))
    for k, sh in enumerate(shells):
        sh.bonds.sort(key=lambda b: (b.i, b.j, b.R))
        sh.coordination = coord[k]
    return shells
