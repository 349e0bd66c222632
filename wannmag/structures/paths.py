"""Ligand-bridged superexchange paths of the magnetic bonds.

For each metal the coordinating ligands are the non-magnetic atoms within ``(1 + ligand_tol)`` × its shortest
metal–ligand distance.  A ligand image that coordinates both metals of a bond bridges it (an M–X–M path, with its two
M–X distances and the M–X–M angle).  The bond is classified by the number of shared ligands: 1 corner-sharing,
2 edge-sharing, 3 face-sharing, 0 none.  Bonds without a common ligand (2NN, 3NN of the honeycomb) get their
M–X–X–M paths: a ligand of M_i and a ligand of M_j at most ``xx_cutoff`` Å apart (default: 1.15 × the longest
ligand–ligand edge of a coordination polyhedron).  Lengths in Å, angles in degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase.neighborlist import primitive_neighbor_list

from ..errors import StructureError
from .magnetic import MagneticSublattice
from .shells import Bond, Shell

__all__ = ["Ligand", "BridgePath", "LongPath", "ExchangePaths", "coordination", "exchange_paths"]

SHARING = {0: "none", 1: "corner-sharing", 2: "edge-sharing", 3: "face-sharing"}


@dataclass(frozen=True)
class Ligand:
    """A ligand image: atom ``index`` of the structure translated by the lattice vector ``R``."""

    index: int
    element: str
    R: tuple[int, int, int]

    def as_dict(self) -> dict:
        return {"index": self.index, "element": self.element, "R": list(self.R)}

    @classmethod
    def from_dict(cls, d: dict) -> "Ligand":
        return cls(int(d["index"]), d["element"], tuple(int(x) for x in d["R"]))


@dataclass
class BridgePath:
    """M_i–X–M_j through one bridging ligand."""

    ligand: Ligand
    d_ix: float
    d_jx: float
    angle: float

    def as_dict(self) -> dict:
        return {"ligand": self.ligand.as_dict(), "d_MX": [round(self.d_ix, 4), round(self.d_jx, 4)],
                "angle": round(self.angle, 3)}

    @classmethod
    def from_dict(cls, d: dict) -> "BridgePath":
        """Inverse of :meth:`as_dict` (distances to 1e-4 Å, angle to 1e-3°, as stored)."""
        return cls(Ligand.from_dict(d["ligand"]), d["d_MX"][0], d["d_MX"][1], d["angle"])


@dataclass
class LongPath:
    """M_i–X1–X2–M_j through two ligands."""

    ligand_i: Ligand
    ligand_j: Ligand
    d_ix: float
    d_xx: float
    d_jx: float
    angles: tuple[float, float]  # M_i–X1–X2 and X1–X2–M_j

    def as_dict(self) -> dict:
        return {"ligands": [self.ligand_i.as_dict(), self.ligand_j.as_dict()],
                "distances": [round(self.d_ix, 4), round(self.d_xx, 4), round(self.d_jx, 4)],
                "angles": [round(a, 3) for a in self.angles]}

    @classmethod
    def from_dict(cls, d: dict) -> "LongPath":
        """Inverse of :meth:`as_dict` (distances to 1e-4 Å, angles to 1e-3°, as stored)."""
        li, lj = (Ligand.from_dict(x) for x in d["ligands"])
        d_ix, d_xx, d_jx = d["distances"]
        return cls(li, lj, d_ix, d_xx, d_jx, tuple(d["angles"]))


@dataclass
class ExchangePaths:
    """All exchange paths of one bond."""

    shell: int
    bond: Bond
    bridges: list[BridgePath] = field(default_factory=list)
    long_paths: list[LongPath] = field(default_factory=list)

    @property
    def sharing(self) -> str:
        return SHARING.get(len(self.bridges), f"{len(self.bridges)}-ligand")

    def as_dict(self) -> dict:
        return {"shell": self.shell, "i": self.bond.i, "j": self.bond.j, "R": list(self.bond.R),
                "distance": round(self.bond.distance, 6), "sharing": self.sharing,
                "bridging_ligands": [b.as_dict() for b in self.bridges],
                "angles": [round(b.angle, 3) for b in self.bridges],
                "mxxm_paths": [p.as_dict() for p in self.long_paths]}

    @classmethod
    def from_dict(cls, d: dict, bonds: dict | None = None) -> "ExchangePaths":
        """Inverse of :meth:`as_dict`.  The bond is ``bonds[(i, j, R)]`` when given (the shells' :class:`Bond`
        objects, with their vectors), else rebuilt from the stored (i, j, R, distance) without its vector."""
        key = (int(d["i"]), int(d["j"]), tuple(int(x) for x in d["R"]))
        bond = (bonds or {}).get(key) or Bond(*key, d["distance"], None)
        return cls(shell=int(d["shell"]), bond=bond, bridges=[BridgePath.from_dict(b) for b in d["bridging_ligands"]],
                   long_paths=[LongPath.from_dict(p) for p in d["mxxm_paths"]])


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    c = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def coordination(sub: MagneticSublattice, ligand_tol: float = 0.15, max_bond: float = 3.6):
    """Coordinating ligands of every magnetic site: ``{site: [(Ligand, vector M→X), ...]}``.

    Ligands are non-magnetic atoms within (1 + ligand_tol) × the site's shortest M–X distance (≤ ``max_bond`` Å).
    """
    atoms = sub.atoms
    symbols = atoms.get_chemical_symbols()
    lig = set(int(k) for k in sub.ligand_indices)
    if not lig:
        return {s: [] for s in range(sub.n_sites)}
    i, j, d, D, S = primitive_neighbor_list("ijdDS", sub.pbc, atoms.cell.array, atoms.positions, max_bond * 1.5)
    result = {}
    for site, a in enumerate(sub.indices):
        mask = (i == a) & np.isin(j, list(lig))
        if not mask.any():
            result[site] = []
            continue
        dmin = d[mask].min()
        if dmin > max_bond:
            result[site] = []
            continue
        keep = mask & (d <= dmin * (1.0 + ligand_tol))
        result[site] = sorted(((Ligand(int(jj), symbols[jj], tuple(int(x) for x in ss)), DD)
                               for jj, ss, DD in zip(j[keep], S[keep], D[keep])),
                              key=lambda t: (t[0].index, t[0].R))
    return result


def _polyhedron_edge(coord) -> float:
    longest = 0.0
    for ligs in coord.values():
        vecs = [v for _, v in ligs]
        for a in range(len(vecs)):
            dists = sorted(np.linalg.norm(vecs[a] - vecs[b]) for b in range(len(vecs)) if b != a)
            if dists:
                # the edges of an octahedron are the 4 shortest ligand-ligand distances of each vertex
                longest = max(longest, dists[min(3, len(dists) - 1)])
    return longest


def exchange_paths(sub: MagneticSublattice, shells: list[Shell], ligand_tol: float = 0.15,
                   xx_cutoff: float | None = None, long_paths_for_bridged: bool = False) -> list[ExchangePaths]:
    """Superexchange paths of every bond in ``shells`` (see module docstring)."""
    coord = coordination(sub, ligand_tol=ligand_tol)
    if xx_cutoff is None:
        edge = _polyhedron_edge(coord)
        xx_cutoff = 1.15 * edge if edge > 0 else 0.0
    out = []
    for shell in shells:
        for bond in shell.bonds:
            R = np.array(bond.R)
            ep = ExchangePaths(shell=shell.index, bond=bond)
            lig_i = coord[bond.i]
            # ligands of j seen from i's cell: shift their lattice vectors by R
            lig_j = [(Ligand(L.index, L.element, tuple(int(x) for x in np.array(L.R) + R)), v) for L, v in coord[bond.j]]
            bvec = np.array(bond.vector)
            # v_i: M_i → X; v_j: M_j → X (M_j at r_i + bvec)
            vec_j = {L: v for L, v in lig_j}
            for L, v_i in lig_i:
                if L in vec_j:
                    v_j = vec_j[L]
                    ep.bridges.append(BridgePath(L, float(np.linalg.norm(v_i)), float(np.linalg.norm(v_j)),
                                                 _angle(-v_i, -v_j)))
            if (not ep.bridges or long_paths_for_bridged) and xx_cutoff > 0:
                for L1, v_i in lig_i:
                    for L2, v_j in lig_j:
                        if L1 == L2:
                            continue
                        x1, x2 = v_i, bvec + v_j  # ligand positions relative to M_i
                        dxx = float(np.linalg.norm(x2 - x1))
                        if dxx <= xx_cutoff:
                            ep.long_paths.append(LongPath(L1, L2, float(np.linalg.norm(v_i)), dxx,
                                                          float(np.linalg.norm(v_j)),
                                                          (_angle(-x1, x2 - x1), _angle(x1 - x2, -v_j))))
                ep.long_paths.sort(key=lambda p: p.d_xx)
            out.append(ep)
    if any(not coord[s] for s in range(sub.n_sites)) and sub.ligand_indices.size:
        missing = [s for s in range(sub.n_sites) if not coord[s]]
        raise StructureError(f"magnetic site(s) {missing} have no ligand within 3.6 Å; check the structure")
    return out
