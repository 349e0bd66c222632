"""Local octahedral frames, crystal-field levels and hopping matrices in those frames.

Frame of a metal M with six ligands X: the ligands are paired into three trans pairs (the most opposite partner of
each, M–X–M angle > 120°); the pair directions u_k = (x̂_k+ − x̂_k−)/|…| are generally not orthogonal in a
distorted octahedron, and the frame is the orthonormal matrix closest to them (Löwdin / polar decomposition:
U = A Σ Bᵀ → W = A Bᵀ).  Conventions: every axis points to the ligand on the side of the reference normal (the
layer normal a1×a2 by default), so for a trigonal (honeycomb) layer x'+y'+z' is the trigonal axis; the frame is
right-handed; among the cyclic relabellings the one closest to a reference frame (the first metal's frame, or the
global x axis) is chosen so that all metals of a structure use comparable axes.

Orbital blocks are rotated with the real-harmonic matrices of :mod:`wannmag.tightbinding.harmonics`:
H_loc = D_iᵀ H D_j.  d levels in the frame: t2g = (dxz, dyz, dxy), eg = (dz2, dx2-y2), 10Dq = ε_eg − ε_t2g (eV).
Trigonal splitting of t2g: a1g = (dxy + dyz + dxz)/√3 (along x'+y'+z'), eg' = its orthogonal complement in t2g.

Two 10Dq values are reported: the on-site value of the Wannier d orbitals (their bare ligand field; in a d–p model
most of the ligand field is in the explicit p–d hopping) and the value of the MX6 cluster: the metal d and the six
ligands' p orbitals with all their on-site and hopping blocks taken from the model, exactly diagonalised; the five
highest cluster states are the antibonding d-like states and are split into eg*/t2g* by their local-frame
character.  For an ideal octahedron with (pdσ), (pdπ) only, the cluster gives exactly
ε(eg*) − ε(t2g*) = √((Δ/2)² + 3(pdσ)²) − √((Δ/2)² + 4(pdπ)²), Δ = ε_d − ε_p.

Energies eV, lengths Å, angles degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np
from ase import Atoms
from ase.neighborlist import primitive_neighbor_list

from .harmonics import EG, ORBITAL_NAMES, T2G, frame_matrix
from .model import CollinearTBModel, TBError, TBModel

__all__ = ["metal_atoms", "LocalFrame", "find_ligands", "octahedral_frame", "local_frames", "CrystalFieldLevels",
           "crystal_field", "crystal_fields", "hopping_matrices", "A1G", "EGP"]

#: a1g and eg' combinations of the t2g orbitals (vectors in the Wannier90 d order dz2, dxz, dyz, dx2-y2, dxy)
A1G = np.array([0.0, 1.0, 1.0, 0.0, 1.0]) / np.sqrt(3.0)
EGP = np.array([[0.0, -1.0, -1.0, 0.0, 2.0] / np.sqrt(6.0), [0.0, -1.0, 1.0, 0.0, 0.0] / np.sqrt(2.0)])


@dataclass
class LocalFrame:
    """Local octahedral frame of one metal atom.

    axes : rows x', y', z' (orthonormal, right-handed) in Cartesian coordinates.
    ligands : (atom index, lattice vector R) of the six ligands; ``ligand_vectors`` are M→X vectors (Å).
    pairs : for each axis, the indices (into ``ligands``) of the ligand along +axis and along −axis.
    raw_axes : the normalised pair directions before orthonormalisation.
    """

    atom: int
    element: str
    axes: np.ndarray
    ligands: list = field(default_factory=list)
    ligand_vectors: np.ndarray = None
    pairs: list = field(default_factory=list)
    raw_axes: np.ndarray = None
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    @property
    def max_deviation(self) -> float:
        """Largest angle (degrees) between a raw pair direction and the corresponding frame axis."""
        if self._stored is not None:
            return self._stored["max_axis_deviation_deg"]
        c = np.clip(np.sum(self.raw_axes * self.axes, axis=1), -1, 1)
        return float(np.degrees(np.arccos(c)).max())

    @property
    def bond_lengths(self) -> np.ndarray:
        if self._stored is not None:
            return np.asarray(self._stored["bond_lengths"], float)
        return np.linalg.norm(self.ligand_vectors, axis=1)

    @property
    def cis_angles(self) -> np.ndarray:
        """All X–M–X angles between non-trans ligands (degrees; 90 in an ideal octahedron)."""
        v = self.ligand_vectors / self.bond_lengths[:, None]
        trans = {frozenset(p) for p in self.pairs}
        out = [np.degrees(np.arccos(np.clip(v[a] @ v[b], -1, 1)))
               for a in range(6) for b in range(a + 1, 6) if frozenset((a, b)) not in trans]
        return np.array(out)

    def d_matrix(self) -> np.ndarray:
        return frame_matrix(2, self.axes)

    def p_matrix(self) -> np.ndarray:
        return frame_matrix(1, self.axes)

    def matrix(self, l: int) -> np.ndarray:
        return frame_matrix(l, self.axes)

    def as_dict(self) -> dict:
        axes = self._stored["axes"] if self._stored is not None else np.round(self.axes, 6).tolist()
        return {"atom": self.atom, "element": self.element, "axes": axes,
                "ligands": [{"atom": int(a), "R": [int(x) for x in R], "vector": np.round(v, 5).tolist()}
                            for (a, R), v in zip(self.ligands, self.ligand_vectors)],
                "bond_lengths": np.round(self.bond_lengths, 5).tolist(),
                "cis_angle_range": (list(self._stored["cis_angle_range"]) if self._stored is not None else
                                    [round(float(self.cis_angles.min()), 3), round(float(self.cis_angles.max()), 3)]),
                "max_axis_deviation_deg": round(self.max_deviation, 4)}

    @classmethod
    def from_dict(cls, d: dict) -> "LocalFrame":
        """Inverse of :meth:`as_dict`: M→X vectors as stored (to 1e-5 Å), axes the orthonormal matrix closest to
        the stored ones (rounded to 1e-6: no longer orthonormal to the 1e-8 the orbital rotations check); the trans
        pairs are found again (per axis the ligands with the largest and smallest projection, as
        :func:`octahedral_frame` orders them) and the raw pair directions recomputed from the stored vectors.  The
        stored axes, bond lengths, cis-angle range and largest axis deviation are what :meth:`as_dict` gives back."""
        axes = _closest_orthonormal(np.asarray(d["axes"], float))
        ligs = d["ligands"]
        vecs = np.asarray([x["vector"] for x in ligs], float).reshape(-1, 3)
        pairs, raw = [], []
        if len(vecs) == 6:
            proj = vecs @ axes.T
            for k in range(3):
                a, b = int(np.argmax(proj[:, k])), int(np.argmin(proj[:, k]))
                u = vecs[a] / np.linalg.norm(vecs[a]) - vecs[b] / np.linalg.norm(vecs[b])
                pairs.append((a, b))
                raw.append(u / np.linalg.norm(u))
        fr = cls(atom=d["atom"], element=d["element"], axes=axes,
                 ligands=[(int(x["atom"]), tuple(int(r) for r in x["R"])) for x in ligs], ligand_vectors=vecs,
                 pairs=pairs, raw_axes=np.asarray(raw) if raw else None)
        fr._stored = {k: d[k] for k in ("axes", "bond_lengths", "cis_angle_range", "max_axis_deviation_deg")}
        return fr


def find_ligands(atoms: Atoms, index: int, candidates=None, n: int = 6, max_cutoff: float = 6.0,
                 pbc=None) -> list[tuple[int, tuple[int, int, int], np.ndarray]]:
    """The ``n`` nearest ``candidates`` (atom indices; default every other atom) around atom ``index``, as
    (atom, lattice vector R, M→X vector) sorted by distance."""
    cand = set(range(len(atoms))) - {index} if candidates is None else set(int(c) for c in candidates) - {index}
    if not cand:
        raise TBError(f"atom {index}: no candidate ligand atoms")
    pbc = atoms.pbc if pbc is None else pbc
    cutoff = 3.5
    while True:
        i, j, d, D, S = primitive_neighbor_list("ijdDS", pbc, atoms.cell.array, atoms.positions, cutoff,
                                                self_interaction=False)
        sel = [(dist, int(b), tuple(int(x) for x in s), vec) for a, b, dist, vec, s in zip(i, j, d, D, S)
               if a == index and b in cand]
        if len(sel) >= n or cutoff >= max_cutoff:
            break
        cutoff += 1.0
    if len(sel) < n:
        raise TBError(f"atom {index} ({atoms.get_chemical_symbols()[index]}): only {len(sel)} ligand(s) within "
                      f"{max_cutoff:.1f} Å, need {n} for an octahedron")
    sel.sort(key=lambda t: (round(t[0], 6), t[1], t[2]))
    return [(b, s, np.asarray(v, float)) for _, b, s, v in sel[:n]]


def _closest_orthonormal(U: np.ndarray) -> np.ndarray:
    A, _, Bt = np.linalg.svd(U)
    return A @ Bt


def octahedral_frame(atoms: Atoms, index: int, candidates=None, reference: np.ndarray | None = None,
                     normal=None, pbc=None) -> LocalFrame:
    """The local octahedral frame of atom ``index`` (see the module docstring).

    candidates : atoms that may be ligands (default: every other atom).
    reference : a frame (rows) to which the cyclic relabelling of the axes is matched.
    normal : the reference direction every axis is oriented toward (default a1×a2 of the cell).
    """
    ligs = find_ligands(atoms, index, candidates, 6, pbc=pbc)
    vecs = np.array([v for _, _, v in ligs])
    unit = vecs / np.linalg.norm(vecs, axis=1)[:, None]
    cos = unit @ unit.T
    partner = [int(np.argmin(cos[a])) for a in range(6)]
    name = f"{atoms.get_chemical_symbols()[index]}{index}"
    for a in range(6):
        if partner[partner[a]] != a or cos[a, partner[a]] > -0.5:
            raise TBError(f"{name}: its six nearest ligands do not form an octahedron (no trans partner for ligand "
                          f"{ligs[a][0]} at {np.linalg.norm(vecs[a]):.3f} Å)")
    if normal is None:
        cell = atoms.cell.array
        normal = np.cross(cell[0], cell[1])
    normal = np.asarray(normal, float) / np.linalg.norm(normal)
    tie = np.array([0.57, 0.33, 0.11])
    pairs, raw = [], []
    for a in range(6):
        b = partner[a]
        if a > b:
            continue
        u = unit[a] - unit[b]
        u /= np.linalg.norm(u)
        s = u @ normal
        if abs(s) < 1e-6:
            s = u @ tie
        if s < 0:
            u, a_, b_ = -u, b, a
        else:
            a_, b_ = a, b
        pairs.append((a_, b_))
        raw.append(u)
    raw = np.array(raw)
    W = _closest_orthonormal(raw)
    if np.linalg.det(W) < 0:
        pairs[0], pairs[1] = pairs[1], pairs[0]
        raw = raw[[1, 0, 2]]
        W = _closest_orthonormal(raw)
    best = None
    for perm in ([0, 1, 2], [1, 2, 0], [2, 0, 1]):
        Wp = W[perm]
        score = np.trace(Wp @ reference.T) if reference is not None else Wp[0] @ np.array([1.0, 1e-3, 1e-6])
        if best is None or score > best[0] + 1e-9:
            best = (score, perm)
    perm = best[1]
    return LocalFrame(atom=int(index), element=atoms.get_chemical_symbols()[index], axes=W[perm],
                      ligands=[(b, s) for b, s, _ in ligs], ligand_vectors=vecs,
                      pairs=[pairs[p] for p in perm], raw_axes=raw[perm])


def _model_of(model) -> TBModel:
    if isinstance(model, CollinearTBModel):
        return model.spin_averaged()
    return model


def _metal_atoms(model: TBModel) -> list[int]:
    return sorted({o.atom for o in model.orbitals if o.l == 2 and o.atom >= 0})


def metal_atoms(model, elements=None) -> list[int]:
    """Indices of the metal (magnetic) atoms of a model: the atoms carrying d orbitals, or, with ``elements``
    (symbols such as ``["Cr"]``, naming them explicitly), every atom of those elements that carries Wannier orbitals.
    An element without such an atom is an error."""
    m = model.up if isinstance(model, CollinearTBModel) else model
    if elements is None:
        return _metal_atoms(m)
    if m.atoms is None:
        raise TBError(f"{m.name}: the model has no structure; atoms cannot be named by element")
    sym = m.atoms.get_chemical_symbols()
    with_orb = sorted({o.atom for o in m.orbitals if o.atom >= 0})
    out = []
    for el in elements:
        idx = [a for a in with_orb if sym[a].lower() == str(el).lower()]
        if not idx:
            have = sorted({sym[a] for a in with_orb})
            raise TBError(f"{m.name}: no {el} atom carries Wannier orbitals (elements with orbitals: "
                          f"{', '.join(have)}); cannot name {el} as magnetic")
        out += idx
    return sorted(set(out))


def _ligand_atoms(model: TBModel) -> list[int]:
    return sorted({o.atom for o in model.orbitals if o.l == 1 and o.atom >= 0} - set(_metal_atoms(model)))


def local_frames(model, metals=None, ligands=None) -> dict[int, LocalFrame]:
    """Octahedral frames of the metal atoms (atoms with d orbitals, or ``metals``) of a model.

    Ligand candidates: the atoms with p orbitals in the model (or ``ligands``: indices or element symbols); if the
    model has none, every non-metal atom.
    """
    m = _model_of(model)
    if m.atoms is None:
        raise TBError(f"{m.name}: the model has no structure (atoms); cannot build local frames")
    metals = _metal_atoms(m) if metals is None else list(metals)
    if ligands is None:
        ligands = _ligand_atoms(m) or [i for i in range(len(m.atoms)) if i not in metals]
    else:
        sym = m.atoms.get_chemical_symbols()
        ligands = [i for i in range(len(m.atoms)) if i in ligands or sym[i] in ligands]
    pbc = [bool(x) for x in m.periodic] if m.periodic.any() else m.atoms.pbc
    frames, ref = {}, None
    for a in metals:
        f = octahedral_frame(m.atoms, a, candidates=ligands, reference=ref, pbc=pbc)
        frames[a] = f
        ref = f.axes if ref is None else ref
    return frames


def _spatial_block(model: TBModel, i: int, j: int, R, li, lj) -> np.ndarray:
    """Orbital block between atoms; for a spinor model the average of the up-up and down-down blocks."""
    if model.spinor:
        return 0.5 * (model.atom_block(i, j, R, li, lj, spin="up") + model.atom_block(i, j, R, li, lj, spin="down"))
    return model.atom_block(i, j, R, li, lj)


@dataclass
class CrystalFieldLevels:
    """d levels of one metal in its local octahedral frame (eV)."""

    atom: int
    element: str
    frame: LocalFrame
    h_local: np.ndarray | None           # 5×5 on-site d block in the local frame (W90 order)
    eps_t2g: float
    eps_eg: float
    eps_a1g: float
    eps_egp: float
    t2g_levels: np.ndarray               # eigenvalues of the t2g block
    eg_levels: np.ndarray                # eigenvalues of the eg block
    t2g_eg_mixing: float                 # largest |<t2g|H|eg>| (0 for an ideal octahedron)
    eps_p: float | None = None           # mean on-site energy of the ligands' p orbitals
    cluster_levels: np.ndarray | None = None   # the five antibonding d-like MX6 cluster levels
    cluster_eg_weight: np.ndarray | None = None
    ten_dq_cluster: float | None = None
    _stored: dict | None = field(default=None, init=False, repr=False, compare=False)  # from_dict: see there

    def _derived(self, key: str, value):
        """The stored value ``key`` of levels rebuilt by :meth:`from_dict` (its inputs were rounded), else
        ``value()``."""
        if self._stored is not None:
            return self._stored[key]
        return value()

    @property
    def ten_dq(self) -> float:
        """10Dq = ε_eg − ε_t2g of the on-site Wannier d levels (eV)."""
        return self._derived("ten_dq", lambda: self.eps_eg - self.eps_t2g)

    @property
    def trigonal_splitting(self) -> float:
        """ε_a1g − ε_eg' (eV)."""
        return self._derived("trigonal_splitting", lambda: self.eps_a1g - self.eps_egp)

    @property
    def eps_d(self) -> float:
        return self._derived("eps_d", lambda: float(np.trace(self.h_local) / 5.0))

    @property
    def delta(self) -> float | None:
        """Charge-transfer energy Δ = ε_d − ε_p (eV), None if the model has no ligand p orbitals."""
        return self._derived("delta", lambda: None if self.eps_p is None else self.eps_d - self.eps_p)

    def as_dict(self) -> dict:
        r = lambda x: None if x is None else round(float(x), 6)  # noqa: E731
        diag = self._stored["local_levels"].values() if self.h_local is None else np.diag(self.h_local)
        return {"atom": self.atom, "element": self.element,
                "local_levels": {n: r(e) for n, e in zip(ORBITAL_NAMES[2], diag)},
                "eps_t2g": r(self.eps_t2g), "eps_eg": r(self.eps_eg), "ten_dq": r(self.ten_dq),
                "eps_a1g": r(self.eps_a1g), "eps_egp": r(self.eps_egp),
                "trigonal_splitting": r(self.trigonal_splitting),
                "t2g_levels": np.round(self.t2g_levels, 6).tolist(), "eg_levels": np.round(self.eg_levels, 6).tolist(),
                "t2g_eg_mixing": r(self.t2g_eg_mixing), "eps_d": r(self.eps_d), "eps_p": r(self.eps_p),
                "delta": r(self.delta), "ten_dq_cluster": r(self.ten_dq_cluster),
                "cluster_levels": None if self.cluster_levels is None else np.round(self.cluster_levels, 6).tolist(),
                "frame": self.frame.as_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "CrystalFieldLevels":
        """Inverse of :meth:`as_dict` (eV, as stored: rounded to 1e-6).  Only the diagonal of the local d block is
        stored: ``h_local`` is None (``local_levels`` keeps the diagonal) and the cluster's eg weights are None;
        10Dq, the trigonal splitting, ε_d and Δ are the stored values (their inputs were rounded)."""
        arr = lambda x: None if x is None else np.asarray(x, float)  # noqa: E731
        cf = cls(atom=d["atom"], element=d["element"], frame=LocalFrame.from_dict(d["frame"]), h_local=None,
                 eps_t2g=d["eps_t2g"], eps_eg=d["eps_eg"], eps_a1g=d["eps_a1g"], eps_egp=d["eps_egp"],
                 t2g_levels=arr(d["t2g_levels"]), eg_levels=arr(d["eg_levels"]), t2g_eg_mixing=d["t2g_eg_mixing"],
                 eps_p=d.get("eps_p"), cluster_levels=arr(d.get("cluster_levels")),
                 ten_dq_cluster=d.get("ten_dq_cluster"))
        cf._stored = {k: d.get(k) for k in ("ten_dq", "trigonal_splitting", "eps_d", "delta")}
        cf._stored["local_levels"] = dict(d["local_levels"])
        return cf


def _cluster(model: TBModel, frame: LocalFrame):
    """Exact diagonalisation of the MX6 cluster; returns (levels of the 5 top states, their eg weight)."""
    a = frame.atom
    sites = [(a, (0, 0, 0), 2)] + [(x, tuple(R), 1) for x, R in frame.ligands]
    sizes = [5 if l == 2 else 3 for _, _, l in sites]
    if any(len(model.select(atom=x, l=l, spin=None if not model.spinor else "up")) != (5 if l == 2 else 3)
           for x, _, l in sites):
        return None, None
    off = np.concatenate([[0], np.cumsum(sizes)])
    n = off[-1]
    Hc = np.zeros((n, n), complex)
    for p, (x1, R1, l1) in enumerate(sites):
        for q, (x2, R2, l2) in enumerate(sites):
            Hc[off[p]:off[p + 1], off[q]:off[q + 1]] = _spatial_block(model, x1, x2, np.subtract(R2, R1), l1, l2)
    Hc = 0.5 * (Hc + Hc.conj().T)
    E, V = np.linalg.eigh(Hc)
    top = np.arange(n - 5, n)
    D = frame.d_matrix()
    cd = D.T @ V[:5, top]                       # local-frame d components of the top states
    w = np.abs(cd) ** 2
    eg_w = w[list(EG)].sum(axis=0) / np.maximum(w.sum(axis=0), 1e-12)
    return E[top], eg_w


def crystal_field(model, atom: int, frame: LocalFrame | None = None, cluster: bool = True) -> CrystalFieldLevels:
    """Crystal-field levels of the metal ``atom`` in its local octahedral frame (see the module docstring).

    For a :class:`CollinearTBModel` the spin-averaged model is used; for a spinor model the spin-diagonal blocks
    are averaged.
    """
    m = _model_of(model)
    if frame is None:
        frame = local_frames(m, metals=[atom])[atom]
    hd = _spatial_block(m, atom, atom, (0, 0, 0), 2, 2)
    if hd.shape != (5, 5):
        raise TBError(f"{m.name}: atom {atom} does not carry a full d shell (found {hd.shape[0]} d orbitals)")
    D = frame.d_matrix()
    h = (D.T @ hd @ D).real
    t2g, eg = list(T2G), list(EG)
    eps_p = None
    p_levels = []
    for x, _ in frame.ligands:
        hp = _spatial_block(m, x, x, (0, 0, 0), 1, 1)
        if hp.shape == (3, 3):
            p_levels.append(np.trace(hp).real / 3.0)
    if p_levels:
        eps_p = float(np.mean(p_levels))
    lv, eg_w, tdq = None, None, None
    if cluster and eps_p is not None:
        lv, eg_w = _cluster(m, frame)
        if lv is not None:
            order = np.argsort(eg_w)
            t2g_like, eg_like = lv[order[:3]], lv[order[3:]]
            tdq = float(eg_like.mean() - t2g_like.mean())
    return CrystalFieldLevels(
        atom=atom, element=frame.element, frame=frame, h_local=h,
        eps_t2g=float(np.mean(h[t2g, t2g])), eps_eg=float(np.mean(h[eg, eg])),
        eps_a1g=float(A1G @ h @ A1G), eps_egp=float(np.mean([e @ h @ e for e in EGP])),
        t2g_levels=np.linalg.eigvalsh(h[np.ix_(t2g, t2g)]), eg_levels=np.linalg.eigvalsh(h[np.ix_(eg, eg)]),
        t2g_eg_mixing=float(np.abs(h[np.ix_(t2g, eg)]).max()), eps_p=eps_p,
        cluster_levels=lv, cluster_eg_weight=eg_w, ten_dq_cluster=tdq)


def crystal_fields(model, cluster: bool = True) -> list[CrystalFieldLevels]:
    """:func:`crystal_field` for every metal (atom with d orbitals) of the model, with common reference axes."""
    m = _model_of(model)
    frames = local_frames(m)
    return [crystal_field(m, a, frames[a], cluster=cluster) for a in frames]


def hopping_matrices(model, i: int, j: int, R=(0, 0, 0), frame: str = "local",
                     frames: dict[int, LocalFrame] | None = None) -> dict[str, np.ndarray]:
    """Hopping blocks from atom ``i`` (home cell) to atom ``j`` in cell ``R`` (eV), keyed ``"dd"`` (5×5),
    ``"dp"`` (5×3), ``"pd"`` (3×5), ``"pp"`` (3×3), ``"ss"``, … by the shells present.

    ``frame="local"``: each block rotated into local octahedral frames, H_loc = D_iᵀ H D_j — a metal's orbitals in
    its own frame, a ligand's p orbitals in the frame of the metal of the pair (of atom i if both are metals'
    partners, of the nearest metal if neither atom is a metal).  ``frame="global"``: Cartesian axes.
    For a :class:`CollinearTBModel` a dict ``{"up": …, "down": …}`` of such dicts is returned.
    """
    if isinstance(model, CollinearTBModel):
        fr = frames if frames is not None or frame != "local" else local_frames(model)
        return {s: hopping_matrices(m, i, j, R, frame, fr) for s, m in (("up", model.up), ("down", model.down))}
    m = model
    if frame not in ("local", "global"):
        raise TBError(f"unknown frame {frame!r} (use 'local' or 'global')")
    if frame == "local" and frames is None:
        frames = local_frames(m)
    letters = {0: "s", 1: "p", 2: "d", 3: "f"}
    ls_i = sorted({o.l for o in m.orbitals if o.atom == i and o.l >= 0})
    ls_j = sorted({o.l for o in m.orbitals if o.atom == j and o.l >= 0})

    def frame_of(atom, partner):
        if frame == "global":
            return None
        if atom in frames:
            return frames[atom]
        if partner in frames:
            return frames[partner]
        # nearest metal of a ligand
        if m.atoms is None or not frames:
            return None
        d = [np.linalg.norm(m.atoms.get_distance(atom, k, mic=True)) for k in frames]
        return frames[list(frames)[int(np.argmin(d))]]

    fi, fj = frame_of(i, j), frame_of(j, i)
    out = {}
    for li in reversed(ls_i):
        for lj in reversed(ls_j):
            blk = _spatial_block(m, i, j, R, li, lj)
            if fi is not None:
                blk = fi.matrix(li).T @ blk
            if fj is not None:
                blk = blk @ fj.matrix(lj)
            out[letters[li] + letters[lj]] = blk.real if np.abs(blk.imag).max(initial=0) < 1e-12 else blk
    return out
