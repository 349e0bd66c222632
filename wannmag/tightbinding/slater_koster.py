"""Slater–Koster two-centre integrals and a builder for synthetic s/p/d tight-binding models.

Table: J. C. Slater and G. F. Koster, Phys. Rev. 94, 1498 (1954), Table I, for the cubic harmonics
(x, y, z; xy, yz, zx, x²−y², 3z²−r²), rewritten in the Wannier90 order (pz, px, py; dz2, dxz, dyz, dx2-y2, dxy).
``sk_block(l1, l2, d, V)[m, n] = <φ_{l1 m}(r) | H | φ_{l2 n}(r − d)>`` for an orbital l1 at the origin and an
orbital l2 at ``d`` (Å; only the direction cosines (l, m, n) = d/|d| enter).  Blocks with l1 > l2 follow from
E_{βα}(d) = (−1)^{l1+l2} E_{αβ}(d)ᵀ.  :func:`sk_block_rotated` builds the same blocks independently by rotating
the bond-frame matrix diag(σ, π, π, δ, δ) with the real-harmonic rotation matrices (used as a cross-check).

Energies in eV, distances in Å.  Distance dependence (optional): V(d) = V₀ (d₀/d)^η per bond type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from ase import Atoms
from ase.neighborlist import primitive_neighbor_list

from .harmonics import ORBITAL_NAMES, frame_matrix, rotation_matrix
from .localframe import octahedral_frame
from .model import CollinearTBModel, Orbital, TBError, TBModel

__all__ = ["SKParameters", "sk_block", "sk_block_rotated", "slater_koster_model", "slater_koster_collinear",
           "HARRISON_ETA"]

SQ3 = np.sqrt(3.0)
#: Harrison's power laws V ∝ d^−η: ss, sp, pp ∝ d⁻², sd, pd ∝ d^−3.5, dd ∝ d⁻⁵
HARRISON_ETA = {"ss": 2.0, "sp": 2.0, "pp": 2.0, "sd": 3.5, "pd": 3.5, "dd": 5.0}
_LETTER = {0: "s", 1: "p", 2: "d"}


@dataclass
class SKParameters:
    """Two-centre integrals (eV) at the reference distances ``d0`` (Å, per bond type ``"dd"``, ``"pd"``, …).

    Scaling (optional): V(d) = V(d0)·(d0/d)^eta[type]; ``eta`` defaults to no scaling.  ``cutoff`` (Å, per bond
    type) limits the hoppings; by default only the nearest-neighbour shell of each bond type is kept (bonds within
    ``nn_tol`` Å of the shortest one).
    """

    sss: float = 0.0
    sps: float = 0.0
    sds: float = 0.0
    pps: float = 0.0
    ppp: float = 0.0
    pds: float = 0.0
    pdp: float = 0.0
    dds: float = 0.0
    ddp: float = 0.0
    ddd: float = 0.0
    d0: dict = field(default_factory=dict)
    eta: dict = field(default_factory=dict)
    cutoff: dict = field(default_factory=dict)
    nn_tol: float = 0.1

    def values(self, kind: str, distance: float | None = None) -> tuple[float, ...]:
        """(σ, π, δ…) integrals of a bond type (``"pd"`` …) at ``distance`` Å (scaled if d0 and eta are set)."""
        vals = {"ss": (self.sss,), "sp": (self.sps,), "sd": (self.sds,), "pp": (self.pps, self.ppp),
                "pd": (self.pds, self.pdp), "dd": (self.dds, self.ddp, self.ddd)}[kind]
        if distance is not None and kind in self.eta and kind in self.d0:
            f = (self.d0[kind] / distance) ** self.eta[kind]
            vals = tuple(v * f for v in vals)
        return vals


def _kind(l1: int, l2: int) -> str:
    a, b = sorted((l1, l2))
    return _LETTER[a] + _LETTER[b]


# cubic order -> Wannier90 order
_P_W90 = [2, 0, 1]            # pz, px, py   from (x, y, z)
_D_W90 = [4, 2, 1, 3, 0]      # dz2, dxz, dyz, dx2-y2, dxy   from (xy, yz, zx, x2-y2, 3z2-r2)


def _sk_pp(l, m, n, s, p):
    c = np.array([l, m, n])
    return (s - p) * np.outer(c, c) + p * np.eye(3)


def _sk_pd(l, m, n, s, p):
    """Rows x, y, z; columns xy, yz, zx, x²−y², 3z²−r² (Slater–Koster Table I)."""
    E = np.empty((3, 5))
    lm2 = l * l - m * m
    q = n * n - (l * l + m * m) / 2.0
    E[0, 0] = SQ3 * l * l * m * s + m * (1 - 2 * l * l) * p
    E[0, 1] = SQ3 * l * m * n * s - 2 * l * m * n * p
    E[0, 2] = SQ3 * l * l * n * s + n * (1 - 2 * l * l) * p
    E[1, 0] = SQ3 * m * m * l * s + l * (1 - 2 * m * m) * p
    E[1, 1] = SQ3 * m * m * n * s + n * (1 - 2 * m * m) * p
    E[1, 2] = SQ3 * l * m * n * s - 2 * l * m * n * p
    E[2, 0] = SQ3 * l * m * n * s - 2 * l * m * n * p
    E[2, 1] = SQ3 * n * n * m * s + m * (1 - 2 * n * n) * p
    E[2, 2] = SQ3 * n * n * l * s + l * (1 - 2 * n * n) * p
    E[0, 3] = SQ3 / 2 * l * lm2 * s + l * (1 - lm2) * p
    E[1, 3] = SQ3 / 2 * m * lm2 * s - m * (1 + lm2) * p
    E[2, 3] = SQ3 / 2 * n * lm2 * s - n * lm2 * p
    E[0, 4] = l * q * s - SQ3 * l * n * n * p
    E[1, 4] = m * q * s - SQ3 * m * n * n * p
    E[2, 4] = n * q * s + SQ3 * n * (l * l + m * m) * p
    return E


def _sk_dd(l, m, n, s, p, d):
    """Rows/columns xy, yz, zx, x²−y², 3z²−r² (Slater–Koster Table I); symmetric."""
    E = np.empty((5, 5))
    l2, m2, n2 = l * l, m * m, n * n
    lm2 = l2 - m2
    q = n2 - (l2 + m2) / 2.0
    E[0, 0] = 3 * l2 * m2 * s + (l2 + m2 - 4 * l2 * m2) * p + (n2 + l2 * m2) * d
    E[1, 1] = 3 * m2 * n2 * s + (m2 + n2 - 4 * m2 * n2) * p + (l2 + m2 * n2) * d
    E[2, 2] = 3 * n2 * l2 * s + (n2 + l2 - 4 * n2 * l2) * p + (m2 + n2 * l2) * d
    E[0, 1] = 3 * l * m2 * n * s + l * n * (1 - 4 * m2) * p + l * n * (m2 - 1) * d
    E[0, 2] = 3 * l2 * m * n * s + m * n * (1 - 4 * l2) * p + m * n * (l2 - 1) * d
    E[1, 2] = 3 * l * m * n2 * s + l * m * (1 - 4 * n2) * p + l * m * (n2 - 1) * d
    E[0, 3] = 1.5 * l * m * lm2 * s + 2 * l * m * (m2 - l2) * p + 0.5 * l * m * lm2 * d
    E[1, 3] = 1.5 * m * n * lm2 * s - m * n * (1 + 2 * lm2) * p + m * n * (1 + lm2 / 2) * d
    E[2, 3] = 1.5 * n * l * lm2 * s + n * l * (1 - 2 * lm2) * p - n * l * (1 - lm2 / 2) * d
    E[0, 4] = SQ3 * l * m * q * s - 2 * SQ3 * l * m * n2 * p + SQ3 / 2 * l * m * (1 + n2) * d
    E[1, 4] = SQ3 * m * n * q * s + SQ3 * m * n * (l2 + m2 - n2) * p - SQ3 / 2 * m * n * (l2 + m2) * d
    E[2, 4] = SQ3 * l * n * q * s + SQ3 * l * n * (l2 + m2 - n2) * p - SQ3 / 2 * l * n * (l2 + m2) * d
    E[3, 3] = 0.75 * lm2**2 * s + (l2 + m2 - lm2**2) * p + (n2 + lm2**2 / 4) * d
    E[3, 4] = SQ3 / 2 * lm2 * q * s + SQ3 * n2 * (m2 - l2) * p + SQ3 / 4 * (1 + n2) * lm2 * d
    E[4, 4] = q * q * s + 3 * n2 * (l2 + m2) * p + 0.75 * (l2 + m2) ** 2 * d
    iu = np.triu_indices(5, 1)
    E[(iu[1], iu[0])] = E[iu]
    return E


def _direction(d) -> np.ndarray:
    d = np.asarray(d, dtype=float)
    r = np.linalg.norm(d)
    if r < 1e-10:
        raise TBError("Slater–Koster bond vector has zero length")
    return d / r


def sk_block(l1: int, l2: int, d, V) -> np.ndarray:
    """Two-centre block <l1, m | H | l2, n at d> (Wannier90 orbital order), Slater–Koster Table I.

    ``V`` = (σ,) for ss/sp/sd, (σ, π) for pp/pd, (σ, π, δ) for dd (eV).
    """
    l, m, n = _direction(d)
    if l1 > l2:
        return (-1) ** (l1 + l2) * sk_block(l2, l1, d, V).T
    if (l1, l2) == (0, 0):
        return np.array([[V[0]]])
    if (l1, l2) == (0, 1):
        return V[0] * np.array([[n, l, m]])
    if (l1, l2) == (0, 2):
        c = np.array([SQ3 * l * m, SQ3 * m * n, SQ3 * n * l, SQ3 / 2 * (l * l - m * m),
                      n * n - (l * l + m * m) / 2.0])
        return V[0] * c[_D_W90][None, :]
    if (l1, l2) == (1, 1):
        return _sk_pp(l, m, n, *V)[np.ix_(_P_W90, _P_W90)]
    if (l1, l2) == (1, 2):
        return _sk_pd(l, m, n, *V)[np.ix_(_P_W90, _D_W90)]
    if (l1, l2) == (2, 2):
        return _sk_dd(l, m, n, *V)[np.ix_(_D_W90, _D_W90)]
    raise TBError(f"Slater–Koster blocks implemented for l ≤ 2, not ({l1}, {l2})")


def _bond_frame_block(l1: int, l2: int, V) -> np.ndarray:
    """The block in the bond frame (z along the bond): σ couples m=0, π |m|=1, δ |m|=2 of equal symmetry."""
    # index of (|m|, cos/sin) in W90 order: p: pz(0), px(1,c), py(1,s); d: dz2(0), dxz(1,c), dyz(1,s),
    # dx2-y2(2,c), dxy(2,s)
    key = {0: [(0, "c")], 1: [(0, "c"), (1, "c"), (1, "s")],
           2: [(0, "c"), (1, "c"), (1, "s"), (2, "c"), (2, "s")]}
    B = np.zeros((2 * l1 + 1, 2 * l2 + 1))
    for a, ka in enumerate(key[l1]):
        for b, kb in enumerate(key[l2]):
            if ka == kb:
                B[a, b] = V[ka[0]]
    return B


def sk_block_rotated(l1: int, l2: int, d, V) -> np.ndarray:
    """Same as :func:`sk_block`, built by rotating the bond-frame block with real-harmonic rotation matrices."""
    z = _direction(d)
    trial = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = trial - z * (trial @ z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    axes = np.array([x, y, z])
    # bond-frame orbitals = Σ D[m', m] global m'  ->  E_global = D1 B D2ᵀ
    if l1 <= l2:
        B = _bond_frame_block(l1, l2, V)
    else:  # E_{βα}(d) = (−1)^{l1+l2} E_{αβ}(d)ᵀ
        B = (-1) ** (l1 + l2) * _bond_frame_block(l2, l1, V).T
    D1, D2 = frame_matrix(l1, axes), frame_matrix(l2, axes)
    return D1 @ B @ D2.T


# ---------------------------------------------------------------------------------------------------- builder
def _atom_set(atoms: Atoms, spec) -> list[int]:
    if spec is None:
        return []
    if isinstance(spec, str):
        spec = [spec]
    out = set()
    symbols = atoms.get_chemical_symbols()
    for s in spec:
        if isinstance(s, str):
            hits = [i for i, e in enumerate(symbols) if e == s]
            if not hits:
                raise TBError(f"Slater–Koster model: no {s} atom in {atoms.get_chemical_formula()}")
            out.update(hits)
        else:
            i = int(s)
            if not 0 <= i < len(atoms):
                raise TBError(f"Slater–Koster model: atom index {i} out of range (0…{len(atoms) - 1})")
            out.add(i)
    return sorted(out)


def _per_atom(value, atoms: Atoms, i: int, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, dict):
        sym = atoms.get_chemical_symbols()[i]
        return float(value.get(i, value.get(sym, default)))
    return float(value)


def slater_koster_model(atoms: Atoms, d_atoms=None, p_atoms=None, s_atoms=None, params: SKParameters | dict = None,
                        eps_s=0.0, eps_p=-2.0, eps_d=0.0, crystal_field=None, ligands_for_field=None,
                        name: str = "Slater–Koster model", spin: str | None = None) -> TBModel:
    """A Slater–Koster tight-binding model on ``atoms`` (ase.Atoms; periodic along ``atoms.pbc``).

    Parameters
    ----------
    d_atoms, p_atoms, s_atoms : atoms carrying d / p / s orbitals (element symbols or indices).
    params : :class:`SKParameters` or a dict of its fields (``pds``, ``pdp``, ``dds``, ``ddp``, ``ddd``, ``pps``,
        ``ppp`` …, eV).
    eps_s, eps_p, eps_d : on-site energies (eV): a number, or a dict by element symbol or atom index.
    crystal_field : optional on-site splitting of the d levels, either ``(eps_t2g, eps_eg)`` offsets (eV, added to
        eps_d) in the local octahedral frame of each d atom (axes toward its six nearest ``ligands_for_field``
        atoms, default the p atoms), or a 5-vector of offsets in the global Wannier90 order.
    spin : recorded on the model (``"up"``/``"down"`` for one collinear channel).

    Orbital order: atoms in index order; on each atom s, then p (pz, px, py), then d (dz2, dxz, dyz, dx2-y2, dxy).
    """
    if params is None:
        params = SKParameters()
    elif isinstance(params, dict):
        params = SKParameters(**params)
    shells = {0: _atom_set(atoms, s_atoms), 1: _atom_set(atoms, p_atoms), 2: _atom_set(atoms, d_atoms)}
    if not any(shells.values()):
        raise TBError("Slater–Koster model: no atom carries orbitals (give d_atoms and/or p_atoms)")
    orbitals: list[Orbital] = []
    where: dict[tuple[int, int], list[int]] = {}
    symbols = atoms.get_chemical_symbols()
    for i in range(len(atoms)):
        for l in (0, 1, 2):
            if i in shells[l]:
                where[(i, l)] = list(range(len(orbitals), len(orbitals) + 2 * l + 1))
                orbitals += [Orbital(i, symbols[i], l, nm) for nm in ORBITAL_NAMES[l]]
    nw = len(orbitals)
    cell = atoms.cell.array
    pbc = np.asarray(atoms.pbc, dtype=bool)

    # neighbours: find the shortest distance of every bond type, then keep bonds within the cutoffs
    kinds_present = {_kind(l1, l2) for l1 in (0, 1, 2) for l2 in (0, 1, 2) if shells[l1] and shells[l2]}
    max_cut = max([params.cutoff.get(k, 0.0) for k in kinds_present] + [12.0])
    ii, jj, dd, DD, SS = primitive_neighbor_list("ijdDS", pbc, cell, atoms.positions, max_cut,
                                                  self_interaction=False)
    blocks: dict[tuple[int, int, int], np.ndarray] = {(0, 0, 0): np.zeros((nw, nw), complex)}
    shortest: dict[str, float] = {}
    for i, j, d in zip(ii, jj, dd):
        for l1 in (0, 1, 2):
            for l2 in (0, 1, 2):
                if (i, l1) in where and (j, l2) in where:
                    k = _kind(l1, l2)
                    shortest[k] = min(shortest.get(k, np.inf), d)
    cut = {k: params.cutoff.get(k, shortest.get(k, 0.0) + params.nn_tol) for k in kinds_present}
    for i, j, d, D, S in zip(ii, jj, dd, DD, SS):
        for l1 in (0, 1, 2):
            if (i, l1) not in where:
                continue
            for l2 in (0, 1, 2):
                if (j, l2) not in where:
                    continue
                k = _kind(l1, l2)
                if d > cut[k] + 1e-9:
                    continue
                V = params.values(k, d)
                if not any(V):
                    continue
                R = tuple(int(x) for x in S)
                blk = blocks.setdefault(R, np.zeros((nw, nw), complex))
                blk[np.ix_(where[(i, l1)], where[(j, l2)])] += sk_block(l1, l2, D, V)

    H0 = blocks[(0, 0, 0)]
    for (i, l), idx in where.items():
        eps = {0: eps_s, 1: eps_p, 2: eps_d}[l]
        H0[idx, idx] += _per_atom(eps, atoms, i, 0.0)
    if crystal_field is not None:
        cf = np.asarray(crystal_field, dtype=float)
        for (i, l), idx in where.items():
            if l != 2:
                continue
            if cf.shape == (5,):
                H0[idx, idx] += cf
            elif cf.shape == (2,):
                lig = _atom_set(atoms, ligands_for_field) if ligands_for_field is not None else shells[1]
                frame = octahedral_frame(atoms, i, candidates=lig)
                D = frame_matrix(2, frame.axes)
                loc = np.diag([cf[1], cf[0], cf[0], cf[1], cf[0]])  # dz2, dxz, dyz, dx2-y2, dxy
                H0[np.ix_(idx, idx)] += D @ loc @ D.T
            else:
                raise TBError("crystal_field must be (eps_t2g, eps_eg) or 5 offsets in Wannier90 order")
    R = np.array(list(blocks.keys()), dtype=int)
    H = np.array(list(blocks.values()))
    model = TBModel(R, H, cell, orbitals=orbitals, atoms=atoms.copy(), name=name, spin=spin)
    model.sk_parameters = params
    return model


def slater_koster_collinear(atoms: Atoms, exchange_splitting=2.0, eps_d=0.0, name: str = "Slater–Koster model",
                            **kwargs) -> CollinearTBModel:
    """A collinear pair of Slater–Koster models with the d levels split by the exchange ``exchange_splitting`` Δ
    (eV; a number or a dict by element/atom index, signed: Δ > 0 puts the up levels lower):
    ε_d↑ = ε_d − Δ/2, ε_d↓ = ε_d + Δ/2, so that H↑_ii − H↓_ii = −Δ on the d orbitals.  Other arguments as in
    :func:`slater_koster_model`.
    """
    def shifted(sign):
        out = {}
        for i, sym in enumerate(atoms.get_chemical_symbols()):
            base = _per_atom(eps_d, atoms, i, 0.0)
            delta = _per_atom(exchange_splitting, atoms, i, 0.0)
            out[i] = base + sign * delta / 2.0
        return out

    up = slater_koster_model(atoms, eps_d=shifted(-1), name=f"{name} (up)", spin="up", **kwargs)
    dn = slater_koster_model(atoms, eps_d=shifted(+1), name=f"{name} (down)", spin="down", **kwargs)
    return CollinearTBModel(up, dn, name=name)


def rotation_check(l: int, Q) -> float:
    """Largest deviation of D^l(Q) from orthogonality (diagnostic)."""
    D = rotation_matrix(l, Q)
    return float(np.abs(D @ D.T - np.eye(2 * l + 1)).max())
